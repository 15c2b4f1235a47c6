"""Parallel transfers: 200 `<blob@store>` objects (and 200 `<attach@store>` files) inserted
and fetched through an S3 API server (moto, in its own process) that adds 20 ms to every
request, with `dj.config["transfer_workers"]` = 1 (one at a time) and the default (16).

`ratio` is concurrent time / one-at-a-time time (lower is better; 0.2 is the 5x target).
The CPU seconds the concurrent run took in this process and in the server are reported
too: with the server and client sharing a loaded machine, they, not the latency, bound
the concurrent wall time. ``python -m benchmarks transfers`` prints the numbers.
"""

from __future__ import annotations

import os
import resource
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


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _case(table: Any, rows: list[dict[str, Any]], workers: int, downloads: str,
          server: S3Server) -> tuple[list[tuple[float, float, float]], list[Any]]:
    """[(wall, client CPU, server CPU) seconds of the insert, of the fetch], and the
    fetched rows, with `workers` transfer threads."""
    fetched: list[Any] = []
    steps = (lambda: table.insert(rows),
             lambda: fetched.extend(table.fetch(order_by="n", as_dict=True,
                                                download_path=downloads)))
    measured = []
    with dj.config.override(transfer_workers=workers):
        for step in steps:
            cpu, server_cpu = _cpu(), server.cpu_seconds() or 0.0
            wall = _timed(step)
            measured.append((wall, _cpu() - cpu, (server.cpu_seconds() or 0.0) - server_cpu))
    return measured, fetched


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
                times: dict[tuple[str, int], list[tuple[float, float, float]]] = {}
                for workers in (1, DEFAULT_WORKERS):
                    # a fresh store prefix and schema per run: every object is new
                    dj.config["stores"] = {"s3": server.store_spec(uuid.uuid4().hex[:8])}
                    schema = dj.Schema(f"bench_tr_{uuid.uuid4().hex[:8]}",
                                       connection=connection)
                    try:
                        Signal, Document = _tables(schema)
                        measured, got = _case(
                            Signal, [{"n": i, "signal": a} for i, a in enumerate(arrays)],
                            workers, str(folder / "out"), server)
                        assert all(np.array_equal(r["signal"], a) for r, a in zip(got, arrays))
                        times[("blob", workers)] = measured
                        measured, got = _case(
                            Document, [{"n": i, "doc": f} for i, f in enumerate(files)],
                            workers, str(folder / f"out{workers}"), server)
                        assert all(Path(r["doc"]).read_bytes() == f.read_bytes()
                                   for r, f in zip(got, files))
                        times[("attach", workers)] = measured
                    finally:
                        schema.drop(force=True)
                for kind in ("blob", "attach"):
                    for step, what in enumerate(("insert", "fetch")):
                        one = times[(kind, 1)][step][0]
                        many, client, served = times[(kind, DEFAULT_WORKERS)][step]
                        results.append({
                            "benchmark": f"{kind}@s3 {OBJECTS}x32KiB {what}, "
                                         f"{LATENCY * 1000:.0f} ms/request",
                            "backend": backend, "one at a time s": one,
                            f"{DEFAULT_WORKERS} workers s": many, "speed-up": one / many,
                            "ratio": many / one,
                            # CPU the concurrent run needed: on a loaded machine the wall
                            # time is bounded by it, not by the latency
                            "client CPU s": client, "server CPU s": served})
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
