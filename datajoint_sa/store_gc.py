"""Garbage collection of a store's content-addressed objects, safe against concurrent inserts.

`schema.external["raw"].gc()` lists the objects under `_hash/{schema}/`, subtracts every
path referenced by a store column of any table (of every schema of the database, since
`INSERT ... SELECT` can copy a reference across schemas) and deletes the rest.
`filepath@store` files are never collected. `<object@store>` objects (under
`_object/{schema}/`, see `objects`) are collected whole, folder and manifest, when no row
references their root path: an aborted or killed staged insert leaves such an object.

Why an insert running at the same time keeps its object: an insert first makes sure its
object exists and renews the object's modification time (`Store.put`), and only then
commits the row. gc therefore

1. lists the objects with their modification times;
2. reads the references (the rows committed by then);
3. keeps every unreferenced object modified within `min_age` seconds (an insert in
   progress may have written or reused it; default one hour);
4. sweeps the rest in two steps. On a local folder each one is first moved aside to a
   quarantine name (an atomic rename): from then on an insert that wants the object does
   not find it and writes it again. The moved object's modification time is read again: if
   it changed since step 1 an insert reused it in between, and it goes back. On other
   filesystems (object stores, where a move is a copy) the object's modification time is
   read again instead, right before it is deleted;
5. reads the references once more, puts back any moved object that a row committed
   meanwhile references, and deletes the others.

On a local folder no interleaving of an insert with gc loses an object the insert's row
references. On an object store the re-check of step 4 leaves a window of one request
between the re-check and the delete; `min_age` covers an insert whose transaction is still
open. `min_age=0` is for when nothing else writes; `dry_run=True` only reports.
"""

from __future__ import annotations

import datetime
import json
import time
import uuid
from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

from . import objects
from .errors import DataJointError
from .stores import Store, get_store

if TYPE_CHECKING:
    from .connection import Connection

#: the default of gc's min_age: objects younger than this (seconds) are kept
GC_MIN_AGE = 3600.0
#: the suffix of an object moved aside by a sweep in progress
QUARANTINE = ".gc"


def _store_columns(sa_conn: Any, backend: Any, schema: str) -> list[tuple[str, str]]:
    """(table, column) of every column of `schema` whose declared type names a store."""
    import sqlalchemy as sa

    from .heading import split_comment

    tables = backend.list_tables(sa_conn, schema)
    if not tables:
        return []
    comments: dict[str, dict[str, str]] = {}
    if backend.read_comments(sa_conn, schema, tables[0]) is not None:
        for table in tables:
            stored = backend.read_comments(sa_conn, schema, table)
            comments[table] = stored[1] if stored else {}
    else:
        sa_schema, _ = backend.table_identity(schema, tables[0])
        multi = sa.inspect(sa_conn).get_multi_columns(schema=sa_schema)
        for (_, table), columns in multi.items():
            comments[table] = {c["name"]: c.get("comment") or "" for c in columns}
    found = []
    for table, columns in comments.items():
        for column, comment in columns.items():
            declared, _ = split_comment(comment)
            if declared and "@" in declared:
                found.append((table, column))
    return found


def referenced_paths(connection: Connection, schemas: list[str]) -> set[str]:
    """Every store path referenced by a store column of the given schemas' tables.

    A schema or table dropped while it is read holds no references and is skipped; any
    other failure propagates (gc then removes nothing).
    """
    paths: set[str] = set()
    for schema in schemas:
        for attempt in range(3):
            try:
                paths |= _schema_paths(connection, schema)
                break
            except Exception:
                if not _exists(connection, schema):
                    break
                if attempt == 2:
                    raise
    return paths


def _exists(connection: Connection, schema: str) -> bool:
    with connection.session(write=False) as sa_conn:
        return bool(connection.backend_impl.schema_exists(sa_conn, schema))


def _schema_paths(connection: Connection, schema: str) -> set[str]:
    import sqlalchemy as sa

    backend = connection.backend_impl
    paths: set[str] = set()
    with connection.session(write=False) as sa_conn:
        columns = _store_columns(sa_conn, backend, schema)
    for table, column in columns:
        sa_schema, sa_name = backend.table_identity(schema, table)
        target = sa.table(sa_name, sa.column(column), schema=sa_schema)
        statement = sa.select(target.c[column]).where(target.c[column].is_not(None))
        try:
            with connection.session(write=False) as sa_conn:
                values = [value for (value,) in sa_conn.execute(statement)]
        except Exception:
            with connection.session(write=False) as sa_conn:
                if not sa.inspect(sa_conn).has_table(sa_name, schema=sa_schema):
                    continue  # dropped meanwhile
            raise
        for value in values:
            if isinstance(value, (bytes, bytearray, memoryview)):
                value = bytes(value).decode("utf-8", "replace")
            if isinstance(value, str):
                try:
                    value = json.loads(value)
                except ValueError:
                    continue
            if isinstance(value, dict) and isinstance(value.get("path"), str):
                paths.add(value["path"].replace("\\", "/").strip("/"))
    return paths


class ExternalStore:
    """A store as used by one schema: `schema.external[store]`."""

    def __init__(self, connection: Connection, schema: str, store: str) -> None:
        self.connection = connection
        self.schema = schema
        self.store_name = store

    def __repr__(self) -> str:
        return f"ExternalStore({self.store_name!r} of schema {self.schema!r})"

    @property
    def store(self) -> Store:
        return get_store(self.store_name, f"schema {self.schema!r}")

    def objects(self) -> dict[str, float | None]:
        """{path: modification time} of the schema's objects in the store: the
        content-addressed ones, and the `<object@store>` objects (by their root path,
        complete or not, with the latest modification time of their files)."""
        store = self.store
        return {**store.objects(self.schema), **objects.listing(store, self.schema)}

    def references(self, *, across_schemas: bool = True) -> set[str]:
        """The store paths referenced by tables of this schema (and of every other schema
        of the database when `across_schemas`)."""
        schemas = [self.schema]
        if across_schemas:
            with self.connection.session(write=False) as sa_conn:
                names = self.connection.backend_impl.list_schemas(sa_conn)
            schemas += [s for s in names if s != self.schema]
        try:
            return referenced_paths(self.connection, schemas)
        except DataJointError:
            raise
        except Exception as error:
            raise DataJointError(
                f"gc of store {self.store_name!r}: cannot read the references of schema(s) "
                f"{', '.join(schemas)}: {error}. Nothing was removed"
                f"{'; across_schemas=False scans this schema only' if across_schemas else ''}"
            ) from error

    def unused(self, *, min_age: float = GC_MIN_AGE, across_schemas: bool = True
               ) -> tuple[list[str], list[str], int]:
        """(removable paths, unreferenced paths kept for being recent, referenced count)."""
        removable, recent, referenced, _ = self._candidates(min_age, across_schemas)
        return removable, recent, referenced

    def _candidates(self, min_age: float, across_schemas: bool
                    ) -> tuple[list[str], list[str], int, dict[str, float | None]]:
        """unused() and the modification times listed (steps 1-3 of the module's protocol)."""
        started = time.time()
        objects = self.objects()  # listed before the references are read
        referenced = self.references(across_schemas=across_schemas)
        removable, recent = [], []
        for path, modified in sorted(objects.items()):
            if path in referenced:
                continue
            if min_age > 0 and (modified is None or modified > started - min_age):
                recent.append(path)
            else:
                removable.append(path)
        return removable, recent, sum(1 for p in objects if p in referenced), objects

    def gc(self, *, dry_run: bool = False, min_age: float | datetime.timedelta = GC_MIN_AGE,
           across_schemas: bool = True) -> dict[str, Any]:
        """Remove the schema's objects in this store that no row references.

        Objects modified within the last `min_age` seconds are kept (an insert in progress
        may reference them before it commits); `min_age=0` removes every unreferenced
        object. Returns {"removed": [paths], "recent": [unreferenced paths kept],
        "referenced": count, "dry_run": bool}; with `dry_run` nothing is removed and
        "removed" lists what would be. Objects an insert reused while gc ran are kept
        (see the module's docstring).
        """
        if isinstance(min_age, datetime.timedelta):
            min_age = min_age.total_seconds()
        removable, recent, referenced, listed = self._candidates(float(min_age),
                                                                 across_schemas)
        if dry_run:
            return {"removed": removable, "recent": recent, "referenced": referenced,
                    "dry_run": True}
        store = self.store
        try:
            moved = self._set_aside(store, removable, listed)
            still_referenced = self.references(across_schemas=across_schemas) if moved else set()
            removed = []
            for path, aside in moved.items():
                if path in still_referenced:
                    _restore(store, path, aside)
                    continue
                try:
                    if objects.is_object_root(aside):
                        objects.remove(store, aside)
                    else:
                        store.remove(aside)
                except FileNotFoundError:
                    continue
                removed.append(path)
        except DataJointError:
            raise
        except Exception as error:
            raise DataJointError(f"gc of store {self.store_name!r}: {error}") from error
        return {"removed": removed, "recent": recent, "referenced": referenced,
                "dry_run": False}

    def _set_aside(self, store: Store, paths: list[str], listed: Mapping[str, float | None]
                   ) -> dict[str, str]:
        """{path: where it now is} of the objects no insert touched since they were listed
        (step 4): moved to a quarantine name on a local folder, left in place elsewhere."""
        moved: dict[str, str] = {}
        for path in paths:
            if objects.is_object_root(path):
                # an object's path is never reused by another insert (a random token in
                # it), so it stays in place: it is swept unless it changed since listed
                if objects.modified(store, path) == listed.get(path):
                    moved[path] = path
                continue
            if not store.is_local:
                if store.modified(path) == listed.get(path):
                    moved[path] = path
                continue
            aside = f"{path}.{uuid.uuid4().hex[:8]}{QUARANTINE}"
            try:
                store.move(path, aside)
            except FileNotFoundError:
                continue  # removed meanwhile (another gc)
            if store.modified(aside) != listed.get(path):
                _restore(store, path, aside)  # an insert reused it after the listing
            else:
                moved[path] = aside
        return moved


def _restore(store: Store, path: str, aside: str) -> None:
    """Put a set-aside object back, unless an insert has written it again meanwhile."""
    if aside == path:
        return
    if store.exists(path):
        store.remove(aside)
    else:
        store.move(aside, path)


class External(Mapping[str, ExternalStore]):
    """The configured stores as seen by one schema: `schema.external[name].gc()`."""

    def __init__(self, connection: Connection, schema: str) -> None:
        self.connection = connection
        self.schema = schema

    def __getitem__(self, store: str) -> ExternalStore:
        get_store(store, f"schema {self.schema!r}")  # configured and valid
        return ExternalStore(self.connection, self.schema, store)

    def __contains__(self, store: object) -> bool:
        from .settings import config

        return store in (config.get("stores") or {})

    def __iter__(self) -> Iterator[str]:
        from .settings import config

        return iter(dict(config.get("stores") or {}))

    def __len__(self) -> int:
        from .settings import config

        return len(config.get("stores") or {})

    def __repr__(self) -> str:
        return f"External(schema {self.schema!r}: {', '.join(self) or 'no stores'})"
