"""PostgreSQL binary COPY written from columns by numpy and Arrow, with no Python per value.

A binary COPY row is a 16-bit field count, then per field a 32-bit length (-1: NULL) and the
value in the type's binary form (big-endian integers and IEEE floats, a boolean byte, text as
its UTF-8 bytes). The server takes that with no parsing at all: in a measurement on 10^6
(int8, float8, varchar) rows it used about a fifth less CPU than for the same rows as text or
CSV, and the client builds it in tens of milliseconds where psycopg's `write_row` spends
about a second.

How a block is built: the fixed-width fields that are never NULL go first (the COPY's column
list is reordered to match), written into one numpy structured array, a record per row; the
text fields and the fixed-width fields with NULLs follow as Arrow binary arrays of varying
length; `binary_join_element_wise` concatenates each row's pieces in C, and the joined
array's data buffer is the block as sent.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

#: the dtype each kind's value is sent as (big-endian)
WIRE_DTYPES = {"int2": ">i2", "int4": ">i4", "int8": ">i8", "float4": ">f4", "float8": ">f8",
               "bool": "u1"}
SIGNATURE = b"PGCOPY\n\xff\r\n\x00" + bytes(8)  # the signature, flags 0, no extension
TRAILER = b"\xff\xff"
#: a block's rows and bytes: bounds the memory one block takes and keeps the server busy
#: while the next one is built
BLOCK_ROWS = 65_536
BLOCK_BYTES = 8 << 20


def order(columns: Sequence[Any]) -> list[Any]:
    """The columns as they are sent: never-NULL fixed-width ones first, in a record."""
    fixed = [c for c in columns if c.kind != "text" and c.nulls is None]
    return fixed + [c for c in columns if not (c.kind != "text" and c.nulls is None)]


def blocks(columns: Sequence[Any], length: int) -> Iterator[Any]:
    """The whole COPY stream, in blocks (buffers), for columns in `order`."""
    import pyarrow as pa
    import pyarrow.compute as pc

    fixed = [c for c in columns if c.kind != "text" and c.nulls is None]
    varying = columns[len(fixed):]
    fields = [("count", ">i2")]
    for i, c in enumerate(fixed):
        fields += [(f"n{i}", ">i4"), (f"v{i}", WIRE_DTYPES[c.kind])]
    if varying:
        fields.append(("next", ">i4"))  # the first varying field's length
    record = np.dtype(fields)
    sizes = _varying_sizes(pa, varying, length)
    yield SIGNATURE
    for start, stop in _bounds(record.itemsize, sizes, length):
        rows = np.empty(stop - start, dtype=record)
        rows["count"] = len(columns)
        for i, c in enumerate(fixed):
            rows[f"n{i}"] = np.dtype(WIRE_DTYPES[c.kind]).itemsize
            rows[f"v{i}"] = _wire_values(c, start, stop)
        if not varying:
            yield rows.view(np.uint8).data
            continue
        pieces = []
        for j, c in enumerate(varying):
            size, data = _piece(pa, pc, c, start, stop)
            if j == 0:
                rows["next"] = size
            else:
                pieces.append(_as_binary(pa, size.astype(">i4").view(np.uint8), 4))
            pieces.append(data)
        head = _as_binary(pa, rows.view(np.uint8), record.itemsize)
        joined = pc.binary_join_element_wise(head, *pieces, pa.scalar(b"", pa.binary()))
        offsets = np.frombuffer(joined.buffers()[1], dtype=np.int32,
                                count=len(joined) + 1, offset=4 * joined.offset)
        yield memoryview(joined.buffers()[2])[offsets[0]:offsets[-1]]
    yield TRAILER


def _wire_values(column: Any, start: int, stop: int) -> np.ndarray:
    values: np.ndarray = column.values[start:stop]
    if column.kind == "float4":  # rounded to float32 as the row path rounds it
        return values.astype(np.float32)
    return values


def _varying_sizes(pa: Any, varying: Sequence[Any], length: int) -> np.ndarray:
    """Each row's bytes in its varying fields (lengths included), for block bounds."""
    sizes = np.zeros(length, dtype=np.int64)
    for c in varying:
        if c.kind == "text":
            offsets = _offsets(c.values)
            sizes += 4 + np.diff(offsets)
        else:
            sizes += 4 + np.where(c.nulls, 0, np.dtype(WIRE_DTYPES[c.kind]).itemsize)
    return sizes


def _offsets(array: Any) -> np.ndarray:
    """An Arrow string array's value offsets (its slice), as int64."""
    return np.frombuffer(array.buffers()[1], dtype=np.int32, count=len(array) + 1,
                         offset=4 * array.offset).astype(np.int64)


def _bounds(record: int, sizes: np.ndarray, length: int) -> Iterator[tuple[int, int]]:
    start = 0
    total = np.cumsum(sizes + record) if length else sizes
    while start < length:
        base = total[start - 1] if start else 0
        stop = int(np.searchsorted(total, base + BLOCK_BYTES, side="right"))
        stop = min(length, start + BLOCK_ROWS, max(stop, start + 1))
        yield start, stop
        start = stop


def _piece(pa: Any, pc: Any, column: Any, start: int, stop: int) -> tuple[np.ndarray, Any]:
    """(each row's length field, -1 for NULL; each row's value bytes, empty for NULL) of a
    varying field in rows start:stop."""
    nulls = None if column.nulls is None else column.nulls[start:stop]
    if column.kind == "text":
        array = column.values.slice(start, stop - start)
        if nulls is not None:
            array = pc.fill_null(array, "")
        size = np.diff(_offsets(array))
        data = array.cast(pa.binary())
    else:
        width = np.dtype(WIRE_DTYPES[column.kind]).itemsize
        values = _wire_values(column, start, stop).astype(WIRE_DTYPES[column.kind])
        assert nulls is not None
        kept = values[~nulls]
        size = np.where(nulls, 0, width)
        offsets = np.zeros(len(values) + 1, dtype=np.int32)
        np.cumsum(size, out=offsets[1:])
        data = pa.Array.from_buffers(pa.binary(), len(values), [
            None, pa.py_buffer(offsets), pa.py_buffer(kept.view(np.uint8))])
    if nulls is not None:
        size = np.where(nulls, -1, size)
    return size, data


def _as_binary(pa: Any, flat: np.ndarray, width: int) -> Any:
    """Fixed-width records (a flat uint8 array) as an Arrow binary array, a record each."""
    count = len(flat) // width
    fixed = pa.Array.from_buffers(pa.binary(width), count, [None, pa.py_buffer(flat)])
    return fixed.cast(pa.binary())
