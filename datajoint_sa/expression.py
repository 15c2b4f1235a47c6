"""Query expressions: immutable trees of operators compiled to SQLAlchemy Core `Select`s.

Building an expression runs no SQL. Every node holds its operands and its heading; compiling
turns it into `Parts` (a FROM clause, the column expression of every attribute, WHERE, GROUP
BY, DISTINCT, ORDER BY / LIMIT), and `to_select()` renders the parts as one Select whose
selected columns are labelled with attribute names. Operators reuse their operands' parts
where SQL allows it and wrap an operand into a derived table only when it must be (see
`Parts.wrap` and the README's subquery policy), so restrictions and joins of tables, and
projections and restrictions on top of them, stay one flat SELECT.

The algebra never asks which backend it runs on: backend differences live in SQLAlchemy's
compiler and in sqlexpr's per-dialect rendering of SQL fragments.
"""

from __future__ import annotations

import re
from collections.abc import Hashable, Iterable, Iterator, Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import ColumnClause, ColumnElement
from sqlalchemy.sql.selectable import FromClause

from . import columnar, statements
from . import fetch as fetching
from .condition import (
    AndList,
    Not,
    Permissive,
    SortKey,
    Top,
    TopSpec,
    assert_join_compatibility,
    condition_shape,
    fragment_shape,
    json_names,
    normalize,
    to_clause,
)
from .errors import NotBoundError, QueryError
from .heading import Attribute, Heading
from .preview import preview_html, preview_text
from .sqlexpr import Fragment, fragment_clause, parse_fragment

if TYPE_CHECKING:
    from .connection import Connection

__all__ = ["AndList", "Not", "Parts", "QueryExpression", "Top", "U"]


# ---- compiled form ----------------------------------------------------------------------------
class Parts:
    """One SELECT in pieces: what an expression compiles to before it is rendered.

    `columns` maps every attribute to its SQL expression over `froms` (a table, a join or a
    derived table); `tables` are the FROM elements it uses, to detect self-joins. A restriction
    adds to `where`; `group_by`, `distinct` and `order_by`/`limit`/`offset` mark parts that an
    outer operator may have to wrap into a derived table first.
    """

    __slots__ = ("froms", "columns", "where", "group_by", "distinct", "order_by", "limit",
                 "offset", "tables")

    def __init__(self, froms: FromClause, columns: dict[str, ColumnElement[Any]],
                 where: tuple[ColumnElement[Any], ...] = (), *,
                 group_by: tuple[ColumnElement[Any], ...] | None = None,
                 distinct: bool = False, order_by: tuple[Any, ...] = (),
                 limit: int | None = None, offset: int | None = None,
                 tables: frozenset[FromClause] = frozenset()) -> None:
        self.froms = froms
        self.columns = columns
        self.where = where
        self.group_by = group_by
        self.distinct = distinct
        self.order_by = order_by
        self.limit = limit
        self.offset = offset
        self.tables = tables

    @property
    def ordered(self) -> bool:
        return bool(self.order_by) or self.limit is not None or bool(self.offset)

    @property
    def plain(self) -> bool:
        """A filtered FROM clause: no grouping, DISTINCT or paging (joins freely)."""
        return self.group_by is None and not self.distinct and not self.ordered

    def replace(self, **changes: Any) -> Parts:
        copy = object.__new__(Parts)
        for name in self.__slots__:
            setattr(copy, name, changes[name] if name in changes else getattr(self, name))
        return copy

    def select(self, names: Iterable[str] | None = None) -> sa.Select[Any]:
        """The Select of these parts with columns labelled by attribute name."""
        columns = self.columns
        wanted = columns if names is None else names
        selected = []
        for name in wanted:
            column = columns[name]
            if not (isinstance(column, ColumnClause) and column.key == name):
                column = column.label(name)
            selected.append(column)
        select = sa.select(*selected).select_from(self.froms)
        if self.where:
            select = select.where(*self.where)
        if self.group_by:
            select = select.group_by(*self.group_by)
        if self.distinct:
            select = select.distinct()
        if self.order_by:
            select = select.order_by(*self.order_by)
        if self.limit is not None:
            select = select.limit(self.limit)
        if self.offset:
            select = select.offset(self.offset)
        return select

    def wrap(self, extra: Mapping[str, ColumnElement[Any]] | None = None) -> Parts:
        """These parts as a derived table (`extra` adds hidden columns, e.g. a match marker)."""
        select = self.select()
        if extra:
            select = select.add_columns(*(c.label(n) for n, c in extra.items()))
        derived = select.subquery()
        columns = {name: derived.c[name] for name in (*self.columns, *(extra or ()))}
        return Parts(derived, columns, tables=frozenset((derived,)))


def table_parts(table: sa.Table, heading: Heading) -> Parts:
    """The parts of a plain table."""
    return Parts(table, {name: table.c[name] for name in heading.names},
                 tables=frozenset((table,)))


def restrict_parts(parts: Parts, condition: Any, heading: Heading) -> Parts:
    """Parts with one more normalised condition (a TopSpec orders and pages instead)."""
    if isinstance(condition, TopSpec):
        if parts.ordered or parts.distinct:
            parts = parts.wrap()
        return parts.replace(order_by=order_terms(parts, condition.order, heading),
                             limit=condition.limit, offset=condition.offset or None)
    if condition is True:
        return parts
    if parts.group_by is not None or parts.ordered:
        parts = parts.wrap()
    return parts.replace(where=(*parts.where, to_clause(condition, parts)))


def order_terms(parts: Parts, keys: Iterable[SortKey], heading: Heading) -> tuple[Any, ...]:
    """The ORDER BY terms of sort keys: the one place an ordering is rendered.

    NULLs sort first ascending and last descending on every backend (MySQL's and SQLite's
    own rule; PostgreSQL's is the opposite, so a column that may hold NULL gets an
    `IS NULL` term before it), and the keys end with the primary key (`sort_keys`), so every
    backend returns the same rows for the same request.
    """
    clauses: list[Any] = []
    for key in keys:
        for value in key.values:  # a path into a json attribute: its values may be NULL
            term = fragment_clause(value, parts.columns)
            null_key = term.is_(None)
            clauses.append(null_key.asc() if key.descending else null_key.desc())
            clauses.append(term.desc() if key.descending else term.asc())
        if key.values:
            continue
        column = parts.columns[key.name]
        attribute = heading[key.name]
        if attribute.nullable or (not attribute.in_key and attribute.lineage is None):
            null_key = column.is_(None)
            clauses.append(null_key.asc() if key.descending else null_key.desc())
        clauses.append(column.desc() if key.descending else column.asc())
    return tuple(clauses)


def _inner_steps(froms: FromClause) -> list[tuple[FromClause, Any]] | None:
    """A left-deep chain of inner joins as [(element, its ON clause)], else None."""
    if not isinstance(froms, sa.Join):
        return [(froms, None)]
    if froms.isouter or froms.full or isinstance(froms.right, sa.Join):
        return None
    steps = _inner_steps(froms.left)
    return None if steps is None else [*steps, (froms.right, froms.onclause)]


def prepare_operands(a: Parts, b: Parts, *, outer: bool = False) -> tuple[Parts, Parts]:
    """The operands of a join, each wrapped into a derived table where SQL needs it.

    An operand with grouping, DISTINCT or paging is wrapped; so is the right operand when it
    shares a table with the left one (a self-join), and when it is a join itself that cannot
    be chained flat (the right side of an outer join, or a join containing one).
    """
    if not a.plain:
        a = a.wrap()
    if (not b.plain or b.tables & a.tables
            or (isinstance(b.froms, sa.Join) and (outer or _inner_steps(b.froms) is None))):
        b = b.wrap()
    return a, b


class _Anchor(ColumnElement[Any]):
    """Renders as the literal 1 but stands for FROM elements.

    `ON 1 = 1` between two anchors is the ON clause of an intended product (a join without
    common attributes): true, so every pair of rows is kept, and for SQLAlchemy's
    cartesian-product linter it links the elements on both sides, which a bare `ON TRUE`
    does not on every dialect.
    """

    __visit_name__ = "dj_anchor"
    inherit_cache = True
    type = sa.Integer()

    def __init__(self, froms: Iterable[FromClause]) -> None:
        self._froms = list(froms)

    @property
    def _from_objects(self) -> list[FromClause]:
        return self._froms


@compiles(_Anchor)
def _compile_anchor(element: _Anchor, compiler: Any, **kw: Any) -> str:
    return "1"


def _product(left: Iterable[FromClause], right: Iterable[FromClause]) -> ColumnElement[Any]:
    return _Anchor(left) == _Anchor(right)


def link(a: Parts, b: Parts, on: list[ColumnElement[Any]], *,
         filters: Iterable[ColumnElement[Any]] = (), outer: bool = False) -> FromClause:
    """`a JOIN b ON on` (`filters`: conditions on b alone, for an outer join).

    b's own inner joins are chained flat after a (no right-nested joins, which SQLite cannot
    resolve), each condition at the first join where its tables are present. A join without
    linking conditions is an explicit product (`ON 1 = 1`). Operands come from
    prepare_operands.
    """
    filters = list(filters)
    steps = _inner_steps(b.froms) if not outer and not filters else None
    if steps is None or len(steps) == 1:
        condition = [*on] or [_product(a.tables, b.tables)]
        return a.froms.join(b.froms, sa.and_(*condition, *filters), isouter=outer)
    froms: FromClause = a.froms
    present = set(a.tables)
    pending = list(on)
    for index, (element, own) in enumerate(steps):
        last = index == len(steps) - 1
        ready = [c for c in pending if last or set(c._from_objects) <= present | {element}]
        pending = [c for c in pending if not any(c is r for r in ready)]
        conditions = ([own] if own is not None else []) + ready
        froms = froms.join(element, sa.and_(*conditions) if conditions
                           else _product(present, (element,)))
        present.add(element)
    return froms


# ---- the expression base class ----------------------------------------------------------------
class QueryExpression:
    """Base of every query: a heading, a connection, restrictions, and a compilation.

    Expressions are immutable: every operator returns a new one. A restricted table stays an
    instance of its own class (see `restricted_copy`), so it can still delete and update.
    """

    _heading: Heading | None = None
    _connection: Connection | None = None
    #: the conditions as given by the caller, in order
    restrictions: tuple[Any, ...] = ()
    #: the same conditions checked and normalised (see condition.normalize)
    _conditions: tuple[Any, ...] = ()

    # ---- contract -----------------------------------------------------------------------
    @property
    def heading(self) -> Heading:
        assert self._heading is not None, "expression without a heading"
        return self._heading

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            raise NotBoundError(f"{type(self).__name__} is not bound to a connection")
        return self._connection

    @property
    def primary_key(self) -> list[str]:
        return self.heading.primary_key

    def _base_parts(self) -> Parts:
        """The parts of this node before its own restrictions (each node class says how)."""
        raise NotImplementedError

    def _compile(self) -> Parts:
        """The parts of this expression, restrictions applied (cached: nodes are immutable)."""
        parts: Parts | None = self.__dict__.get("_parts")
        if parts is None:
            parts = self._base_parts()
            for condition in self._conditions:
                parts = restrict_parts(parts, condition, self.heading)
            self.__dict__["_parts"] = parts
        return parts

    # ---- shapes: what a cached statement is keyed by (statements.py) -------------------
    def _base_shape(self, values: list[Any], slotted: int
                    ) -> tuple[Hashable, QueryExpression] | None:
        """The shape of this node before its own restrictions (each node class says how,
        next to its `_base_parts`): a key, and this node, or with `slotted` a copy whose
        operands hold Slots. None: not cached."""
        return None

    def _shape(self, values: list[Any], slotted: int
               ) -> tuple[Hashable, QueryExpression] | None:
        """A key equal for every expression that compiles to the same SQL up to the values
        of its conditions, which are appended to `values` in a fixed order; and with
        `slotted` a copy of the expression whose conditions hold Slots instead of values
        (compiled once, it binds any values of the same shape). None: not cached (a node
        class that builds its parts without saying its shape, a user's SQLAlchemy clause)."""
        if not _shapes_itself(type(self)):
            return None
        base = self._base_shape(values, slotted)
        if base is None:
            return None
        keys = []
        conditions = []
        for condition in self._conditions:
            shape = condition_shape(condition, values, slotted)
            if shape is None:
                return None
            keys.append(shape[0])
            conditions.append(shape[1])
        copy = base[1]
        if slotted and conditions:
            copy = _clone(copy, _conditions=tuple(conditions))
        return (base[0], tuple(keys)), copy

    def to_select(self) -> sa.Select[Any]:
        """The SQLAlchemy Select of this expression: one column per attribute, in heading
        order, labelled by attribute name."""
        return self._compile().select(self.heading.names)

    @property
    def select(self) -> sa.Select[Any]:
        return self.to_select()

    @property
    def sql(self) -> sa.Select[Any]:
        return self.to_select()

    def sorted_select(self, order_by: Any = None, limit: int | None = None,
                      offset: int | None = None, names: Iterable[str] | None = None, *,
                      any_order: bool = False) -> sa.Select[Any]:
        """The Select of `names` (default: all) with fetch's order_by/limit/offset applied to
        this expression's result (after any dj.Top of the expression itself, never mixed into
        it). Ordering goes through `dj.Top`'s sort keys: one path for fetch, Top, previews and
        the web app. A limit or offset without an order orders by the primary key, so a page
        is the same on every backend (unless `any_order`: any rows will do); an offset needs
        no limit. Plain parts are narrowed, ordered and paged in place (no derived table)."""
        names = self.heading.names if names is None else list(names)
        parts = self._compile()
        top = Top(limit, order_by if order_by is not None else "KEY", offset or 0)
        if order_by is not None or offset or (limit is not None and not any_order):
            parts = restrict_parts(parts, top.resolve(self.heading), self.heading)
        else:
            if (parts.distinct and names != self.heading.names) or \
                    (limit is not None and parts.ordered):
                parts = parts.wrap()  # fewer columns must not merge DISTINCT rows
            if limit is not None:
                parts = parts.replace(limit=int(limit))
        return parts.select(names)

    def make_sql(self) -> str:
        """SQL text for the current backend (values inlined for reading; queries bind them)."""
        dialect = self.connection.engine.dialect
        select = self.to_select()
        try:
            return str(select.compile(dialect=dialect, compile_kwargs={"literal_binds": True}))
        except Exception:  # a value type without a literal form: show the placeholders
            return str(select.compile(dialect=dialect))

    # ---- restriction --------------------------------------------------------------------
    def restrict(self, condition: Any, semantic_check: bool = True) -> QueryExpression:
        """Rows that satisfy `condition` (see the SPEC for every kind of condition)."""
        return restricted_copy(self, condition, semantic_check=semantic_check)

    def __and__(self, condition: Any) -> QueryExpression:
        return self.restrict(condition)

    def __sub__(self, condition: Any) -> QueryExpression:
        return self.restrict(Not(condition))

    def __xor__(self, condition: Any) -> QueryExpression:
        """Restriction without the semantic check."""
        return self.restrict(condition, semantic_check=False)

    # ---- join ---------------------------------------------------------------------------
    def join(self, other: Any, semantic_check: bool = True, left: bool = False
             ) -> QueryExpression:
        """Natural join on all common attributes; `left=True` keeps every row of self."""
        if isinstance(other, U):
            return other._promote(self)
        other = _operand(other, "join")
        return Join(self, other, semantic_check=semantic_check, left=left)

    def __mul__(self, other: Any) -> QueryExpression:
        return self.join(other)

    def __rmul__(self, other: Any) -> QueryExpression:
        if isinstance(other, U):
            return other._promote(self)
        return NotImplemented

    def __matmul__(self, other: Any) -> QueryExpression:
        """Join without the semantic check."""
        return self.join(other, semantic_check=False)

    def extend(self, other: Any, semantic_check: bool = True) -> QueryExpression:
        """Every row of self with the attributes of the one matching row of other."""
        return self.join(other, semantic_check=semantic_check, left=True)

    # ---- projection, aggregation, union -------------------------------------------------
    def proj(self, *attributes: Any, **named: str) -> QueryExpression:
        """Keep, rename (`new='old'`), copy (`new='(old)'`) and compute (`new='expr'`)
        attributes; the primary key is always kept, `...` keeps every secondary attribute and
        `'-attr'` drops one."""
        return Projection(self, attributes, named)

    def aggr(self, group: Any, *attributes: Any, exclude_nonmatching: bool = False,
             keep_all_rows: bool | None = None, **named: str) -> QueryExpression:
        """Summaries of the matching rows of `group` for every row of self.

        Every row of self appears once (count 0, other aggregates NULL where group has no
        match) unless `exclude_nonmatching=True`; `keep_all_rows` is the legacy spelling of
        the opposite."""
        if keep_all_rows is not None:
            exclude_nonmatching = not keep_all_rows
        return Aggregation(self, _operand(group, "aggregate"), attributes, named,
                           exclude_nonmatching=exclude_nonmatching)

    aggregate = aggr

    def __add__(self, other: Any) -> QueryExpression:
        return Union(self, _operand(other, "union"))

    # ---- fetching -----------------------------------------------------------------------
    def fetch(self, *attrs: str, **kwargs: Any) -> Any:
        return columnar.fetch(self, *attrs, **kwargs)

    def fetch1(self, *attrs: str, **kwargs: Any) -> Any:
        return fetching.fetch1(self, *attrs, **kwargs)

    # conveniences of the 2.x API, in fetch.py (rows) and columnar.py (Arrow, polars)
    def to_dicts(self, **kwargs: Any) -> list[dict[str, Any]]:
        return fetching.to_dicts(self, **kwargs)

    def to_pandas(self, **kwargs: Any) -> Any:
        return columnar.to_pandas(self, **kwargs)

    def to_arrays(self, *attrs: str, **kwargs: Any) -> Any:
        return fetching.to_arrays(self, *attrs, **kwargs)

    def to_arrow(self, **kwargs: Any) -> Any:
        return columnar.to_arrow(self, **kwargs)

    def to_polars(self, **kwargs: Any) -> Any:
        return columnar.to_polars(self, **kwargs)

    def keys(self, **kwargs: Any) -> list[dict[str, Any]]:
        return fetching.keys(self, **kwargs)

    def head(self, limit: int = 25, **kwargs: Any) -> Any:
        return fetching.head(self, limit, **kwargs)

    def tail(self, limit: int = 25, **kwargs: Any) -> Any:
        return fetching.tail(self, limit, **kwargs)

    # ---- sizes, membership, iteration, previews -----------------------------------------
    def _count_select(self) -> sa.Select[Any]:
        parts = self._compile()
        if parts.plain:
            return sa.select(sa.func.count()).select_from(parts.froms).where(*parts.where)
        return sa.select(sa.func.count()).select_from(parts.select().subquery())

    def _exists_select(self) -> sa.Select[Any]:
        parts = self._compile()
        one: ColumnElement[Any] = sa.literal_column("1")
        if parts.plain:
            select = sa.select(one).select_from(parts.froms).where(*parts.where)
        else:
            select = sa.select(one).select_from(parts.select().subquery())
        return select.limit(1)

    def __len__(self) -> int:
        return int(fetching.query_rows(self, "#count", QueryExpression._count_select)[0][0])

    def __bool__(self) -> bool:
        return bool(fetching.query_rows(self, "#exists", QueryExpression._exists_select))

    def __contains__(self, item: Any) -> bool:
        return bool(self & item)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.fetch(as_dict=True))

    def __repr__(self) -> str:
        return preview_text(self)

    def _repr_html_(self) -> str:
        return preview_html(self)

    def preview(self, limit: int | None = None) -> str:
        return preview_text(self, limit=limit)


_SHAPED: dict[type, bool] = {}


def _shapes_itself(cls: type) -> bool:
    """Whether the class that builds this node's parts also says its shape (a subclass
    overriding `_base_parts` alone would be cached by its parent's shape: never)."""
    known = _SHAPED.get(cls)
    if known is None:
        for klass in cls.__mro__:
            parts, shape = "_base_parts" in vars(klass), "_base_shape" in vars(klass)
            if parts or shape:
                known = parts and shape
                break
        _SHAPED[cls] = known = bool(known)
    return known


def _clone(node: Any, **changes: Any) -> Any:
    """A shallow copy of an expression node with some attributes replaced (its compiled
    parts dropped)."""
    copy = object.__new__(type(node))
    copy.__dict__.update(node.__dict__)
    copy.__dict__.pop("_parts", None)
    copy.__dict__.update(changes)
    return copy


def table_shape(node: Any, table: sa.Table, heading: Heading, values: list[Any],
                slotted: int) -> tuple[Hashable, Any]:
    """A table's part of a shape: its columns and heading (`statements.table_signature`),
    not its name, so that tables of the same definition in other schemas share statements;
    the table itself goes into `values`, and a statement's SQL names it there. With
    `slotted == statements.PLACEHOLDERS` the copy reads a stand-in table whose name the
    SQL text leaves to be filled in."""
    memo = table.info.get("dj_signature")
    if memo is None or memo[0] is not heading:
        memo = table.info["dj_signature"] = (heading, statements.table_signature(table, heading))
    index = len(values)
    values.append(table)
    if slotted != statements.PLACEHOLDERS:
        return ("table", memo[1]), node
    return ("table", memo[1]), _clone(node, _sa_table=statements.placeholder(table, index))


def _operands_shape(node: Any, name: str, operands: tuple[Any, ...], extra: Hashable,
                    values: list[Any], slotted: int) -> tuple[Hashable, Any] | None:
    """The shape of a node made of query operands (None where an operand is not cached;
    a dj.U operand is its attributes)."""
    keys: list[Hashable] = []
    copies: list[Any] = []
    for operand in operands:
        if isinstance(operand, U):
            keys.append(("U", operand.attributes))
            copies.append(operand)
            continue
        shape = operand._shape(values, slotted)
        if shape is None:
            return None
        keys.append(shape[0])
        copies.append(shape[1])
    key = (name, *keys, extra)
    if not slotted:
        return key, node
    changes = dict(zip(("a", "b"), copies))
    return key, _clone(node, **changes)


def _operand(other: Any, what: str) -> QueryExpression:
    if isinstance(other, type) and issubclass(other, QueryExpression):
        other = other()
    if not isinstance(other, QueryExpression):
        raise QueryError(f"Cannot {what} with {type(other).__name__} {other!r}: the operand "
                         "must be a table or a query expression")
    return other


def restricted_copy(expr: Any, condition: Any, semantic_check: bool = True) -> Any:
    """A copy of `expr` with one more restriction (expressions are immutable).

    The condition is checked against the heading now, so a bad one fails where it is written.
    """
    if isinstance(condition, Top):
        node: Any = condition.resolve(expr.heading)
    else:
        node = normalize(condition, expr.heading, semantic_check=semantic_check)
        if node is True:
            return expr
    copy = object.__new__(type(expr))
    copy.__dict__.update(expr.__dict__)
    copy.__dict__.pop("_parts", None)
    copy.restrictions = (*expr.restrictions,
                         condition if semantic_check else Permissive(condition))
    copy._conditions = (*expr._conditions, node)
    return copy


def _same_connection(*operands: QueryExpression) -> Connection | None:
    connections = [op._connection for op in operands if op._connection is not None]
    for other in connections[1:]:
        if other is not connections[0] and other.url != connections[0].url:
            raise QueryError("Cannot combine queries on different databases "
                             f"({connections[0]!r} and {other!r})")
    return connections[0] if connections else None


# ---- join ---------------------------------------------------------------------------------
def join_heading(a: Heading, b: Heading, *, left: bool = False) -> Heading:
    """The heading of a natural join.

    The primary key follows the functional dependencies: when a's attributes include b's key
    (a determines b) it is a's key, when b determines a it is b's, else the union of both.
    """
    if all(k in a for k in b.primary_key):
        key = a.primary_key
    elif all(k in b for k in a.primary_key):
        key = b.primary_key
    else:
        key = a.primary_key + [k for k in b.primary_key if k not in a.primary_key]
    keyset = set(key)
    attributes: list[Attribute] = []
    for attribute in a.attributes:
        attributes.append(attribute if attribute.in_key == (attribute.name in keyset)
                          else replace(attribute, in_key=attribute.name in keyset))
    for attribute in b.attributes:
        if attribute.name not in a:
            in_key = attribute.name in keyset
            nullable = attribute.nullable or (left and not in_key)
            if attribute.in_key != in_key or attribute.nullable != nullable:
                attribute = replace(attribute, in_key=in_key, nullable=nullable)
            attributes.append(attribute)
    ordered = sorted(attributes, key=lambda at: not at.in_key)  # stable: key first
    return Heading(ordered)


class Join(QueryExpression):
    """`a * b`: the natural join on all common attributes (`left=True`: a left outer join)."""

    def __init__(self, a: QueryExpression, b: QueryExpression, *, semantic_check: bool = True,
                 left: bool = False) -> None:
        if semantic_check:
            assert_join_compatibility(a.heading, b.heading)
        if left and not all(k in a.heading for k in b.primary_key):
            missing = [k for k in b.primary_key if k not in a.heading]
            raise QueryError(f"A left join keeps every row of the left operand only when it "
                             f"determines the right one; the left operand lacks "
                             f"{', '.join(missing)} of the right operand's primary key")
        self.a, self.b, self.left = a, b, left
        self._connection = _same_connection(a, b)
        self._heading = join_heading(a.heading, b.heading, left=left)

    def _base_parts(self) -> Parts:
        a, b = prepare_operands(self.a._compile(), self.b._compile(), outer=self.left)
        common = [n for n in a.columns if n in b.columns]
        on: list[ColumnElement[Any]] = [a.columns[n] == b.columns[n] for n in common]
        where = a.where if self.left else (*a.where, *b.where)
        froms = link(a, b, on, filters=b.where if self.left else (), outer=self.left)
        columns = dict(a.columns)
        columns.update((n, c) for n, c in b.columns.items() if n not in columns)
        return Parts(froms, columns, where, tables=a.tables | b.tables)

    def _base_shape(self, values: list[Any], slotted: int) -> tuple[Hashable, Any] | None:
        return _operands_shape(self, "join", (self.a, self.b), self.left, values, slotted)


# ---- projection ---------------------------------------------------------------------------
_NAME = re.compile(r"^\s*([A-Za-z_]\w*)\s*$")
_COPY = re.compile(r"^\s*\(\s*([A-Za-z_]\w*)\s*\)\s*$")


class Projection(QueryExpression):
    """`a.proj(...)`: keep, rename, copy and compute attributes (the primary key stays)."""

    def __init__(self, a: QueryExpression, attributes: Iterable[Any],
                 named: Mapping[str, Any]) -> None:
        heading = a.heading
        keep: set[str] = set()
        drop: set[str] = set()
        for item in attributes:
            if item is Ellipsis:
                keep.update(heading.secondary_attributes)
            elif isinstance(item, str) and item.strip().startswith("-"):
                drop.add(item.strip()[1:].strip())
            elif isinstance(item, str):
                keep.add(item)
            else:
                raise QueryError(f"proj takes attribute names, '...' and keyword arguments, "
                                 f"not {item!r}")
        heading.check(sorted(keep | drop), context="proj")
        key_dropped = drop & set(heading.primary_key)
        if key_dropped:
            raise QueryError(f"proj cannot drop primary-key attribute(s) "
                             f"{', '.join(sorted(key_dropped))}; rename them instead")
        renames: dict[str, str] = {}
        copies: dict[str, str] = {}
        computed: dict[str, Fragment] = {}
        for new, value in named.items():
            if not isinstance(value, str):
                raise QueryError(f"proj({new}=...) takes a string (an attribute name or an "
                                 f"SQL expression), not {value!r}")
            m = _NAME.match(value)
            if m and m.group(1) in heading:
                renames[new] = m.group(1)
                continue
            m = _COPY.match(value)
            if m and m.group(1) in heading:
                copies[new] = m.group(1)
                continue
            fragment = parse_fragment(value, heading.name_set, context=f"proj({new}=...)",
                                      json=json_names(heading))
            if fragment.has_aggregate:
                raise QueryError(f"proj({new}={value!r}) uses an aggregate function; "
                                 "aggregates belong in .aggr()")
            computed[new] = fragment
        renamed_sources = set(renames.values())
        keep = (keep | {k for k in heading.primary_key if k not in renamed_sources}) - drop
        seen = set(keep)
        for new in [*renames, *copies, *computed]:
            if new in seen:
                raise QueryError(f"proj: attribute {new!r} already exists in the result; "
                                 "choose another name")
            seen.add(new)
        items: list[tuple[str, str | None, Fragment | None]] = []
        attrs: list[Attribute] = []
        for attribute in heading.attributes:
            if attribute.name in keep:
                items.append((attribute.name, attribute.name, None))
                attrs.append(attribute)
            for new, old in renames.items():
                if old == attribute.name:
                    items.append((new, old, None))
                    attrs.append(replace(attribute, name=new))
            for new, old in copies.items():
                if old == attribute.name:
                    items.append((new, old, None))
                    attrs.append(replace(attribute, name=new, in_key=False, autoincrement=False))
        for new, fragment in computed.items():
            items.append((new, None, fragment))
            attrs.append(Attribute(name=new, type=_fragment_type(fragment, heading),
                                   nullable=True, expression=fragment))
        if not attrs:
            raise QueryError("This projection would have no attributes at all (the operand has "
                             "an empty primary key): keep or compute at least one attribute")
        self.a = a
        self.items = tuple(items)
        self._connection = a._connection
        self._heading = Heading(sorted(attrs, key=lambda at: not at.in_key))

    def _base_parts(self) -> Parts:
        parts = self.a._compile()
        source = parts.columns
        columns: dict[str, ColumnElement[Any]] = {}
        for new, old, fragment in self.items:
            columns[new] = source[old] if old is not None else \
                fragment_clause(fragment, source)  # type: ignore[arg-type]
        return parts.replace(columns=columns)

    def _base_shape(self, values: list[Any], slotted: int) -> tuple[Hashable, Any] | None:
        items = tuple((new, old, None if fragment is None else fragment_shape(fragment))
                      for new, old, fragment in self.items)
        return _operands_shape(self, "proj", (self.a,), items, values, slotted)


_TYPE_NAMES = (
    (sa.JSON, "json"), (sa.Boolean, "bool"), (sa.Integer, "int64"), (sa.Float, "float64"),
    (sa.DateTime, "datetime"), (sa.Date, "date"), (sa.Time, "time"),
    (sa.Numeric, "float64"), (sa.String, "varchar(4000)"),
)
_SAME_TYPE = re.compile(r"^\s*(?:(?:min|max|any_value)\s*\(\s*)?`?(\w+)`?\s*\)?\s*$",
                        re.IGNORECASE)


def _fragment_type(fragment: Fragment, heading: Mapping[str, Attribute]) -> str:
    """The declared type of a computed attribute, as far as it is evident ('' if not)."""
    m = _SAME_TYPE.match(fragment.text)
    if m and m.group(1) in heading and heading[m.group(1)].codec is None:
        return heading[m.group(1)].type
    for sa_type, name in _TYPE_NAMES:
        if isinstance(fragment.type, sa_type):
            return name
    return ""


# ---- aggregation --------------------------------------------------------------------------
_MATCH = "_dj_match"
_COUNT_STAR = re.compile(
    r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`)|\bcount\s*\(\s*\*\s*\)""", re.IGNORECASE)


def _count_matches(text: str) -> str:
    """count(*) -> count(<match marker>), so rows without a match count 0 in a left join."""
    return _COUNT_STAR.sub(lambda m: m.group(1) or f"count({_MATCH})", text)


class Aggregation(QueryExpression):
    """`a.aggr(b, ...)` and `dj.U(...).aggr(b, ...)`: aggregates of b per row of a (or per
    value of U's attributes), computed with GROUP BY."""

    def __init__(self, a: QueryExpression | U, b: QueryExpression, attributes: Iterable[Any],
                 named: Mapping[str, Any], *, exclude_nonmatching: bool = False) -> None:
        self.a, self.b = a, b
        if isinstance(a, U):
            heading_b = b.heading
            heading_b.check(a.attributes, context="dj.U(...).aggr")
            if attributes:
                raise QueryError("dj.U(...).aggr takes only named aggregates")
            group_names = list(a.attributes)
            group_attrs = [replace(heading_b[n], in_key=True, autoincrement=False)
                           for n in group_names]
            available = heading_b.names
            self.outer = False
            self._connection = b._connection
        else:
            assert_join_compatibility(a.heading, b.heading, what="aggregate")
            heading_a = a.heading
            keep: list[str] = []
            for item in attributes:
                if item is Ellipsis:
                    keep += heading_a.secondary_attributes
                elif isinstance(item, str):
                    heading_a.check([item], context="aggr")
                    keep.append(item)
                else:
                    raise QueryError(f"aggr takes attribute names of the grouping operand and "
                                     f"named aggregates, not {item!r}")
            group_names = list(dict.fromkeys([*heading_a.primary_key, *keep]))
            group_attrs = [heading_a[n] for n in group_names]
            available = list(dict.fromkeys([*heading_a.names, *b.heading.names]))
            self.outer = not exclude_nonmatching
            self._connection = _same_connection(a, b)
        self.available = available
        self.json = json_names(Heading([*b.heading.attributes, *group_attrs]))
        computed: dict[str, str] = {}
        attrs = list(group_attrs)
        known = {at.name: at for at in [*(b.heading.attributes), *group_attrs]}
        for new, text in named.items():
            if not isinstance(text, str):
                raise QueryError(f"aggr({new}=...) takes an SQL expression string, not {text!r}")
            if new in group_names or new in computed:
                raise QueryError(f"aggr: attribute {new!r} already exists in the result")
            fragment = parse_fragment(text, available, context=f"aggr({new}=...)",
                                      json=self.json)
            loose = fragment.attributes - set(group_names) - (
                set(a.heading.names) if not isinstance(a, U) else set())
            if not fragment.has_aggregate and loose:
                raise QueryError(
                    f"aggr({new}={text!r}) must aggregate: {', '.join(sorted(loose))} has many "
                    "values per group; use an aggregate function such as max() or count()")
            computed[new] = text
            attrs.append(Attribute(name=new, type=_fragment_type(fragment, known),
                                   nullable=True, expression=fragment))
        self.group_names = tuple(group_names)
        self.computed = computed
        self._heading = Heading(attrs)

    def _base_parts(self) -> Parts:
        """GROUP BY over `a` (left) joined with `b`.

        Inside an aggregate, an attribute common to both operands is b's column, so that the
        aggregates see only b's rows (NULL, or 0 for a count, where a row of a has no match);
        outside aggregates it is a's. Columns that appear outside aggregates are grouped too:
        a's attributes depend on a's key, and b's common columns equal a's (or are NULL) within
        each group, so this never splits a group.
        """
        b = self.b._compile()
        available = [*self.available, _MATCH] if self.outer else self.available
        fragments = {name: parse_fragment(_count_matches(text) if self.outer else text,
                                          available, json=self.json)
                     for name, text in self.computed.items()}
        if isinstance(self.a, U):
            if not b.plain:
                b = b.wrap()
            inside = outside = b.columns
            froms, where, tables = b.froms, b.where, b.tables
            grouped = [b.columns[n] for n in self.group_names]
        else:
            a, b = prepare_operands(self.a._compile(), b, outer=self.outer)
            common = [n for n in a.columns if n in b.columns]
            if self.outer:
                b, marker = _with_marker(b, common, self.b.heading)
            on: list[ColumnElement[Any]] = [a.columns[n] == b.columns[n] for n in common]
            outside = {**b.columns, **a.columns}
            inside = {**a.columns, **b.columns}
            if self.outer:
                inside[_MATCH] = marker
            where = a.where if self.outer else (*a.where, *b.where)
            froms = link(a, b, on, filters=b.where if self.outer else (), outer=self.outer)
            tables = a.tables | b.tables
            used = {n for f in fragments.values() for n in f.attributes}
            grouped = [a.columns[n] for n in self.group_names]
            grouped += [a.columns[n] for n in a.columns if n in used and n not in
                        self.group_names]
            grouped += [b.columns[n] for n in common if any(
                n in f.attributes and f.has_aggregate for f in fragments.values())]
        columns = {n: outside[n] for n in self.group_names}
        for name, fragment in fragments.items():
            columns[name] = fragment_clause(fragment, inside if fragment.has_aggregate
                                            else outside)
        return Parts(froms, columns, tuple(where), group_by=tuple(grouped), tables=tables)

    def _base_shape(self, values: list[Any], slotted: int) -> tuple[Hashable, Any] | None:
        extra = (self.group_names, tuple(self.computed.items()), self.outer,
                 tuple(self.available), self.json)
        return _operands_shape(self, "aggr", (self.a, self.b), extra, values, slotted)


def _with_marker(b: Parts, common: list[str], heading: Heading
                 ) -> tuple[Parts, ColumnElement[Any]]:
    """A column of b that is NULL exactly when a left-joined row of b has no match."""
    candidates = [*common, *(k for k in heading.primary_key if not heading[k].nullable)]
    for name in candidates:
        column = b.columns[name]
        if isinstance(column, ColumnClause) and column.table is not None:
            return b, column
    wrapped = b.wrap(extra={_MATCH: sa.literal_column("1")})
    return wrapped, wrapped.columns.pop(_MATCH)


# ---- union --------------------------------------------------------------------------------
class Union(QueryExpression):
    """`a + b` of operands with the same primary key.

    The result has every row of a, extended by b's secondary attributes where b has the same
    key, and the rows of b whose key is not in a (attributes only a has are NULL there). For
    attributes both share, a's value wins. Without secondary attributes it is a plain UNION.
    """

    def __init__(self, a: QueryExpression, b: QueryExpression) -> None:
        if set(a.primary_key) != set(b.primary_key):
            raise QueryError(
                f"The operands of a union must have the same primary key: "
                f"({', '.join(a.primary_key)}) vs ({', '.join(b.primary_key)})")
        self.a, self.b = a, b
        self._connection = _same_connection(a, b)
        attrs = list(a.heading.attributes)
        attrs += [replace(at, nullable=True) for at in b.heading.attributes if at.name not in
                  a.heading]
        attrs = [at if at.in_key or at.nullable or at.name in b.heading else
                 replace(at, nullable=True) for at in attrs]
        self._heading = Heading(attrs)

    def _base_parts(self) -> Parts:
        names = self.heading.names
        key = self.primary_key
        if len(names) == len(key):
            compound: Any = sa.union(_branch(self.a._compile(), key),
                                     _branch(self.b._compile(), key))
        else:
            a, b = prepare_operands(self.a._compile(), self.b._compile(), outer=True)
            on = [a.columns[k] == b.columns[k] for k in key]
            froms = link(a, b, on, filters=b.where, outer=True)
            merged = {n: a.columns[n] if n in a.columns else b.columns[n] for n in names}
            first = Parts(froms, merged, a.where, tables=a.tables | b.tables).select(names)
            keys_of_a = self.a.proj() if key else self.a.proj(**{_MATCH: "1"})  # existence
            rest = self.b.restrict(Not(keys_of_a), semantic_check=False)._compile()
            if not rest.plain:
                rest = rest.wrap()
            columns = {n: rest.columns[n] if n in rest.columns else sa.null() for n in names}
            second = rest.replace(columns=columns).select(names)
            compound = sa.union_all(first, second)
        derived = compound.subquery()
        return Parts(derived, {n: derived.c[n] for n in names}, tables=frozenset((derived,)))

    def _base_shape(self, values: list[Any], slotted: int) -> tuple[Hashable, Any] | None:
        return _operands_shape(self, "union", (self.a, self.b), None, values, slotted)


def _branch(parts: Parts, names: list[str]) -> sa.Select[Any]:
    """One member of a compound select (SQLite refuses ORDER BY/LIMIT inside one)."""
    if parts.ordered:
        parts = parts.wrap()
    return parts.select(names)


# ---- universal sets -----------------------------------------------------------------------
class U:
    """The universal set of the given attributes: every combination of their values.

    `dj.U('a', 'b') & expr` is the distinct combinations of a and b in expr;
    `dj.U('a') * expr` is expr with a promoted to its primary key;
    `dj.U('a').aggr(expr, n='count(*)')` groups expr by a; `dj.U().aggr(expr, ...)` summarizes
    all of expr in one row.
    """

    def __init__(self, *attributes: str) -> None:
        for name in attributes:
            if not isinstance(name, str) or not _NAME.match(name):
                raise QueryError(f"dj.U takes attribute names, not {name!r}")
        self.attributes = tuple(dict.fromkeys(attributes))

    @property
    def primary_key(self) -> list[str]:
        return list(self.attributes)

    def __repr__(self) -> str:
        return f"U({', '.join(map(repr, self.attributes))})"

    def __and__(self, other: Any) -> QueryExpression:
        if isinstance(other, U):
            return NotImplemented
        return Distinct(_operand(other, "restrict dj.U"), self.attributes)

    def __sub__(self, other: Any) -> Any:
        raise QueryError("dj.U(...) - expression would be an infinite set")

    def __mul__(self, other: Any) -> QueryExpression:
        return self._promote(_operand(other, "join dj.U"))

    def __rmul__(self, other: Any) -> QueryExpression:
        return self._promote(_operand(other, "join dj.U"))

    def _promote(self, other: QueryExpression) -> QueryExpression:
        return Rekeyed(other, self.attributes)

    def join(self, other: Any, **_: Any) -> QueryExpression:
        return self * other

    def aggr(self, group: Any, *attributes: Any, exclude_nonmatching: bool = True,
             keep_all_rows: bool | None = None, **named: str) -> QueryExpression:
        if keep_all_rows or not exclude_nonmatching:
            raise QueryError("dj.U(...).aggr has no rows of its own to keep: only the values "
                             "present in the aggregated expression appear")
        return Aggregation(self, _operand(group, "aggregate"), attributes, named)

    aggregate = aggr


class Distinct(QueryExpression):
    """`dj.U(attrs) & a`: the distinct values of attrs in a, attrs being the primary key."""

    def __init__(self, a: QueryExpression, attributes: tuple[str, ...]) -> None:
        a.heading.check(attributes, context="dj.U(...) & expression")
        if not attributes:
            raise QueryError("dj.U() & expression has no attributes; use bool(expression) to "
                             "ask whether it has rows")
        self.a, self.names = a, attributes
        self._connection = a._connection
        self._heading = a.heading.select(attributes).with_key(attributes)

    def _base_parts(self) -> Parts:
        parts = self.a._compile()
        if not parts.plain:
            parts = parts.wrap()
        return parts.replace(columns={n: parts.columns[n] for n in self.names}, distinct=True)

    def _base_shape(self, values: list[Any], slotted: int) -> tuple[Hashable, Any] | None:
        return _operands_shape(self, "distinct", (self.a,), self.names, values, slotted)


class Rekeyed(QueryExpression):
    """`dj.U(attrs) * a`: a with attrs added to its primary key."""

    def __init__(self, a: QueryExpression, attributes: tuple[str, ...]) -> None:
        a.heading.check(attributes, context="dj.U(...) * expression")
        self.a = a
        self._connection = a._connection
        key = list(dict.fromkeys([*a.primary_key, *attributes]))
        self._heading = a.heading.with_key(key)

    def _base_parts(self) -> Parts:
        return self.a._compile()

    def _base_shape(self, values: list[Any], slotted: int) -> tuple[Hashable, Any] | None:
        return _operands_shape(self, "rekey", (self.a,), tuple(self.primary_key), values,
                               slotted)
