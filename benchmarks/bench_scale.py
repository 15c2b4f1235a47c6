"""Scale-out by simulation: keys through a 4-table chain on PostgreSQL with 1..16 workers.

Each make sleeps a few milliseconds (the computation) and inserts one row. Measured per
worker count, for threads and for populate's own processes, with `reserve_jobs=True`:
throughput (makes per second), the job-table work per key (statements on `~jobs` and the
time the database spent on them, from SQLAlchemy's cursor events; threads only, where the
events are in this process), and duplicate computations (every make appends a line to a
log; must be 0). Then the makespan of a chain with skewed per-key times (one straggler key
per table, a different key in each), key by key (`dj.populate`) against table by table
(`T.populate` per table, each waiting for the last).

    python -m benchmarks.bench_scale [--quick] [--keys N] [--workers 1,2,4,8,16]
                                     [--make-ms 3] [--url URL]
                                     [--skew docs|KEYS:SECONDS,...] [--skew-only]

`--quick` (the default; `--full` for 10^4 keys) sizes the run to a couple of minutes on a
small shared machine. `python -m benchmarks scale` runs the quick form on PostgreSQL.
"""

from __future__ import annotations

import argparse
import collections
import concurrent.futures as cf
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import datajoint_sa as dj

URL = os.environ.get("DJ_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
LOG = "DJ_BENCH_SCALE_LOG"
STATE: dict[str, Any] = {"make_s": 0.003, "slow": {}}


def _make(table: Any, key: dict[str, Any]) -> None:
    name = type(table).__name__
    pause = STATE["slow"].get((name, key["k"]), STATE["make_s"])
    time.sleep(pause)
    with open(os.environ[LOG], "a") as log:
        log.write(f"{name} {key['k']}\n")
    table.insert1(dict(key, v=key["k"]))


def _declare(schema: dj.Schema) -> list[Any]:
    @schema
    class Source(dj.Manual):
        definition = """
        k : int32
        """

    @schema
    class A(dj.Computed):
        definition = """
        -> Source
        ---
        v : int32
        """
        make = _make

    @schema
    class B(dj.Computed):
        definition = """
        -> A
        ---
        v : int32
        """
        make = _make

    @schema
    class C(dj.Computed):
        definition = """
        -> B
        ---
        v : int32
        """
        make = _make

    @schema
    class D(dj.Computed):
        definition = """
        -> C
        ---
        v : int32
        """
        make = _make

    return [Source, A, B, C, D]


class _JobStatements:
    """Statements on the job table and the time they took, and all statements, from cursor
    events (threads only: the events of other processes are not seen here)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.count = 0
        self.total = 0
        self.seconds = 0.0
        self.lock = threading.Lock()
        self.local = threading.local()
        sa.event.listen(engine, "before_cursor_execute", self.before)
        sa.event.listen(engine, "after_cursor_execute", self.after)

    def before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.local.start = time.perf_counter() if "~jobs" in statement else None
        with self.lock:
            self.total += 1

    def after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        start = getattr(self.local, "start", None)
        if start is not None:
            with self.lock:
                self.count += 1
                self.seconds += time.perf_counter() - start


def _fresh(url: str, keys: int, workers: int) -> tuple[dj.Connection, dj.Schema, list[Any]]:
    connection = dj.Connection(url, pool_size=2 * workers + 8, max_overflow=8)
    schema = dj.Schema(f"bench_scale_{uuid.uuid4().hex[:8]}", connection=connection)
    tables = _declare(schema)
    tables[0].insert([(k,) for k in range(keys)])
    return connection, schema, tables


def _duplicates(log: Path) -> int:
    counts = collections.Counter(log.read_text().splitlines()) if log.exists() else {}
    return sum(n - 1 for n in counts.values() if n > 1)


def throughput(url: str, keys: int, workers: int, mode: str) -> dict[str, Any]:
    """One run of the whole chain with `workers` threads or processes."""
    log = Path(tempfile.mkdtemp()) / "makes.log"
    os.environ[LOG] = str(log)
    connection, schema, tables = _fresh(url, keys, workers)
    counter = _JobStatements(connection.engine) if mode == "threads" else None
    try:
        start = time.perf_counter()
        if mode == "threads":
            with cf.ThreadPoolExecutor(workers) as executor:
                result = dj.populate(schema, executor=executor, reserve_jobs=True)
        else:
            result = dj.populate(schema, processes=workers, reserve_jobs=True)
        elapsed = time.perf_counter() - start
        makes = 4 * keys
        assert result["success_count"] == makes, result["error_list"][:3]
        row: dict[str, Any] = {
            "benchmark": "scale_chain", "backend": connection.backend, "mode": mode,
            "workers": workers, "keys": keys, "makes": makes, "seconds": elapsed,
            "makes_per_s": makes / elapsed, "duplicates": _duplicates(log)}
        if counter is not None:
            row["statements_per_make"] = counter.total / makes
            row["job_statements_per_make"] = counter.count / makes
            row["job_ms_per_make"] = 1000 * counter.seconds / makes
        return row
    finally:
        schema.drop(force=True)
        connection.close()


def skewed(url: str, keys: int, workers: int, straggler_s: float) -> dict[str, Any]:
    """Makespan key by key against table by table, one straggler per table."""
    names = ["A", "B", "C", "D"]
    # a different slow key in each table: table by table waits for each in turn
    STATE["slow"] = {(name, (i * keys) // 4): straggler_s for i, name in enumerate(names)}
    row: dict[str, Any] = {"benchmark": "scale_skewed", "workers": workers, "keys": keys,
                           "straggler_s": straggler_s}
    try:
        duplicates = 0
        for schedule in ("table_by_table", "key_by_key"):
            log = Path(tempfile.mkdtemp()) / "makes.log"
            os.environ[LOG] = str(log)
            connection, schema, tables = _fresh(url, keys, workers)
            row["backend"] = connection.backend
            counter = _JobStatements(connection.engine)
            try:
                start, cpu = time.perf_counter(), time.process_time()
                with cf.ThreadPoolExecutor(workers) as executor:
                    if schedule == "key_by_key":
                        dj.populate(schema, executor=executor, reserve_jobs=True)
                    else:
                        for table in tables[1:]:
                            table.populate(executor=executor, reserve_jobs=True)
                row[f"{schedule}_s"] = time.perf_counter() - start
                row[f"{schedule}_statements_per_make"] = counter.total / (4 * keys)
                row[f"{schedule}_cpu_ms_per_make"] = 1000 * (
                    time.process_time() - cpu) / (4 * keys)
                assert len(tables[-1]) == keys
                duplicates += _duplicates(log)
            finally:
                schema.drop(force=True)
                connection.close()
    finally:
        STATE["slow"] = {}
    row["speedup"] = row["table_by_table_s"] / row["key_by_key_s"]
    row["duplicates"] = duplicates
    return row


#: the skewed-chain cases of docs/scale-out.md: (keys, straggler seconds)
SKEW_CASES = ((40, 0.5), (40, 2.0), (200, 2.0), (1250, 0.5))


def run(urls: dict[str, str], *, keys: int = 300, workers: tuple[int, ...] = (1, 2, 4, 8, 16),
        modes: tuple[str, ...] = ("threads", "processes"), make_ms: float = 3.0,
        skew: tuple[tuple[int, float], ...] | None = None) -> list[dict[str, Any]]:
    """The quick form on PostgreSQL (the harness's entry point); `skew` replaces the one
    skewed case of the quick form by the given (keys, straggler seconds) cases."""
    url = urls.get("postgresql")
    if url is None:
        return []
    STATE["make_s"] = make_ms / 1000
    rows = []
    for mode in modes:
        for count in workers:
            rows.append(throughput(url, keys, count, mode))
            _print(rows[-1])
    for skew_keys, straggler in skew if skew is not None else ((max(40, keys // 8), 0.5),):
        rows.append(skewed(url, skew_keys, 4, straggler_s=straggler))
        _print(rows[-1])
    return rows


def _print(row: dict[str, Any]) -> None:
    print("  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in row.items()), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.bench_scale")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="300 keys (default)")
    size.add_argument("--full", action="store_true", help="10^4 keys")
    parser.add_argument("--keys", type=int, default=None)
    parser.add_argument("--workers", default="1,2,4,8,16")
    parser.add_argument("--modes", default="threads,processes")
    parser.add_argument("--make-ms", type=float, default=3.0)
    parser.add_argument("--url", default=URL)
    parser.add_argument("--skew", default=None, metavar="KEYS:SECONDS,...|docs",
                        help="skewed-chain cases (4 threads), e.g. 40:0.5,200:2; 'docs' for "
                             "the four of docs/scale-out.md")
    parser.add_argument("--skew-only", action="store_true",
                        help="only the skewed-chain cases, no throughput runs")
    args = parser.parse_args()
    keys = args.keys or (10_000 if args.full else 300)
    skew: tuple[tuple[int, float], ...] | None = None
    if args.skew == "docs":
        skew = SKEW_CASES
    elif args.skew:
        skew = tuple((int(k), float(t)) for k, _, t in
                     (case.partition(":") for case in args.skew.split(",")))
    run({"postgresql": args.url}, keys=keys,
        workers=() if args.skew_only else tuple(int(w) for w in args.workers.split(",")),
        modes=tuple(args.modes.split(",")), make_ms=args.make_ms, skew=skew)


if __name__ == "__main__":
    main()
