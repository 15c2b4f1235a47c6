"""MySQL meanings made explicit in the AST at parse time, before any backend sees it.

Two pieces of MySQL semantics have no node of their own, so no dialect module could
translate them: a number used as a truth value (``"flag"``, ``"not flag"``,
``"flag and x > 1"`` on an integer column), and date arithmetic with ``INTERVAL``
(``curdate() - interval 30 day``).  Here they become nodes every dialect module can
render: truth values of non-boolean operands compare with zero (a bare attribute is marked,
and the renderer decides from its column type), and interval arithmetic becomes
DateAdd/DateSub with a numeric amount.
"""

from __future__ import annotations

from typing import Final

from sqlglot import exp

from .jsonpath import JsonPathValue

#: meta key set on an attribute reference that stands where a truth value is expected
TRUTH: Final = "djsa_truth"

_BOOLEAN: Final = (exp.Predicate, exp.Connector, exp.Not, exp.Boolean, exp.Null,
                   exp.RegexpLike, exp.RegexpILike)


def normalize(tree: exp.Expr, *, condition: bool) -> exp.Expr:
    """The tree with interval arithmetic and truth values made explicit.

    ``condition`` says the whole fragment is a restriction, i.e. itself a truth value.
    """
    for node in list(tree.walk()):
        if isinstance(node, (exp.Add, exp.Sub)):
            new = _interval_arithmetic(node)
            if new is not node:
                if node is tree:
                    tree = new
                else:
                    node.replace(new)
        elif isinstance(node, (exp.DateAdd, exp.DateSub)):
            node.set("expression", _amount(node.expression))
    for node in list(tree.walk()):
        if isinstance(node, (exp.And, exp.Or, exp.Xor)):
            for key in ("this", "expression"):
                _truth(node.args.get(key))
        elif isinstance(node, exp.Not) or (isinstance(node, exp.If)):
            _truth(node.this)
    if condition:
        tree = _truth(tree) or tree
    return tree


def _truth(node: exp.Expr | None) -> exp.Expr | None:
    """``node`` as a truth value: unchanged if it is one, else compared with zero."""
    if node is None:
        return None
    inner = node
    while isinstance(inner, exp.Paren):
        inner = inner.this
    if isinstance(inner, _BOOLEAN) or isinstance(inner, (exp.Case, exp.If)):
        return node
    if isinstance(inner, JsonPathValue):  # a JSON true/false (anything else is NULL)
        inner.meta["kind"] = "bool"
        return node
    if isinstance(inner, exp.Column):
        inner.meta[TRUTH] = True  # the column's type decides; see clause.py
        return node
    compared = exp.NEQ(this=exp.Paren(this=inner.copy()), expression=exp.Literal.number(0))
    if inner.parent is None:
        return compared
    inner.replace(compared)
    return node if node is not inner else compared


def _amount(value: exp.Expr) -> exp.Expr:
    """An interval's amount as a number where it is written as one ('30' -> 30)."""
    if isinstance(value, exp.Literal) and value.is_string:
        text = value.this.strip()
        if text.lstrip("+-").isdigit():
            return exp.Literal.number(int(text))
    return value


def _interval_arithmetic(node: exp.Expr) -> exp.Expr:
    """``x +/- INTERVAL n unit`` (and ``INTERVAL n unit + x``) -> DateAdd/DateSub."""
    left, right = node.this, node.expression
    if isinstance(right, exp.Interval):
        interval, base = right, left
    elif isinstance(left, exp.Interval) and isinstance(node, exp.Add):
        interval, base = left, right
    else:
        return node
    cls = exp.DateAdd if isinstance(node, exp.Add) else exp.DateSub
    return cls(this=base, expression=_amount(interval.this), unit=interval.args.get("unit"))
