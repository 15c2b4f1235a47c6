"""The target of a migration: a pipeline module's schemas and their declared metadata.

A pipeline module activates its schemas on import (`schema = dj.Schema("lab")`) or leaves
them for the application (`dj.Schema()` + `schema.activate(...)`). Migration planning imports
the module inside `planning(url)`: the shared connection points at the target database, and
declaration compiles every definition into `schema.metadata` without touching the database
(no schema is created, no table, no Lookup contents). The MetaData therefore says what the
definitions want, and Alembic compares it with what the database has.

A module whose schemas are activated by the application is named through a small module
that imports it and activates them (`lab_active.py`: `from lab import schema;
schema.activate("lab")`); its schemas are found as attributes.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from types import ModuleType

import sqlalchemy as sa

from .. import connection as connection_module
from ..backends import BACKENDS
from ..errors import DataJointError
from ..schema import Schema, declare_only
from ..settings import URL_ENV, config
from ..table import Table

PIPELINE_ENV = "DJ_PIPELINE"


def find_schemas(module: ModuleType) -> list[Schema]:
    """The Schema objects of a module (and of its submodules, for a package): module
    attributes that are schemas, and the schemas of table classes defined in the module."""
    found: dict[int, Schema] = {}
    visited: set[str] = set()
    root = module.__name__

    def owned(name: str) -> bool:
        return name == root or name.startswith(root + ".")

    def visit(mod: ModuleType) -> None:
        if mod.__name__ in visited:
            return
        visited.add(mod.__name__)
        for value in list(vars(mod).values()):
            if isinstance(value, Schema):
                found.setdefault(id(value), value)
            elif (isinstance(value, type) and issubclass(value, Table)
                  and value._schema is not None and owned(value.__module__)):
                found.setdefault(id(value._schema), value._schema)
            elif isinstance(value, ModuleType) and owned(value.__name__):
                visit(value)

    visit(module)
    return list(found.values())


@contextmanager
def planning(url: str | sa.URL | None) -> Iterator[None]:
    """Import pipeline modules for planning: against `url`, declaring without writing."""
    if url is None:
        with declare_only():
            yield
        return
    text = sa.make_url(url).render_as_string(hide_password=False)
    saved_env = os.environ.get(URL_ENV)
    saved_shared = connection_module._shared
    os.environ[URL_ENV] = text
    if saved_shared is not None and saved_shared.url != sa.make_url(text):
        connection_module._shared = None  # modules activated now use the target database
    try:
        with config.override(database__url=text), declare_only():
            yield
    finally:
        if saved_env is None:
            os.environ.pop(URL_ENV, None)
        else:
            os.environ[URL_ENV] = saved_env
        connection_module._shared = saved_shared


def load_pipeline(name: str, url: str | sa.URL | None = None) -> list[Schema]:
    """Import the pipeline module `name` for planning and return its activated schemas."""
    fresh = name not in sys.modules
    try:
        with planning(url):
            module = importlib.import_module(name)
    except ImportError as error:
        raise DataJointError(f"Cannot import the pipeline module {name!r}: {error}") from error
    schemas = find_schemas(module)
    if not schemas:
        raise DataJointError(f"The pipeline module {name!r} declares no schema")
    waiting = [s for s in schemas if not s.is_activated]
    if waiting:
        raise DataJointError(
            f"The pipeline module {name!r} has {len(waiting)} schema(s) that are not "
            "activated; name a module that activates them (schema.activate('name'))")
    if url is not None:
        wanted = sa.make_url(url).get_backend_name()
        target = BACKENDS.get(wanted)
        for schema in schemas:
            backend = schema.connection.backend
            if target is None or backend != target.name:
                note = "" if fresh else " (it was imported before, for another database)"
                raise DataJointError(
                    f"Schema {schema.database!r} of {name!r} is declared for {backend}, but "
                    f"the migration targets {wanted}{note}")
    return schemas


def target_metadata(module: ModuleType | str, url: str | sa.URL | None = None
                    ) -> list[sa.MetaData]:
    """The declared MetaData of every schema of a pipeline module (Alembic's
    `target_metadata`; a module name is imported for planning first)."""
    schemas = load_pipeline(module, url) if isinstance(module, str) else find_schemas(module)
    return [schema.metadata for schema in schemas]
