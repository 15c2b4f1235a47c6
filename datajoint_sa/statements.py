"""Cached statements: a query's SQL compiled once per shape, run again with new values.

A `make` runs `(Table & key).fetch1(...)` once per key: the same SQL every time, only the
key's values change. Building the expression's Select, compiling it and SQLAlchemy's
execution machinery cost several times the round trip to a local server, so a fetch looks
its statement up by the expression's *shape* (`QueryExpression._shape`: the tree of nodes,
tables and condition kinds, with the values of dict and key-list conditions taken out) and
the fetch's options. On a miss the shape is compiled once, with every taken-out value bound
under a name of its own (`condition.Slot`); on a hit the new values are bound in their
places (through the same bind processors SQLAlchemy would apply) and the SQL text runs on
the driver's cursor. Values are always bound, never written into the SQL.

A shape names its tables by their SQLAlchemy table and heading objects, so a table that is
redeclared or altered (new objects) never meets the statements of its predecessor.
Listeners of SQLAlchemy's `before_cursor_execute` / `after_cursor_execute` events still see
every statement (with `context=None`, as SQLAlchemy documents for statements without an
execution context); an engine with `echo` on takes SQLAlchemy's own path.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection as SAConnection

    from .connection import Connection
    from .expression import QueryExpression

#: statements kept (per process); the cache starts afresh when full
MAX_STATEMENTS = 2048
_SLOT = re.compile(r"^djslot(\d+)$")
_UNCACHED = object()  # a shape that compiles to SQL we do not run ourselves
_cache: dict[Hashable, Any] = {}
_lock = threading.Lock()


class Statement:
    """One compiled shape: SQL text, where each parameter comes from, the result's types.

    `binds` lists, in the driver's order, (name, slot index or None, bind processor or None,
    the value for a constant); `plan` keeps how the result is decoded (fetch.py), made from
    the cursor description of the first run: the shape fixes the tables and their types."""

    __slots__ = ("sql", "binds", "positional", "types", "options", "plan", "source")

    def __init__(self, sql: str, binds: list[tuple[str, int | None, Any, Any]],
                 positional: bool, types: list[Any], options: dict[str, Any],
                 source: Any) -> None:
        self.sql = sql
        self.binds = binds
        self.positional = positional
        self.types = types
        self.options = options
        self.plan: Any = None
        self.source = source  # keeps the shape's tables and headings (its key's ids) alive

    def parameters(self, values: Sequence[Any]) -> Any:
        """The driver's parameters for the values of one expression of this shape."""
        out = []
        for _, slot, processor, constant in self.binds:
            if slot is None:
                out.append(constant)
            else:
                value = values[slot]
                out.append(value if processor is None else processor(value))
        if self.positional:
            return tuple(out)
        return {name: value for (name, *_), value in zip(self.binds, out)}


def compile_statement(select: sa.Select[Any], dialect: Any, options: dict[str, Any],
                      source: Any) -> Statement | None:
    """The Statement of a Select built from a slotted expression, or None when its SQL needs
    SQLAlchemy at run time (parameters expanded or rendered when executed)."""
    compiled: Any = select.compile(dialect=dialect)
    if compiled.literal_execute_params or compiled.post_compile_params:
        return None
    processors = getattr(compiled, "_bind_processors", None)
    if processors is None:
        return None
    params = compiled.construct_params(escape_names=False)
    positional = compiled.positiontup is not None
    names = list(compiled.positiontup) if positional else list(params)
    escaped = compiled.escaped_bind_names or {}
    binds: list[tuple[str, int | None, Any, Any]] = []
    for name in names:
        processor = processors.get(name)
        match = _SLOT.match(name)
        if match is not None:
            binds.append((escaped.get(name, name), int(match.group(1)), processor, None))
        else:  # a literal of a fragment, a LIMIT: the same in every statement of the shape
            value = params[name]
            binds.append((escaped.get(name, name), None, None,
                          value if processor is None else processor(value)))
    types = [column.type for column in select.selected_columns]
    return Statement(compiled.string, binds, positional, types, options, source)


def lookup(expr: QueryExpression, names: Sequence[str], options: tuple[Any, ...],
           build: Callable[[QueryExpression], sa.Select[Any]]
           ) -> tuple[Statement, list[Any]] | None:
    """The cached statement of `expr` read as `names` with fetch `options` (hashable), and
    the values to bind; compiled through `build` (expression -> the fetch's Select) on the
    first use of its shape. None: this query is not cached (run it the usual way)."""
    values: list[Any] = []
    shape = expr._shape(values, False)
    if shape is None:
        return None
    dialect = expr.connection.engine.dialect
    key = (shape[0], tuple(names), options, id(dialect))
    try:
        statement = _cache.get(key)
    except TypeError:  # an unhashable literal or option: not cached
        return None
    if statement is None:
        statement = _build(expr, build, dialect) or _UNCACHED
        with _lock:
            if len(_cache) >= MAX_STATEMENTS:
                _cache.clear()
            _cache[key] = statement
    if not isinstance(statement, Statement):
        return None
    return statement, values


def _build(expr: QueryExpression, build: Callable[[QueryExpression], sa.Select[Any]],
           dialect: Any) -> Statement | None:
    shape = expr._shape([], True)
    assert shape is not None  # the same tree as a moment ago
    slotted = shape[1]
    select = build(slotted)
    options = dict(select.get_execution_options())
    return compile_statement(select, dialect, options, (slotted, dialect))


def clear() -> None:
    """Forget every cached statement (tests; nothing else needs it)."""
    with _lock:
        _cache.clear()


def run(connection: Connection, statement: Statement, values: Sequence[Any]
        ) -> tuple[list[Any], Any]:
    """The rows of one run of `statement` and, until its `plan` is made, the cursor
    description (a read, in the open transaction or one of its own; driver errors
    translated)."""
    parameters = statement.parameters(values)
    if not connection.in_transaction:
        sa_conn = connection.sa
        if not sa_conn.in_transaction() and not sa_conn.engine.echo:
            with connection.translating():
                return _read_alone(connection, sa_conn, statement, parameters)
    with connection.translating(), connection.session(write=False) as sa_conn:
        if sa_conn.engine.echo:  # SQLAlchemy logs what it runs
            result = sa_conn.exec_driver_sql(statement.sql, parameters,
                                             execution_options=statement.options)
            cursor = result.cursor
            assert cursor is not None
            rows, description = cursor.fetchall(), cursor.description
            result.close()
            return rows if isinstance(rows, list) else list(rows), description
        return _execute(connection, sa_conn, statement, parameters)


def _read_alone(connection: Connection, sa_conn: SAConnection, statement: Statement,
                parameters: Any) -> tuple[list[Any], Any]:
    """One read outside any transaction, run as the driver itself would run it: in
    autocommit where the backend reads so (`Backend.reads_in_autocommit`), else in the
    transaction the driver opens, ended by its commit (by its rollback after an error).
    SQLAlchemy's transaction bookkeeping has nothing to do for one SELECT."""
    if connection.backend_impl.reads_in_autocommit:
        return _execute(connection, sa_conn, statement, parameters)
    dbapi_connection: Any = sa_conn.connection.dbapi_connection
    try:
        result = _execute(connection, sa_conn, statement, parameters)
    except BaseException:
        try:
            dbapi_connection.rollback()
        except Exception:  # a lost connection: the error being raised says so
            pass
        raise
    dbapi_connection.commit()
    return result


def _execute(connection: Connection, sa_conn: SAConnection, statement: Statement,
             parameters: Any) -> tuple[list[Any], Any]:
    dbapi_connection = sa_conn.connection.dbapi_connection
    cursor = connection.backend_impl.read_cursor(dbapi_connection, statement.options)
    try:
        sql = statement.sql
        dispatch = sa_conn.dispatch
        for before in dispatch.before_cursor_execute:
            sql, parameters = before(sa_conn, cursor, sql, parameters, None, False)
        cursor.execute(sql, parameters)
        for after in dispatch.after_cursor_execute:
            after(sa_conn, cursor, sql, parameters, None, False)
        rows = cursor.fetchall()
        description = cursor.description if statement.plan is None else None
    finally:
        cursor.close()
    return rows if isinstance(rows, list) else list(rows), description
