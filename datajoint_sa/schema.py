"""Schema: a database namespace whose decorator declares table classes."""

from __future__ import annotations

import sys
from collections import ChainMap
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar

import sqlalchemy as sa

from . import declare, lineage
from .connection import Connection, conn
from .delete import drop_tables
from .dependencies import Dependencies
from .errors import AccessError, DataJointError
from .jobs import JobTable
from .naming import from_camel_case
from .prompt import confirm
from .settings import config
from .store_gc import External
from .table import Table
from .tiers import Part, renamed_from

HIDDEN_PREFIX = "~"

#: when set, activating and declaring compile definitions into metadata and write nothing
_declare_only: ContextVar[bool] = ContextVar("datajoint_sa_declare_only", default=False)


@contextmanager
def declare_only() -> Iterator[None]:
    """Declare without touching the database: schemas are neither checked nor created,
    tables are compiled into `schema.metadata` but not created, Lookup contents are not
    inserted. Migration planning imports a pipeline module inside this block."""
    token = _declare_only.set(True)
    try:
        yield
    finally:
        _declare_only.reset(token)


class Schema:
    """A PostgreSQL schema, a MySQL database, or a namespace inside one SQLite file.

    Used as a class decorator (`@schema`) it declares the table: parse the definition,
    compile it into this schema's MetaData and create the table when it is missing.
    """

    #: drop the fractional seconds a datetime/time column does not keep and round decimals
    #: to their column's scale, instead of refusing them: classic DataJoint's habit (its
    #: MySQL server stored them so); set by the classic Schema of the compatibility room
    #: only, for the tables it declares
    drops_excess_fractions: ClassVar[bool] = False
    #: `fetch1` of one of its tables gives NaN, not None, for a NULL float: classic
    #: DataJoint took fetch1's values from a record array (set by the classic Schema only)
    fetch1_null_float_is_nan: ClassVar[bool] = False

    def __init__(self, name: str | None = None, context: Mapping[str, Any] | None = None, *,
                 connection: Connection | None = None, create_schema: bool = True,
                 create_tables: bool = True, add_objects: Mapping[str, Any] | None = None
                 ) -> None:
        self.database: str = ""
        #: the mapping itself, not a copy (classic `dj.Schema(name, locals())`): names bound
        #: in it later still resolve, and spawn_missing_classes() fills it
        self.context: Any = context
        self.create_schema = create_schema
        self.create_tables = create_tables
        self._connection = connection
        self.metadata = declare.new_metadata()
        self._deferred: list[tuple[type[Table], Mapping[str, Any]]] = []
        self._classes: dict[str, type[Table]] = {}
        #: this object created the schema: a table name it has not declared yet is missing
        #: (and has no comment or lineage rows), unless another session created it meanwhile
        self._fresh = False
        #: table names declared through this object (these are checked in the catalog)
        self._declared: set[str] = set()
        #: a master and its parts are being created in one transaction (_declare_class)
        self._grouped = False
        #: names given to activate(add_objects=...): they resolve definitions too
        self.add_objects: dict[str, Any] = dict(add_objects or {})
        if name is not None:
            self.activate(name, connection=connection)

    # ---- activation ---------------------------------------------------------------------
    def activate(self, name: str | None = None, connection: Connection | None = None, *,
                 create_schema: bool | None = None, create_tables: bool | None = None,
                 add_objects: Mapping[str, Any] | None = None,
                 schema_name: str | None = None) -> None:
        """Bind the schema to a database namespace and declare the classes waiting for it.

        Definitions resolve their names now, not when their classes were decorated: in the
        module's globals as they are at this moment, then `add_objects` (e.g. the linking
        module's `__dict__` of an Element), so a table defined later in the module or
        injected before activation resolves. `schema_name` is the classic spelling of
        `name`."""
        name = name if name is not None else schema_name
        if name is None:
            if self.database:
                return
            raise DataJointError("Schema.activate needs a schema name")
        if self.database and self.database != name:
            raise DataJointError(f"Schema is already activated as {self.database!r}")
        if add_objects:
            self.add_objects.update(add_objects)
        if not name or not name.replace("_", "a").isalnum() or name[0].isdigit():
            raise DataJointError(f"Invalid schema name {name!r}: use letters, digits and "
                                 "underscores, starting with a letter")
        (connection or self._connection or conn()).backend_impl.check_identifier(name, "schema")
        self.database = name
        self._connection = connection or self._connection or conn()
        if create_schema is not None:
            self.create_schema = create_schema
        if create_tables is not None:
            self.create_tables = create_tables
        if not _declare_only.get() and not self.exists:
            if not self.create_schema:
                raise DataJointError(f"Schema {name!r} does not exist and create_schema=False")
            self._create()
        waiting, self._deferred = self._deferred, []
        for cls, context in waiting:
            self._declare_class(cls, context)

    def _create(self) -> None:
        """Create the schema with its lineage table, in one transaction. Its tables are
        then known to be missing: each is created without asking the catalog first."""
        backend = self.connection.backend_impl
        self.connection.check_ddl(f"create schema {self.database!r}")
        try:
            with self.connection.translating(f"schema {self.database!r}", "create"), \
                    self.connection.session(write=True) as sa_conn:
                backend.create_schema(sa_conn, self.database)
                lineage.create(sa_conn, backend, self.database)
        except AccessError as error:  # a lab user allowed only some schemas, say
            cause = error.__cause__
            raise AccessError(
                f"Cannot create schema {self.database!r}: the database user needs "
                f"{backend.create_schema_privilege} ({getattr(cause, 'orig', cause)})"
            ) from cause
        lineage.mark_seen(self.connection.sa, backend, self.database)
        self._fresh = True

    @property
    def is_activated(self) -> bool:
        return bool(self.database)

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            raise DataJointError("Schema is not activated: call schema.activate(name)")
        return self._connection

    @property
    def exists(self) -> bool:
        with self.connection.session(write=False) as sa_conn:
            return self.connection.backend_impl.schema_exists(sa_conn, self.database)

    def __repr__(self) -> str:
        return f"Schema({self.database!r})" if self.database else "Schema(<not activated>)"

    # ---- declaring ----------------------------------------------------------------------
    def __call__(self, cls: type[Table] | None = None, *, context: Mapping[str, Any] | None = None
                 ) -> Any:
        frame = sys._getframe(1)
        # the caller's globals are kept live (read when the table is declared, maybe much
        # later at activation); a function's locals are as they are now
        scopes: list[Mapping[str, Any]] = [] if context is None else [dict(context)]
        if frame.f_locals is not frame.f_globals:
            scopes.append(dict(frame.f_locals))
        scopes.append(frame.f_globals)
        found: Mapping[str, Any] = ChainMap(*scopes)  # type: ignore[arg-type]

        def decorate(table_class: type[Table]) -> type[Table]:
            if not self.is_activated:
                self._deferred.append((table_class, found))
            else:
                self._declare_class(table_class, found)
            return table_class

        return decorate(cls) if cls is not None else decorate

    def _context(self, cls: type, caller: Mapping[str, Any]) -> dict[str, Any]:
        module = sys.modules.get(cls.__module__)
        context: dict[str, Any] = dict(vars(module)) if module else {}
        context.update(caller)
        if self.context:
            context.update(self.context)
        context.update(self.add_objects)
        context.update(self._classes)
        context.setdefault(cls.__name__, cls)
        return context

    def _declare_class(self, cls: type[Table], caller: Mapping[str, Any]) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Table)) or not cls.tier:
            raise DataJointError(f"{getattr(cls, '__name__', cls)!r} is not a table class: "
                                 "derive it from dj.Manual, dj.Lookup, dj.Imported or dj.Computed")
        if issubclass(cls, Part):
            raise DataJointError(f"Part table {cls.__name__} is declared with its master: nest "
                                 "it inside the master class")
        context = self._context(cls, caller)
        name = cls._prefix + from_camel_case(cls.__name__)
        before = [old for old in renamed_from(cls) if old != name]
        self._forget_renamed(before)
        parts = [member for member in vars(cls).values()
                 if isinstance(member, type) and issubclass(member, Part)]
        names = [name, *(f"{name}__{from_camel_case(p.__name__)}" for p in parts)]
        if parts and self._creates_together(names, before):
            try:
                with self.connection.session(write=True, savepoints=False):
                    self._grouped = True
                    self._declare_with_parts(cls, name, context, before, parts)
            except DataJointError:
                # rolled back whole; table by table, as a class without parts, each
                # checked in the catalog (e.g. another session created one meanwhile)
                self._grouped = False
                self._declare_with_parts(cls, name, context, before, parts)
            finally:
                self._grouped = False
        else:
            self._declare_with_parts(cls, name, context, before, parts)
        cls._parts = parts  # type: ignore[attr-defined]
        self._classes[cls.__name__] = cls
        rows = _contents_rows(getattr(cls, "contents", None))
        pending = cls._sa_table is not None and cls._sa_table.info.get("dj_rename_pending")
        if rows and not _declare_only.get() and not pending:
            cls().insert(rows, skip_duplicates=True)

    def _creates_together(self, names: list[str], before: list[str]) -> bool:
        """Whether a master and its parts are created in one transaction: all new tables
        of a schema this object created, on a backend whose DDL is transactional (one
        COMMIT instead of one per table; nothing is left of a class that fails)."""
        return (self._fresh and not before and self.create_tables
                and not _declare_only.get()
                and self.connection.backend_impl.transactional_ddl
                and not self.connection.in_transaction
                and not any(n in self._declared for n in names))

    def _declare_with_parts(self, cls: type[Table], name: str, context: Mapping[str, Any],
                            before: list[str], parts: Sequence[type[Part]]) -> None:
        self._declare_table(cls, name, context, before)
        for part in parts:
            part.master = cls
            part_context = {**context, "master": cls, cls.__name__: cls}
            part_name = from_camel_case(part.__name__)
            self._declare_table(part, f"{name}__{part_name}", part_context,
                                [f"{old}__{part_name}" for old in before])

    def _declare_table(self, cls: type[Table], name: str, context: Mapping[str, Any],
                       before: list[str] | None = None) -> None:
        display = f"{cls.__qualname__} ({self.database}.{name})"
        if not isinstance(cls.definition, str) or not cls.definition.strip():
            context = self._existing_definition(cls, name, display, context)
        spec = declare.parse(cls.definition, schema=self.database, name=name, context=context,
                             display_name=display)
        backend = self.connection.backend_impl
        sa_schema, sa_name = backend.table_identity(self.database, name)
        backend.check_identifier(sa_name, f"table {display}")
        for attribute in spec.heading.names:
            backend.check_identifier(attribute, f"attribute of {display}")
        key = f"{sa_schema}.{sa_name}" if sa_schema else sa_name
        if key in self.metadata.tables:  # re-declaring (e.g. a re-run notebook cell)
            self.metadata.remove(self.metadata.tables[key])
        sa_table = declare.compile(spec, self.metadata, backend)
        if before:  # `renamed_from`: migrations rename the old table instead (migrate/)
            sa_table.info["dj_renamed_from"] = list(before)
        if self.create_tables and not _declare_only.get():
            fresh = self._fresh and name not in self._declared and not before
            self._declared.add(name)
            try:
                if not (fresh and self._create_new(sa_table, name, spec)):
                    self._create_missing(sa_table, name, spec, before or [])
            except sa.exc.DBAPIError as error:
                lineage.forget_seen(self.connection.sa)
                self.metadata.remove(sa_table)
                translated = self.connection.translate(error, f"table {display}", "create")
                if isinstance(translated, AccessError):  # the privilege is named
                    raise translated from error
                raise DataJointError(f"Cannot create table {display}: {error.orig}") from error
            except DataJointError:  # refused before any DDL (Connection.check_ddl)
                self._declared.discard(name)
                self.metadata.remove(sa_table)
                raise
        cls._schema = self
        cls.table_name = name
        cls._sa_table = sa_table
        cls._spec = spec
        cls._table_heading = spec.heading
        cls._declaration_context = dict(context)  # re-declaring (alter, migrate) resolves again

    def _create_new(self, sa_table: sa.Table, name: str, spec: declare.TableSpec) -> bool:
        """Create a table known to be missing, with its comment and lineage rows, in one
        transaction and without reading the catalog. False when the CREATE failed (e.g.
        another session created the table meanwhile): nothing was written, and
        `_create_missing` decides with the catalog."""
        backend = self.connection.backend_impl
        dialect = self.connection.engine.dialect
        # the schema's lineage table exists and has no rows of this new table
        rows = lineage.insert(backend, dialect, self.database, name, spec.heading)
        then = [rows] if rows is not None else []
        comments = backend.after_create_sql(dialect, sa_table)
        then += comments or []
        created = False
        self.connection.check_ddl(f"create table {sa_table.name!r} of {self.database!r}")
        try:
            with self.connection.session(write=True) as sa_conn:
                unsent = backend.create_table(sa_conn, sa_table, then=then)
                created = True
                if comments is None:
                    backend.after_create(sa_conn, sa_table, replace=False)
                for text in unsent:
                    sa_conn.exec_driver_sql(text, execution_options={"no_parameters": True})
        except sa.exc.DBAPIError:
            if created or self._grouped:  # the CREATE went through (and stays, where DDL
                raise  # commits at once), or the group's transaction is spoilt
            return False
        return True

    def _create_missing(self, sa_table: sa.Table, name: str, spec: declare.TableSpec,
                        before: list[str]) -> None:
        """Create the table unless it (or the table it is `renamed_from`) exists."""
        backend = self.connection.backend_impl
        sa_schema, sa_name = backend.table_identity(self.database, name)
        caller_transaction = self.connection.in_transaction  # not the session opened here
        with self.connection.session(write=True) as sa_conn:
            inspector = sa.inspect(sa_conn)
            if not inspector.has_table(sa_name, schema=sa_schema) and not any(
                    inspector.has_table(backend.table_identity(self.database, old)[1],
                                        schema=sa_schema) for old in before):
                if caller_transaction:
                    self.connection.check_ddl(f"create table {name!r} of {self.database!r}")
                backend.create_table(sa_conn, sa_table)
                backend.after_create(sa_conn, sa_table)
                lineage.record(sa_conn, backend, self.database, name, spec.heading)
            elif before and not inspector.has_table(sa_name, schema=sa_schema):
                sa_table.info["dj_rename_pending"] = True

    def _existing_definition(self, cls: type[Table], name: str, display: str,
                             context: Mapping[str, Any]) -> Mapping[str, Any]:
        """A class decorated without a definition binds to the table that already exists:
        its definition is read from the database (reflect.py). Returns the context that
        resolves that definition's parents."""
        reflected = None
        if not _declare_only.get() and self.exists:
            from .reflect import Spawner  # back-edge: reflect builds on Schema

            reflected = Spawner(self.connection).ensure(f"{self.database}.{name}")
        if reflected is None or not reflected.definition:
            raise DataJointError(f"Table {display} has no definition (and no such table "
                                 "exists to bind to)")
        cls.definition = reflected.definition
        return {**(reflected._declaration_context or {}), **context}

    def _forget_renamed(self, names: list[str]) -> None:
        """A class declared `renamed_from` an older one replaces it: the older class (and
        its parts) leave the schema's classes and MetaData."""
        for cls in list(self._classes.values()):
            if cls.table_name in names:
                for table_cls in [cls, *getattr(cls, "_parts", [])]:
                    if table_cls._sa_table is not None and \
                            table_cls._sa_table.key in self.metadata.tables:
                        self.metadata.remove(table_cls._sa_table)
                self._classes.pop(cls.__name__, None)

    def forget_tables(self, nodes: list[str]) -> None:
        """Mark classes of dropped tables as undeclared."""
        dropped = set(nodes)
        for cls in list(self._classes.values()):
            for table_cls in [cls, *getattr(cls, "_parts", [])]:
                if f"{self.database}.{table_cls.table_name}" in dropped:
                    if table_cls._sa_table is not None:
                        self.metadata.remove(table_cls._sa_table)
                    table_cls._sa_table = None
                    table_cls._table_heading = None
            if f"{self.database}.{cls.table_name}" in dropped:
                self._classes.pop(cls.__name__, None)

    # ---- schema evolution ---------------------------------------------------------------
    def migrate(self, prompt: bool = True, *, force: bool = False) -> list[str]:
        """Change the schema's tables in the database to match the current definitions of
        its declared classes, through Alembic (see `Table.alter`). Returns the descriptions
        of the applied changes."""
        from .migrate import migrate_schema  # back-edge: migrate loads pipelines of schemas

        return migrate_schema(self, prompt=prompt, force=force)

    # ---- computation --------------------------------------------------------------------
    @property
    def jobs(self) -> JobTable:
        """The schema's job table `~jobs`: reservations and errors of populate (see jobs.py)."""
        return JobTable.of(self)

    # ---- external stores ----------------------------------------------------------------
    @property
    def external(self) -> External:
        """The configured stores as this schema uses them: `schema.external[store].gc()`
        removes the schema's stored objects that no row references (see stores.py)."""
        if not self.is_activated:
            raise DataJointError("Schema is not activated: call schema.activate(name)")
        return External(self.connection, self.database)

    # ---- listing and dropping -----------------------------------------------------------
    def list_tables(self) -> list[str]:
        """Names of the schema's tables in the database (hidden `~` tables left out)."""
        with self.connection.session(write=False) as sa_conn:
            names = self.connection.backend_impl.list_tables(sa_conn, self.database)
        return [n for n in names if not n.startswith(HIDDEN_PREFIX)]

    # ---- reflection (see reflect.py) ----------------------------------------------------
    def spawn_missing_classes(self, context: Any = None) -> list[str]:
        """Declare, into `context` (default: the schema's context, else the caller's
        namespace), a class for every table of the schema that has none there yet; returns
        their names."""
        from .reflect import caller_namespace, spawn_missing_classes  # back-edge: reflect

        target = context
        if target is None:
            target = self.context if self.context is not None else caller_namespace()
        return spawn_missing_classes(self, target)

    def code(self) -> str:
        """Python source that re-declares this schema, written from the database."""
        from .reflect import schema_code  # back-edge: reflect builds on Schema

        return schema_code(self)

    def save(self, path: str | None = None) -> str:
        """Write `code()` to `path` (default: `<schema name>.py`); returns the path."""
        path = path or f"{self.database}.py"
        with open(path, "w", encoding="utf-8") as file:
            file.write(self.code())
        return path

    def drop(self, force: bool = False) -> None:
        """Drop every table of the schema (and dependents in other schemas), then the schema."""
        self.connection.check_ddl(f"drop schema {self.database!r}")
        if self._drop_alone(force):
            return
        if not self.exists:
            return
        graph = Dependencies.load(self.connection)
        own = [n for n in graph.nodes if n.split(".", 1)[0] == self.database]
        nodes: set[str] = set()
        for node in own:
            nodes.update(graph.descendants(node))
        if not force and config["safemode"]:
            if not confirm(f"Drop schema {self.database!r} with {len(own)} table(s)"
                           f"{' and dependents elsewhere' if len(nodes) > len(own) else ''}?"):
                print("Drop cancelled")
                return
        drop_tables(self.connection, list(reversed(graph.topological(nodes))))
        with self.connection.translating(f"schema {self.database!r}", "drop"), \
                self.connection.session(write=True) as sa_conn:
            self.connection.backend_impl.drop_schema(sa_conn, self.database)
            lineage.forget_seen(sa_conn)
        self.forget_tables(sorted(nodes))
        self._forget_all()

    def _drop_alone(self, force: bool) -> bool:
        """Drop the schema with its tables in one transaction when no other schema refers
        to it: no graph of every schema, no table-by-table DROP (the backend drops the
        schema's tables at once). False when the backend cannot, or dependents elsewhere
        must be dropped first (then `drop` reads the graph). With `force` (or safemode
        off) nothing is read but the referring schemas, in the drop's own transaction."""
        connection = self.connection
        backend = connection.backend_impl
        if not backend.drops_tables_with_schema:
            return False
        if not force and config["safemode"]:
            with connection.session(write=False) as sa_conn:
                if not backend.schema_exists(sa_conn, self.database):
                    return True
                if backend.referencing_schemas(sa_conn, self.database) != set():
                    return False
                count = len(backend.list_tables(sa_conn, self.database))
            if not confirm(f"Drop schema {self.database!r} with {count} table(s)?"):
                print("Drop cancelled")
                return True
        # a foreign key the user cannot see (MySQL shows a user only its own tables' keys:
        # another user's table may refer to this schema) is the server's to refuse
        with connection.translating(f"schema {self.database!r}", "drop"), \
                connection.session(write=True) as sa_conn:
            if backend.referencing_schemas(sa_conn, self.database) != set():
                return False  # nothing written: the session ends empty
            backend.drop_schema(sa_conn, self.database)
            lineage.forget_seen(sa_conn)
        self._forget_all()
        return True

    def _forget_all(self) -> None:
        """Every class of the schema is undeclared (its tables are gone)."""
        for cls in self._classes.values():
            for table_cls in [cls, *getattr(cls, "_parts", [])]:
                table_cls._sa_table = None
                table_cls._table_heading = None
        self._classes.clear()
        self.metadata.clear()
        self._fresh = False

    def __iter__(self) -> Any:
        return iter(self._classes.values())

    def __contains__(self, name: str) -> bool:
        return name in self._classes


def _contents_rows(contents: Any) -> list[Any] | Any:
    """The rows of a table's `contents`: any iterable of rows (list, tuple, generator, zip),
    a DataFrame or record array as they are, or one mapping as one row."""
    if contents is None:
        return []
    if isinstance(contents, Mapping):
        return [contents]
    if hasattr(contents, "to_records") or hasattr(contents, "dtype"):
        return contents if len(contents) else []
    return list(contents)


def list_schemas(connection: Connection | None = None) -> list[str]:
    """Names of the schemas in the database."""
    connection = connection or conn()
    with connection.session(write=False) as sa_conn:
        return connection.backend_impl.list_schemas(sa_conn)


