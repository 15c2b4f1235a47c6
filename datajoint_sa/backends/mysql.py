"""MySQL / MariaDB through PyMySQL: schemas are databases; strict mode, utf8mb4, unsigned types."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.dialects.mysql import insert as mysql_insert
from sqlalchemy.engine import Connection as SAConnection

from .base import Backend, existing_keys, insert_many, without_existing_keys

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
    2006: "lost",
    2013: "lost",
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
        conn.execute(
            sa.text(
                f"CREATE DATABASE IF NOT EXISTS {conn.dialect.identifier_preparer.quote(schema)} "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )
        )

    def drop_schema(self, conn: SAConnection, schema: str) -> None:
        conn.execute(
            sa.text(f"DROP DATABASE IF EXISTS {conn.dialect.identifier_preparer.quote(schema)}")
        )

    def temporary_schema(self, near: str | None) -> str | None:
        return near  # a URL need not name a database, so name one

    def drop_temporary(self, conn: SAConnection, table: sa.TableClause) -> None:
        # plain DROP TABLE would commit the open transaction; DROP TEMPORARY does not
        name = conn.dialect.identifier_preparer.format_table(table)
        conn.execute(sa.text(f"DROP TEMPORARY TABLE {name}"))

    def list_schemas(self, conn: SAConnection) -> list[str]:
        system = {"information_schema", "mysql", "performance_schema", "sys"}
        return sorted(n for n in sa.inspect(conn).get_schema_names() if n not in system)

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
        # PyMySQL folds executemany of one INSERT into multi-row INSERTs of up to 1 MB each.
        # ON DUPLICATE KEY fires on any unique index, so upserts go only to rows whose
        # primary key exists; new rows take a plain INSERT that raises on a unique index.
        if mode == "skip":
            rows = without_existing_keys(conn, table, columns, rows, key)
            mode = "insert"
        elif mode == "replace":
            keys_of, existing = existing_keys(conn, table, columns, rows, key)
            present = [row for row in rows if keys_of(row) in existing]
            if present:
                insert_many(conn, self, table, columns, present, mode="replace", key=key)
            rows = [row for row in rows if keys_of(row) not in existing]
            mode = "insert"
        if rows:
            insert_many(conn, self, table, columns, rows, mode=mode, key=key)

    def insert_select(
        self, conn: SAConnection, table: sa.Table, columns: Sequence[str],
        select: sa.Select[Any], *, mode: str, key: Sequence[str]
    ) -> None:
        if mode == "replace":  # the rows whose key exists first, then the new ones
            conn.execute(self._insert_select(table, columns, select, "replace", key,
                                             existing=True))
            mode = "skip"
        conn.execute(self.insert_select_statement(table, columns, select, mode=mode, key=key))

    def insert_select_statement(
        self, table: sa.Table, columns: Sequence[str], select: sa.Select[Any], *, mode: str,
        key: Sequence[str]
    ) -> sa.Insert:
        return self._insert_select(table, columns, select, mode, key,
                                   existing=False if mode == "skip" else None)

    def _insert_select(self, table: sa.Table, columns: Sequence[str], select: sa.Select[Any],
                       mode: str, key: Sequence[str], *, existing: bool | None) -> sa.Insert:
        """INSERT ... SELECT, of only the rows whose key exists (existing=True) or does not
        (existing=False), or of all of them."""
        source = select.subquery()
        body = sa.select(*(source.c[c] for c in columns))
        if existing is not None:
            stored = table.alias("dj_existing")
            match = sa.exists().where(*(stored.c[k] == source.c[k] for k in key))
            body = body.where(match if existing else ~match)
        return self.insert_statement(table, columns, mode="insert" if mode == "skip" else mode,
                                     key=key).from_select(list(columns), body)

    def insert_statement(
        self, table: sa.Table, columns: Sequence[str], *, mode: str, key: Sequence[str]
    ) -> sa.Insert:
        stmt = mysql_insert(table)
        if mode == "skip":
            # MySQL has no conflict target: ON DUPLICATE KEY and INSERT IGNORE would also
            # swallow secondary unique violations, so rows with existing keys are filtered
            # out first (insert_rows, insert_select_statement) and the insert stays plain.
            return stmt
        if mode == "replace":
            update = {c: stmt.inserted[c] for c in columns if c not in key} or {
                key[0]: stmt.inserted[key[0]]
            }
            return stmt.on_duplicate_key_update(update)
        return stmt

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
