"""Rows handed to a backend's bulk path, as row tuples or as one list per column.

An insert checks and converts its values a column at a time, and the bulk paths read them
a column at a time too (Arrow builds its arrays per column; SQLite's multi-row INSERT wants
one flat parameter list). `ColumnRows` lets the columns go through as they are: no tuple
per row is built, read apart again and freed (for 30,000 rows of 4 columns that is about a
third of the insert's Python time). Any other reader sees an ordinary sequence of tuples.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Sequence
from typing import Any, overload


class ColumnRows(Sequence[tuple[Any, ...]]):
    """Rows as equally long lists, one per column; reads as a sequence of row tuples."""

    __slots__ = ("columns", "_length")

    def __init__(self, columns: list[list[Any]], length: int) -> None:
        self.columns = columns
        self._length = length

    def __len__(self) -> int:
        return self._length

    @overload
    def __getitem__(self, index: int) -> tuple[Any, ...]: ...

    @overload
    def __getitem__(self, index: slice) -> ColumnRows: ...

    def __getitem__(self, index: int | slice) -> tuple[Any, ...] | ColumnRows:
        if isinstance(index, slice):
            columns = [c[index] for c in self.columns]
            return ColumnRows(columns, len(range(*index.indices(self._length))))
        if not -self._length <= index < self._length:
            raise IndexError("row index out of range")
        return tuple(c[index] for c in self.columns)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        if not self.columns:
            return iter([()] * self._length)
        return zip(*self.columns)

    def __repr__(self) -> str:
        return f"ColumnRows({len(self.columns)} columns, {self._length} rows)"


def as_tuples(rows: Sequence[Sequence[Any]]) -> Sequence[Sequence[Any]]:
    """The rows as a list or tuple of row tuples (what a driver's executemany expects)."""
    return list(rows) if isinstance(rows, ColumnRows) else rows


def columns_of(rows: Sequence[Sequence[Any]], width: int) -> list[list[Any]]:
    """One list per column (the lists a ColumnRows holds, else read from the tuples)."""
    if isinstance(rows, ColumnRows):
        return rows.columns
    return [list(column) for column in zip(*rows)] if rows else [[] for _ in range(width)]


def flat_values(rows: Sequence[Sequence[Any]], width: int) -> list[Any]:
    """All values row after row, as one list: the parameters of a multi-row INSERT."""
    if not isinstance(rows, ColumnRows):
        return list(itertools.chain.from_iterable(rows))
    flat: list[Any] = [None] * (width * len(rows))
    for position, column in enumerate(rows.columns):
        flat[position::width] = column  # one C-level strided copy per column
    return flat


def arrow_batch(pa: Any, rows: Sequence[Sequence[Any]], types: Sequence[Any]) -> Any:
    """The rows as an Arrow RecordBatch of `types` (columns named c0, c1 ...); Arrow's
    errors (a value not of its column's type) propagate."""
    names = [f"c{i}" for i in range(len(types))]
    if isinstance(rows, ColumnRows):
        return pa.RecordBatch.from_arrays(
            [pa.array(c, type=t, from_pandas=False) for c, t in zip(rows.columns, types)],
            names=names)
    # the row tuples read as one struct array: Arrow splits them into columns in C
    shape = pa.struct([pa.field(n, t) for n, t in zip(names, types)])
    return pa.RecordBatch.from_struct_array(pa.array(rows, type=shape, from_pandas=False))


def reordered(rows: Sequence[Sequence[Any]], positions: Sequence[int]) -> Sequence[Sequence[Any]]:
    """The rows with their values taken in `positions` order (a statement's parameters)."""
    if isinstance(rows, ColumnRows):
        return ColumnRows([rows.columns[p] for p in positions], len(rows))
    return [tuple(row[p] for p in positions) for row in rows]
