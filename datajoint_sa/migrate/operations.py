"""Operations Alembic lacks, registered on `alembic.op` when datajoint_sa.migrate is imported.

- `RenameColumnOp`: `alter_column(new_column_name=...)` whose reverse renames back
  (Alembic's own AlterColumnOp forgets the name when reversed).
- `op.dj_set_comments(table, comments, previous=..., schema=...)`: where a backend has no
  column comments (SQLite), the stored definition lives in the schema's hidden comments
  table; this keeps it in step with the migrated table.
- `op.dj_fill_from_parent(table, parent, columns, on, ...)`: fills new foreign-key columns
  of existing rows from their parent row, through the foreign key they already had (a
  parent whose primary key grows passes the new key attribute down to its dependents).
- Foreign keys to tables whose names hold a dot (SQLite's "schema.table"): Alembic spells
  a referenced column as the string "table.column", which a dotted table name makes
  ambiguous; `referent()` and the `create_foreign_key` implementation below name the
  referenced columns as Column objects instead.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import renderers
from alembic.operations import MigrateOperation, Operations, ops
from sqlalchemy.types import NULLTYPE

from ..backends import get_backend
from ..errors import DataJointError


def referent(table: str, columns: list[str], schema: str | None = None) -> list[Any]:
    """Columns of a referenced table, for `sa.ForeignKeyConstraint(cols, referent(...))`
    in migration scripts (unambiguous where the table name holds a dot)."""
    stub = sa.Table(table, sa.MetaData(), *[sa.Column(c, NULLTYPE) for c in columns],
                    schema=schema)
    return [stub.c[c] for c in columns]


@Operations.implementation_for(ops.CreateForeignKeyOp)
def _create_foreign_key(operations: Operations, operation: ops.CreateForeignKeyOp) -> None:
    if "." not in operation.source_table and "." not in operation.referent_table:
        operations.impl.add_constraint(operation.to_constraint(operations.migration_context))
        return
    kw = dict(operation.kw)
    metadata = sa.MetaData()
    target = sa.Table(operation.referent_table, metadata,
                      *[sa.Column(c, NULLTYPE) for c in operation.remote_cols],
                      schema=kw.pop("referent_schema", None))
    source = sa.Table(operation.source_table, metadata,
                      *[sa.Column(c, NULLTYPE) for c in dict.fromkeys(operation.local_cols)],
                      schema=kw.pop("source_schema", None))
    constraint = sa.ForeignKeyConstraint(
        operation.local_cols, [target.c[c] for c in operation.remote_cols],
        name=operation.constraint_name, **kw)
    source.append_constraint(constraint)
    operations.impl.add_constraint(constraint)


@renderers.dispatch_for(ops.CreatePrimaryKeyOp, replace=True)
def _render_create_primary_key(autogen_context: Any, op: ops.CreatePrimaryKeyOp) -> str:
    """Alembic has no renderer for a new primary key of an existing table."""
    batch = bool(getattr(autogen_context, "_has_batch", False))
    prefix = "batch_op." if batch else (autogen_context.opts.get("alembic_module_prefix")
                                        or "op.")
    name = op.constraint_name
    name_text = (f"{prefix}f({str(name)!r})" if isinstance(name, sa.sql.elements.conv)
                 else repr(name))
    columns = [str(c) for c in op.columns]
    if batch:
        return f"{prefix}create_primary_key({name_text}, {columns!r})"
    schema = f", schema={op.schema!r}" if op.schema else ""
    return f"{prefix}create_primary_key({name_text}, {op.table_name!r}, {columns!r}{schema})"


class RenameColumnOp(ops.AlterColumnOp):
    """Rename a column (possibly changing it as well); reverses to the old name."""

    def has_changes(self) -> bool:
        return bool(self.modify_name) or super().has_changes()

    def to_diff_tuple(self) -> Any:
        rename = ("modify_name", self.schema, self.table_name, self.column_name,
                  self.modify_name)
        return [rename, *super().to_diff_tuple()]

    def reverse(self) -> RenameColumnOp:
        back = super().reverse()
        assert self.modify_name is not None
        reverse = RenameColumnOp(self.table_name, self.modify_name, schema=self.schema,
                                 modify_name=self.column_name)
        reverse.__dict__.update({k: v for k, v in back.__dict__.items()
                                 if k not in ("column_name", "modify_name")})
        return reverse


@Operations.register_operation("dj_set_comments")
class SetCommentsOp(MigrateOperation):
    """Replace the stored comments of a table (key "" is the table comment)."""

    def __init__(self, table_name: str, comments: dict[str, str], *,
                 previous: dict[str, str] | None = None, schema: str | None = None) -> None:
        self.table_name = table_name
        self.comments = dict(comments)
        self.previous = dict(previous or {})
        self.schema = schema

    @classmethod
    def dj_set_comments(cls, operations: Operations, table_name: str,
                        comments: dict[str, str], *, previous: dict[str, str] | None = None,
                        schema: str | None = None) -> Any:
        """Store a table's comments where the backend has none (SQLite); {} forgets them."""
        return operations.invoke(cls(table_name, comments, previous=previous, schema=schema))

    def reverse(self) -> SetCommentsOp:
        return SetCommentsOp(self.table_name, self.previous, previous=self.comments,
                             schema=self.schema)

    def to_diff_tuple(self) -> Any:
        return ("dj_set_comments", self.schema, self.table_name, self.previous, self.comments)


@Operations.implementation_for(SetCommentsOp)
def _set_comments(operations: Operations, operation: SetCommentsOp) -> None:
    context = operations.migration_context
    backend = get_backend(context.dialect.name)
    if backend.native_comments:
        return  # native comments travel with the columns (alter_column comment=...)
    if context.as_sql:
        raise DataJointError("Stored comments cannot be written in offline (--sql) mode")
    conn = operations.get_bind()
    stub = sa.Table(
        operation.table_name, sa.MetaData(),
        *[sa.Column(name, sa.Integer, comment=text)
          for name, text in operation.comments.items() if name],
        schema=operation.schema, comment=operation.comments.get("", ""))
    if operation.comments:
        backend.after_create(conn, stub)
    else:
        backend.before_drop(conn, stub)


@renderers.dispatch_for(SetCommentsOp)
def _render_set_comments(autogen_context: Any, op: SetCommentsOp) -> str:
    schema = f", schema={op.schema!r}" if op.schema else ""
    return (f"op.dj_set_comments({op.table_name!r}, {op.comments!r}, "
            f"previous={op.previous!r}{schema})")


@Operations.register_operation("dj_fill_from_parent")
class FillFromParentOp(MigrateOperation):
    """UPDATE table SET column = (parent's value) through the existing foreign key `on`."""

    def __init__(self, table_name: str, parent_name: str, columns: dict[str, str],
                 on: dict[str, str], *, schema: str | None = None,
                 parent_schema: str | None = None) -> None:
        self.table_name = table_name
        self.parent_name = parent_name
        self.columns = dict(columns)  # child column -> parent column, to fill
        self.on = dict(on)  # child column -> parent column, to match rows
        self.schema = schema
        self.parent_schema = parent_schema

    @classmethod
    def dj_fill_from_parent(cls, operations: Operations, table_name: str, parent_name: str,
                            columns: dict[str, str], on: dict[str, str], *,
                            schema: str | None = None, parent_schema: str | None = None
                            ) -> Any:
        """Fill `columns` of every row from the parent row that matches on `on`."""
        return operations.invoke(cls(table_name, parent_name, columns, on, schema=schema,
                                     parent_schema=parent_schema))

    def reverse(self) -> MigrateOperation:
        return NothingOp(f"{self.table_name}: filled columns are dropped with the columns")

    def to_diff_tuple(self) -> Any:
        return ("dj_fill_from_parent", self.schema, self.table_name, self.parent_name,
                self.columns, self.on)


@Operations.implementation_for(FillFromParentOp)
def _fill_from_parent(operations: Operations, operation: FillFromParentOp) -> None:
    child = sa.table(operation.table_name,
                     *[sa.column(c) for c in {*operation.columns, *operation.on}],
                     schema=operation.schema)
    parent = sa.table(operation.parent_name,
                      *[sa.column(c) for c in {*operation.columns.values(),
                                               *operation.on.values()}],
                      schema=operation.parent_schema)
    match = [parent.c[p] == child.c[c] for c, p in operation.on.items()]
    values = {c: sa.select(parent.c[p]).where(*match).scalar_subquery()
              for c, p in operation.columns.items()}
    operations.execute(sa.update(child).values(values))


@renderers.dispatch_for(FillFromParentOp)
def _render_fill(autogen_context: Any, op: FillFromParentOp) -> str:
    extra = ""
    if op.schema:
        extra += f", schema={op.schema!r}"
    if op.parent_schema:
        extra += f", parent_schema={op.parent_schema!r}"
    return (f"op.dj_fill_from_parent({op.table_name!r}, {op.parent_name!r}, "
            f"{op.columns!r}, on={op.on!r}{extra})")


class NothingOp(MigrateOperation):
    """A step with nothing to do (the reverse of a fill); rendered as a comment."""

    def __init__(self, note: str) -> None:
        self.note = note

    def reverse(self) -> NothingOp:
        return self

    def to_diff_tuple(self) -> Any:
        return ()


@Operations.implementation_for(NothingOp)
def _nothing(operations: Operations, operation: NothingOp) -> None:
    return None


@renderers.dispatch_for(NothingOp)
def _render_nothing(autogen_context: Any, op: NothingOp) -> str:
    return f"# {op.note}"
