"""populate() with a trivial make: keys per second, with and without reserve_jobs.

Each make inserts one row. The baseline is the same work done with the raw driver in the
same run: per key one transaction with the "already done?" SELECT and the INSERT (and, with
reservations, first the job INSERT in its own transaction, then the job DELETE inside the
make's). Commit latency dominates on a server that syncs its log at every commit, so the
ratio (ours / driver, lower is better) is the steadier figure on a busy machine.
`statements_per_key` counts SQL statements sent through the cursor (savepoints included),
`commits_per_key` the transactions. `python -m benchmarks populate`.
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
    """Statements and commits sent through one engine."""

    def __init__(self, engine: sa.Engine) -> None:
        self.statements = self.commits = 0
        sa.event.listen(engine, "before_cursor_execute", self._statement)
        sa.event.listen(engine, "commit", self._commit)

    def _statement(self, *args: Any) -> None:
        self.statements += 1

    def _commit(self, *args: Any) -> None:
        self.commits += 1


def _driver_run(connection: dj.Connection, target: sa.Table, jobs: sa.Table,
                reserve: bool) -> float:
    """Seconds for KEYS keys with the raw DBAPI connection: the least work of the same kind."""
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
    relax = "SET LOCAL synchronous_commit TO OFF" if connection.backend == "postgresql" else ""
    raw = connection.engine.raw_connection()
    try:
        raw.rollback()
        cursor = raw.cursor()
        host, pid = platform.node(), os.getpid()
        start = time.perf_counter()
        for k in range(KEYS):
            hashed = key_hash({"k": k})
            if reserve:
                if relax:
                    cursor.execute(relax)
                cursor.execute(reserve_sql, ("__trivial", hashed, "reserved",
                                             blob.pack({"k": k}), "bench", host, pid))
                raw.commit()
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
        counter = _Counter(connection.engine)
        for reserve in (False, True):
            ours, driver = [], []
            statements = commits = 0
            for _ in range(REPEAT):
                counter.statements = counter.commits = 0
                start = time.perf_counter()
                result = Trivial.populate(reserve_jobs=reserve)
                ours.append(time.perf_counter() - start)
                statements, commits = counter.statements, counter.commits
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
                "statements_per_key": statements / KEYS,
                "commits_per_key": commits / KEYS,
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
