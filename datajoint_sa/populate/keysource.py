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


