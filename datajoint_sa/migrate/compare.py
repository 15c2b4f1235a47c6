"""The Alembic autogenerate plugin "datajoint_sa.autogenerate".

Alembic compares columns, indexes, unique constraints, foreign keys and comments. This plugin
adds what a DataJoint pipeline needs on top, and only in runs that carry a `Scope`:

- primary-key changes (Alembic does not compare primary keys);
- the named CHECK constraints that enforce ranges, enum values and lengths where a backend's
  column type does not, replaced when a declared type changes;
- renames marked in a definition (`new : int  # renamed from old`) instead of drop + add;
- renamed tables (a class's `renamed_from`, the `--rename OLD=NEW` option, or a confirmed
  question when a dropped and a created table have the same heading) as one
  `op.dj_rename_table` instead of drop + create (their parts follow);
- dependents kept consistent: foreign keys are dropped before and re-created after the
  changes that need it (primary key, column types), and new foreign-key columns of existing
  rows are filled from their parent through the foreign key they had;
- operations ordered so that they apply: foreign keys dropped first, tables changed parents
  first, foreign keys re-created last;
- on SQLite, the hidden comments table kept in step (`op.dj_set_comments`).
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from alembic.operations import ops
from alembic.runtime.plugins import Plugin
from alembic.util import DispatchPriority, PriorityDispatchResult

from ..naming import from_camel_case
from .operations import FillFromParentOp, RenameColumnOp, SetCommentsOp
from .rename import PART_SEPARATOR, RenameTableOp
from .scope import Scope, TableKey, check_signature, declared_type, renames_between, scope_of

CONTINUE = PriorityDispatchResult.CONTINUE
CHECK_KINDS = ("_range", "_enum", "_length")


def applies(constraint: sa.Constraint, dialect_name: str) -> bool:
    """Whether a constraint's DDL is emitted on this dialect (see `ddl_if` in declare.py)."""
    condition = getattr(constraint, "_ddl_if", None)
    if condition is None or condition.dialect is None:
        return True
    wanted = condition.dialect
    return dialect_name in ((wanted,) if isinstance(wanted, str) else tuple(wanted))


def _check_column(name: str, table_name: str) -> str | None:
    prefix = f"ck_{table_name}_"
    if not name.startswith(prefix):
        return None
    rest = name[len(prefix):]
    for kind in CHECK_KINDS:
        if rest.endswith(kind):
            return rest[: -len(kind)]
    return None


# ---- table level ------------------------------------------------------------------------

def _compare_primary_key(autogen_context: Any, modify_table_ops: ops.ModifyTableOps,
                         schema: str | None, tname: str, conn_table: sa.Table | None,
                         metadata_table: sa.Table | None) -> PriorityDispatchResult:
    scope = scope_of(autogen_context)
    if scope is None or conn_table is None or metadata_table is None:
        return CONTINUE
    renames = renames_between({c.name for c in conn_table.columns}, metadata_table)
    old = [renames.get(c.name, c.name) for c in conn_table.primary_key.columns]
    new = [c.name for c in metadata_table.primary_key.columns]
    if old == new:
        return CONTINUE
    old_pk = conn_table.primary_key
    if not old_pk.name:  # MySQL reflects no name (its key is PRIMARY, whatever it is called)
        old_pk.name = metadata_table.primary_key.name or sa.sql.elements.conv(f"pk_{tname}")
    # the dropped key names the columns as they are now; columns renamed in this migration
    # are renamed before, so the drop refers to them by their new names
    if renames:
        old_pk = sa.PrimaryKeyConstraint(
            *[sa.Column(renames.get(c.name, c.name), c.type) for c in old_pk.columns],
            name=str(old_pk.name))
        sa.Table(conn_table.name, sa.MetaData(), *old_pk.columns, old_pk,
                 schema=conn_table.schema)
    modify_table_ops.ops.append(ops.DropConstraintOp.from_constraint(old_pk))
    modify_table_ops.ops.append(ops.CreatePrimaryKeyOp.from_constraint(
        metadata_table.primary_key))
    return CONTINUE


def _compare_checks(autogen_context: Any, modify_table_ops: ops.ModifyTableOps,
                    schema: str | None, tname: str, conn_table: sa.Table | None,
                    metadata_table: sa.Table | None) -> PriorityDispatchResult:
    scope = scope_of(autogen_context)
    if scope is None or conn_table is None or metadata_table is None:
        return CONTINUE
    dialect = autogen_context.dialect
    wanted = {str(c.name): c for c in metadata_table.constraints
              if isinstance(c, sa.CheckConstraint) and c.name and applies(c, dialect.name)}
    try:
        reflected = autogen_context.inspector.get_check_constraints(tname, schema=schema)
    except NotImplementedError:
        return CONTINUE
    present = {ck["name"]: ck["sqltext"] for ck in reflected
               if ck.get("name") and _check_column(ck["name"], tname) is not None}
    renames = renames_between({c.name for c in conn_table.columns}, metadata_table)
    stored = scope.stored_comments(autogen_context.connection, schema, tname)[1]
    changed: set[str] = set(renames.values())
    for column in metadata_table.columns:
        old_name = next((o for o, n in renames.items() if n == column.name), column.name)
        old = check_signature(declared_type(stored.get(old_name)))
        new = check_signature(declared_type(column.comment))
        if old != new:
            changed.add(column.name)

    def drop(name: str) -> None:
        stub = sa.CheckConstraint(sa.text(present[name]), name=name)
        sa.Table(tname, sa.MetaData(), stub, schema=schema)
        modify_table_ops.ops.append(ops.DropConstraintOp.from_constraint(stub))

    for name in sorted(set(present) - set(wanted)):
        drop(name)
    for name in sorted(set(present) & set(wanted)):
        if _check_column(name, tname) in changed:
            drop(name)
            modify_table_ops.ops.append(ops.AddConstraintOp.from_constraint(wanted[name]))
    for name in sorted(set(wanted) - set(present)):
        modify_table_ops.ops.append(ops.AddConstraintOp.from_constraint(wanted[name]))
    return CONTINUE


# ---- schema level -----------------------------------------------------------------------

def _reset(autogen_context: Any, upgrade_ops: ops.UpgradeOps, schemas: set[str | None]
           ) -> PriorityDispatchResult:
    scope = scope_of(autogen_context)
    if scope is not None:
        scope.reset()
        scope.default_schema = autogen_context.connection.dialect.default_schema_name
    return CONTINUE


def _rewrite(autogen_context: Any, upgrade_ops: ops.UpgradeOps, schemas: set[str | None]
             ) -> PriorityDispatchResult:
    scope = scope_of(autogen_context)
    if scope is not None:
        _Rewriter(autogen_context, scope).run(upgrade_ops)
    return CONTINUE


def _topological(keys: Iterable[TableKey], edges: Iterable[tuple[TableKey, TableKey]]
                 ) -> list[TableKey]:
    """Keys ordered parents first; edges are (child, parent)."""
    wanted = list(dict.fromkeys(keys))
    sorter: graphlib.TopologicalSorter[TableKey] = graphlib.TopologicalSorter()
    for key in wanted:
        sorter.add(key)
    present = set(wanted)
    for child, parent in edges:
        if child in present and parent in present and child != parent:
            sorter.add(child, parent)
    try:
        return list(sorter.static_order())
    except graphlib.CycleError:
        return wanted


class _Rewriter:
    """Post-processes the operations Alembic produced for one run (see module docstring)."""

    def __init__(self, autogen_context: Any, scope: Scope) -> None:
        self.ctx = autogen_context
        self.scope = scope
        self.conn = autogen_context.connection
        self.dialect = autogen_context.dialect
        self.inspector = autogen_context.inspector
        self.meta: dict[TableKey, sa.Table] = {}
        for table in autogen_context.sorted_tables:
            key = scope.key(table.schema, table.name)
            if scope.only is None or key in scope.only:
                self.meta[key] = table
        self._fks: dict[TableKey, list[dict[str, Any]]] = {}
        #: renamed tables (parts included): new key -> old key
        self.renamed_from: dict[TableKey, TableKey] = {}

    def key(self, schema: str | None, name: str) -> TableKey:
        return self.scope.key(schema, name)

    # -- reflected foreign keys of the pipeline's tables
    def db_tables(self) -> list[tuple[str | None, str]]:
        names: list[tuple[str | None, str]] = []
        candidates: list[tuple[str | None, str]]
        if self.scope.prefixed:
            candidates = [(None, n) for n in self.inspector.get_table_names()]
        else:
            candidates = [(s, n) for s in self.scope.schemas
                          for n in self.inspector.get_table_names(schema=s)]
        for schema, name in candidates:
            if self.scope.owns(schema, name):
                names.append((schema, name))
        return names

    def db_fks(self, schema: str | None, name: str) -> list[dict[str, Any]]:
        key = self.key(schema, name)
        if key not in self._fks:
            found = []
            for fk in self.inspector.get_foreign_keys(name, schema=schema):
                referred_schema = fk.get("referred_schema") or schema
                fk = dict(fk, _table=(schema, name),
                          _referred=self.key(referred_schema, fk["referred_table"]),
                          _referred_schema=referred_schema)
                found.append(fk)
            self._fks[key] = found
        return self._fks[key]

    # -- the whole pass
    def run(self, upgrade_ops: ops.UpgradeOps) -> None:
        renames = self.pair_renames(upgrade_ops)
        created: list[tuple[TableKey, list[ops.MigrateOperation]]] = []
        dropped: list[tuple[TableKey, list[ops.MigrateOperation]]] = []
        modified: dict[TableKey, ops.ModifyTableOps] = {}
        others: list[ops.MigrateOperation] = []
        created_keys = {self.key(o.schema, o.table_name) for o in upgrade_ops.ops
                        if isinstance(o, ops.CreateTableOp)}
        dropped_keys = {self.key(o.schema, o.table_name) for o in upgrade_ops.ops
                        if isinstance(o, ops.DropTableOp)}
        pending: dict[TableKey, list[ops.MigrateOperation]] = {}
        for op in upgrade_ops.ops:
            if isinstance(op, ops.CreateTableOp):
                self.strip_checks(op)
                created.append((self.key(op.schema, op.table_name), [op]))
            elif isinstance(op, ops.ModifyTableOps):
                key = self.key(op.schema, op.table_name)
                if key in created_keys:
                    next(group for k, group in created if k == key).append(op)
                elif key in dropped_keys:
                    pending.setdefault(key, []).append(op)
                else:
                    modified[key] = op
            elif isinstance(op, ops.DropTableOp):
                key = self.key(op.schema, op.table_name)
                dropped.append((key, [*pending.pop(key, []), op]))
            else:
                others.append(op)

        renamed = {key: self.renames(mto) for key, mto in modified.items()}
        for mto in modified.values():
            for op in mto.ops:
                if isinstance(op, ops.AlterColumnOp) and op.kw.get("autoincrement") is False:
                    del op.kw["autoincrement"]  # "not autoincrement" is what ALTER means anyway
        pieces = {key: self.fills(key, mto, renamed) for key, mto in modified.items()}
        if self.scope.batch:
            for key, mto in modified.items():
                pieces[key] = self.native_renames(mto) + pieces[key]
        fk_drops: list[ops.MigrateOperation] = []
        fk_creates: list[ops.MigrateOperation] = []
        if not self.scope.batch:
            for parts in pieces.values():
                for part in parts:
                    if isinstance(part, ops.ModifyTableOps):
                        fk_drops += [o for o in part.ops if _is_fk_drop(o)]
                        fk_creates += [o for o in part.ops if _is_fk_create(o)]
                        part.ops = [o for o in part.ops
                                    if not (_is_fk_drop(o) or _is_fk_create(o))]
            extra_drops, extra_creates = self.dependents(modified, renamed, fk_drops,
                                                         dropped_keys)
            fk_drops += extra_drops
            fk_creates += extra_creates
            fk_drops = self.with_implicit_indexes(fk_drops, fk_creates)

        # parents before children for changes and creation, children first for drops
        meta_edges = [(self.key(t.schema, t.name),
                       self.key(fk.referred_table.schema, fk.referred_table.name))
                      for t in self.meta.values() for fk in t.foreign_key_constraints]
        db_edges = [(k, fk["_referred"]) for k, _ in dropped
                    for fk in self.db_fks(*self.unkey(k))]
        drop_order = list(reversed(_topological([k for k, _ in dropped], db_edges)))
        change_order = _topological(pieces, meta_edges)
        create_order = _topological([k for k, _ in created], meta_edges)

        result: list[ops.MigrateOperation] = []
        result += _group_by_table(fk_drops)
        if not self.scope.batch:
            result += renames
        dropped_map = dict(dropped)
        for key in drop_order:
            result += dropped_map[key]
        created_map = dict(created)
        changes = [p for key in change_order for p in pieces[key]
                   if not (isinstance(p, ops.ModifyTableOps) and p.is_empty())]
        creations = [op for key in create_order for op in created_map[key]]
        # new tables may reference changed keys of existing ones, so they follow the
        # changes; with SQLite's table copies foreign keys are checked at the end, and new
        # tables come first, in the order a reader expects
        result += creations + changes if self.scope.batch else changes + creations
        if self.scope.batch:
            # SQLite rewrites the references to a renamed table when renaming it: the
            # dependents' copies (pointing at the new name) come first, and downgrading,
            # the rename back comes before the copies that point at the old name
            result += renames
        result += _group_by_table(fk_creates)
        result += others
        if not self.scope.backend.native_comments:
            result += self.comments(created_keys, dropped)
        upgrade_ops.ops = result

    # -- renamed tables: a dropped and a created table that are one
    def pair_renames(self, upgrade_ops: ops.UpgradeOps) -> list[ops.MigrateOperation]:
        """Replace the drop and create of each renamed table (and of its parts) by one
        RenameTableOp."""
        creates = {self.key(o.schema, o.table_name): o for o in upgrade_ops.ops
                   if isinstance(o, ops.CreateTableOp)}
        drops = {self.key(o.schema, o.table_name): o for o in upgrade_ops.ops
                 if isinstance(o, ops.DropTableOp)}
        pairs: dict[TableKey, TableKey] = {}
        for new_key in creates:
            schema, new = self.scope.identity(*new_key)
            if PART_SEPARATOR in new.lstrip("#_"):
                continue  # parts follow their master
            candidates = [k for k in drops if k not in pairs.values()
                          and self.scope.identity(*k)[0] == schema
                          and PART_SEPARATOR not in self.scope.identity(*k)[1].lstrip("#_")]
            old_key = self.rename_source(new_key, new, candidates)
            if old_key is not None:
                pairs[new_key] = old_key
        if not pairs:
            return []
        gone: set[TableKey] = set()
        renames: list[ops.MigrateOperation] = []
        for new_key, old_key in pairs.items():
            schema, new = self.scope.identity(*new_key)
            old = self.scope.identity(*old_key)[1]
            renames.append(RenameTableOp(schema, old, new))
            self.renamed_from[new_key] = old_key
            gone |= {new_key, old_key}
            for part_key in drops:
                part_schema, part = self.scope.identity(*part_key)
                if part_schema != schema or not part.startswith(old + PART_SEPARATOR):
                    continue
                gone.add(part_key)  # renamed with the master, whatever its fate after
                new_part = self.key(*self.scope.backend.table_identity(
                    schema, new + part[len(old):]))
                if new_part in creates:
                    gone.add(new_part)
                    self.renamed_from[new_part] = part_key
        upgrade_ops.ops = [
            o for o in upgrade_ops.ops
            if not (isinstance(o, ops.CreateTableOp | ops.DropTableOp | ops.ModifyTableOps)
                    and self.key(o.schema, o.table_name) in gone)]
        return renames

    def rename_source(self, new_key: TableKey, new: str, candidates: list[TableKey]
                      ) -> TableKey | None:
        """The dropped table that the created table `new` renames, if named or confirmed."""
        table = self.meta.get(new_key)
        named = list(table.info.get("dj_renamed_from", [])) if table is not None else []
        named += [old for old, wanted in self.scope.renames if _names(wanted, new)]
        for old_key in candidates:
            old = self.scope.identity(*old_key)[1]
            if any(_names(spec, old) for spec in named):
                return old_key
        if self.scope.confirm is None or table is None:
            return None
        for old_key in candidates:
            if self.same_heading(old_key, table) and self.scope.confirm(
                    f"Table {self.scope.node(*new_key)} is new and "
                    f"{self.scope.node(*old_key)} is gone, with the same attributes: is it "
                    "renamed (rows kept) rather than dropped and created?"):
                return old_key
        return None

    def same_heading(self, old_key: TableKey, table: sa.Table) -> bool:
        """Whether a database table has the declared table's attributes, key and types."""
        schema, name = self.unkey(old_key)
        columns = [c["name"] for c in self.inspector.get_columns(name, schema=schema)]
        key = self.inspector.get_pk_constraint(name, schema=schema)["constrained_columns"]
        if (sorted(columns) != sorted(c.name for c in table.columns)
                or sorted(key) != sorted(c.name for c in table.primary_key.columns)):
            return False
        stored = self.scope.stored_comments(self.conn, schema, name)[1]
        return all(declared_type(stored.get(c.name)) == declared_type(c.comment)
                   for c in table.columns)

    def unkey(self, key: TableKey) -> tuple[str | None, str]:
        schema, name = key
        return (None if schema == self.scope.default_schema else schema), name

    # -- indexes a backend made for a foreign key (MySQL) go with it
    def with_implicit_indexes(self, drops: list[Any], creates: list[Any]) -> list[Any]:
        recreated = {(self.key(o.kw.get("source_schema"), o.source_table), o.constraint_name)
                     for o in creates}
        result: list[Any] = []
        for op in drops:
            result.append(op)
            key = self.key(op.schema, op.table_name)
            if (key, op.constraint_name) in recreated:
                continue  # the same foreign key comes back and keeps its index
            declared = {str(i.name) for i in (self.meta[key].indexes if key in self.meta
                                              else ())}
            for index in self.inspector.get_indexes(op.table_name, schema=op.schema):
                if index["name"] == op.constraint_name and index["name"] not in declared:
                    stub = sa.Table(op.table_name, sa.MetaData(),
                                    *[sa.Column(c, sa.Integer) for c in index["column_names"]],
                                    schema=op.schema)
                    result.append(ops.DropIndexOp.from_index(sa.Index(
                        index["name"], *[stub.c[c] for c in index["column_names"]],
                        unique=bool(index["unique"]))))
        return result

    # -- create table: only the CHECKs this backend emits
    def strip_checks(self, op: ops.CreateTableOp) -> None:
        op.columns = [c for c in op.columns
                      if not (isinstance(c, sa.CheckConstraint)
                              and not applies(c, self.dialect.name))]

    # -- renames marked in the definition
    def renames(self, mto: ops.ModifyTableOps) -> dict[str, str]:
        adds = {o.column.name: o for o in mto.ops if isinstance(o, ops.AddColumnOp)}
        drops = {o.column_name: o for o in mto.ops if isinstance(o, ops.DropColumnOp)}
        table = self.meta.get(self.key(mto.schema, mto.table_name))
        if table is None or not adds or not drops:
            return {}
        renames = {old: new for old, new in renames_between(set(drops), table).items()
                   if new in adds}
        compare = self.ctx.comparators.dispatch("column", qualifier=self.dialect.name)
        for old, new in renames.items():
            conn_column = drops[old].to_column()
            rename = RenameColumnOp(mto.table_name, old, schema=mto.schema, modify_name=new)
            compare(self.ctx, rename, mto.schema, mto.table_name, old, conn_column,
                    adds[new].column)
            mto.ops[mto.ops.index(adds[new])] = rename
            mto.ops.remove(drops[old])
        return renames

    def native_renames(self, mto: ops.ModifyTableOps) -> list[ops.MigrateOperation]:
        """Batch mode: renames run before the table copy, as SQLite's own RENAME COLUMN
        (which also rewrites indexes and CHECKs); the copy then sees the new names."""
        pure: list[ops.MigrateOperation] = []
        for i, op in enumerate(list(mto.ops)):
            if not isinstance(op, RenameColumnOp):
                continue
            existing: dict[str, Any] = {"existing_type": op.existing_type,
                        "existing_nullable": op.existing_nullable,
                        "existing_server_default": op.existing_server_default,
                        "existing_comment": op.existing_comment}
            pure.append(RenameColumnOp(op.table_name, op.column_name, schema=op.schema,
                                       modify_name=op.modify_name, **existing))
            rest = ops.AlterColumnOp(
                op.table_name, op.modify_name or op.column_name, schema=op.schema,
                modify_type=op.modify_type, modify_nullable=op.modify_nullable,
                modify_server_default=op.modify_server_default,
                modify_comment=op.modify_comment, **existing, **op.kw)
            mto.ops[i] = rest
        mto.ops = [o for o in mto.ops
                   if not (isinstance(o, ops.AlterColumnOp) and not o.has_changes())]
        if not pure:
            return []
        # CHECKs naming the old columns go before the rename (and come back after the
        # rename back when reversed), where the old column still exists
        old_names = {op.column_name for op in pure if isinstance(op, RenameColumnOp)}
        early = [o for o in mto.ops
                 if isinstance(o, ops.DropConstraintOp) and o.constraint_type == "check"
                 and _check_column(str(o.constraint_name), mto.table_name) in old_names]
        mto.ops = [o for o in mto.ops if o not in early]
        if early:
            pure.insert(0, ops.ModifyTableOps(mto.table_name, early, schema=mto.schema))
        return pure

    # -- new foreign-key columns of existing rows, filled from the parent
    def fills(self, key: TableKey, mto: ops.ModifyTableOps,
              renamed: dict[TableKey, dict[str, str]]) -> list[ops.MigrateOperation]:
        table = self.meta.get(key)
        adds = [o for o in mto.ops if isinstance(o, ops.AddColumnOp)
                and not o.column.nullable and o.column.server_default is None]
        if table is None or not adds:
            return [mto]
        child_renames = renamed.get(key, {})
        by_parent: dict[TableKey, tuple[Any, dict[str, str], dict[str, str]]] = {}
        for add in adds:
            column = add.column.name
            for fk in table.foreign_key_constraints:
                pairs = {e.parent.name: e.column.name for e in fk.elements}
                if column not in pairs:
                    continue
                parent = fk.referred_table
                parent_key = self.key(parent.schema, parent.name)
                parent_renames = renamed.get(parent_key, {})
                for old in self.db_fks(*self.unkey(key)):
                    if old["_referred"] != parent_key:
                        continue
                    on = {child_renames.get(c, c): parent_renames.get(p, p)
                          for c, p in zip(old["constrained_columns"], old["referred_columns"])}
                    if on and all(pairs.get(c) == p for c, p in on.items()):
                        entry = by_parent.setdefault(parent_key, (parent, {}, on))
                        entry[1][column] = pairs[column]
                        break
        filled = {c for _, columns, _ in by_parent.values() for c in columns}
        if not filled:
            return [mto]
        lead = 0
        while lead < len(mto.ops) and isinstance(mto.ops[lead], ops.AddColumnOp | RenameColumnOp):
            lead += 1
        first, rest = mto.ops[:lead], mto.ops[lead:]
        for i, op in enumerate(first):
            if isinstance(op, ops.AddColumnOp) and op.column.name in filled:
                nullable = op.column._copy()
                nullable.nullable = True
                first[i] = ops.AddColumnOp(op.table_name, nullable, schema=op.schema)
        result: list[ops.MigrateOperation] = [
            ops.ModifyTableOps(mto.table_name, first, schema=mto.schema)]
        for parent, columns, on in by_parent.values():
            result.append(FillFromParentOp(mto.table_name, parent.name, columns, on,
                                           schema=mto.schema, parent_schema=parent.schema))
        not_null = [
            ops.AlterColumnOp(mto.table_name, add.column.name, schema=mto.schema,
                              existing_type=add.column.type, existing_nullable=True,
                              existing_comment=add.column.comment, modify_nullable=False)
            for add in adds if add.column.name in filled]
        result.append(ops.ModifyTableOps(mto.table_name, not_null + rest, schema=mto.schema))
        return result

    # -- foreign keys that must step aside for a change of key or type
    def dependents(self, modified: dict[TableKey, ops.ModifyTableOps],
                   renamed: dict[TableKey, dict[str, str]], dropping: list[Any],
                   dropped_keys: set[TableKey]
                   ) -> tuple[list[ops.MigrateOperation], list[ops.MigrateOperation]]:
        pk_changed = {key for key, mto in modified.items()
                      if any(isinstance(o, ops.DropConstraintOp) and o.constraint_type == "primary"
                             for o in mto.ops)}
        retyped = {key: {o.column_name for o in mto.ops
                         if isinstance(o, ops.AlterColumnOp) and o.modify_type is not None}
                   for key, mto in modified.items()}
        already = {(self.key(o.schema, o.table_name), o.constraint_name) for o in dropping}
        drops: list[ops.MigrateOperation] = []
        creates: list[ops.MigrateOperation] = []
        for schema, name in self.db_tables():
            key = self.key(schema, name)
            if key in dropped_keys:
                continue
            for fk in self.db_fks(schema, name):
                parent = fk["_referred"]
                affected = (parent in pk_changed
                            or set(fk["constrained_columns"]) & retyped.get(key, set())
                            or set(fk["referred_columns"]) & retyped.get(parent, set()))
                if not affected or (key, fk["name"]) in already or not fk["name"]:
                    continue
                child_renames = renamed.get(key, {})
                parent_renames = renamed.get(parent, {})
                options = fk.get("options") or {}
                create = ops.CreateForeignKeyOp(
                    fk["name"], name, fk["referred_table"],
                    [child_renames.get(c, c) for c in fk["constrained_columns"]],
                    [parent_renames.get(c, c) for c in fk["referred_columns"]],
                    source_schema=schema, referent_schema=fk["_referred_schema"],
                    **{k: v for k, v in options.items() if k in ("onupdate", "ondelete")})
                drops.append(ops.DropConstraintOp(fk["name"], name, type_="foreignkey",
                                                  schema=schema, _reverse=create))
                creates.append(create)
        return drops, creates

    # -- the stored definition where the backend has no comments
    def comments(self, created: set[TableKey],
                 dropped: list[tuple[TableKey, list[ops.MigrateOperation]]]
                 ) -> list[ops.MigrateOperation]:
        result: list[ops.MigrateOperation] = []
        for key, table in self.meta.items():
            wanted = {"": table.comment or "",
                      **{c.name: c.comment or "" for c in table.columns}}
            stored: dict[str, str] = {}
            if key not in created:
                source = self.unkey(self.renamed_from.get(key, key))
                text, columns = self.scope.stored_comments(self.conn, *source)
                stored = {"": text, **columns}
            if wanted != stored:
                result.append(SetCommentsOp(table.name, wanted, previous=stored,
                                            schema=table.schema))
        for key, _ in dropped:
            schema, name = self.unkey(key)
            text, columns = self.scope.stored_comments(self.conn, schema, name)
            if text or columns:
                result.append(SetCommentsOp(name, {}, previous={"": text, **columns},
                                            schema=schema))
        return result


def _names(spec: str, table: str) -> bool:
    """Whether a name given for a rename (a class name, or a table name) names `table`."""
    if spec[:1].isupper():
        return table.lstrip("#_") == from_camel_case(spec)
    return spec == table


def _is_fk_drop(op: Any) -> bool:
    return isinstance(op, ops.DropConstraintOp) and op.constraint_type == "foreignkey"


def _is_fk_create(op: Any) -> bool:
    return isinstance(op, ops.CreateForeignKeyOp)


def _group_by_table(items: list[Any]) -> list[ops.MigrateOperation]:
    groups: dict[tuple[str | None, str], list[Any]] = {}
    for op in items:
        table = op.source_table if isinstance(op, ops.CreateForeignKeyOp) else op.table_name
        schema = op.kw.get("source_schema") if isinstance(op, ops.CreateForeignKeyOp) \
            else op.schema
        groups.setdefault((schema, table), []).append(op)
    return [ops.ModifyTableOps(table, group, schema=schema)
            for (schema, table), group in groups.items()]


def setup(plugin: Plugin) -> None:
    plugin.add_autogenerate_comparator(_reset, "schema", "datajoint_sa_reset",
                                       priority=DispatchPriority.FIRST)
    plugin.add_autogenerate_comparator(_compare_primary_key, "table", "datajoint_sa_pk")
    plugin.add_autogenerate_comparator(_compare_checks, "table", "datajoint_sa_checks")
    plugin.add_autogenerate_comparator(_rewrite, "schema", "datajoint_sa_rewrite",
                                       priority=DispatchPriority.LAST)


PLUGIN_NAME = "datajoint_sa.autogenerate"
Plugin.setup_plugin_from_module(__import__(__name__, fromlist=["setup"]), PLUGIN_NAME)
