"""Every attribute type of the SPEC round-trips exactly on every backend."""

from __future__ import annotations

import datetime
import decimal
import uuid

import pytest

import datajoint_sa as dj

# (type, values that must come back equal)
CASES = [
    ("bool", [True, False]),
    ("int8", [-128, 0, 127]),
    ("uint8", [0, 255]),
    ("int16", [-32768, 32767]),
    ("uint16", [0, 65535]),
    ("int32", [-(2**31), 2**31 - 1]),
    ("uint32", [0, 2**32 - 1]),
    ("int64", [-(2**63), 2**63 - 1]),
    ("uint64", [0, 2**63 - 1]),
    ("tinyint", [-128, 127]),
    ("tinyint unsigned", [0, 255]),
    ("smallint", [-32768, 32767]),
    ("smallint unsigned", [0, 65535]),
    ("mediumint", [-(2**23), 2**23 - 1]),
    ("int", [-(2**31), 2**31 - 1]),
    ("int unsigned", [0, 2**32 - 1]),
    ("bigint", [-(2**63), 2**63 - 1]),
    ("float64", [0.1, -1.5e300, 1 / 3]),
    ("double", [2.718281828459045]),
    ("decimal(8,3)", [decimal.Decimal("12345.678"), decimal.Decimal("-0.001")]),
    ("char(4)", ["abcd"]),
    ("varchar(64)", ["", "héllo wörld ✓", "quote ' and \" and \\ and ;--"]),
    ("text", ["x" * 70_000]),
    ("enum('low','mid','high')", ["low", "high"]),
    ("date", [datetime.date(1999, 12, 31), datetime.date(2024, 2, 29)]),
    ("datetime", [datetime.datetime(2024, 1, 2, 3, 4, 5)]),
    ("datetime(6)", [datetime.datetime(2024, 1, 2, 3, 4, 5, 123456)]),
    ("time", [datetime.time(13, 14, 15)]),
    ("timestamp", [datetime.datetime(2024, 5, 6, 7, 8, 9)]),
    ("uuid", [uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8"), uuid.uuid4()]),
    ("json", [{"a": [1, 2, {"b": None}], "c": "ü"}, [1, "two", 3.5], "text", 42]),
    ("bytes", [b"", b"\x00\x01\xff" * 1000]),
    ("longblob", [b"raw bytes are not a blob header"]),
]


def _ids(case: tuple[str, list[object]]) -> str:
    return case[0]


@pytest.mark.parametrize("case", CASES, ids=_ids)
def test_type_round_trips(schema: dj.Schema, case: tuple[str, list[object]]) -> None:
    declared, values = case

    class Thing(dj.Manual):
        definition = f"""
        id : int32
        ---
        value : {declared}
        """

    schema(Thing)
    rows = [{"id": i, "value": v} for i, v in enumerate(values)]
    Thing.insert(rows)
    fetched = Thing.fetch(as_dict=True, order_by="id")
    assert [r["value"] for r in fetched] == values
    assert Thing.heading["value"].type == dj.Heading(
        [dj.Attribute("value", declared)]).attributes[0].type_info.type


def test_float32_keeps_single_precision(schema: dj.Schema) -> None:
    @schema
    class Single(dj.Manual):
        definition = """
        id : int32
        ---
        x : float32
        """

    Single.insert1({"id": 1, "x": 1.5})
    Single.insert1({"id": 2, "x": 0.1})
    values = Single.fetch("x", order_by="id")
    assert values.dtype.name == "float32"
    assert values[0] == 1.5
    assert abs(values[1] - 0.1) < 1e-6


def test_nullable_and_defaults(schema: dj.Schema) -> None:
    @schema
    class Defaults(dj.Manual):
        definition = """
        id : int32
        ---
        a = null : int32
        b = 7 : int16
        c = "dflt" : varchar(10)
        d = 'single' : varchar(10)
        e = 2.5 : float64
        f = true : bool
        g = CURRENT_TIMESTAMP : datetime
        h = null : uuid
        i = null : json
        k = "mid" : enum('low','mid')
        """

    Defaults.insert1({"id": 1})
    row = Defaults.fetch1()
    assert row["a"] is None and row["b"] == 7 and row["c"] == "dflt" and row["d"] == "single"
    assert row["e"] == 2.5 and row["f"] is True and row["h"] is None and row["i"] is None
    assert row["k"] == "mid"
    assert isinstance(row["g"], datetime.datetime)
    assert abs((row["g"] - datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None))
               .total_seconds()) < 24 * 3600


@pytest.mark.parametrize("declared,bad", [
    ("uint8", 256), ("uint8", -1), ("int8", 128), ("int16", -32769), ("uint32", -1),
    ("int32", 2**31), ("enum('a','b')", "c"), ("varchar(3)", "abcd"),
])
def test_out_of_range_values_are_refused(schema: dj.Schema, declared: str, bad: object) -> None:
    class Ranged(dj.Manual):
        definition = f"""
        id : int32
        ---
        value : {declared}
        """

    schema(Ranged)
    with pytest.raises(dj.DataJointError):
        Ranged.insert1({"id": 1, "value": bad})
    assert len(Ranged()) == 0


def test_auto_increment(schema: dj.Schema) -> None:
    @schema
    class Counter(dj.Manual):
        definition = """
        counter_id : int32 auto_increment
        ---
        label : varchar(10)
        """

    Counter.insert([{"label": "a"}, {"label": "b"}])
    ids = sorted(Counter.fetch("counter_id").tolist())
    assert len(ids) == 2 and ids[0] < ids[1]
    Counter.insert1({"counter_id": 100, "label": "explicit"})
    assert 100 in Counter.fetch("counter_id").tolist()


def test_column_comments_record_the_declared_type(schema: dj.Schema) -> None:
    @schema
    class Commented(dj.Manual):
        definition = """
        # a table comment
        id : uint16   # the identifier
        ---
        u = null : uuid  # a uuid
        """

    connection = schema.connection
    backend = connection.backend_impl
    from datajoint_sa.heading import split_comment

    with connection.session(write=False) as sa_conn:
        stored = backend.read_comments(sa_conn, schema.database, Commented.table_name)
        if stored is None:
            import sqlalchemy as sa

            sa_schema, sa_name = backend.table_identity(schema.database, Commented.table_name)
            inspector = sa.inspect(sa_conn)
            table_comment = inspector.get_table_comment(sa_name, schema=sa_schema)["text"]
            columns = {c["name"]: c.get("comment") for c in
                       inspector.get_columns(sa_name, schema=sa_schema)}
        else:
            table_comment, columns = stored
    assert table_comment == "a table comment"
    assert split_comment(columns["id"]) == ("uint16", "the identifier")
    assert split_comment(columns["u"]) == ("uuid", "a uuid")
