"""Restriction conditions -> SQLAlchemy boolean clauses.

A condition is checked and normalised once, when it is applied (`A & cond`), into a small
immutable tree (`Equal`, `In`, `Text`, `Or`, `And`, `Negation`, `Semijoin`, `Clause`, or a
plain bool); unknown attributes and unparsable fragments are errors at that moment, and a
DataFrame or dict the caller mutates later cannot change the query. The tree is turned into a
clause at compile time, against the column expressions of whatever the restricted
expression compiles to. Values are always bound parameters.
"""

from __future__ import annotations

import datetime
import math
import re
import uuid
from collections.abc import Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.sql import operators, visitors
from sqlalchemy.sql.elements import BindParameter, ColumnClause, ColumnElement

from .errors import DataJointError, QueryError, UnknownAttributeError
from .heading import Attribute, Heading
from .sqlexpr import Fragment, fragment_clause, parse_fragment
from .sqlexpr.core import json_equal, json_value
from .sqlexpr.jsonpath import parse_path
from .values import (
    NATIVE,
    TEXT_CATEGORIES,
    as_text,
    coerce,
    family_of,
    is_pandas_missing,
    refused,
    time_of_day,
)

if TYPE_CHECKING:
    from .expression import Parts, QueryExpression

__all__ = ["AndList", "Not", "Top", "assert_join_compatibility", "condition_shape", "normalize",
           "to_clause"]


# ---- the public condition helpers -------------------------------------------------------------
class AndList(list):
    """Conditions combined with AND (every other collection is combined with OR)."""

    def append(self, restriction: Any) -> None:
        if isinstance(restriction, AndList):
            self.extend(restriction)
        else:
            super().append(restriction)


class Not:
    """The negation of a condition: `A & dj.Not(cond)` is `A - cond`."""

    def __init__(self, restriction: Any) -> None:
        self.restriction = restriction

    def __repr__(self) -> str:
        return f"Not({self.restriction!r})"


_ORDER_ITEM = re.compile(
    r"^\s*(?P<name>\w+(?:\s*(?:\.\s*(?:\w+|`[^`]*`)|\[\s*\d+\s*\]))*)"
    r"(?:\s+(?P<dir>asc|desc))?\s*$", re.IGNORECASE)


def json_names(heading: Heading) -> frozenset[str]:
    """The json attributes of a heading: fragments, dicts and order_by read paths in them
    (worked out once per heading)."""
    names = heading.memo.get("json")
    if names is None:
        names = heading.memo["json"] = frozenset(
            a.name for a in heading.attributes
            if a.type and a.codec is None and a.type_info.category == "json")
    return names


@dataclass(frozen=True)
class Top:
    """The first `limit` rows in `order_by` order after skipping `offset` rows.

    `order_by` takes attribute names, optionally followed by ``desc``/``asc``, and ``"KEY"``
    for the primary key. The primary key is always appended as a tie-breaker, and NULLs sort
    first in ascending and last in descending order, so every backend picks the same rows.
    """

    limit: int | None = 1
    order_by: str | Sequence[str] | None = "KEY"
    offset: int = 0

    def __post_init__(self) -> None:
        if self.limit is not None and (not isinstance(self.limit, (int, np.integer))
                                       or isinstance(self.limit, bool) or self.limit < 0):
            raise QueryError(f"limit must be a non-negative integer or None, "
                             f"not {self.limit!r}")
        offset = self.offset or 0
        if not isinstance(offset, (int, np.integer)) or isinstance(offset, bool) or offset < 0:
            raise QueryError(f"offset must be a non-negative integer, not {self.offset!r}")
        object.__setattr__(self, "offset", int(offset))
        order: Any = self.order_by if self.order_by is not None else "KEY"
        order = tuple(order) if isinstance(order, (list, tuple)) else (order,)
        if not all(isinstance(item, str) for item in order):
            raise QueryError(f"order_by takes attribute names ('attr', 'attr desc', 'KEY'), "
                             f"not {self.order_by!r}")
        object.__setattr__(self, "order_by", order)

    def resolve(self, heading: Heading) -> TopSpec:
        """The ordering as sort keys checked against the heading, ending with the key."""
        return TopSpec(sort_keys(self.order_by or (), heading),
                       None if self.limit is None else int(self.limit), self.offset)


@dataclass(frozen=True)
class SortKey:
    """One ORDER BY term: an attribute and its direction.

    Every ordering (fetch's order_by, dj.Top, previews, the web app's sort) is a tuple of
    sort keys rendered by one function (`expression.order_terms`), so the same request orders
    NULLs and ties the same way on every backend.
    """

    name: str
    descending: bool = False
    values: tuple[Fragment, ...] = ()  # a JSON path: sort by these values of `name`


def sort_keys(order_by: Sequence[str], heading: Heading) -> tuple[SortKey, ...]:
    """`order_by` items ('attr', 'attr desc', 'KEY') as sort keys, each attribute once, with
    the primary key appended as the tie-breaker so that an order is always total."""
    items: list[SortKey] = []
    for text in order_by:
        m = _ORDER_ITEM.match(text) if isinstance(text, str) else None
        if not m:
            raise QueryError(f"Cannot read the order_by item {text!r}: write 'attr', "
                             "'attr desc' or 'KEY'")
        desc = (m.group("dir") or "").lower() == "desc"
        path = parse_path(m.group("name"), heading.names, json_names(heading),
                          context="order_by")
        if path is not None:  # numbers (numerically), after strings, after anything else
            name, steps = path
            items.append(SortKey(m.group("name").strip(), desc,
                                 (json_value(name, steps, "number"),
                                  json_value(name, steps, "text"))))
            continue
        names = heading.primary_key if m.group("name") == "KEY" else [m.group("name")]
        heading.check(names, context="order_by")
        items += [SortKey(n, desc) for n in names]
    seen: set[str] = set()
    unique = []
    for key in [*items, *(SortKey(k) for k in heading.primary_key)]:
        if key.name not in seen:
            seen.add(key.name)
            unique.append(key)
    return tuple(unique)


@dataclass(frozen=True)
class TopSpec:
    """A Top resolved against a heading (internal)."""

    order: tuple[SortKey, ...]
    limit: int | None
    offset: int


class Permissive:
    """A condition applied without the semantic check (`A ^ B`, `restrict(..., False)`)."""

    def __init__(self, restriction: Any) -> None:
        self.restriction = restriction


# ---- the normalised tree ----------------------------------------------------------------------
@dataclass(frozen=True)
class Equal:
    """Attribute equality (from a dict, a numpy record or a DataFrame row); None is IS NULL."""

    items: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class In:
    """Rows of key values: `(a, b) IN ((1, 2), (3, 4))` (many dicts with the same keys)."""

    names: tuple[str, ...]
    rows: tuple[tuple[Any, ...], ...]


@dataclass(frozen=True)
class Text:
    """A parsed SQL fragment."""

    fragment: Fragment


@dataclass(frozen=True)
class Or:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class And:
    items: tuple[Any, ...]


@dataclass(frozen=True)
class Negation:
    item: Any


@dataclass(frozen=True, eq=False)
class Semijoin:
    """Rows with a match in `expr` on the common attributes (EXISTS)."""

    expr: QueryExpression
    common: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Clause:
    """A user's SQLAlchemy expression; `names` are the attributes it references."""

    element: ColumnElement[Any]
    names: tuple[str, ...]


# ---- the semantic check -----------------------------------------------------------------------
def assert_join_compatibility(left: Heading, right: Heading, *, what: str = "join") -> None:
    """Refuse matching attributes that merely share a name.

    A common attribute must be in the primary key of at least one operand, and must originate
    in the same table attribute on both sides (its lineage through foreign keys).
    """
    for name in left:
        if name not in right:
            continue
        a, b = left[name], right[name]
        if not a.in_key and not b.in_key:
            raise QueryError(
                f"Cannot {what} on attribute {name!r}: it is a secondary attribute in both "
                "operands, so matching on it would relate rows that merely share a value. "
                "Rename it in one operand with .proj(), or skip the check with `@` / "
                "join(..., semantic_check=False).")
        if a.lineage != b.lineage:
            raise QueryError(
                f"Cannot {what} on attribute {name!r}: it comes from different tables on each "
                f"side ({a.lineage or 'a computed attribute'} vs "
                f"{b.lineage or 'a computed attribute'}), so the two are unrelated namesakes. "
                "Rename one of them with .proj(), or skip the check with `@` / "
                "join(..., semantic_check=False).")


# ---- normalising ------------------------------------------------------------------------------
def normalize(condition: Any, heading: Heading, *, semantic_check: bool = True) -> Any:
    """The condition checked against `heading` as a normalised tree, True or False.

    Raises UnknownAttributeError / QueryError (naming the attribute or fragment) for a bad
    condition; runs no SQL.
    """
    if type(condition) is dict:  # the most common conditions first: a key, a string
        return _equal(condition.items(), heading)
    if type(condition) is str:
        return _text(condition, heading)
    from .expression import QueryExpression, U  # back-edge: a query restricts a query

    if isinstance(condition, Permissive):
        return normalize(condition.restriction, heading, semantic_check=False)
    if isinstance(condition, Not):
        inner = normalize(condition.restriction, heading, semantic_check=semantic_check)
        return (not inner) if isinstance(inner, bool) else \
            inner.item if isinstance(inner, Negation) else Negation(inner)
    if isinstance(condition, Top):
        raise QueryError("dj.Top cannot be combined with other conditions; apply it on its own")
    if isinstance(condition, (bool, np.bool_)):
        return bool(condition)
    if condition is None:
        return False
    if isinstance(condition, str):
        return _text(condition, heading)
    if isinstance(condition, AndList):
        return _and([normalize(c, heading, semantic_check=semantic_check) for c in condition])
    if isinstance(condition, U):
        return True
    if isinstance(condition, type) and issubclass(condition, QueryExpression):
        condition = condition()
    if isinstance(condition, QueryExpression):
        if semantic_check:
            assert_join_compatibility(heading, condition.heading, what="restrict")
        common = tuple(n for n in heading.names if n in condition.heading)
        return Semijoin(condition, common)
    if isinstance(condition, Mapping):
        return _equal(condition.items(), heading)
    if isinstance(condition, np.void) and condition.dtype.names:
        return _equal(((n, condition[n]) for n in condition.dtype.names), heading)
    if isinstance(condition, ColumnElement):
        return _clause(condition, heading)
    import pandas as pd  # a dependency

    if isinstance(condition, pd.DataFrame):
        frame = condition
        if not isinstance(frame.index, pd.RangeIndex) or frame.index.name is not None:
            frame = frame.reset_index()
        return _or_rows(frame.to_dict("records"), heading, semantic_check)
    if isinstance(condition, np.ndarray):
        if condition.dtype.names:
            names = condition.dtype.names
            return _or_rows([dict(zip(names, row)) for row in condition.tolist()], heading,
                            semantic_check)
        return _or_rows(list(condition), heading, semantic_check)
    if isinstance(condition, (list, tuple, set, frozenset)):
        return _or_rows(list(condition), heading, semantic_check)
    raise QueryError(f"Cannot restrict by {type(condition).__name__} {condition!r}: use a dict, "
                     "a string, a list (OR), dj.AndList, dj.Not, another query, a record "
                     "array, a DataFrame, a bool or an SQLAlchemy expression")


def _text(condition: str, heading: Heading) -> Text:
    fragment = parse_fragment(condition, heading.name_set, context="restriction",
                              condition=True, json=json_names(heading))
    if fragment.has_aggregate:
        raise QueryError(f"restriction {condition!r} uses an aggregate function; restrict "
                         "the result of .aggr() by the aggregated attribute instead")
    return Text(fragment)


def _and(items: list[Any]) -> Any:
    if any(item is False for item in items):
        return False
    items = [item for item in items if item is not True]
    if not items:
        return True
    return items[0] if len(items) == 1 else And(tuple(items))


def _or_rows(conditions: list[Any], heading: Heading, semantic_check: bool) -> Any:
    """OR of conditions; many dicts over the same attributes become one IN."""
    if len(conditions) > 1 and all(isinstance(c, Mapping) for c in conditions):
        rows = [_equal(c.items(), heading) for c in conditions]
        if any(r is True for r in rows):
            return True
        if not all(isinstance(r, Equal) for r in rows):  # paths into json attributes
            return Or(tuple(rows))
        names = tuple(n for n, _ in rows[0].items)
        if all(tuple(n for n, _ in r.items) == names and all(v is not None for _, v in r.items)
               for r in rows):
            unique = tuple(dict.fromkeys(tuple(v for _, v in r.items) for r in rows))
            return In(names, unique)
        return Or(tuple(rows))
    items = [normalize(c, heading, semantic_check=semantic_check) for c in conditions]
    if any(item is True for item in items):
        return True
    items = [item for item in items if item is not False]
    if not items:
        return False
    return items[0] if len(items) == 1 else Or(tuple(items))


def _equal(items: Iterable[tuple[Any, Any]], heading: Heading) -> Any:
    pairs: list[tuple[str, Any]] = []
    paths: list[Text] = []
    for name, value in items:
        if not isinstance(name, str):
            continue
        if name in heading:
            pairs.append((name, _bind_value(heading, name, value)))
        elif "." in name or "[" in name:  # a path into a json attribute
            path = parse_path(name, heading.names, json_names(heading),
                              context="dict restriction")
            if path is not None:
                paths.append(Text(json_equal(*path, value, context="dict restriction")))
    equal = Equal(tuple(pairs)) if pairs else True
    return _and([equal, *paths]) if paths else equal


_MISSING_TYPES = ("", None)


def _bind_value(heading: Heading, name: str, value: Any) -> Any:
    """A Python value the column type can bind (numpy scalars, ISO strings for dates)."""
    attribute = heading[name]
    if attribute.type not in _MISSING_TYPES and (attribute.codec is not None
                                                 or attribute.type_info.category == "json"):
        raise QueryError(f"Cannot restrict by attribute {name!r} of type {attribute.type}: "
                         "blob, attachment and json values cannot be compared in SQL")
    if is_pandas_missing(type(value)):  # pd.NA, pd.NaT: NULL
        return None
    if isinstance(value, np.generic):
        if isinstance(value, np.datetime64):
            import pandas as pd

            value = None if np.isnat(value) else pd.Timestamp(value).to_pydatetime()
        else:
            value = value.item()
    elif type(value).__name__ == "Timestamp":  # pandas
        value = value.to_pydatetime()
    elif isinstance(value, (list, tuple, set, frozenset, dict, np.ndarray)):
        raise QueryError(f"Cannot restrict by {name}={value!r}: a dict restriction takes one "
                         f"value per attribute; for any of several values restrict by a list "
                         f"of dicts, e.g. [{{'{name}': v}} for v in values]")
    if isinstance(value, float) and math.isnan(value):
        return None
    if value is None or attribute.type in _MISSING_TYPES:
        return value
    info = attribute.type_info
    category = info.category
    try:
        if isinstance(value, str) and (info.is_integer or category in ("float32", "float64",
                                                                        "decimal")):
            # the same on every backend (PostgreSQL would refuse integer = varchar)
            text = value.strip()
            return int(text) if info.is_integer else \
                Decimal(text) if category == "decimal" else float(text)
        if category == "date":
            if isinstance(value, str):
                return datetime.date.fromisoformat(value.strip())
            if isinstance(value, datetime.datetime):
                return value.date()
        elif category in ("datetime", "timestamp"):
            if isinstance(value, str):
                return datetime.datetime.fromisoformat(value.strip())
            if isinstance(value, datetime.date) and not isinstance(value, datetime.datetime):
                return datetime.datetime.combine(value, datetime.time())
        elif category == "time" and isinstance(value, str):
            return datetime.time.fromisoformat(value.strip())
        elif category == "uuid" and not isinstance(value, uuid.UUID):
            return uuid.UUID(bytes=value) if isinstance(value, bytes) else uuid.UUID(str(value))
        return _as_stored_kind(attribute, value)
    except (ValueError, ArithmeticError):
        raise QueryError(f"Cannot restrict attribute {name!r} ({attribute.type}) by "
                         f"{value!r}: not a valid value of that type") from None
    except DataJointError as error:  # "restriction: attribute ... cannot hold ...: why"
        raise QueryError(str(error)) from None
    return value


def _as_stored_kind(attribute: Attribute, value: Any) -> Any:
    """`value` converted to the kind of Python value the attribute stores, as insert
    converts it (`5` -> '5' for text, `True` -> 1 for numbers, '1.5' -> 1.5), or a
    DataJointError for a value of another kind (a date for a number, text for bytes).
    Left to the servers, PostgreSQL refused such a comparison where SQLite and MariaDB
    cast one side their own ways, and matched different rows."""
    category = attribute.type_info.category
    family = family_of(category)
    if category == "time" and isinstance(value, datetime.timedelta):
        return time_of_day(attribute, value, "restriction")  # as insert stores it
    if family is not None:
        if type(value) is bool and family in ("int", "float", "decimal"):
            return int(value)
        if type(value) not in NATIVE[family]:
            return coerce(attribute, family, value, "restriction")
    elif category in TEXT_CATEGORIES and not isinstance(value, str):
        return as_text(attribute, value, "restriction")
    elif category == "bytes" and not isinstance(value, (bytes, bytearray, memoryview)):
        raise refused(attribute, value, "restriction", "bytes attributes take bytes")
    return value


def _clause(element: ColumnElement[Any], heading: Heading) -> Clause:
    names: list[str] = []
    for node in visitors.iterate(element):
        if isinstance(node, ColumnClause) and not isinstance(node, sa.sql.elements.Label):
            if node.name not in heading:
                raise UnknownAttributeError(
                    f"Unknown attribute {node.name!r} in the SQLAlchemy restriction; known: "
                    f"{', '.join(heading.names)}")
            names.append(node.name)
    return Clause(element, tuple(dict.fromkeys(names)))


# ---- compiling --------------------------------------------------------------------------------
def to_clause(node: Any, parts: Parts) -> ColumnElement[Any]:
    """The normalised condition as a boolean clause over the columns of `parts`."""
    columns = parts.columns
    if node is True:
        return sa.true()
    if node is False:
        return sa.false()
    if isinstance(node, Equal):
        terms = [columns[n].is_(None) if v is None else
                 columns[n] == (v.bind(columns[n], operators.eq) if isinstance(v, Slot) else v)
                 for n, v in node.items]
        return terms[0] if len(terms) == 1 else sa.and_(*terms)
    if isinstance(node, In):
        targets = [columns[n] for n in node.names]
        rows: list[Any] = list(node.rows)
        if rows and isinstance(rows[0][0], Slot):  # a cached statement's shape: named binds
            rows = [tuple(v.bind(c, operators.in_op) for v, c in zip(row, targets))
                    for row in rows]
        if len(node.names) == 1:
            return targets[0].in_([row[0] for row in rows])
        return sa.tuple_(*targets).in_(rows)
    if isinstance(node, Text):
        return fragment_clause(node.fragment, columns)
    if isinstance(node, Or):
        return sa.or_(*(to_clause(item, parts) for item in node.items))
    if isinstance(node, And):
        return sa.and_(*(to_clause(item, parts) for item in node.items))
    if isinstance(node, Negation):
        return sa.not_(to_clause(node.item, parts))
    if isinstance(node, Semijoin):
        return _exists(node, parts)
    if isinstance(node, Clause):
        def replace(element: Any) -> Any:
            if isinstance(element, ColumnClause) and element.name in node.names:
                return columns[element.name]
            return None

        return visitors.replacement_traverse(node.element, {}, replace)  # type: ignore[call-overload]
    raise QueryError(f"unknown condition {node!r}")  # pragma: no cover


def _exists(node: Semijoin, parts: Parts) -> ColumnElement[Any]:
    """EXISTS over the restricting expression, matched on the common attributes.

    A plain restricting query (no grouping, distinct or limit) whose tables do not appear in
    the restricted one is inlined: EXISTS (SELECT 1 FROM b WHERE b.k = a.k AND ...). Anything
    else is matched through a derived table, so its own tables never correlate with ours.
    """
    inner = node.expr._compile()
    one: ColumnElement[Any] = sa.literal_column("1")
    if inner.plain and not (inner.tables & parts.tables):
        match = [inner.columns[n] == parts.columns[n] for n in node.common]
        select = sa.select(one).select_from(inner.froms).where(*inner.where, *match)
        return sa.exists(select.correlate_except(*inner.tables))
    if not node.common and inner.group_by != ():
        select = inner.select().with_only_columns(one).correlate(None)
        return sa.exists(select)
    if not node.common:  # an aggregate without GROUP BY has one row even over no rows:
        # keep its aggregates (dropping them would leave a plain, possibly empty, SELECT)
        derived = inner.select().correlate(None).subquery()
        return sa.exists(sa.select(one).select_from(derived))
    derived = inner.select(list(node.common)).subquery()
    match = [derived.c[n] == parts.columns[n] for n in node.common]
    return sa.exists(sa.select(one).select_from(derived).where(*match))


# ---- shapes (cached statements) ---------------------------------------------------------------
#: a restriction by more rows than this is not cached: its SQL would differ for every count
MAX_CACHED_IN_ROWS = 32


class Slot:
    """A value of a condition in a cached statement's shape (see `statements.py`): bound
    under a name of its own, `djslot<index>`, so that the statement's SQL is the same for
    every value and each run binds the values of its own conditions in their places."""

    __slots__ = ("index", "value")

    def __init__(self, index: int, value: Any) -> None:
        self.index = index
        self.value = value

    def bind(self, column: ColumnElement[Any], operator: Any) -> BindParameter[Any]:
        """The bind SQLAlchemy makes for `column <operator> value`, under the slot's name
        (the same type, so the same bind processor)."""
        return sa.bindparam(f"djslot{self.index}", self.value,
                            type_=column.type.coerce_compared_value(operator, self.value))


def _take(values: list[Any], value: Any, slotted: int) -> Any:
    """Append a condition's value to `values`; a Slot in its place when `slotted`."""
    slot = Slot(len(values), value) if slotted else value
    values.append(value)
    return slot


def fragment_shape(fragment: Fragment) -> Hashable:
    """A fragment's part of a shape: its text and its literals (a dict restriction of a json
    path keeps the value out of the text)."""
    return fragment, tuple(value for value, _ in fragment._literals)


def condition_shape(node: Any, values: list[Any], slotted: int
                    ) -> tuple[Hashable, Any] | None:
    """The shape of a normalised condition: a key equal for every condition that compiles
    to the same SQL with other values (the values are appended to `values`, in a fixed
    order), and the condition itself, or with `slotted` a copy holding Slots instead of the
    values. None: not cached (a user's SQLAlchemy clause, a long IN list)."""
    if node is True or node is False:
        return node, node
    if isinstance(node, Equal):
        kinds = tuple((n, None if v is None else type(v)) for n, v in node.items)
        items = tuple((n, v if v is None else _take(values, v, slotted)) for n, v in node.items)
        return ("=", kinds), Equal(items) if slotted else node
    if isinstance(node, In):
        if not node.rows or len(node.rows) > MAX_CACHED_IN_ROWS:
            return None
        types = tuple(type(v) for row in node.rows for v in row)
        rows = tuple(tuple(_take(values, v, slotted) for v in row) for row in node.rows)
        return ("in", node.names, len(rows), types), In(node.names, rows) if slotted else node
    if isinstance(node, Text):
        return ("text", fragment_shape(node.fragment)), node
    if isinstance(node, (Or, And)):
        shapes = [condition_shape(item, values, slotted) for item in node.items]
        if any(s is None for s in shapes):
            return None
        parts = [s for s in shapes if s is not None]
        return ((type(node).__name__, tuple(s[0] for s in parts)),
                type(node)(tuple(s[1] for s in parts)) if slotted else node)
    if isinstance(node, Negation):
        inner = condition_shape(node.item, values, slotted)
        return None if inner is None else (("not", inner[0]),
                                           Negation(inner[1]) if slotted else node)
    if isinstance(node, Semijoin):
        shape = node.expr._shape(values, slotted)
        return None if shape is None else (("semijoin", shape[0], node.common),
                                           Semijoin(shape[1], node.common) if slotted else node)
    if isinstance(node, TopSpec):
        return ("top", node.order, node.limit, node.offset), node
    return None  # a Clause: the user's SQLAlchemy expression
