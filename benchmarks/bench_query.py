"""The query algebra: building and compiling, and a 1,000-row query against the raw driver.

* `build_compile`: build a six-operator expression (restrict by dict, join, antijoin,
  project with a computed attribute, restrict by a string on the computed attribute, top)
  from table classes and compile it: `select_us` to the SQLAlchemy Select, `sql_text_us`
  on to the SQL text of the backend's dialect, both with the parsed SQL fragments cached
  (a query built again, as in a loop or a notebook re-run); `cold_us` also parses the two
  fragments afresh with sqlglot. The `_cpu_us` figures are the same in process CPU time,
  which a busy machine inflates less than wall time.
* `join_restrict_project`: `(Subject & cond) * Session & cond` projected to the key and two
  attributes (int, varchar, float: types every driver returns as Python values already, so
  that type conversion, which is fetch's benchmark, stays out), 1,000 rows, fetched as
  dicts; building the expression is part of each run.
  The driver baseline runs the very same SQL text and parameters on its own DBAPI
  connection (execute, fetchall, the same dict conversion). `ratio_autocommit` compares with
  the driver in autocommit mode (one round trip, the practical limit); `ratio` with the
  driver in its default transactional mode ending each read with a commit, which is what a
  query inside `connection.query` costs.

`python -m benchmarks query`.
"""

from __future__ import annotations

import statistics
import time
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa import sqlexpr

SUBJECTS = 200
SESSIONS = 10
ROUNDS = 15
PER_ROUND = 20


def _declare(schema: dj.Schema) -> dict[str, Any]:
    @schema
    class Subject(dj.Manual):
        definition = """
        subject_id : int32
        ---
        name : varchar(40)
        sex : enum('F', 'M')
        weight : float64
        """

    @schema
    class Session(dj.Manual):
        definition = """
        -> Subject
        session_idx : int16
        ---
        session_date : date
        duration : float64
        """

    @schema
    class Excluded(dj.Manual):
        definition = """
        -> Session
        ---
        reason : varchar(40)
        """

    return {"Subject": Subject, "Session": Session, "Excluded": Excluded}


def _fill(tables: dict[str, Any]) -> None:
    import datetime

    tables["Subject"].insert([(i, f"subject {i}", "FM"[i % 2], 20.0 + i % 7)
                              for i in range(SUBJECTS)])
    start = datetime.date(2024, 1, 1)
    tables["Session"].insert([(i, j, start + datetime.timedelta(days=j), 30.0 + (i * j) % 50)
                              for i in range(SUBJECTS) for j in range(SESSIONS)])
    tables["Excluded"].insert([(i, 0, "bad") for i in range(0, SUBJECTS, 10)])


def _six_operators(t: dict[str, Any]) -> Any:
    return ((((t["Subject"] & {"sex": "F"}) * t["Session"]) - t["Excluded"])
            .proj("duration", minutes="duration * 60") & "minutes > 1900"
            ) & dj.Top(20, "minutes desc")


def _query(t: dict[str, Any]) -> Any:
    return ((t["Subject"] & "weight >= 20") * t["Session"] & "session_idx < 5").proj(
        "name", "duration")


def _median_us(function: Callable[[], Any], rounds: int = ROUNDS, n: int = PER_ROUND,
               clock: Callable[[], float] = time.perf_counter) -> float:
    samples = []
    for _ in range(rounds):
        start = clock()
        for _ in range(n):
            function()
        samples.append((clock() - start) / n)
    return statistics.median(samples) * 1e6


def _raw_connection(url: str, autocommit: bool) -> Any:
    """A DBAPI connection of the same driver, outside SQLAlchemy."""
    parsed = sa.make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        import sqlite3

        return sqlite3.connect(parsed.database, isolation_level=None if autocommit else "")
    if backend == "postgresql":
        import psycopg

        return psycopg.connect(host=parsed.host, port=parsed.port or 5432,
                               user=parsed.username, password=parsed.password or None,
                               dbname=parsed.database, autocommit=autocommit)
    import pymysql

    return pymysql.connect(host=parsed.host, port=parsed.port or 3306, user=parsed.username,
                           password=parsed.password or "", database=parsed.database,
                           charset="utf8mb4", autocommit=autocommit)


def _driver_sql(connection: dj.Connection, select: sa.Select[Any]) -> tuple[str, Any]:
    """The statement text and parameters SQLAlchemy sends, for the raw driver to send."""
    compiled = select.compile(dialect=connection.engine.dialect)
    processors = compiled._bind_processors
    values = {name: processors[name](value) if name in processors else value
              for name, value in compiled.construct_params().items()}
    if compiled.positiontup is not None:
        return compiled.string, tuple(values[name] for name in compiled.positiontup)
    return compiled.string, values


def _measure(backend: str, url: str, connection: dj.Connection, tables: dict[str, Any]
             ) -> list[dict[str, Any]]:
    dialect = connection.engine.dialect

    def build_compile() -> str:
        return str(_six_operators(tables).to_select().compile(dialect=dialect))

    def build_select() -> Any:
        return _six_operators(tables).to_select()

    def cold() -> str:
        sqlexpr.clear_cache()
        return build_compile()

    build_compile()
    cpu = time.process_time
    results = [{"benchmark": "build_compile_6_operators", "backend": backend,
                "select_us": _median_us(build_select), "sql_text_us": _median_us(build_compile),
                "cold_us": _median_us(cold, rounds=7, n=5),
                "select_cpu_us": _median_us(build_select, clock=cpu),
                "sql_text_cpu_us": _median_us(build_compile, clock=cpu), "target_us": 1000.0}]

    expr = _query(tables)
    names = expr.heading.names
    rows = expr.fetch(as_dict=True)
    assert len(rows) == SUBJECTS * 5, len(rows)
    sql, params = _driver_sql(connection, expr.to_select())

    def ours() -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = _query(tables).fetch(as_dict=True)
        return result

    def driver_for(raw: Any, autocommit: bool) -> Callable[[], list[dict[str, Any]]]:
        def driver() -> list[dict[str, Any]]:
            cursor = raw.cursor()
            cursor.execute(sql, params)
            fetched = cursor.fetchall()
            cursor.close()
            if not autocommit:
                raw.commit()
            return [dict(zip(names, row)) for row in fetched]

        return driver

    raws = {autocommit: _raw_connection(url, autocommit) for autocommit in (True, False)}
    try:
        drivers = {autocommit: driver_for(raw, autocommit) for autocommit, raw in raws.items()}
        assert drivers[True]() == drivers[False]() == ours() == rows
        samples: dict[str, list[float]] = {"ours": [], "auto": [], "tx": []}
        for _ in range(ROUNDS):  # interleaved, so that drift hits all three alike
            samples["ours"].append(_median_us(ours, rounds=1))
            samples["auto"].append(_median_us(drivers[True], rounds=1))
            samples["tx"].append(_median_us(drivers[False], rounds=1))
    finally:
        for raw in raws.values():
            raw.close()
    ours_us, auto_us, tx_us = (statistics.median(samples[k]) for k in ("ours", "auto", "tx"))
    results.append({"benchmark": "join_restrict_project_1000_rows", "backend": backend,
                    "ours_us": ours_us, "driver_us": tx_us, "driver_autocommit_us": auto_us,
                    "ratio": ours_us / tx_us, "ratio_autocommit": ours_us / auto_us,
                    "target_ratio": 1.3})
    return results


def run(urls: dict[str, str]) -> list[dict[str, Any]]:
    results: list[dict[str, Any]] = []
    for backend, url in urls.items():
        connection = dj.Connection(url)
        schema = dj.Schema(f"bench_query_{uuid.uuid4().hex[:8]}", connection=connection)
        try:
            tables = _declare(schema)
            _fill(tables)
            results += _measure(backend, url, connection, tables)
        finally:
            schema.drop(force=True)
            connection.close()
    return results
