"""Renaming a table, registered on `alembic.op` as `op.dj_rename_table(schema, old, new)`.

A table's name is its class name with its tier's prefix (`#` lookup, `_` imported, `__`
computed, none manual) and its parts are `master__part`, so renaming a class and changing
its tier are both a rename. The names are DataJoint's (`"lab", "#subject", "animal"`), the
same on every backend. One operation renames the table and its parts and takes along:

- foreign keys: the database re-points the dependents' foreign keys itself (PostgreSQL and
  MySQL refer to the table, SQLite >= 3.26 rewrites the references when renaming);
- the names derived from the table name (`pk_`, `ix_`, `uq_`, `ck_`, `fk_` of the naming
  convention), renamed in place where the backend can (`Backend.rename_constraint`), else
  re-created (indexes; value checks, by a table copy on SQLite); a foreign key or primary
  key that cannot be renamed keeps its old name (neither is compared by name);
- the stored comments where the backend has none (SQLite's `~comments` rows);
- the `~lineage` rows (the table's rows and every origin `schema.old.attribute`) and the
  job rows of `~jobs`.

Its reverse renames back, so `alembic downgrade` restores the old names with the same care.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import renderers
from alembic.operations import MigrateOperation, Operations
from sqlalchemy.engine import Connection as SAConnection

from .. import lineage
from ..backends import Backend, get_backend
from ..errors import DataJointError
from ..jobs import JOBS_TABLE

#: prefixes of the naming convention (declare.NAMING_CONVENTION) that hold the table name
CONVENTION_PREFIXES = ("pk_", "ix_", "uq_", "ck_", "fk_")
PART_SEPARATOR = "__"


@Operations.register_operation("dj_rename_table")
class RenameTableOp(MigrateOperation):
    """Rename table `old` of DataJoint schema `schema` (and its parts) to `new`."""

    def __init__(self, schema: str, old: str, new: str) -> None:
        self.schema, self.old, self.new = schema, old, new

    @classmethod
    def dj_rename_table(cls, operations: Operations, schema: str, old: str, new: str) -> Any:
        """Rename a table and its parts, with what follows their names (see the module)."""
        return operations.invoke(cls(schema, old, new))

    def reverse(self) -> RenameTableOp:
        return RenameTableOp(self.schema, self.new, self.old)

    def to_diff_tuple(self) -> Any:
        return ("dj_rename_table", self.schema, self.old, self.new)


@renderers.dispatch_for(RenameTableOp)
def _render(autogen_context: Any, op: RenameTableOp) -> str:
    return f"op.dj_rename_table({op.schema!r}, {op.old!r}, {op.new!r})"


def parts_of(conn: SAConnection, backend: Backend, schema: str, master: str) -> list[str]:
    """The part tables of `master` in the database (`master__part`)."""
    head = master + PART_SEPARATOR
    return [t for t in backend.list_tables(conn, schema)
            if t.startswith(head) and PART_SEPARATOR not in t[len(head):]]


@Operations.implementation_for(RenameTableOp)
def _rename_table(operations: Operations, op: RenameTableOp) -> None:
    context = operations.migration_context
    if context.as_sql:
        raise DataJointError(f"Renaming {op.schema}.{op.old} reads the database; it cannot "
                             "run in offline (--sql) mode")
    conn = operations.get_bind()
    backend = get_backend(conn.dialect.name)
    inspector = sa.inspect(conn)
    old_ident = backend.table_identity(op.schema, op.old)
    new_ident = backend.table_identity(op.schema, op.new)
    if not inspector.has_table(old_ident[1], schema=old_ident[0]):
        raise DataJointError(f"Cannot rename {op.schema}.{op.old} to {op.new}: there is no "
                             f"table {op.schema}.{op.old}")
    if inspector.has_table(new_ident[1], schema=new_ident[0]):
        raise DataJointError(f"Cannot rename {op.schema}.{op.old} to {op.new}: table "
                             f"{op.schema}.{op.new} exists")
    tables = [(op.old, op.new)] + [
        (part, op.new + part[len(op.old):]) for part in parts_of(conn, backend, op.schema,
                                                                 op.old)]
    for old, new in tables:
        rename_one(operations, conn, backend, op.schema, old, new)


def rename_one(operations: Operations, conn: SAConnection, backend: Backend, schema: str,
               old: str, new: str) -> None:
    """Rename one table and what follows its name. Where each schema change commits at
    once (MySQL), a failure part-way undoes the parts already done before it propagates
    (elsewhere the migration's transaction is rolled back)."""
    sa_schema, sa_old = backend.table_identity(schema, old)
    _, sa_new = backend.table_identity(schema, new)
    comments = backend.read_comments(conn, schema, old)
    undo: list[Any] = []
    try:
        operations.rename_table(sa_old, sa_new, schema=sa_schema)
        # undone newest first: the table's name back, then the names that follow it
        undo.append(lambda: follow_names(operations, conn, backend, sa_schema, sa_new, sa_old))
        undo.append(lambda: operations.rename_table(sa_new, sa_old, schema=sa_schema))
        follow_names(operations, conn, backend, sa_schema, sa_old, sa_new)
        if comments is not None:
            text, columns = comments
            backend.before_drop(conn, sa.Table(sa_old, sa.MetaData(), schema=sa_schema))
            backend.after_create(conn, sa.Table(
                sa_new, sa.MetaData(),
                *[sa.Column(name, sa.Integer, comment=comment)
                  for name, comment in columns.items()],
                schema=sa_schema, comment=text))
        undo.append(lambda: lineage.rename(conn, backend, schema, new, old))
        lineage.rename(conn, backend, schema, old, new)
        undo.append(lambda: rename_jobs(conn, backend, schema, new, old))
        rename_jobs(conn, backend, schema, old, new)
    except Exception:
        if not backend.transactional_ddl:
            for step in reversed(undo):
                try:
                    step()
                except Exception:  # noqa: S112  (best effort: the first error is the one)
                    continue
        raise


def renamed(name: str | None, old: str, new: str) -> str | None:
    """The conventional name of a constraint of table `old` once it is called `new`."""
    if not name:
        return None
    for prefix in CONVENTION_PREFIXES:
        head = prefix + old
        if name == head or name.startswith(head + "_"):
            return prefix + new + name[len(head):]
    return None


def follow_names(operations: Operations, conn: SAConnection, backend: Backend,
                 sa_schema: str | None, old: str, new: str) -> None:
    """Give the renamed table's constraints and indexes the names of the new table."""
    inspector = sa.inspect(conn)
    found: list[tuple[str, str | None, dict[str, Any]]] = []
    pk = inspector.get_pk_constraint(new, schema=sa_schema)
    if pk.get("name"):
        found.append(("primary", pk["name"], dict(pk)))
    found += [("foreignkey", fk["name"], dict(fk))
              for fk in inspector.get_foreign_keys(new, schema=sa_schema) if fk.get("name")]
    try:
        found += [("check", ck["name"], dict(ck))
                  for ck in inspector.get_check_constraints(new, schema=sa_schema)]
    except NotImplementedError:
        pass
    found += [("unique", uq["name"], dict(uq))
              for uq in inspector.get_unique_constraints(new, schema=sa_schema)]
    found += [("index", ix["name"], dict(ix))
              for ix in inspector.get_indexes(new, schema=sa_schema)
              if not ix.get("duplicates_constraint")]
    limit = conn.dialect.max_identifier_length
    done: set[str] = set()
    copied: list[tuple[str, str, str, dict[str, Any]]] = []  # re-created by a table copy
    for kind, name, info in found:
        target = renamed(name, old, new)
        if name is None or target is None or name in done or len(target) > limit:
            continue
        done.add(name)
        if backend.rename_constraint(conn, sa_schema, new, kind, name, target):
            continue
        if kind == "index":
            operations.drop_index(name, table_name=new, schema=sa_schema)
            operations.create_index(target, new, list(info["column_names"]),
                                    unique=bool(info.get("unique")), schema=sa_schema)
        elif kind in ("check", "unique") or (kind == "primary" and backend.alters_by_copy):
            copied.append((kind, name, target, info))
    if not copied:
        return
    if backend.alters_by_copy:
        with operations.batch_alter_table(new, schema=sa_schema, recreate="always") as batch:
            for kind, name, target, info in copied:
                recreate(batch, kind, name, target, info)
    else:
        for kind, name, target, info in copied:
            operations.drop_constraint(name, new, type_=kind, schema=sa_schema)
            if kind == "check":
                operations.create_check_constraint(target, new, sa.text(info["sqltext"]),
                                                   schema=sa_schema)
            else:
                operations.create_unique_constraint(target, new, list(info["column_names"]),
                                                    schema=sa_schema)


def recreate(batch: Any, kind: str, name: str, target: str, info: dict[str, Any]) -> None:
    """Drop and add one constraint inside a table copy."""
    batch.drop_constraint(name, type_=kind)
    if kind == "primary":
        batch.create_primary_key(target, list(info["constrained_columns"]))
    elif kind == "check":
        batch.create_check_constraint(target, sa.text(info["sqltext"]))
    else:
        batch.create_unique_constraint(target, list(info["column_names"]))


def rename_jobs(conn: SAConnection, backend: Backend, schema: str, old: str, new: str) -> None:
    """Job rows of the renamed table (reservations, errors) carry its new name."""
    sa_schema, sa_name = backend.table_identity(schema, JOBS_TABLE)
    if not sa.inspect(conn).has_table(sa_name, schema=sa_schema):
        return
    jobs = sa.table(sa_name, sa.column("table_name"), schema=sa_schema)
    conn.execute(sa.update(jobs).where(jobs.c.table_name == old).values(table_name=new))
