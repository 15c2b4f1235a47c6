"""Inserting a DataFrame or an Arrow table column by column, with no Python object per value.

The row path (insert.py) turns every value into a Python object, checks it, and hands the
backend row tuples; for a million-row frame that alone takes longer than the server needs to
store the rows. Here the frame's columns stay numpy arrays and Arrow arrays: each column is
checked as a whole (integer ranges by min/max, floats for infinities, strings for length and
NUL characters, all in C) and handed to the backend, which writes them in its own columnar
format (PostgreSQL: binary COPY, see backends/pg_binary.py).

Only what the row path would store unchanged is taken: plain insert (no skip or replace,
no chunk_size, not inside a grouped populate), columns of numbers, booleans and text, NULLs
only where the attribute is nullable and has no default. Anything else - an odd dtype, a
value the row path would convert or refuse, a NULL that means "use the default" - returns
False and the row path inserts the frame, raising its errors as it always does. So the values
stored, and the errors raised, are the row path's.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from .connection import label
from .insert import _with_retries, missing_required

if TYPE_CHECKING:
    from .heading import Attribute
    from .table import Table

#: below this many rows the row path's statements cost less than setting up the columns
MIN_ROWS = 1000
_INTEGERS = {"int8", "uint8", "int16", "uint16", "int24", "uint24", "int32", "uint32", "int64"}
_INT_WIRE = {"int2": 16, "int4": 32, "int8": 64}
_TEXT = {"varchar", "text"}
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass
class FrameColumn:
    """One checked column: `kind` is how the backend stores it ("int2", "int4", "int8",
    "float4", "float8", "bool" or "text", see `Backend.column_kinds`); `values` a numpy
    array (numbers, booleans) or a pyarrow string array (text); `nulls` a boolean mask of
    the NULL rows, or None."""

    name: str
    kind: str
    values: Any
    nulls: Any | None = None


def insert(table: Table, rows: Any, *, ignore_extra_fields: bool, chunk_size: int | None
           ) -> bool:
    """Insert `rows` (a plain insert: no skip, no replace) column by column if they are a
    frame this path takes; False (nothing done) otherwise."""
    if chunk_size is not None:
        return False
    connection = table.connection
    backend = connection.backend_impl
    if not backend.inserts_columns or connection.write_buffer is not None:
        return False
    source = _source(rows)
    if source is None:
        return False
    names, arrays, length = source
    if length < MIN_ROWS or len(set(names)) != len(names):
        return False
    if "pyarrow" not in sys.modules:
        try:
            import pyarrow  # noqa: F401
        except ImportError:
            return False
    kept = table._row_names(names, ignore_extra=ignore_extra_fields)
    heading = table.heading
    where = label(table)
    missing_required(heading, kept, where)
    sa_table = table._sa_table
    assert sa_table is not None
    wire = backend.column_kinds(sa_table, kept, connection.engine.dialect)
    if wire is None:
        return False
    columns = []
    for name in kept:
        column = checked(heading[name], arrays[names.index(name)], wire[name])
        if column is None:
            return False
        columns.append(column)
    connection.retrying(lambda: _write(table, columns, length))
    return True


def _write(table: Table, columns: list[FrameColumn], length: int) -> None:
    connection = table.connection
    sa_table = table._sa_table
    assert sa_table is not None
    backend = connection.backend_impl

    def write() -> None:
        with connection.session(write=True) as sa_conn:
            backend.insert_columns(sa_conn, sa_table, columns, length)

    with connection.translating(table, "insert into"):
        _with_retries(connection, write)


def _source(rows: Any) -> tuple[list[str], list[Any], int] | None:
    """(names, columns, length) of a DataFrame (its named index as columns, as the row path
    reads it) or an Arrow table / record batch; None for anything else."""
    pandas = sys.modules.get("pandas")
    if pandas is not None and isinstance(rows, pandas.DataFrame):
        frame = rows.reset_index() if any(n is not None for n in rows.index.names) else rows
        names = [str(c) for c in frame.columns]
        return names, [frame.iloc[:, i] for i in range(len(names))], len(frame)
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None and isinstance(rows, (pyarrow.Table, pyarrow.RecordBatch)):
        return list(rows.schema.names), list(rows.columns), rows.num_rows
    return None


def checked(attr: Attribute, column: Any, wire: str | None) -> FrameColumn | None:
    """The column, checked as the row path checks it, or None where the row path must
    decide (it converts or refuses something, or a NULL means the default)."""
    if wire is None or attr.codec is not None:
        return None
    category = attr.type_info.category
    if category in _INTEGERS and wire in _INT_WIRE:
        result = _integers(attr, column, _INT_WIRE[wire])
    elif (category, wire) in (("float32", "float4"), ("float64", "float8")):
        result = _floats(attr, column)
    elif category == "bool" and wire == "bool":
        result = _numbers(column, "b")
    elif category in _TEXT and wire == "text":
        result = _text(attr, column)
    else:
        return None
    if result is None:
        return None
    values, nulls = result
    if nulls is not None and not nulls.any():
        nulls = None
    if nulls is not None and (attr.default is not None or attr.autoincrement
                              or not attr.nullable):
        return None  # the row path groups rows by default, or raises
    return FrameColumn(attr.name, wire, values, nulls)


def _numbers(column: Any, kinds: str) -> tuple[np.ndarray, Any] | None:
    """A column of numpy numbers whose dtype kind is one of `kinds`, and its NULL mask
    (Arrow's nulls; a DataFrame's numbers have none but NaN), or None."""
    pyarrow = sys.modules.get("pyarrow")
    if pyarrow is not None and isinstance(column, (pyarrow.Array, pyarrow.ChunkedArray)):
        kind = column.type
        if not (pyarrow.types.is_integer(kind) or pyarrow.types.is_floating(kind)
                or pyarrow.types.is_boolean(kind)):
            return None
        nulls = column.is_null().to_numpy(zero_copy_only=False) if column.null_count else None
        if nulls is not None:
            column = column.fill_null(pyarrow.scalar(0, kind) if not pyarrow.types.is_boolean(
                kind) else False)
        values = column.to_numpy(zero_copy_only=False)
    else:
        dtype = getattr(column, "dtype", None)
        if not isinstance(dtype, np.dtype):  # pandas extension dtypes: the row path's
            return None
        values, nulls = column.to_numpy(), None
    if values.ndim != 1 or values.dtype.kind not in kinds:
        return None
    return values, nulls


def _integers(attr: Attribute, column: Any, bits: int) -> tuple[np.ndarray, Any] | None:
    found = _numbers(column, "iu")
    if found is None:
        return None
    values, nulls = found
    present = values if nulls is None else values[~nulls]
    low, high = attr.type_info.value_range or (None, None)
    if low is None or high is None:
        return None
    low, high = max(low, -2 ** (bits - 1)), min(high, 2 ** (bits - 1) - 1)
    if present.size and (int(present.min()) < low or int(present.max()) > high):
        return None  # the row path names the value
    return values, nulls


def _floats(attr: Attribute, column: Any) -> tuple[np.ndarray, Any] | None:
    found = _numbers(column, "f")
    if found is None:
        return None
    values, nulls = found
    nan = np.isnan(values)
    if nulls is not None:
        nan |= nulls
    present = values[~nan] if nan.any() else values
    if not np.isfinite(present).all():
        return None  # infinities: refused by the row path
    if attr.type_info.category == "float32" and present.size and (
            np.abs(present).max() > _FLOAT32_MAX):
        return None
    zero = values == 0.0
    if zero.any() and np.signbit(values[zero]).any():
        values = values + values.dtype.type(0.0)  # -0.0 as 0.0, as the row path stores it
    return values, nan


def _text(attr: Attribute, column: Any) -> tuple[Any, Any] | None:
    """A string column as one pyarrow string array: from Arrow as it is, from a DataFrame's
    objects only where every value is str (None or NaN: NULL), as the row path takes them."""
    import pyarrow as pa
    import pyarrow.compute as pc

    if isinstance(column, (pa.Array, pa.ChunkedArray)):
        array = column
        try:
            array.validate(full=True)  # Arrow's own strings: valid UTF-8 (the row path's
        except pa.ArrowInvalid:        # to_pylist would fail on them)
            return None
    else:
        try:  # inferred (a pandas string column as its own Arrow array): bytes, numbers
            array = pa.array(column, from_pandas=True)  # or mixed values give another type
        except (pa.ArrowException, TypeError, ValueError, UnicodeError):
            return None
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks() if array.num_chunks != 1 else array.chunk(0)
    if pa.types.is_large_string(array.type) and array.nbytes < 2**31 - 1:
        array = array.cast(pa.string())
    if not pa.types.is_string(array.type):
        return None
    if len(array) - array.null_count == 0:
        return array, array.is_null().to_numpy(zero_copy_only=False)
    if pc.any(pc.match_substring(array, "\x00")).as_py():
        return None  # refused by the row path: PostgreSQL has no place for NUL
    args = attr.type_info.args
    if attr.type_info.category == "varchar" and args and (
            pc.max(pc.utf8_length(array)).as_py() > int(args[0])):
        return None
    nulls = array.is_null().to_numpy(zero_copy_only=False) if array.null_count else None
    return array, nulls
