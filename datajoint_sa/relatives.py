"""A table's relatives in the foreign-key graph, as classic DataJoint's Table methods return
them: `parents`, `children`, `ancestors`, `descendants`, `parts`.

Classic code (the Elements among it) walks the graph with these: full table names quoted
for the backend, or table objects (`as_objects=True`, classes reflected from the database
like `FreeTable`, built by Table._reflector), or `(name, info)` pairs (`foreign_key_info=True`) whose info carries
classic's keys: `primary`, `attr_map` (child attribute -> parent attribute), `aliased`
(some attribute renamed) and `multi` (the foreign key is not the child's whole primary key).
The graph is read from the database each call (delete.load_graph), so relatives in other
schemas and in other processes' schemas are found.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .delete import load_graph
from .dependencies import Edge

if TYPE_CHECKING:
    from .connection import Connection
    from .table import Table


def quoted(connection: Connection, node: str) -> str:
    """The full table name, quoted for the backend, of graph node "schema.table"."""
    schema, _, name = node.partition(".")
    sa_schema, sa_name = connection.backend_impl.table_identity(schema, name)
    return connection.engine.dialect.identifier_preparer.format_table(
        sa.table(sa_name, schema=sa_schema))


def foreign_key_info(edge: Edge) -> dict[str, Any]:
    """Classic DataJoint's properties of a foreign key."""
    return {"primary": edge.primary, "attr_map": dict(edge.attr_map),
            "aliased": edge.renamed, "multi": edge.multi}


#: builds tables of graph nodes (Table._reflector: classes reflected from the database)
Reflector = Callable[[str], Any]


def _named(table: Table, found: list[tuple[str, Edge | None]], reflect: Reflector | None,
           with_info: bool) -> list[Any]:
    connection = table.connection

    def name(node: str) -> Any:
        return reflect(node) if reflect is not None else quoted(connection, node)

    if with_info:
        return [(name(node), foreign_key_info(edge)) for node, edge in found if edge]
    return [name(node) for node, _ in found]


def parents(table: Table, primary: bool | None, reflect: Reflector | None,
            with_info: bool) -> list[Any]:
    edges = load_graph(table.connection).parents(table.node_name)
    found: list[tuple[str, Edge | None]] = [
        (e.parent, e) for e in edges if primary is None or e.primary == primary]
    return _named(table, found, reflect, with_info)


def children(table: Table, primary: bool | None, reflect: Reflector | None,
             with_info: bool) -> list[Any]:
    edges = load_graph(table.connection).children(table.node_name)
    found: list[tuple[str, Edge | None]] = [
        (e.child, e) for e in edges if primary is None or e.primary == primary]
    return _named(table, found, reflect, with_info)


def ancestors(table: Table, reflect: Reflector | None) -> list[Any]:
    """The table and every table it depends on, parents first."""
    nodes = load_graph(table.connection).ancestors(table.node_name)
    return _named(table, [(n, None) for n in nodes], reflect, False)


def descendants(table: Table, reflect: Reflector | None) -> list[Any]:
    """The table and every table that depends on it, parents first."""
    nodes = load_graph(table.connection).descendants(table.node_name)
    return _named(table, [(n, None) for n in nodes], reflect, False)


def parts(table: Table, reflect: Reflector | None) -> list[Any]:
    """The part tables of a master, found in the database (`master__part`)."""
    graph = load_graph(table.connection)
    prefix = f"{table.node_name}__"
    nodes = sorted(n for n in graph.nodes if n.startswith(prefix))
    return _named(table, [(n, None) for n in nodes], reflect, False)


class PartClasses(list):
    """The part classes of a master (`table.parts`). Called, it is classic DataJoint's
    `table.parts(as_objects=False)`: the part tables in the database, by full name."""

    def __init__(self, table: Table, classes: list[type[Table]]) -> None:
        super().__init__(classes)
        self._table = table

    def __call__(self, as_objects: bool = False) -> list[Any]:
        return parts(self._table, self._table._reflector() if as_objects else None)
