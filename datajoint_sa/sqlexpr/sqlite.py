"""Fragments on SQLite: sqlglot's SQLite generator plus the rewrites it needs.

SQLite has no date-part functions, no VAR/STDDEV, optional math functions and a UTC clock;
each rewrite below says which MySQL semantics it keeps.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Mapping
from typing import Final

from sqlglot import exp
from sqlglot.dialects.sqlite import SQLite
from sqlglot.errors import UnsupportedError

from .jsonpath import JsonPathValue, dollar_path, kind_of, path_of
from .render import (
    DialectCompiler,
    Rewrite,
    as_int,
    call,
    nullif_zero,
    number,
    string,
    unwrap_date,
)

_STRFTIME: Final[dict[type[exp.Expr], str]] = {
    exp.Year: "%Y",
    exp.Month: "%m",
    exp.Day: "%d",
    exp.DayOfMonth: "%d",
    exp.Hour: "%H",
    exp.Minute: "%M",
    exp.Second: "%S",
}


def _datepart(node: exp.Expr) -> exp.Expr:
    """YEAR(d) etc. -> CAST(STRFTIME('%Y', d) AS INTEGER)."""
    return as_int(call("STRFTIME", string(_STRFTIME[type(node)]), unwrap_date(node.this)))


def _dayofweek(node: exp.Expr) -> exp.Expr:
    """DAYOFWEEK(d) (1 = Sunday) -> STRFTIME('%w', d) + 1."""
    return exp.Add(
        this=as_int(call("STRFTIME", string("%w"), unwrap_date(node.this))), expression=number(1)
    )


def _datediff(node: exp.Expr) -> exp.Expr:
    """DATEDIFF(a, b) counts calendar days: compare dates, not instants."""
    unit = node.args.get("unit")
    if unit is not None and unit.name.upper() not in ("DAY", ""):
        return node
    a = call("JULIANDAY", call("DATE", node.this))
    b = call("JULIANDAY", call("DATE", node.expression))
    return as_int(exp.Paren(this=exp.Sub(this=a, expression=b)))


def _if(node: exp.Expr) -> exp.Expr:
    """IF(c, a, b) -> CASE (IIF needs SQLite >= 3.32)."""
    if isinstance(node.parent, exp.Case):  # sqlglot stores CASE's WHEN branches as If nodes
        return node
    case = exp.Case().when(node.this, node.args["true"])
    false = node.args.get("false")
    return case.else_(false) if false is not None else case


def _variance(node: exp.Expr, *, sample: bool, root: bool) -> exp.Expr:
    """SQLite has no VAR_*/STDDEV_*: compute from sums (NULL for too few rows, like MySQL)."""
    x = node.this

    def y() -> exp.Expr:
        return exp.cast(x.copy(), exp.DataType.build("REAL"))

    if sample:
        n = exp.Count(this=y())
        sum_sq = exp.Sum(this=exp.Mul(this=y(), expression=y()))
        sq_sum = exp.Mul(this=exp.Sum(this=y()), expression=exp.Sum(this=y()))
        num = exp.Sub(this=sum_sq, expression=exp.Div(this=sq_sum, expression=n))
        den = nullif_zero(exp.Sub(this=exp.Count(this=y()), expression=number(1)))
        var: exp.Expr = exp.Div(this=exp.Paren(this=num), expression=den)
    else:
        mean_sq = exp.Avg(this=exp.Mul(this=y(), expression=y()))
        sq_mean = exp.Mul(this=exp.Avg(this=y()), expression=exp.Avg(this=y()))
        var = exp.Sub(this=mean_sq, expression=sq_mean)
    var = call("MAX", exp.Paren(this=var), number(0.0))  # rounding can dip below zero
    return call("SQRT", var) if root else var


def _like(node: exp.Expr) -> exp.Expr:
    """MySQL and PostgreSQL treat backslash as LIKE's escape character; SQLite needs ESCAPE."""
    if isinstance(node.parent, exp.Escape):
        return node
    return exp.Escape(this=node, expression=string("\\"))


def _regexp(node: exp.Expr) -> exp.Expr:
    """Case-insensitive like MySQL's default collations.

    SQLAlchemy's pysqlite dialect registers ``regexp()`` as a case-sensitive ``re.search``;
    Python's inline ``(?i)`` flag fixes that without another user-defined function.
    """
    pattern = exp.DPipe(this=string("(?i)"), expression=node.expression)
    node.set("expression", exp.Paren(this=pattern))
    return node


def _floor_ceil(node: exp.Expr) -> exp.Expr:
    """FLOOR/CEIL without functions: SQLAlchemy's pysqlite ``floor()`` is not NULL-safe and
    SQLite's own math functions are optional.  CAST truncates toward zero; adjust by one."""
    x = node.this
    trunc = as_int(x.copy())
    if isinstance(node, exp.Floor):
        return exp.Sub(
            this=trunc, expression=exp.Paren(this=exp.LT(this=x, expression=trunc.copy()))
        )
    return exp.Add(this=trunc, expression=exp.Paren(this=exp.GT(this=x, expression=trunc.copy())))


def _group_concat(node: exp.Expr) -> exp.Expr:
    """ORDER BY inside GROUP_CONCAT needs SQLite 3.44; refuse rather than ignore it."""
    if isinstance(node.this, exp.Order) and sqlite3.sqlite_version_info < (3, 44, 0):
        raise UnsupportedError(
            f"GROUP_CONCAT(... ORDER BY ...) needs SQLite 3.44+, this is {sqlite3.sqlite_version}"
        )
    return node


def _now(node: exp.Expr) -> exp.Expr:
    """MySQL's NOW() is local time; SQLite's CURRENT_TIMESTAMP is UTC."""
    return call("DATETIME", string("now"), string("localtime"))


def _today(node: exp.Expr) -> exp.Expr:
    return call("DATE", string("now"), string("localtime"))


#: MySQL interval unit -> (SQLite date modifier, multiplier)
_MODIFIERS: Final[dict[str, tuple[str, int]]] = {
    "SECOND": ("seconds", 1), "MINUTE": ("minutes", 1), "HOUR": ("hours", 1),
    "DAY": ("days", 1), "WEEK": ("days", 7), "MONTH": ("months", 1),
    "QUARTER": ("months", 3), "YEAR": ("years", 1),
}
_SECONDS: Final[dict[str, int]] = {
    "SECOND": 1, "MINUTE": 60, "HOUR": 3600, "DAY": 86400, "WEEK": 604800,
}
_MONTHS: Final[dict[str, int]] = {"MONTH": 1, "QUARTER": 3, "YEAR": 12}


def _unit(node: exp.Expr, known: Mapping[str, object]) -> str:
    unit = node.args.get("unit")
    name = unit.name.upper() if unit is not None else "DAY"
    if name not in known:
        raise UnsupportedError(f"the interval unit {name} is not supported")
    return name


def _date_add(node: exp.Expr) -> exp.Expr:
    """DATE_ADD/DATE_SUB (and ``x +/- INTERVAL``): date()/datetime() with a modifier.

    As in MySQL, a date plus days, months or years stays a date; anything else is a
    datetime, in the same text form as stored datetimes (their fraction of a second kept),
    so comparisons with stored values stay right.
    """
    word, factor = _MODIFIERS[_unit(node, _MODIFIERS)]
    amount: exp.Expr = exp.Paren(this=node.expression)
    if factor != 1:
        amount = exp.Mul(this=amount, expression=number(factor))
    if isinstance(node, exp.DateSub):
        amount = exp.Neg(this=exp.Paren(this=amount))
    modifier = exp.DPipe(this=exp.cast(amount, exp.DataType.build("TEXT")),
                         expression=string(f" {word}"))
    x = unwrap_date(node.this)
    if word != "seconds" and word != "minutes" and word != "hours" and word != "days":
        return _add_months(x, amount, 12 if word == "years" else 1)
    moved = exp.DPipe(this=call("DATETIME", x, modifier),
                      expression=call("SUBSTR", x.copy(), number(20)))
    if word == "days":
        is_date = exp.EQ(this=call("LENGTH", x.copy()), expression=number(10))
        return exp.Case().when(is_date, call("DATE", x.copy(), modifier.copy())).else_(moved)
    return moved


def _add_months(x: exp.Expr, amount: exp.Expr, factor: int) -> exp.Expr:
    """Months (or years) as MySQL adds them: the 31st plus a month is the month's last day,
    where SQLite's own modifier rolls over into the next month."""
    months: exp.Expr = amount if factor == 1 else exp.Mul(this=amount, expression=number(factor))
    text = exp.DataType.build("TEXT")

    def first(extra: int) -> exp.Expr:  # the first day of the target month (+ extra months)
        shift = exp.Add(this=exp.Paren(this=months.copy()), expression=number(extra))
        return call("DATE", x.copy(), string("start of month"),
                    exp.DPipe(this=exp.cast(shift, text), expression=string(" months")))

    day = as_int(call("STRFTIME", string("%d"), x.copy()))
    wanted = call("DATE", first(0), exp.DPipe(
        this=exp.cast(exp.Sub(this=day, expression=number(1)), text),
        expression=string(" days")))
    last = call("DATE", first(1), string("-1 days"))
    moved = call("MIN", wanted, last)
    is_date = exp.EQ(this=call("LENGTH", x.copy()), expression=number(10))
    return exp.Case().when(is_date, moved).else_(
        exp.DPipe(this=moved.copy(), expression=call("SUBSTR", x.copy(), number(11))))


def _timestampdiff(node: exp.Expr) -> exp.Expr:
    """TIMESTAMPDIFF(unit, start, end): whole units from start to end, truncated toward zero."""
    unit = _unit(node, {**_SECONDS, **_MONTHS})
    end, start = unwrap_date(node.this), unwrap_date(node.expression)
    if unit in _SECONDS:
        def seconds(x: exp.Expr) -> exp.Expr:
            return as_int(call("STRFTIME", string("%s"), x))

        diff = exp.Paren(this=exp.Sub(this=seconds(end), expression=seconds(start.copy())))
        return as_int(exp.Div(this=diff, expression=number(_SECONDS[unit])))

    def months(x: exp.Expr) -> exp.Expr:
        year = as_int(call("STRFTIME", string("%Y"), x))
        return exp.Paren(this=exp.Add(this=exp.Mul(this=year, expression=number(12)),
                                      expression=as_int(call("STRFTIME", string("%m"), x.copy()))))

    def rest(x: exp.Expr) -> exp.Expr:  # day and time of day, comparable as text
        return call("STRFTIME", string("%d %H:%M:%f"), x.copy())

    count = exp.Paren(this=exp.Sub(this=months(end), expression=months(start)))
    zero = number(0)
    adjust = (exp.Case()
              .when(exp.and_(exp.GT(this=count.copy(), expression=zero),
                             exp.LT(this=rest(end), expression=rest(start))), number(1))
              .when(exp.and_(exp.LT(this=count.copy(), expression=zero.copy()),
                             exp.GT(this=rest(end), expression=rest(start))), number(-1))
              .else_(number(0)))
    whole = exp.Paren(this=exp.Sub(this=count, expression=adjust))
    return as_int(exp.Div(this=whole, expression=number(_MONTHS[unit])))


def _json_value(node: exp.Expr) -> exp.Expr:
    """A path into a json attribute: JSON_EXTRACT gives SQL values (true is 1), so JSON_TYPE
    says which values the path's kind keeps; the json kind is JSON text (JSON_QUOTE leaves
    objects and arrays, which JSON_EXTRACT returns as JSON, as they are)."""
    path = string(dollar_path(path_of(node)))
    kind_name = call("JSON_TYPE", node.this, path)

    def value() -> exp.Expr:
        return call("JSON_EXTRACT", node.this.copy(), path.copy())

    def kind_is(*names: str) -> exp.Expr:
        return exp.In(this=kind_name.copy(), expressions=[string(n) for n in names])

    kind = kind_of(node)
    if kind == "number":
        return exp.Case().when(kind_is("integer", "real"), value())
    if kind == "text":
        return exp.Case().when(kind_is("text"), value())
    if kind == "bool":
        return exp.Case().when(kind_is("true"), number(1)).when(kind_is("false"), number(0))
    return (exp.Case().when(kind_is("true", "false"), kind_name.copy())
            .when(exp.NEQ(this=kind_name.copy(), expression=string("null")),
                  call("JSON_QUOTE", value())))


REWRITES: Final[dict[type[exp.Expr], Rewrite]] = {
    JsonPathValue: _json_value,
    **{cls: _datepart for cls in _STRFTIME},
    exp.DayOfWeek: _dayofweek,
    exp.DateDiff: _datediff,
    exp.If: _if,
    exp.StddevPop: lambda n: _variance(n, sample=False, root=True),
    exp.StddevSamp: lambda n: _variance(n, sample=True, root=True),
    exp.Stddev: lambda n: _variance(n, sample=True, root=True),
    exp.VariancePop: lambda n: _variance(n, sample=False, root=False),
    exp.Variance: lambda n: _variance(n, sample=True, root=False),
    exp.Like: _like,
    exp.RegexpLike: _regexp,
    exp.Floor: _floor_ceil,
    exp.GroupConcat: _group_concat,
    exp.Ceil: _floor_ceil,
    exp.CurrentTimestamp: _now,
    exp.CurrentDate: _today,
    exp.DateAdd: _date_add,
    exp.DateSub: _date_add,
    exp.TimestampDiff: _timestampdiff,
}

COMPILER: Final = DialectCompiler("sqlite", SQLite(), REWRITES)
