"""populate() with a trivial make: keys per second, with and without reserve_jobs.

Each make inserts one row. The baseline is the same work done with the raw driver in the
same run: per key one transaction with the "already done?" SELECT and the INSERT (and, with
reservations, first the job INSERT in its own transaction, then the job DELETE inside the
make's). Commit latency dominates on a server that syncs its log at every commit, so the
ratio (ours / driver, lower is better) is the steadier figure on a busy machine.
`statements_per_key` counts what the drivers send to the server (BEGIN, COMMIT and savepoints
included, both sessions of the worker). `python -m benchmarks populate`.
"""

from __future__ import annotations

import os
import platform
import time
import uuid
from typing import Any

import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa import blob
from datajoint_sa.jobs import key_hash

KEYS = 1000
REPEAT = 3


def _declare(schema: dj.Schema) -> tuple[type, type]:
    @schema
    class Source(dj.Manual):
        definition = """
        k : int32
        """

    @schema
    class Trivial(dj.Computed):
        definition = """
        -> Source
        ---
        v : int32
        """

        def make(self, key: dict[str, Any]) -> None:
            self.insert1(dict(key, v=key["k"]))

    return Source, Trivial


class _Counter:
    """Statements the drivers send to the server, every session of this process included:
    SQLite's trace callback; psycopg's cursor calls and its BEGIN/COMMIT commands; MySQL's
    per-session `Questions` status, read from each of our sessions."""

    def __init__(self, connection: dj.Connection) -> None:
        self.connection = connection
        self.count = 0
        self.backend = connection.backend
        if self.backend == "sqlite":
            sa.event.listen(connection.engine, "connect", self._trace)
            connection.close()  # new connections get the trace callback
        elif self.backend == "postgresql":
            self._patch_psycopg()

    def _trace(self, dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.set_trace_callback(self._one)

    def _one(self, *args: Any) -> None:
        self.count += 1

    def _patch_psycopg(self) -> None:
        import psycopg
        from psycopg import _connection_base

        counter = self

        def counted(cls: Any, name: str) -> None:
            original = getattr(cls, name)
            if getattr(original, "_counted", False):
                setattr(cls, name, original._original)
                original = original._original

            def wrapper(*args: Any, **kwargs: Any) -> Any:
                counter.count += 1
                return original(*args, **kwargs)

            wrapper._counted = True  # type: ignore[attr-defined]
            wrapper._original = original  # type: ignore[attr-defined]
            setattr(cls, name, wrapper)

        for name in ("execute", "executemany", "copy"):
            counted(psycopg.Cursor, name)
        counted(_connection_base.BaseConnection, "_exec_command")

    def _mysql_questions(self) -> int:
        sessions = [self.connection.sa]
        side = self.connection.__dict__.get("_dj_jobs_session")
        if side is not None:
            sessions.append(side[1])
        total = 0
        for session in sessions:  # the status query itself counts one per session
            rows = session.exec_driver_sql("SHOW SESSION STATUS LIKE 'Questions'").all()
            total += int(rows[0][1]) - 1
            session.rollback()
        return total

    def start(self) -> None:
        self.count = 0
        self._base = self._mysql_questions() if self.backend == "mysql" else 0

    def stop(self) -> int:
        if self.backend == "mysql":
            return self._mysql_questions() - self._base
        return self.count


def _driver_run(connection: dj.Connection, target: sa.Table, jobs: sa.Table,
                reserve: bool) -> float:
    """Seconds for KEYS keys with raw DBAPI connections: the least work of the same kind.

    As in populate, a reservation is one INSERT committed at once by a second session in
    autocommit mode (on PostgreSQL without waiting for the disk), and the make's transaction
    checks the key, inserts, and deletes the reservation."""
    dialect = connection.engine.dialect
    mark = "?" if dialect.paramstyle == "qmark" else "%s"
    fmt = dialect.identifier_preparer.format_table
    quote = dialect.identifier_preparer.quote
    check = f"SELECT 1 FROM {fmt(target)} WHERE k = {mark} LIMIT 1"
    insert = f"INSERT INTO {fmt(target)} (k, v) VALUES ({mark}, {mark})"
    columns = ["table_name", "key_hash", "status", "key", "user", "host", "pid"]
    reserve_sql = (f"INSERT INTO {fmt(jobs)} ({', '.join(quote(c) for c in columns)}) "
                   f"VALUES ({', '.join([mark] * len(columns))})")
    complete = (f"DELETE FROM {fmt(jobs)} WHERE table_name = {mark} AND key_hash = {mark} "
                f"AND host = {mark} AND pid = {mark}")
    raw = connection.engine.raw_connection()
    side = connection.engine.raw_connection()
    try:
        raw.rollback()
        side.rollback()
        side_cursor = side.cursor()
        if connection.backend == "postgresql":
            side.driver_connection.autocommit = True
            side_cursor.execute("SET synchronous_commit TO OFF")
        elif connection.backend == "mysql":
            side.driver_connection.autocommit(True)
        cursor = raw.cursor()
        host, pid = platform.node(), os.getpid()
        start = time.perf_counter()
        for k in range(KEYS):
            hashed = key_hash({"k": k})
            if reserve:
                if connection.backend == "sqlite":
                    side_cursor.execute("BEGIN IMMEDIATE")
                side_cursor.execute(reserve_sql, ("__trivial", hashed, "reserved",
                                                  blob.pack({"k": k}), "bench", host, pid))
                if connection.backend == "sqlite":
                    side_cursor.execute("COMMIT")
            if connection.backend == "sqlite":
                cursor.execute("BEGIN IMMEDIATE")
            cursor.execute(check, (k,))
            cursor.fetchall()
            cursor.execute(insert, (k, k))
            if reserve:
                cursor.execute(complete, ("__trivial", hashed, host, pid))
            raw.commit()
        elapsed = time.perf_counter() - start
        cursor.execute(f"DELETE FROM {fmt(target)}")
        raw.commit()
    finally:
        if connection.backend == "postgresql":
            side.driver_connection.autocommit = False
        elif connection.backend == "mysql":
            side.driver_connection.autocommit(False)
        side.close()
        raw.close()
    return elapsed


def _bench_backend(backend: str, url: str) -> list[dict[str, Any]]:
    connection = dj.Connection(url)
    schema = dj.Schema(f"bench_populate_{uuid.uuid4().hex[:8]}", connection=connection)
    rows = []
    try:
        Source, Trivial = _declare(schema)
        Source.insert([(k,) for k in range(KEYS)])
        jobs = schema.jobs
        counter = _Counter(connection)
        for reserve in (False, True):
            ours, driver = [], []
            statements = 0
            for _ in range(REPEAT):
                Trivial.populate(reserve_jobs=reserve, max_calls=1)  # sessions opened
                counter.start()
                start = time.perf_counter()
                result = Trivial.populate(reserve_jobs=reserve)
                ours.append(time.perf_counter() - start)
                statements = counter.stop()
                result["success_count"] += 1
                assert result["success_count"] == KEYS, result
                Trivial.delete_quick()
                driver.append(_driver_run(connection, Trivial._sa_table, jobs._sa_table,
                                          reserve))
            rows.append({
                "benchmark": "populate",
                "backend": backend,
                "reserve_jobs": reserve,
                "keys_per_s": KEYS / min(ours),
                "driver_keys_per_s": KEYS / min(driver),
                "ratio": min(ours) / min(driver),
                "statements_per_key": statements / (KEYS - 1),
            })
    finally:
        schema.drop(force=True)
        connection.close()
    return rows


def run(urls: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for backend, url in urls.items():
        rows.extend(_bench_backend(backend, url))
    return rows


if __name__ == "__main__":
    from benchmarks.__main__ import DEFAULT_URLS

    for row in run(DEFAULT_URLS):
        print(row)
