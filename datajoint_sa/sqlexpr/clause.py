"""The SQLAlchemy side of a fragment: a ColumnElement rendered per backend at compile time."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import operators
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ColumnElement, Grouping, UnaryExpression
from sqlalchemy.sql.visitors import InternalTraversal
from sqlglot import exp

from ..backends import BACKENDS, Backend
from ..errors import UnknownAttributeError
from .core import Fragment

__all__ = ["FragmentClause", "fragment_clause"]

_NEUTRAL_BACKEND: Final = Backend()

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
        self._key = (("?" if fragment.condition else "=") + fragment.text + "\x00"
                     + "\x00".join(fragment._columns))
        self._cols = cols
        self._binds = binds
        same = fragment._same_type_as
        self.type = cols[same].type if same is not None else fragment.type

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
    backend = BACKENDS.get(compiler.dialect.name, _NEUTRAL_BACKEND)
    template = element.fragment.sql_template(backend)
    kw.pop("add_to_result_map", None)  # inner columns are not result columns
    out: list[str] = []
    for piece in template:
        if isinstance(piece, str):
            out.append(compiler.post_process_text(piece))  # '%' -> '%%' for pyformat drivers
        elif piece[0] == "c":
            out.append(compiler.process(element._cols[piece[1]], **kw))
        elif piece[0] == "b":
            out.append(_truth(compiler, element._cols[piece[1]], **kw))
        else:
            out.append(compiler.process(element._binds[piece[1]], **kw))
    return "".join(out)


def _truth(compiler: SQLCompiler, column: ColumnElement[Any], **kw: Any) -> str:
    """An attribute used as a truth value: as it is when boolean, else ``(column <> 0)``
    (MySQL's meaning, which PostgreSQL does not apply to numbers by itself)."""
    affinity = getattr(column.type, "_type_affinity", None)
    sql = compiler.process(column, **kw)
    if isinstance(affinity, type) and issubclass(affinity, (sa.Integer, sa.Numeric, sa.Float)) \
            and not issubclass(affinity, sa.Boolean):
        return f"({sql} <> 0)"
    return sql


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
    partners = fragment._literal_partners
    binds = []
    for i, (value, type_) in enumerate(fragment._literals):
        partner = partners[i] if i < len(partners) else None
        if partner is not None:
            column_type = columns[partner[0]].type
            if isinstance(value, str):
                moment = _as_moment(value, column_type)
                if moment is not None:
                    value, type_ = moment
            elif partner[1] and isinstance(column_type, sa.String):
                # a number for text, for equality: its text, as a dict restriction takes it
                # (PostgreSQL refused `label = 5`; the others compared it their own ways)
                value, type_ = str(value), sa.String()
        binds.append(sa.bindparam(None, value, type_=type_, unique=True))
    return FragmentClause(fragment, cols, tuple(binds))


def _as_moment(text: str, column_type: Any) -> tuple[Any, Any] | None:
    """A string compared with a date, datetime or time attribute, as the value it names
    and the type to bind it in (MySQL's reading: '2024-01-02' is midnight for a datetime;
    a date attribute compared with a time of day is compared as the date's midnight).
    Each backend then compares it as it compares stored values (SQLite keeps text of one
    fixed form, which a string of another form did not match; PostgreSQL cut a time of day
    off to compare with a date). None where the text is no such value: it is then compared
    as written."""
    text = text.strip()
    try:
        if isinstance(column_type, sa.DateTime):
            return datetime.datetime.fromisoformat(text), column_type
        if isinstance(column_type, sa.Date):
            try:
                return datetime.date.fromisoformat(text), column_type
            except ValueError:
                moment = datetime.datetime.fromisoformat(text)
            if moment.tzinfo is None and moment.time() == datetime.time():
                return moment.date(), column_type
            return (moment, sa.DateTime()) if moment.tzinfo is None else None
        if isinstance(column_type, sa.Time):
            return datetime.time.fromisoformat(text), column_type
    except ValueError:
        return None
    return None
