"""The DDL of declared tables after the declare path's shortcuts: range and length CHECKs
as one small node (`declare.AttributeCheck`), CREATE TABLE compiled once and sent as driver
SQL (`backends.base.create_statements`), lineage rows rendered as text, native types
resolved once per text. Each must give exactly what the long way gave."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa import lineage
from datajoint_sa.backends.base import create_statements
from datajoint_sa.declare import AttributeCheck
from datajoint_sa.types import resolve_type

TYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
         "float32", "float64", "decimal(8,3)", "varchar(30)", "char(4)", "bool", "date",
         "datetime(3)", "time", "uuid", "json", "bytes", "<blob>", "enum('a','b''c')"]


def _pipeline(schema: dj.Schema) -> list[type[dj.Table]]:
    @schema
    class Parent(dj.Manual):
        definition = """
        # a parent with a two-part key
        pid : int32
        tag : varchar(12)
        ---
        note = "it's 50% done" : varchar(40)  # a default with a quote and a percent sign
        """

    @schema
    class Other(dj.Lookup):
        definition = """
        other : char(3)
        """

    columns = "\n".join(f"c{i} = null : {t}  # column {i}" for i, t in enumerate(TYPES))

    @schema
    class Wide(dj.Manual):
        definition = f"""
        # every core type, foreign keys, indexes and defaults
        -> Parent
        key : int16  # a name some backends reserve
        ---
        -> [nullable] Other
        -> [unique] Parent.proj(p2='pid', t2='tag')
        n = 7 : int32
        order : varchar(10)
        when = CURRENT_TIMESTAMP : datetime
        {columns}
        index(n, order)
        unique index(key, n)
        """

    @schema
    class Counter(dj.Manual):
        definition = """
        cid : int64 auto_increment
        ---
        word : varchar(5)
        """

    return [Parent, Other, Wide, Counter]


def _long_way(check: sa.CheckConstraint) -> Any:
    """The expression SQLAlchemy would have built for an AttributeCheck."""
    element = check.sqltext
    assert isinstance(element, AttributeCheck)
    column = sa.column(element.column.name)
    head, _, rest = element.template.partition(" ")
    if element.template.startswith("length("):
        return sa.func.length(column) <= int(element.template.rsplit(" ", 1)[1])
    low, high = rest.removeprefix("BETWEEN ").split(" AND ")
    assert head == "{}"
    return column.between(int(low), int(high))


def _sql(expression: Any, dialect: Any) -> str:
    return str(expression.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))


def test_checks_render_as_the_expressions_they_stand_for(schema: dj.Schema) -> None:
    dialect = schema.connection.engine.dialect
    checks = 0
    classes = _pipeline(schema)
    for cls in classes:
        table = cls._sa_table
        for constraint in table.constraints:
            if isinstance(constraint, sa.CheckConstraint) and \
                    isinstance(constraint.sqltext, AttributeCheck):
                checks += 1
                assert _sql(constraint.sqltext, dialect) == \
                    _sql(_long_way(constraint), dialect), constraint.name
                assert [c.name for c in constraint.columns] == \
                    [constraint.sqltext.column.name]
        # the whole CREATE TABLE: as with the expressions SQLAlchemy builds
        copy = sa.Table(table.name, sa.MetaData(), *[
            sa.Column(c.name, c.type, nullable=c.nullable, server_default=c.server_default,
                      comment=c.comment, autoincrement=c.autoincrement)
            for c in table.columns], schema=table.schema)
        for constraint in table.constraints:
            if isinstance(constraint, sa.CheckConstraint):
                sqltext = _long_way(constraint) if isinstance(
                    constraint.sqltext, AttributeCheck) else constraint.sqltext
                copy.append_constraint(sa.CheckConstraint(sqltext, name=constraint.name))
        ours = [c for c in table.constraints if isinstance(c, sa.CheckConstraint)]
        theirs = [c for c in copy.constraints if isinstance(c, sa.CheckConstraint)]
        assert sorted(str(c.name) for c in ours) == sorted(str(c.name) for c in theirs)
        for mine, reference in zip(sorted(ours, key=lambda c: str(c.name)),
                                   sorted(theirs, key=lambda c: str(c.name))):
            assert _sql(sa.schema.AddConstraint(mine), dialect) == \
                _sql(sa.schema.AddConstraint(reference), dialect)
    assert checks >= 10
    # the tables work: defaults, the nullable and unique foreign keys, auto_increment
    parent, other, wide, counter = classes
    parent.insert1({"pid": 1, "tag": "a"})
    assert parent.fetch1("note") == "it's 50% done"
    wide.insert1({"pid": 1, "tag": "a", "key": 2, "p2": 1, "t2": "a", "order": "x"})
    row = wide.fetch1()
    assert row["n"] == 7 and row["other"] is None and row["when"] is not None
    counter.insert1({"word": "hi"})
    assert counter.fetch1("cid") == 1


def test_create_statements_are_what_the_ddl_runner_sends(schema: dj.Schema) -> None:
    dialect = schema.connection.engine.dialect
    for cls in _pipeline(schema):
        table = cls._sa_table
        sent: list[str] = []

        def record(sql: Any, *args: Any, sent: list[str] = sent, **kw: Any) -> None:
            sent.append(str(sql.compile(dialect=dialect)))

        table.create(sa.create_mock_engine(sa.URL.create(dialect.name), record))  # type: ignore[arg-type]
        statements = create_statements(dialect, table)
        if statements is None:  # the runner creates it (e.g. a schema type): nothing to match
            continue
        assert [str(s.compile(dialect=dialect)) for s in statements] == sent


def test_create_statements_leave_runner_tables_to_the_runner() -> None:
    metadata = sa.MetaData()
    plain = sa.Table("plain", metadata, sa.Column("id", sa.Integer, primary_key=True))
    typed = sa.Table("typed", metadata, sa.Column("e", sa.Enum("a", "b", name="ab")))
    listened = sa.Table("listened", metadata, sa.Column("id", sa.Integer, primary_key=True))
    sa.event.listen(listened, "after_create", lambda *a, **k: None)
    dialect = sa.create_mock_engine(sa.URL.create("sqlite"), lambda *a: None).dialect
    assert create_statements(dialect, plain) is not None
    assert create_statements(dialect, typed) is None
    assert create_statements(dialect, listened) is None


def test_lineage_rows_as_text(schema: dj.Schema) -> None:
    backend = schema.connection.backend_impl
    dialect = schema.connection.engine.dialect
    parent, *_ = _pipeline(schema)
    text = lineage.insert(backend, dialect, schema.database, "t", parent._table_heading)
    assert text is not None and text.startswith("INSERT INTO ")
    assert f"'{schema.database}.parent.pid'" in text
    with pytest.raises(dj.DataJointError, match="quote"):
        lineage._literal("it's")
    assert lineage._literal(None) == "NULL"


def test_native_types_are_shared_but_not_schema_types_or_codecs() -> None:
    assert resolve_type("int32") is resolve_type(" int32 ")
    assert resolve_type("varchar(30)") is resolve_type("varchar( 30 )") or \
        resolve_type("varchar(30)").type == resolve_type("varchar( 30 )").type
    assert resolve_type("bool") is not resolve_type("bool")  # a SchemaType joins its table
    assert resolve_type("<blob>") is not resolve_type("<blob>")  # codecs: looked up anew
    with pytest.raises(dj.DataJointError, match="Unknown attribute type"):
        resolve_type("int33")
    with pytest.raises(dj.DataJointError, match="Unknown attribute type"):
        resolve_type("int33")  # an error is never cached


def test_schema_exists_is_exact(make_schema: Any) -> None:
    """One catalog row instead of a listing: the same answer as `list_schemas`, names
    compared exactly (MySQL's catalog collation ignores case; database names keep it)."""
    schema = make_schema()
    connection = schema.connection
    backend = connection.backend_impl
    with connection.session(write=False) as sa_conn:
        assert backend.schema_exists(sa_conn, schema.database)
        assert schema.database in backend.list_schemas(sa_conn)
        assert not backend.schema_exists(sa_conn, schema.database.upper())
        assert not backend.schema_exists(sa_conn, schema.database + "_none")
        for system in ("information_schema", "pg_catalog", "mysql"):
            assert backend.schema_exists(sa_conn, system) is (
                system in backend.list_schemas(sa_conn))


def test_split_unquoted_shortcut_agrees_with_the_scan() -> None:
    import random

    from datajoint_sa.declare import _split_by_scan, _split_unquoted

    rng = random.Random(17)
    for _ in range(20_000):
        text = "".join(rng.choice("ab:#=()'\" \\") for _ in range(rng.randint(0, 12)))
        for separator in ":#=":
            assert _split_unquoted(text, separator) == _split_by_scan(text, separator), text


def test_master_and_parts_are_one_transaction(make_schema: Any,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A new master and its parts in a schema just created: one COMMIT where DDL is
    transactional. A failure inside the group rolls it back whole, then the class is
    declared table by table as before (so the error still names the failing part)."""
    schema = make_schema()
    connection = schema.connection
    commits: list[int] = []

    def count(conn: Any) -> None:
        commits.append(1)

    sa.event.listen(connection.engine, "commit", count)
    try:
        @schema
        class Trip(dj.Manual):
            definition = """
            trip : int32
            """

            class Leg(dj.Part):
                definition = """
                -> master
                leg : int16
                """

            class Stop(dj.Part):
                definition = """
                -> master
                stop : int16
                """
    finally:
        sa.event.remove(connection.engine, "commit", count)
    transactional = connection.backend_impl.transactional_ddl
    if transactional:
        assert len(commits) == 1, commits
    assert {"trip", "trip__leg", "trip__stop"} <= set(schema.list_tables())
    Trip.insert1((1,))
    Trip.Leg.insert1((1, 1))
    assert len(Trip.Stop()) == 0

    real = lineage.entries

    def failing(schema_name: str, table: str, heading: Any) -> list[dict[str, Any]]:
        if table.endswith("__bad"):  # the part's lineage row is refused after its CREATE
            return [{"table_name": table, "attribute_name": "x", "lineage": None}]
        return real(schema_name, table, heading)

    monkeypatch.setattr(lineage, "entries", failing)
    with pytest.raises(dj.DataJointError, match="bad"):
        @schema
        class Box(dj.Manual):
            definition = """
            box : int32
            """

            class Bad(dj.Part):
                definition = """
                -> master
                x : int16
                """
    monkeypatch.undo()
    tables = set(schema.list_tables())
    assert "box__bad" not in tables or not transactional
    assert "box" in tables  # declared again alone, as a class without parts would be


def test_fixed_tables_ddl_is_create_tables(connection: dj.Connection) -> None:
    """A schema's own tables are created from text compiled once per dialect: for any
    schema name (quoted or not), exactly SQLAlchemy's CreateTable of the table itself."""
    from datajoint_sa.backends import sqlite as sqlite_backend

    backend = connection.backend_impl
    dialect = connection.engine.dialect
    for name in ("plain_name", "MixedCase", "select", "a1_b2"):
        expected = str(sa.schema.CreateTable(lineage.lineage_table(backend, name),
                                             if_not_exists=True).compile(dialect=dialect))
        assert lineage.create_ddl(backend, dialect, name) == expected, name
        if backend.name == "sqlite":
            comments = sqlite_backend._comments_table(name)
            assert sqlite_backend.comments_ddl(dialect, name) == str(sa.schema.CreateTable(
                comments, if_not_exists=True).compile(dialect=dialect)), name


def test_fixed_table_ddl_refuses_a_template_without_the_name() -> None:
    from datajoint_sa.backends.base import fixed_table_ddl

    dialect = sa.create_mock_engine(sa.URL.create("sqlite"), lambda *a: None).dialect

    def elsewhere(schema: str) -> sa.Table:  # its name is not the schema's
        return sa.Table("t", sa.MetaData(), sa.Column(schema, sa.Integer))

    with pytest.raises(AssertionError, match="template"):
        fixed_table_ddl(dialect, "elsewhere", elsewhere, (None, "x"))


def test_comment_rows_as_text_are_what_after_create_writes(schema: dj.Schema) -> None:
    """Where comments live in a table of their own (SQLite), a new table's rows go as one
    INSERT with the CREATE: the same rows `after_create` binds as parameters."""
    @schema
    class Noted(dj.Manual):
        definition = """
        # it's a "table" of 100% odd comments? ünï
        nid : int32  # a key; DROP TABLE x; --
        ---
        a = null : varchar(10)  # 'quoted' and ''doubled'' ?
        b = null : float64
        """

    backend = schema.connection.backend_impl
    dialect = schema.connection.engine.dialect
    table = Noted._sa_table
    text = backend.after_create_sql(dialect, table)
    with schema.connection.session(write=False) as sa_conn:
        declared = backend.read_comments(sa_conn, schema.database, "noted")
    if text is None:  # comments are native: nothing to write after the CREATE
        assert declared is None
        inspector = sa.inspect(schema.connection.engine)
        sa_schema, sa_name = backend.table_identity(schema.database, "noted")
        assert inspector.get_table_comment(sa_name, schema=sa_schema)["text"] == \
            "it's a \"table\" of 100% odd comments? ünï"
        return
    assert declared == ("it's a \"table\" of 100% odd comments? ünï",
                        {c.name: c.comment for c in table.columns})
    assert declared[1]["a"].endswith(":'quoted' and ''doubled'' ?")
    with schema.connection.session(write=True) as sa_conn:
        backend.after_create(sa_conn, table)  # the rows again, bound as parameters
        assert backend.read_comments(sa_conn, schema.database, "noted") == declared
    nul = sa.Table(table.name, sa.MetaData(), sa.Column("x", sa.Integer, comment="a\0b"))
    assert backend.after_create_sql(dialect, nul) is None  # bound as parameters instead
