"""Insert and fetch 200 rows of 1 MiB float64 arrays in a <blob> column, against the driver
storing and reading the same bytes (`ndarray.tobytes()` / `np.frombuffer`) in the same run."""

from __future__ import annotations

import time
import uuid
from typing import Any

import numpy as np
import sqlalchemy as sa

import datajoint_sa as dj

ROWS = 200
FLOATS = 131_072  # 1 MiB of float64
MIB = ROWS * FLOATS * 8 / 2**20


def _best(fn: Any, repeat: int = 3) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def _driver_table_sql(backend: str, name: str) -> tuple[str, str]:
    blob = {"postgresql": "bytea", "mysql": "LONGBLOB", "sqlite": "BLOB"}[backend]
    return (f"CREATE TABLE {name} (aid INT PRIMARY KEY, data {blob})", f"DROP TABLE {name}")


def _driver_run(connection: dj.Connection, arrays: list[np.ndarray]) -> tuple[float, float]:
    """The same bytes through the DBAPI connection: executemany in, cursor + frombuffer out."""
    backend = connection.backend
    name = f"raw_{uuid.uuid4().hex[:8]}"
    create, drop = _driver_table_sql(backend, name)
    marker = "?" if backend == "sqlite" else "%s"
    raw = connection.engine.raw_connection()
    try:
        cursor = raw.cursor()
        cursor.execute(create)
        raw.commit()

        def insert() -> None:
            cursor.execute(f"DELETE FROM {name}")
            rows = [(i, a.tobytes()) for i, a in enumerate(arrays)]
            if backend == "mysql":  # multi-row INSERT within max_allowed_packet
                for start in range(0, len(rows), 8):
                    cursor.executemany(f"INSERT INTO {name} VALUES ({marker}, {marker})",
                                       rows[start:start + 8])
            else:
                cursor.executemany(f"INSERT INTO {name} VALUES ({marker}, {marker})", rows)
            raw.commit()

        def fetch() -> None:
            cursor.execute(f"SELECT data FROM {name} ORDER BY aid")
            [np.frombuffer(row[0], dtype=np.float64) for row in cursor.fetchall()]
            raw.commit()

        t_insert, t_fetch = _best(insert), _best(fetch)
        cursor.execute(drop)
        raw.commit()
    finally:
        raw.close()
    return t_insert, t_fetch


def _ours(connection: dj.Connection, arrays: list[np.ndarray]) -> tuple[float, float]:
    schema = dj.Schema(f"benchblob_{uuid.uuid4().hex[:8]}", connection=connection)
    try:
        @schema
        class Arrays(dj.Manual):
            definition = """
            aid : int32
            ---
            data : <blob>
            """

        def insert() -> None:
            Arrays.delete_quick()
            Arrays.insert([(i, a) for i, a in enumerate(arrays)])

        def fetch() -> None:
            Arrays.fetch("data", order_by="aid")

        return _best(insert), _best(fetch)
    finally:
        schema.drop(force=True)


def run(urls: dict[str, str]) -> list[dict[str, Any]]:
    arrays = [np.random.default_rng(i).random(FLOATS) for i in range(ROWS)]
    rows: list[dict[str, Any]] = []
    for backend, url in urls.items():
        connection = dj.Connection(url)
        try:
            driver_insert, driver_fetch = _driver_run(connection, arrays)
            ours_insert, ours_fetch = _ours(connection, arrays)
        finally:
            connection.close()
        for what, ours, driver in (("insert", ours_insert, driver_insert),
                                   ("fetch", ours_fetch, driver_fetch)):
            rows.append({"benchmark": f"blob 200x1MiB {what}", "backend": backend,
                         "MiB/s": MIB / ours, "driver MiB/s": MIB / driver,
                         "ratio": ours / driver})
    return rows


__all__ = ["run", "sa"]
