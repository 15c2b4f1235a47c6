"""Bulk insert and fetch of 100k rows, as ratios to the same work done with the raw driver.

For each backend, in one run and on the same table:
- insert 100k rows given as dicts, against the driver's fastest bulk path given ready tuples
  (PostgreSQL: psycopg COPY; MySQL: PyMySQL executemany, which sends multi-row INSERTs;
  SQLite: sqlite3 executemany in one transaction);
- fetch 100k rows to a DataFrame indexed by the primary key, to a list of dicts and to a
  structured array, against cursor.execute + fetchall + the same conversion with pandas /
  dict(zip()) / numpy.
Ours and the driver's runs alternate, each timing is the best of REPEATS, and both sides run
with the cyclic garbage collector paused (as datajoint_sa does during bulk conversions), so
the ratio measures work, not collector pauses: ratio = ours / driver (1.0 = the driver).
"""

from __future__ import annotations

import gc
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

import datajoint_sa as dj

ROWS = 100_000
REPEATS = 5
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
            cursor = driver.cursor()
            cursor.execute(f"DELETE FROM {table_sql}")
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


def run(urls: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for backend, url in urls.items():
        rows.extend(_one_backend(backend, url))
    return rows
