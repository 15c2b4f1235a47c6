"""Deleting rows (with cascade to dependents) and dropping tables (dependents first).

A cascading delete is planned on the foreign-key graph of every schema in the database, so
dependents in other schemas are found too. Inside one transaction, each level's doomed keys
are named by a subquery over its parents' (following the foreign keys, renamed attributes
included), kept in a temporary table every few levels, then the tables are emptied
children first: either every row goes or none does, and no statement nests deeply however
long the chain.
Part rows go with their master rows; deleting part rows whose master rows stay is refused
unless the caller asks for those masters too (`force_masters`) or for the parts alone.
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql import visitors

from . import lineage
from .connection import label
from .dependencies import Dependencies, Edge
from .errors import DataJointError
from .prompt import confirm
from .settings import config

if TYPE_CHECKING:
    from .connection import Connection
    from .expression import QueryExpression
    from .table import Table

#: "[prefix]master__part": a part table's name starts with its master's name
_PART_NAME = re.compile(r"^(?P<master>(?:#|_{1,2})?[a-z0-9][a-z0-9_]*?)__[a-z0-9]")


def drop_tables(connection: Connection, nodes: list[str]) -> None:
    """Drop tables in the given order (children first), forgetting their comments."""
    connection.check_ddl(f"drop {', '.join(nodes)}")
    backend = connection.backend_impl
    with connection.session(write=True) as sa_conn:
        for node in nodes:
            schema, _, table = node.partition(".")
            sa_schema, sa_name = backend.table_identity(schema, table)
            stub = sa.Table(sa_name, sa.MetaData(), schema=sa_schema)
            # e.g. a dependent in another user's schema, which this user may not drop
            with connection.translating(node, "drop"):
                backend.before_drop(sa_conn, stub)
                stub.drop(sa_conn, checkfirst=True)
                lineage.forget(sa_conn, backend, schema, table)


def load_graph(connection: Connection, attempts: int = 3, *, around: str | None = None
               ) -> Dependencies:
    """The foreign-key graph of every schema, or (`around` a schema) of the schemas a
    cascade from that schema can reach; reloaded when a schema or table vanished while it
    was being read (other sessions may drop theirs at any moment)."""
    for attempt in range(attempts):
        try:
            schemas = _reaching(connection, around) if around is not None else None
            graph = Dependencies.load(connection, schemas)
            _remember_parents(connection, graph)
            return graph
        except (sa.exc.NoSuchTableError, sa.exc.OperationalError, sa.exc.ProgrammingError):
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


#: per connection, the tables that had dependent tables when the graph was last read: a
#: delete from one of them reads the graph at once instead of trying a plain DELETE first
_PARENTS: weakref.WeakKeyDictionary[Connection, set[str]] = weakref.WeakKeyDictionary()


def _remember_parents(connection: Connection, graph: Dependencies) -> None:
    known = _PARENTS.setdefault(connection, set())
    known -= graph.nodes
    known |= {e.parent for e in graph.edges if e.child != e.parent}


def _reaching(connection: Connection, schema: str) -> list[str] | None:
    """`schema` and every schema whose tables refer to it, directly or through another: all
    that a cascade from it can reach, one catalog query per schema (None where the backend
    cannot tell: then the whole graph is read)."""
    backend = connection.backend_impl
    found, frontier = {schema}, [schema]
    with connection.session(write=False) as sa_conn:
        while frontier:
            referring = backend.referencing_schemas(sa_conn, frontier.pop())
            if referring is None:
                return None
            frontier.extend(referring - found)
            found |= referring
    return sorted(found)


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
    graph = load_graph(connection, around=table.database)
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
    connection = table.connection
    sa_table = table._sa_table
    assert sa_table is not None
    statement = sa.delete(sa_table)
    if table.restrictions:
        statement = statement.where(_restriction_clause(table, sa_table))
    with connection.translating(table, "delete from"):
        with connection.session(write=True) as sa_conn:
            return int(sa_conn.execute(statement).rowcount)


# ------------------------------------------------------------------------- cascading delete

#: levels of subqueries a cascade nests before it keeps a level's keys in a temporary table
MAX_INLINE = 3


class _CreateTemporaryAs(sa.sql.expression.Executable, sa.sql.expression.ClauseElement):
    """CREATE TEMPORARY TABLE name AS SELECT ...: the same words on every backend."""

    inherit_cache = False

    def __init__(self, table: sa.TableClause, select: Any) -> None:
        self.table, self.select = table, select


@compiles(_CreateTemporaryAs)
def _compile_create_temporary_as(element: _CreateTemporaryAs, compiler: Any, **kw: Any) -> str:
    name = compiler.preparer.format_table(element.table)
    return f"CREATE TEMPORARY TABLE {name} AS {compiler.process(element.select, **kw)}"


@dataclass
class _Round:
    """One cascade: the rows of `root` named by `root_rows`, and every row depending on them.

    A level's doomed rows are named by a subquery over its parent level's, or, every
    MAX_INLINE levels (and where a table is reached by several foreign keys, or is a part
    whose master must be checked), kept in a temporary table of the key columns its
    children need. No statement nests more than MAX_INLINE levels however long the chain
    (SQLite's parser overflows on nested EXISTS after about ten levels).
    """

    connection: Connection
    graph: Dependencies
    root: str
    root_key: list[str]
    root_rows: Any  # a Select whose columns include root_key and the columns children need
    #: the restricted table, when the root may be named inline (its restriction reads no
    #: table the cascade empties); else its keys go to a temporary table first
    root_expr: Any = None
    nodes: list[str] = field(default_factory=list)
    edges: dict[str, list[Edge]] = field(default_factory=dict)  # child -> edges from doomed
    keep: dict[str, set[str]] = field(default_factory=dict)  # node -> its temp table columns
    masters: dict[str, tuple[str, Edge]] = field(default_factory=dict)  # part -> master edge
    kept: dict[str, Any] = field(default_factory=dict)  # node -> temp table or subquery
    #: tables emptied whole: every row goes, so they are deleted with no WHERE and named
    #: by the table itself (see `_emptied`)
    whole: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self.nodes = self.graph.descendants(self.root)
        doomed = set(self.nodes)
        self.keep = {n: set() for n in self.nodes}
        self.keep[self.root].update(self.root_key)
        for node in self.nodes[1:]:
            self.edges[node] = [e for e in self.graph.parents(node)
                                if e.parent in doomed and e.parent != node]
            for edge in self.edges[node]:
                self.keep[edge.parent].update(p for _, p in edge.attr_map)
        self.whole = self._emptied()
        for node in self.nodes:
            master = master_of(node, self.graph)
            # a part reached only from its master loses rows only with their master rows;
            # one whose master is emptied too can leave no master row behind
            if master is not None and master not in self.whole and not (
                    node != self.root and all(e.parent == master for e in self.edges[node])):
                edge = next(e for e in self.graph.parents(node) if e.parent == master)
                self.masters[node] = (master, edge)
                self.keep[node].update(c for c, _ in edge.attr_map)

    def _emptied(self) -> set[str]:
        """The tables this round empties: the root when it is deleted unrestricted, and each
        table with a foreign key inside its primary key (so never NULL) to an emptied table.
        The database enforces that key, so every row of such a table refers to a row that
        goes: a plain DELETE removes the same rows as naming them through the parents' keys,
        without reading the parents (what a caller emptying a whole chain pays for)."""
        if self.root_expr is None or self.root_expr.restrictions:
            return set()
        whole = {self.root}
        for node in self.nodes[1:]:
            if any(e.parent in whole and e.primary for e in self.edges[node]):
                whole.add(node)
        return whole

    def table(self, node: str, columns: set[str]) -> sa.TableClause:
        sa_schema, sa_name = self.connection.backend_impl.table_identity(*node.split(".", 1))
        return sa.table(sa_name, *(sa.column(c) for c in sorted(columns)), schema=sa_schema)

    def in_edge_columns(self, node: str) -> set[str]:
        return {c for e in self.edges.get(node, []) for c, _ in e.attr_map}

    def run(self, sa_conn: Any, temporaries: _Temporaries, counts: dict[str, int]) -> None:
        """Fill the temporary tables parents first, then delete children first."""
        kept: dict[str, Any] = {}
        depth: dict[str, int] = {}  # subqueries between a node's rows and a temporary table
        for node in self.nodes:
            if not self.keep[node]:
                continue
            if node in self.whole and node not in self.masters:
                kept[node], depth[node] = self.table(node, self.keep[node]), 0
                continue
            if node == self.root:
                # no DISTINCT: the columns include the root's primary key, so its rows are
                # distinct already, and a DISTINCT derived table is one MySQL cannot merge
                # into the statement (it materializes it, on disk once it outgrows
                # tmp_table_size, in every statement that reads it)
                source = self.root_rows.subquery()
                selects = [sa.select(*(source.c[c] for c in sorted(self.keep[node])))]
                if self.root_expr is not None and node not in self.masters:
                    kept[node], depth[node] = selects[0].subquery(), 1
                    continue
            elif node in self.whole:  # a part whose master rows must be checked after
                table = self.table(node, self.keep[node])
                selects = [sa.select(*(table.c[c] for c in sorted(self.keep[node])))]
            else:
                edges = self.edges[node]
                table = self.table(node, self.keep[node] | self.in_edge_columns(node))
                selects = [sa.select(*(table.c[c] for c in sorted(self.keep[node])))
                           .where(self.doomed_by(table, edge, kept)) for edge in edges]
                level = 1 + max(depth[e.parent] for e in edges)
                # a node reached by one foreign key is named by a subquery over its parent's
                # rows, as long as the nesting stays shallow: a temporary table costs more
                # round trips than a short chain of EXISTS (MySQL reads a temporary table only
                # once a statement, hence one foreign key)
                if len(edges) == 1 and node not in self.masters and level <= MAX_INLINE:
                    kept[node], depth[node] = selects[0].subquery(), level
                    continue
            kept[node] = temporaries.create(sa_conn, node, sorted(self.keep[node]), selects)
            depth[node] = 0
        for node in reversed(self.nodes):
            if node in self.whole:
                statements = [sa.delete(self.table(node, set()))]
            elif node == self.root and self.root_expr is not None and node not in self.masters:
                root_table = self.root_expr._sa_table
                statements = [sa.delete(root_table) if not self.root_expr.restrictions else
                              sa.delete(root_table).where(
                                  _restriction_clause(self.root_expr, root_table))]
            elif node == self.root:
                table = self.table(node, set(self.root_key))
                kept_root = kept[node]
                statements = [sa.delete(table).where(sa.exists().where(
                    *(kept_root.c[k] == table.c[k] for k in self.root_key)))]
            else:
                table = self.table(node, self.in_edge_columns(node))
                statements = [sa.delete(table).where(self.doomed_by(table, edge, kept))
                              for edge in self.edges[node]]
            for statement in statements:  # one statement per foreign key: MySQL reads a
                counts[node] = counts.get(node, 0) + int(  # temporary table once a statement
                    sa_conn.execute(statement).rowcount)
        self.kept = kept

    @staticmethod
    def doomed_by(table: sa.TableClause, edge: Edge, kept: dict[str, Any]) -> Any:
        parent = kept[edge.parent]
        return sa.exists().where(*(parent.c[p] == table.c[c] for c, p in edge.attr_map))

    def orphaned_parts(self, sa_conn: Any) -> list[tuple[str, str, int]]:
        """(part, master, rows) for deleted part rows whose master rows are still there."""
        found = []
        for part, (master, edge) in self.masters.items():
            gone = self.kept[part]
            master_table = self.table(master, {p for _, p in edge.attr_map})
            count = sa_conn.execute(sa.select(sa.func.count()).select_from(gone).where(
                sa.exists().where(*(master_table.c[p] == gone.c[c] for c, p in edge.attr_map))
            )).scalar()
            if count:
                found.append((part, master, int(count)))
        return found

    def masters_of_orphans(self, part: str) -> tuple[str, list[str], Any]:
        """The next round's root: the master rows of the deleted rows of `part`."""
        master, edge = self.masters[part]
        gone = self.kept[part]
        key = [p for _, p in edge.attr_map]
        master_table = self.table(master, set(key))
        rows = sa.select(*(master_table.c[k] for k in key)).where(
            sa.exists().where(*(master_table.c[p] == gone.c[c] for c, p in edge.attr_map)))
        return master, key, rows


class _Temporaries:
    """The temporary tables of one delete, dropped when it is done."""

    def __init__(self, connection: Connection) -> None:
        self.backend = connection.backend_impl
        self.made: list[sa.TableClause] = []

    def create(self, sa_conn: Any, node: str, columns: list[str], selects: list[Any]
               ) -> sa.TableClause:
        sa_schema = self.backend.temporary_schema(
            self.backend.table_identity(*node.split(".", 1))[0])
        # the same names in every delete (each drops its own), so compiled statements are
        # reused from SQLAlchemy's cache
        table = sa.table(f"dj_doomed_{len(self.made)}",
                         *(sa.column(c) for c in columns), schema=sa_schema)
        sa_conn.execute(_CreateTemporaryAs(table, selects[0]))
        self.made.append(table)
        for select in selects[1:]:
            sa_conn.execute(sa.insert(table).from_select(columns, select))
        return table

    def drop(self, sa_conn: Any) -> None:
        while self.made:
            self.backend.drop_temporary(sa_conn, self.made.pop())

    def discard(self, sa_conn: Any) -> None:
        """After a failed statement: a rollback removes them where DDL is transactional,
        MySQL keeps them, so drop what can be dropped."""
        try:
            with sa_conn.begin_nested():
                self.drop(sa_conn)
        except Exception:  # the transaction is aborted (PostgreSQL): its rollback drops them
            self.made.clear()


def _referenced(select: Any) -> set[tuple[str | None, str]]:
    """(schema, name) of every table a statement reads."""
    found = set()
    for element in visitors.iterate(select):
        if isinstance(element, sa.TableClause) and not isinstance(element, sa.sql.Alias):
            found.add((getattr(element, "schema", None), element.name))
    return found


def _first_round(connection: Connection, graph: Dependencies, table: Table) -> _Round:
    """The cascade from the restricted table; its rows are named inline unless the
    restriction reads a table the cascade empties (then its keys are kept first)."""
    backend = connection.backend_impl
    select = table.to_select()
    emptied = {backend.table_identity(*n.split(".", 1))
               for n in graph.descendants(table.node_name)[1:]}
    inline = not (table.restrictions and _referenced(select) & emptied)
    return _Round(connection, graph, table.node_name, list(table.primary_key), select,
                  root_expr=table if inline else None)


def cascade_delete(table: Table, *, safemode: bool | None, force_parts: bool = False,
                   force_masters: bool = False,
                   decide: Callable[[dict[str, int]], bool] | None = None) -> int:
    """Delete table's rows and every row that depends on them; see Table.delete.

    `decide`, when given, is asked instead of the prompt, inside the transaction, with the
    rows deleted per table ("schema.table" -> count): False rolls everything back (the web
    app's forms show the cascade this way before anything is deleted)."""
    connection = table.connection
    ask = (config["safemode"] if safemode is None else safemode) and not connection.in_transaction
    alone = _delete_alone(table, ask, decide)
    if alone is not None:
        return alone
    graph = load_graph(connection, around=table.database)
    if table.node_name not in graph.nodes:
        raise DataJointError(f"{label(table)} is not in the database")
    counts: dict[str, int] = {}
    temporaries = _Temporaries(connection)
    try:
        with connection.translating(table, "delete from"), \
                connection.session(write=True) as sa_conn:
            pending = [_first_round(connection, graph, table)]
            while pending:  # each further round deletes master rows, so this ends
                cascade = pending.pop(0)
                try:
                    cascade.run(sa_conn, temporaries, counts)
                except sa.exc.DBAPIError:
                    temporaries.discard(sa_conn)
                    raise
                orphaned = [] if force_parts else cascade.orphaned_parts(sa_conn)
                if orphaned and not force_masters:
                    temporaries.drop(sa_conn)
                    part, master, rows = orphaned[0]
                    raise DataJointError(
                        f"Deleting {rows} row{'s' if rows != 1 else ''} of part table {part} "
                        f"would leave their master rows in {master}: delete from the master, "
                        "or use force_masters=True (to delete those master rows too) or "
                        "force_parts=True (to delete the part rows alone)")
                pending += [_Round(connection, graph, *cascade.masters_of_orphans(part))
                            for part, _, _ in orphaned]
            temporaries.drop(sa_conn)
            _confirm(counts, ask, decide)
    except _Cancelled:
        if decide is None:
            print("Delete cancelled")
        return 0
    return counts.get(table.node_name, 0)


def _delete_alone(table: Table, ask: bool, decide: Callable[[dict[str, int]], bool] | None
                  ) -> int | None:
    """The rows deleted by one plain DELETE of the table's rows, or None where the cascade
    must be planned on the foreign-key graph.

    Reading the graph costs more catalog queries than deleting a leaf table's rows (5 on
    PostgreSQL, 10 on MySQL, ~40 on SQLite for a schema of 7 tables), so one catalog query
    first asks whether any foreign key refers to the table: where none does, a plain DELETE
    is the whole cascade (`Backend.delete_unless_referenced`; on PostgreSQL the DELETE
    carries the question, one round trip). Where one does, the cascade is planned: a plain
    DELETE would leave the table's dependents to the database, which may act on them itself
    (an ON DELETE CASCADE or SET NULL key declared outside the package, foreign-key checks
    switched off) past the preview and part checks, and which otherwise deletes rows until
    it meets one that is referred to (on PostgreSQL, every row: its checks run at the
    statement's end) only to roll them all back. A dependent declared between the query and the DELETE
    makes the DELETE fail; it is rolled back and the cascade planned after all. Not tried
    for part tables (their master rows must be checked), inside an open transaction (the
    failure would end it), or for tables this connection last saw with dependents."""
    connection = table.connection
    sa_table = table._sa_table
    if sa_table is None or connection.in_transaction or _PART_NAME.match(table.table_name) \
            or table.node_name in _PARENTS.get(connection, ()):
        return None
    statement = sa.delete(sa_table)
    if table.restrictions:
        statement = statement.where(_restriction_clause(table, sa_table))
    try:
        with connection.translating(table, "delete from"):
            try:
                with connection.session(write=True) as sa_conn:
                    count = connection.backend_impl.delete_unless_referenced(
                        sa_conn, statement, table.database, table.table_name)
                    if count is None:
                        _PARENTS.setdefault(connection, set()).add(table.node_name)
                        return None
                    _confirm({table.node_name: count}, ask, decide)
            except sa.exc.DBAPIError as error:
                kind = connection.backend_impl.error_kind(getattr(error, "orig", error))
                if kind in ("foreign_key", "missing_table"):  # dependent rows; gone table
                    return None
                raise
    except _Cancelled:
        if decide is None:
            print("Delete cancelled")
        return 0
    return count


def _confirm(counts: dict[str, int], ask: bool,
             decide: Callable[[dict[str, int]], bool] | None) -> None:
    """Ask `decide` or the user (with safemode) before the transaction commits; raise
    _Cancelled to roll it back."""
    if decide is not None:
        if not decide(dict(counts)):
            raise _Cancelled
    elif ask:
        reached = [(n, c) for n, c in counts.items() if c]
        if not reached:
            print("Nothing to delete.")
        else:
            for node, count in reached:
                print(f"Deleting {count} row{'s' if count != 1 else ''} from {node}")
            if not confirm("Commit deletes?"):
                raise _Cancelled


class _Cancelled(Exception):
    """Raised inside the transaction to roll a declined delete back."""
