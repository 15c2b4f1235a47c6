"""Bulk inserts whose rows reach the backend as columns (backends/rows.py ColumnRows).

Rows given as dicts are picked into one list per attribute; the checks and the bulk paths
(PostgreSQL's CSV COPY, MySQL's Arrow-written VALUES, SQLite's multi-row INSERT) read those
lists. These tests insert enough rows to take every bulk path (more than 1,000) and read
every value back exactly, or see it refused with nothing written. They run on SQLite,
PostgreSQL and MySQL through the `schema` fixture; the first ones need no database.
"""

from __future__ import annotations

import datetime
import decimal
from types import SimpleNamespace

import pyarrow as pa
import pytest

import datajoint_sa as dj
from datajoint_sa.backends.rows import (
    ColumnRows,
    arrow_batch,
    as_tuples,
    columns_of,
    flat_values,
    reordered,
)
from datajoint_sa.errors import DataJointError, MissingAttributeError

#: past every backend's bulk threshold (PostgreSQL COPY 200, MySQL Arrow VALUES 1,000)
ROWS = 1_200


# ----------------------------------------------------------------------- ColumnRows itself

def test_column_rows_read_as_row_tuples() -> None:
    rows = ColumnRows([[1, 2, 3], ["a", "b", "c"]], 3)
    assert len(rows) == 3
    assert list(rows) == [(1, "a"), (2, "b"), (3, "c")]
    assert rows[0] == (1, "a") and rows[-1] == (3, "c")
    with pytest.raises(IndexError):
        rows[3]
    with pytest.raises(IndexError):
        rows[-4]
    part = rows[1:]
    assert isinstance(part, ColumnRows) and len(part) == 2 and list(part) == [(2, "b"), (3, "c")]
    assert len(rows[5:9]) == 0 and list(rows[5:9]) == []
    assert list(rows[::2]) == [(1, "a"), (3, "c")]
    assert as_tuples(rows) == [(1, "a"), (2, "b"), (3, "c")]
    assert columns_of(rows, 2) is rows.columns
    assert columns_of([(1, "a"), (2, "b")], 2) == [[1, 2], ["a", "b"]]
    assert columns_of([], 2) == [[], []]


def test_flat_values_and_reordering_match_the_tuple_forms() -> None:
    tuples = [(1, 0.5, "x"), (2, 1.5, "y"), (3, None, "z")]
    rows = ColumnRows([list(c) for c in zip(*tuples)], 3)
    assert flat_values(rows, 3) == flat_values(tuples, 3) == [
        1, 0.5, "x", 2, 1.5, "y", 3, None, "z"]
    assert list(reordered(rows, [2, 0])) == reordered(tuples, [2, 0]) == [
        ("x", 1), ("y", 2), ("z", 3)]
    assert list(ColumnRows([], 2)) == [(), ()]


def test_arrow_batch_is_the_same_from_columns_and_from_tuples() -> None:
    tuples = [(1, 0.1, "a,b"), (2, None, None), (3, -2.5e300, "é\"\n")]
    types = [pa.int64(), pa.float64(), pa.string()]
    from_columns = arrow_batch(pa, ColumnRows([list(c) for c in zip(*tuples)], 3), types)
    assert from_columns.equals(arrow_batch(pa, tuples, types))
    with pytest.raises((pa.ArrowException, TypeError, ValueError)):
        arrow_batch(pa, ColumnRows([[1, "two"]], 2), [pa.int64()])


# ----------------------------------------------------------------------- through the backends

def declare(schema: dj.Schema) -> SimpleNamespace:
    @schema
    class Sample(dj.Manual):
        definition = """
        sample_id : int32
        ---
        x : float64
        label : varchar(40)
        small = null : int8
        note = "none" : varchar(20)
        taken = null : datetime(6)
        """

    @schema
    class Priced(dj.Manual):  # a decimal: PostgreSQL's write_row COPY, not Arrow's CSV
        definition = """
        item : int32
        ---
        amount = null : decimal(8, 3)
        name : varchar(20)
        """

    return SimpleNamespace(Sample=Sample, Priced=Priced)


@pytest.fixture
def t(schema: dj.Schema) -> SimpleNamespace:
    return declare(schema)


_TEXT = ["plain", "", "comma, here", 'quote " here', "back\\slash", "new\nline", "tab\there",
         "café ∑ 日本", "'single'", "NULL", "\\N", "a" * 40, " padded "]
_FLOATS = [0.1, -3.0, 1e-300, 2.5e300, 1 / 3, 2.0 ** 53 + 2, -7.25, 123456789.123456789]


def _rows(count: int) -> list[dict]:
    return [{"label": _TEXT[i % len(_TEXT)], "sample_id": i,  # keys not in heading order
             "x": _FLOATS[i % len(_FLOATS)] * (1 + i % 3),
             "small": [-128, 127, None, 0][i % 4],
             "taken": datetime.datetime(2020, 1, 1, 12, 0, 0, i % 1_000_000)}
            for i in range(count)]


def _read(table: type) -> dict[int, dict]:
    return {row["sample_id"]: row for row in table().to_dicts()}


def _assert_stored(table: type, rows: list[dict]) -> None:
    """Every row read back with the same values of the same types (note: its default)."""
    got = _read(table)
    assert len(got) == len(rows)
    for row in rows:
        back = got[row["sample_id"]]
        for name, value in row.items():
            assert back[name] == value and type(back[name]) is type(value), (name, row)
        assert back["note"] == "none"


def test_dict_rows_round_trip_exactly(t: SimpleNamespace) -> None:
    rows = _rows(ROWS)
    t.Sample.insert(rows)
    _assert_stored(t.Sample, rows)


def test_rows_the_arrow_paths_cannot_take_round_trip(t: SimpleNamespace) -> None:
    rows = [{"item": i, "amount": None if i % 5 == 0 else decimal.Decimal(i) / 1000,
             "name": _TEXT[i % len(_TEXT)][:20]} for i in range(ROWS)]
    t.Priced.insert(rows)
    got = {r["item"]: r for r in t.Priced().to_dicts()}
    assert all(got[r["item"]] == r for r in rows)


def test_rows_taking_a_default_split_into_groups(t: SimpleNamespace) -> None:
    rows = [{"sample_id": i, "x": float(i), "label": f"l{i}",
             "note": None if i % 3 else f"n{i}"} for i in range(ROWS)]
    t.Sample.insert(rows)
    got = _read(t.Sample)
    assert [got[i]["note"] for i in range(6)] == ["n0", "none", "none", "n3", "none", "none"]
    assert all(got[i]["small"] is None for i in range(ROWS))


def test_chunks_of_column_rows(t: SimpleNamespace) -> None:
    t.Sample.insert(_rows(100), chunk_size=7)
    assert len(t.Sample()) == 100
    assert _read(t.Sample)[99]["label"] == _rows(100)[99]["label"]


@pytest.mark.parametrize("mode", ["skip", "replace"])
def test_skip_and_replace_of_column_rows(t: SimpleNamespace, mode: str) -> None:
    t.Sample.insert(_rows(50))
    again = [{**row, "label": "changed"} for row in _rows(ROWS)]
    t.Sample.insert(again, **{"skip_duplicates" if mode == "skip" else "replace": True})
    got = _read(t.Sample)
    assert len(got) == ROWS
    assert got[10]["label"] == ("changed" if mode == "replace" else _rows(50)[10]["label"])
    assert got[ROWS - 1]["label"] == "changed"


def test_large_finite_floats_whose_sum_overflows_are_kept(t: SimpleNamespace) -> None:
    rows = [{"sample_id": i, "x": 1.5e308, "label": "big"} for i in range(40)]
    t.Sample.insert(rows)
    assert {r["x"] for r in t.Sample().to_dicts()} == {1.5e308}


@pytest.mark.parametrize("name, value, says", [
    ("small", 128, "small"),
    ("small", True, None),  # a bool in an int column is stored as 1
    ("label", "a" * 41, "longer than 40"),
    ("label", "bad \ud800 surrogate", "Unicode"),
    ("label", "nul\x00inside", "NUL"),
    ("label", b"bytes", "bytes"),
    ("x", float("inf"), "infinite"),
    ("x", float("nan"), "x"),
    ("x", "not a number", "x"),
])
def test_one_bad_value_among_many_is_refused_naming_the_attribute(
        t: SimpleNamespace, name: str, value: object, says: str | None) -> None:
    rows = _rows(ROWS)
    rows[777][name] = value
    if says is None:
        t.Sample.insert(rows)
        assert _read(t.Sample)[777][name] == 1
        return
    with pytest.raises(DataJointError) as raised:
        t.Sample.insert(rows)
    assert says in str(raised.value) and name in str(raised.value)
    if name == "x" and value != value:
        assert isinstance(raised.value, MissingAttributeError)
    assert len(t.Sample()) == 0


def test_csv_copy_in_batches_and_pieces_round_trips(t: SimpleNamespace,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """PostgreSQL's COPY converts up to CSV_ROWS rows at a time and sends their CSV text in
    pieces of CSV_PIECE_ROWS: small sizes here cross every boundary (elsewhere the same
    insert takes the backend's own path)."""
    from datajoint_sa.backends import postgresql

    monkeypatch.setattr(postgresql, "CSV_ROWS", 500)
    monkeypatch.setattr(postgresql, "CSV_PIECE_ROWS", 7)
    rows = _rows(ROWS)
    t.Sample.insert(rows)
    got = _read(t.Sample)
    assert len(got) == ROWS
    assert all(got[r["sample_id"]]["label"] == r["label"] and got[r["sample_id"]]["x"] == r["x"]
               for r in rows)
