"""The neutral core: parse a fragment once, validate it against the heading, type it.

DataJoint users write restrictions and computed attributes as strings in classic DataJoint's
SQL grammar (``'session_date > "2024-01-01"'``, ``'avg(duration)'``, ``'a DIV 2'``, ...).
:func:`parse_fragment` parses such a string once with sqlglot (the grammar is the one dialect
module that ``reads_fragments``), checks that it is a single expression that only references
known attributes, and keeps a placeholder AST:

* every attribute reference becomes a column placeholder, later rendered as the SQLAlchemy
  column expression supplied by the caller (quoting, aliases, labels are SQLAlchemy's);
* every literal value becomes a value placeholder, later a bound parameter (values are never
  pasted into SQL text).

Per-backend SQL is written from that AST by :mod:`.render` with the backend's dialect module
and cached per fragment, so compiling a statement only costs a string join.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any, Final

import sqlalchemy as sa
from sqlalchemy.engine.interfaces import Dialect as SADialect
from sqlalchemy.sql.type_api import TypeEngine
from sqlalchemy.types import NullType, TypeDecorator
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError
from sqlglot.tokens import TokenType

from ..errors import QueryError, UnknownAttributeError, UnsafeFragmentError
from .functions import function_name, is_allowed
from .jsonpath import (
    JsonPathValue,
    Path,
    infer_kinds,
    kind_of,
    path_node,
    replace_markers,
    show,
    substitute,
)
from .normalize import TRUTH, normalize
from .render import (
    PARSE_REWRITES,
    PH_PREFIX,
    Piece,
    apply_rewrites,
    compiler_for,
    generate,
    placeholder,
    reader,
)

if TYPE_CHECKING:
    from ..backends import Backend

__all__ = ["Fragment", "parse_fragment"]

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


def _check_node(node: exp.Expr, text: str, context: str) -> None:
    """Raise UnsafeFragmentError if ``node`` has no business inside a value expression."""
    cls = type(node)
    module = cls.__module__
    if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
        offence = "'*'"
    elif isinstance(node, (exp.Query, exp.Subquery)):
        offence = "a subquery"
    elif isinstance(node, exp.SessionParameter):
        offence = f"the server variable @@{node.sql(dialect=reader()).lstrip('@')}"
    elif isinstance(node, exp.Parameter):
        offence = f"the session variable @{node.sql(dialect=reader()).lstrip('@')}"
    elif isinstance(node, exp.Dot):
        offence = f"the qualified name {node.sql(dialect=reader())}"
    elif isinstance(node, exp.Bracket):
        offence = ("a subscript (a path into a json attribute takes whole-number indices: "
                   "attr.key[0])")
    elif module in _FORBIDDEN_MODULES or isinstance(node, exp.Command):
        offence = f"a statement ({cls.__name__.lower()})"
    elif (module == "sqlglot.expressions.query" and cls.__name__ not in _ALLOWED_QUERY_NODES) \
            or isinstance(node, _FORBIDDEN_NODES):
        offence = cls.__name__.lower()
    elif not is_allowed(node):
        raise UnsafeFragmentError(
            f"{_where(context)}SQL fragment {text!r} calls {function_name(node, text)}(), "
            "which is not an allowed function (the list is in docs/fragments.md)"
        )
    else:
        return
    raise UnsafeFragmentError(
        f"{_where(context)}SQL fragment {text!r} is not a plain expression: it contains "
        f"{offence}"
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


_JSON_TYPES: Final[dict[str, TypeEngine[Any]]] = {
    "json": sa.JSON(none_as_null=True),
    "number": sa.Float(),
    "text": sa.String(),
    "bool": sa.Boolean(create_constraint=False),
}


def _result_type(tree: exp.Expr) -> TypeEngine[Any]:
    """The obvious result type of an expression, so results convert alike on all backends."""
    while isinstance(tree, exp.Paren):
        tree = tree.this
    if isinstance(tree, JsonPathValue):
        return _JSON_TYPES[kind_of(tree)]
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


def _same_type_column(tree: exp.Expr) -> int | None:
    """The attribute whose type the result has (``x``, ``min(x)``, ``max(x)``), if any."""
    while isinstance(tree, exp.Paren):
        tree = tree.this
    if isinstance(tree, (exp.Min, exp.Max, exp.AnyValue)) and not tree.expressions:
        tree = tree.this
    name = tree.name if isinstance(tree, exp.Column) else ""
    if name.startswith(PH_PREFIX + "c"):
        return int(name[len(PH_PREFIX) + 1:])
    return None


def _is_aggregate(node: exp.Expr) -> bool:
    if isinstance(node, exp.AggFunc) or (
        isinstance(node, exp.Anonymous) and node.name.lower() in _AGG_ANONYMOUS
    ):
        return not isinstance(node.parent, exp.Window)
    return False


# --------------------------------------------------------------------------------------------
# Fragment and parsing
# --------------------------------------------------------------------------------------------



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
    _same_type_as: int | None = field(default=None, repr=False)
    condition: bool = False
    #: per literal, the attribute it is compared with (`ts > '2024-01-01'`) and whether for
    #: equality (=, <>, IN), else None
    _literal_partners: tuple[tuple[str, bool] | None, ...] = field(default=(), repr=False)
    _templates: dict[str, tuple[Piece, ...]] = field(default_factory=dict, repr=False)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Fragment)
            and self.text == other.text
            and self._columns == other._columns
            and self.condition == other.condition
        )

    def __hash__(self) -> int:
        return hash((self.text, self._columns, self.condition))

    @property
    def type(self) -> TypeEngine[Any]:
        """Result type of the expression (NullType when not obvious)."""
        return self._type

    def sql_template(self, backend: Backend) -> tuple[Piece, ...]:
        """The SQL for one backend, split at the placeholders (cached per sqlglot dialect)."""
        key = backend.sqlglot_dialect
        template = self._templates.get(key)
        if template is None:
            template = generate(self._tree, self.text, compiler_for(key), backend.name)
            self._templates[key] = template
        return template


def parse_fragment(text: str, attributes: Iterable[str], *, context: str = "",
                   condition: bool = False, json: Iterable[str] = ()) -> Fragment:
    """Parse a MySQL-flavoured expression that may reference only ``attributes``.

    Raises UnknownAttributeError for a reference to anything else and QueryError for text that
    is not exactly one expression.  Results are memoised: the same text over the same
    attributes yields the same Fragment.  With ``condition`` the fragment is a restriction:
    a number standing for a truth value means "not zero", as in MySQL.  ``json`` names
    the json attributes, into which the fragment may read paths (``params.contrast``;
    see :mod:`.jsonpath`).
    """
    if not isinstance(text, str):
        raise QueryError(f"{_where(context)}SQL fragment must be a string, got {text!r}")
    return _parse_cached(text, frozenset(attributes), context, condition, frozenset(json))


@lru_cache(maxsize=4096)
def _parse_cached(text: str, attributes: frozenset[str], context: str,
                  condition: bool = False, json: frozenset[str] = frozenset()) -> Fragment:
    try:
        tokens = reader().tokenize(text)
        if any(tok.token_type == TokenType.SEMICOLON for tok in tokens):
            raise QueryError(f"{_where(context)}SQL fragment {text!r} may not contain ';'")
        if any(PH_PREFIX in tok.text.lower() for tok in tokens):
            raise QueryError(f"{_where(context)}SQL fragment {text!r} contains a reserved name")
        source, markers = substitute(text, tokens, attributes, json,
                                     _where(context) + f"SQL fragment {text!r}")
        if markers:
            tokens = reader().tokenize(source)
        trees = reader().parser(error_level=ErrorLevel.RAISE).parse(tokens, source)
    except SqlglotError as e:
        raise QueryError(f"{_where(context)}cannot parse SQL fragment {text!r}: {e}") from None
    statements = [t for t in trees if t is not None]
    if len(statements) != 1:
        raise QueryError(f"{_where(context)}SQL fragment {text!r} must be one expression")
    tree: exp.Expr = replace_markers(statements[0], markers)

    exact = set(attributes)
    folded: dict[str, str] = {}
    for name in attributes:  # MySQL column names are case-insensitive
        folded.setdefault(name.lower(), name)

    columns: list[str] = []
    literals: list[tuple[Any, TypeEngine[Any]]] = []
    has_aggregate = False
    nodes = list(tree.walk())
    subquery = next((n for n in nodes if isinstance(n, (exp.Query, exp.Subquery))), None)
    for node in [subquery] if subquery is not None else nodes:  # a subquery is named first
        _check_node(node, text, context)
    infer_kinds(tree, condition=condition)
    tree = normalize(apply_rewrites(tree, PARSE_REWRITES), condition=condition)
    partners = _comparison_partners(tree, exact, folded)
    literal_partners: list[tuple[str, bool] | None] = []
    for node in list(tree.walk()):
        has_aggregate = has_aggregate or _is_aggregate(node)
        if isinstance(node, exp.Column):
            if isinstance(node.this, exp.Star):
                raise QueryError(f"{_where(context)}SQL fragment {text!r} may not use '*'")
            if node.table and (node.table in exact or node.table.lower() in folded):
                raise QueryError(
                    f"{_where(context)}SQL fragment {text!r} reads a path inside attribute "
                    f"{node.table!r}, which is not a json attribute")
            if node.table:
                raise UnknownAttributeError(
                    f"{_where(context)}unknown attribute {node.sql(dialect=reader())!r} "
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
            kind = "b" if node.meta.get(TRUTH) else "c"
            stand_in = placeholder(kind, columns.index(resolved))
            if node is tree:
                tree = stand_in
            else:
                node.replace(stand_in)
        elif isinstance(node, exp.Literal) and not _keep_inline(node):
            literals.append(_literal_value(node))
            literal_partners.append(partners.get(id(node)))
            stand_in = placeholder("v", len(literals) - 1)
            if node is tree:
                tree = stand_in
            else:
                node.replace(stand_in)
        elif isinstance(node, (exp.Literal, exp.Identifier, exp.Var, exp.Anonymous)) and (
            PH_PREFIX in str(node.this).lower()
        ):  # anything that would reach the generated SQL must not look like a placeholder
            raise QueryError(f"{_where(context)}SQL fragment {text!r} contains a reserved name")

    return Fragment(
        text=text,
        attributes=frozenset(columns),
        has_aggregate=has_aggregate,
        _tree=tree,
        _columns=tuple(columns),
        _literals=tuple(literals),
        _type=_result_type(tree),
        _same_type_as=_same_type_column(tree),
        condition=condition,
        _literal_partners=tuple(literal_partners),
    )


_COMPARISONS: Final = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE)


def _comparison_partners(tree: exp.Expr, exact: set[str], folded: Mapping[str, str]
                         ) -> dict[int, tuple[str, bool]]:
    """id(literal) -> (the attribute it is compared with directly, whether for equality):
    `a = 'x'`, `a < 5`, `a BETWEEN 'x' AND 'y'`, `a IN ('x', 'y')`. The literal is then bound
    as a value of the attribute's kind where it reads as one (sqlexpr/clause.py)."""
    def attribute(node: Any) -> str | None:
        if isinstance(node, exp.Column) and not node.table and isinstance(node.this,
                                                                          exp.Identifier):
            return node.name if node.name in exact else folded.get(node.name.lower())
        return None

    def literals(*nodes: Any) -> list[exp.Literal]:
        return [n for n in nodes if isinstance(n, exp.Literal)]

    partners: dict[int, tuple[str, bool]] = {}
    for node in tree.walk():
        pairs: list[tuple[str | None, list[exp.Literal]]] = []
        if isinstance(node, _COMPARISONS):
            pairs = [(attribute(node.this), literals(node.expression)),
                     (attribute(node.expression), literals(node.this))]
        elif isinstance(node, exp.Between):
            pairs = [(attribute(node.this), literals(node.args.get("low"),
                                                     node.args.get("high")))]
        elif isinstance(node, exp.In):
            pairs = [(attribute(node.this), literals(*node.expressions))]
        equality = isinstance(node, (exp.EQ, exp.NEQ, exp.In))
        for name, found in pairs:
            if name is not None:
                partners.update((id(literal), (name, equality)) for literal in found)
    return partners




# --------------------------------------------------------------------------------------------
# fragments built from paths (dict restrictions and order_by)
# --------------------------------------------------------------------------------------------

_NUMBER_BIND: Final = sa.Float()


def _built(text: str, name: str, tree: exp.Expr, condition: bool,
           literals: tuple[tuple[Any, TypeEngine[Any]], ...] = ()) -> Fragment:
    return Fragment(text=text, attributes=frozenset({name}), has_aggregate=False, _tree=tree,
                    _columns=(name,), _literals=literals, _type=_result_type(tree),
                    condition=condition)


def json_value(name: str, path: Path, kind: str) -> Fragment:
    """The value of one kind at a path (order_by sorts by the number, then the string)."""
    node = path_node(placeholder("c", 0), path, kind)
    return _built(f"{show(name, path)} <{kind}>", name, node, False)


def json_equal(name: str, path: Path, value: Any, context: str) -> Fragment:
    """``path = value`` typed by the value (a dict restriction); None: missing or null."""
    if isinstance(value, float) and value != value:  # NaN, like a dict's NaN: NULL
        value = None
    if value is None:
        tree: exp.Expr = exp.Is(this=path_node(placeholder("c", 0), path, "json"),
                                expression=exp.Null())
        return _built(f"{show(name, path)} IS NULL", name, tree, True)
    literals: tuple[tuple[Any, TypeEngine[Any]], ...]
    if isinstance(value, bool):
        kind, literals = "bool", ((value, sa.Boolean(create_constraint=False)),)
    elif isinstance(value, (int, float, Decimal)):
        kind, literals = "number", ((float(value), _NUMBER_BIND),)
    elif isinstance(value, str):
        kind, literals = "text", ((value, sa.String()),)
    else:
        raise QueryError(f"{context}: cannot restrict {show(name, path)!r} by {value!r}: "
                         "compare a path with a number, a string, a bool or None")
    tree = exp.EQ(this=path_node(placeholder("c", 0), path, kind),
                  expression=placeholder("v", 0))
    return _built(f"{show(name, path)} = <{kind}>", name, tree, True, literals)
