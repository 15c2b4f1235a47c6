"""Plan a migration on a live connection, and apply a plan through Alembic's operations.

The same comparison serves `alembic revision --autogenerate` (through env.py) and the
programmatic `T.alter()` / `schema.migrate()`: `produce` asks Alembic (with the datajoint_sa
plugin) for the operations, `apply` runs them through `alembic.operations.Operations`.

SQLite changes most tables by copying them (batch mode). Foreign keys are enforced on every
connection, and a table copy would trip them (dropping a parent that rows still reference),
so during a migration they are switched off, checked for the whole database before the
commit (`PRAGMA foreign_key_check`), and switched back on: the documented procedure for
schema changes on SQLite.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from alembic.autogenerate import produce_migrations
from alembic.operations import Operations, ops
from alembic.runtime.migration import MigrationContext
from sqlalchemy.engine import Connection as SAConnection

from ..connection import Connection
from ..errors import DataJointError, IntegrityError
from .scope import Scope


def produce(connection: Connection, scope: Scope) -> ops.UpgradeOps:
    """The operations that bring the database to the scope's declared metadata."""
    with connection.session(write=False) as sa_conn:
        scope.default_schema = sa_conn.dialect.default_schema_name
        context = MigrationContext.configure(
            sa_conn, opts={**scope.options(), "target_metadata": scope.metadata})
        script = produce_migrations(context, scope.metadata)  # type: ignore[arg-type]
    upgrade = script.upgrade_ops
    assert upgrade is not None
    return upgrade


def _plain_defaults(op: Any) -> Any:
    """Server defaults as Alembic's operations take them (an expression, not a clause)."""
    if isinstance(op, ops.AlterColumnOp):
        for name in ("modify_server_default", "existing_server_default"):
            value = getattr(op, name)
            if isinstance(value, sa.DefaultClause):
                setattr(op, name, value.arg)
    return op


def invoke(operations: Operations, op: Any, batch: bool) -> None:
    """Run one planned operation (a table's group of changes in batch mode on SQLite)."""
    op = _plain_defaults(op)
    if isinstance(op, ops.ModifyTableOps):
        for sub in op.ops:
            _plain_defaults(sub)
        if batch:
            with operations.batch_alter_table(op.table_name, schema=op.schema) as batch_op:
                for sub in op.ops:
                    batch_op.invoke(sub)
        else:
            for sub in op.ops:
                operations.invoke(sub)
    else:
        operations.invoke(op)


def apply(connection: Connection, scope: Scope, upgrade_ops: ops.UpgradeOps) -> None:
    """Apply planned operations in one transaction; where the backend commits each schema
    change at once (MySQL), a failing step first undoes the steps already applied."""
    if connection.in_transaction:
        raise DataJointError("Tables cannot be altered inside a transaction")
    with relaxed_foreign_keys(scope, connection.sa):
        with connection.session(write=True) as sa_conn:
            context = MigrationContext.configure(sa_conn, opts=scope.options())
            operations = Operations(context)
            try:
                with warnings.catch_warnings():
                    # Alembic notes that autoincrement flags only matter to MySQL
                    warnings.filterwarnings("ignore", message="autoincrement and existing")
                    if scope.backend.transactional_ddl:
                        for op in upgrade_ops.ops:
                            invoke(operations, op, scope.batch)
                    else:
                        apply_undoable(operations, upgrade_ops)
            except MigrationFailed:
                raise
            except Exception as error:
                classified = connection.classify(error)
                if classified is not error:
                    raise classified from error
                raise
            check_foreign_keys(scope, sa_conn)


class MigrationFailed(DataJointError):
    """A step of a migration failed on a backend without transactional DDL; the message
    says which steps were undone and what state the tables are in."""


def run_step(operations: Operations, op: Any) -> None:
    """One operation of a migration (a seam: tests make a chosen step fail here)."""
    operations.invoke(_plain_defaults(op))


def apply_undoable(operations: Operations, upgrade_ops: ops.UpgradeOps) -> None:
    """Apply the steps one at a time; if one fails, undo the applied ones in reverse order
    (each schema change committed at once, so there is no transaction to roll back)."""
    from .review import steps

    plan = steps(upgrade_ops)
    applied: list[Any] = []
    for number, step in enumerate(plan, start=1):
        try:
            run_step(operations, step.op)
        except Exception as error:
            raise MigrationFailed(_failure(operations, plan, number, applied, error)) \
                from error
        applied.append(step)


def _failure(operations: Operations, plan: list[Any], number: int, applied: list[Any],
             error: BaseException) -> str:
    """Undo `applied` (newest first) and say what state the tables are left in."""
    orig = getattr(error, "orig", None) or error
    head = (f"The migration failed at step {number} of {len(plan)} "
            f"({_label(plan[number - 1])}): {' '.join(str(orig).split())}.")
    if not applied:
        return f"{head} Nothing had been changed; the tables are as before."
    stuck: list[str] = []
    for step in reversed(applied):
        try:
            run_step(operations, step.op.reverse())
        except Exception as undo_error:
            reason = getattr(undo_error, "orig", None) or undo_error
            stuck.append(f"{_label(step)} ({' '.join(str(reason).split())})")
    if not stuck:
        return (f"{head} The backend commits each schema change at once; the "
                f"{len(applied)} step(s) already applied were undone, so the tables are as "
                "before (values of dropped or converted columns may not come back exactly).")
    return (f"{head} The backend commits each schema change at once and these applied "
            f"steps could not be undone, so they are in effect now: {'; '.join(stuck)}. "
            "Run the migration again after fixing the cause to complete it.")


def _label(step: Any) -> str:
    op = step.op
    what = type(op).__name__.removesuffix("Op")
    column = getattr(op, "column", None)
    detail = (getattr(op, "column_name", None) or getattr(column, "name", None)
              or getattr(op, "index_name", None)
              or getattr(op, "constraint_name", None) or "")
    return f"{what} {step.table}{'.' + str(detail) if detail else ''}"


@contextmanager
def relaxed_foreign_keys(scope: Scope, sa_conn: SAConnection) -> Iterator[None]:
    """On batch backends (SQLite), foreign keys are not enforced per statement while the
    tables are copied; `check_foreign_keys` checks them all before the commit."""
    if not scope.batch:
        yield
        return
    if sa_conn.in_transaction():
        raise DataJointError("Tables cannot be altered inside a transaction")
    driver = sa_conn.connection.driver_connection
    assert driver is not None
    driver.execute("PRAGMA foreign_keys=OFF")
    try:
        yield
    finally:
        if sa_conn.in_transaction():
            sa_conn.rollback()
        driver.execute("PRAGMA foreign_keys=ON")


def check_foreign_keys(scope: Scope, sa_conn: SAConnection) -> None:
    """Refuse (roll back) a migration that leaves rows without their parent (SQLite)."""
    if not scope.batch:
        return
    violations = sa_conn.exec_driver_sql("PRAGMA foreign_key_check").all()
    if violations:
        table, rowid, parent = violations[0][0], violations[0][1], violations[0][2]
        raise IntegrityError(
            f"The migration leaves {len(violations)} row(s) without their parent, e.g. row "
            f"{rowid} of {table} (parent table {parent}); nothing was changed")
