"""What an Alembic environment of a datajoint_sa pipeline does: the body of its env.py.

Every environment written from the package's template has a two-line env.py that calls
`run_environment()`, so the logic has one source, installed with the package.

Settings, first found wins:
- the pipeline module: `-x pipeline=pkg.module`, $DJ_PIPELINE, `pipeline =` in alembic.ini;
- the database URL: `-x url=...`, then `dj.config["database.url"]` ($DJ_DATABASE_URL,
  datajoint.json, else `sqlite:///datajoint.db`);
- the schema holding the version table `~alembic_version`: `-x version_schema=...`,
  `version_schema =` in alembic.ini, else the first schema of the module;
- renamed tables: `-x rename=Old=New,...` (besides the classes' `renamed_from`); a dropped
  and a created table of the same heading are asked about when run at a terminal, or with
  `-x confirm_renames=ask` (`config.attributes["confirm_renames"] = True`).
Programmatic callers may pass `config.attributes["connection"]` (a `dj.Connection`) and
`config.attributes["schemas"]` (a list of `dj.Schema`) instead.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import sqlalchemy as sa

from ..backends import get_backend
from ..connection import Connection
from ..errors import DataJointError
from ..prompt import confirm
from ..settings import config as dj_config
from . import compare, operations  # noqa: F401  (register the plugin and op.dj_* operations)
from .plan import check_foreign_keys, relaxed_foreign_keys
from .scope import Scope
from .target import PIPELINE_ENV, load_pipeline


def _setting(context: Any, name: str, environ: str | None = None) -> str | None:
    x = context.get_x_argument(as_dictionary=True)
    value = x.get(name) or (os.environ.get(environ) if environ else None)
    return value or context.config.get_main_option(name) or None


def environment_scope(context: Any) -> tuple[Scope, str, Connection | None]:
    """The scope, URL and (programmatic) connection of an environment run."""
    attributes = context.config.attributes
    connection: Connection | None = attributes.get("connection")
    url = str(connection.url.render_as_string(hide_password=False)) if connection else (
        _setting(context, "url") or dj_config["database.url"])
    schemas = attributes.get("schemas")
    if schemas is None:
        pipeline = _setting(context, "pipeline", PIPELINE_ENV)
        if not pipeline:
            raise DataJointError(
                "Name the pipeline module: alembic -x pipeline=package.module ..., "
                f"${PIPELINE_ENV}, or 'pipeline = package.module' in alembic.ini")
        schemas = load_pipeline(pipeline, url)
    names = [s.database for s in schemas]
    version_schema = _setting(context, "version_schema")
    if version_schema:
        names = [version_schema] + [n for n in names if n != version_schema]
    backend = get_backend(sa.make_url(url).get_backend_name())
    scope = Scope(backend, names, [s.metadata for s in schemas])
    scope.renames = renames_setting(context)
    ask = attributes.get("confirm_renames", _setting(context, "confirm_renames"))
    if ask in (True, "ask", "yes") or (ask is None and sys.stdin.isatty()
                                       and not context.is_offline_mode()):
        scope.confirm = confirm
    return scope, url, connection


def renames_setting(context: Any) -> list[tuple[str, str]]:
    """Renamed tables named for this run: `-x rename=Old=New,Other=Next` (class or table
    names), or `config.attributes["renames"]`."""
    given = context.config.attributes.get("renames")
    if given is not None:
        return [(str(old), str(new)) for old, new in given]
    text = _setting(context, "rename") or ""
    pairs: list[tuple[str, str]] = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        old, sep, new = item.partition("=")
        if not sep or not old.strip() or not new.strip():
            raise DataJointError(f"-x rename= takes Old=New pairs, not {item!r}")
        pairs.append((old.strip(), new.strip()))
    return pairs


def run_environment() -> None:
    """Run the migrations of the current Alembic command (the body of env.py)."""
    from alembic import context

    ini = context.config.config_file_name
    if ini and context.config.attributes.get("configure_logger", True):
        from logging.config import fileConfig

        try:
            fileConfig(ini, disable_existing_loggers=False)
        except KeyError:  # an alembic.ini without logging sections
            pass
    scope, url, connection = environment_scope(context)
    if context.is_offline_mode():
        context.configure(url=url, target_metadata=scope.metadata, literal_binds=True,
                          dialect_opts={"paramstyle": "named"}, **scope.options())
        with context.begin_transaction():
            context.run_migrations()
        return
    own = connection is None
    connection = connection or Connection(url)
    try:
        backend = connection.backend_impl
        with connection.session(write=True) as sa_conn:
            for name in scope.schemas:  # namespaces, not tables: migrations create those
                if not backend.schema_exists(sa_conn, name):
                    backend.create_schema(sa_conn, name)
        sa_conn = connection.sa
        with relaxed_foreign_keys(scope, sa_conn):
            scope.default_schema = sa_conn.dialect.default_schema_name
            context.configure(connection=sa_conn, target_metadata=scope.metadata,
                              **scope.options())
            try:
                with context.begin_transaction():
                    context.run_migrations()
                    check_foreign_keys(scope, sa_conn)
                if sa_conn.in_transaction():  # reads outside Alembic's own transactions
                    sa_conn.commit()
            except BaseException:
                if sa_conn.in_transaction():
                    sa_conn.rollback()
                raise
    finally:
        if own:
            connection.close()
