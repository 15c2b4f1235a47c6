"""Per-call cost of small queries (issue 17): fetch1 by key, and the 1,000-row join.

* `fetch1_*` / `fetch_*`: the shapes a `make` runs once per key on a warm table, each with a
  new key value every call: `(Subject & key).fetch1("params")` (a small blob),
  `.fetch1()`, `.fetch1("name", "weight")`, `(Subject & key).fetch("name")`,
  `(Session & key).to_dicts()` and `(Session & key).fetch("KEY")`. The driver does the same
  read on its own DBAPI connection of the same engine (the same SQL text, a new value bound,
  `fetchall`, the same dict or blob conversion, a commit). `ours_us - driver_us` is the
  Python datajoint_sa adds per call; `ratio` = ours / driver.
* `join_phase`: the phase table's "1,000-row join+restrict+proj"
  (`((Subject & "subject_id < N") * Session & "weight >= 20").proj("name", "duration")
  .to_dicts()`), built afresh every call, against the driver running the same SQL text.
  `first_us` is the first call on a newly declared pair of tables (what the phase table
  times once per round), the rest are warm calls.

Timings interleave ours and the driver's, so that the machine's load hits both alike; the
`_cpu` figures are process CPU time, which a busy machine inflates less than wall time.
`python -m benchmarks fetch1 [--backends ...]`; `DJ_BENCH_FETCH1_CALLS` sets the calls per
sample (default 200).
"""

from __future__ import annotations

import os
import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import numpy as np

import datajoint_sa as dj
from datajoint_sa import blob

SUBJECTS = 250
SESSIONS = 5
JOIN_SUBJECTS = 200  # 1,000 rows
ROUNDS = 7
CALLS = int(os.environ.get("DJ_BENCH_FETCH1_CALLS", "200"))


def _declare(schema: dj.Schema) -> dict[str, Any]:
    @schema
    class Subject(dj.Manual):
        definition = """
        subject_id : int32
        ---
        name : varchar(40)
        weight : float64
        params : <blob>
        """

    @schema
    class Session(dj.Manual):
        definition = """
        -> Subject
        session_idx : int16
        ---
        duration : float64
        """

    return {"Subject": Subject, "Session": Session}


def _fill(t: dict[str, Any]) -> None:
    t["Subject"].insert([(i, f"subject {i}", 20.0 + i % 7, np.arange(8.0))
                         for i in range(SUBJECTS)])
    t["Session"].insert([(i, j, 30.0 + (i * j) % 50)
                         for i in range(SUBJECTS) for j in range(SESSIONS)])


class _Driver:
    """The engine's DBAPI connection, running SQL text as a transactional read."""

    def __init__(self, connection: dj.Connection) -> None:
        self.raw = connection.engine.raw_connection()
        self.driver = self.raw.driver_connection
        self.dialect = connection.engine.dialect

    def sql(self, select: Any) -> tuple[str, list[str]]:
        """The text SQLAlchemy sends for `select` and the order of its parameters."""
        compiled = select.compile(dialect=self.dialect)
        names = list(compiled.positiontup or compiled.construct_params())
        return compiled.string, names

    def rows(self, sql: str, params: Any) -> list[Any]:
        cursor = self.driver.cursor()
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        cursor.close()
        if getattr(self.driver, "in_transaction", True):
            self.driver.commit()
        return rows if isinstance(rows, list) else list(rows)

    def close(self) -> None:
        self.raw.close()


_MARK = 987_654  # the key value the driver's Select is built with, replaced per call


def _params(driver: _Driver, select: Any) -> Callable[[Any], Any]:
    """A function of a key value giving the driver's parameters of `select` (tuple or
    dict), the key value in place of the marker bound when `select` was built."""
    compiled = select.compile(dialect=driver.dialect)
    bound = compiled.construct_params()
    names = list(compiled.positiontup) if compiled.positiontup is not None else None
    key_params = [n for n, v in bound.items() if v == _MARK]
    assert key_params, bound

    def params(value: Any) -> Any:
        current = dict(bound)
        for name in key_params:
            current[name] = value
        return tuple(current[n] for n in names) if names is not None else current

    return params


def _samples(functions: dict[str, Callable[[int], Any]], calls: int, rounds: int
             ) -> dict[str, tuple[float, float]]:
    """Median µs per call (wall, cpu) of each function, interleaved round by round."""
    wall: dict[str, list[float]] = {k: [] for k in functions}
    cpu: dict[str, list[float]] = {k: [] for k in functions}
    for _ in range(rounds):
        for name, function in functions.items():
            start, start_cpu = time.perf_counter(), time.process_time()
            for i in range(calls):
                function(i)
            wall[name].append((time.perf_counter() - start) / calls * 1e6)
            cpu[name].append((time.process_time() - start_cpu) / calls * 1e6)
    return {k: (statistics.median(wall[k]), statistics.median(cpu[k])) for k in functions}


def _shapes(t: dict[str, Any]) -> dict[str, tuple[Callable[[int], Any], str, Any]]:
    """name -> (ours(i), the driver's column list, how the driver shapes the rows)."""
    subject, session = t["Subject"], t["Session"]

    def key(i: int) -> dict[str, int]:
        return {"subject_id": i % SUBJECTS}

    return {
        "fetch1_blob": (lambda i: (subject & key(i)).fetch1("params"), "params",
                        lambda rows: blob.unpack(rows[0][0])),
        "fetch1_row": (lambda i: (subject & key(i)).fetch1(), "*",
                       lambda rows: dict(zip(["subject_id", "name", "weight", "params"],
                                             (*rows[0][:3], blob.unpack(rows[0][3]))))),
        "fetch1_two": (lambda i: (subject & key(i)).fetch1("name", "weight"), "name,weight",
                       lambda rows: tuple(rows[0])),
        "fetch_attr": (lambda i: (subject & key(i)).fetch("name"), "name",
                       lambda rows: np.array([r[0] for r in rows], dtype=object)),
        "to_dicts": (lambda i: (session & key(i)).to_dicts(), "session*",
                     lambda rows: [dict(zip(["subject_id", "session_idx", "duration"], r))
                                   for r in rows]),
        "fetch_key": (lambda i: (session & key(i)).fetch("KEY"), "sessionkey",
                      lambda rows: [dict(zip(["subject_id", "session_idx"], r))
                                    for r in rows]),
    }


def _driver_select(t: dict[str, Any], columns: str) -> Any:
    """The Select our fetch sends for a shape (LIMIT 2 for fetch1), for the driver to run."""
    from datajoint_sa import fetch as fetching

    subject, session = t["Subject"], t["Session"]
    key = {"subject_id": _MARK}
    if columns.startswith("session"):
        names = ["subject_id", "session_idx"] if columns == "sessionkey" else \
            session.heading.names
        return fetching.build_select(session & key, names)
    names = subject.heading.names if columns == "*" else columns.split(",")
    limit = None if columns == "name" else 2
    return fetching.build_select(subject & key, names, limit=limit, any_order=True)


def _join(t: dict[str, Any]) -> list[dict[str, Any]]:
    query = ((t["Subject"] & f"subject_id < {JOIN_SUBJECTS}") * t["Session"]
             & "weight >= 20").proj("name", "duration")
    return query.to_dicts()  # type: ignore[no-any-return]


def _measure(backend: str, connection: dj.Connection, t: dict[str, Any]
             ) -> list[dict[str, Any]]:
    driver = _Driver(connection)
    results: list[dict[str, Any]] = []
    try:
        for name, (ours, columns, shape) in _shapes(t).items():
            select = _driver_select(t, columns)
            sql, _ = driver.sql(select)
            params = _params(driver, select)

            def raw(i: int, sql: str = sql, params: Any = params, shape: Any = shape) -> Any:
                return shape(driver.rows(sql, params(i % SUBJECTS)))

            for i in (0, 7, SUBJECTS - 1):  # the same results both ways
                a, b = ours(i), raw(i)
                assert repr(a) == repr(b), (name, a, b)
            timed = _samples({"ours": ours, "driver": raw}, CALLS, ROUNDS)
            (ours_us, ours_cpu), (driver_us, driver_cpu) = timed["ours"], timed["driver"]
            results.append({"benchmark": name, "backend": backend, "ours_us": ours_us,
                            "driver_us": driver_us, "added_us": ours_us - driver_us,
                            "added_cpu_us": ours_cpu - driver_cpu,
                            "ratio": ours_us / driver_us, "target_added_us": 150.0})
        query = ((t["Subject"] & f"subject_id < {JOIN_SUBJECTS}") * t["Session"]
                 & "weight >= 20").proj("name", "duration")
        compiled = query.to_select().compile(dialect=driver.dialect)
        processors = compiled._bind_processors
        values = {n: processors[n](v) if n in processors else v
                  for n, v in compiled.construct_params().items()}
        join_params: Any = tuple(values[n] for n in compiled.positiontup) \
            if compiled.positiontup is not None else values
        names = query.heading.names

        def raw_join(i: int) -> list[dict[str, Any]]:
            return [dict(zip(names, r)) for r in driver.rows(compiled.string, join_params)]

        assert _join(t) == raw_join(0)
        timed = _samples({"ours": lambda i: _join(t), "driver": raw_join}, max(CALLS // 20, 5),
                         ROUNDS)
        (ours_us, ours_cpu), (driver_us, driver_cpu) = timed["ours"], timed["driver"]
        results.append({"benchmark": "join_phase", "backend": backend, "ours_us": ours_us,
                        "driver_us": driver_us, "ratio": ours_us / driver_us,
                        "cpu_ratio": ours_cpu / driver_cpu, "target_ratio": 1.3})
    finally:
        driver.close()
    return results


def _first_join(connection: dj.Connection) -> float:
    """µs of the join's first call on a newly declared pair of tables (already filled)."""
    schema = dj.Schema(f"bench_f1j_{uuid.uuid4().hex[:8]}", connection=connection)
    try:
        t = _declare(schema)
        _fill(t)
        start = time.perf_counter()
        _join(t)
        return (time.perf_counter() - start) * 1e6
    finally:
        schema.drop(force=True)


def run(urls: dict[str, str]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for backend, url in urls.items():
        connection = dj.Connection(url)
        schema = dj.Schema(f"bench_f1_{uuid.uuid4().hex[:8]}", connection=connection)
        try:
            t = _declare(schema)
            _fill(t)
            rows = _measure(backend, connection, t)
            first = statistics.median(_first_join(connection) for _ in range(3))
            rows[-1].update(first_us=first, first_ratio=first / rows[-1]["driver_us"])
            results += rows
        finally:
            schema.drop(force=True)
            connection.close()
    return results


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min)"


if __name__ == "__main__":
    import sys

    from . import __main__ as runner

    print(_load())
    backends = sys.argv[1].split(",") if len(sys.argv) > 1 else list(runner.DEFAULT_URLS)
    for row in run({b: runner.DEFAULT_URLS[b] for b in backends}):
        print("  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                        for k, v in row.items()), flush=True)
    print(_load())
