"""The classic DataJoint API that pipelines call (issue 15), through install_as_datajoint(),
on every backend."""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import datajoint_sa

from .conftest import unique_name

dj: Any = datajoint_sa.install_as_datajoint()

CLASSIC_SUBMODULES = ("utils", "errors", "user_tables", "blob", "hash", "table", "expression",
                      "schemas", "settings", "connection", "declare", "external",
                      "attribute_adapter", "fetch")


def _module(name: str, source: str, **names: Any) -> types.ModuleType:
    """A real module (in sys.modules) running `source`, as a pipeline file would."""
    module = types.ModuleType(name)
    module.__dict__.update(names)
    sys.modules[name] = module
    exec(compile(source, f"<{name}>", "exec"), module.__dict__)
    return module


@pytest.fixture
def drop_later(connection):  # type: ignore[no-untyped-def]
    schemas: list[Any] = []
    yield schemas.append
    for schema in reversed(schemas):
        if schema.is_activated:
            schema.drop(force=True)


# ---- 15.1 install_as_datajoint ----------------------------------------------------------------

def test_import_datajoint_resolves_to_ours() -> None:
    import datajoint

    assert datajoint is dj and datajoint.Manual is datajoint_sa.Manual
    for name in CLASSIC_SUBMODULES:
        module = importlib.import_module(f"datajoint.{name}")
        assert module.__name__ == f"datajoint_sa.compat.{name}", name
    from datajoint.errors import DataJointError
    from datajoint.table import Table
    from datajoint.user_tables import UserTable
    from datajoint.utils import to_camel_case

    assert DataJointError is datajoint_sa.DataJointError and Table is UserTable
    assert to_camel_case("session_trial") == "SessionTrial"
    assert datajoint_sa.install_as_datajoint() is dj  # idempotent


def test_core_never_imports_compat() -> None:
    root = Path(datajoint_sa.__file__).parent
    for path in root.rglob("*.py"):
        if "compat" in path.relative_to(root).parts:
            continue
        text = path.read_text()
        assert ".compat" not in text.replace("from .compat import install_as_datajoint", "") \
            or path.name == "__init__.py" and path.parent == root, path


# ---- datajoint.utils, key, key_hash ---------------------------------------------------------

def test_utils(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datajoint.utils import (
        from_camel_case,
        get_master,
        safe_copy,
        safe_write,
        to_camel_case,
        user_choice,
    )

    assert from_camel_case("SessionTrial") == "session_trial"
    assert to_camel_case("session_trial") == "SessionTrial"
    assert get_master("`lab`.`session__trial`") == "`lab`.`session`"
    assert get_master("`lab`.`__ephys__unit`") == "`lab`.`__ephys`"
    assert get_master("`lab`.`session`") == ""
    target = tmp_path / "a" / "b.bin"
    safe_write(target, b"one")
    assert target.read_bytes() == b"one"
    copy = tmp_path / "c" / "d.bin"
    safe_copy(target, copy)
    assert copy.read_bytes() == b"one"
    answers = iter(["maybe", "", "NO"])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(answers))
    assert user_choice("Go?", default="yes") == "yes"
    assert user_choice("Go?") == "no"
    assert dj.key_hash({"b": 2, "a": 1}) == dj.key_hash({"a": 1, "b": 2})
    assert dj.key_hash({"b": "x", "a": 1}) == hashlib.md5(b"1x").hexdigest()


# ---- dj.schema, activate(add_objects=...), live globals ----------------------------------------

ELEMENT = '''
import datajoint as dj
schema = dj.schema()
Upstream = None  # a placeholder, replaced before activation

@schema
class Probe(dj.Manual):
    definition = """
    -> Upstream
    probe : int32
    """

@schema
class Recording(dj.Manual):
    definition = """
    -> Probe
    -> Later
    recording : int32
    """

    class Channel(dj.Part):
        definition = """
        -> master
        channel : int16
        """

def activate(name, linking_module, connection):
    schema.activate(name, connection=connection, add_objects=linking_module.__dict__)
'''


def test_deferred_schema_resolves_live_names(connection, drop_later) -> None:  # type: ignore[no-untyped-def]
    lab = dj.schema(unique_name(), connection=connection)
    drop_later(lab)

    @lab
    class Animal(dj.Manual):
        definition = """
        animal : int32
        """

    @lab
    class Rig(dj.Lookup):
        definition = """
        rig : varchar(8)
        """
        contents = (("r1",), ("r2",))

    element = _module(f"element_{unique_name()}", ELEMENT)
    element.Later = Rig  # defined in the module after decoration
    link = types.ModuleType("link")
    link.Upstream = Animal  # given by the linking module at activation
    assert not element.schema.is_activated()
    name = unique_name()
    element.activate(name, link, connection)
    drop_later(element.schema)
    assert element.schema.is_activated()
    assert element.Probe.primary_key == ["animal", "probe"]
    assert element.Recording.primary_key == ["animal", "probe", "rig", "recording"]
    Animal.insert1((1,))
    element.Probe.insert1((1, 7))
    element.Recording.insert1((1, 7, "r2", 1))
    element.Recording.Channel.insert([(1, 7, "r2", 1, c) for c in range(3)])
    assert len(element.Recording * element.Recording.Channel) == 3


def test_activate_classic_signature(connection, drop_later) -> None:  # type: ignore[no-untyped-def]
    schema = dj.Schema()

    @schema
    class Thing(dj.Manual):
        definition = """
        thing : int32
        """

    schema.activate(schema_name=unique_name(), connection=connection, create_schema=True,
                    create_tables=True, add_objects={})
    drop_later(schema)
    Thing.insert1((3,))
    assert Thing.fetch1("thing") == 3
    with pytest.raises(dj.DataJointError, match="create_schema=False"):
        dj.Schema().activate(unique_name(), connection=connection, create_schema=False)


# ---- virtual modules, FreeTable, re-binding without a definition ----------------------------

def test_virtual_module_free_table_and_rebinding(connection, drop_later) -> None:  # type: ignore[no-untyped-def]
    name = unique_name()
    schema = dj.schema(name, connection=connection)
    drop_later(schema)

    @schema
    class Subject(dj.Manual):
        definition = """
        subject : int32
        ---
        weight = null : float64
        """

        class Note(dj.Part):
            definition = """
            -> master
            note : varchar(32)
            """

    Subject.insert1((1, 20.5))
    Subject.Note.insert1((1, "fine"))
    module = dj.create_virtual_module("vm", name, connection=connection)
    assert isinstance(module, dj.VirtualModule)
    assert module.Subject.fetch1("weight") == 20.5
    assert len(module.Subject.Note()) == 1
    free = dj.FreeTable(connection, f"`{name}`.`subject`")
    assert free.fetch1("subject") == 1 and free.heading.names == ["subject", "weight"]
    with pytest.raises(dj.errors.MissingTableError):
        dj.FreeTable(connection, f"{name}.nothing")

    again = dj.schema(name, connection=connection)

    @again
    class Subject(dj.Manual):  # type: ignore[no-redef]  # no definition: binds to the table
        pass

    assert Subject.heading.names == ["subject", "weight"]
    assert Subject.fetch1("subject") == 1
    with pytest.raises(dj.DataJointError, match="no definition"):
        @again
        class Missing(dj.Manual):
            pass


def test_schema_context_is_live(connection, drop_later) -> None:  # type: ignore[no-untyped-def]
    """`dj.schema(name, locals())` keeps the module's namespace itself: spawned classes land
    in the module, and names bound after the schema was made still resolve."""
    name = unique_name()
    first = dj.schema(name, connection=connection)
    drop_later(first)

    @first
    class Animal(dj.Manual):
        definition = """
        animal : int32
        """

    module = _module(f"pipeline_{unique_name()}", """
import datajoint as dj
schema = dj.schema(NAME, locals(), connection=CONN)
schema.spawn_missing_classes()
Parent = Animal  # bound after the schema was made

@schema
class Visit(dj.Manual):
    definition = \"\"\"
    -> Parent
    visit : int32
    \"\"\"
""", NAME=name, CONN=connection)
    assert module.Animal.table_name == "animal"
    assert module.Visit.primary_key == ["animal", "visit"]


# ---- key, Heading.as_dtype, AttributeAdapter, contents ----------------------------------------

class GraphAdapter(dj.AttributeAdapter):
    attribute_type = "longblob"

    def put(self, obj: Any) -> Any:
        return {"edges": sorted(obj)}

    def get(self, value: Any) -> Any:
        return {tuple(e) for e in value["edges"]}


def test_key_dtype_adapter_and_contents(connection, drop_later) -> None:  # type: ignore[no-untyped-def]
    schema = dj.schema(unique_name(), connection=connection,
                       context={"graph": GraphAdapter()})
    drop_later(schema)

    def rows():
        yield from ((i, f"n{i}") for i in range(2))

    contents_by_kind = {"List": [(0, "a"), (1, "b")], "Tuple": ((0, "a"),),
                        "Gen": rows(), "Zip": zip([0, 1, 2], ["x", "y", "z"]),
                        "Dicts": [{"n": 5, "label": "five"}], "Dict": {"n": 9, "label": "nine"}}
    sizes = {}
    for kind, contents in contents_by_kind.items():
        cls = type(f"Contents{kind}", (dj.Lookup,), {
            "definition": "n : int32\n---\nlabel : varchar(8)\n", "contents": contents})
        schema(cls)
        sizes[kind] = len(cls())
    assert sizes == {"List": 2, "Tuple": 1, "Gen": 2, "Zip": 3, "Dicts": 1, "Dict": 1}

    @schema
    class Net(dj.Manual):
        definition = """
        net : int16
        ---
        graph : <graph>
        score : float64
        flag : bool
        """
        contents = [(1, {(1, 2), (0, 1)}, 0.5, True)]

    assert Net.fetch1("graph") == {(0, 1), (1, 2)}
    assert Net.fetch(dj.key) == [{"net": 1}]
    dtype = Net.heading.as_dtype
    assert dtype.names == ("net", "graph", "score", "flag")
    assert dtype["net"] == np.int16 and dtype["score"] == np.float64
    assert dtype["graph"] == np.dtype("O") and dtype["flag"] == np.bool_


# ---- A ^ B, renamed-key join, Diagram, populate(processes=None) ------------------------------

def test_query_idioms(connection, drop_later) -> None:  # type: ignore[no-untyped-def]
    schema = dj.schema(unique_name(), connection=connection)
    drop_later(schema)

    @schema
    class Item(dj.Manual):
        definition = """
        item_id : int32
        ---
        label : varchar(8)
        """

    @schema
    class Pair(dj.Manual):
        definition = """
        -> Item.proj(a="item_id")
        -> Item.proj(b="item_id")
        """

    @schema
    class Tag(dj.Manual):
        definition = """
        tag : int32
        ---
        label : varchar(8)
        """

    Item.insert([(1, "one"), (2, "two"), (3, "three")])
    Pair.insert([(1, 2), (2, 3)])
    Tag.insert([(1, "one"), (2, "zwei")])
    with pytest.raises(dj.DataJointError):
        Item & Tag  # label is secondary on both sides: the semantic check refuses
    assert set((Item ^ Tag).fetch("item_id")) == {1}
    joined = Item * Pair.proj(item_id="a")
    assert sorted(joined.fetch("item_id", "b")[1]) == [2, 3]
    assert len(Item * Pair.proj(item_id="b")) == 2
    reflected = dj.create_virtual_module("reflected", schema.database, connection=connection)
    assert len(reflected.Item * reflected.Pair.proj(item_id="a")) == 2
    assert len(Item * reflected.Pair.proj(item_id="a")) == 2


def test_diagram_as_pipelines_use_it(connection, drop_later, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    schema = dj.schema(unique_name(), connection=connection)
    drop_later(schema)

    @schema
    class A(dj.Manual):
        definition = """
        a : int32
        """

    @schema
    class B(dj.Manual):
        definition = """
        -> A
        b : int32
        """

    @schema
    class C(dj.Manual):
        definition = """
        -> B
        c : int32
        """

    whole = dj.Diagram(schema)
    names = {n.split(".")[-1] for n in whole.nodes}
    assert names == {"a", "b", "c"}
    assert len(dj.Diagram(A) + 1) == 2 and len(dj.Diagram(C) - 2) == 3
    assert len((dj.Diagram(A) + 2) * (dj.Diagram(C) - 1)) == 2
    assert len(whole - dj.Diagram(A)) == 2
    svg = (dj.Di(A) + 1).make_svg()
    assert "<svg" in getattr(svg, "data", svg)
    path = whole.save(str(tmp_path / "pipeline.svg"))
    assert Path(path).read_text().lstrip().startswith(("<?xml", "<svg"))


def test_populate_processes_none(connection, drop_later) -> None:  # type: ignore[no-untyped-def]
    schema = dj.schema(unique_name(), connection=connection)
    drop_later(schema)

    @schema
    class Source(dj.Lookup):
        definition = """
        n : int32
        """
        contents = zip(range(4))

    @schema
    class Square(dj.Computed):
        definition = """
        -> Source
        ---
        square : int64
        """

        def make(self, key):  # type: ignore[no-untyped-def]
            self.insert1({**key, "square": key["n"] ** 2})

    result = Square.populate(processes=None)
    assert result["success_count"] == 4
    assert sorted(Square.fetch("square")) == [0, 1, 4, 9]


def test_classic_tables_drop_excess_fractions(connection, drop_later) -> None:  # type: ignore[no-untyped-def]
    """Classic tables store a file's time (with microseconds) in a `datetime` column as
    classic DataJoint's server did: the fraction the column does not keep is dropped, on
    insert and update1. A table of the core Schema refuses the same value."""
    import datetime as dt

    schema = dj.schema(unique_name(), connection=connection)
    drop_later(schema)

    @schema
    class Run(dj.Manual):
        definition = """
        run : int32
        ---
        started : datetime
        at_ms : datetime(3)
        clock = null : time
        """

    stamp = dt.datetime(2024, 5, 1, 12, 0, 5, 987654)
    Run.insert1({"run": 1, "started": stamp, "at_ms": stamp, "clock": stamp.time()})
    row = (Run & {"run": 1}).fetch1()
    assert row["started"] == dt.datetime(2024, 5, 1, 12, 0, 5)
    assert row["at_ms"] == dt.datetime(2024, 5, 1, 12, 0, 5, 987000)
    Run.update1({"run": 1, "started": stamp.replace(second=9)})
    assert (Run & {"run": 1}).fetch1("started") == dt.datetime(2024, 5, 1, 12, 0, 9)

    core = datajoint_sa.Schema(unique_name(), connection=connection)
    drop_later(core)

    @core
    class Strict(datajoint_sa.Manual):
        definition = """
        run : int32
        ---
        started : datetime
        """

    with pytest.raises(datajoint_sa.DataJointError, match="started.*fractional second"):
        Strict.insert1({"run": 1, "started": stamp})
    assert len(Strict()) == 0


def test_relatives_classic_signatures(connection, drop_later) -> None:  # type: ignore[no-untyped-def]
    """parents/children/ancestors/descendants/parts as classic code calls them: full table
    names quoted for the backend, tables with as_objects, (name, info) with
    foreign_key_info, `primary` filtering; relatives in another schema are found."""
    schema = dj.schema(unique_name(), connection=connection)
    drop_later(schema)
    other = dj.schema(unique_name(), connection=connection)
    drop_later(other)  # dropped first (its table references the first schema's)

    @schema
    class Subject(dj.Manual):
        definition = """
        subject : varchar(16)
        """

    @schema
    class Session(dj.Manual):
        definition = """
        -> Subject
        session : int32
        ---
        -> [nullable] Subject.proj(handler="subject")
        """

        class Trial(dj.Part):
            definition = """
            -> master
            trial : int32
            """

    @other
    class Scan(dj.Manual):
        definition = """
        -> Session
        scan : int32
        """

    Subject.insert1({"subject": "m1"})
    Session.insert1({"subject": "m1", "session": 1, "handler": "m1"})
    Scan.insert1({"subject": "m1", "session": 1, "scan": 0})
    name = {cls: cls().full_table_name for cls in (Subject, Session, Session.Trial, Scan)}
    assert Session().parents() == [name[Subject], name[Subject]]  # two foreign keys
    assert Session().parents(primary=True) == [name[Subject]]
    info = dict(Session().parents(primary=False, foreign_key_info=True))
    assert info == {name[Subject]: {"primary": False, "attr_map": {"handler": "subject"},
                                    "aliased": True, "multi": True}}
    (_, props), = Session.Trial().parents(foreign_key_info=True)
    assert props == {"primary": True, "attr_map": {"subject": "subject", "session": "session"},
                     "aliased": False, "multi": True}
    assert sorted(Session().children()) == sorted([name[Session.Trial], name[Scan]])
    assert Subject().children(primary=False) == [name[Session]]
    assert Session().ancestors() == [name[Subject], name[Session]]
    assert Subject().descendants()[:2] == [name[Subject], name[Session]]
    assert set(Subject().descendants()) == set(name.values())
    assert Session().parts() == [name[Session.Trial]] and Subject().parts() == []
    assert list(Session().parts) == [Session.Trial]  # the part classes, as before
    scans, = [t for t in Session().children(primary=True, as_objects=True)
              if t.full_table_name == name[Scan]]
    assert len(scans & {"scan": 0}) == 1
    trial, = Session().parts(as_objects=True)
    assert trial.full_table_name == name[Session.Trial] and len(trial) == 0
    parent, = Scan().ancestors(as_objects=True)[1:2]
    assert parent.full_table_name == name[Session] and parent.fetch1("session") == 1


def test_classic_jobs_table(connection, drop_later) -> None:  # type: ignore[no-untyped-def]
    """schema.jobs as classic code reads and clears it: classic DataJoint's columns, error
    rows found by a classic string restriction, their keys and messages, delete() of the
    shown rows, and the job operations (ignore) still working through the view."""
    schema = dj.schema(unique_name(), connection=connection)
    drop_later(schema)

    @schema
    class Source(dj.Lookup):
        definition = """
        n : int32
        """
        contents = zip(range(4))

    @schema
    class Inverse(dj.Computed):
        definition = """
        -> Source
        ---
        inverse : float64
        """

        def make(self, key):  # type: ignore[no-untyped-def]
            if key["n"] == 0:
                raise ZeroDivisionError("no inverse of 0")
            self.insert1({**key, "inverse": 1 / key["n"]})

    result = Inverse.populate(reserve_jobs=True, suppress_errors=True)
    assert result["success_count"] == 3
    jobs = schema.jobs
    assert jobs.heading.names == ["table_name", "key_hash", "status", "key", "error_message",
                                  "error_stack", "user", "host", "pid", "connection_id",
                                  "timestamp"]
    errors = schema.jobs & 'status="error"'
    assert len(errors) == 1
    (key, message), = zip(*errors.fetch("key", "error_message"))
    assert key == {"n": 0} and "no inverse of 0" in message
    frame = errors.fetch(format="frame")
    assert list(frame.reset_index()["table_name"]) == [Inverse.table_name]
    assert errors.delete() == 1
    assert len(schema.jobs) == 0
    schema.jobs.ignore(Inverse.table_name, {"n": 0})
    assert (schema.jobs & {"status": "ignore"}).fetch1("key") == {"n": 0}
    assert Inverse.populate(reserve_jobs=True, suppress_errors=True)["success_count"] == 0
    (schema.jobs & {"table_name": Inverse.table_name}).delete()
    assert len(schema.jobs) == 0 and len(Inverse()) == 3


def test_porting_guide_example_runs(tmp_path: Path) -> None:
    """docs/porting.md's worked port (an Element, a workflow, the entry point) runs as
    written, in a fresh interpreter on SQLite."""
    import re
    import subprocess

    root = Path(__file__).resolve().parents[1]
    text = (root / "docs" / "porting.md").read_text()
    for block in re.findall(r"```python\n(.*?)```", text, re.S):
        name = re.match(r"# (\w+\.py)", block)
        if name:
            (tmp_path / name.group(1)).write_text(block)
    assert sorted(p.name for p in tmp_path.glob("*.py")) == [
        "element_recording.py", "run.py", "workflow.py"]
    done = subprocess.run([sys.executable, "run.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(root), "DJ_DATABASE_URL": ""})
    assert done.returncode == 0, done.stderr[-2000:]
    assert "'seconds': 60.0" in done.stdout
