"""The scale curve of issue 17: per-row cost at 10^4, 10^5, 10^6 rows (10^7 with --large),
against the raw driver at each size, and peak memory.

Per backend and size n, on a table of n rows (id int64, x float64, label varchar(40)):

* insert a DataFrame (`T.insert(frame)`) / the raw bulk path with the same rows into a twin
  table (PostgreSQL COPY, MySQL multi-row INSERT through PyMySQL's executemany, SQLite
  executemany);
* fetch to a DataFrame (`T.to_pandas()`, built from Arrow: read through ADBC on
  PostgreSQL, elsewhere in batches from a server-side cursor) / the driver's
  cursor.fetchall() + `pandas.DataFrame.from_records` indexed alike;
* fetch to Arrow (`T.fetch(format="arrow")`; no raw counterpart: the time per row only);
* a cascading delete of n rows across a 4-table chain (n/4 rows in each) / the driver's
  DELETE of each table, children first;
* peak memory, each in a child process of its own: iterating `fetch(batch_size=50_000)`
  (peak RSS), and a whole `to_pandas()` (growth of peak RSS over the frame's own size).

A row of the report gives microseconds per row and the ratio to the raw driver at that size;
"growth" is the largest rise of a phase's per-row cost from a smaller size to a larger one
(1.0: it never rises; linear total cost). `--report` rewrites the scale section of docs/benchmarks.md and the plot
docs/figures/scale_curve.png (needs matplotlib: the `bench` extra).

    python -m benchmarks.scale_curve [--backends sqlite,postgresql,mysql]
                                     [--sizes 10000,100000,1000000] [--large] [--report]
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import datajoint_sa as dj

from . import bench_memory
from .__main__ import DEFAULT_URLS

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
FIGURE = ROOT / "docs" / "figures" / "scale_curve.png"
BEGIN, END = "<!-- scale:begin -->", "<!-- scale:end -->"
PHASES = ("insert frame", "fetch frame", "fetch arrow", "cascade delete")
CHUNK = 1_000_000  # rows per insert call when loading the largest sizes


def _declare(schema: dj.Schema) -> dict[str, Any]:
    """The measured table, its twin for the raw driver, and the 4-table delete chain."""
    wide = bench_memory._declare(schema)

    @schema
    class Twin(dj.Manual):
        definition = """
        id : int64
        ---
        x : float64
        label : varchar(40)
        """

    @schema
    class Root(dj.Manual):
        definition = """
        r : int64
        """

    @schema
    class Mid(dj.Manual):
        definition = """
        -> Root
        ---
        v : float64
        """

    @schema
    class Leaf(dj.Manual):
        definition = """
        -> Mid
        ---
        w : float64
        """

    @schema
    class Tip(dj.Manual):
        definition = """
        -> Leaf
        ---
        z : float64
        """

    return {"wide": wide, "twin": Twin, "chain": [Root, Mid, Leaf, Tip]}


def _frame(start: int, stop: int) -> Any:
    import numpy as np
    import pandas as pd

    ids = np.arange(start, stop, dtype=np.int64)
    return pd.DataFrame({"id": ids, "x": ids * 0.5,
                         "label": [f"label {i}" for i in range(start, stop)]})


@contextmanager
def _raw(connection: dj.Connection) -> Iterator[Any]:
    """A DB-API connection of the same engine, committed at the end."""
    raw = connection.engine.raw_connection()
    try:
        yield raw
        raw.commit()
    finally:
        raw.close()


def _name(connection: dj.Connection, table: Any) -> str:
    return connection.engine.dialect.identifier_preparer.format_table(table._sa_table)


def _tuples(frame: Any) -> list[tuple[Any, ...]]:
    """The rows of `frame` as plain tuples: what the raw driver is handed (not timed)."""
    return list(zip(*(frame[c].tolist() for c in frame.columns)))


@contextmanager
def _raw_transaction(connection: dj.Connection) -> Iterator[Any]:
    """A cursor in one transaction (SQLite's connections are set to autocommit: the
    transaction is begun explicitly, as ours are)."""
    with _raw(connection) as raw:
        cursor = raw.cursor()
        if connection.backend == "sqlite":
            cursor.execute("BEGIN")
        yield cursor
        cursor.close()


def _raw_insert(connection: dj.Connection, table: Any, rows: list[tuple[Any, ...]]) -> None:
    """The driver's own bulk path for ready row tuples."""
    name = _name(connection, table)
    with _raw_transaction(connection) as cursor:
        if connection.backend == "postgresql":
            with cursor.copy(f"COPY {name} (id, x, label) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
        else:
            mark = "?" if connection.backend == "sqlite" else "%s"
            cursor.executemany(f"INSERT INTO {name} (id, x, label) VALUES "
                               f"({mark}, {mark}, {mark})", rows)


def _raw_fetch_frame(connection: dj.Connection, table: Any, where: str = "") -> Any:
    import pandas as pd

    with _raw(connection) as raw:
        cursor = raw.cursor()
        cursor.execute(f"SELECT id, x, label FROM {_name(connection, table)} {where}")
        rows = cursor.fetchall()
        cursor.close()
    return pd.DataFrame.from_records(rows, columns=["id", "x", "label"]).set_index("id")


def _raw_delete(connection: dj.Connection, chain: list[Any]) -> None:
    with _raw_transaction(connection) as cursor:
        for table in reversed(chain):
            cursor.execute(f"DELETE FROM {_name(connection, table)}")


def _fill_chain(chain: list[Any], rows: int) -> None:
    import numpy as np
    import pandas as pd

    keys = np.arange(rows, dtype=np.int64)
    chain[0].insert(pd.DataFrame({"r": keys}))
    for table, attr in zip(chain[1:], ("v", "w", "z")):
        table.insert(pd.DataFrame({"r": keys, attr: keys * 0.25}))


def _clear(connection: dj.Connection, *tables: Any) -> None:
    for table in tables:
        connection.execute(sa.delete(table._sa_table))


def _timed(work: Callable[..., Any], *args: Any) -> float:
    start = time.perf_counter()
    work(*args)
    return time.perf_counter() - start


def measure(url: str, sizes: list[int], repeats: int = 1) -> list[dict[str, Any]]:
    """Every phase at every size on one backend (the median of `repeats` timings)."""
    connection = dj.Connection(url)
    schema = dj.Schema(f"bench_curve_{uuid.uuid4().hex[:8]}", connection=connection)
    results: list[dict[str, Any]] = []
    try:
        tables = _declare(schema)
        wide, twin, chain = tables["wide"], tables["twin"], tables["chain"]
        for size in sizes:
            times: dict[str, list[float]] = {}
            for _ in range(repeats):
                _clear(connection, wide, twin)
                ours = raw = 0.0
                for start in range(0, size, CHUNK):
                    frame = _frame(start, min(size, start + CHUNK))
                    rows = _tuples(frame)
                    ours += _timed(wide.insert, frame)
                    raw += _timed(_raw_insert, connection, twin, rows)
                    del frame, rows
                if not times:  # first use of each path (imports, the reader's session)
                    (wide & "id < 0").to_pandas()
                    (wide & "id < 0").fetch(format="arrow")
                    _raw_fetch_frame(connection, twin, "WHERE id < 0")
                times.setdefault("insert frame", []).append(ours)
                times.setdefault("insert frame raw", []).append(raw)
                if size <= 1_000_000:
                    times.setdefault("fetch frame", []).append(_timed(wide.to_pandas))
                    times.setdefault("fetch frame raw", []).append(
                        _timed(lambda: _raw_fetch_frame(connection, twin)))
                    times.setdefault("fetch arrow", []).append(
                        _timed(lambda: wide.fetch(format="arrow")))
                _clear(connection, *reversed(chain))
                _fill_chain(chain, size // 4)
                times.setdefault("cascade delete", []).append(
                    _timed(lambda: chain[0].delete(safemode=False)))
                _fill_chain(chain, size // 4)
                times.setdefault("cascade delete raw", []).append(
                    _timed(lambda: _raw_delete(connection, chain)))
            row: dict[str, Any] = {"backend": connection.backend, "rows": size}
            for phase in PHASES:
                if phase not in times:
                    continue
                seconds = statistics.median(times[phase])
                row[f"{phase} us/row"] = seconds / size * 1e6
                if f"{phase} raw" in times:
                    row[f"{phase} ratio"] = seconds / statistics.median(times[f"{phase} raw"])
            batched = bench_memory._measure(url, schema.database, "batches")
            row["batched peak MiB"] = batched.get("peak_mib")
            if size <= 1_000_000:
                whole = bench_memory._measure(url, schema.database, "frame")
                row["frame MiB"] = whole.get("frame_mib")
                row["frame peak growth MiB"] = whole.get("growth_mib")
            results.append(row)
            print("   " + "  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                    for k, v in row.items()), flush=True)
    finally:
        schema.drop(force=True)
        connection.close()
    return results


def spreads(results: list[dict[str, Any]]) -> dict[tuple[str, str], float]:
    """(backend, phase) -> the largest rise of the per-row cost from a smaller size to a
    larger one (1.0: it never rises, the total cost is at most linear). A fall is common:
    the smallest size carries the fixed cost of each call."""
    out = {}
    for backend in dict.fromkeys(r["backend"] for r in results):
        for phase in PHASES:
            costs = [r[f"{phase} us/row"] for r in sorted(results, key=lambda r: r["rows"])
                     if r["backend"] == backend and f"{phase} us/row" in r]
            if len(costs) > 1:
                out[(backend, phase)] = max(
                    [1.0] + [later / costs[i] for i in range(len(costs))
                             for later in costs[i + 1:]])
    return out


def _cell(value: Any, digits: str = ".2f", suffix: str = "") -> str:
    return "—" if value is None else f"{value:{digits}}{suffix}"


def markdown(results: list[dict[str, Any]], note: str) -> str:
    lines = [note, "",
             "| backend | rows | insert frame | fetch frame | fetch arrow | cascade delete "
             "(4 tables) | batched fetch peak RSS | frame fetch: frame / peak growth |",
             "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in results:
        def phase(name: str, r: dict[str, Any] = r) -> str:
            cost = r.get(f"{name} us/row")
            ratio = r.get(f"{name} ratio")
            return "—" if cost is None else f"{cost:.2f} µs" + (
                f" ({ratio:.2f}x)" if ratio is not None else "")
        frame = r.get("frame MiB")
        growth = r.get("frame peak growth MiB")
        lines.append(
            f"| {r['backend']} | {r['rows']:,} | {phase('insert frame')} | "
            f"{phase('fetch frame')} | {phase('fetch arrow')} | {phase('cascade delete')} | "
            f"{_cell(r.get('batched peak MiB'), '.0f', ' MiB')} | "
            + ("—" if frame is None else
               f"{frame:.0f} / {_cell(growth, '.0f')} MiB ({(growth or 0) / frame:.2f}x)")
            + " |")
    spread = spreads(results)
    if spread:
        lines += ["", "Growth of the per-row cost with size (the largest rise from a smaller "
                  "size to a larger one; 1.00x: it never rises, so the total cost grows at "
                  "most linearly; target <= 1.5x):", "",
                  "| backend | " + " | ".join(PHASES) + " |",
                  "|---|" + "---:|" * len(PHASES)]
        for backend in dict.fromkeys(b for b, _ in spread):
            lines.append(f"| {backend} | " + " | ".join(
                _cell(spread.get((backend, p)), ".2f", "x") for p in PHASES) + " |")
    return "\n".join(lines)


def plot(results: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    backends = list(dict.fromkeys(r["backend"] for r in results))
    figure, axes = plt.subplots(1, len(backends), figsize=(5 * len(backends), 4),
                                squeeze=False, sharey=True)
    for axis, backend in zip(axes[0], backends):
        rows = [r for r in results if r["backend"] == backend]
        for phase in PHASES:
            points = [(r["rows"], r[f"{phase} us/row"]) for r in rows if f"{phase} us/row" in r]
            if points:
                axis.plot(*zip(*points), marker="o", label=phase)
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.set_title(backend)
        axis.set_xlabel("rows")
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].set_ylabel("µs per row")
    axes[0][-1].legend(fontsize="small")
    figure.suptitle("Per-row cost by size (flat = linear total cost)")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def report(results: list[dict[str, Any]], note: str) -> None:
    plot(results, FIGURE)
    text = DOC.read_text()
    body = (f"{BEGIN}\n{markdown(results, note)}\n\n"
            f"![Per-row cost by size](figures/{FIGURE.name})\n{END}")
    if BEGIN in text:
        head, rest = text.split(BEGIN, 1)
        text = head + body + rest.split(END, 1)[1]
    else:
        text = text.rstrip() + "\n\n## Scale curve and peak memory\n\n" + body + "\n"
    DOC.write_text(text)


def _load() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min), {five:.1f} (5 min) on {os.cpu_count()} cores"


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale_curve")
    parser.add_argument("--backends", default="sqlite,postgresql,mysql")
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--large", action="store_true", help="add 10^7 rows")
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--report", action="store_true")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--from-json", help="report the results of earlier --json runs "
                        "(comma-separated files, e.g. one per backend)")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] + ([10_000_000] if args.large else [])
    if args.from_json:
        saved = [json.loads(Path(f).read_text()) for f in args.from_json.split(",")]
        results = [r for one in saved for r in one["results"]]
        note = saved[0]["note"]
    else:
        before = _load()
        results = []
        for backend in args.backends.split(","):
            print(f"== {backend}", flush=True)
            results += measure(DEFAULT_URLS[backend], sizes, args.repeats)
        note = (f"Generated by `nox -s bench-scale -- --report` on {datetime.date.today()} "
                f"(median of {args.repeats} run{'s' if args.repeats > 1 else ''} per size; "
                f"{before} before, {_load()} after). Cells: microseconds per row (ratio to "
                "the raw driver doing the same work at that size).")
    if args.json:
        Path(args.json).write_text(json.dumps({"results": results, "note": note}, indent=1))
    print(markdown(results, note))
    if args.report:
        report(results, note)


if __name__ == "__main__":
    main()
