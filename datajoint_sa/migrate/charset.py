"""Converting a schema's character set in place (MySQL): `op.dj_convert_charset`.

Lab databases of the DataJoint 0.14 era are latin1; this package writes utf8mb4. The
operation checks first that every value converts losslessly, that no index outgrows InnoDB's
limit and that no unique key gets duplicates (the backend names the table, column, key and
row of the first problem), and only then converts every table, its text columns and the
database default (`Backend.charset_problem`, `Backend.convert_charset`). In a revision:

    op.dj_convert_charset("lab", "utf8mb4", previous="latin1")

`previous` (and `previous_collation`) is what the downgrade converts back to, with the same
checks (a value without a latin1 counterpart refuses it). `convert_charset(schema, ...)`
runs the same operation directly.
"""

from __future__ import annotations

from typing import Any

from alembic.autogenerate import renderers
from alembic.operations import MigrateOperation, Operations
from alembic.runtime.migration import MigrationContext

from ..backends import get_backend
from ..connection import Connection
from ..errors import DataJointError
from ..schema import Schema


class CharsetRefused(DataJointError):
    """A character-set conversion would lose or refuse data; nothing was changed."""


@Operations.register_operation("dj_convert_charset")
class ConvertCharsetOp(MigrateOperation):
    """Convert schema `schema` (tables, text columns, default) to `charset`."""

    def __init__(self, schema: str, charset: str, *, collation: str | None = None,
                 previous: str | None = None, previous_collation: str | None = None) -> None:
        self.schema, self.charset, self.collation = schema, charset, collation
        self.previous, self.previous_collation = previous, previous_collation

    @classmethod
    def dj_convert_charset(cls, operations: Operations, schema: str, charset: str, *,
                           collation: str | None = None, previous: str | None = None,
                           previous_collation: str | None = None) -> Any:
        """Check, then convert a schema's character set in place (see the module)."""
        return operations.invoke(cls(schema, charset, collation=collation, previous=previous,
                                     previous_collation=previous_collation))

    def reverse(self) -> ConvertCharsetOp:
        if not self.previous:
            raise DataJointError(f"Converting {self.schema} to {self.charset} cannot be undone "
                                 "without previous=... (the character set to go back to)")
        return ConvertCharsetOp(self.schema, self.previous, collation=self.previous_collation,
                                previous=self.charset, previous_collation=self.collation)

    def to_diff_tuple(self) -> Any:
        return ("dj_convert_charset", self.schema, self.charset, self.collation)


@Operations.implementation_for(ConvertCharsetOp)
def _convert(operations: Operations, op: ConvertCharsetOp) -> None:
    if operations.migration_context.as_sql:
        raise DataJointError(f"Converting {op.schema} checks its data first; it cannot run in "
                             "offline (--sql) mode")
    conn = operations.get_bind()
    backend = get_backend(conn.dialect.name)
    why = backend.charset_problem(conn, op.schema, op.charset, op.collation)
    if why:
        raise CharsetRefused(f"Cannot convert schema {op.schema} to {op.charset}: {why}. "
                             "Nothing was changed.")
    backend.convert_charset(conn, op.schema, op.charset, op.collation)


@renderers.dispatch_for(ConvertCharsetOp)
def _render(autogen_context: Any, op: ConvertCharsetOp) -> str:
    options = "".join(f", {name}={getattr(op, name)!r}"
                      for name in ("collation", "previous", "previous_collation")
                      if getattr(op, name))
    return f"op.dj_convert_charset({op.schema!r}, {op.charset!r}{options})"


def convert_charset(schema: Schema | str, charset: str = "utf8mb4", *,
                    collation: str | None = None, connection: Connection | None = None
                    ) -> tuple[str, str] | None:
    """Convert a schema's character set in place now (MySQL), after the checks; returns
    the (character set, collation) it had, for the way back."""
    if isinstance(schema, Schema):
        connection = connection or schema.connection
        name = schema.database
    else:
        name = schema
    if connection is None:
        raise DataJointError("convert_charset needs a connection (or an activated Schema)")
    with connection.session(write=True) as sa_conn:
        before = connection.backend_impl.charsets(sa_conn, name)
        Operations(MigrationContext.configure(sa_conn)).invoke(
            ConvertCharsetOp(name, charset, collation=collation))
    return before
