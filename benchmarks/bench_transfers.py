"""Parallel transfers: 200 `<blob@store>` objects (and 200 `<attach@store>` files) inserted
and fetched through an S3 API server (moto, in its own process) that adds 20 ms to every
request, with `dj.config["transfer_workers"]` = 1 (one at a time) and the default (16).

`ratio` is concurrent time / one-at-a-time time (lower is better; 0.2 is the 5x target).
``python -m benchmarks transfers`` prints the numbers.
"""

from __future__ import annotations

import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

import datajoint_sa as dj
from datajoint_sa.transfers import DEFAULT_WORKERS
from tests.s3_server import S3Server

OBJECTS = 200
LATENCY = 0.02
FLOATS = 4096  # 32 KiB per object


def _tables(schema: dj.Schema) -> tuple[Any, Any]:
    @schema
    class Signal(dj.Manual):
        definition = """
        n : int32
        ---
        signal : <blob@s3>
        """

    @schema
    class Document(dj.Manual):
        definition = """
        n : int32
        ---
        doc : <attach@s3>
        """

    return Signal, Document


def _timed(action: Any) -> float:
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def _case(table: Any, rows: list[dict[str, Any]], workers: int, downloads: str
          ) -> tuple[float, float, list[Any]]:
    """(insert seconds, fetch seconds, fetched values) with `workers` transfer threads."""
    with dj.config.override(transfer_workers=workers):
        insert = _timed(lambda: table.insert(rows))
        fetched: list[Any] = []
        fetch = _timed(lambda: fetched.extend(table.fetch(order_by="n", as_dict=True,
                                                          download_path=downloads)))
    return insert, fetch, fetched


def run(urls: dict[str, str]) -> list[dict[str, Any]]:
    server = S3Server(latency=LATENCY)
    previous = dj.config["stores"]
    results: list[dict[str, Any]] = []
    folder = Path(tempfile.mkdtemp(prefix="bench-transfers-"))
    try:
        arrays = [np.random.default_rng(i).random(FLOATS) for i in range(OBJECTS)]
        files = []
        for i in range(OBJECTS):
            path = folder / "in" / f"doc{i}.bin"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(os.urandom(FLOATS * 8))
            files.append(path)
        for backend, url in urls.items():
            connection = dj.Connection(url)
            try:
                times: dict[tuple[str, int], tuple[float, float]] = {}
                for workers in (1, DEFAULT_WORKERS):
                    # a fresh store prefix and schema per run: every object is new
                    dj.config["stores"] = {"s3": server.store_spec(uuid.uuid4().hex[:8])}
                    schema = dj.Schema(f"bench_tr_{uuid.uuid4().hex[:8]}",
                                       connection=connection)
                    try:
                        Signal, Document = _tables(schema)
                        insert, fetch, got = _case(
                            Signal, [{"n": i, "signal": a} for i, a in enumerate(arrays)],
                            workers, str(folder / "out"))
                        assert all(np.array_equal(r["signal"], a) for r, a in zip(got, arrays))
                        times[("blob", workers)] = (insert, fetch)
                        insert, fetch, got = _case(
                            Document, [{"n": i, "doc": f} for i, f in enumerate(files)],
                            workers, str(folder / f"out{workers}"))
                        assert all(Path(r["doc"]).read_bytes() == f.read_bytes()
                                   for r, f in zip(got, files))
                        times[("attach", workers)] = (insert, fetch)
                    finally:
                        schema.drop(force=True)
                for kind in ("blob", "attach"):
                    for step, what in enumerate(("insert", "fetch")):
                        one = times[(kind, 1)][step]
                        many = times[(kind, DEFAULT_WORKERS)][step]
                        results.append({
                            "benchmark": f"{kind}@s3 {OBJECTS}x32KiB {what}, "
                                         f"{LATENCY * 1000:.0f} ms/request",
                            "backend": backend, "one at a time s": one,
                            f"{DEFAULT_WORKERS} workers s": many, "speed-up": one / many,
                            "ratio": many / one})
            finally:
                connection.close()
    finally:
        dj.config["stores"] = previous
        server.stop()
    return results


if __name__ == "__main__":
    from benchmarks.__main__ import DEFAULT_URLS

    for row in run(DEFAULT_URLS):
        print(row)
