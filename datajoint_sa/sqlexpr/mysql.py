"""Fragments on MySQL and MariaDB, and the grammar every fragment is written in.

Classic DataJoint fragments are MySQL expressions, so this module's dialect both parses
fragments (for every backend) and writes them back for MySQL/MariaDB, with a generator that
keeps to what both servers understand and rewrites that keep results alike on all backends.
"""

from __future__ import annotations

from typing import Any, Final

from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.helper import seq_get

from .jsonpath import JsonPathValue, dollar_path, kind_of, path_of
from .render import DialectCompiler, Rewrite, call, cast_argument, string

_MySQLGenerator: Any = MySQL.Generator
_MySQLParser: Any = MySQL.Parser


class _Generator(_MySQLGenerator):
    """MySQL generator that also works on MariaDB.

    sqlglot renders ``x REGEXP y`` as ``REGEXP_LIKE(x, y)``, which MariaDB lacks; the ``REGEXP``
    operator exists on both servers.
    """

    TRANSFORMS = {
        **_MySQLGenerator.TRANSFORMS,
        exp.RegexpLike: lambda self, e: self.binary(
            e, "NOT REGEXP" if e.args.get("negate") else "REGEXP"
        ),
    }


_TO_DAYS_ANCHOR: Final = ("2000-01-01", 730485)  # MySQL: TO_DAYS('2000-01-01') = 730485


def _to_days(args: list[exp.Expr]) -> exp.Expr:
    """TO_DAYS(d) as days from an anchor every backend can represent (PostgreSQL has no
    year 0, which sqlglot's own reading counts from)."""
    day, count = _TO_DAYS_ANCHOR
    diff = exp.DateDiff(this=exp.TsOrDsToDate(this=seq_get(args, 0)),
                        expression=exp.TsOrDsToDate(this=string(day)), unit=exp.var("DAY"))
    return exp.Paren(this=exp.Add(this=diff, expression=exp.Literal.number(count)))


class _Parser(_MySQLParser):
    """MySQL's parser, reading TO_DAYS so that every backend can compute it."""

    FUNCTIONS = {**_MySQLParser.FUNCTIONS, "TO_DAYS": _to_days}


class _Dialect(MySQL):
    """The dialect used both to read fragments and to write MySQL/MariaDB SQL."""

    Parser = _Parser
    Generator = _Generator


def _like(node: exp.Expr) -> exp.Expr:
    """Our MySQL schemas collate in binary (utf8mb4_nopad_bin), so that keys are case-sensitive as on the other
    backends; LIKE still matches case-insensitively everywhere, as under MySQL's default
    collations.  Lower-casing a LIKE pattern leaves its wildcards and escapes intact."""
    node.set("this", call("LOWER", node.this))
    node.set("expression", call("LOWER", node.expression))
    return node


def _regexp(node: exp.Expr) -> exp.Expr:
    """Case-insensitive REGEXP under a binary collation: PCRE's inline (?i) flag (lower-casing the
    pattern would corrupt escapes such as \\D)."""
    node.set("expression", exp.Concat(expressions=[string("(?i)"), node.expression]))
    return node


def _div(node: exp.Expr) -> exp.Expr:
    node.set("this", exp.cast(node.this, exp.DataType.build("DOUBLE")))
    return node


def _to_double(node: exp.Expr) -> exp.Expr:
    return cast_argument(node, "DOUBLE")


_JSON_NUMBERS: Final = ("INTEGER", "UNSIGNED INTEGER", "DOUBLE", "DECIMAL")


def _json_value(node: exp.Expr) -> exp.Expr:
    """A path into a json attribute with functions both servers have (MariaDB has no ``->``
    operator): JSON_EXTRACT, with JSON_TYPE keeping the values of the path's kind."""
    path = string(dollar_path(path_of(node)))

    def value() -> exp.Expr:
        return call("JSON_EXTRACT", node.this.copy(), path.copy())

    def kind_is(*names: str) -> exp.Expr:
        return exp.In(this=call("JSON_TYPE", value()), expressions=[string(n) for n in names])

    def unquoted() -> exp.Expr:
        return call("JSON_UNQUOTE", value())

    kind = kind_of(node)
    if kind == "number":
        return exp.Case().when(kind_is(*_JSON_NUMBERS),
                               exp.cast(unquoted(), exp.DataType.build("DOUBLE")))
    if kind == "text":
        return exp.Case().when(kind_is("STRING"), unquoted())
    if kind == "bool":
        return exp.Case().when(kind_is("BOOLEAN"),
                               exp.EQ(this=unquoted(), expression=string("true")))
    return exp.Case().when(exp.Not(this=kind_is("NULL")), value())


REWRITES: Final[dict[type[exp.Expr], Rewrite]] = {
    JsonPathValue: _json_value,
    # MySQL computes `/` and AVG/STD/VARIANCE of exact values as DECIMAL rounded to
    # div_precision_increment (4) digits: 10/3 = 3.3333.  Use DOUBLE like the others.
    exp.Div: _div,
    exp.Like: _like,
    exp.RegexpLike: _regexp,
    **{
        cls: _to_double
        for cls in (
            exp.Avg,
            exp.Stddev,
            exp.StddevPop,
            exp.StddevSamp,
            exp.Variance,
            exp.VariancePop,
        )
    },
}

COMPILER: Final = DialectCompiler("mysql", _Dialect(), REWRITES, reads_fragments=True)
