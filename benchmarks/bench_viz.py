"""The viz app's table page on a 1,000,000-row PostgreSQL table: HTTP latency per page.

The rows are made on the server (INSERT ... SELECT over generate_series), the app runs in a
real uvicorn server on 127.0.0.1, and each case is a GET of one page of 25 rows as the
browser asks for it (page_ms: the rows, as JSON) and the GET of its total that the browser
sends next (count_ms; the app keeps a total for 30 s, so paging on costs page_ms alone). The
baselines are the same queries through psycopg directly (driver_page_ms, driver_count_ms).
Numbers are medians (and the page's 90th percentile) of REPEATS requests after a warm-up;
ratio = page_ms / driver_page_ms.
Only PostgreSQL is measured (other backends are left out of this benchmark). The schema is
dropped at the end. `python -m benchmarks viz --backends postgresql`.
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import threading
import time
import types
import uuid
from collections.abc import Callable
from typing import Any

import sqlalchemy as sa

import datajoint_sa as dj

ROWS = 1_000_000
PAGE = 25
REPEATS = 21
CASES: list[tuple[str, dict[str, str]]] = [
    ("first page", {"page": "1"}),
    ("page 2", {"page": "2"}),
    ("middle page (offset 500k)", {"page": str(ROWS // PAGE // 2)}),
    ("last page", {"page": str(ROWS // PAGE)}),
    ("sorted by a float desc", {"sort": "value", "desc": "1"}),
    ("filter id range", {"f.id": "500000..500999"}),
    ("filter text contains", {"f.subject": "s99"}),
    ("filter date, sorted", {"f.session_date": "2021-01-01", "sort": "subject"}),
]


def _declare(connection: dj.Connection, name: str) -> tuple[dj.Schema, type[dj.Table]]:
    schema = dj.Schema(name, connection=connection)

    @schema
    class Measurement(dj.Manual):
        definition = """
        id : int64
        ---
        subject : varchar(16)
        session_date : date
        value : float64
        label : varchar(40)
        """

    return schema, Measurement


def _fill(connection: dj.Connection, table: sa.Table) -> None:
    """1M rows made by the server itself: INSERT ... SELECT FROM generate_series."""
    series = sa.func.generate_series(1, ROWS).table_valued("g").render_derived()
    g = series.c.g
    rows = sa.select(
        g,
        sa.literal("S") + sa.cast(g % 1000, sa.String),
        sa.cast(sa.literal("2020-01-01"), sa.Date) + sa.cast(g % 1500, sa.Integer),
        sa.func.random(),
        sa.func.md5(sa.cast(g, sa.Text)),
    ).select_from(series)
    with connection.session(write=True) as sa_conn:
        sa_conn.execute(sa.insert(table).from_select(
            ["id", "subject", "session_date", "value", "label"], rows))
    with connection.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as raw:
        raw.exec_driver_sql(f"ANALYZE {raw.dialect.identifier_preparer.format_table(table)}")


def _serve(app: Any) -> tuple[Any, threading.Thread, int]:
    import uvicorn

    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the viz server did not start")
        time.sleep(0.05)
    return server, thread, server.servers[0].sockets[0].getsockname()[1]


def _timings(fn: Callable[[], Any]) -> list[float]:
    fn()  # warm-up
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return times


def _driver_case(raw: Any, table_sql: str, params: dict[str, str], *, count: bool
                 ) -> Callable[[], Any]:
    """The same page (or count) through psycopg: hand-written SQL, values bound."""
    where, args = "", []
    if "f.id" in params:
        low, high = params["f.id"].split("..")
        where, args = "WHERE id >= %s AND id <= %s", [int(low), int(high)]
    elif "f.subject" in params:
        where, args = "WHERE lower(subject) LIKE lower(%s)", [f"%{params['f.subject']}%"]
    elif "f.session_date" in params:
        where, args = "WHERE session_date = %s", [params["f.session_date"]]
    order = "id"
    if params.get("sort") == "value":
        order = "value DESC, id"
    elif params.get("sort"):
        order = f"{params['sort']}, id"
    offset = (int(params.get("page", "1")) - 1) * PAGE
    if count:
        sql, values = f"SELECT count(*) FROM {table_sql} {where}", args
    else:
        sql = (f"SELECT id, subject, session_date, value, label FROM {table_sql} {where} "
               f"ORDER BY {order} LIMIT %s OFFSET %s")
        values = [*args, PAGE + 1, offset]

    def run() -> None:
        with raw.cursor() as cursor:
            cursor.execute(sql, values)
            cursor.fetchall()
        raw.commit()

    return run


class _Client:
    """GETs over one keep-alive connection (reconnecting if the server closed it)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=120)

    def get(self, path: str) -> dict[str, Any]:
        for attempt in (1, 2):
            try:
                self.connection.request("GET", path)
                response = self.connection.getresponse()
                body = response.read()
                break
            except (http.client.RemoteDisconnected, ConnectionError):
                self.connection.close()
                self.connection = http.client.HTTPConnection("127.0.0.1", self.port,
                                                             timeout=120)
                if attempt == 2:
                    raise
        if response.status != 200:
            raise RuntimeError(f"GET {path}: {response.status} {body[:200]!r}")
        return json.loads(body)

    def close(self) -> None:
        self.connection.close()


def run(urls: dict[str, str]) -> list[dict[str, Any]]:
    if "postgresql" not in urls:
        return []
    import psycopg

    from datajoint_sa.viz import create_app

    connection = dj.Connection(urls["postgresql"])
    name = f"bench_viz_{uuid.uuid4().hex[:8]}"
    module_name = f"_bench_viz_{name}"
    schema, table_class = _declare(connection, name)
    server = thread = None
    results: list[dict[str, Any]] = []
    try:
        started = time.perf_counter()
        assert table_class._sa_table is not None
        _fill(connection, table_class._sa_table)
        fill_s = time.perf_counter() - started
        module = types.ModuleType(module_name)
        module.Measurement = table_class  # type: ignore[attr-defined]
        sys.modules[module_name] = module
        spec = {"module": module_name, "pages": [{"name": "p", "components": [
            {"type": "table", "name": "t", "query": "Measurement", "page_size": PAGE}]}]}
        server, thread, port = _serve(create_app(spec, connection=connection))
        client = _Client(port)
        table_sql = table_class().full_table_name
        dsn = sa.make_url(urls["postgresql"]).set(drivername="postgresql")
        raw = psycopg.connect(dsn.render_as_string(hide_password=False))
        try:
            for case, params in CASES:
                path = "/api/p/t?" + "&".join(f"{k}={v}" for k, v in params.items())
                page = client.get(path)
                assert len(page["rows"]) <= PAGE
                page_ms = _timings(lambda path=path: client.get(path))
                count_ms = _timings(lambda path=path: client.get(path + "&count=1"))
                driver_page = _timings(_driver_case(raw, table_sql, params, count=False))
                driver_count = _timings(_driver_case(raw, table_sql, params, count=True))
                total = client.get(path + "&count=1")["total"]
                median = statistics.median(page_ms)
                results.append({
                    "benchmark": f"viz page: {case}", "backend": "postgresql",
                    "rows": ROWS, "matched": total,
                    "page_ms": round(median, 1),
                    "p90_ms": round(sorted(page_ms)[int(0.9 * (REPEATS - 1))], 1),
                    "driver_page_ms": round(statistics.median(driver_page), 1),
                    "ratio": median / statistics.median(driver_page),
                    "count_ms": round(statistics.median(count_ms), 1),
                    "driver_count_ms": round(statistics.median(driver_count), 1),
                    "under_200ms": median < 200})
        finally:
            raw.close()
            client.close()
        results.append({"benchmark": "viz: fill 1M rows server-side", "backend": "postgresql",
                        "seconds": round(fill_s, 1)})
    finally:
        if server is not None:
            server.should_exit = True
            assert thread is not None
            thread.join(timeout=10)
        sys.modules.pop(module_name, None)
        schema.drop(force=True)
        connection.close()
    return results


if __name__ == "__main__":
    import os

    url = os.environ.get("DJ_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")
    for row in run({"postgresql": url}):
        print(row)
