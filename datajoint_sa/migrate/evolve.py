"""`T.alter()` and `schema.migrate()`: re-declare, plan, show, ask, apply.

The classes are re-declared from their current `definition` into a scratch MetaData (their
class attributes swapped, so that dependents resolve the new keys of their parents), the
difference with the database is planned by Alembic, shown in words, checked for data loss,
confirmed, and applied through Alembic's operations. Only after a successful apply do the
classes and `schema.metadata` take the new definitions; otherwise everything is put back.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import declare
from ..errors import DataJointError
from ..prompt import confirm
from ..settings import config
from .plan import MigrationFailed, apply, produce
from .rename import PART_SEPARATOR, RenameTableOp
from .review import Review, steps
from .scope import Scope

if TYPE_CHECKING:
    from ..schema import Schema
    from ..table import Table


class MigrationRefused(DataJointError):
    """A planned change would lose data (or the data does not allow it)."""


def _declared_classes(schema: Schema) -> list[type[Table]]:
    """The schema's declared table classes in declaration order, masters before parts."""
    classes: list[type[Table]] = []
    for cls in schema._classes.values():
        if cls._sa_table is None:
            continue
        classes.append(cls)
        classes += [p for p in getattr(cls, "_parts", []) if p._sa_table is not None]
    return classes


def _dependents(cls: type[Table], candidates: list[type[Table]]) -> list[type[Table]]:
    """Classes among `candidates` whose definitions depend on `cls`, directly or not."""
    found: list[type[Table]] = []
    frontier: set[type] = {cls}
    changed = True
    while changed:
        changed = False
        for candidate in candidates:
            if candidate in found or candidate is cls or candidate._spec is None:
                continue
            parents = {fk.parent if isinstance(fk.parent, type) else type(fk.parent)
                       for fk in candidate._spec.foreign_keys}
            if parents & frontier:
                found.append(candidate)
                frontier.add(candidate)
                changed = True
    return [c for c in candidates if c in found]


class _Redeclaration:
    """Classes re-declared from their current definitions, to be kept or put back."""

    def __init__(self, classes: list[type[Table]]) -> None:
        self.classes = classes
        self.metadata = declare.new_metadata()
        self.saved: dict[type[Table], tuple[Any, Any, Any]] = {}

    def declare(self) -> None:
        for cls in self.classes:
            schema = cls._schema
            assert schema is not None
            self.saved[cls] = (cls._sa_table, cls._spec, cls._table_heading)
            context = cls._declaration_context or schema._context(cls, {})
            display = f"{cls.__qualname__} ({schema.database}.{cls.table_name})"
            spec = declare.parse(cls.definition, schema=schema.database, name=cls.table_name,
                                 context=context, display_name=display)
            table = declare.compile(spec, self.metadata, schema.connection.backend_impl)
            if cls._sa_table is not None and "dj_renamed_from" in cls._sa_table.info:
                table.info["dj_renamed_from"] = cls._sa_table.info["dj_renamed_from"]
            cls._sa_table, cls._spec, cls._table_heading = table, spec, spec.heading

    def keep(self) -> None:
        """Move the new tables into their schemas' MetaData."""
        for cls in self.classes:
            schema = cls._schema
            assert schema is not None and cls._spec is not None
            old_table = self.saved[cls][0]
            if old_table is not None and old_table.key in schema.metadata.tables:
                schema.metadata.remove(schema.metadata.tables[old_table.key])
            cls._sa_table = declare.compile(cls._spec, schema.metadata,
                                            schema.connection.backend_impl)

    def restore(self) -> None:
        for cls, (table, spec, heading) in self.saved.items():
            cls._sa_table, cls._spec, cls._table_heading = table, spec, heading


@contextmanager
def _redeclared(classes: list[type[Table]]) -> Iterator[_Redeclaration]:
    redeclaration = _Redeclaration(classes)
    try:
        redeclaration.declare()
        yield redeclaration
    except BaseException:
        redeclaration.restore()
        raise


def _evolve(classes: list[type[Table]], *, prompt: bool, force: bool,
            extend_for_keys: list[type[Table]] | None = None) -> list[str]:
    """Plan, review, confirm and apply the re-declaration of `classes`."""
    first = classes[0]._schema
    assert first is not None
    connection = first.connection
    with _redeclared(classes) as redeclaration:
        schemas = list(dict.fromkeys(c._schema.database for c in classes  # type: ignore[union-attr]
                                     ))
        scope = Scope(connection.backend_impl, schemas, [redeclaration.metadata])
        with connection.session(write=False) as sa_conn:
            scope.default_schema = sa_conn.dialect.default_schema_name
        scope.only = {scope.key(t.schema, t.name) for t in redeclaration.metadata.tables.values()}
        scope.only |= renamed_sources(connection, redeclaration.metadata, scope)
        upgrade = produce(connection, scope)
        with connection.session(write=False) as sa_conn:
            review = Review(scope, sa_conn)
            plan_steps = steps(upgrade)
            words = review.words(plan_steps)
            risks = review.risks(plan_steps) if plan_steps else []
        if extend_for_keys and force and any(r.kind == "dependents" for r in risks):
            # the dependents' foreign keys follow the new key: change them together
            redeclaration.restore()
            return _evolve(classes + extend_for_keys, prompt=prompt, force=force)
        if not words:
            redeclaration.restore()
            print("Nothing to change.")
            return []
        print("Planned changes:")
        for text in words:
            print(f"  - {text}")
        if risks and not force:
            reasons = "\n".join(f"  - {r.text}" for r in risks)
            along = (" (the dependents then change with it)"
                     if any(r.kind == "dependents" for r in risks) else "")
            raise MigrationRefused(f"Refused: the change would lose data or the data does not "
                                   f"allow it:\n{reasons}\nFix the data or the definition, or "
                                   f"pass force=True to apply it anyway{along}.")
        for risk in risks:
            print(f"  ! forced: {risk.text}")
        if prompt and config["safemode"]:
            if not confirm(f"Apply {len(words)} change(s)?"):
                redeclaration.restore()
                print("Cancelled: nothing was changed.")
                return []
        try:
            apply(connection, scope, upgrade)
        except MigrationFailed:
            raise  # says itself which steps were undone
        except sa.exc.DBAPIError as error:
            raise DataJointError(f"The migration failed and was rolled back; nothing was "
                                 f"changed: {error.orig}") from error
        except DataJointError as error:
            if not connection.backend_impl.transactional_ddl:
                raise
            raise type(error)(f"The migration failed and was rolled back; nothing was "
                              f"changed: {error}") from error
        redeclaration.keep()
    if any(isinstance(step.op, RenameTableOp) for step in plan_steps):
        # the renamed tables are now compared with their definitions
        words += _evolve(classes, prompt=prompt, force=force)
    return words


def renamed_sources(connection: Any, metadata: sa.MetaData, scope: Scope) -> set[Any]:
    """Keys of the existing tables that declared tables are `renamed_from` (with parts)."""
    backend = connection.backend_impl
    found: set[Any] = set()
    with connection.session(write=False) as sa_conn:
        for table in metadata.tables.values():
            before = table.info.get("dj_renamed_from")
            if not before:
                continue
            schema, _ = scope.identity(table.schema, table.name)
            for name in backend.list_tables(sa_conn, schema):
                if any(name == old or name.startswith(old + PART_SEPARATOR) for old in before):
                    found.add(scope.key(*backend.table_identity(schema, name)))
    return found


def alter_table(cls: type[Table], *, prompt: bool = True, force: bool = False) -> list[str]:
    """Bring one table in line with its edited definition (see `Table.alter`)."""
    schema = cls._schema
    if schema is None or cls._sa_table is None:
        raise DataJointError(f"Table {cls.__name__} is not declared in a schema")
    dependents = _dependents(cls, _declared_classes(schema))
    return _evolve([cls], prompt=prompt, force=force, extend_for_keys=dependents)


def migrate_schema(schema: Schema, *, prompt: bool = True, force: bool = False) -> list[str]:
    """Bring every declared table of a schema in line with its definition."""
    classes = _declared_classes(schema)
    if not classes:
        print("Nothing to change.")
        return []
    return _evolve(classes, prompt=prompt, force=force)
