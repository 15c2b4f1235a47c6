"""Large plain inserts checked and sent piece by piece (insert._write_streamed).

Where the backend's bulk path streams (PostgreSQL's COPY), a list of at least two pieces of
rows, outside a transaction, is checked and converted a piece at a time and each piece is
sent as it is ready, in one transaction and one load. These tests shrink the piece so that
1,200 rows make four pieces, and hold the streamed insert to the plain one: the same stored
values, the same errors with the same row numbers, nothing written on any failure. They run
on SQLite, PostgreSQL and MySQL; where the bulk path does not stream, they check that the
insert is not split at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

import datajoint_sa as dj
from datajoint_sa import insert as insert_module
from datajoint_sa.backends.base import Backend
from datajoint_sa.errors import DataJointError, DuplicateError, MissingAttributeError

from .test_insert_columns import ROWS, _assert_stored, _read, _rows, declare

PIECE = 300  # ROWS is four pieces


@pytest.fixture
def t(schema: dj.Schema, monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    monkeypatch.setattr(insert_module, "STREAM_PIECE_ROWS", PIECE)
    return declare(schema)


@pytest.fixture
def pieces(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The sizes of the pieces each streamed insert sent, as the backend received them."""
    sizes: list[int] = []

    def counting(method: Any) -> Any:
        def counted(self: Backend, conn: Any, table: Any, columns: Any, given: Any) -> None:
            def seen() -> Iterator[Any]:
                for piece in given:
                    sizes.append(len(piece))
                    yield piece
            method(self, conn, table, columns, seen())
        return counted

    for backend in (Backend, *Backend.__subclasses__()):
        if "insert_pieces" in vars(backend):
            monkeypatch.setattr(backend, "insert_pieces",
                                counting(vars(backend)["insert_pieces"]))
    return sizes


def _streams(t: SimpleNamespace) -> bool:
    return t.Sample().connection.backend_impl.bulk_streams


def _message(t: SimpleNamespace, rows: list[dict], monkeypatch: pytest.MonkeyPatch) -> str:
    """The error the insert raises when it is not streamed (pieces as large as the rows)."""
    monkeypatch.setattr(insert_module, "STREAM_PIECE_ROWS", 10 * len(rows))
    with pytest.raises(DataJointError) as raised:
        t.Sample.insert(rows)
    monkeypatch.setattr(insert_module, "STREAM_PIECE_ROWS", PIECE)
    return str(raised.value)


def test_streamed_rows_round_trip_exactly(t: SimpleNamespace, pieces: list[int]) -> None:
    rows = _rows(ROWS)
    t.Sample.insert(rows)
    assert pieces == ([PIECE] * 4 if _streams(t) else [])
    _assert_stored(t.Sample, rows)


def test_sequence_rows_stream_too(t: SimpleNamespace, pieces: list[int]) -> None:
    rows = [(i, i / 4, f"l{i}", i % 100, f"n{i % 9}", None) for i in range(ROWS + 5)]
    t.Sample.insert(rows)
    assert pieces == ([PIECE] * 4 + [5] if _streams(t) else [])
    got = _read(t.Sample)
    assert [got[i]["x"] for i in (0, 1, ROWS + 4)] == [0.0, 0.25, (ROWS + 4) / 4]
    assert got[ROWS + 4]["note"] == f"n{(ROWS + 4) % 9}" and got[7]["taken"] is None


def test_numbers_for_text_in_a_later_piece_are_stored_as_their_text(
        t: SimpleNamespace, pieces: list[int]) -> None:
    """The first piece decides how the load is written (Arrow's CSV on PostgreSQL); a later
    piece's numbers for a text attribute are text by then too (they once failed the COPY
    with Arrow's own error)."""
    rows = _rows(ROWS)
    for i in (1000, 1001, 1002):
        rows[i]["label"] = [7, 0.1 + 0.2, -12][i - 1000]
    t.Sample.insert(rows)
    assert pieces == ([PIECE] * 4 if _streams(t) else [])
    got = _read(t.Sample)
    assert [got[i]["label"] for i in (999, 1000, 1001, 1002)] == [
        rows[999]["label"], "7", "0.30000000000000004", "-12"]


def test_a_bad_value_in_a_later_piece_is_refused_as_before(
        t: SimpleNamespace, pieces: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _rows(ROWS)
    rows[1000]["label"] = "x" * 41  # the fourth piece: three were sent already
    expected = _message(t, rows, monkeypatch)
    assert "label" in expected
    with pytest.raises(DataJointError) as raised:
        t.Sample.insert(rows)
    assert str(raised.value) == expected
    assert len(t.Sample()) == 0
    t.Sample.insert(_rows(ROWS))  # the session is clean again
    assert len(t.Sample()) == ROWS


def test_a_missing_value_is_named_by_its_row_in_the_whole_insert(
        t: SimpleNamespace, pieces: list[int], monkeypatch: pytest.MonkeyPatch) -> None:
    rows = _rows(ROWS)
    rows[1100]["x"] = None  # x takes no default and is not nullable
    expected = _message(t, rows, monkeypatch)
    assert "row 1100" in expected
    with pytest.raises(MissingAttributeError) as raised:
        t.Sample.insert(rows)
    assert str(raised.value) == expected
    assert len(t.Sample()) == 0


def test_a_later_piece_leaving_out_attributes_is_written_whole(
        t: SimpleNamespace, pieces: list[int]) -> None:
    rows = _rows(ROWS)
    for row in rows[700:]:
        del row["taken"], row["small"]  # nullable: they take NULL
    t.Sample.insert(rows)
    got = _read(t.Sample)
    assert len(got) == ROWS
    assert got[699]["taken"] == rows[699]["taken"] and got[700]["taken"] is None
    assert got[701]["small"] is None and got[1]["small"] == 127


def test_a_duplicate_key_across_pieces_writes_nothing(
        t: SimpleNamespace, pieces: list[int]) -> None:
    rows = _rows(ROWS)
    rows[1150]["sample_id"] = 3
    with pytest.raises(DuplicateError):
        t.Sample.insert(rows)
    assert len(t.Sample()) == 0
    assert pieces[:1] == ([PIECE] if _streams(t) else [])


def test_inside_a_transaction_the_insert_is_not_split(
        t: SimpleNamespace, pieces: list[int]) -> None:
    """A failed piece would spoil the caller's transaction, so inside one the rows are
    all checked before any is sent."""
    with t.Sample().connection.transaction:
        t.Sample.insert(_rows(ROWS))
    assert pieces == [] and len(t.Sample()) == ROWS


def test_few_rows_and_other_modes_are_not_split(t: SimpleNamespace,
                                                 pieces: list[int]) -> None:
    t.Sample.insert(_rows(2 * PIECE - 1))
    t.Sample.insert(_rows(ROWS), skip_duplicates=True)
    t.Sample.insert(_rows(ROWS), replace=True)
    assert pieces == [] and len(t.Sample()) == ROWS
