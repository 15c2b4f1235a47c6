"""Run every benchmark module and print one table of results.

Each `benchmarks/bench_*.py` exposes `run(urls: dict[str, str]) -> list[dict]`; a row has
at least `benchmark`, `backend` and either `ratio` (ours / the raw driver, lower is better)
or a throughput. `python -m benchmarks [name ...] [--backends sqlite,postgresql,mysql]`.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import pkgutil
import tempfile
from pathlib import Path

DEFAULT_URLS = {
    "sqlite": f"sqlite:///{Path(tempfile.mkdtemp()) / 'bench.db'}",
    "postgresql": os.environ.get("DJ_TEST_POSTGRES_URL",
                                 "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
    "mysql": os.environ.get("DJ_TEST_MYSQL_URL", "mysql+pymysql://root:@127.0.0.1:3306/test"),
}


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks")
    parser.add_argument("names", nargs="*", help="benchmark modules (default: all)")
    parser.add_argument("--backends", default="sqlite,postgresql,mysql")
    parser.add_argument("--json", help="also write the rows to this file")
    args = parser.parse_args()
    urls = {b: DEFAULT_URLS[b] for b in args.backends.split(",") if b}
    package = Path(__file__).parent
    modules = sorted(m.name for m in pkgutil.iter_modules([str(package)])
                     if m.name.startswith("bench_"))
    wanted = [m for m in modules if not args.names or m in args.names
              or m.removeprefix("bench_") in args.names]
    rows: list[dict] = []
    for name in wanted:
        module = importlib.import_module(f"benchmarks.{name}")
        print(f"== {name}", flush=True)
        for row in module.run(urls):
            rows.append(row)
            print("   " + "  ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}"
                                    for k, v in row.items()), flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
