"""Serialization of Python and numpy objects in DataJoint's blob format.

The byte layout is the one used by DataJoint for Python (and, for the ``mYm`` subset, by
DataJoint for MATLAB), so blobs written here are read by DataJoint 2.3.5 and vice versa:

* ``mYm\\0`` header: only MATLAB-compatible content (numeric, logical, char arrays with
  ``ndim >= 1``, cell and struct arrays); ``dj0\\0`` header: anything else.
* ``ZL123\\0`` + uint64 uncompressed length + zlib stream: a compressed blob.
* All integers in the framing are little-endian; arrays are stored column-major.

Large numeric arrays go through the buffer protocol in one piece: ``pack`` hands the array's
memory to a single ``bytes.join`` and ``unpack`` returns a zero-copy (read-only, like the
reference) ``np.frombuffer`` view of the blob.
"""

from __future__ import annotations

import collections.abc
import datetime
import math
import struct
import uuid
import zlib
from decimal import Decimal, InvalidOperation
from typing import Any, TypeAlias

import numpy as np

from .errors import DataJointError

__all__ = ["MatCell", "MatStruct", "is_blob", "pack", "unpack"]

MYM_HEADER = b"mYm\0"
DJ0_HEADER = b"dj0\0"
ZLIB_PREFIX = b"ZL123\0"

#: Blobs up to this size are never compressed: the saving could not pay for the framing.
COMPRESS_MIN_SIZE = 1024
#: Keep the compressed form only when it is at most this fraction of the original.
COMPRESS_MAX_RATIO = 0.9
#: Larger blobs are compressed only if this many sampled bytes compress well. 16 KiB
#: estimate the ratio of numeric data as well as 64 KiB did, at a quarter of the time
#: (0.3 ms instead of 1.7 ms for each incompressible MiB, most of a 1 MiB blob's packing).
SAMPLE_SIZE = 16 * 1024
#: zlib level: 3 compresses numeric data as well as the default 6 at twice the speed.
ZLIB_LEVEL = 3
#: Blobs of more pieces than this (many small items) are joined before sampling and
#: compressing: a Python step per tiny piece costs more than one copy.
STREAM_MAX_CHUNKS = 64

Chunk: TypeAlias = bytes | bytearray | memoryview
#: What unpack accepts: drivers hand back bytes (pymysql) or memoryview (psycopg).
BytesLike: TypeAlias = bytes | bytearray | memoryview

_U8 = struct.Struct("<B")
_U16 = struct.Struct("<H")
_U32 = struct.Struct("<I")
_U64 = struct.Struct("<Q")
_I32 = struct.Struct("<i")
_I64 = struct.Struct("<q")
_F64 = struct.Struct("<d")
_C128 = struct.Struct("<dd")
_ARRAY_TYPE = struct.Struct("<II")  # class id, complexity flag

# Type codes of the serialized structures.
_ARRAY = b"A"
_SPARSE = b"P"
_STRUCT = b"S"
_CELL = b"C"
_NONE = b"\xff"
_TUPLE = b"\x01"
_LIST = b"\x02"
_SET = b"\x03"
_DICT = b"\x04"
_STR = b"\x05"
_BYTES = b"\x06"
_INT = b"\x0a"
_BOOL = b"\x0b"
_COMPLEX = b"\x0c"
_FLOAT = b"\x0d"
_RECARRAY = b"F"
_DECIMAL = b"d"
_DATETIME = b"t"
_UUID = b"u"

# MATLAB mxClassID values used in array headers, plus DataJoint's datetime64 extension.
_CLASS_LOGICAL = 3
_CLASS_CHAR = 4
_CLASS_OBJECT = 5  # mxVOID_CLASS: each element is a nested blob
_CLASS_DATETIME64 = 65536  # + index of the unit in _DATETIME_UNITS
_NUMERIC_CLASS_IDS: dict[str, int] = {
    "|b1": 3,
    "<f8": 6,
    "<f4": 7,
    "|i1": 8,
    "|u1": 9,
    "<i2": 10,
    "<u2": 11,
    "<i4": 12,
    "<u4": 13,
    "<i8": 14,
    "<u8": 15,
}
_COMPLEX_CLASS_IDS: dict[str, int] = {"<c16": 6, "<c8": 7}
_DATETIME_UNITS = ("Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns", "ps", "fs", "as")
_CLASS_DTYPES: dict[int, np.dtype] = {v: np.dtype(k) for k, v in _NUMERIC_CLASS_IDS.items()}
_CLASS_DTYPES.update(
    {_CLASS_DATETIME64 + i: np.dtype(f"<M8[{u}]") for i, u in enumerate(_DATETIME_UNITS)}
)
_COMPLEX_OF = {"f4": np.dtype(np.complex64)}  # other real types widen to complex128

# Smallest possible size of a length-prefixed element: its uint64 length and a type code.
_MIN_ITEM_SIZE = 9


class MatCell(np.ndarray):
    """A MATLAB cell array: an object array that packs as a cell (``C``), readable by MATLAB."""


class MatStruct(np.recarray):
    """A MATLAB struct array: a record array of object fields that packs as a struct (``S``)."""


def is_blob(data: BytesLike) -> bool:
    """Whether ``data`` is a serialized blob, to tell blobs from raw bytes in legacy columns."""
    head = bytes(data[:6])
    return head[:4] in (MYM_HEADER, DJ0_HEADER) or head == ZLIB_PREFIX


# ---------------------------------------------------------------------------------------------
# packing
# ---------------------------------------------------------------------------------------------


def pack(obj: Any, compress: bool = True) -> bytes:
    """Serialize ``obj``; compress it with zlib when that makes it meaningfully smaller."""
    packer = _Packer()
    packer.add(b"")  # the header, known only once the content is packed
    packer.pack(obj)
    packer.chunks[0] = MYM_HEADER if packer.matlab else DJ0_HEADER
    packer.size += len(MYM_HEADER)
    chunks = packer.chunks
    if len(chunks) > STREAM_MAX_CHUNKS:  # many small items: one copy beats a loop over them
        chunks = [b"".join(chunks)]
    if compress:
        compressed = _compress(chunks, packer.size)
        if compressed is not None:
            return compressed
    return b"".join(chunks)


def _compress(chunks: list[Chunk], size: int) -> bytes | None:
    """The compressed blob, or None where compression would not pay for itself."""
    if size <= COMPRESS_MIN_SIZE:
        return None
    if size > SAMPLE_SIZE:
        sample = _sample(chunks, size)
        if len(zlib.compress(sample, ZLIB_LEVEL)) > COMPRESS_MAX_RATIO * len(sample):
            return None  # e.g. random floats: do not spend time compressing all of it
    compressor = zlib.compressobj(ZLIB_LEVEL)
    parts = [ZLIB_PREFIX, _U64.pack(size)]
    parts.extend(compressor.compress(chunk) for chunk in chunks)  # big arrays: no joined copy
    parts.append(compressor.flush())
    compressed = b"".join(parts)
    return compressed if len(compressed) <= COMPRESS_MAX_RATIO * size else None


def _sample(chunks: list[Chunk], size: int) -> bytes:
    """Bytes from the start, middle and end of the blob, to estimate its compressibility."""
    quarter = SAMPLE_SIZE // 4
    middle = size // 2 - quarter // 2
    ranges = ((0, 2 * quarter), (middle, middle + quarter), (size - quarter, size))
    return b"".join(_byte_range(chunks, start, stop) for start, stop in ranges)


def _byte_range(chunks: list[Chunk], start: int, stop: int) -> bytes:
    """Bytes ``start:stop`` of the concatenation of ``chunks``, without concatenating them."""
    pieces = []
    offset = 0
    for chunk in chunks:
        end = offset + len(chunk)
        if end > start and offset < stop:
            pieces.append(bytes(chunk[max(start - offset, 0) : min(stop, end) - offset]))
        if end >= stop:
            break
        offset = end
    return b"".join(pieces)


class _Packer:
    """Collects the pieces of a blob, so that array memory is copied only once, at the end."""

    __slots__ = ("chunks", "size", "matlab")

    def __init__(self) -> None:
        self.chunks: list[Chunk] = []
        self.size = 0
        self.matlab = True  # stays True while everything packed is readable by MATLAB

    def add(self, chunk: Chunk) -> None:
        self.chunks.append(chunk)
        self.size += len(chunk)

    def add_sized(self, obj: Any) -> None:
        """Pack ``obj`` preceded by its length, as elements of containers are stored."""
        index = len(self.chunks)
        self.chunks.append(b"")
        start = self.size
        self.pack(obj)
        self.chunks[index] = _U64.pack(self.size - start)
        self.size += 8

    def pack(self, obj: Any) -> None:
        """Append the serialization of ``obj``, dispatching on its type."""
        if isinstance(obj, np.ndarray):
            self.pack_ndarray(obj)
        elif isinstance(obj, np.generic):
            self.pack_numpy_scalar(obj)
        else:
            self.matlab = False
            self.pack_python(obj)

    def pack_ndarray(self, array: np.ndarray) -> None:
        """MATLAB cells and structs keep their MATLAB form; other arrays by dtype."""
        if isinstance(array, MatCell):
            self.pack_cell(array)
        elif isinstance(array, MatStruct):
            self.pack_struct(array)
        elif array.dtype.names is not None:
            self.matlab = False
            self.pack_recarray(array)
        else:
            self.pack_array(array)

    def pack_numpy_scalar(self, obj: np.generic) -> None:
        """Numpy scalars travel as 0-d arrays so that they come back as the same numpy type."""
        if isinstance(obj, (str, bytes)):  # np.str_, np.bytes_
            self.matlab = False
            self.pack_python(obj)
        else:
            self.pack_ndarray(np.asarray(obj))

    def pack_python(self, obj: Any) -> None:
        """Python values; the order matters (bool is an int, str and bytes are sequences)."""
        if obj is None:
            self.add(_NONE)
        elif isinstance(obj, bool):
            self.add(_BOOL + _U8.pack(obj))
        elif isinstance(obj, int):
            self.add(_pack_int(obj))
        elif isinstance(obj, float):
            self.add(_FLOAT + _F64.pack(obj))
        elif isinstance(obj, complex):
            self.add(_COMPLEX + _C128.pack(obj.real, obj.imag))
        elif isinstance(obj, str):
            self.add_bytes(_STR, _encode_str(obj))
        elif isinstance(obj, (bytes, bytearray, memoryview)):
            self.add_bytes(_BYTES, bytes(obj) if isinstance(obj, memoryview) else obj)
        elif isinstance(obj, (datetime.date, datetime.time)):
            self.add(_pack_datetime(obj))
        elif isinstance(obj, Decimal):
            self.add_bytes(_DECIMAL, str(obj).encode())
        elif isinstance(obj, uuid.UUID):
            self.add(_UUID + obj.bytes)
        elif isinstance(obj, collections.abc.Mapping):
            self.pack_dict(obj)
        elif isinstance(obj, collections.abc.MutableSequence):
            self.pack_items(_LIST, obj)
        elif isinstance(obj, collections.abc.Sequence):
            self.pack_items(_TUPLE, obj)
        elif isinstance(obj, collections.abc.Set):
            self.pack_items(_SET, obj)
        else:
            raise DataJointError(f"Cannot pack an object of type {type(obj).__qualname__!r}.")

    def add_bytes(self, code: bytes, data: bytes | bytearray) -> None:
        self.add(code + _U64.pack(len(data)))
        self.add(data)

    def pack_items(self, code: bytes, items: collections.abc.Collection) -> None:
        self.add(code + _U64.pack(len(items)))
        for item in items:
            self.add_sized(item)

    def pack_dict(self, mapping: collections.abc.Mapping) -> None:
        self.add(_DICT + _U64.pack(len(mapping)))
        for key, value in mapping.items():
            self.add_sized(key)
            self.add_sized(value)

    def pack_array(self, array: np.ndarray) -> None:
        """Arrays: ``A``, ndim, shape, class id, complexity, then column-major data."""
        array = _little_endian(array)
        kind = array.dtype.kind
        if kind in "OUS":
            self.matlab = False
            self.add(_array_header(array, _CLASS_OBJECT, False))
            for element in array.ravel(order="F"):
                self.add_sized(element)
            return
        if kind == "c":
            class_id = _COMPLEX_CLASS_IDS.get(array.dtype.str)
            parts = [array.real, array.imag]
        else:
            class_id = _class_id(array.dtype)
            parts = [array]
        if class_id is None:
            raise DataJointError(f"Cannot pack a numpy array of dtype {array.dtype}.")
        if array.ndim == 0 or kind == "M":  # MATLAB has neither
            self.matlab = False
        self.add(_array_header(array, class_id, kind == "c"))
        for part in parts:
            self.add(_column_major_bytes(part))

    def pack_recarray(self, array: np.ndarray) -> None:
        """Structured arrays: ``F``, field count, zero-terminated names, one array per field."""
        names = array.dtype.names or ()
        for name in names:
            if array.dtype[name].shape:
                raise DataJointError(
                    f"Cannot pack structured array field {name!r} with a sub-array dtype "
                    f"{array.dtype[name]}; DataJoint's format has no place for its shape."
                )
        self.add(_RECARRAY + _U32.pack(len(names)) + _encode_names(names))
        for name in names:
            self.pack_ndarray(np.asarray(array[name]))

    def pack_cell(self, array: np.ndarray) -> None:
        """MATLAB cell arrays: ``C``, ndim, shape, then each element in column-major order."""
        self.add(_CELL + _shape_bytes(array.shape))
        for element in np.asarray(array, dtype=object).ravel(order="F"):
            self.add_sized(element)

    def pack_struct(self, array: np.ndarray) -> None:
        """MATLAB structs: ``S``, ndim, shape, names, then every field of every element."""
        names = array.dtype.names or ()
        self.add(_STRUCT + _shape_bytes(array.shape) + _U32.pack(len(names)))
        self.add(_encode_names(names))
        for element in np.asarray(array).ravel(order="F"):
            for value in element.tolist() if names else ():
                self.add_sized(value)


def _pack_int(value: int) -> bytes:
    """Python ints of any size: uint16 byte count, then little-endian two's complement."""
    n_bytes = value.bit_length() // 8 + 1
    if n_bytes > 0xFFFF:
        raise DataJointError("Cannot pack an int of more than 65535 bytes.")
    return _INT + _U16.pack(n_bytes) + value.to_bytes(n_bytes, "little", signed=True)


def _encode_str(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError as e:
        raise DataJointError(f"Cannot pack a str that is not valid Unicode: {e}") from None


def _encode_names(names: tuple[str, ...]) -> bytes:
    return b"".join(_encode_str(name) + b"\0" for name in names)


def _pack_datetime(value: datetime.date | datetime.time) -> bytes:
    """``t``, int32 date as YYYYMMDD and int64 time as HHMMSSffffff; -1 marks a missing part."""
    if getattr(value, "tzinfo", None) is not None:
        raise DataJointError(
            f"Cannot pack a timezone-aware {type(value).__name__}: the blob format has no "
            "time zone; convert it to a naive value first."
        )
    date_part = time_part = -1
    if isinstance(value, datetime.date):
        date_part = (value.year * 100 + value.month) * 100 + value.day
    if isinstance(value, (datetime.datetime, datetime.time)):
        seconds = (value.hour * 100 + value.minute) * 100 + value.second
        time_part = seconds * 1_000_000 + value.microsecond
    return _DATETIME + _I32.pack(date_part) + _I64.pack(time_part)


def _little_endian(array: np.ndarray) -> np.ndarray:
    """The array in little-endian byte order, as the format requires (no copy if it is)."""
    dtype = array.dtype
    if dtype.kind in "OUSb" or dtype.byteorder in ("<", "|") or dtype == dtype.newbyteorder("<"):
        return array
    return array.astype(dtype.newbyteorder("<"))


def _class_id(dtype: np.dtype) -> int | None:
    if dtype.kind == "M":
        unit, count = np.datetime_data(dtype)
        if count != 1 or unit not in _DATETIME_UNITS:
            return None
        return _CLASS_DATETIME64 + _DATETIME_UNITS.index(unit)
    return _NUMERIC_CLASS_IDS.get(dtype.str)


def _shape_bytes(shape: tuple[int, ...]) -> bytes:
    return struct.pack(f"<{len(shape) + 1}Q", len(shape), *shape)


def _array_header(array: np.ndarray, class_id: int, is_complex: bool) -> bytes:
    return _ARRAY + _shape_bytes(array.shape) + _ARRAY_TYPE.pack(class_id, is_complex)


def _column_major_bytes(array: np.ndarray) -> memoryview:
    """The array's bytes in column-major order: a view when it is already laid out so."""
    if not array.flags.f_contiguous:
        array = np.asfortranarray(array)
    return array.ravel(order="F").view(np.uint8).data


# ---------------------------------------------------------------------------------------------
# unpacking
# ---------------------------------------------------------------------------------------------


def unpack(data: BytesLike, squeeze: bool = False) -> Any:
    """Deserialize a blob (compressed or not); ``squeeze`` drops singleton array dimensions."""
    try:
        buffer = memoryview(data)
    except TypeError:
        raise DataJointError(
            f"Cannot unpack an object of type {type(data).__qualname__!r}."
        ) from None
    if buffer.ndim != 1 or buffer.itemsize != 1:
        buffer = buffer.cast("B")
    if bytes(buffer[: len(ZLIB_PREFIX)]) == ZLIB_PREFIX:
        buffer = memoryview(_decompress(buffer))
    header = bytes(buffer[:4])
    if header not in (MYM_HEADER, DJ0_HEADER):
        raise DataJointError(f"Not a DataJoint blob: unknown header {bytes(buffer[:8])!r}.")
    reader = _Reader(buffer, 4, squeeze)
    try:
        value = reader.read_blob()
    except RecursionError:
        raise DataJointError("Invalid blob: nested too deeply.") from None
    except (ValueError, TypeError, OverflowError, MemoryError, struct.error) as e:
        # corrupted sizes or shapes that numpy itself rejects (e.g. ndim > 64)
        raise DataJointError(f"Invalid blob: {type(e).__name__}: {e}") from None
    if reader.pos != len(buffer):
        raise DataJointError(
            f"Invalid blob: {len(buffer) - reader.pos} bytes left after the value."
        )
    return value


def _decompress(buffer: memoryview) -> bytes:
    start = len(ZLIB_PREFIX)
    if len(buffer) < start + 8:
        raise DataJointError("Invalid blob: truncated compression header.")
    (size,) = _U64.unpack_from(buffer, start)
    stream = buffer[start + 8 :]
    try:
        # zlib cannot expand more than ~1032:1: do not trust a corrupted size for the buffer
        data = zlib.decompress(stream, zlib.MAX_WBITS, max(1, min(size, 1100 * len(stream))))
    except zlib.error as e:
        raise DataJointError(f"Invalid blob: cannot decompress it ({e}).") from None
    if len(data) != size:
        raise DataJointError(f"Invalid blob: decompressed to {len(data)} bytes instead of {size}.")
    return data


class _Reader:
    """A cursor over the blob's bytes, with one method per structure type."""

    __slots__ = ("buffer", "pos", "squeeze")

    def __init__(self, buffer: memoryview, pos: int, squeeze: bool) -> None:
        self.buffer = buffer
        self.pos = pos
        self.squeeze = squeeze

    # primitives ------------------------------------------------------------------------------

    def need(self, n_bytes: int) -> int:
        """Reserve the next ``n_bytes``; return their offset. Fails on truncated blobs."""
        start = self.pos
        if n_bytes < 0 or start + n_bytes > len(self.buffer):
            raise DataJointError(
                f"Invalid blob: truncated (needs {n_bytes} bytes at offset {start}, "
                f"has {len(self.buffer) - start})."
            )
        self.pos = start + n_bytes
        return start

    def unpack_struct(self, fmt: struct.Struct) -> tuple:
        return fmt.unpack_from(self.buffer, self.need(fmt.size))

    def u64(self) -> int:
        return self.unpack_struct(_U64)[0]

    def u32(self) -> int:
        return self.unpack_struct(_U32)[0]

    def raw(self, n_bytes: int) -> memoryview:
        start = self.need(n_bytes)
        return self.buffer[start : start + n_bytes]

    def count(self, min_item_size: int = _MIN_ITEM_SIZE) -> int:
        """An element count, checked against the bytes left before anything is allocated."""
        n = self.u64()
        if n * min_item_size > len(self.buffer) - self.pos:
            raise DataJointError(f"Invalid blob: truncated (claims {n} elements).")
        return n

    def cstring(self) -> str:
        """A zero-terminated UTF-8 string (field names)."""
        end = self.pos
        while True:
            window = bytes(self.buffer[end : end + 256])
            if not window:
                raise DataJointError("Invalid blob: unterminated field name.")
            found = window.find(b"\0")
            if found >= 0:
                end += found
                break
            end += len(window)
        text = self.decode(self.raw(end - self.pos))
        self.pos += 1
        return text

    @staticmethod
    def decode(data: memoryview) -> str:
        try:
            return str(data, "utf-8")
        except UnicodeDecodeError as e:
            raise DataJointError(f"Invalid blob: bad UTF-8 text ({e}).") from None

    # structures ------------------------------------------------------------------------------

    def read_blob(self) -> Any:
        code = bytes(self.raw(1))
        reader = _READERS.get(code)
        if reader is None:
            if code == _SPARSE:
                raise DataJointError("MATLAB sparse arrays are not supported.")
            raise DataJointError(f"Invalid blob: unknown type code {code!r} at {self.pos - 1}.")
        return reader(self)

    def read_sized(self) -> Any:
        """An element preceded by its length; the length is checked."""
        n_bytes = self.u64()
        start = self.pos
        value = self.read_blob()
        if self.pos - start != n_bytes:
            raise DataJointError("Invalid blob: an element's length does not match its content.")
        return value

    def read_none(self) -> None:
        return None

    def read_bool(self) -> bool:
        return bool(self.unpack_struct(_U8)[0])

    def read_int(self) -> int:
        (n_bytes,) = self.unpack_struct(_U16)
        return int.from_bytes(self.raw(n_bytes), "little", signed=True)

    def read_float(self) -> float:
        return self.unpack_struct(_F64)[0]

    def read_complex(self) -> complex:
        real, imag = self.unpack_struct(_C128)
        return complex(real, imag)

    def read_str(self) -> str:
        return self.decode(self.raw(self.u64()))

    def read_bytes(self) -> bytes:
        return bytes(self.raw(self.u64()))

    def read_decimal(self) -> Decimal:
        text = self.read_str()
        try:
            return Decimal(text)
        except InvalidOperation:
            raise DataJointError(f"Invalid blob: bad decimal {text!r}.") from None

    def read_uuid(self) -> uuid.UUID:
        return uuid.UUID(bytes=bytes(self.raw(16)))

    def read_datetime(self) -> datetime.date | datetime.time:
        (date_part,) = self.unpack_struct(_I32)
        (time_part,) = self.unpack_struct(_I64)
        try:
            return _make_datetime(date_part, time_part)
        except ValueError as e:
            raise DataJointError(f"Invalid blob: bad date or time ({e}).") from None

    def read_items(self) -> list:
        return [self.read_sized() for _ in range(self.count())]

    def read_list(self) -> list:
        return self.read_items()

    def read_tuple(self) -> tuple:
        return tuple(self.read_items())

    def read_set(self) -> set:
        try:
            return set(self.read_items())
        except TypeError as e:
            raise DataJointError(f"Invalid blob: unhashable set element ({e}).") from None

    def read_dict(self) -> dict:
        n = self.count(2 * _MIN_ITEM_SIZE)
        try:
            return {self.read_sized(): self.read_sized() for _ in range(n)}
        except TypeError as e:
            raise DataJointError(f"Invalid blob: unhashable dict key ({e}).") from None

    def read_shape(self) -> tuple[int, ...]:
        n_dims = self.count(8)
        return struct.unpack_from(f"<{n_dims}Q", self.buffer, self.need(8 * n_dims))

    def read_array(self) -> Any:
        shape = self.read_shape()
        class_id, is_complex = self.unpack_struct(_ARRAY_TYPE)
        n = math.prod(shape)
        if class_id == _CLASS_OBJECT:
            return self.finish(self.read_elements(shape, n), scalar=False)
        if class_id == _CLASS_CHAR:
            return self.finish(self.read_chars(shape, n))
        dtype = _CLASS_DTYPES.get(class_id)
        if dtype is None:
            raise DataJointError(f"Invalid blob: unsupported array class id {class_id}.")
        data = self.read_numbers(dtype, n)
        if is_complex:
            if dtype.kind not in "fiu":
                raise DataJointError(f"Invalid blob: complex array of class id {class_id}.")
            real = data
            data = np.empty(n, dtype=_COMPLEX_OF.get(dtype.str[1:], np.dtype(np.complex128)))
            data.real = real
            data.imag = self.read_numbers(dtype, n)
        return self.finish(data.reshape(shape, order="F"))

    def read_elements(self, shape: tuple[int, ...], n: int) -> np.ndarray:
        """``n`` length-prefixed elements as an object array of ``shape`` (column-major)."""
        if n * _MIN_ITEM_SIZE > len(self.buffer) - self.pos:
            raise DataJointError(f"Invalid blob: truncated (claims {n} elements).")
        array = np.empty(n, dtype=object)
        for i in range(n):  # element-wise: np.array(list) would broadcast nested arrays
            array[i] = self.read_sized()
        return array.reshape(shape, order="F")

    def read_numbers(self, dtype: np.dtype, n: int) -> np.ndarray:
        """``n`` values as a zero-copy view of the blob."""
        offset = self.need(n * dtype.itemsize)
        return np.frombuffer(self.buffer, dtype=dtype, count=n, offset=offset)

    def read_chars(self, shape: tuple[int, ...], n: int) -> np.ndarray:
        """MATLAB char arrays (UTF-16 code units); a row becomes a one-element str array."""
        codes = self.read_numbers(np.dtype("<u2"), n)
        if len(shape) == 1 or (len(shape) == 2 and shape[0] == 1):
            return np.array([codes.tobytes().decode("utf-16-le", errors="replace")])
        return codes.astype(np.uint32).view("<U1").reshape(shape, order="F")

    def finish(self, array: np.ndarray, scalar: bool = True) -> Any:
        """Apply the squeeze option; 0-d numeric arrays become numpy scalars as in the reference."""
        if self.squeeze:
            array = array.squeeze()
            return array.item() if array.ndim == 0 else array
        if scalar and array.ndim == 0:
            return array[()]
        return array

    def read_recarray(self) -> Any:
        n_fields = self.u32()
        names = [self.cstring() for _ in range(n_fields)]
        squeeze, self.squeeze = self.squeeze, False  # fields must keep the record shape
        try:
            fields = [self.read_blob() for _ in names]
        finally:
            self.squeeze = squeeze
        if not fields:
            return np.recarray((0,), dtype=[])
        for field in fields:
            if not isinstance(field, (np.ndarray, np.generic)) or field.shape != fields[0].shape:
                raise DataJointError("Invalid blob: record array fields differ in shape.")
        try:
            dtype = np.dtype([(name, field.dtype) for name, field in zip(names, fields)])
        except (TypeError, ValueError) as e:
            raise DataJointError(f"Invalid blob: bad record array fields ({e}).") from None
        records = np.empty(fields[0].shape, dtype=dtype)
        for name, field in zip(names, fields):
            records[name] = field
        result = records.view(np.recarray)
        return result.squeeze() if self.squeeze else result

    def read_cell(self) -> Any:
        shape = self.read_shape()
        array = self.read_elements(shape, math.prod(shape))
        return self.finish(array.view(MatCell), scalar=False)

    def read_struct(self) -> Any:
        shape = self.read_shape()
        n_fields = self.u32()
        names = [self.cstring() for _ in range(n_fields)]
        n = math.prod(shape)
        if n * n_fields * _MIN_ITEM_SIZE > len(self.buffer) - self.pos:
            raise DataJointError("Invalid blob: truncated struct array.")
        try:
            records = np.empty(n, dtype=[(name, object) for name in names])
        except (TypeError, ValueError) as e:
            raise DataJointError(f"Invalid blob: bad struct field names ({e}).") from None
        for i in range(n if names else 0):
            records[i] = tuple(self.read_sized() for _ in names)
        return self.finish(records.reshape(shape, order="F").view(MatStruct), scalar=False)


def _make_datetime(date_part: int, time_part: int) -> datetime.date | datetime.time:
    time = None
    if time_part != -1:
        seconds, microsecond = divmod(time_part, 1_000_000)
        hhmm, second = divmod(seconds, 100)
        hour, minute = divmod(hhmm, 100)
        time = datetime.time(hour, minute, second, microsecond)
    if date_part == -1:
        if time is None:
            raise ValueError("neither date nor time")
        return time
    year_month, day = divmod(date_part, 100)
    year, month = divmod(year_month, 100)
    date = datetime.date(year, month, day)
    return date if time is None else datetime.datetime.combine(date, time)


_READERS: dict[bytes, Any] = {
    _ARRAY: _Reader.read_array,
    _STRUCT: _Reader.read_struct,
    _CELL: _Reader.read_cell,
    _NONE: _Reader.read_none,
    _TUPLE: _Reader.read_tuple,
    _LIST: _Reader.read_list,
    _SET: _Reader.read_set,
    _DICT: _Reader.read_dict,
    _STR: _Reader.read_str,
    _BYTES: _Reader.read_bytes,
    _INT: _Reader.read_int,
    _BOOL: _Reader.read_bool,
    _COMPLEX: _Reader.read_complex,
    _FLOAT: _Reader.read_float,
    _RECARRAY: _Reader.read_recarray,
    _DECIMAL: _Reader.read_decimal,
    _DATETIME: _Reader.read_datetime,
    _UUID: _Reader.read_uuid,
}
