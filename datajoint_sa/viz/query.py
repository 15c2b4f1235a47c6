"""What the app asks of a query: a page of rows, one entity, its parts and children.

Everything goes through the public algebra: a URL's key becomes a dict restriction, a column
filter becomes an SQLAlchemy condition on a typed `sa.column` with its value bound (never
pasted into SQL), sorting and paging become `fetch(order_by=..., limit=..., offset=...)`, and
the total comes from `len()`. A page never fetches more rows than its size, and never a blob.
"""

from __future__ import annotations

import datetime
import decimal
import json
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa

from ..errors import DataJointError
from ..expression import QueryExpression
from ..heading import Attribute, Heading
from ..types import INTEGER_RANGES
from .bind import is_blob

MAX_PAGE_SIZE = 500
MAX_CELL_TEXT = 2000
#: the longest value (characters) a URL parameter or form field may give
MAX_VALUE_TEXT = 1000
#: a computed attribute's integers are bound as 64-bit
_ANY_INTEGER = INTEGER_RANGES["int64"]
_FLOAT32_MAX = 3.4028234663852886e38
_INTEGER = re.compile(r"^[+-]?\d+$")


class RequestError(DataJointError):
    """A bad request from the browser (unknown attribute, unreadable value): a 400."""


# ---- values from and to the browser ----------------------------------------------------------
def coerce(attribute: Attribute, text: str) -> Any:
    """The Python value of `attribute` written as `text` in a URL or form field: refused (a
    RequestError saying why) when the attribute's type cannot hold it, before any SQL."""
    category = attribute.type_info.category if attribute.type else ""
    what = f"{attribute.name!r} ({attribute.type or 'computed'})"
    bounded(what, text)
    value = text.strip() if category not in ("char", "varchar", "text", "enum") else text
    try:
        if category == "bool":
            lowered = value.lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError
        if attribute.type and attribute.type_info.is_integer:
            if not _INTEGER.match(value):
                raise ValueError
            return _in_range(what, int(value), INTEGER_RANGES[category])
        if category in ("float32", "float64"):
            return _finite(what, text, float(value), category)
        if category == "decimal":
            return _decimal(what, text, decimal.Decimal(value), attribute.type_info.args)
        if category == "date":
            return datetime.date.fromisoformat(value)
        if category in ("datetime", "timestamp"):
            return datetime.datetime.fromisoformat(value)
        if category == "time":
            return datetime.time.fromisoformat(value)
        if category == "uuid":
            return uuid.UUID(value)
        if category == "enum" and value not in attribute.type_info.enum_values:
            raise RequestError(f"{what} must be one of "
                               f"{', '.join(attribute.type_info.enum_values)}, not {text!r}")
        if not attribute.type and _INTEGER.match(value):  # a computed attribute
            return _in_range(what, int(value), _ANY_INTEGER)
    except (ValueError, decimal.InvalidOperation, OverflowError):
        raise RequestError(f"{what}: {text!r} is not a valid "
                           f"{attribute.type or 'value'}") from None
    return value


def bounded(what: str, text: str) -> str:
    """`text`, refused when longer than MAX_VALUE_TEXT (before any parsing or SQL)."""
    if len(text) > MAX_VALUE_TEXT:
        raise RequestError(f"{what}: the value is too long ({len(text)} characters; at most "
                           f"{MAX_VALUE_TEXT})")
    return text


def _in_range(what: str, value: int, limits: tuple[int, int]) -> int:
    low, high = limits
    if not low <= value <= high:
        raise RequestError(f"{what}: {value} is out of range ({low} to {high})")
    return value


def _finite(what: str, text: str, number: float, category: str) -> float:
    if not math.isfinite(number):
        raise RequestError(f"{what}: {text.strip()!r} is not a finite number")
    if category == "float32" and abs(number) > _FLOAT32_MAX:
        raise RequestError(f"{what}: {text.strip()!r} is out of range for float32")
    return number


def _decimal(what: str, text: str, number: decimal.Decimal, args: tuple[Any, ...]
             ) -> decimal.Decimal:
    if not number.is_finite():
        raise RequestError(f"{what}: {text.strip()!r} is not a finite number")
    if len(args) >= 1:
        precision, scale = int(args[0]), int(args[1]) if len(args) > 1 else 0
        if abs(number) >= decimal.Decimal(10) ** (precision - scale):
            raise RequestError(f"{what}: {text.strip()!r} is out of range "
                               f"(fewer than {precision - scale} digits before the point)")
    return number


def key_from_params(heading: Heading, params: Mapping[str, str], prefix: str = "k.",
                    ) -> dict[str, Any]:
    """The key values of `params` (`k.attr=value`) for attributes of `heading`."""
    key: dict[str, Any] = {}
    for name, text in params.items():
        if not name.startswith(prefix):
            continue
        attr = name[len(prefix):]
        if attr in heading and not is_blob(heading[attr]):
            key[attr] = coerce(heading[attr], text)
    return key


def jsonable(value: Any) -> Any:
    """A JSON value for a cell: exact where JavaScript would round, text for the rest."""
    if value is None or isinstance(value, (bool, str)):
        return value if not isinstance(value, str) or len(value) <= MAX_CELL_TEXT \
            else value[:MAX_CELL_TEXT] + "…"
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        number = int(value)
        return number if abs(number) <= 2**53 else str(number)
    if isinstance(value, (float, np.floating)):
        real = float(value)
        return real if math.isfinite(real) else None
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, datetime.datetime):
        return value.isoformat(sep=" ")
    if isinstance(value, (datetime.date, datetime.time)):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return f"<{len(value)} bytes>"
    if isinstance(value, np.ndarray):
        return f"<array {value.dtype} {'×'.join(map(str, value.shape)) or 'scalar'}>"
    if isinstance(value, (dict, list, tuple)):
        try:
            return jsonable(json.dumps(value, default=str))
        except (TypeError, ValueError):
            return str(value)
    return jsonable(str(value))


def key_text(value: Any) -> str:
    """A key value as the text a URL carries back (the inverse of `coerce`)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, float):
        return repr(value)
    return str(jsonable(value))


# ---- filters ----------------------------------------------------------------------------------
_COMPARISON = re.compile(r"^\s*(>=|<=|!=|<>|=|>|<)\s*(.*)$", re.DOTALL)
_RANGE = re.compile(r"^\s*(.+?)\s*\.\.\s*(.+?)\s*$")
_TEXT = ("char", "varchar", "text")
_ORDERED = ("date", "datetime", "timestamp", "time", "decimal", "float32", "float64")


def filter_condition(attribute: Attribute, text: str) -> Any:
    """A restriction for one column filter as the user typed it.

    Numbers, dates and times: `5`, `>5`, `>=5`, `<5`, `<=5`, `!=5`, `1..10` (inclusive).
    Text: a substring (case-insensitive), `=exact` or `!=exact`. Enums, booleans, uuids:
    the value. Every value is a bound parameter."""
    column = sa.column(attribute.name, attribute.type_info.sa_type) if attribute.type \
        else sa.column(attribute.name)
    category = attribute.type_info.category if attribute.type else ""
    if category in _TEXT:
        match = re.match(r"^(!=|=)(.*)$", text, re.DOTALL)
        if match:
            value = match.group(2)
            return {attribute.name: value} if match.group(1) == "=" else column != value
        return column.icontains(text, autoescape=True)
    ordered = (attribute.type and (attribute.type_info.is_integer or category in _ORDERED)) \
        or not attribute.type
    if ordered:
        ranged = _RANGE.match(text)
        if ranged:
            low, high = coerce(attribute, ranged.group(1)), coerce(attribute, ranged.group(2))
            return sa.and_(column >= low, column <= high)
        compared = _COMPARISON.match(text)
        if compared:
            op, value = compared.group(1), coerce(attribute, compared.group(2))
            return {">": column > value, ">=": column >= value, "<": column < value,
                    "<=": column <= value, "!=": column != value, "<>": column != value,
                    "=": {attribute.name: value}}[op]
    return {attribute.name: coerce(attribute, text)}


def restrict_by_filters(expr: QueryExpression, filters: Mapping[str, str],
                        allowed: list[str]) -> QueryExpression:
    """`expr` restricted by every non-empty filter; filters only on `allowed` columns."""
    heading = expr.heading
    for name, text in filters.items():
        if not text or not text.strip():
            continue
        if name not in allowed:
            raise RequestError(f"cannot filter by {name!r}; filterable: "
                               f"{', '.join(allowed) or 'none'}")
        bounded(f"the filter of {name!r}", text)
        expr = expr & filter_condition(heading[name], text)
    return expr


# ---- a page of rows ---------------------------------------------------------------------------
@dataclass
class Page:
    """A page of rows; `total` is None when the count was not asked for (`more` then says
    whether rows follow)."""

    rows: list[dict[str, Any]]
    keys: list[dict[str, str]]
    total: int | None
    page: int
    size: int
    columns: list[str]
    more: bool = False

    @property
    def pages(self) -> int | None:
        return None if self.total is None else max(1, -(-self.total // self.size))

    def to_json(self) -> dict[str, Any]:
        return {"columns": self.columns, "rows": self.rows, "keys": self.keys,
                "total": self.total, "page": self.page, "size": self.size,
                "pages": self.pages, "more": self.more}


def order_by(heading: Heading, sort: str | None, descending: bool = False,
             default: str | None = None) -> list[str]:
    """The order_by list of a sort request; fetch renders it through dj.Top's sort keys
    (NULLs and ties ordered as everywhere else, the primary key last, so pages never
    overlap)."""
    items: list[str] = []
    if sort:
        if sort not in heading or is_blob(heading[sort]):
            raise RequestError(f"cannot sort by {sort!r}")
        items.append(f"{sort} desc" if descending else sort)
    elif default:
        items += [item.strip() for item in default.split(",") if item.strip()]
    return items


def page_of(expr: QueryExpression, *, columns: list[str], page: int = 1, size: int = 25,
            sort: str | None = None, descending: bool = False,
            default_sort: str | None = None, count: bool = True,
            total: int | None = None) -> Page:
    """Rows `(page-1)*size ...` of `expr` in order.

    With `count` the total comes from `len(expr)` (unless `total` is given); without it the
    page is one query of at most `size + 1` rows (the extra row only tells that more follow),
    so a page of a large table costs no more than its own rows."""
    heading = expr.heading
    size = max(1, min(int(size), MAX_PAGE_SIZE))
    page = max(1, int(page))
    if count and total is None:
        total = len(expr)
    key_names = heading.primary_key
    names = list(dict.fromkeys([*columns, *key_names]))
    rows: list[dict[str, Any]] = []
    offset = (page - 1) * size
    if total is None or (total and offset < total):
        rows = expr.fetch(*names, as_dict=True, order_by=order_by(heading, sort, descending,
                                                                  default_sort),
                          limit=size + 1 if total is None else size, offset=offset)
    more = len(rows) > size if total is None else offset + size < total
    rows = rows[:size]
    return Page(rows=[{c: jsonable(r[c]) for c in columns} for r in rows],
                keys=[{k: key_text(r[k]) for k in key_names} for r in rows],
                total=total, page=page, size=size, columns=columns, more=more)


# ---- one entity -------------------------------------------------------------------------------
def describe_value(attribute: Attribute, value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return f"<array {value.dtype} {'×'.join(map(str, value.shape)) or 'scalar'}>"
    if value is not None and is_blob(attribute) and not isinstance(value, (dict, list)):
        return f"<{type(value).__name__}>"
    return jsonable(value)


def entity(expr: QueryExpression, key: dict[str, Any]) -> dict[str, Any] | None:
    """The one row of `expr & key` (None when there is not exactly one)."""
    restricted = expr & key
    rows = restricted.fetch(as_dict=True, limit=2)
    if len(rows) != 1:
        return None
    heading = expr.heading
    return {name: describe_value(heading[name], rows[0][name]) for name in heading.names}


def related_rows(expr: QueryExpression, restriction: dict[str, Any], limit: int = 10,
                 ) -> dict[str, Any]:
    """The first rows (no blobs) and the count of `expr & restriction`."""
    heading = expr.heading
    columns = [n for n in heading.names if not is_blob(heading[n])]
    found = page_of(expr & restriction, columns=columns, size=limit)
    return {"columns": found.columns, "rows": found.rows, "total": found.total}


@dataclass
class Relation:
    """A table that depends on a detail's table: a part or a child, with how its foreign-key
    attributes are named (`pairs`: child attribute, parent attribute)."""

    label: str
    kind: str  # "part" or "child"
    query: QueryExpression
    pairs: tuple[tuple[str, str], ...]


def detail(expr: QueryExpression, key: dict[str, Any], relations: list[Relation],
           limit: int = 10) -> dict[str, Any]:
    """One entity of `expr` with the first rows of its parts and children."""
    rows = (expr & key).fetch(as_dict=True, limit=2) if key else []
    if len(rows) != 1:
        return {"entity": None, "message": "no entity selected" if not key else
                "no single entity matches the key" if rows else "no entity matches the key"}
    row = rows[0]
    heading = expr.heading
    result: dict[str, Any] = {
        "entity": [{"name": name, "value": describe_value(heading[name], row[name]),
                    "in_key": heading[name].in_key, "type": heading[name].type,
                    "comment": heading[name].comment} for name in heading.names],
        "parts": [], "children": []}
    for relation in relations:
        restriction = {child: row[parent] for child, parent in relation.pairs if parent in row}
        if len(restriction) != len(relation.pairs):
            continue  # the foreign key reaches attributes this entity does not have
        found = related_rows(relation.query, restriction, limit)
        result["parts" if relation.kind == "part" else "children"].append(
            {"table": relation.label, **found})
    return result
