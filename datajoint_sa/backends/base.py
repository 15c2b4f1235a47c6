"""What differs between database backends and SQLAlchemy does not hide.

A backend is a leaf: it knows SQLAlchemy and its driver, nothing else of ours. The neutral
behaviour lives here; `sqlite.py`, `postgresql.py` and `mysql.py` override only what differs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection as SAConnection

from ..errors import (
    AccessError,
    DataJointError,
    DuplicateError,
    IntegrityError,
    LostConnectionError,
    MissingAttributeError,
)


class Backend:
    """Neutral behaviour; subclasses override per dialect."""

    name: ClassVar[str] = "generic"
    sqlglot_dialect: ClassVar[str] = ""
    #: whether column and table comments are stored natively (else in a hidden table)
    native_comments: ClassVar[bool] = True
    #: skip_duplicates needs existing keys filtered out first (no conflict target in SQL)
    skip_needs_prefilter: ClassVar[bool] = False
    #: the largest identifier the backend accepts
    max_identifier_length: ClassVar[int] = 64

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

    def list_schemas(self, conn: SAConnection) -> list[str]:
        return sorted(sa.inspect(conn).get_schema_names())

    def schema_exists(self, conn: SAConnection, schema: str) -> bool:
        return schema in self.list_schemas(conn)

    def list_tables(self, conn: SAConnection, schema: str) -> list[str]:
        return sorted(sa.inspect(conn).get_table_names(schema=schema))

    # ---- comments -----------------------------------------------------------------------
    def after_create(self, conn: SAConnection, table: sa.Table) -> None:
        """Record what the DDL could not (comments on backends without them)."""

    def before_drop(self, conn: SAConnection, table: sa.Table) -> None:
        """Forget what after_create recorded."""

    def read_comments(
        self, conn: SAConnection, schema: str, table: str
    ) -> tuple[str, dict[str, str]] | None:
        """(table comment, {column: comment}) where comments are not native, else None."""
        return None

    # ---- types --------------------------------------------------------------------------
    def type_variant(self, category: str, args: Sequence[Any]) -> sa.types.TypeEngine[Any] | None:
        """This backend's own column type for a DataJoint type category, where it has one."""
        return None

    def needs_check(self, category: str) -> bool:
        """Whether values of a type category need a CHECK constraint to keep them in range
        (integer ranges, enum values, string lengths) because the column type does not."""
        return category not in ("varchar", "char")

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
        """Bulk insert; mode is "insert", "skip" (skip rows whose primary key exists) or
        "replace" (upsert on the primary key)."""
        if not rows:
            return
        stmt = self.insert_statement(table, columns, mode=mode, key=key)
        conn.execute(stmt, [dict(zip(columns, row)) for row in rows])

    def insert_statement(
        self, table: sa.Table, columns: Sequence[str], *, mode: str, key: Sequence[str]
    ) -> sa.Insert:
        raise NotImplementedError

    # ---- errors -------------------------------------------------------------------------
    def classify_error(self, error: BaseException, table: str = "") -> DataJointError | None:
        """A DataJointError subclass for a driver error, or None when it is not ours to name."""
        kind = self.error_kind(getattr(error, "orig", error))
        where = f" in {table}" if table else ""
        message = str(getattr(error, "orig", error)).strip()
        if kind is None:
            return None
        cls = {
            "duplicate": DuplicateError,
            "foreign_key": IntegrityError,
            "not_null": MissingAttributeError,
            "check": DataJointError,
            "access": AccessError,
            "lost": LostConnectionError,
            "data": DataJointError,
        }[kind]
        prefix = {
            "duplicate": "Duplicate entry",
            "foreign_key": "Foreign key violation",
            "not_null": "Missing value",
            "check": "Value out of range or not allowed",
            "access": "Access denied",
            "lost": "Lost connection",
            "data": "Invalid value",
        }[kind]
        return cls(f"{prefix}{where}: {message}")

    def error_kind(self, orig: BaseException) -> str | None:
        return None


def chunked(rows: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]
