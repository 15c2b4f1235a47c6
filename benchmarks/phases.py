"""The phase table of issue 17: every phase against the raw driver and DataJoint 2.3.5.

Per backend, REPEATS rounds; each round runs the same work three ways, one after the other
(so drift in the machine's load hits all three alike):

* ours: datajoint_sa, through its public API;
* the raw driver: the least work of the same kind on a DBAPI connection of the same engine
  (PostgreSQL: psycopg with COPY for bulk rows; MySQL: PyMySQL's multi-row executemany;
  SQLite: sqlite3 executemany in one transaction), with the conversions a user needs
  (pandas for a DataFrame, `dict(zip())` for dicts, `np.frombuffer` for arrays);
* the reference, DataJoint 2.3.5, as a peer process in its own virtual environment
  (`benchmarks/peer_phases.py`; PostgreSQL and MySQL only), when `--peer PYTHON` is given.

Each phase's figure is the median of the rounds; ratio = ours / the raw driver (lower is
better). Populate is in keys per second, with the make of the issue: fetch1 of a small
blob, insert1, 4 part rows. `nox -s bench` installs the reference and runs this module;
`--report` rewrites the generated part of docs/benchmarks.md.

usage: python -m benchmarks.phases [--backends ...] [--scale 0.5] [--repeats 3]
       [--peer PYTHON] [--report] [--json FILE]
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import platform
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa

import datajoint_sa as dj

from . import phase_pipeline

ROWS = 30_000          # the bulk table, at scale 1
BLOBS = 60             # 1 MiB arrays
KEYS = 600             # populate keys
JOIN_ROWS = 1000       # rows of the join + restrict + proj
FLOATS = 131_072       # 1 MiB of float64
SESSIONS = 5
REPEATS = 3
WARMUP = 1             # discarded rounds of ours and the driver before the measured ones

#: phase name -> target ratio (ours / raw driver), in the issue's order
PHASES: dict[str, float] = {
    "declare 6 tables": 3.0,
    "insert rows (one call)": 1.5,
    "fetch -> DataFrame": 1.5,
    "fetch -> dicts": 1.5,
    "1,000-row join+restrict+proj": 1.3,
    "blob insert, 1 MiB arrays": 1.5,
    "blob fetch": 1.5,
    "delete blob rows": 1.5,
    "drop schema": 2.0,
}
POPULATE = ("populate (keys/s)", "populate with reserve_jobs (keys/s)")
POPULATE_TARGET = (1000.0, 600.0)
PEER_FACTOR = 3.0  # populate must run at least this many times the reference's rate


# ------------------------------------------------------------------------------- ours

def _declare(schema: dj.Schema) -> dict[str, Any]:
    return phase_pipeline.declare(dj, schema)


def _timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _ours_round(url: str, sizes: dict[str, int], arrays: list[np.ndarray]) -> dict[str, float]:
    connection = dj.Connection(url)
    out: dict[str, float] = {}
    schema = None
    try:
        def declare() -> tuple[dj.Schema, dict[str, Any]]:
            s = dj.Schema(f"bench_ph_{uuid.uuid4().hex[:8]}", connection=connection)
            return s, _declare(s)

        assert connection.sa is not None  # connected before timing, as the driver is
        out["declare 6 tables"], (schema, t) = _timed(declare)
        rows = [{"id": i, "x": i * 0.5, "label": f"label{i}", "k": i % 7}
                for i in range(sizes["rows"])]
        gc.collect()
        out["insert rows (one call)"], _ = _timed(lambda: t["Measurement"].insert(rows))
        out["fetch -> DataFrame"], frame = _timed(lambda: t["Measurement"].to_pandas())
        out["fetch -> dicts"], dicts = _timed(lambda: t["Measurement"].to_dicts())
        assert len(frame) == len(dicts) == sizes["rows"]
        subjects, keys = sizes["subjects"], sizes["keys"]
        t["Subject"].insert([(i, f"subject {i}", 20.0 + i % 7, np.arange(8.0))
                             for i in range(subjects)])
        t["Session"].insert([(i, j, 30.0 + (i * j) % 50)
                             for i in range(subjects) for j in range(SESSIONS)])

        def join() -> list[dict[str, Any]]:
            query = ((t["Subject"] & f"subject_id < {JOIN_ROWS // SESSIONS}") * t["Session"]
                     & "weight >= 20").proj("name", "duration")
            return query.to_dicts()  # type: ignore[no-any-return]

        out["1,000-row join+restrict+proj"], joined = _timed(join)
        assert len(joined) == JOIN_ROWS, len(joined)
        blob_rows = [(i, a) for i, a in enumerate(arrays)]
        out["blob insert, 1 MiB arrays"], _ = _timed(lambda: t["Arrays"].insert(blob_rows))
        out["blob fetch"], fetched = _timed(lambda: t["Arrays"].to_arrays("data"))
        assert len(fetched) == len(arrays)
        out["delete blob rows"], _ = _timed(lambda: t["Arrays"].delete(safemode=False))
        result = t["Result"]
        source = f"subject_id < {keys}"
        for name, reserve in zip(POPULATE, (False, True)):
            result.populate(source, reserve_jobs=reserve, max_calls=1)  # sessions opened
            seconds, done = _timed(lambda r=reserve: result.populate(source, reserve_jobs=r))
            assert done["success_count"] == keys - 1, done
            out[name] = (keys - 1) / seconds
            result.delete(safemode=False)
        out["drop schema"], _ = _timed(lambda: schema.drop(force=True))
        schema = None
    finally:
        if schema is not None:
            schema.drop(force=True)
        connection.close()
    return out


# ------------------------------------------------------------------------- raw driver

_TYPES = {
    "postgresql": {"int": "integer", "small": "smallint", "float": "double precision",
                   "blob": "bytea", "suffix": ""},
    "mysql": {"int": "int", "small": "smallint", "float": "double", "blob": "longblob",
              "suffix": " ENGINE=InnoDB"},
    "sqlite": {"int": "INTEGER", "small": "INTEGER", "float": "REAL", "blob": "BLOB",
               "suffix": ""},
}


def _ddl(backend: str, name: Callable[[str], str]) -> list[str]:
    t = _TYPES[backend]
    i, s, f, b, suffix = t["int"], t["small"], t["float"], t["blob"], t["suffix"]
    return [
        f"CREATE TABLE {name('subject')} (subject_id {i} NOT NULL, name varchar(40) NOT NULL, "
        f"weight {f} NOT NULL, params {b} NOT NULL, PRIMARY KEY (subject_id)){suffix}",
        f"CREATE TABLE {name('session')} (subject_id {i} NOT NULL, session_idx {s} NOT NULL, "
        f"duration {f} NOT NULL, PRIMARY KEY (subject_id, session_idx), FOREIGN KEY "
        f"(subject_id) REFERENCES {name('subject')} (subject_id)){suffix}",
        f"CREATE TABLE {name('measurement')} (id {i} NOT NULL, x {f} NOT NULL, "
        f"label varchar(40) NOT NULL, k {i} NOT NULL, PRIMARY KEY (id)){suffix}",
        f"CREATE TABLE {name('arrays')} (aid {i} NOT NULL, data {b} NOT NULL, "
        f"PRIMARY KEY (aid)){suffix}",
        f"CREATE TABLE {name('result')} (subject_id {i} NOT NULL, v {f} NOT NULL, "
        f"PRIMARY KEY (subject_id), FOREIGN KEY (subject_id) REFERENCES "
        f"{name('subject')} (subject_id)){suffix}",
        f"CREATE TABLE {name('result_part')} (subject_id {i} NOT NULL, i {s} NOT NULL, "
        f"w {f} NOT NULL, PRIMARY KEY (subject_id, i), FOREIGN KEY (subject_id) REFERENCES "
        f"{name('result')} (subject_id)){suffix}",
        f"CREATE TABLE {name('jobs')} (table_name varchar(255) NOT NULL, key_hash char(32) "
        f"NOT NULL, status varchar(8) NOT NULL, {_key_column(backend)} {b}, host "
        f"varchar(255), pid {i}, PRIMARY KEY (table_name, key_hash)){suffix}",
    ]


def _key_column(backend: str) -> str:
    return '"key"' if backend != "mysql" else "`key`"


class _Raw:
    """One DBAPI connection of the engine and the SQL of the raw baseline."""

    def __init__(self, connection: dj.Connection) -> None:
        self.backend = connection.backend
        self.engine = connection.engine
        self.raw = connection.engine.raw_connection()
        self.driver = self.raw.driver_connection
        self.mark = "?" if self.backend == "sqlite" else "%s"
        self.schema = f"raw_ph_{uuid.uuid4().hex[:8]}"

    def name(self, table: str) -> str:
        if self.backend == "sqlite":
            return f'"{self.schema}__{table}"'
        quote = '"' if self.backend == "postgresql" else "`"
        return f"{quote}{self.schema}{quote}.{quote}{table}{quote}"

    def begin(self, cursor: Any) -> None:
        if self.backend == "sqlite":  # the engine's sqlite3 connection is in autocommit
            cursor.execute("BEGIN IMMEDIATE")

    def commit(self) -> None:
        if self.backend == "sqlite":
            self.driver.execute("COMMIT") if self.driver.in_transaction else None
        else:
            self.driver.commit()

    def run(self, *statements: str) -> None:
        cursor = self.driver.cursor()
        self.begin(cursor)
        for statement in statements:
            cursor.execute(statement)
        self.commit()
        cursor.close()

    def rows(self, sql: str, params: Any = ()) -> list[Any]:
        cursor = self.driver.cursor()
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        cursor.close()
        self.commit()
        return rows if isinstance(rows, list) else list(rows)

    def many(self, sql: str, rows: list[tuple[Any, ...]]) -> None:
        cursor = self.driver.cursor()
        self.begin(cursor)
        cursor.executemany(sql, rows)
        self.commit()
        cursor.close()

    def bulk(self, table: str, columns: list[str], rows: list[tuple[Any, ...]]) -> None:
        if self.backend == "postgresql":
            with self.driver.cursor() as cursor:
                with cursor.copy(f"COPY {self.name(table)} ({', '.join(columns)}) "
                                 "FROM STDIN") as load:
                    for row in rows:
                        load.write_row(row)
            self.driver.commit()
            return
        marks = ", ".join([self.mark] * len(columns))
        self.many(f"INSERT INTO {self.name(table)} ({', '.join(columns)}) VALUES ({marks})",
                  rows)


def _raw_round(url: str, sizes: dict[str, int], arrays: list[np.ndarray]) -> dict[str, float]:
    connection = dj.Connection(url)
    raw = _Raw(connection)
    out: dict[str, float] = {}
    created = False
    try:
        backend = raw.backend

        def declare() -> None:
            statements = _ddl(backend, raw.name)
            if backend == "postgresql":
                statements.insert(0, f'CREATE SCHEMA "{raw.schema}"')
            elif backend == "mysql":
                raw.run(f"CREATE DATABASE `{raw.schema}`")  # DDL commits by itself
            raw.run(*statements)

        out["declare 6 tables"], _ = _timed(declare)
        created = True
        tuples = [(i, i * 0.5, f"label{i}", i % 7) for i in range(sizes["rows"])]
        names = ["id", "x", "label", "k"]
        gc.collect()
        out["insert rows (one call)"], _ = _timed(
            lambda: raw.bulk("measurement", names, tuples))
        select = f"SELECT id, x, label, k FROM {raw.name('measurement')}"
        out["fetch -> DataFrame"], frame = _timed(lambda: pd.DataFrame.from_records(
            raw.rows(select), columns=names).set_index("id"))
        out["fetch -> dicts"], dicts = _timed(
            lambda: [dict(zip(names, row)) for row in raw.rows(select)])
        assert len(frame) == len(dicts) == sizes["rows"]
        subjects, keys = sizes["subjects"], sizes["keys"]
        params = np.arange(8.0).tobytes()
        raw.bulk("subject", ["subject_id", "name", "weight", "params"],
                 [(i, f"subject {i}", 20.0 + i % 7, params) for i in range(subjects)])
        raw.bulk("session", ["subject_id", "session_idx", "duration"],
                 [(i, j, 30.0 + (i * j) % 50) for i in range(subjects)
                  for j in range(SESSIONS)])
        join_sql = (f"SELECT s.subject_id, e.session_idx, s.name, e.duration FROM "
                    f"{raw.name('subject')} AS s JOIN {raw.name('session')} AS e ON "
                    f"s.subject_id = e.subject_id WHERE s.subject_id < {raw.mark} "
                    f"AND s.weight >= {raw.mark}")
        join_names = ["subject_id", "session_idx", "name", "duration"]
        out["1,000-row join+restrict+proj"], joined = _timed(lambda: [
            dict(zip(join_names, row))
            for row in raw.rows(join_sql, (JOIN_ROWS // SESSIONS, 20.0))])
        assert len(joined) == JOIN_ROWS
        blob_rows = [(i, a.tobytes()) for i, a in enumerate(arrays)]
        blob_insert = (f"INSERT INTO {raw.name('arrays')} (aid, data) "
                       f"VALUES ({raw.mark}, {raw.mark})")

        def blob_in() -> None:
            if backend == "mysql":  # multi-row INSERTs within max_allowed_packet
                cursor = raw.driver.cursor()
                for start in range(0, len(blob_rows), 8):
                    cursor.executemany(blob_insert, blob_rows[start:start + 8])
                raw.commit()
            else:
                raw.many(blob_insert, blob_rows)

        out["blob insert, 1 MiB arrays"], _ = _timed(blob_in)
        out["blob fetch"], fetched = _timed(lambda: [
            np.frombuffer(row[0], dtype=np.float64)
            for row in raw.rows(f"SELECT data FROM {raw.name('arrays')} ORDER BY aid")])
        assert len(fetched) == len(arrays)
        out["delete blob rows"], _ = _timed(
            lambda: raw.run(f"DELETE FROM {raw.name('arrays')}"))
        for name, reserve in zip(POPULATE, (False, True)):
            seconds = _raw_populate(raw, keys, reserve)
            out[name] = (keys - 1) / seconds
            raw.run(f"DELETE FROM {raw.name('result_part')}", f"DELETE FROM {raw.name('result')}")
        drop = ([f'DROP SCHEMA "{raw.schema}" CASCADE'] if backend == "postgresql" else
                [f"DROP DATABASE `{raw.schema}`"] if backend == "mysql" else
                [f"DROP TABLE {raw.name(t)}" for t in
                 ("result_part", "result", "jobs", "arrays", "measurement", "session",
                  "subject")])
        out["drop schema"], _ = _timed(lambda: raw.run(*drop))
        created = False
    finally:
        if created:
            try:
                raw.commit()
            except Exception:
                pass
        raw.raw.close()
        connection.close()
    return out


def _raw_populate(raw: _Raw, keys: int, reserve: bool) -> float:
    """Seconds for keys 1..keys-1 done the least way: per key one transaction that checks
    the key is not done, reads the blob, inserts the result and its 4 parts (and, with
    reservations, first a job row committed at once by a second session in autocommit mode,
    deleted inside the key's transaction)."""
    from datajoint_sa import blob
    from datajoint_sa.jobs import key_hash

    backend, mark, name = raw.backend, raw.mark, raw.name
    check = f"SELECT 1 FROM {name('result')} WHERE subject_id = {mark} LIMIT 1"
    fetch = f"SELECT params FROM {name('subject')} WHERE subject_id = {mark}"
    insert = f"INSERT INTO {name('result')} (subject_id, v) VALUES ({mark}, {mark})"
    parts = (f"INSERT INTO {name('result_part')} (subject_id, i, w) "
             f"VALUES ({mark}, {mark}, {mark})")
    key_col = _key_column(backend)
    reserve_sql = (f"INSERT INTO {name('jobs')} (table_name, key_hash, status, {key_col}, host,"
                   f" pid) VALUES ({', '.join([mark] * 6)})")
    complete = (f"DELETE FROM {name('jobs')} WHERE table_name = {mark} AND key_hash = {mark}"
                f" AND host = {mark} AND pid = {mark}")
    side = raw.engine.raw_connection() if reserve else None
    host, pid = platform.node(), os.getpid()
    driver = raw.driver
    try:
        side_cursor = None
        if side is not None:
            side.rollback()
            side_driver = side.driver_connection
            if backend == "postgresql":
                side_driver.autocommit = True
            elif backend == "mysql":
                side_driver.autocommit(True)
            side_cursor = side_driver.cursor()
            if backend == "postgresql":
                side_cursor.execute("SET synchronous_commit TO OFF")
        cursor = driver.cursor()
        start = time.perf_counter()
        for k in range(1, keys):
            hashed = key_hash({"subject_id": k})
            if side_cursor is not None:
                if backend == "sqlite":
                    side_cursor.execute("BEGIN IMMEDIATE")
                side_cursor.execute(reserve_sql, ("__result", hashed, "reserved",
                                                  blob.pack({"subject_id": k}), host, pid))
                if backend == "sqlite":
                    side_cursor.execute("COMMIT")
            raw.begin(cursor)
            cursor.execute(check, (k,))
            if cursor.fetchall():
                raise AssertionError("key done twice")
            cursor.execute(fetch, (k,))
            params = np.frombuffer(cursor.fetchall()[0][0], dtype=np.float64)
            cursor.execute(insert, (k, float(params.sum())))
            cursor.executemany(parts, [(k, i, float(i)) for i in range(4)])
            if side_cursor is not None:
                cursor.execute(complete, ("__result", hashed, host, pid))
            raw.commit()
        return time.perf_counter() - start
    finally:
        if side is not None:
            if backend == "postgresql":
                side.driver_connection.autocommit = False
            elif backend == "mysql":
                side.driver_connection.autocommit(False)
            side.close()


# ---------------------------------------------------------------------- the reference

def _peer_round(python: str, backend: str, url: str, sizes: dict[str, int]
                ) -> dict[str, float] | str:
    parsed = sa.make_url(url)
    script = Path(__file__).with_name("peer_phases.py")
    args = [python, str(script), backend, parsed.host or "127.0.0.1",
            str(parsed.port or (5432 if backend == "postgresql" else 3306)),
            parsed.username or "", parsed.password or "", json.dumps(sizes)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=3600)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return (done.stderr.strip().splitlines() or ["no output"])[-1]
    return dict(json.loads(lines[-1]))


# --------------------------------------------------------------------------- one run

def _sizes(scale: float) -> dict[str, int]:
    keys = max(10, int(KEYS * scale))
    return {"rows": max(100, int(ROWS * scale)), "blobs": max(2, int(BLOBS * scale)),
            "keys": keys, "subjects": max(keys, JOIN_ROWS // SESSIONS),
            "floats": FLOATS, "sessions": SESSIONS, "join_rows": JOIN_ROWS}


def measure(urls: dict[str, str], *, scale: float = 1.0, repeats: int = REPEATS,
            warmup: int = WARMUP, peer: str | None = None,
            progress: Callable[[str], None] = print) -> list[dict[str, Any]]:
    """Rows (backend, phase, ours, driver, reference, ratio, ...) of one run.

    Per backend, `warmup` rounds of ours and of the driver run first and are kept out of
    the medians: the first round in a process pays one-time costs (a dialect's first
    imports and compiles) on our side only, which would make our median the slower of
    the other two rounds against the driver's true median. Their ratios are kept in the
    rows (`warmup_ratio`) and printed in a table of their own, so the first-use cost stays
    visible. The reference runs in a fresh process every round and needs none."""
    sizes = _sizes(scale)
    arrays = [np.random.default_rng(i).random(FLOATS) for i in range(sizes["blobs"])]
    results: list[dict[str, Any]] = []
    for backend, url in urls.items():
        samples: dict[str, dict[str, list[float]]] = {"ours": {}, "driver": {}, "peer": {}}
        first: dict[str, dict[str, float]] = {"ours": {}, "driver": {}}
        for _ in range(warmup):
            first["ours"] = _ours_round(url, sizes, arrays)
            first["driver"] = _raw_round(url, sizes, arrays)
            progress(f"   {backend}: warm-up round done")
        peer_error = None
        for round_ in range(repeats):
            sides = ["ours", "driver"]
            if peer and backend in ("postgresql", "mysql"):
                sides.append("peer")
            for side in sides:
                got: dict[str, float] | str
                if side == "ours":
                    got = _ours_round(url, sizes, arrays)
                elif side == "driver":
                    got = _raw_round(url, sizes, arrays)
                else:
                    assert peer is not None
                    got = _peer_round(peer, backend, url, sizes)
                if isinstance(got, str):
                    peer_error = got
                    continue
                for phase, value in got.items():
                    samples[side].setdefault(phase, []).append(value)
            progress(f"   {backend}: round {round_ + 1}/{repeats} done")
        median = {side: {p: statistics.median(v) for p, v in s.items()}
                  for side, s in samples.items()}
        for phase, target in PHASES.items():
            ours, driver = median["ours"][phase], median["driver"][phase]
            peer_s = median["peer"].get(phase)
            results.append({
                "backend": backend, "phase": phase, "ours_s": ours, "driver_s": driver,
                "ratio": ours / driver, "target": target,
                "reference_s": peer_s,
                "reference_ratio": None if peer_s is None else peer_s / driver,
                "spread": _spread(samples["ours"][phase]),
                "warmup_ratio": (first["ours"][phase] / first["driver"][phase]
                                 if phase in first["ours"] else None),
            })
        for phase, target in zip(POPULATE, POPULATE_TARGET):
            ours, driver = median["ours"][phase], median["driver"][phase]
            peer_rate = median["peer"].get(phase)
            results.append({
                "backend": backend, "phase": phase, "ours_keys_s": ours,
                "driver_keys_s": driver, "ratio": driver / ours, "target_keys_s": target,
                "reference_keys_s": peer_rate,
                "times_reference": None if peer_rate is None else ours / peer_rate,
                "spread": _spread(samples["ours"][phase]),
                "warmup_ratio": (first["driver"][phase] / first["ours"][phase]
                                 if phase in first["ours"] else None),
            })
        if peer_error:
            results.append({"backend": backend, "phase": "reference", "error": peer_error})
    return results


def _spread(values: list[float]) -> float:
    """max / min of the repeats: how steady the machine was."""
    return max(values) / min(values) if values and min(values) > 0 else float("nan")


def _load() -> str:
    try:
        one, five, _ = os.getloadavg()
    except OSError:
        return "unknown"
    return f"{one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


# -------------------------------------------------------------------------- printing

def _cell(row: dict[str, Any]) -> str:
    if "ours_keys_s" in row:
        text = f"{row['ours_keys_s']:,.0f} (driver {row['driver_keys_s']:,.0f}"
        if row.get("reference_keys_s"):
            text += f", ref {row['reference_keys_s']:,.0f} = {row['times_reference']:.2f}x"
        return text + ")"
    text = f"{row['ratio']:.2f}x"
    if row.get("reference_ratio") is not None:
        text += f" (ref {row['reference_ratio']:.1f}x)"
    return text


def table(results: list[dict[str, Any]]) -> str:
    """A Markdown table: one row per phase, one column per backend."""
    backends = list(dict.fromkeys(r["backend"] for r in results))
    by = {(r["backend"], r["phase"]): r for r in results}
    lines = ["| phase | " + " | ".join(backends) + " | target |",
             "|---|" + "---:|" * len(backends) + "---:|"]
    for phase, target in PHASES.items():
        cells = [_cell(by[(b, phase)]) if (b, phase) in by else "—" for b in backends]
        lines.append(f"| {phase} | " + " | ".join(cells) + f" | <= {target:g}x |")
    for phase, target in zip(POPULATE, POPULATE_TARGET):
        cells = [_cell(by[(b, phase)]) if (b, phase) in by else "—" for b in backends]
        lines.append(f"| {phase} | " + " | ".join(cells)
                     + f" | >= {target:,.0f}, >= {PEER_FACTOR:g}x ref |")
    warm = [r for r in results if r.get("warmup_ratio") is not None]
    if warm:
        lines += ["", "The discarded warm-up round (the first in the process for each backend; "
                  "ratio to the driver's warm-up round; populate: driver rate / ours):", "",
                  "| phase | " + " | ".join(backends) + " |",
                  "|---|" + "---:|" * len(backends)]
        by_warm = {(r["backend"], r["phase"]): r["warmup_ratio"] for r in warm}
        for phase in [*PHASES, *POPULATE]:
            cells = [f"{by_warm[(b, phase)]:.2f}x" if (b, phase) in by_warm else "—"
                     for b in backends]
            lines.append(f"| {phase} | " + " | ".join(cells) + " |")
    errors = [r for r in results if r.get("error")]
    for r in errors:
        lines.append(f"\nreference on {r['backend']} failed: {r['error']}")
    return "\n".join(lines)


BEGIN, END = "<!-- phases:begin -->", "<!-- phases:end -->"


def report(results: list[dict[str, Any]], scale: float, repeats: int, warmup: int,
           load: str, path: Path) -> None:
    """Rewrite the generated block of docs/benchmarks.md with this run's table."""
    block = "\n".join([
        BEGIN,
        f"Generated by `nox -s bench -- --report` on {dt.date.today().isoformat()} "
        f"(scale {scale:g}: {_sizes(scale)['rows']:,} rows, {_sizes(scale)['blobs']} x 1 MiB "
        f"blobs, {_sizes(scale)['keys']} populate keys; median of {repeats} rounds after "
        f"{warmup} discarded warm-up round of ours and the driver; "
        f"load average {load}). Ratio = datajoint_sa / the fastest raw-driver path in the "
        "same round; `ref` = DataJoint 2.3.5 / the same driver path. Populate cells are keys "
        "per second.",
        "",
        table(results),
        END,
    ])
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if BEGIN in text and END in text:
        head, _, rest = text.partition(BEGIN)
        _, _, tail = rest.partition(END)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n## The phase table (issue 17)\n\n" + block + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> None:
    from benchmarks.__main__ import DEFAULT_URLS

    parser = argparse.ArgumentParser(prog="python -m benchmarks.phases")
    parser.add_argument("--backends", default="sqlite,postgresql,mysql")
    parser.add_argument("--scale", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    parser.add_argument("--warmup", type=int, default=WARMUP,
                        help="discarded rounds of ours and the driver first (0: none)")
    parser.add_argument("--peer", default=os.environ.get("DJ_BENCH_PEER"),
                        help="a Python with datajoint==2.3.5 installed (its own venv)")
    parser.add_argument("--report", action="store_true",
                        help="rewrite the generated block of docs/benchmarks.md")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args(argv)
    urls = {b: DEFAULT_URLS[b] for b in args.backends.split(",") if b}
    load_before = _load()
    results = measure(urls, scale=args.scale, repeats=args.repeats, warmup=args.warmup,
                      peer=args.peer)
    load = f"{load_before} before, {_load()} after"
    print(f"\nscale {args.scale:g}, median of {args.repeats} after {args.warmup} warm-up, "
          f"load average {load}\n")
    print(table(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if args.report:
        report(results, args.scale, args.repeats, args.warmup, load,
               Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md")


if __name__ == "__main__":
    main()
