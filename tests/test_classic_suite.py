"""Classic calls that classic DataJoint 0.14's own test suite makes and our classic layer
missed when that suite was first run against it: `dj.Connection(host, user, password)`,
`_make_tuples`, `Part.delete(force=True)`, `schema.code` as a property, `Diagram(...,
context=)` and a diagram plus a table, `help()` of a table class, a bad port caught when it
is set, and the classic module-level names pipelines import."""

from __future__ import annotations

import importlib
import pydoc
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import datajoint_sa

from .conftest import unique_name

dj: Any = datajoint_sa.install_as_datajoint()


@pytest.fixture
def classic_schema(connection):  # type: ignore[no-untyped-def]
    schema = dj.schema(unique_name(), connection=connection)
    yield schema
    schema.drop(force=True)


def test_connection_classic_constructor() -> None:
    """A second session opened the classic way names a MySQL server (no connection is made
    until it is used); every connection is a `dj.Connection`."""
    opened = dj.Connection("db.example.org", "alice", "secret")
    try:
        assert opened.url.drivername == "mysql+pymysql"
        assert (opened.url.host, opened.url.username, opened.url.password) == \
            ("db.example.org", "alice", "secret")
        assert opened.url.port is None
    finally:
        opened.close()
    with_port = dj.Connection(host="db.example.org:3307", user="alice", password="")
    assert with_port.url.port == 3307 and with_port.url.password is None
    with_port.close()
    keyword_port = dj.Connection("db.example.org", "alice", "pw", port=3308)
    assert keyword_port.url.port == 3308
    keyword_port.close()
    core = datajoint_sa.Connection("sqlite://")
    assert isinstance(core, dj.Connection)
    core.close()
    with pytest.raises(dj.DataJointError, match="port"):
        dj.Connection("db.example.org", "alice", "pw", port="harbor")
    with pytest.raises(dj.DataJointError, match="init_fun"):
        dj.Connection("db.example.org", "alice", "pw", init_fun="SET x=1")


def test_connection_classic_constructor_connects(connection) -> None:  # type: ignore[no-untyped-def]
    """The URL form still opens a usable session on every backend."""
    url = connection.url.render_as_string(hide_password=False)
    second = dj.Connection(url)
    try:
        assert second.query("SELECT 1 + 1").fetchone()[0] == 2
    finally:
        second.close()


def test_make_tuples_is_make(classic_schema) -> None:  # type: ignore[no-untyped-def]
    schema = classic_schema

    @schema
    class Source(dj.Lookup):
        definition = """
        source : int
        """
        contents = [(1,), (2,), (3,)]

    @schema
    class Doubled(dj.Computed):
        definition = """
        -> Source
        ---
        doubled : int
        """

        def _make_tuples(self, key):  # type: ignore[no-untyped-def]
            self.insert1(dict(key, doubled=2 * key["source"]))

    Doubled.populate()
    assert sorted(Doubled.fetch("doubled")) == [2, 4, 6]
    assert Doubled.progress() == (0, 3)


def test_part_delete_force(classic_schema) -> None:  # type: ignore[no-untyped-def]
    schema = classic_schema

    @schema
    class Session(dj.Manual):
        definition = """
        session : int
        """

        class Trial(dj.Part):
            definition = """
            -> master
            trial : int
            """

    Session.insert([(1,), (2,)])
    Session.Trial.insert([(1, 1), (1, 2), (2, 1)])
    with pytest.raises(dj.DataJointError):
        (Session.Trial & {"session": 1}).delete()  # would leave session 1 without trials
    assert len(Session.Trial()) == 3
    (Session.Trial & {"session": 1}).delete(force=True, safemode=False)
    assert len(Session.Trial()) == 1 and len(Session()) == 2


def test_schema_code_property_and_call(classic_schema) -> None:  # type: ignore[no-untyped-def]
    schema = classic_schema

    @schema
    class Animal(dj.Manual):
        definition = """
        animal : int
        """

    assert "class Animal(dj.Manual)" in schema.code
    assert schema.code() == schema.code


def test_diagram_context_and_table_operands(classic_schema) -> None:  # type: ignore[no-untyped-def]
    schema = classic_schema

    @schema
    class Mouse(dj.Manual):
        definition = """
        mouse : int
        """

    @schema
    class Scan(dj.Manual):
        definition = """
        -> Mouse
        scan : int
        """

    @schema
    class Note(dj.Manual):
        definition = """
        note : int
        """

    whole = dj.Di(schema, context=locals())
    assert whole.nodes == {Mouse().node_name, Scan().node_name, Note().node_name}
    assert (dj.ERD(Mouse) + Scan).nodes == {Mouse().node_name, Scan().node_name}
    assert (whole - Note).nodes == {Mouse().node_name, Scan().node_name}
    assert (whole * Scan()).nodes == {Scan().node_name}


def test_help_of_a_table_class(classic_schema) -> None:  # type: ignore[no-untyped-def]
    """pydoc asks every attribute of the class and of the tiers above it; a tier itself has
    no connection, and that must read as a missing attribute, not stop help()."""
    schema = classic_schema

    @schema
    class Probe(dj.Lookup):
        definition = """
        probe : varchar(16)
        """

    assert "class Probe" in pydoc.render_doc(Probe)
    assert "class Lookup" in pydoc.render_doc(dj.Lookup)
    with pytest.raises(dj.DataJointError, match="not declared"):
        dj.Manual.heading  # noqa: B018 (the attribute access is the test)
    assert not hasattr(dj.Manual, "full_table_name")


def test_schema_creation_errors_are_datajoint_errors(connection, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A database refusing CREATE SCHEMA (e.g. no privilege) raises a DataJointError naming
    the schema, not the driver's exception."""
    backend = connection.backend_impl

    def refused(sa_conn: Any, name: str) -> None:
        raise sa.exc.OperationalError("CREATE SCHEMA", {}, RuntimeError("refused here"))

    monkeypatch.setattr(backend, "create_schema", refused)
    name = unique_name()
    with pytest.raises(dj.DataJointError, match=name):
        dj.schema(name, connection=connection)


def test_classic_module_level_names(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    from datajoint.errors import ADAPTED_TYPE_SWITCH, FILEPATH_FEATURE_SWITCH
    from datajoint.jobs import ERROR_MESSAGE_LENGTH, TRUNCATION_APPENDIX
    from datajoint.settings import LOCALCONFIG
    from datajoint.utils import is_camel_case

    assert ADAPTED_TYPE_SWITCH == "DJ_SUPPORT_ADAPTED_TYPES"
    assert FILEPATH_FEATURE_SWITCH == "DJ_SUPPORT_FILEPATH_MANAGEMENT"
    assert ERROR_MESSAGE_LENGTH == 2047 and TRUNCATION_APPENDIX == "...truncated"
    assert is_camel_case("TableName") and not is_camel_case("table_name")
    assert not is_camel_case("Table_Name") and not is_camel_case("")
    monkeypatch.chdir(tmp_path)
    dj.config.save_local()
    assert (tmp_path / LOCALCONFIG).is_file()
    assert importlib.import_module("datajoint.jobs").JobTable is not None


def test_fetch_format_setting(classic_schema) -> None:  # type: ignore[no-untyped-def]
    """`dj.config["fetch_format"] = "frame"` makes fetch() of whole rows a DataFrame, as in
    classic; named attributes and dicts are unchanged."""
    import pandas as pd

    schema = classic_schema

    @schema
    class Cell(dj.Manual):
        definition = """
        cell : int
        ---
        size : float
        """

    Cell.insert([(1, 1.5), (2, 2.5)])
    assert isinstance(Cell.fetch(), np.ndarray)
    with dj.config(fetch_format="frame"):
        frame = Cell.fetch(order_by="cell")
        assert isinstance(frame, pd.DataFrame) and list(frame["size"]) == [1.5, 2.5]
        assert list(Cell.fetch("size", order_by="cell")) == [1.5, 2.5]
        assert Cell.fetch("KEY", order_by="cell") == [{"cell": 1}, {"cell": 2}]
        assert isinstance(Cell.fetch(as_dict=True), list)
    assert not isinstance(Cell.fetch(), pd.DataFrame)
    with pytest.raises(dj.DataJointError, match="fetch_format"):
        dj.config["fetch_format"] = "table"
    assert dj.config["fetch_format"] == "array"


def test_classic_tables_round_decimals_to_their_scale(classic_schema, make_schema) -> None:  # type: ignore[no-untyped-def]
    """Classic code stores computed floats (event times, say) in `decimal` columns and its
    MySQL server rounded them to the scale; classic tables do the same, on every backend,
    halves away from zero. Tables of datajoint_sa.Schema still refuse such a value."""
    from decimal import Decimal

    import pandas as pd

    schema = classic_schema

    @schema
    class Event(dj.Manual):
        definition = """
        event : int
        ---
        time : decimal(10,4)
        """

    Event.insert1((1, 12.34567))
    Event.insert([{"event": 2, "time": np.float64(1 / 3)},
                  {"event": 3, "time": Decimal("-1.23455")}])
    Event.insert(pd.DataFrame({"event": [4], "time": [0.00005]}))
    Event.update1({"event": 1, "time": 2.71828})
    assert dict(zip(*Event.fetch("event", "time", order_by="event"))) == {
        1: Decimal("2.7183"), 2: Decimal("0.3333"), 3: Decimal("-1.2346"),
        4: Decimal("0.0001")}
    with pytest.raises(dj.DataJointError, match="digits before the point"):
        Event.insert1((5, 1234567.0))

    core = make_schema()

    @core
    class Strict(datajoint_sa.Manual):
        definition = """
        item : int
        ---
        time : decimal(10,4)
        """

    with pytest.raises(dj.DataJointError, match="decimal places"):
        Strict.insert1((1, 12.34567))


def test_classic_fetch1_of_a_null_float_is_nan(classic_schema, make_schema) -> None:  # type: ignore[no-untyped-def]
    """Classic fetch1 read its values from a record array, where a NULL float is NaN:
    classic code tests them with np.isnan. Tables of datajoint_sa.Schema give None."""
    import math

    schema = classic_schema

    @schema
    class Unit(dj.Manual):
        definition = """
        unit : int
        ---
        snr = null : float
        amp = null : double
        label = null : varchar(8)
        count = null : int
        """

    Unit.insert1({"unit": 1})
    snr, amp, label, count = (Unit & {"unit": 1}).fetch1("snr", "amp", "label", "count")
    assert math.isnan(snr) and math.isnan(amp) and label is None and count is None
    assert math.isnan((Unit & "unit = 1").fetch1()["snr"])
    assert np.isnan(Unit.fetch("snr")[0])  # arrays did so already

    core = make_schema()

    @core
    class Plain(datajoint_sa.Manual):
        definition = """
        unit : int
        ---
        snr = null : float64
        """

    Plain.insert1({"unit": 1})
    assert (Plain & {"unit": 1}).fetch1("snr") is None
