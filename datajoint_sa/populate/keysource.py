"""The key source of a table and the one query for the keys it still has to do.
"""

from __future__ import annotations

import logging
from functools import reduce
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import DataJointError

if TYPE_CHECKING:
    from ..expression import QueryExpression
    from ..table import Table

logger = logging.getLogger("datajoint_sa")


# --------------------------------------------------------------------------- the key source

def default_key_source(table: Table) -> QueryExpression:
    """The join of the primary-key parents, projected to their keys (renames applied)."""
    spec = table._spec
    parents = [fk for fk in spec.foreign_keys if fk.in_key] if spec is not None else []
    if not parents:
        raise DataJointError(
            f"{type(table).__name__} has no foreign keys in its primary key, so it has no "
            "default key_source: define key_source")
    terms = []
    for fk in parents:
        parent = fk.parent() if isinstance(fk.parent, type) else fk.parent
        renames = {c: p for c, p in zip(fk.attributes, fk.parent_attributes) if c != p}
        terms.append(parent.proj(**renames) if renames else parent.proj())
    return reduce(lambda a, b: a * b, terms).proj()


def _restricted_source(table: Any, restrictions: tuple[Any, ...]) -> Any:
    source = table.key_source
    if isinstance(source, type):
        source = source()
    for condition in restrictions:
        source = source & condition
    return source


def _done_clause(table: Any, sub: Any, names: list[str]) -> Any:
    """EXISTS(the table has a row matching the key source row), on common attributes."""
    target = table._sa_table
    common = [n for n in names if n in target.c]
    return sa.exists(sa.select(sa.literal(1)).select_from(target).where(
        *(target.c[n] == sub.c[n] for n in common)))


def _todo_select(table: Any, restrictions: tuple[Any, ...]) -> tuple[sa.Select[Any], list[str]]:
    """One query for the keys to do: the key source NOT EXISTS in the table."""
    source = _restricted_source(table, restrictions)
    names = list(source.primary_key)
    sub = source.to_select().subquery("key_source")
    select = sa.select(*(sub.c[n] for n in names)).where(
        ~_done_clause(table, sub, names)).order_by(*(sub.c[n] for n in names))
    return select, names





class TodoAmong:
    """The keys to do of `table` whose attributes `names` take one of many given values: the
    downstream keys that a batch of committed upstream keys made ready, in ONE query.

    Built once per table and attribute set, with the values bound at execution as an
    expanding parameter, so the statement compiles once however many keys a batch holds
    (a restriction by a list of keys would be a new statement for every batch). Several
    names are matched as a row value, `(a, b) IN (...)`, plus `a IN (...)` on the first:
    SQLite uses an index for the latter only. No names: every key to do.
    """

    def __init__(self, table: Any, names: tuple[str, ...]) -> None:
        source = _restricted_source(table, ())
        self.table_name: str = type(table).__name__
        self.names = names
        self.keys: list[str] = list(source.primary_key)
        sub = source.to_select().subquery("key_source")
        missing = [n for n in names if n not in sub.c]
        if missing:
            raise DataJointError(f"The key source of {type(table).__name__} has no attribute "
                                 f"{', '.join(missing)}")
        select = sa.select(*(sub.c[n] for n in self.keys)).where(
            ~_done_clause(table, sub, self.keys))
        if names:
            first = sub.c[names[0]]
            select = select.where(first.in_(sa.bindparam("among_first", expanding=True)))
        if len(names) > 1:
            select = select.where(sa.tuple_(*(sub.c[n] for n in names)).in_(
                sa.bindparam("among", expanding=True)))
        self.select = select.order_by(*(sub.c[n] for n in self.keys))
        self.connection = table.connection

    def __call__(self, values: list[tuple[Any, ...]]) -> list[dict[str, Any]]:
        """The keys to do among `values` (tuples in the order of `names`)."""
        params: dict[str, Any] = {}
        if self.names:
            if not values:
                return []
            params["among_first"] = list(dict.fromkeys(v[0] for v in values))
        if len(self.names) > 1:
            params["among"] = values
        rows = self.connection.query(self.select, params or None)
        return [dict(zip(self.keys, row)) for row in rows]
