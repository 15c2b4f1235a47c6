"""The foreign-key graph: one place that knows which table depends on which.

Nodes are "schema.table" names. The graph is read from the database (so it includes
schemas that this process never declared) and serves topological orders for populate,
cascading delete, drop, and diagrams.
"""

from __future__ import annotations

import graphlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection as SAConnection

    from .backends import Backend
    from .connection import Connection


LOAD_ATTEMPTS = 3
_AUTO_POPULATED = re.compile(r"_{1,2}[a-z][a-z0-9]*(?:_[a-z0-9]+)*")


def is_auto_populated_name(table: str) -> bool:
    """Whether a table name is that of an Imported (`_name`) or Computed (`__name`) master;
    parts (`master__part`) and hidden tables (`~name`) are not."""
    return _AUTO_POPULATED.fullmatch(table) is not None


@dataclass(frozen=True)
class Edge:
    """A foreign key from `child` to `parent`; `attr_map` maps child to parent attributes."""

    parent: str
    child: str
    attr_map: tuple[tuple[str, str], ...]
    primary: bool  # every foreign-key attribute is in the child's primary key
    #: the foreign key is not the child's whole primary key (many child rows per parent row)
    multi: bool = True

    @property
    def renamed(self) -> bool:
        return any(c != p for c, p in self.attr_map)


@dataclass
class Dependencies:
    """Parents and children of every table in the loaded schemas."""

    nodes: set[str] = field(default_factory=set)
    edges: list[Edge] = field(default_factory=list)

    @classmethod
    def load(cls, connection: Connection, schemas: Iterable[str] | None = None) -> Dependencies:
        """The graph of `schemas` (default: every schema), read from the database.

        Other sessions may drop schemas and tables while it reads: a schema that vanished
        meanwhile is left out, one whose tables changed meanwhile is read again.
        """
        backend = connection.backend_impl
        graph = cls()
        with connection.session(write=False) as sa_conn:
            names = list(schemas) if schemas is not None else backend.list_schemas(sa_conn)
        for schema in names:
            for attempt in range(LOAD_ATTEMPTS):
                try:
                    with connection.session(write=False) as sa_conn:
                        nodes, edges = _load_schema(sa_conn, backend, schema)
                    break
                # a catalog row vanishing mid-read can also surface inside SQLAlchemy's
                # reflection as a TypeError/KeyError (seen on PostgreSQL under churn)
                except (sa.exc.NoSuchTableError, sa.exc.DBAPIError, TypeError, KeyError):
                    with connection.session(write=False) as sa_conn:
                        if not backend.schema_exists(sa_conn, schema):
                            nodes, edges = set(), []  # dropped meanwhile
                            break
                    if attempt == LOAD_ATTEMPTS - 1:
                        raise
            graph.nodes.update(nodes)
            graph.edges.extend(edges)
        return graph

    def parents(self, node: str) -> list[Edge]:
        return [e for e in self.edges if e.child == node]

    def children(self, node: str) -> list[Edge]:
        return [e for e in self.edges if e.parent == node]

    def descendants(self, node: str) -> list[str]:
        """`node` and every table that depends on it, parents before children."""
        found = {node}
        frontier = [node]
        while frontier:
            current = frontier.pop()
            for edge in self.children(current):
                if edge.child not in found:
                    found.add(edge.child)
                    frontier.append(edge.child)
        return self.topological(found)

    def ancestors(self, node: str) -> list[str]:
        found = {node}
        frontier = [node]
        while frontier:
            current = frontier.pop()
            for edge in self.parents(current):
                if edge.parent not in found:
                    found.add(edge.parent)
                    frontier.append(edge.parent)
        return self.topological(found)

    def topological(self, nodes: Iterable[str] | None = None) -> list[str]:
        """The nodes ordered parents first (ties broken by name, so the order is stable)."""
        wanted = set(self.nodes if nodes is None else nodes)
        sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()
        for node in sorted(wanted):
            sorter.add(node)
        for edge in self.edges:
            if edge.child in wanted and edge.parent in wanted and edge.child != edge.parent:
                sorter.add(edge.child, edge.parent)
        sorter.prepare()
        ordered: list[str] = []
        while sorter.is_active():
            ready = sorted(sorter.get_ready())
            ordered.extend(ready)
            sorter.done(*ready)
        return ordered


def _load_schema(sa_conn: SAConnection, backend: Backend, schema: str
                 ) -> tuple[set[str], list[Edge]]:
    """Nodes and edges of one schema: one reflection call per kind for all its tables."""
    tables = backend.list_tables(sa_conn, schema)
    if not tables:
        return set(), []
    identities = {backend.table_identity(schema, table): table for table in tables}
    sa_schema = next(iter(identities))[0]
    names = [sa_name for _, sa_name in identities]
    inspector = sa.inspect(sa_conn)
    keys = inspector.get_multi_pk_constraint(schema=sa_schema, filter_names=names)
    foreign = inspector.get_multi_foreign_keys(schema=sa_schema, filter_names=names)
    nodes: set[str] = set()
    edges: list[Edge] = []
    for (_, sa_name), table in identities.items():
        node = f"{schema}.{table}"
        nodes.add(node)
        constraint: Any = keys.get((sa_schema, sa_name)) or {}
        key = set(constraint.get("constrained_columns") or [])
        for fk in foreign.get((sa_schema, sa_name)) or []:
            parent_schema, parent_table = backend.split_identity(
                fk.get("referred_schema") or sa_schema, fk["referred_table"])
            pairs = tuple(zip(fk["constrained_columns"], fk["referred_columns"]))
            edges.append(Edge(parent=f"{parent_schema}.{parent_table}", child=node,
                              attr_map=pairs, primary=all(c in key for c, _ in pairs),
                              multi={c for c, _ in pairs} != key))
    return nodes, edges
