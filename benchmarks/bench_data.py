"""Bulk insert and fetch of 100k rows, as ratios to the same work done with the raw driver.

For each backend, in one run and on the same table:
- insert 100k rows given as dicts, against the driver's fastest bulk path given ready tuples
  (PostgreSQL: psycopg COPY; MySQL: PyMySQL executemany, which sends multi-row INSERTs;
  SQLite: sqlite3 executemany in one transaction);
- fetch 100k rows to a DataFrame indexed by the primary key, to a list of dicts and to a
  structured array, against cursor.execute + fetchall + the same conversion with pandas /
  dict(zip()) / numpy.
With DJ_BENCH_PEER set (to a Python that has `datajoint` installed, or to "auto" for a
virtual environment of its own under ~/.cache with datajoint==2.3.5), the reference
implementation does the same work on PostgreSQL and MySQL as a peer (benchmarks/
peer_datajoint.py, in that separate environment), reported against the same driver timings.

Ours and the driver's runs alternate, each timing is the best of REPEATS, and both sides run
with the cyclic garbage collector paused (as datajoint_sa does during bulk conversions), so
the ratio measures work, not collector pauses: ratio = ours / driver (1.0 = the driver).
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

import datajoint_sa as dj

ROWS = 100_000
REPEATS = 7
NAMES = ["id", "x", "label", "k"]
DTYPE = [("id", "<i4"), ("x", "<f8"), ("label", "O"), ("k", "<i4")]


def _pair(ours: Callable[[], Any], driver: Callable[[], Any],
          setup: Callable[[], Any] | None = None) -> tuple[float, float]:
    """Best times of ours and the driver's, measured alternately."""
    best = [float("inf"), float("inf")]
    for _ in range(REPEATS):
        for side, fn in enumerate((ours, driver)):
            if setup is not None:
                setup()
            gc.collect()
            gc.disable()
            try:
                start = time.perf_counter()
                fn()
                best[side] = min(best[side], time.perf_counter() - start)
            finally:
                gc.enable()
    return best[0], best[1]


def _driver_insert(backend: str, raw: Any, table_sql: str, rows: list[tuple]) -> Callable[[], Any]:
    columns = ", ".join(NAMES)
    if backend == "postgresql":
        def copy() -> None:
            with raw.cursor() as cursor:
                with cursor.copy(f"COPY {table_sql} ({columns}) FROM STDIN") as load:
                    for row in rows:
                        load.write_row(row)
            raw.commit()
        return copy
    marker = "?" if backend == "sqlite" else "%s"
    sql = f"INSERT INTO {table_sql} ({columns}) VALUES ({', '.join([marker] * len(NAMES))})"

    def executemany() -> None:
        cursor = raw.cursor()
        if backend == "sqlite":
            cursor.execute("BEGIN IMMEDIATE")
        cursor.executemany(sql, rows)
        raw.commit()
        cursor.close()
    return executemany


def _driver_rows(raw: Any, table_sql: str) -> list[tuple]:
    cursor = raw.cursor()
    cursor.execute(f"SELECT {', '.join(NAMES)} FROM {table_sql}")
    rows = cursor.fetchall()
    cursor.close()
    raw.commit()
    return rows if isinstance(rows, list) else list(rows)  # PyMySQL gives a tuple


def _one_backend(backend: str, url: str) -> list[dict[str, Any]]:
    connection = dj.Connection(url)
    schema = dj.Schema(f"bench_{uuid.uuid4().hex[:8]}", connection=connection)
    try:
        @schema
        class Measurement(dj.Manual):
            definition = """
            id : int32
            ---
            x : float64
            label : varchar(40)
            k : int32
            """

        table_sql = Measurement().full_table_name
        dicts = [{"id": i, "x": i * 0.5, "label": f"label{i}", "k": i % 7} for i in range(ROWS)]
        tuples = [(i, i * 0.5, f"label{i}", i % 7) for i in range(ROWS)]
        raw = connection.engine.raw_connection()  # the driver's own connection, same pragmas
        driver = raw.driver_connection

        def empty() -> None:
            """An empty table and, on SQLite, an empty write-ahead log, so that neither
            side pays for the other's checkpoint."""
            cursor = driver.cursor()
            if backend == "sqlite":
                cursor.execute(f"DELETE FROM {table_sql}")
                driver.commit()
                cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                cursor.execute(f"TRUNCATE TABLE {table_sql}")
            driver.commit()
            cursor.close()

        results = []
        copy = _driver_insert(backend, driver, table_sql, tuples)
        ours, theirs = _pair(lambda: Measurement.insert(dicts), copy, setup=empty)
        results.append(dict(benchmark=f"insert {ROWS // 1000}k rows (dicts)", backend=backend,
                            ours_s=ours, driver_s=theirs, ratio=ours / theirs))
        frame = pd.DataFrame.from_records(tuples, columns=NAMES)
        ours, theirs = _pair(lambda: Measurement.insert(frame), copy, setup=empty)
        results.append(dict(benchmark=f"insert {ROWS // 1000}k rows (DataFrame)",
                            backend=backend, ours_s=ours, driver_s=theirs, ratio=ours / theirs))
        # leave the table full for the fetches
        empty()
        Measurement.insert(dicts)
        fetches: list[tuple[str, Callable[[], Any], Callable[[], Any]]] = [
            ("DataFrame", lambda: Measurement.fetch(format="frame"),
             lambda: pd.DataFrame.from_records(_driver_rows(driver, table_sql),
                                               columns=NAMES).set_index("id")),
            ("dicts", lambda: Measurement.to_dicts(),
             lambda: [dict(zip(NAMES, row)) for row in _driver_rows(driver, table_sql)]),
            ("structured array", lambda: Measurement.fetch(),
             lambda: np.array(_driver_rows(driver, table_sql), dtype=DTYPE)),
        ]
        for shape, ours_fn, driver_fn in fetches:
            assert len(ours_fn()) == len(driver_fn()) == ROWS
            ours, theirs = _pair(ours_fn, driver_fn)
            results.append(dict(benchmark=f"fetch {ROWS // 1000}k rows to {shape}",
                                backend=backend, ours_s=ours, driver_s=theirs,
                                ratio=ours / theirs))
        raw.close()
        return results
    finally:
        for attempt in range(5):  # other sessions dropping their schemas can race the drop
            try:
                schema.drop(force=True)
                break
            except Exception:
                if attempt == 4:
                    raise
                time.sleep(0.5)
        connection.close()


PEER_VERSION = "2.3.5"
PEER_REPEATS = 2


def _peer_python() -> str | None:
    """The interpreter of the peer's own environment (created on first use for "auto")."""
    choice = os.environ.get("DJ_BENCH_PEER", "")
    if not choice:
        return None
    if choice != "auto":
        return choice
    home = Path.home() / ".cache" / "datajoint_sa" / f"peer-datajoint-{PEER_VERSION}"
    python = home / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(home)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q",
                        f"datajoint=={PEER_VERSION}", "psycopg2-binary"], check=True)
    return str(python)


def _peer(python: str, backend: str, url: str, driver: dict[str, float]
          ) -> list[dict[str, Any]]:
    parsed = sa.make_url(url)
    script = Path(__file__).with_name("peer_datajoint.py")
    args = [python, str(script), backend, parsed.host or "127.0.0.1",
            str(parsed.port or (5432 if backend == "postgresql" else 3306)),
            parsed.username or "", parsed.password or "", str(ROWS), str(PEER_REPEATS)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=1800)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return [dict(benchmark="peer datajoint", backend=backend,
                     error=(done.stderr.strip().splitlines() or ["no output"])[-1])]
    timings = json.loads(lines[-1])
    peer = f"datajoint {timings['version']}"
    shapes = {"insert": f"insert {ROWS // 1000}k rows (dicts)",
              "frame": f"fetch {ROWS // 1000}k rows to DataFrame",
              "dicts": f"fetch {ROWS // 1000}k rows to dicts"}
    return [dict(benchmark=f"{shapes[k]} [{peer}]", backend=backend, peer_s=timings[k],
                 driver_s=driver[shapes[k]], ratio=timings[k] / driver[shapes[k]])
            for k in shapes]


def run(urls: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    peer = _peer_python()
    for backend, url in urls.items():
        ours = _one_backend(backend, url)
        rows.extend(ours)
        if peer is not None and backend in ("postgresql", "mysql"):
            driver = {r["benchmark"]: r["driver_s"] for r in ours}
            rows.extend(_peer(peer, backend, url, driver))
    return rows
