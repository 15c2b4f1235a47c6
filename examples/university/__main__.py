"""`python -m examples.university [--url URL] [--students N]`: build, fill and query.

The schema is dropped and re-created on every run, so the run is repeatable: the same seed
gives the same rows, and the queries the same answers, on SQLite, PostgreSQL and MySQL.
"""

from __future__ import annotations

import argparse
import time

import datajoint_sa as dj

from . import loader, pipeline, queries


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m examples.university",
                                     description=__doc__)
    parser.add_argument("--url", help="SQLAlchemy database URL (default: dj.config, "
                        "i.e. $DJ_DATABASE_URL or sqlite:///datajoint.db)")
    parser.add_argument("--schema", default="university", help="schema name (default: %(default)s)")
    parser.add_argument("--students", type=int, default=3000, help="default: %(default)s")
    parser.add_argument("--seed", type=int, default=42, help="default: %(default)s")
    parser.add_argument("--rows", type=int, default=5, help="rows shown per query")
    parser.add_argument("--drop", action="store_true", help="drop the schema when done")
    args = parser.parse_args(argv)

    connection = dj.conn(args.url)
    print(f"Database: {connection.url.render_as_string(hide_password=True)}")
    if args.schema in dj.list_schemas(connection):
        print(f"Dropping the previous schema {args.schema!r}")
        dj.Schema(args.schema, connection=connection).drop(force=True)
    started = time.perf_counter()
    pipeline.activate(args.schema, connection=connection)
    print(f"Declared {len(pipeline.schema.list_tables())} tables in schema {args.schema!r} "
          f"in {time.perf_counter() - started:.2f} s")

    loader.load(args.students, args.seed)

    for function in queries.runnable():
        queries.show(function, limit=args.rows)

    if args.drop:
        pipeline.schema.drop(force=True)
        print(f"\nDropped schema {args.schema!r}")


if __name__ == "__main__":
    main()
