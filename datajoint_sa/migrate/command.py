"""`datajoint-sa migrate ...`: writing an environment, and thin fronts for Alembic commands.

`cli(argv)` takes the arguments after `migrate`:

    init DIR --pipeline MODULE      write an Alembic environment from the package's template
    template                        print the template directory (for `alembic init -t`)
    revision -m MSG [--empty]       autogenerate a revision (--empty: a blank one;
             [--rename OLD=NEW]     --rename: a table renamed, not dropped and created)
    upgrade [REV]                   default head
    downgrade [REV]                 default -1
    current / history

Common options: `-c/--config alembic.ini` (default ./alembic.ini, else
./migrations/alembic.ini), `--pipeline MODULE`, `--url URL`, `-x key=value`, `--sql`
(upgrade/downgrade: print the SQL instead of running it).
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.util import CommandError

from ..errors import DataJointError

TEMPLATE_DIR = Path(__file__).resolve().parent / "template"
DEFAULT_INI = ("alembic.ini", "migrations/alembic.ini")


def init_environment(directory: str | Path, pipeline: str | None = None) -> Path:
    """Write an Alembic environment for a pipeline into `directory` (which must be empty or
    missing); returns the path of its alembic.ini. The same as
    `alembic init -t <TEMPLATE_DIR> DIR`, with alembic.ini inside DIR and the pipeline set."""
    directory = Path(directory)
    ini = directory / "alembic.ini"
    if directory.is_dir() and any(directory.iterdir()):
        found = "an Alembic environment" if (directory / "env.py").exists() or ini.exists() \
            else "files"
        raise DataJointError(
            f"{directory} already holds {found}. To keep using it: "
            f"`datajoint-sa migrate revision -m MESSAGE` (or `alembic -c {ini} revision "
            "--autogenerate -m MESSAGE`); to start a new environment, name a new or empty "
            f"directory: `datajoint-sa migrate init {directory.name}_new`")
    config = Config(str(ini))
    try:
        command.init(config, str(directory), template=str(TEMPLATE_DIR))
    except CommandError as error:
        raise DataJointError(str(error)) from error
    text = ini.read_text()
    text = re.sub(r"(?m)^script_location = .*$", "script_location = %(here)s", text)
    if pipeline:
        text = re.sub(r"(?m)^pipeline =.*$", f"pipeline = {pipeline}", text)
    ini.write_text(text)
    return ini


def make_config(ini: str | Path | None = None, *, pipeline: str | None = None,
                url: str | None = None, x: list[str] | None = None) -> Config:
    """An Alembic Config for an environment, with -x options for pipeline and url."""
    if ini is None:
        ini = next((p for p in DEFAULT_INI if Path(p).exists()), DEFAULT_INI[0])
    if not Path(ini).exists():
        raise DataJointError(f"No Alembic environment at {ini}: create one with "
                             "'datajoint-sa migrate init DIR --pipeline MODULE'")
    config = Config(str(ini))
    options = list(x or [])
    if pipeline:
        options.append(f"pipeline={pipeline}")
    if url:
        options.append(f"url={url}")
    config.cmd_opts = argparse.Namespace(x=options)
    return config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="datajoint-sa migrate",
        description="Schema evolution with Alembic for datajoint_sa pipelines")
    sub = parser.add_subparsers(dest="command", required=True)

    init = sub.add_parser("init", help="write an Alembic environment for a pipeline")
    init.add_argument("directory")
    init.add_argument("--pipeline", help="the pipeline module, e.g. mylab.pipeline")
    sub.add_parser("template", help="print the template directory (alembic init -t ...)")

    def common(name: str, help_text: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text)
        p.add_argument("-c", "--config", help="alembic.ini of the environment")
        p.add_argument("--pipeline", help="the pipeline module (else from alembic.ini)")
        p.add_argument("--url", help="database URL (else dj.config)")
        p.add_argument("-x", action="append", default=[], help="key=value for env.py")
        return p

    revision = common("revision", "write a migration for changed definitions")
    revision.add_argument("-m", "--message", required=True)
    revision.add_argument("--autogenerate", action="store_true",
                          help="compare definitions with the database (the default)")
    revision.add_argument("--empty", action="store_true", help="write a blank revision")
    revision.add_argument("--rename", action="append", default=[], metavar="OLD=NEW",
                          help="a table renamed (class or table names; repeatable): "
                               "detected as a rename, not a drop and a create")
    for name, default in (("upgrade", "head"), ("downgrade", "-1")):
        p = common(name, f"{name} the database (default {default})")
        p.add_argument("revision", nargs="?", default=default)
        p.add_argument("--sql", action="store_true", help="print SQL instead of running it")
    for name in ("current", "history"):
        p = common(name, f"alembic {name}")
        p.add_argument("-v", "--verbose", action="store_true")
    return parser


def cli(argv: list[str]) -> int:
    """Run `datajoint-sa migrate <argv>`; returns the exit status."""
    argv = list(argv)
    if argv[:1] == ["migrate"]:
        argv = argv[1:]
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error (already printed)
        return int(exit_.code or 0) if not isinstance(exit_.code, str) else 2
    try:
        if args.command == "init":
            ini = init_environment(args.directory, args.pipeline)
            print(f"Wrote an Alembic environment for {args.pipeline or 'your pipeline'}: "
                  f"alembic -c {ini} revision --autogenerate -m '...'")
            return 0
        if args.command == "template":
            print(TEMPLATE_DIR)
            return 0
        x = list(args.x)
        if getattr(args, "rename", None):
            x.append("rename=" + ",".join(args.rename))
        config = make_config(args.config, pipeline=args.pipeline, url=args.url, x=x)
        if args.command == "revision":
            command.revision(config, message=args.message, autogenerate=not args.empty)
        elif args.command == "upgrade":
            command.upgrade(config, args.revision, sql=args.sql)
        elif args.command == "downgrade":
            command.downgrade(config, args.revision, sql=args.sql)
        elif args.command == "current":
            command.current(config, verbose=args.verbose)
        elif args.command == "history":
            command.history(config, verbose=args.verbose)
    except (DataJointError, CommandError) as error:
        print(f"datajoint-sa migrate: error: {error}", file=sys.stderr)
        return 1
    return 0
