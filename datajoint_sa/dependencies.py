"""The foreign-key graph: one place that knows which table depends on which.

Nodes are "schema.table" names. The graph is read from the database (so it includes
schemas that this process never declared) and serves topological orders for populate,
cascading delete, drop, and diagrams.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import sqlalchemy as sa

if TYPE_CHECKING:
    from .connection import Connection


@dataclass(frozen=True)
class Edge:
    """A foreign key from `child` to `parent`; `attr_map` maps child to parent attributes."""

    parent: str
    child: str
    attr_map: tuple[tuple[str, str], ...]
    primary: bool  # every foreign-key attribute is in the child's primary key

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
        backend = connection.backend_impl
        graph = cls()
        with connection.session(write=False) as sa_conn:
            names = list(schemas) if schemas is not None else backend.list_schemas(sa_conn)
            inspector = sa.inspect(sa_conn)
            for schema in names:
                for table in backend.list_tables(sa_conn, schema):
                    sa_schema, sa_name = backend.table_identity(schema, table)
                    node = f"{schema}.{table}"
                    graph.nodes.add(node)
                    key = set(inspector.get_pk_constraint(sa_name, schema=sa_schema)
                              .get("constrained_columns") or [])
                    for fk in inspector.get_foreign_keys(sa_name, schema=sa_schema):
                        parent_schema, parent_table = backend.split_identity(
                            fk.get("referred_schema") or sa_schema, fk["referred_table"])
                        pairs = tuple(zip(fk["constrained_columns"], fk["referred_columns"]))
                        graph.edges.append(Edge(
                            parent=f"{parent_schema}.{parent_table}", child=node,
                            attr_map=pairs, primary=all(c in key for c, _ in pairs)))
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
