"""The columnar paths return exactly what the row paths return, on every backend:
`fetch(format="arrow" | "polars")`, DataFrames built from Arrow (ADBC on PostgreSQL and
SQLite), streamed batches, and inserts of Arrow tables and DataFrames (PostgreSQL's COPY) --
with NULLs, blobs, decimals, datetimes, uuids and json."""

from __future__ import annotations

import datetime as dt
import uuid
from decimal import Decimal
from typing import Any

import numpy as np
import pytest

import datajoint_sa as dj
from datajoint_sa import columnar
from datajoint_sa import fetch as fetching
from datajoint_sa.backends import adbc

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")

DEFINITION = """
vid : int32
---
amount = null : decimal(8,3)
big = null : uint64
small = null : uint8
count = null : int64
f32 = null : float32
x = null : float64
flag = null : bool
taken = null : datetime(6)
day = null : date
uid = null : uuid
label = null : varchar(20)
code = null : char(4)
color = null : enum('red', 'green')
raw = null : bytes
doc = null : json
data = null : <blob>
"""
#: attributes whose values Arrow holds (a blob's numpy arrays it does not)
ARROW_ATTRS = ["vid", "amount", "big", "small", "count", "f32", "x", "flag", "taken", "day",
               "uid", "label", "code", "color", "raw"]


def _row(i: int) -> dict[str, Any]:
    return dict(vid=i, amount=Decimal(i) / 8 - Decimal("0.125"), big=2**63 - 1 - i,
                small=i % 256, count=-(2**62) + i, f32=i / 3, x=i * 1e-3 - 1e300 * (i == 1),
                flag=bool(i % 2), taken=dt.datetime(2024, 5, 6, 7, 8, 9, i),
                day=dt.date(2020, 1, 1) + dt.timedelta(days=i), uid=uuid.UUID(int=i * 7919),
                label=f"label {i}", code=f"c{i % 100}", color=("red", "green")[i % 2],
                raw=bytes([i % 256]) * (i % 3), doc={"i": i, "list": [i, None]},
                data=np.arange(i % 5 + 1.0).reshape(1, -1))


def _table(schema: dj.Schema, rows: int = 40) -> Any:
    @schema
    class Values(dj.Manual):
        definition = DEFINITION

    # row 0 is all NULL; the others carry a value of every attribute
    Values.insert([dict(vid=0), *(_row(i) for i in range(1, rows))])
    return Values


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(type(a) is type(b) and a.dtype == b.dtype and np.array_equal(a, b))
    return bool(type(a) is type(b) and a == b)


@pytest.fixture
def reads(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each columnar read came from the ADBC driver (True) or not (None: rows)."""
    seen: list[bool] = []
    original = adbc.read

    def spy(*args: Any) -> Any:
        table = original(*args)
        seen.append(table is not None)
        return table

    monkeypatch.setattr(adbc, "read", spy)
    return seen


def _expect_driver(schema: dj.Schema, reads: list[bool]) -> None:
    """PostgreSQL reads through ADBC (when installed). SQLite never does (its ADBC driver
    carries a second SQLite library, whose file locks the first one's close would release);
    MySQL has no reader."""
    if schema.connection.backend in ("mysql", "sqlite"):
        assert reads == []
    elif _have_adbc(schema.connection.backend):
        assert reads and all(reads), reads


def _have_adbc(backend: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(f"adbc_driver_{backend}") is not None


def test_arrow_equals_the_row_fetch(schema: dj.Schema, reads: list[bool]) -> None:
    Values = _table(schema)
    query = Values.proj(*ARROW_ATTRS[1:])
    table = query.fetch(format="arrow", order_by="vid")
    _expect_driver(schema, reads)
    plain = query.to_dicts(order_by="vid")
    assert table.column_names == ARROW_ATTRS
    for name in ARROW_ATTRS:
        values = table.column(name).to_pylist()
        expected = [r[name] for r in plain]
        assert all(_same(a, b) for a, b in zip(values, expected)), (name, values, expected)
    # the same Arrow types on every backend, whatever the driver gave
    assert table.schema.field("amount").type == pa.decimal128(8, 3)
    assert table.schema.field("big").type == pa.uint64()
    assert table.schema.field("small").type == pa.uint8()
    assert table.schema.field("f32").type == pa.float32()
    assert table.schema.field("taken").type == pa.timestamp("us")
    assert table.schema.field("uid").type == pa.uuid()
    assert table.schema.field("flag").type == pa.bool_()


def test_arrow_follows_restrictions_order_and_limits(schema: dj.Schema,
                                                     reads: list[bool]) -> None:
    Values = _table(schema)
    query = (Values & "vid > 3" & [{"label": "label 5"}, {"color": "green"}]).proj(
        "label", "amount")
    table = query.fetch(format="arrow", order_by="amount DESC", limit=4, offset=1)
    plain = query.fetch(as_dict=True, order_by="amount DESC", limit=4, offset=1)
    assert table.to_pylist() == plain
    assert len(plain) == 4
    _expect_driver(schema, reads)
    keys = query.fetch("KEY", format="arrow", order_by="vid")
    assert keys.column_names == ["vid"]
    assert keys.column("vid").to_pylist() == [k["vid"] for k in query.keys(order_by="vid")]


def test_frame_from_arrow_equals_the_row_frame(schema: dj.Schema, reads: list[bool]) -> None:
    Values = _table(schema)
    for query in (Values(), Values & "vid > 0", Values & "vid = 0"):  # fetch.py takes queries
        fast = query.fetch(format="frame", order_by="vid")
        rows = fetching.fetch(query, format="frame", order_by="vid")
        pd.testing.assert_frame_equal(fast.drop(columns="data"), rows.drop(columns="data"))
        assert all(_same(a, b) for a, b in zip(fast["data"], rows["data"]))
        assert list(fast.index) == list(rows.index)
    _expect_driver(schema, reads)
    # one attribute: the key comes along as the index
    pd.testing.assert_frame_equal(Values.fetch("label", format="frame"),
                                  fetching.fetch(Values(), "label", format="frame"))


def test_polars_equals_the_row_fetch(schema: dj.Schema) -> None:
    pl = pytest.importorskip("polars")
    Values = _table(schema)
    frame = Values.to_polars(order_by="vid")
    assert isinstance(frame, pl.DataFrame) and frame.columns == Values.heading.names
    plain = Values.to_dicts(order_by="vid")
    for name in ("vid", "amount", "big", "count", "x", "taken", "day", "label", "raw"):
        assert frame[name].to_list() == [r[name] for r in plain], name
    assert all(_same(a, b) for a, b in zip(frame["data"].to_list(),
                                           [r["data"] for r in plain]))
    assert frame["uid"].to_list() == [r["uid"] for r in plain]


def test_inside_a_transaction_the_session_reads(schema: dj.Schema,
                                                reads: list[bool]) -> None:
    Values = _table(schema, rows=3)
    with schema.connection.transaction:
        Values.insert1(_row(50))
        table = Values.proj("label").fetch(format="arrow", order_by="vid")
        assert reads == []  # a second session would not see the uncommitted row
        assert 50 in table.column("vid").to_pylist()
        frame = Values.to_pandas()
        assert 50 in frame.index
    assert reads == []


def test_refusals_name_the_attribute(schema: dj.Schema) -> None:
    Values = _table(schema, rows=3)
    with pytest.raises(dj.DataJointError, match="attribute data"):
        Values.fetch(format="arrow")  # numpy arrays: Arrow cannot hold them as they are
    with pytest.raises(dj.DataJointError, match="format"):
        Values.fetch(format="feather")
    with pytest.raises(dj.DataJointError, match="as_dict"):
        Values.fetch(format="arrow", as_dict=True)
    with pytest.raises(dj.DataJointError, match="batch_size"):
        Values.fetch(format="arrow", batch_size=0)


def test_arrow_batches_concatenate_to_the_whole(schema: dj.Schema) -> None:
    Values = _table(schema)
    query = Values.proj(*ARROW_ATTRS[1:])
    batches = list(query.fetch(format="arrow", order_by="vid", batch_size=15))
    assert [b.num_rows for b in batches] == [15, 15, 10]
    whole = query.fetch(format="arrow", order_by="vid")
    assert pa.concat_tables(batches).equals(whole)


def test_inserting_arrow_and_frames_equals_inserting_rows(schema: dj.Schema) -> None:
    """Arrow tables and DataFrames (COPY on PostgreSQL above 200 rows) store what rows
    inserted one by one store."""

    @schema
    class ByRow(dj.Manual):
        definition = DEFINITION

    @schema
    class ByArrow(dj.Manual):
        definition = DEFINITION

    @schema
    class ByFrame(dj.Manual):
        definition = DEFINITION

    rows = [dict(vid=0), *(_row(i) for i in range(1, 250))]
    for row in rows:
        ByRow.insert1(row)
    expected = ByRow.to_dicts(order_by="vid")
    source = ByRow.proj(*ARROW_ATTRS[1:])
    ByArrow.insert(source.fetch(format="arrow"))  # blob and json stay NULL in ByArrow
    ByFrame.insert(ByRow.to_pandas())
    for table, attrs in ((ByArrow, ARROW_ATTRS), (ByFrame, ByRow.heading.names)):
        got = table.to_dicts(order_by="vid")
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            assert all(_same(a[n], b[n]) for n in attrs), (table, a, b)


def test_arrow_type_of_each_category(schema: dj.Schema) -> None:
    Values = _table(schema, rows=1)
    heading = Values.heading
    assert columnar.arrow_type(heading["count"]) == pa.int64()
    assert columnar.arrow_type(heading["label"]) == pa.string()
    assert columnar.arrow_type(heading["data"]) is None  # a codec: its values decide
    assert columnar.arrow_type(heading["doc"]) is None


def test_read_arrow_hook_declines_what_it_cannot_read(connection: dj.Connection) -> None:
    """The hook returns None (the caller reads rows) where no ADBC session may read the
    data: SQLite (a second SQLite library in the process breaks the file locks), and
    backends without a columnar driver."""
    import sqlalchemy as sa

    from datajoint_sa.backends import get_backend

    select = sa.select(sa.literal(1).label("one"))
    dialect = connection.engine.dialect
    assert get_backend("sqlite").read_arrow(sa.make_url("sqlite://"), select, dialect) is None
    assert get_backend("mysql").read_arrow(connection.url, select, dialect) is None
    table = connection.backend_impl.read_arrow(connection.url, select, dialect)
    if connection.backend == "postgresql" and _have_adbc(connection.backend):
        assert table.column("one").to_pylist() == [1]
    else:
        assert table is None


@pytest.mark.parametrize("batch", [7, 13, 20_000])
def test_frames_and_arrow_read_in_batches_equal_the_row_fetch(
        schema: dj.Schema, reads: list[bool], monkeypatch: pytest.MonkeyPatch,
        batch: int) -> None:
    """Without a columnar driver (MySQL, SQLite, PostgreSQL inside a transaction) frames
    and Arrow tables are read in batches into Arrow and numpy columns: the values are the
    row fetch's, NULLs included, whichever batch a NULL falls in (row 0 is all NULL: first
    in one order, last in the other, where the numeric columns already hold numbers).
    MySQL reads the rows in its own loop (`fetch_rows`); 13 ends a result exactly at a
    batch's end (39 rows after the first), and the session goes on to the next query."""
    from datajoint_sa.backends import mysql

    monkeypatch.setattr(columnar, "ROW_BATCH", batch)
    own_loop: list[bool] = []
    plain_streamed = mysql._plain_streamed
    monkeypatch.setattr(mysql, "_plain_streamed", lambda cursor: own_loop.append(
        plain_streamed(cursor) is not None) or plain_streamed(cursor))
    streamed: list[int] = []
    original = columnar._streamed

    def spy(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        streamed.append(result.length)
        return result

    monkeypatch.setattr(columnar, "_streamed", spy)
    Values = _table(schema)
    query = Values.proj(*ARROW_ATTRS[1:], "doc")  # no codec: blobs take the row path

    def check() -> None:
        for order in ("vid", "vid DESC"):
            for part in (query, query & "vid > 0", query & "vid < 3"):
                fast = part.fetch(format="frame", order_by=order)
                rows = fetching.fetch(part, format="frame", order_by=order)
                pd.testing.assert_frame_equal(fast, rows)
            empty = query & "vid < 0"  # no values: the columns' dtypes are the Arrow types'
            assert list(empty.to_pandas().columns) == list(ARROW_ATTRS[1:]) + ["doc"]
            table = query.fetch(format="arrow", order_by=order)
            plain = query.to_dicts(order_by=order)
            for name in ARROW_ATTRS:
                values = table.column(name).to_pylist()
                assert all(_same(a, b) for a, b in zip(values, [r[name] for r in plain])), name

    if schema.connection.backend == "postgresql":
        with schema.connection.transaction:  # the session reads: no ADBC
            check()
    else:
        check()
    assert reads == [] and streamed and max(streamed) == 40
    assert any(own_loop) if schema.connection.backend == "mysql" else not own_loop


def test_a_frame_of_blobs_is_read_whole(schema: dj.Schema,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Codecs may query the database while decoding, which a streamed result forbids
    (MySQL): a frame with a blob comes from the row fetch where no columnar driver reads it
    (MySQL; every backend inside a transaction), its arrays intact either way."""
    monkeypatch.setattr(columnar, "_streamed", None)  # would fail if called
    Values = _table(schema, rows=5)
    outside = Values.proj("data").to_pandas(order_by="vid")
    with schema.connection.transaction:  # the session reads: the row fetch on every backend
        assert not columnar.columnar_reader(Values())
        inside = Values.proj("data").to_pandas(order_by="vid")
    for frame in (outside, inside):
        assert frame["data"].iloc[0] is None
        assert _same(frame["data"].iloc[3], _row(3)["data"])


PLAIN = """
pid : int32
---
small = null : int16
count = null : int64
f32 = null : float32
x = null : float64
flag = null : bool
taken = null : datetime(6)
day = null : date
label = null : varchar(40)
note = null : varchar(200)
"""
#: text CSV must quote and PostgreSQL's text COPY must escape
TRICKY = ["", " ", ",", '"', '""', "a,b", 'say "hi"', "line\nbreak", "cr\r\n", "tab\there",
          "back\\slash", "\\.", "\\N", "NULL", "é ü 雪 🎉", "  padded  "]


def _plain_row(i: int) -> dict[str, Any]:
    return dict(pid=i, small=-(i % 300), count=2**62 - i, f32=i / 7, x=i * 1e-7 - 1e300 * (i == 3),
                flag=bool(i % 3), taken=dt.datetime(2001, 2, 3, 4, 5, 6, i),
                day=dt.date(1999, 12, 31) + dt.timedelta(days=i),
                label=TRICKY[i % len(TRICKY)], note=f"{TRICKY[i % 5]} {i}")


def test_bulk_inserts_of_plain_columns_store_what_rows_store(
        schema: dj.Schema, monkeypatch: pytest.MonkeyPatch) -> None:
    """Bulk inserts of numbers, booleans, text, dates and datetimes (PostgreSQL: COPY as CSV
    written by Arrow, in blocks; MySQL: multi-row INSERTs whose VALUES text Arrow writes)
    store exactly what rows inserted one by one store: NULLs, empty strings, quotes,
    separators, line breaks and backslashes included."""
    from datajoint_sa.backends import mysql, postgresql

    monkeypatch.setattr(postgresql, "CSV_ROWS", 64)  # several blocks
    monkeypatch.setattr(mysql, "ARROW_MIN_ROWS", 100)
    monkeypatch.setattr(mysql, "STATEMENT_BYTES", 3000)  # several statements
    blocks: list[bool] = []
    original = postgresql._csv_blocks
    original_text = mysql._insert_as_text

    def spy(*args: Any) -> Any:
        result = original(*args)
        blocks.append(result is not None)
        return result

    def spy_text(*args: Any) -> Any:
        result = original_text(*args)
        blocks.append(result)
        return result

    monkeypatch.setattr(postgresql, "_csv_blocks", spy)
    monkeypatch.setattr(mysql, "_insert_as_text", spy_text)

    @schema
    class ByRow(dj.Manual):
        definition = PLAIN

    @schema
    class ByFrame(dj.Manual):
        definition = PLAIN

    @schema
    class ByDicts(dj.Manual):
        definition = PLAIN

    rows = [dict(pid=0), *(_plain_row(i) for i in range(1, 300))]
    rows[5]["label"] = None  # a NULL among the strings
    for row in rows:
        ByRow.insert1(row)
    expected = ByRow.to_dicts(order_by="pid")
    assert [r["label"] for r in expected[1:len(TRICKY)]] == \
        [None if i == 5 else TRICKY[i] for i in range(1, len(TRICKY))]
    frame = pd.DataFrame(rows)  # integers with a NULL: pandas' nullable types keep them exact
    frame["count"] = pd.array([r.get("count") for r in rows], dtype="Int64")
    frame["small"] = pd.array([r.get("small") for r in rows], dtype="Int16")
    ByFrame.insert(frame)
    ByDicts.insert(rows)
    for table in (ByFrame, ByDicts):
        got = table.to_dicts(order_by="pid")
        assert len(got) == len(expected)
        for a, b in zip(got, expected):
            assert all(_same(a[n], b[n]) for n in ByRow.heading.names), (a, b)
    # skip and replace (PostgreSQL: COPY into a scratch table, then INSERT ... SELECT)
    ByDicts.insert(rows, skip_duplicates=True)
    ByDicts.insert([dict(r, note="changed") for r in rows[1:260]], replace=True)
    notes = ByDicts.to_dicts(order_by="pid")
    assert [r["note"] for r in notes] == [None] + ["changed"] * 259 + \
        [r["note"] for r in expected[260:]]
    if schema.connection.backend in ("postgresql", "mysql"):
        assert blocks and all(blocks), blocks
