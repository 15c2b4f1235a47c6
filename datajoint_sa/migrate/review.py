"""A plan in words, and the changes that would lose data.

`Review.describe` says what each operation does ("change the type of lab.subject.weight from
float32 to float64"); `Review.risks` inspects the data and names the operations that would
lose it (dropping a table or a column that holds values, narrowing a type, NOT NULL over
NULLs, changing the primary key of a table that others depend on) or that the data does not
allow (duplicates under a new key or unique index, rows without a parent).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from alembic.operations import MigrateOperation, ops
from sqlalchemy.engine import Connection as SAConnection

from ..types import TypeInfo
from .operations import FillFromParentOp, NothingOp, RenameColumnOp, SetCommentsOp
from .rename import RenameTableOp
from .scope import Scope, declared_type, normalize_default, type_info, user_comment


@dataclass
class Step:
    """One operation, with the table it changes."""

    op: MigrateOperation
    schema: str | None
    table: str


@dataclass
class Risk:
    """A change the data does not allow, or one that would lose data."""

    text: str
    #: "loss" (values would be lost), "dependents" (a key others depend on changes),
    #: "data" (the data does not fit: duplicates, orphans, missing values)
    kind: str = "loss"


def steps(upgrade_ops: ops.OpContainer) -> list[Step]:
    """The operations of a plan, flattened, each with its table."""
    found: list[Step] = []
    for op in upgrade_ops.ops:
        if isinstance(op, ops.ModifyTableOps):
            found += [Step(sub, op.schema, op.table_name) for sub in op.ops]
        else:
            found.append(Step(op, getattr(op, "schema", None),
                              getattr(op, "table_name", "") or getattr(op, "source_table", "")))
    return found


def _names(columns: Any) -> str:
    return ", ".join(str(getattr(c, "name", c)) for c in columns)


class Review:
    def __init__(self, scope: Scope, conn: SAConnection) -> None:
        self.scope, self.conn = scope, conn
        self._metadata = {scope.key(t.schema, t.name): t for t in scope.metadata_tables}
        self._renamed: dict[tuple[str | None, str, str], str] = {}  # (schema, table, new)->old

    def learn(self, plan_steps: list[Step]) -> None:
        """Note the renames of a plan, so that later steps find their stored comments."""
        for step in plan_steps:
            if isinstance(step.op, RenameColumnOp) and step.op.modify_name:
                self._renamed[(step.schema, step.table, step.op.modify_name)] = \
                    step.op.column_name

    def node(self, schema: str | None, table: str) -> str:
        return self.scope.node(schema, table)

    # ---- declared types, before and after -----------------------------------------------
    def new_comment(self, schema: str | None, table: str, column: str) -> str | None:
        found = self._metadata.get(self.scope.key(schema, table))
        if found is None or column not in found.c:
            return None
        return found.c[column].comment

    def old_comment(self, schema: str | None, table: str, column: str) -> str | None:
        column = self._renamed.get((schema, table, column), column)
        return self.scope.stored_comments(self.conn, schema, table)[1].get(column)

    # ---- words --------------------------------------------------------------------------
    def describe(self, step: Step) -> list[str]:
        op, node = step.op, self.node(step.schema, step.table)
        if isinstance(op, ops.CreateTableOp):
            return [f"create table {node}"]
        if isinstance(op, ops.DropTableOp):
            return [f"drop table {node}"]
        if isinstance(op, ops.AddColumnOp):
            column = op.column
            shown = declared_type(column.comment) or str(column.type)
            extra = " (nullable)" if column.nullable else ""
            return [f"add attribute {node}.{column.name} : {shown}{extra}"]
        if isinstance(op, ops.DropColumnOp):
            return [f"drop attribute {node}.{op.column_name}"]
        if isinstance(op, ops.AlterColumnOp):
            return self.describe_alter(step, op, node)
        if isinstance(op, ops.CreateIndexOp):
            unique = "unique " if op.unique else ""
            return [f"add {unique}index ({_names(op.columns)}) on {node}"]
        if isinstance(op, ops.DropIndexOp):
            reverse = op._reverse
            columns = f" ({_names(reverse.columns)})" if reverse is not None else ""
            return [f"drop index {op.index_name}{columns} of {node}"]
        if isinstance(op, ops.CreateForeignKeyOp):
            parent = self.node(op.kw.get("referent_schema"), op.referent_table)
            return [f"add foreign key {node} ({', '.join(op.local_cols)}) -> {parent}"]
        if isinstance(op, ops.CreatePrimaryKeyOp):
            return [f"make ({', '.join(op.columns)}) the primary key of {node}"]
        if isinstance(op, ops.CreateUniqueConstraintOp):
            return [f"add unique constraint ({', '.join(op.columns)}) on {node}"]
        if isinstance(op, ops.CreateCheckConstraintOp):
            return [f"add value check {op.constraint_name} on {node}"]
        if isinstance(op, ops.DropConstraintOp):
            kind = {"foreignkey": "foreign key", "primary": "the primary key",
                    "unique": "unique constraint", "check": "value check"}.get(
                op.constraint_type or "", "constraint")
            if op.constraint_type == "primary":
                return [f"drop the primary key of {node}"]
            return [f"drop {kind} {op.constraint_name} of {node}"]
        if isinstance(op, ops.CreateTableCommentOp):
            return [f"change the comment of table {node} to {op.comment!r}"]
        if isinstance(op, ops.DropTableCommentOp):
            return [f"remove the comment of table {node}"]
        if isinstance(op, SetCommentsOp):
            return [f"update the stored definition of {node}"]
        if isinstance(op, FillFromParentOp):
            parent = self.node(op.parent_schema, op.parent_name)
            return [f"fill {', '.join(op.columns)} of {node} from {parent}"]
        if isinstance(op, NothingOp):
            return []
        if isinstance(op, RenameTableOp):
            return [f"rename table {op.schema}.{op.old} to {op.schema}.{op.new} (with its "
                    "parts, foreign keys, job rows and lineage)"]
        return [f"{type(op).__name__} on {node}"]

    def describe_alter(self, step: Step, op: ops.AlterColumnOp, node: str) -> list[str]:
        name = op.column_name
        texts: list[str] = []
        if isinstance(op, RenameColumnOp):
            texts.append(f"rename attribute {node}.{name} to {op.modify_name}")
            if not ops.AlterColumnOp.has_changes(op):
                return texts  # the other changes follow as their own step (SQLite)
            name = op.modify_name or name
        old = self.old_comment(step.schema, step.table, op.column_name)
        new = self.new_comment(step.schema, step.table, name)
        old_type, new_type = declared_type(old), declared_type(new)
        if old_type and new_type and old_type != new_type:
            texts.append(f"change the type of {node}.{name} from {old_type} to {new_type}")
        elif op.modify_type is not None:
            texts.append(f"change the type of {node}.{name} from {op.existing_type} "
                         f"to {op.modify_type}")
        if op.modify_nullable is True:
            texts.append(f"allow NULL in {node}.{name}")
        elif op.modify_nullable is False:
            texts.append(f"make {node}.{name} NOT NULL")
        if op.modify_server_default is not False:
            texts.append(f"change the default of {node}.{name} from "
                         f"{_default_text(op.existing_server_default)} to "
                         f"{_default_text(op.modify_server_default)}")
        if old is not None and new is not None and user_comment(old) != user_comment(new):
            texts.append(f"change the comment of {node}.{name} to {user_comment(new)!r}")
        return texts or ([f"update the stored definition of {node}.{name}"]
                         if op.modify_comment is not False else [])

    def words(self, plan_steps: list[Step]) -> list[str]:
        self.learn(plan_steps)
        return [text for step in plan_steps for text in self.describe(step)]

    # ---- risks --------------------------------------------------------------------------
    def count(self, schema: str | None, table: str, where: Any = None) -> int:
        stub = sa.table(table, schema=schema)
        query = sa.select(sa.func.count()).select_from(stub)
        if where is not None:
            query = query.where(where)
        return int(self.conn.execute(query).scalar_one())

    def risks(self, plan_steps: list[Step]) -> list[Risk]:
        self.learn(plan_steps)
        found: list[Risk] = []
        for step in plan_steps:
            found += list(self.risks_of(step, plan_steps))
        return found

    def risks_of(self, step: Step, plan_steps: list[Step]) -> Iterator[Risk]:
        op, schema, table = step.op, step.schema, step.table
        node = self.node(schema, table)
        if isinstance(op, ops.DropTableOp):
            n = self.count(schema, table)
            if n:
                yield Risk(f"dropping table {node} loses its {n} row(s)")
        elif isinstance(op, ops.DropColumnOp):
            n = self.count(schema, table, sa.column(op.column_name).is_not(None))
            if n:
                yield Risk(f"dropping {node}.{op.column_name} loses its {n} value(s)")
        elif isinstance(op, ops.AlterColumnOp):
            column: sa.ColumnClause[Any] = sa.column(op.column_name)
            old = type_info(declared_type(self.old_comment(schema, table, op.column_name)))
            new = type_info(declared_type(self.new_comment(
                schema, table, getattr(op, "modify_name", None) or op.column_name)))
            if old is not None and new is not None and op.modify_type is not None:
                why = narrowing(old, new)
                if why:
                    n = self.count(schema, table, misfits(column, old, new))
                    if n:
                        yield Risk(f"changing {node}.{op.column_name} from {old.type} to "
                                   f"{new.type} {why}; {n} value(s) do not fit")
            if op.modify_nullable is False:
                filled = any(isinstance(s.op, FillFromParentOp) and s.table == table
                             and op.column_name in s.op.columns for s in plan_steps)
                n = 0 if filled else self.count(schema, table, column.is_(None))
                if n:
                    yield Risk(f"making {node}.{op.column_name} NOT NULL fails or loses data:"
                               f" it holds {n} NULL(s)")
        elif isinstance(op, ops.AddColumnOp):
            new_column = op.column
            filled = any(isinstance(s.op, FillFromParentOp) and s.table == table
                         and new_column.name in s.op.columns for s in plan_steps)
            if not new_column.nullable and new_column.server_default is None and not filled:
                n = self.count(schema, table)
                if n:
                    yield Risk(f"{node} has {n} row(s) and the new attribute {new_column.name} "
                               "has no default and is not nullable: there is no value to "
                               "give them", "data")
        elif isinstance(op, ops.CreatePrimaryKeyOp):
            yield from self.key_risks(schema, table, list(op.columns), plan_steps)
        elif isinstance(op, ops.CreateIndexOp) and op.unique:
            yield from self.duplicate_risks(schema, table, _names(op.columns).split(", "),
                                            "the unique index", plan_steps)
        elif isinstance(op, ops.CreateUniqueConstraintOp):
            yield from self.duplicate_risks(schema, table, list(op.columns),
                                            "the unique constraint", plan_steps)
        elif isinstance(op, ops.CreateForeignKeyOp):
            yield from self.orphan_risks(op, plan_steps)

    def existing_columns(self, schema: str | None, table: str, columns: list[str],
                         plan_steps: list[Step]) -> list[str] | None:
        """Columns of the planned table as they are named now (None if some are new)."""
        back = {s.op.modify_name: s.op.column_name for s in plan_steps
                if isinstance(s.op, RenameColumnOp) and s.table == table}
        added = {s.op.column.name for s in plan_steps
                 if isinstance(s.op, ops.AddColumnOp) and s.table == table}
        if set(columns) & added:
            return None
        return [back.get(c, c) for c in columns]

    def key_risks(self, schema: str | None, table: str, columns: list[str],
                  plan_steps: list[Step]) -> Iterator[Risk]:
        node = self.node(schema, table)
        dependents = sorted(self.dependents(schema, table))
        if dependents:
            yield Risk(f"changing the primary key of {node} changes the foreign keys of "
                       f"its dependents {', '.join(dependents)}", "dependents")
        yield from self.duplicate_risks(schema, table, columns, "the new primary key",
                                        plan_steps)

    def duplicate_risks(self, schema: str | None, table: str, columns: list[str],
                        what: str, plan_steps: list[Step]) -> Iterator[Risk]:
        current = self.existing_columns(schema, table, columns, plan_steps)
        if current is None or not self.exists(schema, table):
            return
        stub = sa.table(table, *[sa.column(c) for c in current], schema=schema)
        groups = (sa.select(*stub.c).group_by(*stub.c)
                  .having(sa.func.count() > 1).subquery())
        n = int(self.conn.execute(sa.select(sa.func.count()).select_from(groups)).scalar_one())
        if n:
            yield Risk(f"{what} ({', '.join(columns)}) of {self.node(schema, table)} is not "
                       f"unique in the data: {n} value(s) occur more than once", "data")

    def orphan_risks(self, op: ops.CreateForeignKeyOp, plan_steps: list[Step]
                     ) -> Iterator[Risk]:
        schema, table = op.kw.get("source_schema"), op.source_table
        current = self.existing_columns(schema, table, list(op.local_cols), plan_steps)
        if current is None or not self.exists(schema, table):
            return
        parent_schema = op.kw.get("referent_schema")
        parent_current = self.existing_columns(parent_schema, op.referent_table,
                                               list(op.remote_cols), plan_steps)
        if parent_current is None or not self.exists(parent_schema, op.referent_table):
            return
        child = sa.table(table, *[sa.column(c) for c in current], schema=schema)
        parent = sa.table(op.referent_table, *[sa.column(c) for c in parent_current],
                          schema=parent_schema)
        match = sa.select(sa.literal(1)).select_from(parent).where(
            *(parent.c[p] == child.c[c] for c, p in zip(current, parent_current)))
        query = sa.select(sa.func.count()).select_from(child).where(
            *(child.c[c].is_not(None) for c in current), ~match.exists())
        n = int(self.conn.execute(query).scalar_one())
        if n:
            yield Risk(f"{n} row(s) of {self.node(schema, table)} have no matching row in "
                       f"{self.node(parent_schema, op.referent_table)}", "data")

    def exists(self, schema: str | None, table: str) -> bool:
        return sa.inspect(self.conn).has_table(table, schema=schema)

    def dependents(self, schema: str | None, table: str) -> set[str]:
        """Tables (anywhere in the database the pipeline can see) with a foreign key to it."""
        inspector = sa.inspect(self.conn)
        target = self.scope.key(schema, table)
        found: set[str] = set()
        schemas: list[str | None] = [None] if self.scope.prefixed else list(
            self.scope.backend.list_schemas(self.conn))
        for candidate_schema in schemas:
            try:
                names = inspector.get_table_names(schema=candidate_schema)
            except sa.exc.DBAPIError:  # a schema dropped meanwhile by someone else
                continue
            for name in names:
                try:
                    fks = inspector.get_foreign_keys(name, schema=candidate_schema)
                except (sa.exc.DBAPIError, sa.exc.NoSuchTableError):
                    continue
                for fk in fks:
                    referred = self.scope.key(fk.get("referred_schema") or candidate_schema,
                                              fk["referred_table"])
                    if referred == target and (candidate_schema, name) != (schema, table):
                        found.add(self.node(candidate_schema, name))
        return found


def _default_text(default: Any) -> str:
    if default is None or default is False:
        return "none"
    arg = getattr(default, "arg", default)
    text = str(getattr(arg, "text", arg))
    normal = normalize_default(text)
    if normal is None:
        return "none"
    return normal if normal == "CURRENT_TIMESTAMP" or _is_number(normal) else repr(normal)


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


_INTEGER_ORDER = {"int8": 1, "int16": 2, "int24": 3, "int32": 4, "int64": 5}
_DATETIME_CATEGORIES = {"datetime", "timestamp"}


def misfits(column: sa.ColumnClause[Any], old: TypeInfo, new: TypeInfo) -> Any:
    """The rows whose value a narrowing change would lose or alter: exactly those where the
    data says so (out of the new range, too long, trailing spaces into char), else every
    non-NULL value."""
    if old.value_range is not None and new.value_range is not None:
        low, high = new.value_range
        return sa.or_(column < low, column > high)
    if old.category in ("char", "varchar", "text") and new.category in ("char", "varchar"):
        too_long = sa.func.length(column) > new.args[0]
        if new.category == "char" and old.category != "char":
            return sa.or_(too_long, column.like("% "))
        return too_long
    return column.is_not(None)


def narrowing(old: TypeInfo, new: TypeInfo) -> str | None:
    """Why changing old to new may lose or alter values (None when every value fits)."""
    if old.type == new.type:
        return None
    if old.category in ("varchar", "text") and new.category == "char":
        return "shortens the text or drops trailing spaces (char pads with them)"
    if old.value_range is not None and new.value_range is not None:
        (lo, hi), (new_lo, new_hi) = old.value_range, new.value_range
        return None if new_lo <= lo and hi <= new_hi else "narrows the range"
    if old.category in ("char", "varchar") and new.category in ("char", "varchar"):
        return None if new.args[0] >= old.args[0] else "shortens the text"
    if old.category in ("char", "varchar") and new.category == "text":
        return None
    if old.category == "decimal" and new.category == "decimal":
        (p, s), (new_p, new_s) = old.args, new.args
        return None if new_s >= s and new_p - new_s >= p - s else "loses digits"
    if old.category == "float32" and new.category == "float64":
        return None
    if old.value_range is not None and new.category in ("float64", "decimal"):
        if new.category == "float64" and old.value_range[1] <= 2**53:
            return None
        if new.category == "decimal":
            digits = len(str(max(abs(old.value_range[0]), old.value_range[1])))
            return None if new.args[0] - new.args[1] >= digits else "loses digits"
        return "loses precision"
    if old.category == "enum" and new.category == "enum":
        return None if set(old.enum_values) <= set(new.enum_values) else "removes enum values"
    if old.category == "enum" and new.category in ("char", "varchar"):
        return None if new.args[0] >= max(len(v) for v in old.enum_values) else "shortens"
    if old.category in _DATETIME_CATEGORIES and new.category in _DATETIME_CATEGORIES:
        old_p = old.args[0] if old.args else 0
        new_p = new.args[0] if new.args else 0
        return None if new_p >= old_p else "drops fractional seconds"
    if old.category == new.category and old.category in ("bytes", "text", "json", "uuid",
                                                            "date", "bool"):
        return None
    return "converts the values"


