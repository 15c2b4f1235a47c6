"""What differs between database backends and SQLAlchemy does not hide.

A backend is a leaf: it knows SQLAlchemy and its driver, nothing else of ours. The neutral
behaviour lives here; `sqlite.py`, `postgresql.py` and `mysql.py` override only what differs.
"""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager, nullcontext
from typing import Any, ClassVar, cast

import sqlalchemy as sa
from sqlalchemy.engine import Connection as SAConnection

from ..errors import (
    AccessError,
    DataJointError,
    DuplicateError,
    IntegrityError,
    LostConnectionError,
    MissingAttributeError,
    MissingTableError,
    QueryError,
    UnknownAttributeError,
)
from .rows import as_tuples, flat_values, reordered


def create_statements(dialect: Any, table: sa.Table) -> list[Any] | None:
    """The DDL statements `table.create()` sends: CREATE TABLE, its indexes, and its
    comments where the dialect sets them apart (PostgreSQL's COMMENT ON). None for a table
    that needs SQLAlchemy's DDL runner: listeners, sequences or schema types (a type the
    runner creates first, or a constraint it adds)."""
    if any(isinstance(c.type, sa.types.SchemaType) or isinstance(c.default, sa.Sequence)
           for c in table.columns) or getattr(table, "_creator_ddl", None) is not None or (
            table.dispatch.before_create or table.dispatch.after_create):
        return None
    statements: list[Any] = [sa.schema.CreateTable(table)]
    statements += [sa.schema.CreateIndex(index) for index in table.indexes]
    if dialect.supports_comments and not dialect.inline_comments:
        if table.comment is not None:
            statements.append(sa.schema.SetTableComment(table))
        statements += [sa.schema.SetColumnComment(c) for c in table.columns
                       if c.comment is not None]
        statements += [sa.schema.SetConstraintComment(c) for c in table.constraints
                       if c.comment is not None]
    return statements


#: a placeholder schema name for `fixed_table_ddl`'s templates
_PLACEHOLDER = "dj_fixed_table_template"
#: per dialect object: {key: (text before the table's name, text after it)}
_fixed_templates: weakref.WeakKeyDictionary[Any, dict[str, tuple[str, str]]] = \
    weakref.WeakKeyDictionary()


def fixed_table_ddl(dialect: Any, key: str, build: Callable[[str], sa.Table],
                    identity: tuple[str | None, str]) -> str:
    """`CREATE TABLE IF NOT EXISTS` of one of a schema's own hidden tables (`~lineage`,
    SQLite's `~comments`), whose DDL is the same in every schema but for the table's
    name: SQLAlchemy compiles it once per dialect, for the table `build(schema)` builds in a
    placeholder schema, and each schema gets that text with its own quoted name
    (`identity`: its SQLAlchemy schema and name) in place of the placeholder's. Building
    and compiling both tables for every new schema cost about as much as declaring a table.
    tests/test_declare_ddl.py holds the text equal to CreateTable's."""
    templates = _fixed_templates.setdefault(dialect, {})
    template = templates.get(key)
    preparer = dialect.identifier_preparer
    if template is None:
        table = build(_PLACEHOLDER)
        text = str(sa.schema.CreateTable(table, if_not_exists=True).compile(dialect=dialect))
        reference = preparer.format_table(table)
        head, _, tail = text.partition(reference)
        if not _ or _PLACEHOLDER in head + tail:  # the name is not where it is expected
            raise AssertionError(f"cannot make a template of {text!r}")
        template = templates[key] = (head, tail)
    sa_schema, sa_name = identity
    name = str(preparer.format_table(sa.table(sa_name, schema=sa_schema)))
    return template[0] + name + template[1]


class Backend:
    """Neutral behaviour; subclasses override per dialect."""

    name: ClassVar[str] = "generic"
    sqlglot_dialect: ClassVar[str] = ""
    #: whether column and table comments are stored natively (else in a hidden table)
    native_comments: ClassVar[bool] = True
    #: ALTER TABLE is limited: migrations copy the table instead (Alembic's batch mode)
    alters_by_copy: ClassVar[bool] = False
    #: schema changes roll back with their transaction (MySQL commits each one at once)
    transactional_ddl: ClassVar[bool] = True
    #: the longest identifier the backend keeps, in bytes (PostgreSQL truncates longer ones
    #: silently, MySQL refuses them): `check_identifier` refuses them before any DDL
    max_identifier_length: ClassVar[int] = 64
    #: the largest integer a column can hold (uint64 where unsigned 64-bit integers exist)
    max_integer: ClassVar[int] = 2**64 - 1
    #: significant digits a decimal keeps, where decimals are stored as doubles (else None)
    max_decimal_digits: ClassVar[int | None] = None
    #: the server has user accounts with privileges (the web app's per-user login needs them)
    has_users: ClassVar[bool] = True

    def check_identifier(self, name: str, what: str) -> None:
        """Refuse a schema, table or column name the server would truncate or refuse."""
        size = len(name.encode("utf-8"))
        if size > self.max_identifier_length:
            raise DataJointError(
                f"The {what} name {name!r} is {size} bytes long; {self.name} keeps at most "
                f"{self.max_identifier_length}: choose a shorter name")

    # ---- engine and connection set-up ---------------------------------------------------
    def engine_options(self, url: sa.URL) -> dict[str, Any]:
        return {}

    def on_connect(self, dbapi_connection: Any) -> None:
        """Per-connection settings (pragmas, SQL mode)."""

    def install_events(self, engine: sa.Engine) -> None:
        """Hook SQLAlchemy events the backend needs (e.g. SQLite's BEGIN handling)."""

    # ---- namespaces ---------------------------------------------------------------------
    def table_identity(self, schema: str, table: str) -> tuple[str | None, str]:
        """(SQLAlchemy schema, SQLAlchemy table name) of a DataJoint table."""
        return schema, table

    def split_identity(self, sa_schema: str | None, sa_name: str) -> tuple[str, str]:
        """Inverse of table_identity: (schema, table) from SQLAlchemy names."""
        assert sa_schema is not None
        return sa_schema, sa_name

    def create_schema(self, conn: SAConnection, schema: str) -> None:
        conn.execute(sa.schema.CreateSchema(schema, if_not_exists=True))

    def drop_schema(self, conn: SAConnection, schema: str) -> None:
        conn.execute(sa.schema.DropSchema(schema, cascade=False, if_exists=True))

    #: `drop_schema` drops the schema's tables with it, in one statement
    drops_tables_with_schema: ClassVar[bool] = False
    #: the privilege `create_schema` needs, named in the AccessError of a user without it
    create_schema_privilege: ClassVar[str] = "the privilege to create it"

    def referencing_schemas(self, conn: SAConnection, schema: str) -> set[str] | None:
        """The other schemas whose tables have foreign keys into `schema`, read in one
        query; None where the backend cannot tell without reading the whole graph."""
        return None

    def is_referenced(self, conn: SAConnection, schema: str, table: str) -> bool:
        """Whether any foreign key (from any schema, of any ON DELETE action) refers to the
        table, read in one query: a delete from a table nothing refers to needs no cascade,
        and one from a table something refers to must not leave it to the database (an
        ON DELETE CASCADE / SET NULL key declared elsewhere, or foreign-key checks off in the
        session, would let rows go or change past the cascade's preview and checks)."""
        return True

    def referenced_condition(self, schema: str, table: str) -> sa.ColumnElement[bool] | None:
        """`is_referenced` as a condition a DELETE can carry (`delete_unless_referenced`:
        one round trip instead of two), or None where the catalog query cannot go inside
        a DELETE."""
        return None

    def delete_unless_referenced(self, conn: SAConnection, statement: sa.Delete, schema: str,
                                 table: str) -> int | None:
        """Run a DELETE of the table's rows unless a foreign key refers to the table (see
        `is_referenced`); the rows deleted, or None where one does (nothing deleted). With
        a `referenced_condition` the DELETE carries it: a DELETE that removed rows found
        no reference; only one that removed none asks the catalog which it was."""
        guard = self.referenced_condition(schema, table)
        if guard is None:
            if self.is_referenced(conn, schema, table):
                return None
            return int(conn.execute(statement).rowcount)
        count = int(conn.execute(statement.where(~guard)).rowcount)
        if not count and self.is_referenced(conn, schema, table):
            return None
        return count

    def list_schemas(self, conn: SAConnection) -> list[str]:
        return sorted(sa.inspect(conn).get_schema_names())

    def schema_exists(self, conn: SAConnection, schema: str) -> bool:
        return schema in self.list_schemas(conn)

    def list_tables(self, conn: SAConnection, schema: str) -> list[str]:
        return sorted(sa.inspect(conn).get_table_names(schema=schema))

    # ---- comments -----------------------------------------------------------------------
    def create_table(self, conn: SAConnection, table: sa.Table, *,
                     then: Sequence[str] = ()) -> list[str]:
        """CREATE TABLE with its indexes and comments (SQLAlchemy's statements, one by one).
        `then`: SQL text with its values inline, for this dialect (e.g. the table's lineage
        rows, `lineage.insert`), that belongs in the same transaction; returns what it did
        not send, which the caller runs (PostgreSQL sends them in the CREATE's own round
        trip). The statements are compiled once and sent as driver SQL (percent signs as
        SQLAlchemy's own DDL execution passes them); a table SQLAlchemy's DDL runner must
        create itself (listeners, sequences, schema types) goes through `table.create`."""
        statements = create_statements(conn.dialect, table)
        if statements is None:
            table.create(conn)
        else:
            for statement in statements:
                conn.exec_driver_sql(str(statement.compile(dialect=conn.dialect)))
        return list(then)

    def after_create(self, conn: SAConnection, table: sa.Table, *, replace: bool = True
                     ) -> None:
        """Record what the DDL could not (comments on backends without them); `replace`:
        rows a table of that name left behind may exist (False: the table is new in a
        schema just created, so there is nothing to delete first)."""

    def after_create_sql(self, dialect: Any, table: sa.Table) -> list[str] | None:
        """What `after_create(replace=False)` writes, as SQL text with its values inline for
        `dialect`, to go with the CREATE (`create_table(then=...)`) instead of a call of
        its own; None where it is not said as text (the caller runs `after_create`)."""
        return None

    def before_drop(self, conn: SAConnection, table: sa.Table) -> None:
        """Forget what after_create recorded."""

    def read_comments(
        self, conn: SAConnection, schema: str, table: str
    ) -> tuple[str, dict[str, str]] | None:
        """(table comment, {column: comment}) where comments are not native, else None."""
        return None

    def rename_constraint(self, conn: SAConnection, sa_schema: str | None, sa_table: str,
                          kind: str, old: str, new: str) -> bool:
        """Rename a constraint ("primary", "foreignkey", "check", "unique") or an index
        ("index") of a table in place; False where the backend cannot (the caller then drops
        and re-creates it, or leaves the name)."""
        return False

    def charsets(self, conn: SAConnection, schema: str) -> tuple[str, str] | None:
        """(character set, collation) of a schema's default; None where text has one
        encoding (no conversion applies)."""
        return None

    def charset_problem(self, conn: SAConnection, schema: str, charset: str,
                        collation: str | None) -> str | None:
        """Why converting a schema's text to `charset` would lose or refuse data (None: it
        would not); see `convert_charset`."""
        raise DataJointError(f"{self.name} stores text in one encoding: there is no character "
                             "set to convert")

    def convert_charset(self, conn: SAConnection, schema: str, charset: str,
                        collation: str | None) -> list[str]:
        """Convert a schema's tables, text columns and default to `charset` in place (after
        `charset_problem` found none); returns the converted tables."""
        raise DataJointError(f"{self.name} stores text in one encoding: there is no character "
                             "set to convert")

    def autoincrement_columns(self, conn: SAConnection, sa_schema: str | None, sa_name: str,
                              columns: Sequence[dict[str, Any]]) -> set[str]:
        """Names of auto-increment columns among the Inspector's `columns` of a table."""
        return {c["name"] for c in columns if c.get("autoincrement") is True}

    # ---- types --------------------------------------------------------------------------
    def type_variant(self, category: str, args: Sequence[Any]) -> sa.types.TypeEngine[Any] | None:
        """This backend's own column type for a DataJoint type category, where it has one."""
        return None

    def autoincrement_type(self) -> sa.types.TypeEngine[Any] | None:
        """The column type an auto-increment key must have here, where the declared integer
        type would not auto-increment (SQLite's rowid alias), else None."""
        return None

    def table_options(self, *, autoincrement: bool) -> dict[str, Any]:
        """Dialect keyword arguments of sa.Table for every table this backend creates;
        `autoincrement` says whether the table has an auto-increment key."""
        return {}

    def needs_check(self, category: str) -> bool:
        """Whether values of a type category need a CHECK constraint to keep them in range
        (integer ranges, enum values, string lengths) because the column type does not."""
        return category not in ("varchar", "char")

    # ---- reading ------------------------------------------------------------------------
    def result_options(self, types: Sequence[sa.types.TypeEngine[Any]]) -> dict[str, Any]:
        """Execution options for a fetch whose columns have these types (PostgreSQL asks
        for binary results when bytea comes back: text would hex-encode every byte)."""
        return {}

    #: the driver runs one SELECT outside a transaction in autocommit, a consistent read by
    #: itself (SQLite): a cached statement sends no BEGIN and COMMIT around it; elsewhere
    #: the driver opens a transaction that the read ends with a commit
    reads_in_autocommit: ClassVar[bool] = False

    def read_cursor(self, dbapi_connection: Any, options: Mapping[str, Any]) -> Any:
        """A driver cursor for a cached statement with these `result_options` (it runs on
        the driver's cursor, without SQLAlchemy's execution context; statements.py)."""
        return dbapi_connection.cursor()

    def read_arrow(self, url: sa.URL, select: sa.Select[Any], dialect: Any) -> Any | None:
        """The result of `select` as an Arrow table from a columnar driver (ADBC) on a
        session of its own, or None where there is none here (the caller reads rows)."""
        return None

    def fetch_rows(self, cursor: Any, size: int) -> Sequence[Any]:
        """Up to `size` more rows of a streamed (server-side) DBAPI cursor; empty at the
        end."""
        rows: Sequence[Any] = cursor.fetchmany(size)
        return rows

    def arrow_driver_values(self, field: Any, values: list[Any]) -> list[Any]:
        """Values of a read_arrow column (`field`: its Arrow field) as the row driver gives
        them, so that the dialect's result processors apply to them unchanged."""
        return values

    # ---- writing ------------------------------------------------------------------------
    #: the bulk path streams rows (COPY): splitting an insert into batches brings nothing
    bulk_streams: ClassVar[bool] = False

    def insert_rows(
        self,
        conn: SAConnection,
        table: sa.Table,
        columns: Sequence[str],
        rows: Sequence[Sequence[Any]],
        *,
        mode: str = "insert",
        key: Sequence[str] = (),
    ) -> None:
        """Bulk insert of rows already in driver form (tuples in `columns` order).

        `mode` is "insert", "skip" (skip rows whose primary key exists; a secondary unique
        violation still raises) or "replace" (upsert on the primary key). The neutral path
        is the driver's own executemany of one compiled statement, inside the caller's
        transaction.
        """
        if not rows:
            return
        insert_many(conn, self, table, columns, rows, mode=mode, key=key)

    def insert_pieces(self, conn: SAConnection, table: sa.Table, columns: Sequence[str],
                      pieces: Iterable[Sequence[Sequence[Any]]]) -> None:
        """A plain insert whose rows arrive in pieces, each as soon as it is checked and
        converted (insert.py does so for large inserts where `bulk_streams`): here each
        piece is one bulk insert as it comes; a streaming backend sends them all as one
        load, so the server stores a piece while the next is being checked."""
        for piece in pieces:
            self.insert_rows(conn, table, columns, piece)

    #: DataFrames and Arrow tables can be written from their columns (frame_insert.py)
    inserts_columns: ClassVar[bool] = False

    def column_kinds(self, table: sa.Table, columns: Sequence[str], dialect: Any
                     ) -> dict[str, str | None] | None:
        """How each column is stored for `insert_columns` ("int2", "int4", "int8",
        "float4", "float8", "bool", "text"; None: not from columns), or None where the
        backend writes no columns at all now."""
        return None

    def insert_columns(self, conn: SAConnection, table: sa.Table, columns: Sequence[Any],
                       length: int) -> None:
        """Insert `length` rows given as checked columns (frame_insert.FrameColumn), in the
        caller's transaction."""
        raise NotImplementedError

    def insert_statement(
        self, table: sa.Table, columns: Sequence[str], *, mode: str, key: Sequence[str]
    ) -> sa.Insert:
        """INSERT of `columns` with the backend's form of skip/replace on the primary key."""
        raise NotImplementedError

    def insert_select(
        self, conn: SAConnection, table: sa.Table, columns: Sequence[str],
        select: sa.Select[Any], *, mode: str, key: Sequence[str]
    ) -> None:
        """Run the server-side INSERT ... SELECT (one statement where the backend can)."""
        conn.execute(self.insert_select_statement(table, columns, select, mode=mode, key=key))

    def insert_select_statement(
        self, table: sa.Table, columns: Sequence[str], select: sa.Select[Any], *, mode: str,
        key: Sequence[str]
    ) -> sa.Insert:
        """Server-side INSERT ... SELECT with the same skip/replace semantics as insert_rows."""
        source = select.subquery()
        return self.insert_statement(table, columns, mode=mode, key=key).from_select(
            list(columns), sa.select(*(source.c[c] for c in columns)))

    # ---- errors -------------------------------------------------------------------------
    def classify_error(self, error: BaseException, table: str = "") -> DataJointError | None:
        """A DataJointError subclass for a driver error, or None when it is not ours to name."""
        orig = getattr(error, "orig", None) or error
        kind = self.error_kind(orig)
        if kind is None and getattr(error, "connection_invalidated", False):
            kind = "lost"  # SQLAlchemy's dialect recognised a dropped session
        if kind is None:
            return None
        where = f" in {table}" if table else ""
        message = " ".join(str(orig).split())
        advice = _KIND_ADVICE.get(kind, "")
        return _KIND_CLASSES[kind](f"{_KIND_PREFIXES[kind]}{where}: {message}"
                                   f"{' (' + advice + ')' if advice else ''}")

    def error_kind(self, orig: BaseException) -> str | None:
        """One of the keys of _KIND_CLASSES for a driver exception, or None."""
        return None

    # ---- computation: sessions and job reservations -------------------------------------
    def session_id(self, conn: SAConnection) -> int:
        """The server's id of this database session (0 where there is no server)."""
        return 0

    def live_session_ids(self, conn: SAConnection) -> set[int] | None:
        """Ids of the sessions open on the server (at least those of the current user), or
        None where the backend has no such list. Tells reservations of dead workers."""
        return None

    def relax_durability(self, conn: SAConnection) -> None:
        """Let this session's transactions commit without waiting for their log to reach the
        disk, where the server allows that per session: for a session that writes only
        bookkeeping that is harmless to lose in a server crash, such as job reservations."""

    def defer_durability(self, conn: SAConnection) -> Any:
        """Let this session's commits stop waiting for the disk until `restore_durability`,
        where the server allows that per session; returns what to restore (None: nothing
        changed). A populate loop commits one transaction per key: a server crash in between
        loses only the last keys' results, whole (each commit stays atomic), and they are
        computed again; populate itself returns only after everything is on disk."""
        return None

    def restore_durability(self, conn: SAConnection, previous: Any) -> None:
        """Undo `defer_durability` inside a transaction whose commit waits for the disk and
        so for every earlier commit of the session (the log is written in order)."""

    def is_transient(self, error: BaseException) -> bool:
        """Whether a driver error is a lock conflict that a retry of the same transaction may
        not meet again: a deadlock, a serialization failure, a lock wait timeout."""
        return False

    # ---- temporary tables (a cascading delete keeps each level's doomed keys in one) -----
    def temporary_schema(self, near: str | None) -> str | None:
        """The schema a temporary table is named in: none (the session's own namespace),
        or, where temporary tables live in a database, `near` (a table's schema)."""
        return None

    def drop_temporary(self, conn: SAConnection, table: sa.TableClause) -> None:
        """Drop a temporary table without ending the open transaction."""
        conn.execute(sa.text(f"DROP TABLE {conn.dialect.identifier_preparer.format_table(table)}"))

    def writer_turn(self, url: sa.URL) -> AbstractContextManager[None]:
        """Held around a write transaction where the database admits one writer at a time
        and waiting writers poll (SQLite): processes then queue on a lock that the operating
        system hands over at once, instead of sleeping in back-off. A no-op elsewhere."""
        return nullcontext()


_KIND_CLASSES: dict[str, type[DataJointError]] = {
    "duplicate": DuplicateError,
    "foreign_key": IntegrityError,
    "not_null": MissingAttributeError,
    "unknown_column": UnknownAttributeError,
    "check": DataJointError,
    "access": AccessError,
    "lost": LostConnectionError,
    "data": DataJointError,
    "missing_table": MissingTableError,
    "unknown_function": QueryError,
    "unknown_collation": QueryError,
}
_KIND_PREFIXES = {
    "duplicate": "Duplicate entry",
    "foreign_key": "Foreign key violation",
    "not_null": "Missing value",
    "unknown_column": "Unknown attribute",
    "check": "Value out of range or not allowed",
    "access": "Access denied",
    "lost": "Lost connection",
    "data": "Invalid value",
    "missing_table": "Missing table",
    "unknown_function": "Unknown SQL function",
    "unknown_collation": "Unknown collation",
}
#: what the user can do about each kind, appended to the message
_KIND_ADVICE = {
    "missing_table": "the table is not in the database: declare it (activate its schema) "
                     "or check the schema name; it may have been dropped by another session",
    "unknown_function": "this backend has no such function; use a function that all three "
                        "backends share (see docs/queries.md) or compute the value in Python",
    "unknown_collation": "this backend has no such collation; remove the COLLATE clause or "
                         "use a collation the server lists",
    "lost": "the server ended the session; outside a transaction the operation was retried "
            "once; inside one, repeat the transaction",
    "access": "ask the database administrator for the privilege",
}
_NAMED_PARAMETER = re.compile(r"%\((\w+)\)s")


def _compile_for_driver(dialect: Any, stmt: sa.Insert, columns: Sequence[str]
                        ) -> tuple[str, list[str]]:
    """The statement compiled for the driver with positional parameters, and the column
    order those parameters follow.

    Named `%(name)s` parameters (PyMySQL, psycopg) are rewritten to `%s`, which both drivers
    accept and which lets PyMySQL fold an executemany into multi-row INSERTs.
    """
    compiled = stmt.compile(dialect=dialect, column_keys=list(columns))
    if compiled.positiontup is not None:
        return compiled.string, list(compiled.positiontup)
    order: list[str] = []

    def positional(match: re.Match[str]) -> str:
        order.append(match.group(1))
        return "%s"

    return _NAMED_PARAMETER.sub(positional, compiled.string), order


@functools.lru_cache(maxsize=512)
def _insert_sql(backend: Backend, dialect: Any, table: sa.Table, columns: tuple[str, ...],
                mode: str, key: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    """The driver SQL of a backend's INSERT, compiled once per table, columns and mode:
    compiling costs more than a one-row insert itself (populate inserts row by row)."""
    stmt = backend.insert_statement(table, columns, mode=mode, key=key)
    sql, order = _compile_for_driver(dialect, stmt, columns)
    return sql, tuple(order)


@functools.lru_cache(maxsize=512)
def values_sql(sql: str, rows: int) -> str:
    """The one-row INSERT `sql` with its VALUES group repeated for `rows` rows."""
    head, found, tail = sql.partition(" VALUES (")
    if not found:
        raise ValueError(f"not a one-row INSERT: {sql}")
    depth, end = 1, 0
    while depth:
        depth += {"(": 1, ")": -1}.get(tail[end], 0)
        end += 1
    group = "(" + tail[:end]
    return f"{head} VALUES {', '.join([group] * rows)}{tail[end:]}"


def insert_multirow(conn: SAConnection, backend: Backend, table: sa.Table,
                    columns: Sequence[str], rows: Sequence[Sequence[Any]], *, mode: str,
                    key: Sequence[str], max_parameters: int, max_rows: int) -> None:
    """Rows as multi-row INSERTs of up to `max_rows` rows and `max_parameters` parameters
    each: one statement per group of rows where executemany runs one per row."""
    sql, order = _insert_sql(backend, conn.dialect, table, tuple(columns), mode, tuple(key))
    if list(order) != list(columns):
        rows = reordered(rows, [list(columns).index(name) for name in order])
    width = max(1, len(columns))
    step = max(1, min(max_rows, max_parameters // width))
    flat = flat_values(rows, width)
    cursor = conn.connection.cursor()
    try:
        full = len(rows) - len(rows) % step
        if full:
            statement = values_sql(sql, step)
            for start in range(0, full * width, step * width):
                cursor.execute(statement, flat[start:start + step * width])
        if full < len(rows):
            cursor.execute(values_sql(sql, len(rows) - full), flat[full * width:])
    finally:
        cursor.close()


def insert_many(conn: SAConnection, backend: Backend, table: sa.Table, columns: Sequence[str],
                rows: Sequence[Sequence[Any]], *, mode: str, key: Sequence[str]) -> None:
    """cursor.executemany of the backend's INSERT (compiled once, then cached)."""
    sql, order = _insert_sql(backend, conn.dialect, table, tuple(columns), mode, tuple(key))
    _run_many(conn, sql, list(order), columns, rows)


def _run_many(conn: SAConnection, sql: str, order: list[str], columns: Sequence[str],
              rows: Sequence[Sequence[Any]]) -> None:
    if order != list(columns):
        rows = reordered(rows, [list(columns).index(name) for name in order])
    cursor = conn.connection.cursor()
    try:
        if len(rows) == 1:  # psycopg pipelines an executemany: more round trips for one row
            cursor.execute(sql, rows[0])
        else:
            cursor.executemany(sql, as_tuples(rows))
    finally:
        cursor.close()


def existing_keys(conn: SAConnection, table: sa.Table, columns: Sequence[str],
                  rows: Sequence[Sequence[Any]], key: Sequence[str], chunk: int = 2000
                  ) -> tuple[Any, set[tuple[Any, ...]]]:
    """(the key of a row as a function, the keys of `rows` already in the table).

    For backends whose upsert has no conflict target (MySQL): one SELECT per `chunk` keys.
    """
    names = list(columns)
    positions = [names.index(k) for k in key]
    if len(positions) == 1:
        p = positions[0]
        keys_of: Any = lambda row: (row[p],)  # noqa: E731
    else:
        keys_of = lambda row: tuple(row[q] for q in positions)  # noqa: E731
    wanted = list(dict.fromkeys(map(keys_of, rows)))
    # the values are in driver form already: compare and bind them without type processing
    key_columns = [sa.type_coerce(table.c[k], sa.types.NullType()) for k in key]
    existing: set[tuple[Any, ...]] = set()
    for start in range(0, len(wanted), chunk):
        part = wanted[start:start + chunk]
        condition = (key_columns[0].in_([k[0] for k in part]) if len(key_columns) == 1
                     else sa.tuple_(*key_columns).in_(part))
        existing.update(map(tuple, conn.execute(sa.select(*key_columns).where(condition))))
    return keys_of, existing


def without_existing_keys(conn: SAConnection, table: sa.Table, columns: Sequence[str],
                          rows: Sequence[Sequence[Any]], key: Sequence[str]
                          ) -> list[Sequence[Any]]:
    """The rows whose primary key is neither in the table nor in an earlier row."""
    keys_of, existing = existing_keys(conn, table, columns, rows, key)
    kept = []
    for row in rows:
        k = keys_of(row)
        if k not in existing:
            existing.add(k)
            kept.append(row)
    return kept


def with_on_conflict(stmt: Any, columns: Sequence[str], *, mode: str, key: Sequence[str]
                     ) -> sa.Insert:
    """ON CONFLICT on the primary key, for the dialects whose INSERT has it (PostgreSQL and
    SQLite share the API): "skip" does nothing, "replace" updates the other columns."""
    result = stmt
    if mode == "skip":
        result = stmt.on_conflict_do_nothing(index_elements=list(key))
    elif mode == "replace":
        update = {c: stmt.excluded[c] for c in columns if c not in key}
        result = stmt.on_conflict_do_update(index_elements=list(key), set_=update) if update \
            else stmt.on_conflict_do_nothing(index_elements=list(key))
    return cast(sa.Insert, result)
