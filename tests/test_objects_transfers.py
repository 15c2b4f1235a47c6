"""Parallel transfers: the store objects of a `<blob@store>` / `<attach@store>` column are
written and read concurrently (a thread pool), return identical bytes in row order, and a
failed write leaves no row. On a local folder and on an S3 API server (moto)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import datajoint_sa as dj
from datajoint_sa.stores import Store

from .s3_server import S3Server


@pytest.fixture(scope="module")
def s3() -> Iterator[S3Server]:
    server = S3Server()
    yield server
    server.stop()


@pytest.fixture(params=["file", "s3"])
def store_spec(request: pytest.FixtureRequest, tmp_path: Path,
               monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    if request.param == "file":
        spec: dict[str, Any] = {"protocol": "file", "location": str(tmp_path / "store")}
    else:
        spec = request.getfixturevalue("s3").store_spec(uuid.uuid4().hex[:10])
    monkeypatch.setitem(dj.config, "stores", {"ext": spec})
    return spec


class InFlight:
    """Wraps Store.put and Store.get with a delay, counting the calls running at once."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, delay: float = 0.02) -> None:
        self.lock, self.now, self.most, self.calls = threading.Lock(), 0, 0, 0
        for name in ("put", "get"):
            original = getattr(Store, name)
            monkeypatch.setattr(Store, name, self._wrap(original, delay))

    def _wrap(self, original: Any, delay: float) -> Any:
        def wrapped(store: Store, *args: Any, **kwargs: Any) -> Any:
            with self.lock:
                self.now += 1
                self.calls += 1
                self.most = max(self.most, self.now)
            try:
                time.sleep(delay)
                return original(store, *args, **kwargs)
            finally:
                with self.lock:
                    self.now -= 1
        return wrapped

    def reset(self) -> None:
        self.most = self.calls = 0


def _declare(schema: dj.Schema) -> Any:
    @schema
    class Trace(dj.Manual):
        definition = """
        trace : int32
        ---
        signal : <blob@ext>
        doc = null : <attach@ext>
        """
    return Trace


def test_many_objects_move_concurrently_and_come_back_identical(
        schema: dj.Schema, store_spec: dict[str, Any], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    Trace = _declare(schema)
    rng = np.random.default_rng(7)
    signals = [rng.normal(size=(50 + i, 3)) for i in range(40)]
    signals[5] = signals[4]  # the same content twice: stored once
    docs = []
    for i in range(12):
        folder = tmp_path / "docs" / str(i)
        folder.mkdir(parents=True)
        path = folder / "notes.txt"  # the same name, different content
        path.write_bytes(rng.bytes(100 + i))
        docs.append(path)
    rows = [{"trace": i, "signal": s, "doc": docs[i] if i < len(docs) else None}
            for i, s in enumerate(signals)]
    flight = InFlight(monkeypatch)
    Trace.insert(rows)
    assert flight.most > 1  # the writes overlapped
    assert flight.calls == 40 - 1 + 12  # each distinct object written once
    flight.reset()
    fetched = Trace.fetch(as_dict=True, order_by="trace", download_path=tmp_path / "dl")
    assert flight.most > 1
    for row, signal in zip(fetched, signals):
        np.testing.assert_array_equal(row["signal"], signal)
    for i, path in enumerate(docs):
        assert Path(fetched[i]["doc"]).read_bytes() == path.read_bytes()
    # downloaded names are given in row order, as one at a time would
    assert [Path(r["doc"]).name for r in fetched[:3]] == ["notes.txt", "notes_1.txt",
                                                           "notes_2.txt"]
    assert all(r["doc"] is None for r in fetched[12:])

    # one at a time when asked: the same result
    monkeypatch.setitem(dj.config, "transfer_workers", 1)
    flight.reset()
    again = Trace.fetch("signal", order_by="trace")
    assert flight.most == 1
    for value, signal in zip(again, signals):
        np.testing.assert_array_equal(value, signal)


@pytest.mark.parametrize("store_spec", ["s3"], indirect=True)
def test_a_failed_concurrent_write_inserts_no_row(
        schema: dj.Schema, store_spec: dict[str, Any], monkeypatch: pytest.MonkeyPatch
        ) -> None:
    Trace = _declare(schema)
    original = Store._write

    def flaky(store: Store, full: str, data: bytes) -> None:
        if len(data) == len(dj.blob.pack(np.zeros(13))):
            raise OSError("connection reset")
        original(store, full, data)

    monkeypatch.setattr(Store, "_write", flaky)
    rows = [{"trace": i, "signal": np.zeros(10 + i)} for i in range(8)]
    with pytest.raises(dj.DataJointError, match=r"Trace\.signal.*connection reset"):
        Trace.insert(rows)
    assert len(Trace()) == 0
