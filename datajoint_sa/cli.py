"""`datajoint-sa`: the command line.

    datajoint-sa [--url URL] populate MODULE [TABLE ...] [--reserve-jobs] [--processes N]
                                                         [--max-calls N]
    datajoint-sa [--url URL] diagram MODULE -o FILE
    datajoint-sa [--url URL] worker MODULE [--tables T ...] [--processes N] [--max-idle S]
                                           [--max-jobs N] [--lease S]
    datajoint-sa [--url URL] jobs [list] PIPELINE [--table T] [--status S] [--errors]
                                                   [--clear-stale]
    datajoint-sa [--url URL] jobs clear PIPELINE [--table T] [--status error|stale|...]
    datajoint-sa [--url URL] jobs progress PIPELINE [--table T]
    datajoint-sa [--url URL] tables SCHEMA
    datajoint-sa [--url URL] describe SCHEMA.TABLE
    datajoint-sa [--url URL] migrate ...        (the Alembic environment; see migrate.py)
    datajoint-sa [--url URL] viz APP.yaml [--host H] [--port N] [--forms] [--check]

MODULE is an importable pipeline module (`examples.university.pipeline`) or a `.py` file;
`diagram` also accepts a schema name and draws it from the database; PIPELINE is a module
or a schema name (`jobs progress` needs the module for the key sources). Exit codes: 0 success,
1 errors during the work, 2 bad usage. Errors go to stderr, one readable line each.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
from collections.abc import Iterable, Sequence
from typing import Any, NoReturn

PROG = "datajoint-sa"
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad usage: an argument names a module, schema or table that does not exist."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        _say_error(f"{message} (see {self.prog} --help)")
        raise SystemExit(EXIT_USAGE)


def _say_error(message: object) -> None:
    print(f"{PROG}: error: {' '.join(str(message).split())}", file=sys.stderr)


# ---------------------------------------------------------------------------- helpers

def _connect(args: argparse.Namespace) -> Any:
    import datajoint_sa as dj

    url = getattr(args, "url", None)
    if url:
        dj.config["database.url"] = url
        return dj.conn(url)
    return dj.conn()


def load_module(name: str) -> Any:
    """Import a pipeline module by dotted name or by file path (the working directory is
    on the import path, as for `python -m`)."""
    cwd = os.getcwd()
    if cwd not in sys.path:
        sys.path.insert(0, cwd)
    if name.endswith(".py") or os.sep in name:
        if not os.path.isfile(name):
            raise UsageError(f"no such file: {name}")
        module_name = os.path.splitext(os.path.basename(name))[0]
        spec = importlib.util.spec_from_file_location(module_name, name)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module
        spec.loader.exec_module(module)
        return module
    try:
        return importlib.import_module(name)
    except ModuleNotFoundError as error:
        if error.name and (name == error.name or name.startswith(error.name + ".")):
            raise UsageError(f"no module named {name!r}") from None
        raise


def _schema(name: str) -> Any:
    import datajoint_sa as dj

    if name not in dj.list_schemas():
        raise UsageError(f"no schema named {name!r} in the database")
    return dj.Schema(name, create_schema=False, create_tables=False)


def _lookup(namespace: Any, dotted: str) -> Any:
    obj = namespace
    for part in dotted.split("."):
        obj = getattr(obj, part, None)
        if obj is None:
            return None
    return obj


def _table_of(module: Any, name: str) -> Any:
    from .table import Table

    found = _lookup(module, name)
    if not (isinstance(found, type) and issubclass(found, Table)):
        raise UsageError(f"module {module.__name__} has no table class {name!r}")
    return found


def _print_rows(rows: Sequence[dict[str, Any]], columns: Sequence[str]) -> None:
    """Rows as an aligned text table (long values cut to one short line)."""
    def cell(value: Any) -> str:
        text = " ".join(str(value).split()) if value is not None else ""
        return text if len(text) <= 60 else text[:57] + "..."

    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    print("  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip())
    print("  ".join("-" * w for w in widths))
    for r in cells:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)).rstrip())


# ---------------------------------------------------------------------------- commands

def _count_results(result: Any) -> tuple[int, list[tuple[Any, Any]]]:
    """(successes, [(key, error)]) from populate's results."""
    if isinstance(result, dict):
        return int(result.get("success_count") or 0), list(result.get("error_list") or [])
    successes, errors = 0, []
    for item in result or []:
        count, found = _count_results(item)
        successes += count
        errors += found
    return successes, errors


def cmd_populate(args: argparse.Namespace) -> int:
    import datajoint_sa as dj

    _connect(args)
    module = load_module(args.module)
    tables = [_table_of(module, name) for name in args.tables]
    for table in tables:
        if not callable(getattr(table, "populate", None)) or table.tier not in (
                "imported", "computed"):
            raise UsageError(f"{table.__name__} is not an Imported or Computed table")
    options: dict[str, Any] = {"reserve_jobs": args.reserve_jobs, "display_progress": True,
                               "suppress_errors": True}
    if args.processes is not None:
        options["processes"] = args.processes
    if args.max_calls is not None:
        options["max_calls"] = args.max_calls
    if tables:  # exactly these tables, in the order given
        results = [table().populate(**options) for table in tables]
    else:  # the whole pipeline, parents first (the dependency resolver)
        populate = getattr(dj, "populate", None)
        if populate is None:
            _say_error("populate is not available in this version of datajoint_sa")
            return EXIT_FAILED
        results = [populate(module, **options)]
    successes, errors = _count_results(results)
    for key, error in errors:
        _say_error(f"{key}: {error}")
    print(f"populated {successes} key{'s' if successes != 1 else ''}"
          f"{f', {len(errors)} error(s)' if errors else ''}")
    return EXIT_FAILED if errors else EXIT_OK


def cmd_diagram(args: argparse.Namespace) -> int:
    import datajoint_sa as dj

    connection = _connect(args)
    try:
        source = load_module(args.module)
    except UsageError:
        if args.module not in dj.list_schemas(connection):
            raise UsageError(f"{args.module!r} is neither an importable module nor a schema "
                             "in the database") from None
        source = dj.VirtualModule(args.module, args.module, connection=connection)
    diagram = dj.Diagram(source)
    path = diagram.save(args.output, dpi=args.dpi)
    print(f"wrote {path} ({len(diagram)} tables)")
    return EXIT_OK


def cmd_tables(args: argparse.Namespace) -> int:
    import sqlalchemy as sa

    from .reflect import Catalog, split_table_name

    connection = _connect(args)
    _schema(args.schema)
    catalog = Catalog(connection)
    rows = []
    backend = connection.backend_impl
    with connection.session(write=False) as sa_conn:
        for name, info in sorted(catalog.schema(args.schema).items()):
            split = split_table_name(name)
            tier, label = ("-", "-") if split is None else (
                split[0], f"{split[1]}.{split[2]}" if split[2] else split[1])
            sa_schema, sa_name = backend.table_identity(args.schema, name)
            table = sa.table(sa_name, schema=sa_schema)
            count = sa_conn.execute(sa.select(sa.func.count()).select_from(table)).scalar()
            rows.append({"table": name, "class": label, "tier": tier, "rows": count,
                         "comment": info.comment})
    _print_rows(rows, ["table", "class", "tier", "rows", "comment"])
    return EXIT_OK


def cmd_describe(args: argparse.Namespace) -> int:
    import datajoint_sa as dj

    from .table import Table

    connection = _connect(args)
    schema_name, _, table_name = args.table.partition(".")
    if not table_name:
        raise UsageError(f"expected SCHEMA.TABLE, got {args.table!r}")
    _schema(schema_name)
    module = dj.VirtualModule(schema_name, schema_name, connection=connection)
    found = _lookup(module, table_name)
    if not (isinstance(found, type) and issubclass(found, Table)):
        candidates = [c for c in vars(module).values()
                      if isinstance(c, type) and issubclass(c, Table)]
        candidates += [p for c in list(candidates) for p in getattr(c, "_parts", [])]
        found = next((c for c in candidates if c.table_name == table_name), None)
    if found is None:
        raise UsageError(f"schema {schema_name!r} has no table {table_name!r}")
    print(found.describe(printout=False), end="")
    return EXIT_OK


JOB_ACTIONS = ("list", "clear", "progress")
JOB_STATUSES = ("pending", "reserved", "error", "ignore", "stale")


def _job_target(args: argparse.Namespace) -> tuple[str, Any, list[Any]]:
    """(action, pipeline module or None, [schemas]) of a `jobs` command line."""
    import datajoint_sa as dj

    words = list(args.words)
    action = words.pop(0) if words and words[0] in JOB_ACTIONS and len(words) > 1 else "list"
    if len(words) != 1:
        raise UsageError("expected: jobs [list|clear|progress] PIPELINE (a module or a schema)")
    target = words[0]
    connection = _connect(args)
    if target in dj.list_schemas(connection):
        return action, None, [_schema(target)]
    try:
        module = load_module(target)
    except UsageError:
        raise UsageError(f"{target!r} is neither a schema in the database nor an importable "
                         "module") from None
    from .schema import Schema

    schemas = {id(s): s for s in vars(module).values()
               if isinstance(s, Schema) and s.is_activated}
    for value in vars(module).values():
        schema = getattr(value, "_schema", None) if isinstance(value, type) else None
        if isinstance(schema, Schema) and schema.is_activated:
            schemas.setdefault(id(schema), schema)
    if not schemas:
        raise UsageError(f"module {target} has no activated schema")
    return action, module, list(schemas.values())


def _table_matches(table_name: str, wanted: list[str] | None) -> bool:
    """A job row's table against --table names (class names or table names)."""
    from .naming import from_camel_case

    if not wanted:
        return True
    bare = table_name.lstrip("_#")
    return any(table_name == w or bare == w.lstrip("_#") or bare == from_camel_case(w)
               for w in wanted)


def _job_rows(schemas: list[Any], tables: list[str] | None, statuses: list[str] | None
              ) -> list[tuple[Any, dict[str, Any]]]:
    import datetime as dt

    from . import jobs as jobs_module

    cutoff = jobs_module._utcnow() - dt.timedelta(seconds=jobs_module.LEASE)
    found = []
    for schema in schemas:
        for row in jobs_module.JobTable.of(schema).fetch(
                as_dict=True, order_by=["table_name", "key_hash"]):
            if not _table_matches(row["table_name"], tables):
                continue
            alive = row.get("heartbeat") or row.get("timestamp")
            stale = row["status"] == "reserved" and alive is not None and alive < cutoff
            if statuses and row["status"] not in statuses and not (
                    "stale" in statuses and stale):
                continue
            found.append((schema, dict(row, schema=schema.database)))
    return found


def cmd_jobs(args: argparse.Namespace) -> int:
    action, module, schemas = _job_target(args)
    statuses = list(args.status or [])
    if args.errors:
        statuses.append("error")
    if args.clear_stale:  # reservations of workers that are gone (process, session, lease)
        cleared = sum(schema.jobs.clear_stale() for schema in schemas)
        print(f"cleared {cleared} reservation(s)")
    if action == "clear":
        return _clear_jobs(schemas, args.table, statuses or ["error"])
    if action == "progress":
        return _progress(module, schemas, args.table)
    rows = [row for _, row in _job_rows(schemas, args.table, statuses)]
    if args.errors:
        for row in rows:
            print(f"{row['table_name']} {row.get('key')}: "
                  f"{' '.join(str(row.get('error_message', '')).split())}")
        print(f"{len(rows)} error(s)")
        return EXIT_OK
    columns = ["table_name", "status", "priority", "key", "attempts", "host", "pid",
               "heartbeat", "error_message"]
    if len(schemas) > 1:
        columns.insert(0, "schema")
    _print_rows(rows, columns)
    print(f"{len(rows)} job(s)")
    return EXIT_OK


def _clear_jobs(schemas: list[Any], tables: list[str] | None, statuses: list[str]) -> int:
    """Delete job rows: errors (the keys are computed again), ignored keys, queued keys, or
    reservations (only stale ones unless `reserved` is named: a live worker keeps its own)."""
    deleted = 0
    for schema, row in _job_rows(schemas, tables, statuses):
        jobs = schema.jobs
        deleted += len(jobs & {"table_name": row["table_name"], "key_hash": row["key_hash"],
                               "status": row["status"]})
        (jobs & {"table_name": row["table_name"], "key_hash": row["key_hash"],
                 "status": row["status"]}).delete_quick()
    print(f"cleared {deleted} job(s) ({', '.join(statuses)})")
    return EXIT_OK


def _progress(module: Any, schemas: list[Any], tables: list[str] | None) -> int:
    """done / to do / reserved / errors per table, from the key sources and the job table."""
    import datajoint_sa as dj

    from .populate.scheduling import plan

    sources = [module] if module is not None else [
        dj.VirtualModule(s.database, s.database, connection=s.connection) for s in schemas]
    steps, _ = plan(tuple(sources))
    rows = []
    for step in steps:
        table: Any = step.table_class()
        if not _table_matches(table.table_name, tables) and step.name not in (tables or []):
            continue
        remaining, total = table.progress()
        counts = table._schema.jobs.counts().get(table.table_name, {})
        reserved, errors = counts.get("reserved", 0), counts.get("error", 0)
        ignored = counts.get("ignore", 0)
        rows.append({"table": step.name, "done": total - remaining,
                     "to do": max(0, remaining - reserved - errors - ignored),
                     "queued": counts.get("pending", 0), "reserved": reserved,
                     "errors": errors, "ignored": ignored, "total": total})
    _print_rows(rows, ["table", "done", "to do", "queued", "reserved", "errors", "ignored",
                       "total"])
    return EXIT_OK


def cmd_worker(args: argparse.Namespace) -> int:
    from .populate.worker import run_workers

    _connect(args)
    load_module(args.module)  # a bad module name is a usage error, before any work
    options: dict[str, Any] = {"tables": args.tables or None, "max_idle": args.max_idle,
                               "max_jobs": args.max_jobs, "lease": args.lease}
    if args.poll is not None:
        options["poll"] = args.poll
    results = run_workers(args.module, processes=args.processes or 1, **options)
    made = sum(r.made for r in results)
    errors = sum(r.errors for r in results)
    for stats in results:
        for key, error in stats.error_list:
            _say_error(f"{key}: {error}")
    reasons = ", ".join(sorted({r.stopped_by for r in results if r.stopped_by}))
    print(f"worker: made {made} key{'s' if made != 1 else ''}"
          f"{f', {errors} error(s)' if errors else ''}"
          f"{f' (stopped: {reasons})' if reasons else ''}")
    return EXIT_OK


def cmd_migrate(args: argparse.Namespace) -> int:
    _connect(args)
    try:
        from . import migrate
    except ImportError:
        _say_error("migrations are not available in this version of datajoint_sa")
        return EXIT_FAILED
    forward = list(args.alembic_args)
    if forward[:1] == ["--"]:
        forward = forward[1:]
    return int(migrate.cli(forward) or 0)


def cmd_viz(args: argparse.Namespace) -> int:
    try:
        from .viz import cli as viz_cli
    except ImportError as error:
        _say_error(f"the web app needs the viz extra (pip install 'datajoint-sa[viz]'): {error}")
        return EXIT_FAILED
    forward = list(args.viz_args)
    if forward[:1] == ["--"]:
        forward = forward[1:]
    if args.viz_help:
        forward = ["--help"]
    if getattr(args, "url", None) and "--url" not in forward:
        forward += ["--url", args.url]
    return viz_cli(forward)


# ---------------------------------------------------------------------------- parser

def build_parser() -> argparse.ArgumentParser:
    url = _Parser(add_help=False)
    url.add_argument("--url", default=argparse.SUPPRESS,
                     help="database URL (SQLAlchemy form); default: dj.config / DJ_DATABASE_URL")
    parser = _Parser(prog=PROG, parents=[url],
                     description="DataJoint-style pipelines on SQLite, PostgreSQL and MySQL.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    commands.required = True

    p = commands.add_parser("populate", parents=[url],
                            help="fill the Imported/Computed tables of a pipeline module")
    p.add_argument("module", help="pipeline module (dotted name or .py file)")
    p.add_argument("tables", nargs="*", help="table classes of the module (default: all)")
    p.add_argument("--reserve-jobs", action="store_true",
                   help="reserve keys in the job table (for several workers)")
    p.add_argument("--processes", type=_positive, default=None, help="worker processes")
    p.add_argument("--max-calls", type=_positive, default=None,
                   help="stop after this many make() calls per table")
    p.set_defaults(func=cmd_populate)

    p = commands.add_parser("diagram", parents=[url], help="draw a pipeline's diagram")
    p.add_argument("module", help="pipeline module, .py file, or schema name")
    p.add_argument("-o", "--output", required=True,
                   help="output file: .svg, .png, .pdf, .dot or .mmd (Mermaid)")
    p.add_argument("--dpi", type=int, default=150,
                   help="resolution of a PNG (default: %(default)s)")
    p.set_defaults(func=cmd_diagram)

    p = commands.add_parser(
        "jobs", parents=[url], help="list, clear or count the jobs of a pipeline or schema",
        description="jobs [list] PIPELINE | jobs clear PIPELINE | jobs progress PIPELINE; "
                    "PIPELINE is a module or a schema name")
    p.add_argument("words", nargs="+", metavar="[list|clear|progress] PIPELINE")
    p.add_argument("--table", action="append", help="only this table (class or table name)")
    p.add_argument("--status", action="append", choices=JOB_STATUSES,
                   help="only jobs of this status (stale: reservations past their lease); "
                        "clear deletes errors by default")
    p.add_argument("--errors", action="store_true", help="only jobs that failed, with errors")
    p.add_argument("--clear-stale", action="store_true",
                   help="clear reservations of workers that are gone")
    p.set_defaults(func=cmd_jobs)

    p = commands.add_parser("worker", parents=[url],
                            help="a long-lived worker taking keys from a pipeline's job tables")
    p.add_argument("module", help="pipeline module (dotted name or .py file)")
    p.add_argument("--tables", nargs="+", help="only these tables (class names)")
    p.add_argument("--processes", type=_positive, default=None, help="worker processes")
    p.add_argument("--max-idle", type=_seconds, default=None,
                   help="exit after this many seconds without work (default: never)")
    p.add_argument("--max-jobs", type=_positive, default=None,
                   help="exit after this many keys")
    p.add_argument("--lease", type=_seconds, default=None,
                   help="seconds without heartbeat after which a reservation is taken over "
                        "(default: DJ_JOBS_LEASE or 60)")
    p.add_argument("--poll", type=_seconds, default=None, help=argparse.SUPPRESS)
    p.set_defaults(func=cmd_worker)

    p = commands.add_parser("tables", parents=[url], help="list a schema's tables")
    p.add_argument("schema")
    p.set_defaults(func=cmd_tables)

    p = commands.add_parser("describe", parents=[url],
                            help="print the definition of SCHEMA.TABLE (class or table name)")
    p.add_argument("table", metavar="SCHEMA.TABLE")
    p.set_defaults(func=cmd_describe)

    p = commands.add_parser("migrate", parents=[url], add_help=False,
                            help="schema migrations (arguments go to the Alembic front)")
    p.add_argument("alembic_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_migrate)

    p = commands.add_parser("viz", parents=[url], add_help=False,
                            help="serve a web app described by a YAML spec (see "
                                 "datajoint-sa viz --help)")
    p.add_argument("-h", "--help", action="store_true", dest="viz_help")
    p.add_argument("viz_args", nargs=argparse.REMAINDER)
    p.set_defaults(func=cmd_viz)
    return parser


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {text!r}")
    return value


def main(argv: Iterable[str] | None = None) -> int:
    parser = build_parser()
    try:
        args, extra = parser.parse_known_args(list(argv) if argv is not None else None)
        # argparse's REMAINDER does not take options that come first (`migrate --help`,
        # `viz --forms app.yaml`): they arrive here, in order, ahead of the remainder
        forwarded = next((name for name in ("alembic_args", "viz_args") if hasattr(args, name)),
                         None)
        if extra and forwarded is None:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        if forwarded is not None:
            setattr(args, forwarded, extra + list(getattr(args, forwarded)))
    except SystemExit as exit_:
        return int(exit_.code or 0)
    from .errors import DataJointError

    try:
        return int(args.func(args))
    except UsageError as error:
        _say_error(error)
        return EXIT_USAGE
    except DataJointError as error:
        _say_error(error)
        return EXIT_FAILED
    except KeyboardInterrupt:
        _say_error("interrupted")
        return 130
    except SystemExit as exit_:  # a front (migrate) that parses its own arguments
        return exit_.code if isinstance(exit_.code, int) else EXIT_FAILED
    except Exception as error:  # an error inside the user's module or the database
        _say_error(f"{type(error).__name__}: {error}")
        return EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
