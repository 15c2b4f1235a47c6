"""Fragments on PostgreSQL: sqlglot's Postgres generator plus the rewrites it needs.

PostgreSQL is strictly typed where MySQL coerces (text concatenation, numeric ROUND), raises
where MySQL yields NULL (division by zero) and compares case-sensitively where MySQL's
default collations do not; each rewrite below keeps the MySQL meaning.
"""

from __future__ import annotations

from typing import Final

from sqlglot import exp
from sqlglot.dialects.postgres import Postgres
from sqlglot.errors import UnsupportedError

from .jsonpath import JsonPathValue, kind_of, path_of
from .render import (
    DialectCompiler,
    Rewrite,
    as_int,
    call,
    nullif_zero,
    number,
    placeholder_kind,
    retype,
    string,
)


def _extract(unit: str, *, floor: bool = False) -> Rewrite:
    """YEAR(d) etc. -> CAST(EXTRACT(unit FROM d) AS INTEGER) (EXTRACT returns numeric)."""

    def rule(node: exp.Expr) -> exp.Expr:
        part: exp.Expr = exp.Extract(this=exp.var(unit), expression=node.this)
        if floor:
            part = exp.Floor(this=part)
        return as_int(part)

    return rule


def _dayofweek(node: exp.Expr) -> exp.Expr:
    return exp.Add(
        this=as_int(exp.Extract(this=exp.var("DOW"), expression=node.this)), expression=number(1)
    )


def _mod(node: exp.Expr) -> exp.Expr:
    """MySQL: x % 0 is NULL; PostgreSQL raises division by zero."""
    return exp.Mod(this=node.this, expression=nullif_zero(node.expression))


def _intdiv(node: exp.Expr) -> exp.Expr:
    """a DIV b: truncating integer division, NULL on zero, also for non-integer operands."""
    numeric = exp.DataType.build("NUMERIC")
    div = exp.IntDiv(
        this=exp.cast(node.this, numeric),
        expression=nullif_zero(exp.cast(node.expression, numeric)),
    )
    return exp.cast(div, exp.DataType.build("BIGINT"))


def _round(node: exp.Expr) -> exp.Expr:
    """ROUND(x, d) exists only for numeric in PostgreSQL."""
    if node.args.get("decimals") is None:
        return node
    node.set("this", exp.cast(node.this, exp.DataType.build("NUMERIC")))
    return node


def _concat(node: exp.Expr) -> exp.Expr:
    """CONCAT(1, 2) is '12' in MySQL; PostgreSQL's || needs text operands."""
    text = exp.DataType.build("TEXT")
    node.set("expressions", [exp.cast(e, text) for e in node.expressions])
    return node


def _group_concat(node: exp.Expr) -> exp.Expr:
    """GROUP_CONCAT of numbers works in MySQL; STRING_AGG needs text.

    With DISTINCT, PostgreSQL wants the ORDER BY terms to match the arguments, so they are
    cast too (ordering is then textual).
    """
    text = exp.DataType.build("TEXT")
    target = node.this
    order = target if isinstance(target, exp.Order) else None
    if order is not None:
        target = order.this
    if isinstance(target, exp.Distinct):
        target.set("expressions", [exp.cast(e, text) for e in target.expressions])
        for ordered in order.expressions if order is not None else []:
            ordered.set("this", exp.cast(ordered.this, text))
    else:
        target.replace(exp.cast(target.copy(), text))
    return node


def _cast(node: exp.Expr) -> exp.Expr:
    """MySQL's CAST(x AS CHAR) has no length limit; PostgreSQL's CHAR is CHAR(1)."""
    to = node.args.get("to")
    if isinstance(to, exp.DataType) and to.is_type(exp.DataType.Type.CHAR) \
            and not to.expressions:
        node.set("to", exp.DataType.build("TEXT"))
    return node


def _timestamp(x: exp.Expr) -> exp.Expr:
    return exp.cast(x, exp.DataType.build("TIMESTAMP"))


def _date_add(node: exp.Expr) -> exp.Expr:
    """A literal string is a timestamp here (MySQL reads it as a date or datetime)."""
    x = node.this
    while isinstance(x, (exp.TsOrDsToDate, exp.TsOrDsToTimestamp, exp.TsOrDsToDatetime)):
        x = x.this
    if placeholder_kind(x) == "v":
        node.set("this", _timestamp(x))
    return node


_SECONDS: Final[dict[str, int]] = {
    "SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400, "WEEK": 604800,
}
_MONTHS: Final[dict[str, int]] = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}


def _timestampdiff(node: exp.Expr) -> exp.Expr:
    """TIMESTAMPDIFF(unit, start, end): whole units from start to end, truncated toward zero
    (AGE counts calendar months the way MySQL does)."""
    unit = node.args.get("unit")
    name = unit.name.upper() if unit is not None else "DAY"
    end, start = _timestamp(node.this), _timestamp(node.expression)
    if name in _SECONDS:
        seconds = exp.Extract(this=exp.var("EPOCH"),
                              expression=exp.Paren(this=exp.Sub(this=end, expression=start)))
        count: exp.Expr = exp.Div(this=seconds, expression=number(_SECONDS[name]))
    elif name in _MONTHS:
        age = call("AGE", end, start)
        months = exp.Add(
            this=exp.Mul(this=exp.Extract(this=exp.var("YEAR"), expression=age),
                         expression=number(12)),
            expression=exp.Extract(this=exp.var("MONTH"), expression=age.copy()))
        count = exp.Div(this=exp.Paren(this=months), expression=number(_MONTHS[name]))
    else:
        raise UnsupportedError(f"the interval unit {name} is not supported")
    return exp.cast(call("TRUNC", count), exp.DataType.build("BIGINT"))


def _like(node: exp.Expr) -> exp.Expr:
    """MySQL's default collations compare case-insensitively; so does SQLite's LIKE."""
    return retype(node, exp.ILike)


def _regexp(node: exp.Expr) -> exp.Expr:
    """REGEXP is case-insensitive under MySQL's default collations -> ``~*``."""
    return retype(node, exp.RegexpILike)


def _now(node: exp.Expr) -> exp.Expr:
    """MySQL's NOW() is a zone-less local timestamp, i.e. PostgreSQL's LOCALTIMESTAMP."""
    return exp.Localtimestamp()


def _json_value(node: exp.Expr) -> exp.Expr:
    """A path into a jsonb attribute: ``#>`` with the path as a text[] literal, and
    JSONB_TYPEOF to keep the values of the path's kind (jsonb casts to numbers and booleans
    exist since PostgreSQL 11)."""
    path = string("{" + ",".join(f'"{step}"' for step in path_of(node)) + "}")

    def value() -> exp.Expr:
        return exp.JSONBExtract(this=node.this.copy(), expression=path.copy())

    def kind_is(name: str) -> exp.Expr:
        return exp.EQ(this=call("JSONB_TYPEOF", value()), expression=string(name))

    kind = kind_of(node)
    if kind == "number":
        return exp.Case().when(kind_is("number"),
                               exp.cast(value(), exp.DataType.build("DOUBLE PRECISION")))
    if kind == "text":
        return exp.Case().when(kind_is("string"), exp.JSONBExtractScalar(
            this=node.this.copy(), expression=path.copy()))
    if kind == "bool":
        return exp.Case().when(kind_is("boolean"),
                               exp.cast(value(), exp.DataType.build("BOOLEAN")))
    return exp.Nullif(this=value(), expression=exp.cast(string("null"),
                                                          exp.DataType.build("JSONB")))


REWRITES: Final[dict[type[exp.Expr], Rewrite]] = {
    JsonPathValue: _json_value,
    exp.Year: _extract("YEAR"),
    exp.Month: _extract("MONTH"),
    exp.Day: _extract("DAY"),
    exp.DayOfMonth: _extract("DAY"),
    exp.Hour: _extract("HOUR"),
    exp.Minute: _extract("MINUTE"),
    exp.Second: _extract("SECOND", floor=True),
    exp.DayOfWeek: _dayofweek,
    exp.Mod: _mod,
    exp.IntDiv: _intdiv,
    exp.Round: _round,
    exp.Concat: _concat,
    exp.GroupConcat: _group_concat,
    exp.Like: _like,
    exp.RegexpLike: _regexp,
    exp.CurrentTimestamp: _now,
    exp.Cast: _cast,
    exp.DateAdd: _date_add,
    exp.DateSub: _date_add,
    exp.TimestampDiff: _timestampdiff,
}

COMPILER: Final = DialectCompiler("postgres", Postgres(), REWRITES)
