"""Paths into ``json`` attributes: ``params.contrast``, ``params.list[0]``, ``params.a.b``.

A path is written after a json attribute's name, in fragments (``"params.contrast > 0.5"``),
dict restrictions (``{"params.contrast": 0.5}``), projections and ``order_by``.  In a
fragment each path becomes one :class:`JsonPathValue` node (before sqlglot parses the text,
so a key may be any word, keywords included); the node carries the attribute as an ordinary
column placeholder and its path and *kind* as metadata, and each dialect module renders it.

The kind says which JSON values a path yields; every other value reads as NULL, so that
comparisons are typed the same way on every backend (numbers as numbers, strings as strings;
a string never equals a number), and missing paths and JSON ``null`` are both NULL:

* ``number``: JSON numbers (compared with or computed as numbers);
* ``text``: JSON strings (compared with strings, LIKE, string functions);
* ``bool``: JSON true/false (compared with TRUE/FALSE, or used as a truth value);
* ``json``: any value as JSON text, decoded on fetch (a projected path, IS NULL).

The kind comes from the context (:func:`infer_kinds`); ``cast(path AS ...)`` states it.
Keys are limited to letters, digits, ``_``, ``-`` and spaces and indices to whole numbers,
so a path can never carry quotes, ``$`` or SQL into the statement.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final, TypeAlias

from sqlglot import exp
from sqlglot.tokens import Token, TokenType

from ..errors import QueryError, UnknownAttributeError

__all__ = ["JsonPathValue", "Path", "infer_kinds", "kind_of", "parse_path", "substitute"]

#: one step of a path: an object key or an array index
Path: TypeAlias = "tuple[str | int, ...]"

KINDS: Final = ("number", "text", "bool", "json")
MARKER: Final = "djsa0phj"  # contains render.PH_PREFIX: user text holding it is refused
_KEY: Final = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_ \-]*")
_STEP: Final = re.compile(r"\s*(?:\.\s*(?P<key>`[^`]*`|\w+)|\[\s*(?P<index>\d+)\s*\])")
_HEAD: Final = re.compile(r"\s*(?P<name>[A-Za-z_]\w*)")


class JsonPathValue(exp.Expression, exp.Func):
    """The value at a path inside a json attribute (``this``: the attribute's column).

    ``meta["path"]`` holds the steps and ``meta["kind"]`` one of :data:`KINDS`.
    """

    arg_types = {"this": True}


def path_node(column: exp.Expr, path: Path, kind: str = "json") -> JsonPathValue:
    node = JsonPathValue(this=column)
    node.meta["path"] = tuple(path)
    node.meta["kind"] = kind
    return node


def path_of(node: exp.Expr) -> Path:
    return tuple(node.meta.get("path", ()))


def kind_of(node: exp.Expr) -> str:
    return str(node.meta.get("kind", "json"))


def _key(text: str, where: str) -> str:
    if text.startswith("`"):
        text = text[1:-1]
    if not _KEY.fullmatch(text):
        raise QueryError(f"{where}: the JSON key {text!r} may hold only letters, digits, '_', "
                         "'-' and spaces")
    return text


def _index(text: str, where: str) -> int:
    value = int(text)
    if value > 2**31:
        raise QueryError(f"{where}: the JSON array index {value} is too large")
    return value


def show(name: str, path: Path) -> str:
    """A path as users write it: ``params.list[0]``."""
    return name + "".join(f"[{s}]" if isinstance(s, int) else f".{s}" for s in path)


def parse_path(text: str, attributes: Iterable[str], json: Iterable[str], *,
               context: str) -> tuple[str, Path] | None:
    """``(attribute, path)`` when ``text`` is a path into a json attribute, None when it is
    a plain name; an error when it is a path into anything else."""
    head = _HEAD.match(text)
    if head is None or head.end() == len(text.rstrip()):
        return None
    name, pos, steps = head.group("name"), head.end(), []
    rest = text.rstrip()
    while pos < len(rest):
        m = _STEP.match(rest, pos)
        if m is None:
            raise QueryError(f"{context}: cannot read the JSON path {text!r}: write "
                             "attr.key.key[0]")
        steps.append(_key(m.group("key"), context) if m.group("key") is not None
                     else _index(m.group("index"), context))
        pos = m.end()
    return _check_head(name, attributes, json, text, context), tuple(steps)


def _check_head(name: str, attributes: Iterable[str], json: Iterable[str], text: str,
                context: str) -> str:
    known = list(attributes)
    folded = {a.lower(): a for a in known}
    resolved = name if name in known else folded.get(name.lower())
    if resolved is None:
        raise UnknownAttributeError(f"{context}: unknown attribute {name!r} in {text!r}; "
                                    f"known attributes: {', '.join(sorted(known))}")
    if resolved not in set(json):
        raise QueryError(f"{context}: {text!r} reads a path inside attribute {resolved!r}, "
                         "which is not a json attribute")
    return resolved


# --------------------------------------------------------------------------------------------
# fragments
# --------------------------------------------------------------------------------------------

_NAME_TOKENS: Final = (TokenType.VAR, TokenType.IDENTIFIER)


def substitute(text: str, tokens: list[Token], attributes: Iterable[str], json: Iterable[str],
               context: str) -> tuple[str, dict[str, tuple[str, Path]]]:
    """The fragment text with every path (and every bare json attribute) replaced by a marker
    name, and what each marker stands for.

    Works on sqlglot's tokens, so strings and quoted names are never mistaken for paths.
    """
    json_names = set(json)
    known = list(attributes)
    folded = {a.lower(): a for a in known}
    markers: dict[str, tuple[str, Path]] = {}
    out: list[str] = []
    last = 0
    i = 0
    while i < len(tokens):
        token = tokens[i]
        following = tokens[i + 1] if i + 1 < len(tokens) else None
        previous = tokens[i - 1] if i else None
        if token.token_type not in _NAME_TOKENS or (
                previous is not None and previous.token_type == TokenType.DOT) or (
                following is not None and following.token_type == TokenType.L_PAREN):
            i += 1
            continue
        resolved = token.text if token.text in known else folded.get(token.text.lower())
        if resolved not in json_names:  # core.py names a path into anything else
            i += 1
            continue
        assert resolved is not None
        j, end = _chain_end(tokens, i)
        path = _steps(tokens[i + 1: j], text, context)
        marker = f"{MARKER}{len(markers)}"
        markers[marker] = (resolved, path)
        out.append(text[last: token.start])
        out.append(marker)
        last = end + 1
        i = j
    out.append(text[last:])
    return "".join(out), markers


def _chain_end(tokens: list[Token], i: int) -> tuple[int, int]:
    """(index after the path that starts at token i, end offset of its last token)."""
    j = i + 1
    end = tokens[i].end
    while j < len(tokens):
        t = tokens[j]
        if t.token_type == TokenType.DOT and j + 1 < len(tokens):
            j, end = j + 2, tokens[j + 1].end
        elif t.token_type == TokenType.L_BRACKET and j + 2 < len(tokens) \
                and tokens[j + 2].token_type == TokenType.R_BRACKET:
            j, end = j + 3, tokens[j + 2].end
        else:
            break
    return j, end


def _steps(tokens: list[Token], text: str, context: str) -> Path:
    steps: list[str | int] = []
    k = 0
    while k < len(tokens):
        t = tokens[k]
        if t.token_type == TokenType.DOT:
            key = tokens[k + 1]
            if key.token_type in (TokenType.STRING, TokenType.NUMBER):
                raise QueryError(f"{context}: cannot read the JSON path in {text!r}: a key "
                                 "after '.' must be a name")
            steps.append(_key(key.text, context))
            k += 2
        else:  # [ index ]
            index = tokens[k + 1]
            if index.token_type != TokenType.NUMBER or not index.text.isdigit():
                raise QueryError(f"{context}: cannot read the JSON path in {text!r}: an array "
                                 "index must be a whole number")
            steps.append(_index(index.text, context))
            k += 3
    return tuple(steps)


def replace_markers(tree: exp.Expr, markers: Mapping[str, tuple[str, Path]]) -> exp.Expr:
    """Marker columns -> JsonPathValue nodes over the json attribute's column."""
    if not markers:
        return tree
    for node in list(tree.walk()):
        if isinstance(node, exp.Column) and not node.table and node.name in markers:
            name, path = markers[node.name]
            new = path_node(exp.column(name, quoted=True), path)
            if node is tree:
                tree = new
            else:
                node.replace(new)
    return tree


# --------------------------------------------------------------------------------------------
# kinds
# --------------------------------------------------------------------------------------------

_COMPARISONS: Final = (exp.EQ, exp.NEQ, exp.GT, exp.GTE, exp.LT, exp.LTE, exp.NullSafeEQ,
                       exp.NullSafeNEQ)
_NUMERIC: Final = (exp.Add, exp.Sub, exp.Mul, exp.Div, exp.Mod, exp.IntDiv, exp.Neg, exp.Abs,
                   exp.Round, exp.Floor, exp.Ceil, exp.Sqrt, exp.Pow, exp.Exp, exp.Ln,
                   exp.Log, exp.Sign, exp.Avg, exp.Sum, exp.Stddev, exp.StddevPop,
                   exp.StddevSamp, exp.Variance, exp.VariancePop, exp.Between)
_TEXTUAL: Final = (exp.Like, exp.ILike, exp.RegexpLike, exp.Concat, exp.Lower, exp.Upper,
                   exp.Length, exp.Substring, exp.Trim, exp.GroupConcat)
_SIBLINGS: Final = (exp.Coalesce, exp.Nullif, exp.Greatest, exp.Least, exp.Min, exp.Max,
                    exp.In, exp.If, exp.Case)
_BOOLEAN_PARENTS: Final = (exp.And, exp.Or, exp.Xor, exp.Not)


def _literal_kind(node: exp.Expr | None) -> str | None:
    """The kind a literal operand asks for (number, text, bool), else None."""
    while isinstance(node, (exp.Paren, exp.Neg)):
        node = node.this
    if isinstance(node, exp.Literal):
        return "text" if node.is_string else "number"
    if isinstance(node, exp.Boolean):
        return "bool"
    if isinstance(node, exp.Cast):
        return _cast_kind(node)
    if isinstance(node, JsonPathValue) and kind_of(node) != "json":
        return kind_of(node)
    if isinstance(node, _NUMERIC):
        return "number"
    if isinstance(node, _TEXTUAL):
        return "text"
    return None


def _cast_kind(node: exp.Cast) -> str:
    to = node.args.get("to")
    if isinstance(to, exp.DataType) and to.is_type(*exp.DataType.TEXT_TYPES):
        return "text"
    if isinstance(to, exp.DataType) and to.is_type(exp.DataType.Type.BOOLEAN):
        return "bool"
    return "number"


def _operands(parent: exp.Expr, node: exp.Expr) -> list[exp.Expr]:
    return [e for e in parent.iter_expressions() if e is not node]


def _kind_in_context(node: JsonPathValue, condition: bool) -> str:
    child: exp.Expr = node
    parent = node.parent
    while isinstance(parent, exp.Paren):
        child, parent = parent, parent.parent
    if parent is None:
        return "bool" if condition else "json"
    if isinstance(parent, _COMPARISONS):
        other = parent.expression if parent.this is child else parent.this
        return _literal_kind(other) or "number"
    if isinstance(parent, exp.Is):
        return "json"
    if isinstance(parent, exp.Cast):
        return _cast_kind(parent)
    if isinstance(parent, _BOOLEAN_PARENTS) or (isinstance(parent, exp.If)
                                                 and child.arg_key == "this"):
        return "bool"
    if isinstance(parent, _SIBLINGS):
        for other in _operands(parent, child):
            kind = _literal_kind(other)
            if kind is not None:
                return kind
        if isinstance(parent, (exp.In, exp.Coalesce, exp.Nullif, exp.Greatest, exp.Least,
                               exp.Min, exp.Max)):
            return "number"
        return "json"
    if isinstance(parent, _NUMERIC):
        return "number"
    if isinstance(parent, _TEXTUAL):
        return "text"
    if isinstance(parent, exp.Count):
        return "json"
    return "text"


def infer_kinds(tree: exp.Expr, *, condition: bool) -> None:
    """Set each JsonPathValue's kind from where it stands (see the module docstring)."""
    for node in [n for n in tree.walk() if isinstance(n, JsonPathValue)]:
        # in walk order: of two paths compared, the second takes the first one's kind
        node.meta["kind"] = _kind_in_context(node, condition)


# --------------------------------------------------------------------------------------------
# rendering helpers for the dialect modules
# --------------------------------------------------------------------------------------------


def dollar_path(path: Path) -> str:
    """The path in MySQL/SQLite syntax: ``$."a"[0]`` (keys quoted, already validated)."""
    return "$" + "".join(f"[{s}]" if isinstance(s, int) else f'."{s}"' for s in path)
