"""Deleting rows (with cascade to dependents) and dropping tables (dependents first).

A cascading delete is planned on the foreign-key graph of every schema in the database, so
dependents in other schemas are found too. Each table's doomed rows are described by a
subquery over its parents' doomed rows (following the foreign keys, renamed attributes
included) down from the restricted table, and the tables are emptied children first inside
one transaction: either every row goes or none does.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.sql import visitors

from .dependencies import Dependencies, Edge
from .errors import DataJointError
from .settings import config

if TYPE_CHECKING:
    from .connection import Connection
    from .expression import QueryExpression
    from .table import Table

#: "[prefix]master__part": a part table's name starts with its master's name
_PART_NAME = re.compile(r"^(?P<master>(?:#|_{1,2})?[a-z0-9][a-z0-9_]*?)__[a-z0-9]")
#: root keys restrict the cascade in chunks of this many when they must be read first
KEY_CHUNK = 1000


def confirm(question: str) -> bool:
    """Ask on stdin (answerable from tests and notebooks through input())."""
    answer = ""
    while answer not in ("yes", "no", "y", "n"):
        answer = input(f"{question} [yes/no]: ").strip().lower()
    return answer in ("yes", "y")


def _sa_table_for(connection: Connection, node: str) -> sa.Table:
    schema, _, table = node.partition(".")
    sa_schema, sa_name = connection.backend_impl.table_identity(schema, table)
    with connection.session(write=False) as sa_conn:
        return sa.Table(sa_name, sa.MetaData(), schema=sa_schema, autoload_with=sa_conn)


def drop_tables(connection: Connection, nodes: list[str]) -> None:
    """Drop tables in the given order (children first), forgetting their comments."""
    backend = connection.backend_impl
    with connection.session(write=True) as sa_conn:
        for node in nodes:
            schema, _, table = node.partition(".")
            sa_schema, sa_name = backend.table_identity(schema, table)
            stub = sa.Table(sa_name, sa.MetaData(), schema=sa_schema)
            backend.before_drop(sa_conn, stub)
            stub.drop(sa_conn, checkfirst=True)


def load_graph(connection: Connection, attempts: int = 3) -> Dependencies:
    """The foreign-key graph of every schema; reloaded when a schema or table vanished while
    it was being read (other sessions may drop theirs at any moment)."""
    for attempt in range(attempts):
        try:
            return Dependencies.load(connection)
        except (sa.exc.NoSuchTableError, sa.exc.OperationalError, sa.exc.ProgrammingError):
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def master_of(node: str, graph: Dependencies) -> str | None:
    """The master of a part table node (when the graph shows the part referencing it)."""
    schema, _, name = node.partition(".")
    match = _PART_NAME.match(name)
    if not match:
        return None
    master = f"{schema}.{match.group('master')}"
    if master in graph.nodes and any(e.parent == master for e in graph.parents(node)):
        return master
    return None


def drop_with_dependents(table: Table, *, prompt: bool, force: bool = False) -> None:
    connection = table.connection
    graph = load_graph(connection)
    if not force:
        master = master_of(table.node_name, graph)
        if master is not None:
            raise DataJointError(f"Cannot drop part table {type(table).__name__} "
                                 f"({table.node_name}) alone: drop its master {master}, "
                                 "or use force=True")
    nodes = graph.descendants(table.node_name)
    if prompt and config["safemode"]:
        for node in nodes:
            print(f"{node} ({_count(connection, node)} rows)")
        if not confirm(f"Drop {len(nodes)} table(s)?"):
            print("Drop cancelled")
            return
    drop_tables(connection, list(reversed(nodes)))
    _forget_declared(table, nodes)


def _forget_declared(table: Table, nodes: list[str]) -> None:
    schema = table._schema
    if schema is not None:
        schema.forget_tables(nodes)


def _count(connection: Connection, node: str) -> int:
    schema, _, table = node.partition(".")
    sa_schema, sa_name = connection.backend_impl.table_identity(schema, table)
    stub = sa.table(sa_name, schema=sa_schema)
    return int(connection.query(sa.select(sa.func.count()).select_from(stub))[0][0])


def _key_subquery(expr: QueryExpression) -> Any:
    """The primary keys of expr's rows as a derived table (which also keeps MySQL from
    refusing a subquery on the table being deleted from)."""
    key = expr.primary_key
    select = expr.to_select()
    source = select.subquery()
    keys = sa.select(*(source.c[k] for k in key)).subquery()
    return sa.select(*keys.c).subquery()


def _restriction_clause(expr: QueryExpression, sa_table: Any) -> Any:
    """WHERE clause selecting the rows of sa_table named by the primary keys of expr."""
    keys = _key_subquery(expr)
    return sa.select(sa.literal(1)).select_from(keys).where(
        *(keys.c[k] == sa_table.c[k] for k in expr.primary_key)).exists()


def delete_quick(table: Table) -> int:
    """Delete the rows of a (restricted) table, without cascading."""
    from .insert import classified

    connection = table.connection
    sa_table = table._sa_table
    assert sa_table is not None
    statement = sa.delete(sa_table)
    if table.restrictions:
        statement = statement.where(_restriction_clause(table, sa_table))
    try:
        with connection.session(write=True) as sa_conn:
            return int(sa_conn.execute(statement).rowcount)
    except DataJointError:
        raise
    except Exception as error:
        raise classified(connection, error, table, "delete from") from error


# ------------------------------------------------------------------------- cascading delete

@dataclass
class _Plan:
    """The tables a delete reaches, parents first, and how each one's rows are named.

    Tables other than the root are lightweight clauses naming only the foreign-key columns
    the plan uses; each one's doomed rows are an EXISTS over a doomed parent row, correlated
    on the foreign key, so no table needs reflecting.
    """

    root: str
    root_table: Any
    nodes: list[str]
    edges: dict[str, list[Edge]] = field(default_factory=dict)  # child -> edges from doomed
    tables: dict[str, Any] = field(default_factory=dict)

    def condition(self, node: str, root_clause: Any, cache: dict[str, Any]) -> Any:
        """WHERE clause over `node`'s table naming the rows the delete reaches."""
        if node == self.root:
            return root_clause
        if node not in cache:
            child = self.tables[node]
            cache[node] = sa.or_(*(
                sa.exists().where(self.condition(edge.parent, root_clause, cache),
                                  *(self.tables[edge.parent].c[p] == child.c[c]
                                    for c, p in edge.attr_map))
                for edge in self.edges[node]))
        return cache[node]


def _plan(connection: Connection, table: Table, graph: Dependencies) -> _Plan:
    root = table.node_name
    nodes = graph.descendants(root)
    doomed = set(nodes)
    plan = _Plan(root=root, root_table=table._sa_table, nodes=nodes)
    used: dict[str, set[str]] = {n: set() for n in nodes}
    for node in nodes[1:]:
        edges = [e for e in graph.parents(node) if e.parent in doomed and e.parent != node]
        plan.edges[node] = edges
        for edge in edges:
            used[node].update(c for c, _ in edge.attr_map)
            used[edge.parent].update(p for _, p in edge.attr_map)
    backend = connection.backend_impl
    plan.tables[root] = plan.root_table
    for node in nodes[1:]:
        sa_schema, sa_name = backend.table_identity(*node.split(".", 1))
        plan.tables[node] = sa.table(sa_name, *(sa.column(c) for c in sorted(used[node])),
                                     schema=sa_schema)
    return plan


def _referenced(select: Any) -> set[tuple[str | None, str]]:
    """(schema, name) of every table a statement reads."""
    found = set()
    for element in visitors.iterate(select):
        if isinstance(element, sa.TableClause) and not isinstance(element, sa.sql.Alias):
            found.add((getattr(element, "schema", None), element.name))
    return found


def cascade_delete(table: Table, *, safemode: bool | None, force_parts: bool) -> int:
    """Delete table's rows and every row that depends on them; see Table.delete."""
    from .insert import classified, label

    connection = table.connection
    graph = load_graph(connection)
    if table.node_name not in graph.nodes:
        raise DataJointError(f"{label(table)} is not in the database")
    plan = _plan(connection, table, graph)
    if not force_parts:
        for node in plan.nodes:
            master = master_of(node, graph)
            if master is not None and master not in plan.nodes:
                raise DataJointError(
                    f"Deleting from part table {node} without its master {master} is refused: "
                    "delete from the master, or use force_parts=True")
    root_table = plan.root_table
    assert root_table is not None
    ask = (config["safemode"] if safemode is None else safemode) and not connection.in_transaction
    backend = connection.backend_impl
    identities = {backend.table_identity(*n.split(".", 1)) for n in plan.nodes[1:]}
    counts: dict[str, int] = dict.fromkeys(plan.nodes, 0)
    try:
        with connection.session(write=True) as sa_conn:
            if not table.restrictions:
                _delete_cascade(sa_conn, plan, sa.true(), counts)
            elif _referenced(table.to_select()) & identities:
                # the restriction reads tables the cascade empties: read the keys first
                key = table.primary_key
                select = table.to_select().subquery()
                rows = sa_conn.execute(sa.select(*(select.c[k] for k in key)).distinct()).all()
                for start in range(0, len(rows), KEY_CHUNK):
                    chunk = [tuple(r) for r in rows[start:start + KEY_CHUNK]]
                    columns = [root_table.c[k] for k in key]
                    clause = (columns[0].in_([r[0] for r in chunk]) if len(columns) == 1
                              else sa.tuple_(*columns).in_(chunk))
                    _delete_cascade(sa_conn, plan, clause, counts)
            else:
                _delete_cascade(sa_conn, plan, _restriction_clause(table, root_table), counts)
            if ask:
                reached = [(n, c) for n, c in counts.items() if c]
                if not reached:
                    print("Nothing to delete.")
                else:
                    for node, count in reached:
                        print(f"Deleting {count} row{'s' if count != 1 else ''} from {node}")
                    if not confirm("Commit deletes?"):
                        raise _Cancelled
    except _Cancelled:
        print("Delete cancelled")
        return 0
    except DataJointError:
        raise
    except Exception as error:
        raise classified(connection, error, table, "delete from") from error
    return counts[plan.root]


class _Cancelled(Exception):
    """Raised inside the transaction to roll a declined delete back."""


def _delete_cascade(sa_conn: Any, plan: _Plan, root_clause: Any, counts: dict[str, int]
                    ) -> None:
    cache: dict[str, Any] = {}
    for node in reversed(plan.nodes):  # children first
        statement = sa.delete(plan.tables[node]).where(plan.condition(node, root_clause, cache))
        counts[node] += int(sa_conn.execute(statement).rowcount)
