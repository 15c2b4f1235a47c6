"""The functions a SQL fragment may call: the one allow-list, and the gate that applies it.

A fragment is text from users (and from web requests): it may reach nothing but the row it
is evaluated on.  So it may call only the portable functions below, each given with a
sample call that runs on every backend (tests/test_fragment_security.py runs every sample
on SQLite, PostgreSQL and MySQL).  Server functions that read files, other schemas or the
session (``pg_read_file``, ``query_to_xml``, ``set_config``, ``load_file``, ``sleep``,
``get_lock``, ``user()``, ``version()`` ...) are not on the list and are refused before
any SQL is sent.

The samples also say which sqlglot nodes a name parses into (``ifnull`` -> Coalesce,
``date(x)`` -> TsOrDsToDate ...), so the gate checks the parsed tree, never the spelling.
docs/fragments.md documents this list; keep the two in step.
"""

from __future__ import annotations

from functools import cache
from typing import Final

from sqlglot import exp
from sqlglot.errors import ErrorLevel
from sqlglot.tokens import TokenType

from .jsonpath import JsonPathValue
from .render import reader

#: category -> {function name as written in a fragment: a sample call}
FUNCTIONS: Final[dict[str, dict[str, str]]] = {
    "arithmetic and math": {
        "abs": "abs(x)",
        "ceil": "ceil(y)",
        "ceiling": "ceiling(y)",
        "floor": "floor(y)",
        "round": "round(y, 1)",
        "mod": "mod(a, 3)",
        "sqrt": "sqrt(a)",
        "pow": "pow(a, 2)",
        "power": "power(a, 2)",
        "exp": "exp(x)",
        "ln": "ln(a)",
        "log": "log(a)",
        "sign": "sign(y)",
        "greatest": "greatest(a, b)",
        "least": "least(a, b)",
    },
    "comparison and conditional": {
        "if": "if(x > 1, a, b)",
        "ifnull": "ifnull(x, 0)",
        "coalesce": "coalesce(x, y, 0)",
        "nullif": "nullif(a, 11)",
        "cast": "cast(a AS char)",
        "case": "CASE WHEN x > 1 THEN a ELSE b END",
    },
    "string": {
        "concat": "concat(name, '!')",
        "lower": "lower(name)",
        "upper": "upper(name)",
        "lcase": "lcase(name)",
        "ucase": "ucase(name)",
        "length": "length(name)",
        "char_length": "char_length(name)",
        "substring": "substring(name, 1, 2)",
        "substr": "substr(name, 2)",
        "trim": "trim(name)",
    },
    "date and time": {
        "now": "now()",
        "sysdate": "sysdate()",
        "localtimestamp": "localtimestamp()",
        "current_timestamp": "current_timestamp",
        "curdate": "curdate()",
        "current_date": "current_date",
        "date": "date(ts)",
        "year": "year(session_date)",
        "month": "month(session_date)",
        "day": "day(session_date)",
        "dayofmonth": "dayofmonth(session_date)",
        "dayofweek": "dayofweek(session_date)",
        "hour": "hour(ts)",
        "minute": "minute(ts)",
        "second": "second(ts)",
        "datediff": "datediff(session_date, '2024-01-01')",
        "date_format": "date_format(ts, '%Y-%m-%d %H:%i:%s')",
        "date_add": "date_add(session_date, interval 1 day)",
        "date_sub": "date_sub(ts, interval 2 hour)",
        "timestampdiff": "timestampdiff(hour, session_date, ts)",
        "to_days": "to_days(session_date)",
    },
    "aggregates": {
        "count": "count(x)",
        "sum": "sum(a)",
        "avg": "avg(a)",
        "min": "min(a)",
        "max": "max(a)",
        "std": "std(a)",
        "stddev": "stddev(a)",
        "stddev_pop": "stddev_pop(a)",
        "stddev_samp": "stddev_samp(a)",
        "variance": "variance(a)",
        "var_pop": "var_pop(a)",
        "var_samp": "var_samp(a)",
        "group_concat": "group_concat(name)",
    },
}

#: Nodes that are syntax, not calls: predicates and operators written as functions by sqlglot,
#: and paths into json attributes (they reach only the row's own json attributes: their
#: heads are resolved like any attribute reference, see jsonpath.py)
_SYNTAX: Final[tuple[type[exp.Expr], ...]] = (exp.RegexpLike, exp.RegexpILike, JsonPathValue)


#: Func nodes that are operators whatever the syntax (AND, OR, XOR, COLLATE)
_OPERATORS: Final = (exp.Connector, exp.Collate)
#: words followed by "(" that are syntax, not a call
_KEYWORDS: Final = frozenset({"and", "or", "xor", "not", "in", "is", "like", "between", "when",
                              "then", "else", "case", "exists", "interval", "div", "regexp",
                              "rlike", "over", "distinct", "as"})


def allowed_names() -> frozenset[str]:
    return frozenset(name for group in FUNCTIONS.values() for name in group)


def parse_sample(text: str) -> exp.Expr:
    dialect = reader()
    trees = dialect.parser(error_level=ErrorLevel.RAISE).parse(dialect.tokenize(text), text)
    tree = trees[0]
    assert tree is not None
    return tree


@cache
def _allowed() -> tuple[frozenset[type[exp.Expr]], frozenset[str]]:
    """(sqlglot function classes, names of calls sqlglot does not know) the samples use."""
    classes: set[type[exp.Expr]] = set(_SYNTAX)
    anonymous: set[str] = set()
    for group in FUNCTIONS.values():
        for sample in group.values():
            for node in parse_sample(sample).walk():
                if isinstance(node, exp.Anonymous):
                    anonymous.add(node.name.lower())
                elif isinstance(node, exp.Func):
                    classes.add(type(node))
    return frozenset(classes), frozenset(anonymous)


def is_allowed(node: exp.Expr) -> bool:
    """Whether a node of a parsed fragment is allowed as far as functions go."""
    if not isinstance(node, exp.Func) or isinstance(node, _OPERATORS):
        return True
    classes, anonymous = _allowed()
    if isinstance(node, exp.Anonymous):
        return node.name.lower() in anonymous
    return type(node) in classes


def function_name(node: exp.Expr, text: str) -> str:
    """The name of a refused call as the user wrote it, where it can be found."""
    if isinstance(node, exp.Anonymous) or not isinstance(node, exp.Func):
        return node.name
    names = [n.lower() for n in type(node).sql_names()]
    tokens = reader().tokenize(text)
    for token in tokens:
        if token.text.lower() in names:
            return token.text
    known = allowed_names()
    for token, following in zip(tokens, tokens[1:]):
        if (following.token_type == TokenType.L_PAREN and token.text.isidentifier()
                and token.text.lower() not in known | _KEYWORDS):
            return token.text
    return type(node).sql_name().lower()
