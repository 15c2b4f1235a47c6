"""Blob serialization: reference vectors, round trips, compression decisions, bad input.

The vectors in `tests/data/blob-vectors/` were written by DataJoint 2.3.5; see their README.
Set `DJ_REFERENCE_PYTHON` to a python with `datajoint==2.3.5` installed to also check, in a
subprocess, that the reference reads what we write and that we read what it writes.
"""

from __future__ import annotations

import datetime
import decimal
import json
import os
import subprocess
import sys
import textwrap
import uuid
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from datajoint_sa import blob
from datajoint_sa.errors import DataJointError

VECTORS = Path(__file__).parent / "data" / "blob-vectors"
MANIFEST = json.loads((VECTORS / "manifest.json").read_text())
NAMESPACE = {"np": np, "datetime": datetime, "uuid": uuid, "decimal": decimal}

# `normalize` turns a value into a hashable description that ignores what the format cannot
# keep (str vs object arrays, memory order) but not values, shapes, dtypes or Python types.
# It is source text so that the reference subprocess compares in exactly the same way.
NORMALIZE_SOURCE = '''
import numpy as np

def normalize(x):
    if isinstance(x, np.ndarray):
        if x.dtype.names is not None:
            return ("rec", x.shape, tuple((n, normalize(np.asarray(x[n]))) for n in x.dtype.names))
        if x.dtype.kind in "OUS":
            return ("obj", x.shape, tuple(normalize(e) for e in x.ravel().tolist()))
        if x.ndim == 0:  # the reference returns numeric 0-d arrays as numpy scalars
            return normalize(x[()])
        return ("nd", x.dtype.str, x.shape, x.tobytes())
    if isinstance(x, str):
        return ("str", str(x))
    if isinstance(x, bytes):
        return ("bytes", bytes(x))
    if isinstance(x, np.generic):
        return ("np", x.dtype.str, x.tobytes())
    if isinstance(x, (list, tuple)):
        return (type(x).__name__, tuple(normalize(e) for e in x))
    if isinstance(x, dict):
        return ("dict", tuple((normalize(k), normalize(v)) for k, v in x.items()))
    if isinstance(x, (set, frozenset)):
        return ("set", frozenset(normalize(e) for e in x))
    if isinstance(x, float) and x != x:
        return ("float", "nan")
    return (type(x).__name__, x)
'''
_normalize_namespace: dict[str, Any] = {}
exec(NORMALIZE_SOURCE, _normalize_namespace)
normalize: Callable[[Any], Any] = _normalize_namespace["normalize"]


def type_name(value: Any) -> str:
    """The manifest's spelling of a type: `ndarray[int64]`, `float64`, `recarray[...]`."""
    name = type(value).__name__
    return f"{name}[{value.dtype}]" if isinstance(value, np.ndarray) else name


def assert_same(got: Any, expected: Any) -> None:
    assert normalize(got) == normalize(expected)


def roundtrip(value: Any, **kwargs: Any) -> Any:
    return blob.unpack(blob.pack(value, **kwargs))


# ---------------------------------------------------------------------------------------------
# reference vectors
# ---------------------------------------------------------------------------------------------


def vector_id(entry: dict) -> str:
    return entry.get("file") or f"{entry['name']}{'.z' if entry['compress'] else ''}-error"


@pytest.mark.parametrize("entry", MANIFEST, ids=vector_id)
def test_reference_vector(entry: dict) -> None:
    original = eval(entry["expr"], NAMESPACE)
    if "error" in entry:
        with pytest.raises(DataJointError, match=type(original).__name__):
            blob.pack(original)
        return
    data = (VECTORS / entry["file"]).read_bytes()
    assert data[:4] == entry["header"].encode("latin1")
    value = blob.unpack(data)
    assert type_name(value) == entry["unpacked_type"]
    assert_same(value, original)
    # what we pack reads back the same way, and with the same header (MATLAB compatibility)
    ours = blob.pack(original, compress=False)
    assert ours[:4] in (b"mYm\0", b"dj0\0")
    assert_same(blob.unpack(ours), value)
    if not entry["compress"]:
        assert ours[:4] == data[:4]


def test_vectors_are_all_present() -> None:
    files = {e["file"] for e in MANIFEST if e.get("file")}
    assert files and all((VECTORS / f).is_file() for f in files)


def test_reference_compressed_vector_is_compressed() -> None:
    data = (VECTORS / "float64_big.z.blob").read_bytes()
    assert data.startswith(b"ZL123\0")
    assert_same(blob.unpack(data), blob.unpack((VECTORS / "float64_big.blob").read_bytes()))


def test_reference_vector_types_that_differ_from_the_original() -> None:
    """Mirror the reference: str arrays come back as object arrays, 0-d as numpy scalars."""
    assert blob.unpack((VECTORS / "str_array.blob").read_bytes()).dtype == object
    assert type(blob.unpack((VECTORS / "scalar_array_0d.blob").read_bytes())) is np.float64
    rec = blob.unpack((VECTORS / "record_array.blob").read_bytes())
    assert isinstance(rec, np.recarray) and rec.dtype["s"].kind == "O"
    assert rec.s.tolist() == ["x", "yz"] and rec.id.tolist() == [1, 2]


# ---------------------------------------------------------------------------------------------
# round trips
# ---------------------------------------------------------------------------------------------

NUMERIC_DTYPES = [
    np.bool_, np.int8, np.uint8, np.int16, np.uint16, np.int32, np.uint32, np.int64, np.uint64,
    np.float32, np.float64, np.complex64, np.complex128, np.intc, np.uintc, np.longlong,
]
SHAPES = [(), (0,), (1,), (7,), (3, 4), (0, 5), (2, 3, 4), (1, 1, 1, 2), (2, 1, 3, 1, 2)]


def sample_array(dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
    values = np.arange(int(np.prod(shape)), dtype=np.int64) * 37 % 101 - 50
    if np.dtype(dtype).kind == "b":
        return (values % 2 == 0).reshape(shape)
    if np.dtype(dtype).kind == "u":
        values = np.abs(values)
    array = values.astype(dtype).reshape(shape)
    if np.dtype(dtype).kind == "c":
        array = array + 1j * array[::-1] if array.ndim else array + 2j
    return array.astype(dtype)


@pytest.mark.parametrize("dtype", NUMERIC_DTYPES, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("shape", SHAPES, ids=str)
@pytest.mark.parametrize("order", ["C", "F", "strided"])
def test_numeric_array_roundtrip(dtype: Any, shape: tuple[int, ...], order: str) -> None:
    array = sample_array(dtype, shape)
    if order == "F":
        array = np.asfortranarray(array)
    elif order == "strided" and array.ndim:
        array = np.repeat(array, 2, axis=-1)[..., ::2]
        assert array.ndim < 2 or array.size == 0 or not array.flags.c_contiguous
    value = roundtrip(array, compress=False)
    if array.ndim == 0:  # as the reference: a 0-d array comes back as a numpy scalar
        assert isinstance(value, np.generic) and value.dtype == array.dtype
        assert value == array[()]
    else:
        assert isinstance(value, np.ndarray)
        assert value.dtype == array.dtype and value.shape == array.shape
        assert np.array_equal(value, array)


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4)])
def test_mym_layout_is_column_major(shape: tuple[int, ...]) -> None:
    array = np.arange(int(np.prod(shape)), dtype=np.int16).reshape(shape)
    data = blob.pack(array, compress=False)
    assert data[:4] == b"mYm\0"
    assert data[-array.nbytes :] == array.tobytes(order="F")
    assert blob.pack(np.asfortranarray(array), compress=False) == data


def test_complex_layout_is_real_then_imaginary() -> None:
    array = np.array([[1 + 2j, 3 + 4j]], dtype=np.complex64)
    data = blob.pack(array, compress=False)
    assert data[-16:] == np.array([1, 3, 2, 4], dtype="<f4").tobytes()


def test_large_array_unpacks_without_copy() -> None:
    array = np.random.default_rng(0).random((300, 200))
    data = blob.pack(array, compress=False)
    value = blob.unpack(data)
    assert np.array_equal(value, array) and not value.flags.owndata
    assert np.shares_memory(value, np.frombuffer(data, np.uint8))


def test_byte_order_is_normalized() -> None:
    for dtype in (">i4", ">f8", ">c16", ">u2"):
        array = np.arange(6).astype(dtype).reshape(2, 3)
        value = roundtrip(array)
        assert value.dtype == array.dtype.newbyteorder("<") and np.array_equal(value, array)


@pytest.mark.parametrize("unit", ["Y", "M", "W", "D", "h", "m", "s", "ms", "us", "ns"])
def test_datetime64_roundtrip(unit: str) -> None:
    array = np.array(["2024-01-01", "1969-12-31", "NaT"], dtype=f"datetime64[{unit}]")
    value = roundtrip(array)
    assert value.dtype == array.dtype
    assert np.array_equal(value, array, equal_nan=True)
    assert roundtrip(array[0]) == array[0] and type(roundtrip(array[0])) is np.datetime64


@pytest.mark.parametrize(
    "value",
    [
        np.int8(-5), np.uint16(7), np.int32(-70000), np.uint64(2**64 - 1), np.float32(1.5),
        np.float64(-2.25), np.complex64(1 - 2j), np.complex128(3 + 4j), np.bool_(True),
        np.datetime64("2024-03-15T12:30"),
    ],
    ids=repr,
)
def test_numpy_scalar_roundtrip(value: np.generic) -> None:
    result = roundtrip(value)
    assert type(result) is type(value) and result == value


@pytest.mark.parametrize(
    "value",
    [
        None, True, False, 0, 1, -1, 127, 128, -128, -129, 255, 256, 2**63, -(2**63) - 1,
        2**1000, -(2**4000), 0.0, -0.0, 3.25, float("inf"), 1e-310, complex(1.5, -2),
        "", "hello", "naïve – 日本語 🙂", b"", b"\x00\xff" * 600, bytearray(b"abc"),
        datetime.datetime(2024, 3, 15, 12, 30, 45, 123456), datetime.datetime.min,
        datetime.datetime.max, datetime.date(1, 1, 1), datetime.date(9999, 12, 31),
        datetime.time(0, 0), datetime.time(23, 59, 59, 999999),
        uuid.UUID("12345678-1234-5678-1234-567812345678"),
        uuid.UUID("5af4fd20-b02c-44f6-8317-0c2b8a1f9e44"),
        decimal.Decimal("3.14159"), decimal.Decimal("-1E+5"), decimal.Decimal("Infinity"),
        [], (), {}, set(), [1, 2.5, "three", None, [4, 5]], (1, ("a", (2.0,))),
        {1, "a", (2, 3)}, {"a": 1, 2: [3, {"b": (4, None)}], (1, 2): "tuple key"},
        list(range(1000)),
    ],
    ids=lambda v: type(v).__name__ + ":" + (repr(sorted(v, key=repr)) if isinstance(v, set) else repr(v))[:30],
)
def test_python_value_roundtrip(value: Any) -> None:
    for compress in (False, True):
        result = roundtrip(value, compress=compress)
        expected = bytes(value) if isinstance(value, bytearray) else value
        assert type(result) is type(expected) and result == expected


def test_nan_and_special_values() -> None:
    assert np.isnan(roundtrip(float("nan")))
    array = np.array([np.nan, np.inf, -np.inf, -0.0])
    assert np.array_equal(roundtrip(array), array, equal_nan=True)
    assert np.signbit(roundtrip(-0.0))


def test_other_containers() -> None:
    assert roundtrip(frozenset({1, 2})) == {1, 2}
    assert roundtrip(range(3)) == (0, 1, 2)
    assert roundtrip(memoryview(b"ab")) == b"ab"
    assert roundtrip(np.str_("x")) == "x" and roundtrip(np.bytes_(b"y")) == b"y"


def test_string_and_bytes_arrays() -> None:
    for array in (np.array(["ab", "cde", ""]), np.array([[b"a", b"bc"]]), np.array("xy")):
        value = roundtrip(array)
        assert value.dtype == object and value.shape == array.shape
        assert value.tolist() == array.tolist()


def test_object_arrays() -> None:
    array = np.empty((2, 3), dtype=object)
    array[:] = [[1, "a", None], [np.arange(3), {"k": 2.5}, [np.ones(2)]]]
    for order in ("C", "F"):
        value = roundtrip(np.asarray(array, order=order))
        assert value.dtype == object and value.shape == (2, 3)
        assert_same(value, array)
    # equally shaped elements must not be broadcast into one bigger array
    same = np.empty(2, dtype=object)
    same[0], same[1] = np.zeros(3), np.ones(3)
    value = roundtrip(same)
    assert value.shape == (2,) and np.array_equal(value[1], np.ones(3))
    assert roundtrip(np.zeros((2, 0), dtype=object)).shape == (2, 0)


def test_nested_lists_of_arrays() -> None:
    inner = [np.zeros(3, dtype=np.int16), ("x", np.array(2.5))]
    value = [np.ones((2, 2)), inner, {"a": []}]
    assert_same(roundtrip(value), [value[0], [inner[0], ("x", np.float64(2.5))], {"a": []}])


STRUCTURED = [
    np.array([(1, 2.5, "x"), (2, -1.0, "yz")], dtype=[("id", "i4"), ("v", "f8"), ("s", "U3")]),
    np.array([[(1, 2.0)], [(3, 4.0)]], dtype=[("a", "<u2"), ("b", "c8")]),
    np.array((1, 2.0), dtype=[("a", "i4"), ("b", "f8")]),
    np.array([(1, (2.0, 3))], dtype=[("a", "i4"), ("b", [("x", "f8"), ("y", "i2")])]),
    np.array([(1, None), (2, [1, 2])], dtype=[("a", "i8"), ("o", "O")]),
    np.rec.array([(1, b"q")], dtype=[("a", "i1"), ("b", "S2")]),
    np.zeros(0, dtype=[("a", "f4"), ("b", "?")]),
]


@pytest.mark.parametrize("array", STRUCTURED, ids=lambda a: str(a.dtype)[:40])
def test_structured_roundtrip(array: np.ndarray) -> None:
    value = roundtrip(array)
    assert isinstance(value, np.recarray) and value.shape == array.shape
    assert array.dtype.names and value.dtype.names == array.dtype.names
    for name in array.dtype.names:
        got, want = np.asarray(value[name]), np.asarray(array[name])
        assert got.shape == want.shape
        if want.dtype.kind in "OUS":
            assert got.dtype == object  # as the reference
            assert_same(got.tolist(), want.tolist())
        elif want.dtype.names is None:
            assert got.dtype == want.dtype and np.array_equal(got, want)
    if array.size:  # a structured scalar (np.void) comes back as a 0-d record array
        scalar = array[()] if array.ndim == 0 else array.ravel()[0]
        assert roundtrip(scalar).shape == () and roundtrip(scalar).tolist() == scalar.tolist()


def test_structured_subarray_field_is_refused() -> None:
    array = np.zeros(2, dtype=[("a", "f8", (3,))])
    with pytest.raises(DataJointError, match="sub-array"):
        blob.pack(array)


def test_matlab_cell_and_struct() -> None:
    cell = np.array([[1.0, "ab"], [None, np.arange(2)]], dtype=object).view(blob.MatCell)
    value = roundtrip(cell)
    assert isinstance(value, blob.MatCell) and value.shape == (2, 2)
    assert_same(np.asarray(value), np.asarray(cell))
    struct = np.array([(1.0, "x"), (2.0, "y")], dtype=[("a", "O"), ("b", "O")]).reshape(2, 1)
    value = roundtrip(struct.view(blob.MatStruct))
    assert isinstance(value, blob.MatStruct) and value.shape == (2, 1)
    assert value.a.tolist() == [[1.0], [2.0]] and value.b.tolist() == [["x"], ["y"]]


def test_matlab_char_arrays() -> None:
    def char_blob(text: str, shape: tuple[int, ...]) -> bytes:
        codes = np.frombuffer(text.encode("utf-16-le"), "<u2")
        header = np.array([len(shape), *shape], "<u8").tobytes() + np.array([4, 0], "<u4").tobytes()
        return b"mYm\0A" + header + codes.tobytes()

    assert blob.unpack(char_blob("abc", (1, 3))).tolist() == ["abc"]
    assert blob.unpack(char_blob("abc", (1, 3)), squeeze=True) == "abc"
    assert blob.unpack(char_blob("abcd", (2, 2))).tolist() == [["a", "c"], ["b", "d"]]
    assert blob.unpack(char_blob("", (1, 0))).tolist() == [""]


def test_squeeze() -> None:
    assert blob.unpack(blob.pack(np.array([[1, 2, 3]])), squeeze=True).shape == (3,)
    assert blob.unpack(blob.pack(np.array([[5]])), squeeze=True) == 5
    assert type(blob.unpack(blob.pack(np.array(2.5)), squeeze=True)) is float
    assert blob.unpack(blob.pack({"a": np.ones((1, 1))}), squeeze=True) == {"a": 1.0}
    rec = blob.unpack(blob.pack(STRUCTURED[1]), squeeze=True)
    assert rec.shape == (2,) and rec.a.tolist() == [1, 3]


def test_headers() -> None:
    assert blob.pack(np.arange(3))[:4] == b"mYm\0"
    assert blob.pack([np.arange(3)])[:4] == b"dj0\0"
    assert blob.pack(np.array(3.0))[:4] == b"dj0\0"
    assert blob.pack(np.zeros(2, dtype="M8[s]"))[:4] == b"dj0\0"
    cell = np.array([np.arange(2), np.ones(3)], dtype=object).view(blob.MatCell)
    assert blob.pack(cell)[:4] == b"mYm\0"


def test_unsupported_values() -> None:
    class Custom:
        pass

    for value, name in [
        (Custom(), "Custom"),
        (datetime.timedelta(1), "timedelta"),
        (np.array([1], dtype=np.float16), "float16"),
        (np.array([1], dtype="m8[s]"), "timedelta64"),
        (np.zeros(1, dtype="V4"), "V4"),
        ([1, object()], "object"),
        (datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc), "timezone"),
        (2**600000, "65535 bytes"),
    ]:
        with pytest.raises(DataJointError, match=name):
            blob.pack(value)


# ---------------------------------------------------------------------------------------------
# compression
# ---------------------------------------------------------------------------------------------


def test_random_floats_are_not_compressed(monkeypatch: pytest.MonkeyPatch) -> None:
    array = np.random.default_rng(1).random(200_000)

    def fail(*args: Any) -> Any:
        raise AssertionError("a full compression was attempted on incompressible data")

    monkeypatch.setattr(blob.zlib, "compressobj", fail)  # the sample must decide
    data = blob.pack(array)
    assert data[:4] == b"mYm\0" and len(data) > array.nbytes


def test_zeros_are_compressed() -> None:
    array = np.zeros((1000, 100))
    data = blob.pack(array)
    assert data.startswith(b"ZL123\0") and len(data) < array.nbytes / 50
    assert int.from_bytes(data[6:14], "little") == len(blob.pack(array, compress=False))
    assert np.array_equal(blob.unpack(data), array)
    assert blob.pack(array, compress=False)[:4] == b"mYm\0"


def test_small_blobs_are_not_compressed() -> None:
    assert blob.pack(np.zeros(100))[:4] == b"mYm\0"  # 800 bytes: not worth it
    assert blob.pack("a" * 2000)[:4] == b"ZL12"


def test_barely_compressible_data_is_not_compressed() -> None:
    array = np.sin(np.arange(200_000, dtype=np.float64))  # zlib saves ~5%: not worth it
    assert blob.pack(array)[:4] == b"mYm\0"


def test_compressible_data_after_an_incompressible_start() -> None:
    array = np.zeros(500_000)
    array[:4000] = np.random.default_rng(2).random(4000)
    data = blob.pack(array)
    assert data.startswith(b"ZL123\0")  # the middle and end of the sample decide
    assert np.array_equal(blob.unpack(data), array)


def test_unpack_accepts_other_buffers() -> None:
    data = blob.pack({"x": np.arange(5)})
    for buffer in (bytearray(data), memoryview(data)):
        assert_same(blob.unpack(buffer), {"x": np.arange(5)})


def test_is_blob() -> None:
    assert blob.is_blob(blob.pack(1))
    assert blob.is_blob(blob.pack(np.arange(3)))
    assert blob.is_blob(blob.pack(np.zeros(10000)))
    assert blob.is_blob(memoryview(b"mYm\0A"))
    assert not blob.is_blob(b"")
    assert not blob.is_blob(b"plain bytes")
    assert not blob.is_blob(b"ZL12")


# ---------------------------------------------------------------------------------------------
# bad input
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "unknown header"),
        (b"xyz\0abc", "unknown header"),
        (b"mYm", "unknown header"),
        (b"dj0\0", "truncated"),
        (b"dj0\0Z", "unknown type code"),
        (b"dj0\0P", "sparse"),
        (b"dj0\0\x0a\x02\x00\x05", "truncated"),
        (b"dj0\0\x0a\x01\x00\x05\x06", "left after"),
        (b"dj0\0A" + (100).to_bytes(8, "little") + bytes(800) + b"\x06" + bytes(7), "ValueError"),
        (b"dj0\0A" + (1).to_bytes(8, "little") + (2**62).to_bytes(8, "little"), "truncated"),
        (b"dj0\0\x02" + (2**60).to_bytes(8, "little"), "truncated"),
        (b"dj0\0A" + bytes(16) + (99).to_bytes(4, "little") + bytes(12), "class id"),
        (b"dj0\0t" + (20241399).to_bytes(4, "little") + bytes(8), "date"),
        (b"dj0\0\x05\x02" + bytes(7) + b"\xff\xfe", "UTF-8"),
        (b"ZL123\0", "truncated"),
        (b"ZL123\0" + (5).to_bytes(8, "little") + b"abc", "decompress"),
        (b"ZL123\0" + (99).to_bytes(8, "little") + zlib.compress(b"dj0\0\xff"), "instead of"),
        (b"ZL123\0" + (9).to_bytes(8, "little") + zlib.compress(b"ZL123\0abc"), "header"),
    ],
)
def test_bad_input(data: bytes, message: str) -> None:
    with pytest.raises(DataJointError, match=message):
        blob.unpack(data)


def test_unpack_rejects_non_buffers() -> None:
    with pytest.raises(DataJointError, match="int"):
        blob.unpack(5)  # type: ignore[arg-type]


@pytest.mark.parametrize("entry", [e for e in MANIFEST if e.get("file") and e["size"] < 5000],
                         ids=lambda e: e["file"])
def test_every_truncation_fails_cleanly(entry: dict) -> None:
    data = (VECTORS / entry["file"]).read_bytes()
    for end in range(len(data)):
        with pytest.raises(DataJointError):
            blob.unpack(data[:end])


def test_corruption_fails_cleanly() -> None:
    """Random byte flips give a value or a DataJointError, never another exception."""
    rng = np.random.default_rng(3)
    samples = [blob.pack(v, compress=False) for v in (
        [1, "a", {2: (3.5, None)}], np.arange(12).reshape(3, 4), STRUCTURED[0], STRUCTURED[3],
        np.array([1, "x", np.ones(2)], dtype=object), datetime.datetime(2020, 1, 2),
        np.array([[1 + 1j]]), decimal.Decimal("1.5"), uuid.UUID(int=5),
    )]
    for data in samples:
        for _ in range(300):
            corrupted = bytearray(data)
            for position in rng.integers(4, len(data), size=rng.integers(1, 4)):
                corrupted[position] = rng.integers(0, 256)
            try:
                blob.unpack(bytes(corrupted))
            except DataJointError:
                pass


# ---------------------------------------------------------------------------------------------
# the reference implementation, when available
# ---------------------------------------------------------------------------------------------

REFERENCE_CASES = [
    "7", "-2**70", "3.25", "complex(1, -2)", "True", "None", "'naïve – 日本語'", "b'\\x00ab'",
    "[1, 2.5, 'three', None, [4, 5]]", "(1, 'a', 2.0)", "{1, 2, 3}",
    "{'a': 1, 'b': [1, 2, {'c': 'd'}], 'e': np.arange(3)}",
    "np.arange(10, dtype=np.int64)", "np.arange(-12, 12, dtype=np.int8).reshape(4, 6)",
    "np.arange(60, dtype=np.uint16).reshape(3, 4, 5)",
    "np.asfortranarray(np.arange(20, dtype=np.int32).reshape(4, 5))",
    "np.arange(24, dtype=np.uint32).reshape(2, 3, 4)[:, ::2]",
    "np.linspace(0, 1, 12, dtype=np.float32).reshape(3, 4)",
    "np.array([[1+2j, 3-4j], [-5.5+0.5j, 0j]], dtype=np.complex64)",
    "np.array([1+2j, 3-4j, -5.5+0.5j])", "np.array([[True, False], [False, True]])",
    "np.zeros((0,), dtype=np.float64)", "np.zeros((3, 0), dtype=np.int32)", "np.array(2.5)",
    "np.uint64(2**64 - 1)", "np.float32(1.5)", "np.bool_(True)",
    "np.array(['ab', 'cde', ''])", "np.array([1, 'two', np.arange(3)], dtype=object)",
    "np.array([(1, 2.5, 'x'), (2, -1.0, 'yz')], dtype=[('id', 'i4'), ('v', 'f8'), ('s', 'U3')])",
    "np.array([(1, (2.0, 3))], dtype=[('a', 'i4'), ('b', [('x', 'f8'), ('y', 'i2')])])",
    "datetime.datetime(2024, 3, 15, 12, 30, 45, 123456)", "datetime.date(2024, 3, 15)",
    "datetime.time(12, 30, 45)", "uuid.UUID('12345678-1234-5678-1234-567812345678')",
    "decimal.Decimal('3.14159')",
    "np.array(['2024-01-01T00:00:00', 'NaT'], dtype='datetime64[s]')",
    "np.array(['2024-01-01'], dtype='datetime64[D]')",
    "[np.ones((2, 2)), np.zeros(3, dtype=np.int16), 'x']",
    "np.zeros((500, 400))", "np.random.default_rng(0).random((300, 200))",
    "list(range(300))", "'x' * 5000",
]

REFERENCE_SCRIPT = NORMALIZE_SOURCE + textwrap.dedent('''
    import datetime, decimal, json, sys, uuid, warnings
    from pathlib import Path
    warnings.filterwarnings("ignore")
    from datajoint import blob
    namespace = {"np": np, "datetime": datetime, "uuid": uuid, "decimal": decimal}
    folder = Path(sys.argv[1])
    cases = json.loads((folder / "cases.json").read_text())
    failures = []
    for i, expr in enumerate(cases):
        expected = eval(expr, namespace)
        for suffix in ("raw", "z"):  # what datajoint_sa wrote
            try:
                value = blob.unpack((folder / f"ours-{i}.{suffix}").read_bytes())
                if normalize(value) != normalize(expected):
                    failures.append([expr, suffix, "differs: " + repr(value)[:200]])
            except Exception as e:
                failures.append([expr, suffix, repr(e)])
        (folder / f"ref-{i}.z").write_bytes(blob.pack(expected))  # for datajoint_sa to read
    print(json.dumps(failures))
''')


@pytest.mark.skipif(not os.environ.get("DJ_REFERENCE_PYTHON"), reason="DJ_REFERENCE_PYTHON unset")
def test_reference_reads_ours_and_we_read_theirs(tmp_path: Path) -> None:
    (tmp_path / "cases.json").write_text(json.dumps(REFERENCE_CASES))
    (tmp_path / "check.py").write_text(REFERENCE_SCRIPT)
    for i, expr in enumerate(REFERENCE_CASES):
        value = eval(expr, NAMESPACE)
        (tmp_path / f"ours-{i}.raw").write_bytes(blob.pack(value, compress=False))
        (tmp_path / f"ours-{i}.z").write_bytes(blob.pack(value))
    result = subprocess.run(
        [os.environ["DJ_REFERENCE_PYTHON"], str(tmp_path / "check.py"), str(tmp_path)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []
    for i, expr in enumerate(REFERENCE_CASES):
        assert_same(blob.unpack((tmp_path / f"ref-{i}.z").read_bytes()), eval(expr, NAMESPACE))


if __name__ == "__main__":
    sys.exit(pytest.main([__file__, "-q"]))
