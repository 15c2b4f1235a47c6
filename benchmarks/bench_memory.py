"""Peak memory of iterating a large query in batches, against fetching it whole.

A child process (so that its peak RSS is this measurement's alone) fetches the table either
with `fetch(as_dict=True, batch_size=BATCH)`, touching every batch and dropping it, or
whole (as dicts, or `mode` "frame": a DataFrame, whose own size it reports too); it
reports its peak RSS over the RSS it had before the query. The per-row time of
the batched read is printed at each size (the scale curve). `DJ_BENCH_MEMORY_ROWS`
(default 10^4,10^5,10^6; add 10^7 for the issue's --large case) sets the sizes.
`python -m benchmarks memory`.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
import uuid
from typing import Any

import datajoint_sa as dj

BATCH = 50_000
SIZES = [int(n) for n in os.environ.get("DJ_BENCH_MEMORY_ROWS",
                                        "10000,100000,1000000").split(",")]


def _declare(schema: dj.Schema) -> Any:
    @schema
    class Wide(dj.Manual):
        definition = """
        id : int64
        ---
        x : float64
        label : varchar(40)
        """

    return Wide


def _peak_mib() -> float:
    """This process's own peak RSS: Linux's VmHWM (getrusage's ru_maxrss survives exec, so
    a child would report its parent's peak when that was higher)."""
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _child(url: str, database: str, mode: str) -> None:
    connection = dj.Connection(url)
    schema = dj.Schema(database, connection=connection, create_schema=False)
    table = _declare(schema)
    if mode == "frame":  # libraries and the columnar reader's session: not the query's
        (table & "id < 0").to_pandas()
    before = _peak_mib()
    start = time.perf_counter()
    count = 0
    extra = {}
    if mode == "batches":
        for batch in table.fetch(as_dict=True, batch_size=BATCH):
            count += len(batch)
    elif mode == "frame":
        frame = table.to_pandas()
        count = len(frame)
        extra["frame_mib"] = float(frame.memory_usage(deep=True, index=True).sum()) / 2**20
    else:
        count = len(table.fetch(as_dict=True))
    seconds = time.perf_counter() - start
    peak = _peak_mib()
    print(json.dumps({"rows": count, "seconds": seconds, "peak_mib": peak,
                      "growth_mib": peak - before, **extra}))


def _measure(url: str, database: str, mode: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-m", "benchmarks.bench_memory", url, database,
                           mode], capture_output=True, text=True, timeout=3600,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)})
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        return {"error": (done.stderr.strip().splitlines() or ["no output"])[-1]}
    return dict(json.loads(lines[-1]))


def run(urls: dict[str, str]) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for backend, url in urls.items():
        connection = dj.Connection(url)
        schema = dj.Schema(f"bench_mem_{uuid.uuid4().hex[:8]}", connection=connection)
        try:
            table = _declare(schema)
            have = 0
            for size in SIZES:
                for start in range(have, size, 500_000):
                    stop = min(size, start + 500_000)
                    table.insert([(i, i * 0.5, f"label {i}") for i in range(start, stop)])
                have = size
                batched = _measure(url, schema.database, "batches")
                row: dict[str, Any] = {"benchmark": "memory", "backend": backend,
                                       "rows": size, "batch_size": BATCH}
                if "error" in batched:
                    row["error"] = batched["error"]
                else:
                    row.update(batched_peak_mib=batched["peak_mib"],
                               batched_growth_mib=batched["growth_mib"],
                               us_per_row=batched["seconds"] / size * 1e6)
                if size <= 1_000_000:
                    whole = _measure(url, schema.database, "whole")
                    if "error" not in whole:
                        row["whole_growth_mib"] = whole["growth_mib"]
                rows.append(row)
        finally:
            schema.drop(force=True)
            connection.close()
    return rows


if __name__ == "__main__":
    _child(*sys.argv[1:4])
