"""Every kind of value the blob format supports round-trips through every blob column type
(`longblob`, `mediumblob`, `blob`, `<blob>`, `<blob@store>`) on every backend."""

from __future__ import annotations

import datetime
import decimal
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import datajoint_sa as dj

RNG = np.random.default_rng(7)

VALUES: list[tuple[str, Any]] = [
    ("float64 matrix", RNG.normal(size=(4, 5))),
    ("float32 vector", RNG.normal(size=7).astype(np.float32)),
    ("int8 3-d", np.arange(24, dtype=np.int8).reshape(2, 3, 4)),
    ("uint16", np.array([0, 1, 65535], dtype=np.uint16)),
    ("int64", np.array([-(2**63), 2**63 - 1])),
    ("uint64", np.array([2**64 - 1], dtype=np.uint64)),
    ("bool", np.array([[True, False], [False, True]])),
    ("complex128", np.array([1 + 2j, -3.5j])),
    ("fortran order", np.asfortranarray(np.arange(12.0).reshape(3, 4))),
    ("non-contiguous", np.arange(20)[::3]),
    ("empty", np.zeros((0, 3))),
    ("0-d", np.array(2.5)),
    ("large", RNG.normal(size=(300, 300))),
    ("compressible", np.zeros(200_000)),
    ("structured", np.array([(1, 2.5), (3, -1.0)], dtype=[("a", "<i4"), ("b", "<f8")])),
    ("strings array", np.array(["a", "bc", "déf"], dtype=object)),
    ("dict", {"a": 1, "b": [1.5, "x"], "c": {"nested": np.arange(3)}}),
    ("list", [1, "two", 3.0, None, [4, 5]]),
    ("tuple", (1, 2, "three")),
    ("set", {1, 2, 3}),
    ("string", "héllo ✓ \0 with a NUL"),
    ("empty string", ""),
    ("bytes", b"\x00\xff raw"),
    ("int", 42),
    ("big int", 2**70),
    ("float", 1 / 3),
    ("complex", 2 - 1j),
    ("bool value", True),
    ("None inside", [None]),
    ("datetime", datetime.datetime(2024, 5, 6, 7, 8, 9, 123456)),
    ("date", datetime.date(2024, 2, 29)),
    ("uuid", uuid.UUID("6ba7b810-9dad-11d1-80b4-00c04fd430c8")),
    ("decimal", decimal.Decimal("3.14159")),
]
COLUMNS = ["longblob", "mediumblob", "blob", "<blob>", "<blob@ext>"]


def same(a: Any, b: Any) -> bool:
    """Equality that looks inside numpy arrays and containers, and at types."""
    if isinstance(a, np.ndarray) and a.ndim == 0 and a.dtype.kind != "O":
        # like the reference, a numeric 0-d array comes back as a numpy scalar
        return isinstance(b, np.generic) and b.dtype == a.dtype and bool(a[()] == b)
    if isinstance(a, np.ndarray):
        if not isinstance(b, np.ndarray) or a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype.kind == "O":
            return all(same(x, y) for x, y in zip(a.ravel(), b.ravel()))
        return bool(np.array_equal(a, b))
    if type(a) is not type(b) and not (isinstance(a, np.generic) or isinstance(b, np.generic)):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return bool(a == b)


@pytest.fixture
def ext_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setitem(dj.config, "stores",
                        {"ext": {"protocol": "file", "location": str(tmp_path / "store")}})
    return "ext"


@pytest.mark.parametrize("column", COLUMNS)
def test_blob_column_round_trips(schema: dj.Schema, ext_store: str, column: str) -> None:
    class Thing(dj.Manual):
        definition = f"""
        id : int32
        ---
        value : {column}
        maybe = null : {column}
        """

    schema(Thing)
    Thing.insert([{"id": i, "value": value} for i, (_, value) in enumerate(VALUES)])
    fetched = Thing.fetch(as_dict=True, order_by="id")
    assert len(fetched) == len(VALUES)
    for (label, value), row in zip(VALUES, fetched):
        assert same(value, row["value"]), (column, label, value, row["value"])
        assert row["maybe"] is None
    # the attribute forms: an object array of the values, one value with fetch1
    values = Thing.fetch("value", order_by="id")
    assert values.dtype == object and same(values[0], VALUES[0][1])
    assert same((Thing & {"id": 2}).fetch1("value"), VALUES[2][1])


def test_null_in_a_nullable_blob(schema: dj.Schema) -> None:
    @schema
    class Optional(dj.Manual):
        definition = """
        id : int32
        ---
        data = null : longblob
        """

    Optional.insert([{"id": 1}, {"id": 2, "data": None}, {"id": 3, "data": [None]}])
    assert [r["data"] for r in Optional.fetch(as_dict=True, order_by="id")] == [
        None, None, [None]]


def test_recarray_fetch_keeps_arrays_of_any_shape(schema: dj.Schema) -> None:
    @schema
    class Trace(dj.Manual):
        definition = """
        id : int32
        ---
        samples : <blob>
        """

    shapes = [(3,), (2, 2), (0,), (1, 4)]
    Trace.insert([{"id": i, "samples": np.ones(s)} for i, s in enumerate(shapes)])
    records = Trace.fetch(order_by="id")
    assert [r["samples"].shape for r in records] == shapes
    # squeeze drops singleton dimensions
    assert Trace.fetch("samples", order_by="id", squeeze=True)[3].shape == (4,)
