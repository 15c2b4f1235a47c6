"""Fragments on SQLite: sqlglot's SQLite generator plus the rewrites it needs.

SQLite has no date-part functions, no VAR/STDDEV, optional math functions and a UTC clock;
each rewrite below says which MySQL semantics it keeps.
"""

from __future__ import annotations

import sqlite3
from typing import Final

from sqlglot import exp
from sqlglot.dialects.sqlite import SQLite
from sqlglot.errors import UnsupportedError

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


REWRITES: Final[dict[type[exp.Expr], Rewrite]] = {
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
}

COMPILER: Final = DialectCompiler("sqlite", SQLite(), REWRITES)
