"""DataFrames and Arrow tables inserted from their columns (frame_insert.py; PostgreSQL's
binary COPY) store exactly what the row path stores, and whatever the row path would convert
or refuse goes the row path, with its errors. Runs on every backend: where the backend
writes no columns, the same frames go the row path and must store the same."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import datajoint_sa as dj
from datajoint_sa import frame_insert
from datajoint_sa import insert as insert_module
from datajoint_sa.backends import pg_binary
from datajoint_sa.errors import DataJointError, DuplicateError, MissingAttributeError

pa = pytest.importorskip("pyarrow")
pd = pytest.importorskip("pandas")

DEFINITION = """
pid : int64
---
tiny : int8
word : uint16
mid = null : int32
big : uint32
f32 : float32
x = null : float64
flag : bool
label : varchar(40)
note = null : varchar(200)
body = null : varchar(4000)
"""
#: text a text or CSV COPY would have to escape or quote; binary COPY sends it as it is
TRICKY = ["", " ", ",", '"', "a,b", "line\nbreak", "cr\r\n", "tab\there", "back\\slash",
          "\\.", "\\N", "NULL", "é ü 雪 🎉", "  padded  "]
ROWS = 700


@pytest.fixture
def columnar_writes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Row counts of the inserts written from columns; small blocks, so there are several."""
    monkeypatch.setattr(frame_insert, "MIN_ROWS", 100)
    monkeypatch.setattr(pg_binary, "BLOCK_ROWS", 97)
    seen: list[int] = []
    original = frame_insert._write

    def spy(table: Any, columns: Any, length: int) -> None:
        seen.append(length)
        original(table, columns, length)

    monkeypatch.setattr(frame_insert, "_write", spy)
    return seen


def _frame(n: int = ROWS) -> Any:
    i = np.arange(n)
    return pd.DataFrame({
        "pid": i.astype(np.int64) * 3 - 2**40,
        "tiny": ((i % 256) - 128).astype(np.int8),
        "word": (i * 97 % 65536).astype(np.uint16),
        "mid": (i * 7919 - 2**31 // 2).astype(np.int64),
        "big": (2**32 - 1 - i).astype(np.uint32),
        "f32": i / 7 + 1e30 * (i == 5),
        "x": np.where(i % 11 == 0, np.nan, i * 1e-7 - 1e300 * (i == 3)),
        "flag": i % 3 == 0,
        "label": [TRICKY[k % len(TRICKY)] for k in range(n)],
        "note": [None if k % 9 == 0 else f"{TRICKY[k % 5]} {k}" for k in range(n)],
        "body": ["x" * (k * 13 % 4000) for k in range(n)],
    })


def _tables(schema: dj.Schema) -> tuple[Any, Any]:
    @schema
    class ByRows(dj.Manual):
        definition = DEFINITION

    @schema
    class ByColumns(dj.Manual):
        definition = DEFINITION

    return ByRows, ByColumns


def _same_tables(a: Any, b: Any) -> None:
    left, right = a.to_dicts(order_by="pid"), b.to_dicts(order_by="pid")
    assert len(left) == len(right)
    for x, y in zip(left, right):
        assert x.keys() == y.keys()
        for name in x:
            assert type(x[name]) is type(y[name]) and x[name] == y[name], (name, x, y)


def test_frames_and_arrow_tables_store_what_rows_store(
        schema: dj.Schema, columnar_writes: list[int]) -> None:
    ByRows, ByColumns = _tables(schema)
    frame = _frame()
    ByRows.insert(frame.to_dict("records"))
    assert not columnar_writes  # dicts take the row path
    ByColumns.insert(frame)
    from_columns = schema.connection.backend_impl.inserts_columns
    assert columnar_writes == ([ROWS] if from_columns else [])
    _same_tables(ByColumns, ByRows)
    assert ByColumns.fetch("f32", order_by="pid")[1] == np.float32(1 / 7)
    assert len(ByColumns & "x is null") == len(range(0, ROWS, 11))

    # an Arrow table: NULLs in an integer column, large_string text, chunked columns
    ByRows.delete(safemode=False)
    ByColumns.delete(safemode=False)
    columnar_writes.clear()
    table = pa.Table.from_pandas(frame, preserve_index=False)
    mids = pa.array([None if k % 4 == 0 else k * 7919 for k in range(ROWS)], pa.int64())
    table = table.set_column(table.schema.get_field_index("mid"), "mid", mids)
    table = table.set_column(table.schema.get_field_index("note"), "note",
                             table.column("note").cast(pa.large_string()))
    table = pa.concat_tables([table.slice(0, 300), table.slice(300)])
    ByRows.insert(table.to_pylist())
    ByColumns.insert(table)
    assert columnar_writes == ([ROWS] if from_columns else [])
    _same_tables(ByColumns, ByRows)
    assert len(ByColumns & "mid is null") == len(range(0, ROWS, 4))


def test_a_frame_of_some_attributes_gets_the_defaults(
        schema: dj.Schema, columnar_writes: list[int]) -> None:
    @schema
    class Sparse(dj.Manual):
        definition = """
        sid : int32
        ---
        level = 7 : int16
        note = null : varchar(10)
        """

    Sparse.insert(pd.DataFrame({"sid": np.arange(300, dtype=np.int32)}))
    assert Sparse.fetch("level").tolist() == [7] * 300
    assert set(Sparse.fetch("note").tolist()) == {None}
    # NaN where an attribute has a default means "the default": the row path does that
    Sparse.delete(safemode=False)
    columnar_writes.clear()
    levels = np.where(np.arange(300) % 2 == 0, np.nan, 3.0)
    Sparse.insert(pd.DataFrame({"sid": np.arange(300), "level": levels}))
    assert columnar_writes == []
    assert sorted(Sparse.fetch("level").tolist()) == [3] * 150 + [7] * 150


@pytest.mark.parametrize("column,dtype,value,error", [
    ("tiny", np.int16, 200, "outside the range"),  # fits the server's smallint
    ("word", np.int32, 65536, "outside the range"),
    ("big", np.int64, -1, "outside the range"),
    ("x", None, np.inf, "infinite"),
    ("f32", None, 1e39, "float32"),
    ("label", None, "x" * 41, "longer than 40"),
    ("label", None, "nul\x00here", "NUL"),
    ("label", object, b"bytes", "bytes are not text"),
    ("flag", object, None, "needs a value"),
])
def test_values_the_row_path_refuses_are_refused_the_same(
        schema: dj.Schema, columnar_writes: list[int], column: str, dtype: Any, value: Any,
        error: str) -> None:
    ByRows, ByColumns = _tables(schema)
    frame = _frame(300)
    if dtype is not None:  # numbers stay a numpy column: the checks are the columnar path's
        frame[column] = frame[column].astype(dtype)
    frame.loc[150, column] = value
    with pytest.raises(DataJointError, match=error) as by_rows:
        ByRows.insert(frame.to_dict("records"))
    with pytest.raises(DataJointError, match=error) as by_columns:
        ByColumns.insert(frame)
    assert type(by_columns.value) is type(by_rows.value)
    assert column in str(by_columns.value)
    assert len(ByColumns) == 0


def test_nan_in_a_required_float_is_a_missing_value(
        schema: dj.Schema, columnar_writes: list[int]) -> None:
    @schema
    class Needs(dj.Manual):
        definition = """
        nid : int32
        ---
        value : float64
        """

    values = np.arange(300.0)
    values[42] = np.nan
    with pytest.raises(MissingAttributeError, match="value"):
        Needs.insert(pd.DataFrame({"nid": np.arange(300), "value": values}))
    assert len(Needs) == 0


def test_a_failing_frame_insert_writes_nothing(
        schema: dj.Schema, columnar_writes: list[int]) -> None:
    ByRows, ByColumns = _tables(schema)
    frame = _frame(300)
    ByColumns.insert(frame.iloc[:10].to_dict("records"))
    with pytest.raises(DuplicateError):
        ByColumns.insert(frame)  # the first 10 keys are there already
    assert len(ByColumns) == 10
    assert columnar_writes == ([300] if schema.connection.backend_impl.inserts_columns
                               else [])


def test_auto_increment_continues_after_a_frame(
        schema: dj.Schema, columnar_writes: list[int]) -> None:
    @schema
    class Counted(dj.Manual):
        definition = """
        cid : int32 auto_increment
        ---
        label : varchar(10)
        """

    Counted.insert(pd.DataFrame({"cid": np.arange(1, 301), "label": ["a"] * 300}))
    Counted.insert1(dict(label="next"))
    assert (Counted & dict(label="next")).fetch1("cid") == 301


def test_negative_zero_is_stored_as_zero_by_every_path(
        schema: dj.Schema, columnar_writes: list[int], monkeypatch: pytest.MonkeyPatch
        ) -> None:
    """SQLite and MariaDB store -0.0 as 0.0, so every path stores 0.0 on every backend
    (values.positive_zeros): rows (streamed in pieces where the backend streams), frames
    (numpy float64 and float32), Arrow, update1. A blob is bytes and keeps the sign."""
    monkeypatch.setattr(insert_module, "STREAM_PIECE_ROWS", 100)
    streamed: list[int] = []
    original = insert_module._write_streamed

    def spy(table: Any, rows: Any, *args: Any) -> None:
        streamed.append(len(rows))
        original(table, rows, *args)

    monkeypatch.setattr(insert_module, "_write_streamed", spy)

    @schema
    class Signed(dj.Manual):
        definition = """
        sid : int32
        ---
        x = null : float64
        y : float32
        """

    @schema
    class Blobbed(dj.Manual):
        definition = """
        bid : int32
        ---
        b : <blob>
        """

    n = 300
    x = np.where(np.arange(n) % 3 == 0, -0.0, np.arange(n) - 150.0)
    x[7] = np.nan  # a NULL among the zeros
    y = np.where(np.arange(n) % 2 == 0, np.float32(-0.0), np.float32(2.5))
    frame = pd.DataFrame({"sid": np.arange(n, dtype=np.int32), "x": x, "y": y})
    assert frame["y"].dtype == np.float32
    assert (np.signbit(x) & (x == 0)).sum() == 100

    def negative_zeros() -> int:
        xs, ys = Signed.fetch("x", "y", order_by="sid")
        arrow = Signed.to_arrow(order_by="sid")
        assert (xs == 0).sum() + (ys == 0).sum() > 0  # the zeros are there
        return int(np.signbit(xs[xs == 0]).sum() + np.signbit(ys[ys == 0]).sum()
                   + np.signbit(arrow.column("y").to_numpy()).sum())

    Signed.insert(frame)
    assert columnar_writes == ([n] if schema.connection.backend_impl.inserts_columns else [])
    assert (np.signbit(frame["x"]) & (frame["x"] == 0)).sum() == 100  # the caller's frame
    assert negative_zeros() == 0                                        # is left as it was
    assert Signed.fetch("x", order_by="sid")[1] == -149.0  # other negatives stay negative
    assert len(Signed & "x is null") == 1

    for rows in (pa.Table.from_pandas(frame, preserve_index=False),
                 frame.to_dict("records")):  # Arrow; numpy scalars row by row
        Signed.delete(safemode=False)
        Signed.insert(rows)
        assert len(Signed) == n and negative_zeros() == 0
    assert streamed == ([n] if schema.connection.backend_impl.bulk_streams else [])

    Signed.delete(safemode=False)
    Signed.insert([(1, -0.0, -0.0), (2, None, np.float32(-0.0))])
    Signed.update1(dict(sid=2, x=-0.0))
    assert negative_zeros() == 0 and (Signed.fetch("x") == 0).all()
    Blobbed.insert1((1, np.array([-0.0, 1.0])))
    assert np.signbit(Blobbed.fetch1("b")[0])
