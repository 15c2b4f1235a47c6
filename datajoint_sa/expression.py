"""Query expressions: immutable trees of operators compiled to SQLAlchemy Core `Select`s.

Building an expression runs no SQL. Every node has a `heading` and compiles with
`to_select()` into a Select whose selected columns are labelled with attribute names.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .errors import DataJointError
from .heading import Heading

if TYPE_CHECKING:
    from .connection import Connection


class QueryExpression:
    """Base of every query: a heading, a connection, and a compilation to a Select."""

    _heading: Heading | None = None
    _connection: Connection | None = None
    restrictions: tuple[Any, ...] = ()

    # ---- contract -----------------------------------------------------------------------
    @property
    def heading(self) -> Heading:
        assert self._heading is not None, "expression without a heading"
        return self._heading

    @property
    def connection(self) -> Connection:
        if self._connection is None:
            raise DataJointError(f"{self!r} is not bound to a connection")
        return self._connection

    @property
    def primary_key(self) -> list[str]:
        return self.heading.primary_key

    def to_select(self) -> sa.Select[Any]:
        """The SQLAlchemy Select of this expression (columns labelled by attribute name)."""
        raise NotImplementedError

    @property
    def select(self) -> sa.Select[Any]:
        return self.to_select()

    @property
    def sql(self) -> sa.Select[Any]:
        return self.to_select()

    def make_sql(self) -> str:
        """SQL text for the current backend, with values inlined for reading only."""
        compiled = self.to_select().compile(
            dialect=self.connection.engine.dialect, compile_kwargs={"literal_binds": True})
        return str(compiled)

    # ---- restriction by key (the algebra extends this) -----------------------------------
    def __and__(self, condition: Any) -> QueryExpression:
        return self.restrict(condition)

    def restrict(self, condition: Any) -> QueryExpression:
        return restricted_copy(self, condition)

    # ---- fetching -----------------------------------------------------------------------
    def fetch(self, *attrs: str, **kwargs: Any) -> Any:
        from .fetch import fetch

        return fetch(self, *attrs, **kwargs)

    def fetch1(self, *attrs: str, **kwargs: Any) -> Any:
        from .fetch import fetch1

        return fetch1(self, *attrs, **kwargs)

    def __len__(self) -> int:
        subquery = self.to_select().subquery()
        return int(self.connection.query(sa.select(sa.func.count()).select_from(subquery))[0][0])

    def __bool__(self) -> bool:
        return len(self) > 0

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.fetch(as_dict=True))


def restricted_copy(expr: Any, condition: Any) -> Any:
    """A shallow copy of `expr` with one more restriction (expressions are immutable)."""
    copy = object.__new__(type(expr))
    copy.__dict__.update(expr.__dict__)
    copy.restrictions = (*expr.restrictions, condition)
    return copy


def apply_restrictions(select: sa.Select[Any], heading: Heading,
                       restrictions: tuple[Any, ...]) -> sa.Select[Any]:
    """The select with every restriction applied (dict conditions; the algebra extends)."""
    columns = select.selected_columns
    for condition in restrictions:
        if not isinstance(condition, Mapping):
            raise DataJointError("this restriction form is not supported yet")
        select = select.where(*(columns[k] == v for k, v in condition.items() if k in heading))
    return select
