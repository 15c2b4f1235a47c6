"""Table: a declared table as a query expression, with writing, dropping and describing."""

from __future__ import annotations

import inspect
from collections.abc import Hashable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import sqlalchemy as sa

from . import frame_insert, relatives
from .delete import cascade_delete, delete_quick, drop_tables, drop_with_dependents
from .describe import describe_table
from .errors import DataJointError, NotBoundError, UnknownAttributeError
from .expression import QueryExpression, restricted_copy, table_parts, table_shape
from .heading import Heading
from .insert import insert_rows, update_row
from .relatives import PartClasses
from .staged import StagedInsert

if TYPE_CHECKING:
    from .declare import TableSpec
    from .expression import Parts
    from .schema import Schema


class TableMeta(type):
    """Lets a table class be used where an instance is expected: `Session & key`,
    `Session.fetch()`, `Session.insert(...)`, `len(Session)`."""

    def __getattribute__(cls, name: str) -> Any:
        value = super().__getattribute__(name)
        if name.startswith("_") or not (inspect.isfunction(value) or isinstance(value, property)):
            return value
        if name in type.__getattribute__(cls, "_class_level_names"):
            return value
        if isinstance(value, property) and type.__getattribute__(cls, "_sa_table") is None:
            try:  # a tier itself, or a class not yet declared: help() and inspect skip
                return getattr(cls(), name)  # what an AttributeError hides
            except (DataJointError, AssertionError) as error:
                raise NotBoundError(f"{cls.__name__}.{name}: {error or 'not declared'}"
                                    ) from error
        return getattr(cls(), name)

    def __and__(cls, other: Any) -> Any:
        return cls() & other

    def __sub__(cls, other: Any) -> Any:
        return cls() - other

    def __mul__(cls, other: Any) -> Any:
        return cls() * other

    def __rmul__(cls, other: Any) -> Any:
        return other * cls()

    def __matmul__(cls, other: Any) -> Any:
        return cls() @ other

    def __add__(cls, other: Any) -> Any:
        return cls() + other

    def __xor__(cls, other: Any) -> Any:
        return cls() ^ other

    def __len__(cls) -> int:
        return len(cls())

    def __iter__(cls) -> Any:
        return iter(cls())

    def __contains__(cls, item: Any) -> bool:
        return item in cls()

    def __repr__(cls) -> str:
        if type.__getattribute__(cls, "_sa_table") is None:
            return f"<table class {cls.__name__} (not declared)>"
        return repr(cls())


class Table(QueryExpression, metaclass=TableMeta):
    """A table of a schema. Subclassed through the tiers (Manual, Lookup, ...)."""

    # names the metaclass must not turn into instance look-ups
    _class_level_names: ClassVar[frozenset[str]] = frozenset(
        {"make", "make_fetch", "make_compute", "make_insert"})

    definition: ClassVar[str] = ""
    table_name: ClassVar[str] = ""
    tier: ClassVar[str] = ""
    _schema: ClassVar[Schema | None] = None
    _sa_table: ClassVar[sa.Table | None] = None
    _spec: ClassVar[TableSpec | None] = None
    _table_heading: ClassVar[Heading | None] = None
    _prefix: ClassVar[str] = ""
    _declaration_context: ClassVar[dict[str, Any] | None] = None

    def __init__(self) -> None:
        cls = type(self)
        self._heading = cls._table_heading
        self._connection = cls._schema.connection if cls._schema is not None else None
        self.restrictions: tuple[Any, ...] = ()

    def restrict(self, condition: Any, semantic_check: bool = True) -> Table:
        """A copy of this table restricted by `condition` (still a table: it can delete,
        update and fetch)."""
        return restricted_copy(self, condition, semantic_check=semantic_check)

    # ---- identity -----------------------------------------------------------------------
    @property
    def heading(self) -> Heading:
        if self._heading is None:
            raise DataJointError(f"Table {type(self).__name__} is not declared in a schema; "
                                 "decorate it with @schema")
        return self._heading

    @property
    def database(self) -> str:
        assert self._schema is not None
        return self._schema.database

    @property
    def full_table_name(self) -> str:
        """The table's name as SQL for this backend, quoted: `schema`.`table` and the like."""
        table = self._sa_table
        if table is None:
            raise DataJointError(f"Table {type(self).__name__} is not declared")
        return self.connection.engine.dialect.identifier_preparer.format_table(table)

    @property
    def node_name(self) -> str:
        """The table's name in the dependency graph: "schema.table"."""
        return f"{self.database}.{self.table_name}"

    def _base_parts(self) -> Parts:
        table = self._sa_table
        if table is None:
            raise DataJointError(f"Table {type(self).__name__} is not declared")
        return table_parts(table, self.heading)

    def _base_shape(self, values: list[Any], slotted: int) -> tuple[Hashable, Table] | None:
        """A table's statements are those of its columns and heading, whatever its name
        (expression.table_shape): altered, it has new ones."""
        if self._sa_table is None:
            return None
        return table_shape(self, self._sa_table, self.heading, values, slotted)

    # ---- writing ------------------------------------------------------------------------
    def insert1(self, row: Any, **options: Any) -> None:
        """Insert one row (a dict, a sequence in heading order, or a record)."""
        self.insert((row,), **options)

    @property
    def staged_insert1(self) -> StagedInsert:
        """A staged insert of one row whose `<object@store>` objects are written straight
        into the store: `with T.staged_insert1(key) as staged: zarr.open(staged.store(
        "raw"), mode="w", ...)`; the row is inserted when the block ends (see `staged`)."""
        return StagedInsert(self)

    def insert(self, rows: Any, *, skip_duplicates: bool = False,
               ignore_extra_fields: bool = False, replace: bool = False,
               allow_direct_insert: bool | None = None, chunk_size: int | None = None) -> None:
        """Insert rows atomically: all of them or none."""
        self._check_direct_insert(allow_direct_insert)
        if not (skip_duplicates or replace) and frame_insert.insert(
                self, rows, ignore_extra_fields=ignore_extra_fields, chunk_size=chunk_size):
            return  # a DataFrame or Arrow table written from its columns
        insert_rows(self, rows, skip_duplicates=skip_duplicates,
                    ignore_extra_fields=ignore_extra_fields, replace=replace,
                    chunk_size=chunk_size)

    def _check_direct_insert(self, allow_direct_insert: bool | None) -> None:
        """Imported and Computed tables (and their parts) are filled by populate(): a direct
        insert is refused unless a running make() allows it (connection._allowed_inserts)."""
        master = getattr(type(self), "master", None) if self.tier == "part" else None
        tier = master.tier if master is not None else self.tier
        if tier not in ("imported", "computed") or allow_direct_insert:
            return
        allowed = getattr(self.connection, "_allowed_inserts", ())
        names = {self.node_name, master().node_name if master is not None else None}
        if not names & set(allowed):
            raise DataJointError(
                f"Inserts into {type(self).__name__} ({tier}) are made by populate(); "
                "use allow_direct_insert=True to insert directly")

    def update1(self, row: Mapping[str, Any]) -> None:
        """Update the secondary attributes of one existing row, named by its primary key."""
        self.connection.retrying(lambda: update_row(self, row))

    # ---- deleting and dropping ----------------------------------------------------------
    def delete_quick(self, get_count: bool = False) -> int | None:
        """Delete the rows of this (restricted) table without cascading."""
        count = self.connection.retrying(lambda: delete_quick(self))
        return count if get_count else None

    def delete(self, transaction: bool = True, safemode: bool | None = None,
               force_parts: bool = False, force_masters: bool = False, *,
               prompt: bool | None = None) -> int:
        """Delete these rows and every dependent row (across schemas) in one transaction.

        With safemode on (dj.config['safemode'] unless `safemode` or its newer name `prompt`
        is given) the row counts per table are shown and the deletion is committed only when
        confirmed. Deleting a master's rows deletes their part rows; deleting part rows whose
        master rows stay is refused, unless force_masters=True (which deletes those master
        rows too, with their other parts) or force_parts=True (which deletes the part rows
        alone). Returns the number of rows deleted from this table.
        """
        if prompt is not None:
            if safemode is not None and safemode != prompt:
                raise DataJointError("delete: give safemode or prompt, not both")
            safemode = prompt
        return self.connection.retrying(
            lambda: cascade_delete(self, safemode=safemode, force_parts=force_parts,
                                   force_masters=force_masters))

    def drop_quick(self) -> None:
        """Drop this table only (fails when other tables depend on it)."""
        drop_tables(self.connection, [self.node_name])
        if self._schema is not None:
            self._schema.forget_tables([self.node_name])

    def drop(self, force: bool = False) -> None:
        """Drop this table and every table that depends on it, children first.

        A part table is dropped with its master; `force=True` drops it alone and skips the
        confirmation."""
        drop_with_dependents(self, prompt=not force, force=force)

    # ---- schema evolution ---------------------------------------------------------------
    def alter(self, prompt: bool = True, *, force: bool = False) -> list[str]:
        """Change the table in the database to match its (edited) `definition`.

        The planned changes are shown in words and applied through Alembic after a yes
        (`prompt=False` or safemode off skips the question); a change that would lose data is
        refused unless `force=True`. Returns the descriptions of the applied changes."""
        from .migrate import alter_table  # back-edge: migrate loads pipelines of tables

        return alter_table(type(self), prompt=prompt, force=force)

    # ---- describing ---------------------------------------------------------------------
    def describe(self, printout: bool = True) -> str:
        """A definition that re-declares this table."""
        text = describe_table(self)
        if printout:
            print(text)
        return text

    @property
    def parts(self) -> PartClasses:
        """The part classes of this master; `parts(as_objects=False)` is classic DataJoint's
        method: the part tables in the database by full name (or as tables)."""
        return PartClasses(self, list(getattr(type(self), "_parts", [])))

    # ---- relatives (classic DataJoint's methods; see relatives.py) ----------------------
    def parents(self, primary: bool | None = None, as_objects: bool = False,
                foreign_key_info: bool = False) -> list[Any]:
        """The tables this one references (full names, tables, or (name, info) pairs);
        `primary=True`/`False` keeps foreign keys inside/outside the primary key."""
        return relatives.parents(self, primary, self._reflector() if as_objects else None,
                                 foreign_key_info)

    def children(self, primary: bool | None = None, as_objects: bool = False,
                 foreign_key_info: bool = False) -> list[Any]:
        """The tables that reference this one, as `parents` returns them."""
        return relatives.children(self, primary, self._reflector() if as_objects else None,
                                  foreign_key_info)

    def ancestors(self, as_objects: bool = False) -> list[Any]:
        """This table and all it depends on, parents first."""
        return relatives.ancestors(self, self._reflector() if as_objects else None)

    def descendants(self, as_objects: bool = False) -> list[Any]:
        """This table and all that depends on it, parents first."""
        return relatives.descendants(self, self._reflector() if as_objects else None)

    def _reflector(self) -> relatives.Reflector:
        """Tables of graph nodes, their classes reflected from the database (classic
        `as_objects=True` gives FreeTable-like objects)."""
        from .reflect import Spawner  # back-edge: relatives as tables of reflected classes

        spawner = Spawner(self.connection)

        def table(node: str) -> Table:
            cls = spawner.ensure(node)
            if cls is None:
                raise DataJointError(f"{self.full_table_name}: its relative {node} has a "
                                     "layout datajoint_sa cannot read as a table")
            return cls()

        return table

    @classmethod
    def _row_names(cls, names: Iterable[str], *, ignore_extra: bool) -> list[str]:
        heading = cls._table_heading
        assert heading is not None
        names = list(names)
        unknown = [n for n in names if n not in heading]
        if unknown and not ignore_extra:
            raise UnknownAttributeError(
                f"{cls.__name__} has no attribute{'s' if len(unknown) > 1 else ''} "
                f"{', '.join(map(repr, unknown))}")
        return [n for n in names if n in heading]
