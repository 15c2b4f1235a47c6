"""Reflection: classes, headings and source code rebuilt from the database alone.

A two-schema pipeline with every tier, parts, renamed / nullable / unique foreign keys,
indexes, defaults and special types is declared here; another process reflects it with
`dj.VirtualModule` and must find the same headings and the same values. `schema.code()`
must re-declare an identical schema under a new name.
"""

from __future__ import annotations

import datetime
import decimal
import json
import subprocess
import sys
import types
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import datajoint_sa as dj
from datajoint_sa.reflect import Catalog, default_text, native_type, split_table_name
from datajoint_sa.types import resolve_type

from .conftest import unique_name

TOKEN = uuid.UUID("0f1e2d3c-4b5a-6978-8796-a5b4c3d2e1f0")


def declare_pipeline(make_schema: Callable[..., dj.Schema]) -> types.SimpleNamespace:
    """Declare and fill the two-schema pipeline; returns its classes and schemas."""
    lab = make_schema(unique_name("djlab"))
    ses = make_schema(unique_name("djses"))

    @lab
    class Subject(dj.Manual):
        definition = """
        # experimental subjects
        subject_id : int32 auto_increment   # unique id
        ---
        species = "mouse" : varchar(32)
        sex = 'U' : enum('F', 'M', 'U')
        born = null : date
        weight = 0.0 : float64   # grams
        active = true : bool
        flags = 0 : uint8
        index (species)
        """

    @lab
    class Rig(dj.Lookup):
        definition = """
        rig : varchar(16)
        ---
        room = null : varchar(32)
        """
        contents = [("r1", "a"), ("r2", None)]

    @ses
    class Session(dj.Manual):
        definition = """
        # a recording session
        -> Subject
        session_idx : int16    # session number
        ---
        -> [nullable] Rig
        started = CURRENT_TIMESTAMP : datetime
        token : uuid
        meta = null : json
        data = null : <blob>
        raw = null : bytes
        price = null : decimal(8,2)
        note = "" : varchar(255)
        unique index (token)
        """

        class Trial(dj.Part):
            definition = """
            -> master
            trial : int32
            ---
            value : float32
            """

    @ses
    class Pairing(dj.Manual):
        definition = """
        -> Session
        -> Session.proj(other_idx='session_idx')
        ---
        -> [unique] Rig.proj(paired_rig='rig')
        """

    @ses
    class Recording(dj.Imported):
        definition = """
        -> Session
        ---
        n_samples : int64
        """

    @ses
    class Analysis(dj.Computed):
        definition = """
        -> Recording
        ---
        score : float64
        """

        class Detail(dj.Part):
            definition = """
            -> master
            -> Session.Trial
            ---
            x : float64
            """

    Subject.insert([dict(species="rat", weight=12.5), dict(sex="F")])
    ids = sorted(Subject.fetch("subject_id"))
    Session.insert1(dict(subject_id=ids[0], session_idx=1, rig="r1", token=TOKEN,
                         meta={"a": [1, 2]}, data=np.arange(6).reshape(2, 3), raw=b"\x00\x01",
                         price=decimal.Decimal("12.50"), started=datetime.datetime(2024, 1, 2)))
    Session.insert1(dict(subject_id=ids[0], session_idx=2, token=uuid.uuid4(),
                         started=datetime.datetime(2024, 1, 3)))
    Session.Trial.insert([dict(subject_id=ids[0], session_idx=1, trial=t, value=t / 2)
                          for t in range(3)])
    Pairing.insert1(dict(subject_id=ids[0], session_idx=1, other_idx=2, paired_rig="r2"))
    Recording.insert1(dict(subject_id=ids[0], session_idx=1, n_samples=10),
                      allow_direct_insert=True)
    Analysis.insert1(dict(subject_id=ids[0], session_idx=1, score=0.5),
                     allow_direct_insert=True)
    Analysis.Detail.insert1(dict(subject_id=ids[0], session_idx=1, trial=0, x=1.0),
                            allow_direct_insert=True)
    return types.SimpleNamespace(
        lab=lab, ses=ses, Subject=Subject, Rig=Rig, Session=Session, Pairing=Pairing,
        Recording=Recording, Analysis=Analysis,
        tables=[Subject, Rig, Session, Session.Trial, Pairing, Recording, Analysis,
                Analysis.Detail])


def canonical_default(attr: Any) -> Any:
    """Defaults compared by meaning: `0.0` and `0`, `'U'` and `"U"` are the same default."""
    default = attr["default"] if isinstance(attr, dict) else attr.default
    if default is None:
        return None
    text = str(default)
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return ("str", text[1:-1])
    lowered = text.lower()
    if lowered in ("true", "false"):
        return ("bool", lowered)
    try:
        return ("num", decimal.Decimal(text).normalize())
    except decimal.InvalidOperation:
        return ("raw", text.upper())


def heading_record(heading: dj.Heading) -> list[dict[str, Any]]:
    return [dict(name=a.name, type=a.type, in_key=a.in_key, nullable=a.nullable,
                 default=repr(canonical_default(a)), comment=a.comment,
                 autoincrement=a.autoincrement, lineage=a.lineage)
            for a in heading.attributes]


def plain(value: Any) -> Any:
    """A JSON-able form of a fetched value, equal for equal values."""
    if isinstance(value, np.ndarray):
        return ["ndarray", str(value.dtype), list(value.shape), value.ravel().tolist()]
    if isinstance(value, (bytes, bytearray, memoryview)):
        return ["bytes", bytes(value).hex()]
    if isinstance(value, (decimal.Decimal, uuid.UUID, datetime.date)):
        return [type(value).__name__, str(value)]
    if isinstance(value, np.generic):
        return value.item()
    return value


def class_path(table: type[dj.Table]) -> str:
    """`Master.Part` or `Class`, wherever the class was defined."""
    return table.__qualname__.rsplit("<locals>.", 1)[-1]


def table_record(table: type[dj.Table]) -> dict[str, Any]:
    rows = table().fetch(as_dict=True, order_by="KEY")
    return {"class": class_path(table), "tier": table.tier,
            "heading": heading_record(table.heading),
            "rows": [{k: plain(v) for k, v in row.items()} for row in rows]}


REFLECT_IN_ANOTHER_PROCESS = r"""
import json, sys
import datajoint_sa as dj
from tests.test_reflect import table_record

url, schema_names = sys.argv[1], sys.argv[2:]
connection = dj.Connection(url)
out = {}
for name in schema_names:
    module = dj.VirtualModule(name, name, connection=connection)
    for cls in [c for c in vars(module).values() if isinstance(c, type) and
                issubclass(c, dj.Table)]:
        for table in [cls, *cls().parts]:
            out[f"{name}.{table.table_name}"] = table_record(table)
print(json.dumps(out))
"""


def test_virtual_module_in_another_process_sees_equal_headings_and_values(
        make_schema: Callable[..., dj.Schema], db_url: str) -> None:
    p = declare_pipeline(make_schema)
    expected = {f"{t._schema.database}.{t.table_name}": table_record(t) for t in p.tables}
    result = subprocess.run(
        [sys.executable, "-c", REFLECT_IN_ANOTHER_PROCESS, db_url, p.lab.database,
         p.ses.database], capture_output=True, text=True, timeout=120,
        cwd=str(__import__("pathlib").Path(__file__).resolve().parents[1]))
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(found) == set(expected)
    for node, record in expected.items():
        assert found[node]["heading"] == record["heading"], node
        assert found[node]["class"] == record["class"], node
        assert found[node]["tier"] == record["tier"], node
        assert found[node]["rows"] == json.loads(json.dumps(record["rows"])), node


def test_virtual_module_tiers_parts_and_queries(make_schema: Callable[..., dj.Schema],
                                                connection: dj.Connection) -> None:
    p = declare_pipeline(make_schema)
    ses = dj.VirtualModule("ses", p.ses.database, connection=connection)
    assert isinstance(ses.schema, dj.Schema) and ses.schema.database == p.ses.database
    assert issubclass(ses.Session, dj.Manual) and issubclass(ses.Recording, dj.Imported)
    assert issubclass(ses.Analysis, dj.Computed)
    assert issubclass(ses.Session.Trial, dj.Part) and ses.Session.Trial.master is ses.Session
    assert ses.Analysis.Detail.table_name == "__analysis__detail"
    assert ses.Session.heading.primary_key == ["subject_id", "session_idx"]
    assert ses.Session.heading["token"].type == "uuid"
    row = (ses.Session & {"session_idx": 1}).fetch1()
    assert row["token"] == TOKEN and row["meta"] == {"a": [1, 2]}
    np.testing.assert_array_equal(row["data"], np.arange(6).reshape(2, 3))
    assert row["price"] == decimal.Decimal("12.50") and row["raw"] == b"\x00\x01"
    assert len(ses.Session.Trial & {"session_idx": 1}) == 3
    # the reflected upstream table is a real parent: inserting through it works
    upstream = [e for e in vars(ses).values() if isinstance(e, type) and issubclass(e, dj.Table)]
    assert {c.__name__ for c in upstream} == {"Session", "Pairing", "Recording", "Analysis"}
    ses.Session.insert1(dict(subject_id=row["subject_id"], session_idx=9, token=uuid.uuid4()))
    assert len(p.Session()) == 3
    # describe() of a reflected table is a definition that declares the same table
    assert "-> [nullable] " in ses.Session.describe(printout=False)
    assert "-> [unique] " in ses.Pairing.describe(printout=False)
    assert ".proj(other_idx='session_idx')" in ses.Pairing.describe(printout=False)


def test_spawn_missing_classes_reuses_declared_classes(make_schema: Callable[..., dj.Schema],
                                                       connection: dj.Connection) -> None:
    p = declare_pipeline(make_schema)
    context: dict[str, Any] = {"Session": p.Session}
    again = dj.Schema(p.ses.database, connection=connection, create_schema=False)
    made = again.spawn_missing_classes(context=context)
    assert sorted(made) == ["Analysis", "Pairing", "Recording"]
    assert context["Session"] is p.Session
    assert context["Analysis"].Detail.heading.primary_key == [
        "subject_id", "session_idx", "trial"]
    assert len(context["Pairing"]()) == 1
    # a second call finds nothing missing
    assert again.spawn_missing_classes(context=context) == []
    # a schema's own context is the default target
    lab = dj.Schema(p.lab.database, {}, connection=connection)
    assert sorted(lab.spawn_missing_classes()) == ["Rig", "Subject"]
    assert lab.context is not None
    assert issubclass(lab.context["Rig"], dj.Lookup) and len(lab.context["Rig"]()) == 2
    # without a context, classes go into the calling module's namespace
    namespace: dict[str, Any] = {"dj": dj, "connection": connection, "name": p.lab.database}
    exec("schema = dj.Schema(name, connection=connection)\nschema.spawn_missing_classes()",
         namespace)
    assert issubclass(namespace["Subject"], dj.Manual) and len(namespace["Subject"]()) == 2


def test_code_redeclares_an_identical_schema(make_schema: Callable[..., dj.Schema],
                                             connection: dj.Connection,
                                             monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Any) -> None:
    p = declare_pipeline(make_schema)
    monkeypatch.setattr("datajoint_sa.connection._shared", connection)
    for schema in (p.lab, p.ses):
        code = schema.code()
        compile(code, "reflected", "exec")
        assert f'schema = dj.Schema("{schema.database}")' in code
        new_name = unique_name("djcopy")
        make_schema(new_name)  # dropped after the test
        namespace: dict[str, Any] = {"__name__": f"copy_of_{schema.database}"}
        exec(code.replace(f'dj.Schema("{schema.database}")', f'dj.Schema("{new_name}")'),
             namespace)
        copy = namespace["schema"]
        assert copy.database == new_name
        assert copy.code() == code.replace(f'"{schema.database}"', f'"{new_name}"').replace(
            f"Schema `{schema.database}`", f"Schema `{new_name}`")
        originals = [t for t in p.tables if t._schema is schema]
        for table in originals:
            twin = namespace[class_path(table).split(".")[0]]
            if "." in class_path(table):
                twin = getattr(twin, table.__name__)
            assert twin.table_name == table.table_name and twin.tier == table.tier
            rename = {f"{schema.database}.": f"{new_name}."}
            expected = heading_record(table.heading)
            for attr in expected:
                for old, new in rename.items():
                    attr["lineage"] = attr["lineage"].replace(old, new)
            assert heading_record(twin.heading) == expected, class_path(table)
    path = p.ses.save(str(tmp_path / "ses.py"))
    assert Path(path).read_text() == p.ses.code()


def test_list_schemas_and_tables(make_schema: Callable[..., dj.Schema],
                                 connection: dj.Connection) -> None:
    p = declare_pipeline(make_schema)
    assert {p.lab.database, p.ses.database} <= set(dj.list_schemas(connection))
    assert p.lab.list_tables() == ["#rig", "subject"]
    assert set(p.ses.list_tables()) == {"session", "session__trial", "pairing", "_recording",
                                        "__analysis", "__analysis__detail"}
    catalog = Catalog(connection)
    info = catalog.schema(p.ses.database)["pairing"]
    assert info.primary_key == ["subject_id", "session_idx", "other_idx"]
    assert sorted(fk.parent for fk in info.foreign_keys) == [
        f"{p.lab.database}.#rig", f"{p.ses.database}.session", f"{p.ses.database}.session"]


def test_table_names_map_to_tiers_and_classes() -> None:
    assert split_table_name("session") == ("Manual", "Session", None)
    assert split_table_name("#rig_type") == ("Lookup", "RigType", None)
    assert split_table_name("_recording") == ("Imported", "Recording", None)
    assert split_table_name("__analysis") == ("Computed", "Analysis", None)
    assert split_table_name("__analysis__detail") == ("Part", "Analysis", "Detail")
    assert split_table_name("session__trial_info") == ("Part", "Session", "TrialInfo")
    assert split_table_name("~jobs") is None
    assert split_table_name("session_2") is None  # no class name spells it
    assert split_table_name("Session") is None


def test_native_types_without_markers() -> None:
    import sqlalchemy as sa
    from sqlalchemy.dialects import mysql, postgresql

    cases = {
        mysql.INTEGER(display_width=11): "int",
        mysql.SMALLINT(unsigned=True): "smallint unsigned",
        mysql.TINYINT(display_width=1): "bool",
        mysql.TINYINT(unsigned=True): "tinyint unsigned",
        mysql.DOUBLE(): "double",
        mysql.FLOAT(): "float",
        mysql.DECIMAL(10, 3): "decimal(10,3)",
        mysql.VARCHAR(30): "varchar(30)",
        mysql.CHAR(2): "char(2)",
        mysql.LONGTEXT(): "longtext",
        mysql.ENUM("a", "b"): "enum('a','b')",
        mysql.DATETIME(fsp=3): "datetime(3)",
        mysql.TIMESTAMP(): "timestamp",
        mysql.LONGBLOB(): "longblob",
        mysql.BINARY(16): "bytes",
        mysql.JSON(): "json",
        postgresql.BYTEA(): "bytes",
        postgresql.UUID(): "uuid",
        postgresql.JSONB(): "json",
        postgresql.DOUBLE_PRECISION(): "double",
        postgresql.REAL(): "float",
        sa.BigInteger(): "bigint",
        sa.Date(): "date",
        sa.Boolean(): "bool",
    }
    for sa_type, expected in cases.items():
        assert native_type(sa_type) == expected, repr(sa_type)
        resolve_type(expected)  # every answer is a declarable type
    assert native_type(mysql.SET("a")) is None


def test_server_defaults_become_definition_defaults() -> None:
    as_float, as_text = resolve_type("float64"), resolve_type("varchar(10)")
    assert default_text("'1.5'::double precision", as_float) == "1.5"
    assert default_text("(-3)", resolve_type("int16")) == "-3"
    assert default_text("'it''s'::character varying", as_text) == "\"it's\""
    assert default_text("'say \"hi\"'", as_text) == "'say \"hi\"'"
    assert default_text("current_timestamp(3)", resolve_type("datetime(3)")) == \
        "CURRENT_TIMESTAMP"
    assert default_text("NULL", as_text) is None
    assert default_text("nextval('s.t_id_seq'::regclass)", resolve_type("int32")) is None
    assert default_text("1", resolve_type("bool")) == "true"
    assert default_text("false", resolve_type("bool")) == "false"


def test_tables_that_are_not_datajoint_tables_are_left_out_with_a_warning(
        schema: dj.Schema, connection: dj.Connection) -> None:
    import sqlalchemy as sa

    @schema
    class Kept(dj.Manual):
        definition = """
        k : int32
        """

    backend = connection.backend_impl
    sa_schema, sa_name = backend.table_identity(schema.database, "session_2")
    odd = sa.Table(sa_name, sa.MetaData(), sa.Column("x", sa.Integer, primary_key=True),
                   schema=sa_schema)
    with connection.session(write=True) as sa_conn:
        odd.create(sa_conn)
    with pytest.warns(UserWarning, match="session_2: the table name is not a DataJoint"):
        module = dj.VirtualModule("odd", schema.database, connection=connection)
    assert len(module.Kept()) == 0
    with pytest.warns(UserWarning, match="session_2"):
        assert "class Kept(dj.Manual)" in schema.code()
