"""MySQL-flavoured SQL fragments -> SQLAlchemy clauses that render correctly on any dialect.

DataJoint users write restrictions and computed attributes as strings in MySQL's SQL dialect
(``'session_date > "2024-01-01"'``, ``'avg(duration)'``, ``'a DIV 2'``, ...).  This module parses
such a string once with sqlglot (``read="mysql"``), checks that it is a single expression that
only references known attributes, and turns it into a SQLAlchemy ``ColumnElement`` whose SQL is
produced per dialect at compile time:

* every attribute reference is rendered as the SQLAlchemy column expression supplied by the
  caller (so quoting, table aliases and subquery labels are SQLAlchemy's business);
* every literal value becomes a bound parameter (values are never pasted into SQL text);
* MySQL-only functions and semantics are translated to PostgreSQL and SQLite.  sqlglot does
  most of the work; where its output is wrong or missing for a target, a small rewrite over
  the AST fixes it.  All such rewrites live in :data:`_REWRITES`.

Parsing happens once per (text, attributes); the SQL template for each dialect is generated
once per fragment and cached, so compiling a statement only costs a string join.
"""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import Any, Final, TypeAlias

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import Dialect as SADialect
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement, Grouping, UnaryExpression
from sqlalchemy.sql.type_api import TypeEngine
from sqlalchemy.sql.visitors import InternalTraversal
from sqlalchemy.types import NullType, TypeDecorator
from sqlglot import exp
from sqlglot.dialects.mysql import MySQL
from sqlglot.errors import ErrorLevel, SqlglotError, UnsupportedError
from sqlglot.tokens import TokenType

from .errors import QueryError, UnknownAttributeError

__all__ = [
    "Fragment",
    "FragmentClause",
    "fragment_clause",
    "parse_fragment",
]

# --------------------------------------------------------------------------------------------
# sqlglot dialects
# --------------------------------------------------------------------------------------------


_MySQLGenerator: Any = MySQL.Generator


class _DJMySQLGenerator(_MySQLGenerator):
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


class _DJMySQL(MySQL):
    """The dialect used both to read fragments and to write MySQL/MariaDB SQL."""

    Generator = _DJMySQLGenerator


_READER: Final = _DJMySQL()

# SQLAlchemy dialect name -> sqlglot dialect used to generate SQL for it.
_SQLGLOT_DIALECTS: Final[dict[str, Any]] = {
    "sqlite": "sqlite",
    "postgresql": "postgres",
    "mysql": _READER,
    "mariadb": _READER,
    "mssql": "tsql",
    "oracle": "oracle",
    "duckdb": "duckdb",
}

# Placeholders that stand in for attribute references ("c") and literal values ("v") inside
# the AST that is handed to sqlglot's generator.  They are plain lower-case identifiers so no
# dialect quotes them; the regex still tolerates quoting.
_PH_PREFIX: Final = "djsa0ph"
_PH_RE: Final = re.compile(r'[`"\[]?\b' + _PH_PREFIX + r"([cv])(\d+)\b[`\"\]]?")


def _ph(kind: str, index: int) -> exp.Column:
    return exp.column(f"{_PH_PREFIX}{kind}{index}")


# --------------------------------------------------------------------------------------------
# validation
# --------------------------------------------------------------------------------------------

# Whole categories of sqlglot nodes that can never be part of a value expression.
_FORBIDDEN_MODULES: Final = frozenset(
    {
        "sqlglot.expressions.ddl",
        "sqlglot.expressions.dml",
        "sqlglot.expressions.properties",
        "sqlglot.expressions.constraints",
    }
)
# From sqlglot's "query" module only these harmless pieces may appear in an expression.
_ALLOWED_QUERY_NODES: Final = frozenset(
    {
        "Tuple",
        "Order",
        "Window",
        "WindowSpec",
        "HexString",
        "BitString",
        "ByteString",
        "Introducer",
        "National",
        "UnicodeString",
    }
)
# Individual nodes that would smuggle in statements, aliases or driver/session parameters.
_FORBIDDEN_NODES: Final[tuple[type, ...]] = (
    exp.Query,
    exp.Subquery,
    exp.Alias,
    exp.Aliases,
    exp.Placeholder,
    exp.Parameter,
    exp.SessionParameter,
    exp.PropertyEQ,
    exp.Hint,
    exp.Dot,
    exp.Kwarg,
)

_AGG_ANONYMOUS: Final = frozenset(
    {"bit_and", "bit_or", "bit_xor", "json_arrayagg", "json_objectagg"}
)
_NOW_NAMES: Final = frozenset({"now", "localtimestamp", "localtime", "sysdate"})


def _check_node(node: exp.Expr, text: str, context: str) -> None:
    """Raise QueryError if ``node`` has no business inside a value expression."""
    cls = type(node)
    module = cls.__module__
    bad = (
        module in _FORBIDDEN_MODULES
        or (module == "sqlglot.expressions.query" and cls.__name__ not in _ALLOWED_QUERY_NODES)
        or isinstance(node, _FORBIDDEN_NODES)
        or (isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count))
    )
    if bad:
        raise QueryError(
            f"{_where(context)}SQL fragment {text!r} is not a plain expression "
            f"(contains {cls.__name__.lower()})"
        )


def _where(context: str) -> str:
    return f"{context}: " if context else ""


# --------------------------------------------------------------------------------------------
# types
# --------------------------------------------------------------------------------------------


class _UntypedString(TypeDecorator[str]):
    """Bind type for string literals that lets the server infer the type.

    A plain ``String`` bind renders ``::VARCHAR`` on psycopg, which breaks
    ``date_col > '2024-01-01'``.  Untyped, PostgreSQL treats the value like a quoted literal,
    which is what MySQL's loosely typed comparison means.  Literal rendering still works.
    """

    impl = NullType
    cache_ok = True

    def process_literal_param(self, value: Any, dialect: SADialect) -> str:
        process = sa.String().literal_processor(dialect)
        assert process is not None
        return str(process(value))

    def process_bind_param(self, value: Any, dialect: SADialect) -> Any:
        return value


def _literal_value(node: exp.Literal) -> tuple[Any, TypeEngine[Any]]:
    """Python value and bind type of a sqlglot literal."""
    if node.is_string:
        return node.this, _UntypedString()
    raw = str(node.this)
    if re.fullmatch(r"\d+", raw):
        value = int(raw)
        return value, sa.Integer() if value < 2**31 else sa.BigInteger()
    if "e" in raw.lower():
        return float(raw), sa.Float()
    return Decimal(raw), sa.Numeric(asdecimal=True)


def _keep_inline(node: exp.Literal) -> bool:
    """Literals that are syntax rather than values (formats, units, type sizes, separators).

    These stay in the generated SQL (quoted by sqlglot) because sqlglot must translate them
    (e.g. ``date_format`` patterns) or because the target grammar needs a literal there.
    """
    parent = node.parent
    return (
        isinstance(parent, (exp.DataType, exp.DataTypeParam, exp.Interval))
        or node.arg_key in ("format", "separator", "unit", "zone")
        or (isinstance(parent, exp.Escape) and node.arg_key == "expression")
    )


_BOOLEAN_NODES: Final = (exp.Predicate, exp.Connector, exp.Not, exp.Boolean)
_FLOAT_NODES: Final = (
    exp.Avg,
    exp.Stddev,
    exp.StddevPop,
    exp.StddevSamp,
    exp.Variance,
    exp.VariancePop,
    exp.Div,
    exp.Sqrt,
)
_INTEGER_NODES: Final = (
    exp.Count,
    exp.Year,
    exp.Month,
    exp.Day,
    exp.DayOfMonth,
    exp.DayOfWeek,
    exp.Hour,
    exp.Minute,
    exp.Second,
    exp.DateDiff,
    exp.IntDiv,
    exp.Length,
)
_STRING_NODES: Final = (exp.Concat, exp.Lower, exp.Upper, exp.Substring, exp.GroupConcat)


def _result_type(tree: exp.Expr) -> TypeEngine[Any]:
    """The obvious result type of an expression, so results convert alike on all backends."""
    while isinstance(tree, exp.Paren):
        tree = tree.this
    if isinstance(tree, _BOOLEAN_NODES):
        return sa.Boolean(create_constraint=False)
    if isinstance(tree, _FLOAT_NODES):
        return sa.Float()
    if isinstance(tree, _INTEGER_NODES):
        return sa.Integer()
    if isinstance(tree, _STRING_NODES):
        return sa.String()
    if isinstance(tree, (exp.TsOrDsToDate, exp.Date, exp.CurrentDate)):
        return sa.Date()
    if isinstance(tree, exp.CurrentTimestamp):
        return sa.DateTime()
    return NullType()


def _is_aggregate(node: exp.Expr) -> bool:
    if isinstance(node, exp.AggFunc) or (
        isinstance(node, exp.Anonymous) and node.name.lower() in _AGG_ANONYMOUS
    ):
        return not isinstance(node.parent, exp.Window)
    return False


# --------------------------------------------------------------------------------------------
# Fragment and parsing
# --------------------------------------------------------------------------------------------

# One piece of a generated template: literal SQL text, or a ("c"|"v", index) placeholder.
_Piece = str | tuple[str, int]


@dataclass(frozen=True, eq=False)
class Fragment:
    """A parsed, validated SQL fragment; immutable and shareable between queries.

    ``text`` is the user's string, ``attributes`` the attribute names it references and
    ``has_aggregate`` whether it contains an aggregate function (outside a window).
    """

    text: str
    attributes: frozenset[str]
    has_aggregate: bool
    _tree: exp.Expr = field(repr=False)
    _columns: tuple[str, ...] = field(repr=False)
    _literals: tuple[tuple[Any, TypeEngine[Any]], ...] = field(repr=False)
    _type: TypeEngine[Any] = field(repr=False)
    _templates: dict[str, tuple[_Piece, ...]] = field(default_factory=dict, repr=False)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Fragment)
            and self.text == other.text
            and self._columns == other._columns
        )

    def __hash__(self) -> int:
        return hash((self.text, self._columns))

    @property
    def type(self) -> TypeEngine[Any]:
        """Result type of the expression (NullType when not obvious)."""
        return self._type

    def sql_template(self, dialect_name: str) -> tuple[_Piece, ...]:
        """The SQL for one SQLAlchemy dialect name, split at the placeholders (cached)."""
        template = self._templates.get(dialect_name)
        if template is None:
            template = _generate(self, dialect_name)
            self._templates[dialect_name] = template
        return template


def parse_fragment(text: str, attributes: Iterable[str], *, context: str = "") -> Fragment:
    """Parse a MySQL-flavoured expression that may reference only ``attributes``.

    Raises UnknownAttributeError for a reference to anything else and QueryError for text that
    is not exactly one expression.  Results are memoised: the same text over the same
    attributes yields the same Fragment.
    """
    if not isinstance(text, str):
        raise QueryError(f"{_where(context)}SQL fragment must be a string, got {text!r}")
    return _parse_cached(text, frozenset(attributes), context)


@lru_cache(maxsize=4096)
def _parse_cached(text: str, attributes: frozenset[str], context: str) -> Fragment:
    try:
        tokens = _READER.tokenize(text)
        if any(tok.token_type == TokenType.SEMICOLON for tok in tokens):
            raise QueryError(f"{_where(context)}SQL fragment {text!r} may not contain ';'")
        trees = _READER.parser(error_level=ErrorLevel.RAISE).parse(tokens, text)
    except SqlglotError as e:
        raise QueryError(f"{_where(context)}cannot parse SQL fragment {text!r}: {e}") from None
    statements = [t for t in trees if t is not None]
    if len(statements) != 1:
        raise QueryError(f"{_where(context)}SQL fragment {text!r} must be one expression")
    tree: exp.Expr = statements[0]

    exact = set(attributes)
    folded: dict[str, str] = {}
    for name in attributes:  # MySQL column names are case-insensitive
        folded.setdefault(name.lower(), name)

    columns: list[str] = []
    literals: list[tuple[Any, TypeEngine[Any]]] = []
    has_aggregate = False
    for node in list(tree.walk()):
        _check_node(node, text, context)
        has_aggregate = has_aggregate or _is_aggregate(node)
        if isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):
                raise QueryError(f"{_where(context)}SQL fragment {text!r} may not use '*'")
            if node.table:
                raise UnknownAttributeError(
                    f"{_where(context)}unknown attribute {node.sql(dialect=_READER)!r} "
                    f"in SQL fragment {text!r}: qualified names are not allowed"
                )
            name = node.name
            resolved = name if name in exact else folded.get(name.lower())
            if resolved is None:
                raise UnknownAttributeError(
                    f"{_where(context)}unknown attribute {name!r} in SQL fragment {text!r}"
                    + (f"; known attributes: {', '.join(sorted(exact))}" if exact else "")
                )
            if resolved not in columns:
                columns.append(resolved)
            placeholder = _ph("c", columns.index(resolved))
            if node is tree:
                tree = placeholder
            else:
                node.replace(placeholder)
        elif isinstance(node, exp.Literal) and not _keep_inline(node):
            literals.append(_literal_value(node))
            placeholder = _ph("v", len(literals) - 1)
            if node is tree:
                tree = placeholder
            else:
                node.replace(placeholder)
        elif isinstance(node, (exp.Literal, exp.Identifier, exp.Var, exp.Anonymous)) and (
            _PH_PREFIX in str(node.this).lower()
        ):  # anything that would reach the generated SQL must not look like a placeholder
            raise QueryError(f"{_where(context)}SQL fragment {text!r} contains a reserved name")

    tree = _rewrite(tree, _REWRITES["*"])
    return Fragment(
        text=text,
        attributes=frozenset(columns),
        has_aggregate=has_aggregate,
        _tree=tree,
        _columns=tuple(columns),
        _literals=tuple(literals),
        _type=_result_type(tree),
    )


# --------------------------------------------------------------------------------------------
# per-dialect rewrites (everything sqlglot gets wrong or leaves untranslated)
# --------------------------------------------------------------------------------------------

Rewrite: TypeAlias = "Callable[[exp.Expr], exp.Expr]"


def _rewrite(tree: exp.Expr, rules: Mapping[type[exp.Expr], Rewrite]) -> exp.Expr:
    """Apply ``rules`` bottom-up (children first), so rewritten nodes see rewritten children."""
    if not rules:
        return tree
    for child in list(tree.iter_expressions()):
        _rewrite(child, rules)
    rule = rules.get(type(tree))
    if rule is None:
        return tree
    new = rule(tree)
    if new is not tree:
        tree.replace(new)
    return new


def _int(e: exp.Expr) -> exp.Expr:
    return exp.cast(e, exp.DataType.build("INT"))


def _str(value: str) -> exp.Literal:
    return exp.Literal.string(value)


def _num(value: int | float) -> exp.Expr:
    return exp.Literal.number(value)


def _fn(name: str, *args: exp.Expr) -> exp.Anonymous:
    return exp.Anonymous(this=name, expressions=list(args))


def _nullif_zero(e: exp.Expr) -> exp.Expr:
    return exp.Nullif(this=e, expression=_num(0))


def _retype(node: exp.Expr, cls: type[exp.Expr]) -> exp.Expr:
    """The same node as another class, keeping every argument (e.g. ``negate`` of NOT LIKE)."""
    return cls(**node.args)


def _to_double(node: exp.Expr) -> exp.Expr:
    """Cast an aggregate's argument (also under DISTINCT) to DOUBLE."""
    double = exp.DataType.build("DOUBLE")
    target = node.this
    if isinstance(target, exp.Distinct):
        target.set("expressions", [exp.cast(e, double) for e in target.expressions])
    else:
        node.set("this", exp.cast(target, double))
    return node


def _unwrap_date(e: exp.Expr) -> exp.Expr:
    """Drop sqlglot's implicit date/timestamp coercions (SQLite's strftime parses either)."""
    while isinstance(e, (exp.TsOrDsToDate, exp.TsOrDsToTimestamp, exp.TsOrDsToDatetime)):
        e = e.this
    return e


def _now_rule(node: exp.Expr) -> exp.Expr:
    """NOW(), SYSDATE(), LOCALTIMESTAMP() (parsed as anonymous calls) -> CURRENT_TIMESTAMP."""
    if node.name.lower() in _NOW_NAMES and not node.expressions:
        return exp.CurrentTimestamp()
    return node


# --- SQLite ---------------------------------------------------------------------------------

_SQLITE_STRFTIME: Final[dict[type[exp.Expr], str]] = {
    exp.Year: "%Y",
    exp.Month: "%m",
    exp.Day: "%d",
    exp.DayOfMonth: "%d",
    exp.Hour: "%H",
    exp.Minute: "%M",
    exp.Second: "%S",
}


def _sqlite_datepart(node: exp.Expr) -> exp.Expr:
    """YEAR(d) etc. -> CAST(STRFTIME('%Y', d) AS INTEGER)."""
    return _int(_fn("STRFTIME", _str(_SQLITE_STRFTIME[type(node)]), _unwrap_date(node.this)))


def _sqlite_dayofweek(node: exp.Expr) -> exp.Expr:
    """DAYOFWEEK(d) (1 = Sunday) -> STRFTIME('%w', d) + 1."""
    return exp.Add(
        this=_int(_fn("STRFTIME", _str("%w"), _unwrap_date(node.this))), expression=_num(1)
    )


def _sqlite_datediff(node: exp.Expr) -> exp.Expr:
    """DATEDIFF(a, b) counts calendar days: compare dates, not instants."""
    unit = node.args.get("unit")
    if unit is not None and unit.name.upper() not in ("DAY", ""):
        return node
    a = _fn("JULIANDAY", _fn("DATE", node.this))
    b = _fn("JULIANDAY", _fn("DATE", node.expression))
    return _int(exp.Paren(this=exp.Sub(this=a, expression=b)))


def _sqlite_if(node: exp.Expr) -> exp.Expr:
    """IF(c, a, b) -> CASE (IIF needs SQLite >= 3.32)."""
    if isinstance(node.parent, exp.Case):  # sqlglot stores CASE's WHEN branches as If nodes
        return node
    case = exp.Case().when(node.this, node.args["true"])
    false = node.args.get("false")
    return case.else_(false) if false is not None else case


def _sqlite_variance(node: exp.Expr, *, sample: bool, root: bool) -> exp.Expr:
    """SQLite has no VAR_*/STDDEV_*: compute from sums (NULL for too few rows, like MySQL)."""
    x = node.this

    def y() -> exp.Expr:
        return exp.cast(x.copy(), exp.DataType.build("REAL"))

    if sample:
        n = exp.Count(this=y())
        sum_sq = exp.Sum(this=exp.Mul(this=y(), expression=y()))
        sq_sum = exp.Mul(this=exp.Sum(this=y()), expression=exp.Sum(this=y()))
        num = exp.Sub(this=sum_sq, expression=exp.Div(this=sq_sum, expression=n))
        den = _nullif_zero(exp.Sub(this=exp.Count(this=y()), expression=_num(1)))
        var: exp.Expr = exp.Div(this=exp.Paren(this=num), expression=den)
    else:
        mean_sq = exp.Avg(this=exp.Mul(this=y(), expression=y()))
        sq_mean = exp.Mul(this=exp.Avg(this=y()), expression=exp.Avg(this=y()))
        var = exp.Sub(this=mean_sq, expression=sq_mean)
    var = _fn("MAX", exp.Paren(this=var), _num(0.0))  # rounding can dip below zero
    return _fn("SQRT", var) if root else var


def _sqlite_like(node: exp.Expr) -> exp.Expr:
    """MySQL and PostgreSQL treat backslash as LIKE's escape character; SQLite needs ESCAPE."""
    if isinstance(node.parent, exp.Escape):
        return node
    return exp.Escape(this=node, expression=_str("\\"))


def _sqlite_regexp(node: exp.Expr) -> exp.Expr:
    """Case-insensitive like MySQL's default collations.

    SQLAlchemy's pysqlite dialect registers ``regexp()`` as a case-sensitive ``re.search``;
    Python's inline ``(?i)`` flag fixes that without another user-defined function.
    """
    pattern = exp.DPipe(this=_str("(?i)"), expression=node.expression)
    node.set("expression", exp.Paren(this=pattern))
    return node


def _sqlite_floor_ceil(node: exp.Expr) -> exp.Expr:
    """FLOOR/CEIL without functions: SQLAlchemy's pysqlite ``floor()`` is not NULL-safe and
    SQLite's own math functions are optional.  CAST truncates toward zero; adjust by one."""
    x = node.this
    trunc = _int(x.copy())
    if isinstance(node, exp.Floor):
        return exp.Sub(
            this=trunc, expression=exp.Paren(this=exp.LT(this=x, expression=trunc.copy()))
        )
    return exp.Add(this=trunc, expression=exp.Paren(this=exp.GT(this=x, expression=trunc.copy())))


def _sqlite_group_concat(node: exp.Expr) -> exp.Expr:
    """ORDER BY inside GROUP_CONCAT needs SQLite 3.44; refuse rather than ignore it."""
    if isinstance(node.this, exp.Order) and sqlite3.sqlite_version_info < (3, 44, 0):
        raise UnsupportedError(
            f"GROUP_CONCAT(... ORDER BY ...) needs SQLite 3.44+, this is {sqlite3.sqlite_version}"
        )
    return node


def _sqlite_now(node: exp.Expr) -> exp.Expr:
    """MySQL's NOW() is local time; SQLite's CURRENT_TIMESTAMP is UTC."""
    return _fn("DATETIME", _str("now"), _str("localtime"))


def _sqlite_today(node: exp.Expr) -> exp.Expr:
    return _fn("DATE", _str("now"), _str("localtime"))


# --- PostgreSQL -----------------------------------------------------------------------------


def _pg_extract(unit: str, *, floor: bool = False) -> Rewrite:
    """YEAR(d) etc. -> CAST(EXTRACT(unit FROM d) AS INTEGER) (EXTRACT returns numeric)."""

    def rule(node: exp.Expr) -> exp.Expr:
        part: exp.Expr = exp.Extract(this=exp.var(unit), expression=node.this)
        if floor:
            part = exp.Floor(this=part)
        return _int(part)

    return rule


def _pg_dayofweek(node: exp.Expr) -> exp.Expr:
    return exp.Add(
        this=_int(exp.Extract(this=exp.var("DOW"), expression=node.this)), expression=_num(1)
    )


def _pg_mod(node: exp.Expr) -> exp.Expr:
    """MySQL: x % 0 is NULL; PostgreSQL raises division by zero."""
    return exp.Mod(this=node.this, expression=_nullif_zero(node.expression))


def _pg_intdiv(node: exp.Expr) -> exp.Expr:
    """a DIV b: truncating integer division, NULL on zero, also for non-integer operands."""
    numeric = exp.DataType.build("NUMERIC")
    div = exp.IntDiv(
        this=exp.cast(node.this, numeric),
        expression=_nullif_zero(exp.cast(node.expression, numeric)),
    )
    return exp.cast(div, exp.DataType.build("BIGINT"))


def _pg_round(node: exp.Expr) -> exp.Expr:
    """ROUND(x, d) exists only for numeric in PostgreSQL."""
    if node.args.get("decimals") is None:
        return node
    node.set("this", exp.cast(node.this, exp.DataType.build("NUMERIC")))
    return node


def _pg_concat(node: exp.Expr) -> exp.Expr:
    """CONCAT(1, 2) is '12' in MySQL; PostgreSQL's || needs text operands."""
    text = exp.DataType.build("TEXT")
    node.set("expressions", [exp.cast(e, text) for e in node.expressions])
    return node


def _pg_group_concat(node: exp.Expr) -> exp.Expr:
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


def _pg_like(node: exp.Expr) -> exp.Expr:
    """MySQL's default collations compare case-insensitively; so does SQLite's LIKE."""
    return _retype(node, exp.ILike)


def _pg_regexp(node: exp.Expr) -> exp.Expr:
    """REGEXP is case-insensitive under MySQL's default collations -> ``~*``."""
    return _retype(node, exp.RegexpILike)


def _pg_now(node: exp.Expr) -> exp.Expr:
    """MySQL's NOW() is a zone-less local timestamp, i.e. PostgreSQL's LOCALTIMESTAMP."""
    return exp.Localtimestamp()


# --- MySQL / MariaDB ------------------------------------------------------------------------


def _mysql_like(node: exp.Expr) -> exp.Expr:
    """Our MySQL schemas collate utf8mb4_bin, so that keys are case-sensitive as on the other
    backends; LIKE still matches case-insensitively everywhere, as under MySQL's default
    collations.  Lower-casing a LIKE pattern leaves its wildcards and escapes intact."""
    node.set("this", _fn("LOWER", node.this))
    node.set("expression", _fn("LOWER", node.expression))
    return node


def _mysql_regexp(node: exp.Expr) -> exp.Expr:
    """Case-insensitive REGEXP under utf8mb4_bin: PCRE's inline (?i) flag (lower-casing the
    pattern would corrupt escapes such as \\D)."""
    node.set("expression", exp.Concat(expressions=[_str("(?i)"), node.expression]))
    return node


def _mysql_div(node: exp.Expr) -> exp.Expr:
    node.set("this", exp.cast(node.this, exp.DataType.build("DOUBLE")))
    return node


_REWRITES: Final[dict[str, dict[type[exp.Expr], Rewrite]]] = {
    # applied once at parse time, for every dialect
    "*": {exp.Anonymous: _now_rule},
    "sqlite": {
        **{cls: _sqlite_datepart for cls in _SQLITE_STRFTIME},
        exp.DayOfWeek: _sqlite_dayofweek,
        exp.DateDiff: _sqlite_datediff,
        exp.If: _sqlite_if,
        exp.StddevPop: lambda n: _sqlite_variance(n, sample=False, root=True),
        exp.StddevSamp: lambda n: _sqlite_variance(n, sample=True, root=True),
        exp.Stddev: lambda n: _sqlite_variance(n, sample=True, root=True),
        exp.VariancePop: lambda n: _sqlite_variance(n, sample=False, root=False),
        exp.Variance: lambda n: _sqlite_variance(n, sample=True, root=False),
        exp.Like: _sqlite_like,
        exp.RegexpLike: _sqlite_regexp,
        exp.Floor: _sqlite_floor_ceil,
        exp.GroupConcat: _sqlite_group_concat,
        exp.Ceil: _sqlite_floor_ceil,
        exp.CurrentTimestamp: _sqlite_now,
        exp.CurrentDate: _sqlite_today,
    },
    "postgresql": {
        exp.Year: _pg_extract("YEAR"),
        exp.Month: _pg_extract("MONTH"),
        exp.Day: _pg_extract("DAY"),
        exp.DayOfMonth: _pg_extract("DAY"),
        exp.Hour: _pg_extract("HOUR"),
        exp.Minute: _pg_extract("MINUTE"),
        exp.Second: _pg_extract("SECOND", floor=True),
        exp.DayOfWeek: _pg_dayofweek,
        exp.Mod: _pg_mod,
        exp.IntDiv: _pg_intdiv,
        exp.Round: _pg_round,
        exp.Concat: _pg_concat,
        exp.GroupConcat: _pg_group_concat,
        exp.Like: _pg_like,
        exp.RegexpLike: _pg_regexp,
        exp.CurrentTimestamp: _pg_now,
    },
    "mysql": {
        # MySQL computes `/` and AVG/STD/VARIANCE of exact values as DECIMAL rounded to
        # div_precision_increment (4) digits: 10/3 = 3.3333.  Use DOUBLE like the others.
        exp.Div: _mysql_div,
        exp.Like: _mysql_like,
        exp.RegexpLike: _mysql_regexp,
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
    },
}


def _generate(fragment: Fragment, dialect_name: str) -> tuple[_Piece, ...]:
    """Transpile the placeholder AST for one dialect and split the SQL at the placeholders."""
    key = "mysql" if dialect_name == "mariadb" else dialect_name
    target = _SQLGLOT_DIALECTS.get(key, key)
    try:
        tree = _rewrite(fragment._tree.copy(), _REWRITES.get(key, {}))
        sql = tree.sql(dialect=target, unsupported_level=ErrorLevel.RAISE, comments=False)
    except (SqlglotError, ValueError) as e:
        raise QueryError(
            f"SQL fragment {fragment.text!r} cannot be expressed for {dialect_name}: {e}"
        ) from None
    pieces: list[_Piece] = []
    pos = 0
    for m in _PH_RE.finditer(sql):
        if m.start() > pos:
            pieces.append(sql[pos : m.start()])
        pieces.append((m.group(1), int(m.group(2))))
        pos = m.end()
    if pos < len(sql):
        pieces.append(sql[pos:])
    return tuple(pieces)


# --------------------------------------------------------------------------------------------
# SQLAlchemy element
# --------------------------------------------------------------------------------------------

_ATOMIC_NODES: Final = (exp.Column, exp.Literal, exp.Paren, exp.Boolean, exp.Null)


class FragmentClause(ColumnElement[Any]):
    """A Fragment bound to concrete column expressions and bound parameters.

    Rendered per dialect by :func:`_compile_fragment`.  Columns and bind parameters are part
    of the traversal internals, so SQLAlchemy's statement cache, cloning/adaptation (e.g. when
    a select is turned into a subquery) and FROM-clause inference all work.
    """

    __visit_name__ = "djsa_fragment"

    _traverse_internals = [
        ("_key", InternalTraversal.dp_string),
        ("_cols", InternalTraversal.dp_clauseelement_tuple),
        ("_binds", InternalTraversal.dp_clauseelement_tuple),
        ("type", InternalTraversal.dp_type),
    ]

    _is_implicitly_boolean = True  # render as written, never as "(expr) = 1"

    def __init__(
        self,
        fragment: Fragment,
        cols: tuple[ColumnElement[Any], ...],
        binds: tuple[sa.BindParameter[Any], ...],
    ) -> None:
        self.fragment = fragment
        self._key = fragment.text + "\x00" + "\x00".join(fragment._columns)
        self._cols = cols
        self._binds = binds
        self.type = fragment.type

    @property
    def _from_objects(self) -> list[Any]:  # type: ignore[override]
        return [f for c in self._cols for f in c._from_objects]

    def self_group(self, against: Any = None) -> ColumnElement[Any]:
        """Parenthesise inside larger expressions unless the fragment is a single term."""
        if (
            against is None
            or against in (operators.as_, operators.comma_op)
            or isinstance(self.fragment._tree, _ATOMIC_NODES)
        ):
            return self
        return Grouping(self)

    def _negate(self) -> ColumnElement[Any]:
        """``~clause`` -> ``NOT (...)``; SQLAlchemy's boolean shortcut would drop the parentheses."""
        return UnaryExpression(self.self_group(against=operators.inv), operator=operators.inv)


@compiles(FragmentClause)
def _compile_fragment(element: FragmentClause, compiler: SQLCompiler, **kw: Any) -> str:
    template = element.fragment.sql_template(compiler.dialect.name)
    kw.pop("add_to_result_map", None)  # inner columns are not result columns
    out: list[str] = []
    for piece in template:
        if isinstance(piece, str):
            out.append(compiler.post_process_text(piece))  # '%' -> '%%' for pyformat drivers
        elif piece[0] == "c":
            out.append(compiler.process(element._cols[piece[1]], **kw))
        else:
            out.append(compiler.process(element._binds[piece[1]], **kw))
    return "".join(out)


def fragment_clause(
    fragment: Fragment, columns: Mapping[str, ColumnElement[Any]]
) -> FragmentClause:
    """The fragment as a SQLAlchemy expression over ``columns`` (attribute -> column).

    Each call creates fresh anonymous bind parameters, so several fragments (or the same one
    twice) can appear in one statement.
    """
    try:
        cols = tuple(columns[name] for name in fragment._columns)
    except KeyError as e:
        raise UnknownAttributeError(
            f"unknown attribute {e.args[0]!r} in SQL fragment {fragment.text!r}"
        ) from None
    binds = tuple(
        sa.bindparam(None, value, type_=type_, unique=True) for value, type_ in fragment._literals
    )
    return FragmentClause(fragment, cols, binds)
