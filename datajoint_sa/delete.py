"""Deleting rows (with cascade to dependents) and dropping tables (dependents first)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .dependencies import Dependencies
from .errors import DataJointError
from .settings import config

if TYPE_CHECKING:
    from .connection import Connection
    from .expression import QueryExpression
    from .table import Table


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


def drop_with_dependents(table: Table, *, prompt: bool) -> None:
    connection = table.connection
    graph = Dependencies.load(connection)
    nodes = graph.descendants(table.node_name)
    if prompt and config["safemode"]:
        for node in nodes:
            print(f"{node}: {_count(connection, node)} rows")
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
    sa_table = _sa_table_for(connection, node)
    return int(connection.query(sa.select(sa.func.count()).select_from(sa_table))[0][0])


def _restriction_clause(expr: QueryExpression, sa_table: sa.Table) -> Any:
    """WHERE clause selecting the rows of sa_table named by the primary keys of expr."""
    key = expr.primary_key
    select = expr.to_select()
    keys = select.with_only_columns(*(select.selected_columns[k] for k in key)).subquery()
    # a derived table keeps MySQL from refusing a subquery on the table being deleted from
    keys = sa.select(*keys.c).subquery()
    match = sa.select(sa.literal(1)).select_from(keys).where(
        *(keys.c[k] == sa_table.c[k] for k in key))
    return match.exists()


def delete_quick(table: Table) -> int:
    """Delete the rows of a (restricted) table, without cascading."""
    connection = table.connection
    sa_table = table._sa_table
    assert sa_table is not None
    statement = sa.delete(sa_table)
    if table.restrictions:
        statement = statement.where(_restriction_clause(table, sa_table))
    try:
        with connection.session(write=True) as sa_conn:
            return int(sa_conn.execute(statement).rowcount)
    except sa.exc.DBAPIError as error:
        raise connection.classify(error, type(table).__name__) from error


def cascade_delete(table: Any, *, safemode: bool | None, force_parts: bool) -> int:
    raise DataJointError("cascading delete is not implemented yet")
