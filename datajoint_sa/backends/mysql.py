"""MySQL / MariaDB through PyMySQL: schemas are databases; strict mode, utf8mb4, unsigned types."""

from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any, cast

import numpy as np
import pymysql
import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.engine import Connection as SAConnection

from ..errors import DataJointError
from . import mysql_charset
from .base import Backend, insert_many
from .rows import arrow_batch

SQL_MODE = (
    "STRICT_ALL_TABLES,NO_ZERO_IN_DATE,NO_ZERO_DATE,ERROR_FOR_DIVISION_BY_ZERO,"
    "NO_ENGINE_SUBSTITUTION,ONLY_FULL_GROUP_BY"
)
_ERRNO_KINDS = {
    1062: "duplicate",
    1586: "duplicate",
    1451: "foreign_key",
    1452: "foreign_key",
    1216: "foreign_key",
    1217: "foreign_key",
    1048: "not_null",
    1364: "not_null",
    3819: "check",
    4025: "check",
    1264: "check",  # out of range
    1265: "data",  # data truncated
    1366: "data",  # incorrect value
    1292: "data",  # incorrect datetime
    1406: "data",  # data too long
    1054: "unknown_column",
    1142: "access",
    1044: "access",
    1045: "access",
    1227: "access",  # a privilege the statement needs (named in the message)
    2006: "lost",
    2013: "lost",
    4031: "lost",  # the server closed an idle session
    1146: "missing_table",
    1049: "missing_table",  # unknown database (the schema is missing)
    1305: "unknown_function",
    1630: "unknown_function",
    1273: "unknown_collation",
}
_INTEGERS = {
    "int8": mysql.TINYINT(),
    "uint8": mysql.TINYINT(unsigned=True),
    "int16": mysql.SMALLINT(),
    "uint16": mysql.SMALLINT(unsigned=True),
    "int24": mysql.MEDIUMINT(),
    "uint24": mysql.MEDIUMINT(unsigned=True),
    "int32": mysql.INTEGER(),
    "uint32": mysql.INTEGER(unsigned=True),
    "int64": mysql.BIGINT(),
    "uint64": mysql.BIGINT(unsigned=True),
}


#: insert_rows' mode "skip" as one atomic statement (see _guarded)
ATOMIC_SKIP = "atomic-skip"


_SYSTEM = {"information_schema", "mysql", "performance_schema", "sys"}
_SCHEMA_EXISTS = sa.text(
    "SELECT SCHEMA_NAME FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = :name")

#: errors that say InnoDB's foreign-key dictionary cannot be read on this session: no
#: PROCESS privilege (1227), or a server without the view (1109, MySQL 8 renamed it)
_NO_DICTIONARY = (1227, 1109)


def _innodb_foreign(conn: SAConnection, sql: str, params: dict[str, Any]
                    ) -> list[Any] | None:
    """The rows of a query of information_schema.INNODB_SYS_FOREIGN, or None where the
    session cannot read it: the caller asks REFERENTIAL_CONSTRAINTS instead (a failed
    statement leaves MySQL's transaction open). A refusal for want of the privilege or the
    view is remembered on the database connection: a user without PROCESS is refused once
    per connection, not on every delete and drop."""
    if conn.info.get("dj_no_innodb_dictionary"):
        return None
    try:
        return list(conn.execute(sa.text(sql), params))
    except sa.exc.DBAPIError as error:
        args = getattr(error.orig, "args", ())
        if args and args[0] in _NO_DICTIONARY:
            conn.info["dj_no_innodb_dictionary"] = True
        return None


class BinaryUUID(sa.types.TypeDecorator[uuid.UUID]):
    """UUIDs as 16 raw bytes, the layout DataJoint uses on MySQL."""

    impl = mysql.BINARY(16)
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Any) -> bytes | None:
        if value is None:
            return None
        return (value if isinstance(value, uuid.UUID) else uuid.UUID(str(value))).bytes

    def process_result_value(self, value: Any, dialect: Any) -> uuid.UUID | None:
        return None if value is None else uuid.UUID(bytes=bytes(value))


def _plain_streamed(cursor: Any) -> Any | None:
    """The pending result of a PyMySQL SSCursor giving plain tuples, or None."""
    result = getattr(cursor, "_result", None)
    conv_row = getattr(type(cursor), "_conv_row", None)
    if (not isinstance(cursor, pymysql.cursors.SSCursor) or result is None
            or conv_row is not pymysql.cursors.SSCursor._conv_row
            or not getattr(result, "unbuffered_active", False)
            or not all(hasattr(result, a) for a in (
                "connection", "_check_packet_is_eof", "_read_row_from_packet"))):
        return None
    return result


#: (server URL, character set) -> the server's collations of it and which is the default
_COLLATIONS: dict[tuple[str, str], dict[str, str]] = {}


class MySQLBackend(Backend):
    name = "mysql"
    transactional_ddl = False  # every ALTER commits: a failed migration is undone step by step
    sqlglot_dialect = "mysql"

    def engine_options(self, url: sa.URL) -> dict[str, Any]:
        return {"connect_args": {"charset": "utf8mb4"}, "pool_recycle": 3600}

    def on_connect(self, dbapi_connection: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute(f"SET SESSION sql_mode = '{SQL_MODE}'")
        cursor.execute("SET time_zone = '+00:00'")
        cursor.close()

    def create_schema(self, conn: SAConnection, schema: str) -> None:
        collation = self._collation(conn, "utf8mb4", None)
        conn.execute(
            sa.text(
                f"CREATE DATABASE IF NOT EXISTS {conn.dialect.identifier_preparer.quote(schema)} "
                f"CHARACTER SET utf8mb4 COLLATE {collation}"
            )
        )

    def drop_schema(self, conn: SAConnection, schema: str) -> None:
        conn.execute(
            sa.text(f"DROP DATABASE IF EXISTS {conn.dialect.identifier_preparer.quote(schema)}")
        )

    def rename_constraint(self, conn: SAConnection, sa_schema: str | None, sa_table: str,
                          kind: str, old: str, new: str) -> bool:
        # indexes rename in place; the primary key is always PRIMARY; foreign keys and
        # checks cannot be renamed (the caller re-creates them)
        if kind == "primary":
            return True
        if kind not in ("index", "unique"):
            return False
        quote = conn.dialect.identifier_preparer.quote
        owner = f"{quote(sa_schema)}." if sa_schema else ""
        conn.execute(sa.text(f"ALTER TABLE {owner}{quote(sa_table)} "
                             f"RENAME INDEX {quote(old)} TO {quote(new)}"))
        return True

    def charsets(self, conn: SAConnection, schema: str) -> tuple[str, str] | None:
        return mysql_charset.current(conn, schema)

    def _collation(self, conn: SAConnection, charset: str, collation: str | None) -> str:
        """The collation to create or convert to (checked: it is interpolated into DDL).
        By default the binary one that does not pad with spaces, where the server has one
        (MariaDB's `_nopad_bin`, MySQL 8's `_0900_bin`): under `utf8mb4_bin` (PAD SPACE)
        'a' and 'a ' were one key and equal in restrictions, unlike on the other backends."""
        key = (str(conn.engine.url), charset)
        found = _COLLATIONS.get(key)
        if found is None:
            found = _COLLATIONS[key] = {r[0]: r[1] for r in conn.execute(sa.text(
                "SELECT COLLATION_NAME, IS_DEFAULT FROM information_schema.COLLATIONS "
                "WHERE CHARACTER_SET_NAME = :cs"), {"cs": charset})}
        if not found:
            raise DataJointError(f"Unknown character set {charset!r}")
        if collation is None:
            binary = (f"{charset}_nopad_bin", f"{charset}_0900_bin", f"{charset}_bin")
            return next((b for b in binary if b in found),
                        next(k for k, v in found.items() if v))
        if collation not in found:
            raise DataJointError(f"{collation!r} is not a collation of {charset}")
        return collation

    def charset_problem(self, conn: SAConnection, schema: str, charset: str,
                        collation: str | None) -> str | None:
        return mysql_charset.problem(conn, schema, charset,
                                     self._collation(conn, charset, collation))

    def convert_charset(self, conn: SAConnection, schema: str, charset: str,
                        collation: str | None) -> list[str]:
        return mysql_charset.convert(conn, schema, charset,
                                     self._collation(conn, charset, collation))

    drops_tables_with_schema = True
    create_schema_privilege = ("CREATE on a database of that name (e.g. GRANT ALL PRIVILEGES "
                               "ON `alice\\_%`.* allows the names that start with alice_)")

    def is_referenced(self, conn: SAConnection, schema: str, table: str) -> bool:
        # InnoDB's own foreign-key dictionary answers in well under a millisecond; the
        # standard view opens every table of every database to filter on the referenced
        # side (~30 ms with 15 small databases). The first needs the PROCESS privilege.
        found = _innodb_foreign(conn, "SELECT 1 FROM information_schema.INNODB_SYS_FOREIGN "
                                      "WHERE REF_NAME = :name LIMIT 1",
                                {"name": f"{_filename(schema)}/{_filename(table)}"})
        if found is not None:
            return bool(found)
        return conn.execute(sa.text(
            "SELECT 1 FROM information_schema.REFERENTIAL_CONSTRAINTS "
            "WHERE UNIQUE_CONSTRAINT_SCHEMA = :schema AND REFERENCED_TABLE_NAME = :table "
            "LIMIT 1"), {"schema": schema, "table": table}).first() is not None

    def referencing_schemas(self, conn: SAConnection, schema: str) -> set[str] | None:
        # InnoDB's dictionary first, as in is_referenced (~1 ms against 7-16 ms for the
        # standard view with 5 databases); it spells names in the file-name encoding, so
        # the schemas it finds are matched back to their names (rarely any: a drop's case)
        prefix = _filename(schema) + "/"
        found = _innodb_foreign(
            conn, "SELECT DISTINCT LEFT(FOR_NAME, LOCATE('/', FOR_NAME) - 1) "
                  "FROM information_schema.INNODB_SYS_FOREIGN "
                  "WHERE BINARY LEFT(REF_NAME, :length) = :prefix "
                  "AND BINARY LEFT(FOR_NAME, :length) <> :prefix",
            {"length": len(prefix), "prefix": prefix})
        if found is not None:
            if not found:
                return set()
            spelled = {name for (name,) in found}
            return {name for name in self.list_schemas(conn) if _filename(name) in spelled}
        rows = conn.execute(sa.text(
            "SELECT DISTINCT CONSTRAINT_SCHEMA FROM information_schema.REFERENTIAL_CONSTRAINTS"
            " WHERE UNIQUE_CONSTRAINT_SCHEMA = :schema AND CONSTRAINT_SCHEMA <> :schema"),
            {"schema": schema})
        return {name for (name,) in rows}

    def temporary_schema(self, near: str | None) -> str | None:
        return near  # a URL need not name a database, so name one

    def drop_temporary(self, conn: SAConnection, table: sa.TableClause) -> None:
        # plain DROP TABLE would commit the open transaction; DROP TEMPORARY does not
        name = conn.dialect.identifier_preparer.format_table(table)
        conn.execute(sa.text(f"DROP TEMPORARY TABLE {name}"))

    def fetch_rows(self, cursor: Any, size: int) -> Sequence[Any]:
        """PyMySQL's streamed rows read in one loop, as its buffered fetchall reads them:
        its SSCursor.fetchmany goes through three more Python calls per row (read_next,
        _conv_row, _read_rowdata_packet_unbuffered), about a tenth of the time of a
        frame fetch. The row parsing is PyMySQL's own; the end of the result is handled as
        _read_rowdata_packet_unbuffered handles it."""
        result = _plain_streamed(cursor)
        if result is None:
            return super().fetch_rows(cursor, size)
        read_packet = result.connection._read_packet
        is_eof = result._check_packet_is_eof
        read_row = result._read_row_from_packet
        rows: list[Any] = []
        append = rows.append
        for _ in range(size):
            packet = read_packet()
            if is_eof(packet):
                result.unbuffered_active = False
                result.connection = None
                result.rows = None
                cursor.warning_count = result.warning_count
                break
            append(read_row(packet))
        cursor.rownumber += len(rows)
        return rows

    def list_schemas(self, conn: SAConnection) -> list[str]:
        return sorted(n for n in sa.inspect(conn).get_schema_names() if n not in _SYSTEM)

    def schema_exists(self, conn: SAConnection, schema: str) -> bool:
        # one catalog row, not the Inspector's listing; compared here, exactly, because
        # the catalog's collation ignores case and database names keep it
        if schema in _SYSTEM:
            return False
        rows = conn.execute(_SCHEMA_EXISTS, {"name": schema}).all()
        return any(name == schema for (name,) in rows)

    def type_variant(self, category: str, args: Sequence[Any]) -> sa.types.TypeEngine[Any] | None:
        if category in _INTEGERS:
            return _INTEGERS[category]
        if category in ("bytes", "blob"):
            return mysql.LONGBLOB()
        if category == "uuid":
            return BinaryUUID()
        if category == "text":
            return mysql.LONGTEXT()
        if category == "datetime":
            return mysql.DATETIME(fsp=int(args[0]) if args else None)
        if category == "timestamp":
            return mysql.TIMESTAMP(fsp=int(args[0]) if args else None)
        if category == "time":
            return mysql.TIME(fsp=int(args[0]) if args else None)
        if category == "year":
            return mysql.YEAR()
        if category == "enum":
            return mysql.ENUM(*args)
        if category == "float32":
            return mysql.FLOAT(asdecimal=False)
        if category == "float64":
            return mysql.DOUBLE(asdecimal=False)
        return None

    def table_options(self, *, autoincrement: bool) -> dict[str, Any]:
        return {"mysql_engine": "InnoDB"}

    def needs_check(self, category: str) -> bool:
        return False  # native (unsigned) integers, ENUM and strict mode enforce it all

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
        # PyMySQL folds executemany of one INSERT into multi-row INSERTs of up to 1 MB each;
        # skip and replace are one atomic INSERT ... ON DUPLICATE KEY UPDATE (see _guarded)
        if not rows:
            return
        if mode == "insert" and len(rows) >= ARROW_MIN_ROWS and _insert_as_text(
                conn, self, table, columns, rows):
            return
        with _secondary_clash(mode, key, rows, columns):
            insert_many(conn, self, table, columns, rows,
                        mode=ATOMIC_SKIP if mode == "skip" else mode, key=key)

    def insert_select(
        self, conn: SAConnection, table: sa.Table, columns: Sequence[str],
        select: sa.Select[Any], *, mode: str, key: Sequence[str]
    ) -> None:
        with _secondary_clash(mode, key, None, columns):
            conn.execute(self.insert_select_statement(
                table, columns, select, mode=ATOMIC_SKIP if mode == "skip" else mode, key=key))

    def insert_statement(
        self, table: sa.Table, columns: Sequence[str], *, mode: str, key: Sequence[str]
    ) -> sa.Insert:
        # "skip" stays a plain INSERT whose duplicate raises: under ON DUPLICATE KEY the
        # affected-row count cannot tell a skipped row from an inserted one (the client
        # counts found rows), and the job reservation counts on knowing it won
        # rows that leave their (auto_increment) key out are new rows: a plain INSERT
        stmt = mysql_insert(table)
        if mode not in (ATOMIC_SKIP, "replace") or not key or not set(key) <= set(columns):
            return stmt
        return _guarded(stmt, table, columns, key, replace=mode == "replace")

    def error_kind(self, orig: BaseException) -> str | None:
        args = getattr(orig, "args", ())
        code = args[0] if args and isinstance(args[0], int) else None
        if code in _ERRNO_KINDS:
            return _ERRNO_KINDS[code]
        return None

    def session_id(self, conn: SAConnection) -> int:
        return int(conn.exec_driver_sql("SELECT CONNECTION_ID()").scalar_one())

    def live_session_ids(self, conn: SAConnection) -> set[int] | None:
        # without the PROCESS privilege only the user's own sessions are listed
        rows = conn.exec_driver_sql("SELECT ID FROM information_schema.PROCESSLIST")
        return {int(session) for (session,) in rows}

    def is_transient(self, error: BaseException) -> bool:
        orig = getattr(error, "orig", None) or error
        args: tuple[Any, ...] = tuple(getattr(orig, "args", ()))
        return bool(args) and args[0] in (1205, 1213)  # lock wait timeout, deadlock


#: inserts of at least this many rows have their VALUES text written by Arrow
ARROW_MIN_ROWS = 1000
#: the size a statement's VALUES text stops at (PyMySQL's own multi-row INSERTs: ~1 MB)
STATEMENT_BYTES = 1 << 20
#: what PyMySQL's escape_string escapes in a quoted string literal, backslash first
_ESCAPES = (("\\", "\\\\"), ("\0", "\\0"), ("\n", "\\n"), ("\r", "\\r"),
            ("\x1a", "\\Z"), ("'", "\\'"), ('"', '\\"'))


def _literal_type(pa: Any, type_: sa.types.TypeEngine[Any]) -> tuple[Any, bool] | None:
    """(Arrow type, quoted) of a column whose values Arrow writes as the literal PyMySQL
    would send, or None (decimals, binary, uuid, json, time, enum: PyMySQL writes them)."""
    impl = getattr(type_, "impl_instance", type_)
    if isinstance(impl, sa.Boolean):
        return pa.bool_(), False
    if isinstance(impl, (sa.Enum, sa.types.SchemaType)):
        return None
    if isinstance(impl, sa.Integer):
        return (pa.uint64() if getattr(impl, "unsigned", False) else pa.int64()), False
    if isinstance(impl, sa.Float):  # the shortest text that reads back as the same double
        return pa.float64(), False
    if isinstance(impl, sa.String):
        return pa.string(), True
    if isinstance(impl, sa.DateTime) and not impl.timezone:
        return pa.timestamp("us"), True
    if isinstance(impl, sa.Date):
        return pa.date32(), True
    return None


def _insert_as_text(conn: SAConnection, backend: Backend, table: sa.Table,
                    columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> bool:
    """Multi-row INSERTs of about a megabyte each whose VALUES text Arrow writes in C
    (numbers, booleans, escaped and quoted text, dates and datetimes), where PyMySQL's
    executemany formats every value in Python. False (nothing sent) where a column's type
    or values are not plainly Arrow's."""
    if importlib.util.find_spec("pyarrow") is None:
        return False
    import pyarrow as pa
    import pyarrow.compute as pc

    kinds = [_literal_type(pa, table.c[c].type) for c in columns]
    if any(k is None for k in kinds):
        return False
    try:
        batch = arrow_batch(pa, rows, [k[0] for k in kinds if k])
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        return False
    texts = []
    for column, (kind, quoted) in zip(batch.columns, (k for k in kinds if k)):
        if pa.types.is_boolean(kind):
            text = pc.if_else(column, "1", "0")
        else:
            text = pc.cast(column, pa.string())
        if quoted:
            for found, escaped in _ESCAPES:
                text = pc.replace_substring(text, found, escaped)
            text = pc.binary_join_element_wise("'", text, "'", "")
        texts.append(pc.fill_null(text, "NULL"))
    values = pc.binary_join_element_wise("(", pc.binary_join_element_wise(*texts, ","), ")", "")
    preparer = conn.dialect.identifier_preparer
    head = (f"INSERT INTO {preparer.format_table(table)} "
            f"({', '.join(preparer.quote(c) for c in columns)}) VALUES ")
    ends = np.cumsum(pc.binary_length(values).to_numpy(zero_copy_only=False) + 1)
    cursor = conn.connection.cursor()
    try:
        start = 0
        while start < len(values):
            limit = (ends[start - 1] if start else 0) + STATEMENT_BYTES
            stop = max(start + 1, int(np.searchsorted(ends, limit, side="right")))
            part = pa.ListArray.from_arrays([0, stop - start], values[start:stop])
            cursor.execute(head + pc.binary_join(part, ",")[0].as_py())
            start = stop
    finally:
        cursor.close()
    return True


def _guarded(stmt: Any, table: sa.Table, columns: Sequence[str], key: Sequence[str], *,
             replace: bool) -> sa.Insert:
    """INSERT ... ON DUPLICATE KEY UPDATE that acts on primary-key duplicates only.

    ON DUPLICATE KEY fires on any unique index (and INSERT IGNORE would also turn data errors
    into warnings), so the first assignment is a guard: when the row that clashed has the new
    row's primary key it keeps its key; otherwise the clash is on a secondary unique index and
    the guard sets a key column to NULL, which strict mode refuses (error 1048) for the whole
    statement. `_secondary_clash` turns that error into the duplicate error it stands for.
    InnoDB checks the primary key before secondary indexes, so a row whose key exists always
    meets the guard with its own key. One statement: atomic against concurrent writers.
    """
    same_key = sa.and_(*(table.c[k].op("<=>")(stmt.inserted[k]) for k in key))
    guard = sa.case((same_key, table.c[key[0]]), else_=sa.null())
    update: dict[str, Any] = {key[0]: guard}
    if replace:
        update.update({c: stmt.inserted[c] for c in columns if c not in key})
    return cast(sa.Insert, stmt.on_duplicate_key_update(update))


@contextmanager
def _secondary_clash(mode: str, key: Sequence[str], rows: Sequence[Sequence[Any]] | None,
                     columns: Sequence[str]) -> Iterator[None]:
    """Re-raise the guard's NULL-key error (see _guarded) as the duplicate entry it is."""
    try:
        yield
    except Exception as error:
        orig = getattr(error, "orig", None) or error
        args = tuple(getattr(orig, "args", ()))
        if (mode not in ("skip", "replace") or not key or len(args) < 2 or args[0] != 1048
                or f"'{key[0]}'" not in str(args[1])):
            raise
        if rows is not None and key[0] in columns:  # a NULL given for the key itself is a
            position = list(columns).index(key[0])  # real missing value, not a clash
            if any(row[position] is None for row in rows):
                raise
        raise pymysql.err.IntegrityError(
            1062, "Duplicate entry on a unique index other than the primary key: a new row's "
            "unique value belongs to a row with another primary key") from error


def _filename(name: str) -> str:
    """A database or table name as InnoDB's dictionary spells it (MySQL's file-name
    encoding: characters outside [A-Za-z0-9_] as @ and four hex digits, e.g. # -> @0023)."""
    return "".join(c if c.isascii() and (c.isalnum() or c == "_") else f"@{ord(c):04x}"
                   for c in name)
