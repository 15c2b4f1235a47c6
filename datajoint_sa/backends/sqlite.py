"""SQLite: schemas are name prefixes inside one file; comments live in a hidden table."""

from __future__ import annotations

import functools
import graphlib
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import sqlite as sqlite_dialect
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection as SAConnection
from sqlalchemy.ext.compiler import compiles

from .base import (
    Backend,
    create_statements,
    fixed_table_ddl,
    insert_multirow,
    with_on_conflict,
)

SEPARATOR = "."
COMMENTS_TABLE = "~comments"
BUSY_TIMEOUT_MS = 30_000
TURN_SUFFIX = "-writer"
#: bind parameters of one statement in every SQLite (3.32 raised the limit from 999)
MAX_PARAMETERS = 999
#: rows of one multi-row INSERT: past ~200 a longer statement gains nothing
MAX_ROWS = 200

#: the schema's tables with the tables they refer to (a table without foreign keys once,
#: with NULL): one read of the catalog for a whole schema's drop
_SCHEMA_TABLES = (
    'SELECT m.name, f."table" FROM sqlite_master AS m '
    "LEFT JOIN pragma_foreign_key_list(m.name) AS f "
    "WHERE m.type = 'table' AND substr(m.name, 1, ?1) = ?2")
#: tables outside the schema with foreign keys into it
_REFERRING = (
    "SELECT DISTINCT m.name FROM sqlite_master AS m "
    "JOIN pragma_foreign_key_list(m.name) AS f "
    "WHERE m.type = 'table' AND substr(f.\"table\", 1, ?1) = ?2 "
    "AND substr(m.name, 1, ?1) <> ?2")

_EXISTS = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?"

_REFERENCED = (
    "SELECT 1 FROM sqlite_master AS m JOIN pragma_foreign_key_list(m.name) AS f "
    "WHERE m.type = 'table' AND f.\"table\" = ? COLLATE NOCASE LIMIT 1")


@contextmanager
def _driver_cursor(conn: SAConnection) -> Iterator[sqlite3.Cursor]:
    """The driver's cursor of `conn`, inside its transaction: for the DDL path's small
    statements, where SQLAlchemy's execution path costs more than SQLite spends on them.
    Driver errors come out as SQLAlchemy's, as from `conn.execute`."""
    cursor = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        yield cursor
    except sqlite3.Error as error:
        raise sa.exc.DBAPIError.instance(None, None, error, sqlite3.Error) from error
    finally:
        cursor.close()


try:
    import fcntl
except ImportError:  # Windows: writers poll on the busy timeout
    fcntl = None  # type: ignore[assignment]


def comments_ddl(dialect: Any, schema: str) -> str:
    """CREATE TABLE IF NOT EXISTS of a schema's comments table, compiled once per dialect."""
    return fixed_table_ddl(dialect, COMMENTS_TABLE, _build_comments_table,
                           (None, f"{schema}{SEPARATOR}{COMMENTS_TABLE}"))


def _build_comments_table(schema: str) -> sa.Table:
    return sa.Table(
        f"{schema}{SEPARATOR}{COMMENTS_TABLE}",
        sa.MetaData(),
        sa.Column("table_name", sa.String(255), primary_key=True),
        sa.Column("column_name", sa.String(255), primary_key=True),
        sa.Column("comment", sa.Text, nullable=False),
    )


#: one Table object per schema, so that SQLAlchemy's compiled cache serves its statements
_comments_table = functools.lru_cache(maxsize=256)(_build_comments_table)


def _literal(value: str) -> str:
    """An SQLite string literal: quotes doubled; nothing else is special in one (no
    backslash escapes; `?` and `%` are text inside quotes, and DDL text is sent without
    parameters)."""
    return "'" + value.replace("'", "''") + "'"


class _Turn:
    """A process's hold on the writer lock file of one database (re-entrant, per thread)."""

    def __init__(self, path: str) -> None:
        self.pid = os.getpid()
        self.lock = threading.RLock()
        self.depth = 0
        try:
            self.fd: int | None = os.open(path + TURN_SUFFIX, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError:  # e.g. a read-only directory: fall back to polling
            self.fd = None


_turns: dict[str, _Turn] = {}


@contextmanager
def _writer_turn(path: str) -> Iterator[None]:
    turn = _turns.get(path)
    if turn is None or turn.pid != os.getpid():  # a forked child must not share the parent's
        turn = _turns[path] = _Turn(path)
    with turn.lock:
        if turn.depth == 0 and turn.fd is not None:
            fcntl.flock(turn.fd, fcntl.LOCK_EX)
        turn.depth += 1
        try:
            yield
        finally:
            turn.depth -= 1
            if turn.depth == 0 and turn.fd is not None:
                fcntl.flock(turn.fd, fcntl.LOCK_UN)


class TextJSON(sqlite_dialect.JSON):
    """JSON in a column of TEXT affinity. SQLAlchemy names SQLite's JSON column `JSON`, a
    name of NUMERIC affinity: a document that is a bare number is then stored as one
    (`2.0` came back as `2`, `2**70` as a float). `JSONTEXT` holds the text as written."""


@compiles(TextJSON, "sqlite")
def _text_json(type_: TextJSON, compiler: Any, **kw: Any) -> str:
    return "JSONTEXT"


class SQLiteBackend(Backend):
    name = "sqlite"
    sqlglot_dialect = "sqlite"
    native_comments = False
    alters_by_copy = True
    max_identifier_length = 255
    has_users = False  # a file: whoever can open it can write it

    def type_variant(self, category: str, args: Sequence[Any]) -> sa.types.TypeEngine[Any] | None:
        if category == "json":
            return TextJSON(none_as_null=True)
        return None

    def engine_options(self, url: sa.URL) -> dict[str, Any]:
        return {"connect_args": {"timeout": BUSY_TIMEOUT_MS / 1000, "check_same_thread": False}}

    def on_connect(self, dbapi_connection: Any) -> None:
        # hand transaction control to SQLAlchemy (pysqlite's own is incompatible with SAVEPOINT)
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        try:
            cursor.execute("PRAGMA journal_mode=WAL")
        except sqlite3.OperationalError:  # e.g. read-only file: keep the default journal
            pass
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA temp_store=MEMORY")  # a cascading delete's key tables
        cursor.close()

    reads_in_autocommit = True  # pysqlite's isolation_level is None (on_connect)

    def install_events(self, engine: sa.Engine) -> None:
        @sa.event.listens_for(engine, "begin")
        def _begin(conn: SAConnection) -> None:
            # writers take the lock at BEGIN so that concurrent processes queue on the busy
            # timeout instead of failing when a read lock cannot be upgraded
            mode = "DEFERRED" if conn.info.get("dj_read_only") else "IMMEDIATE"
            conn.exec_driver_sql(f"BEGIN {mode}")

    def read_arrow(self, url: sa.URL, select: sa.Select[Any], dialect: Any) -> Any | None:
        """Never through ADBC: adbc-driver-sqlite links its own copy of SQLite, and two SQLite
        libraries in one process on one database file release each other's POSIX locks when
        either closes the file (SQLite's "How To Corrupt An SQLite Database File", 2.2.1).
        The benchmark met it as `disk I/O error`; it can corrupt a file that writers share.
        SQLite's Arrow results are built from the row fetch instead."""
        return None

    def autoincrement_type(self) -> sa.types.TypeEngine[Any] | None:
        return sa.Integer()  # only INTEGER PRIMARY KEY is the rowid alias

    def table_options(self, *, autoincrement: bool) -> dict[str, Any]:
        # keep auto-increment keys unique over the table's lifetime, like the other backends
        return {"sqlite_autoincrement": True} if autoincrement else {}

    max_integer = 2**63 - 1  # INTEGER is signed 64-bit
    max_decimal_digits = 15  # NUMERIC holds a decimal as a double

    def needs_check(self, category: str) -> bool:
        return True  # SQLite's column types constrain nothing

    def writer_turn(self, url: sa.URL) -> AbstractContextManager[None]:
        path = url.database
        if fcntl is None or not path or path == ":memory:" or url.query.get("mode") == "memory":
            return nullcontext()
        return _writer_turn(os.path.abspath(path))

    # ---- namespaces ---------------------------------------------------------------------
    def table_identity(self, schema: str, table: str) -> tuple[str | None, str]:
        return None, f"{schema}{SEPARATOR}{table}"

    def split_identity(self, sa_schema: str | None, sa_name: str) -> tuple[str, str]:
        schema, _, table = sa_name.partition(SEPARATOR)
        return schema, table

    def create_schema(self, conn: SAConnection, schema: str) -> None:
        conn.exec_driver_sql(comments_ddl(conn.dialect, schema),
                             execution_options={"no_parameters": True})

    #: drop_schema drops every table of the prefix, children first, in the caller's
    #: transaction: one COMMIT (one sync of the file) for the whole schema
    drops_tables_with_schema = True

    def drop_schema(self, conn: SAConnection, schema: str) -> None:
        prefix = schema + SEPARATOR
        with _driver_cursor(conn) as cursor:
            rows = cursor.execute(_SCHEMA_TABLES, (len(prefix), prefix)).fetchall()
            sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
            names = {name for name, _ in rows}
            for name, parent in rows:
                sorter.add(name)
                if parent in names and parent != name:
                    sorter.add(parent, name)  # the parent waits for its children
            quote = conn.dialect.identifier_preparer.quote
            for name in sorter.static_order():
                cursor.execute(f"DROP TABLE {quote(name)}")

    def is_referenced(self, conn: SAConnection, schema: str, table: str) -> bool:
        with _driver_cursor(conn) as cursor:
            return cursor.execute(_REFERENCED, (self.table_identity(schema, table)[1],)
                                  ).fetchone() is not None

    def referencing_schemas(self, conn: SAConnection, schema: str) -> set[str] | None:
        prefix = schema + SEPARATOR
        with _driver_cursor(conn) as cursor:
            rows = cursor.execute(_REFERRING, (len(prefix), prefix)).fetchall()
        return {self.split_identity(None, name)[0] for (name,) in rows}

    def schema_exists(self, conn: SAConnection, schema: str) -> bool:
        # one index lookup in the catalog, not a listing of every table in the file
        with _driver_cursor(conn) as cursor:
            return cursor.execute(_EXISTS, (f"{schema}{SEPARATOR}{COMMENTS_TABLE}",)
                                  ).fetchone() is not None

    def list_schemas(self, conn: SAConnection) -> list[str]:
        suffix = SEPARATOR + COMMENTS_TABLE
        names = sa.inspect(conn).get_table_names()
        return sorted(n[: -len(suffix)] for n in names if n.endswith(suffix))

    def list_tables(self, conn: SAConnection, schema: str) -> list[str]:
        prefix = schema + SEPARATOR
        return sorted(
            n[len(prefix) :]
            for n in sa.inspect(conn).get_table_names()
            if n.startswith(prefix) and n[len(prefix) :] != COMMENTS_TABLE
        )

    # ---- comments -----------------------------------------------------------------------
    def create_table(self, conn: SAConnection, table: sa.Table, *,
                     then: Sequence[str] = ()) -> list[str]:
        """SQLAlchemy's statements and `then` on the driver's cursor, in the caller's
        transaction: SQLite runs each in less time than SQLAlchemy's execution path around
        it. A failure of one of `then` fails the call (as on PostgreSQL, whose script sends
        them with the CREATE): the transaction is rolled back whole."""
        statements = create_statements(conn.dialect, table)
        if statements is None:  # types, sequences or listeners: SQLAlchemy's DDL runner
            return super().create_table(conn, table, then=then)
        texts = [str(statement.compile(dialect=conn.dialect)) for statement in statements]
        with _driver_cursor(conn) as cursor:
            for text in [*texts, *then]:
                cursor.execute(text)
        return []

    def after_create(self, conn: SAConnection, table: sa.Table, *, replace: bool = True
                     ) -> None:
        schema, name = self.split_identity(None, table.name)
        rows = [(name, "", table.comment or "")]
        rows += [(name, c.name, c.comment or "") for c in table.columns]
        comments = conn.dialect.identifier_preparer.quote(
            f"{schema}{SEPARATOR}{COMMENTS_TABLE}")
        with _driver_cursor(conn) as cursor:
            if replace:
                cursor.execute(f"DELETE FROM {comments} WHERE table_name = ?", (name,))
            cursor.executemany(f"INSERT INTO {comments} (table_name, column_name, comment) "
                               "VALUES (?, ?, ?)", rows)

    def after_create_sql(self, dialect: Any, table: sa.Table) -> list[str] | None:
        # one multi-row INSERT sent with the CREATE's other statements: no cursor and
        # executemany of its own per table
        schema, name = self.split_identity(None, table.name)
        rows = [(name, "", table.comment or "")]
        rows += [(name, c.name, c.comment or "") for c in table.columns]
        if any("\0" in value for row in rows for value in row):
            return None  # the driver refuses NUL in SQL text: bound as parameters instead
        comments = dialect.identifier_preparer.quote(f"{schema}{SEPARATOR}{COMMENTS_TABLE}")
        values = ", ".join("(" + ", ".join(_literal(value) for value in row) + ")"
                           for row in rows)
        return [f"INSERT INTO {comments} (table_name, column_name, comment) VALUES {values}"]

    def before_drop(self, conn: SAConnection, table: sa.Table) -> None:
        schema, name = self.split_identity(None, table.name)
        comments = _comments_table(schema)
        conn.execute(sa.delete(comments).where(comments.c.table_name == name))

    def read_comments(
        self, conn: SAConnection, schema: str, table: str
    ) -> tuple[str, dict[str, str]] | None:
        comments = _comments_table(schema)
        rows = conn.execute(
            sa.select(comments.c.column_name, comments.c.comment).where(
                comments.c.table_name == table
            )
        ).all()
        columns = {c: text for c, text in rows if c}
        table_comment = next((text for c, text in rows if not c), "")
        return table_comment, columns

    def autoincrement_columns(self, conn: SAConnection, sa_schema: str | None, sa_name: str,
                              columns: Sequence[dict[str, Any]]) -> set[str]:
        # the Inspector does not report AUTOINCREMENT: read it from the table's DDL
        ddl = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE type = 'table' AND "
                                   "name = :name"), {"name": sa_name}).scalar() or ""
        if "AUTOINCREMENT" not in ddl.upper():
            return set()
        return {c["name"] for c in columns if c.get("primary_key")}

    # ---- writing ------------------------------------------------------------------------
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
        """Multi-row INSERTs of up to 200 rows: SQLite runs one statement per group of
        rows in about half the time of executemany's statement per row (30,000 rows of 4
        columns: 19 ms against 38 ms). One row, and rows with binary columns, go as they
        are: sqlite3 binds a blob as a copy, so a statement of 200 rows of blobs would hold
        a copy of all of them at once."""
        if len(rows) < 2 or any(isinstance(getattr(t, "impl_instance", t), sa.LargeBinary)
                                for t in (table.c[c].type for c in columns)):
            super().insert_rows(conn, table, columns, rows, mode=mode, key=key)
            return
        insert_multirow(conn, self, table, columns, rows, mode=mode, key=key,
                        max_parameters=MAX_PARAMETERS, max_rows=MAX_ROWS)

    def insert_statement(
        self, table: sa.Table, columns: Sequence[str], *, mode: str, key: Sequence[str]
    ) -> sa.Insert:
        return with_on_conflict(sqlite_insert(table), columns, mode=mode, key=key)

    def insert_select_statement(
        self, table: sa.Table, columns: Sequence[str], select: sa.Select[Any], *, mode: str,
        key: Sequence[str]
    ) -> sa.Insert:
        # SQLite reads `ON CONFLICT` after `SELECT ... FROM x` as a join constraint unless the
        # SELECT has a WHERE clause, so it always gets one
        source = select.subquery()
        body = sa.select(*(source.c[c] for c in columns)).where(sa.true())
        return self.insert_statement(table, columns, mode=mode, key=key).from_select(
            list(columns), body)

    def is_transient(self, error: BaseException) -> bool:
        orig = getattr(error, "orig", None) or error
        return isinstance(orig, sqlite3.OperationalError) and "locked" in str(orig)

    def error_kind(self, orig: BaseException) -> str | None:
        text = str(orig)
        if "UNIQUE constraint failed" in text or "PRIMARY KEY" in text:
            return "duplicate"
        if "FOREIGN KEY constraint failed" in text:
            return "foreign_key"
        if "NOT NULL constraint failed" in text:
            return "not_null"
        if "CHECK constraint failed" in text:
            return "check"
        if "has no column named" in text or "no such column" in text:
            return "unknown_column"
        if "no such table" in text:
            return "missing_table"
        if "no such function" in text:
            return "unknown_function"
        if "no such collation" in text:
            return "unknown_collation"
        if isinstance(orig, sqlite3.DataError):
            return "data"
        if isinstance(orig, sqlite3.ProgrammingError) and "closed database" in text:
            # the file handle went away under us (SQLAlchemy's pysqlite dialect calls this a
            # disconnect; reads on the driver's own cursor see the bare driver error)
            return "lost"
        return None
