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

A shape holds its tables' columns and headings, not their names: a statement is compiled
over stand-in tables, and each run's SQL text names the tables that expression reads
(`Statement.text`), so tables of the same definition in other schemas (a pipeline
declared again, a test schema) share statements, and an altered table gets new ones. A
new shape is compiled once, and its statement kept only if every stand-in name in its text
is a table reference (after FROM, JOIN or a comma, or qualifying a column), where naming
the real table gives what SQLAlchemy compiles for it (a label or alias derived from a
table's name would not: such a shape takes SQLAlchemy's path). With `VERIFY` (the test
suite turns it on) each new statement is also compared with SQLAlchemy's own compile over
the real tables, and a difference is an error.
Listeners of SQLAlchemy's `before_cursor_execute` / `after_cursor_execute` events still see
every statement (with `context=None`, as SQLAlchemy documents for statements without an
execution context); an engine with `echo` on takes SQLAlchemy's own path.
"""

from __future__ import annotations

import os
import re
import secrets
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
#: `QueryExpression._shape(values, slotted)`: values taken out (0), bound as slots (1), and
#: tables read as stand-ins named in the SQL text (2)
SLOTS, PLACEHOLDERS = 1, 2
_TOKEN = secrets.token_hex(6)  # stand-in table names: no user's text contains them
_SLOT = re.compile(r"^djslot(\d+)$")
#: compare every new statement's text with SQLAlchemy's own compile over the real tables (a
#: second compile per shape; tests/conftest.py turns it on, as does DJ_VERIFY_STATEMENTS=1)
VERIFY = os.environ.get("DJ_VERIFY_STATEMENTS", "") not in ("", "0")
_UNCACHED = object()  # a shape that compiles to SQL we do not run ourselves
_cache: dict[Hashable, Any] = {}
_lock = threading.Lock()


class Statement:
    """One compiled shape: SQL text, where each parameter comes from, the result's types.

    `binds` lists, in the driver's order, (name, slot index or None, bind processor or None,
    the value for a constant); `plan` keeps how the result is decoded (fetch.py), made from
    the cursor description of the first run: the shape fixes the tables and their types."""

    __slots__ = ("sql", "binds", "positional", "types", "options", "plan", "tables",
                 "rendered")

    def __init__(self, sql: str, binds: list[tuple[str, int | None, Any, Any]],
                 positional: bool, types: list[Any], options: dict[str, Any]) -> None:
        self.sql = sql
        self.binds = binds
        self.positional = positional
        self.types = types
        self.options = options
        self.plan: Any = None
        #: (position in the values, stand-in name) of each table the SQL text reads
        self.tables: list[tuple[int, str]] = []
        self.rendered: dict[tuple[Any, ...], str] = {}  # the SQL text per set of tables

    def text(self, values: Sequence[Any], dialect: Any) -> str:
        """The SQL text reading the tables of one expression of this shape."""
        if not self.tables:
            return self.sql
        tables = tuple(values[i] for i, _ in self.tables)
        sql = self.rendered.get(tables)
        if sql is None:
            sql = self.sql
            preparer = dialect.identifier_preparer
            for (_, name), table in zip(self.tables, tables):
                sql = sql.replace(name, preparer.format_table(table))
            if len(self.rendered) >= 64:
                self.rendered.clear()
            self.rendered[tables] = sql
        return sql

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


def table_signature(table: sa.Table, heading: Any) -> Hashable:
    """What a table contributes to the SQL of a statement besides its name: its columns and
    their types, and the heading's attributes as orderings and decoding read them."""
    columns = tuple((c.key, c.name, type(c.type)) for c in table.columns)  # the declared
    # types (in the attributes) make the column types
    attributes = tuple((a.name, a.type, a.in_key, a.nullable, a.lineage is None,
                        a.autoincrement) for a in heading.attributes)
    return columns, attributes


def placeholder(table: sa.Table, index: int) -> sa.Table:
    """A stand-in for `table` (the same columns) under a name the SQL text replaces by
    the name of the table each run reads."""
    return sa.Table(f"djsa{index}t{_TOKEN}", sa.MetaData(),
                    *(sa.Column(c.name, c.type, key=c.key) for c in table.columns))


def _dialect_key(dialect: Any) -> Hashable:
    """Dialects that compile a statement alike (engines of the same kind of server)."""
    preparer = dialect.identifier_preparer
    return (type(dialect), dialect.server_version_info, dialect.paramstyle,
            type(preparer), preparer.initial_quote, getattr(dialect, "is_mariadb", None))


def compile_statement(select: sa.Select[Any], dialect: Any, options: dict[str, Any]
                      ) -> Statement | None:
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
    return Statement(compiled.string, binds, positional, types, options)


def lookup(expr: QueryExpression, names: Sequence[str], options: tuple[Any, ...],
           build: Callable[[QueryExpression], sa.Select[Any]]
           ) -> tuple[Statement, list[Any]] | None:
    """The cached statement of `expr` read as `names` with fetch `options` (hashable), and
    the values to bind; compiled through `build` (expression -> the fetch's Select) on the
    first use of its shape. None: this query is not cached (run it the usual way)."""
    values: list[Any] = []
    shape = expr._shape(values, 0)
    if shape is None:
        return None
    dialect = expr.connection.engine.dialect
    tables = [id(v) for v in values if isinstance(v, sa.Table)]
    once = len(set(tables)) == len(tables)  # a table read twice is another query
    key = (shape[0], tuple(names), options, _dialect_key(dialect), once)
    try:
        statement = _cache.get(key)
    except TypeError:  # an unhashable literal or option: not cached
        return None
    if statement is None:
        statement = (once and _build(expr, values, build, dialect)) or _UNCACHED
        with _lock:
            if len(_cache) >= MAX_STATEMENTS:
                _cache.clear()
            _cache[key] = statement
    if not isinstance(statement, Statement):
        return None
    return statement, values


def _build(expr: QueryExpression, values: list[Any],
           build: Callable[[QueryExpression], sa.Select[Any]], dialect: Any
           ) -> Statement | None:
    """The statement of a shape, compiled once over stand-in tables, one per table it reads
    (`lookup` sends a table read twice, which SQLAlchemy must tell apart from itself, the
    usual way); None when a stand-in name appears other than as a table reference
    (`_references_only`)."""
    shape = expr._shape([], PLACEHOLDERS)
    if shape is None:  # the same tree as a moment ago
        return None
    select = build(shape[1])
    options = dict(select.get_execution_options())
    statement = compile_statement(select, dialect, options)
    if statement is None:
        return None
    statement.tables = [(i, f"djsa{i}t{_TOKEN}") for i, v in enumerate(values)
                        if isinstance(v, sa.Table)]
    if not all(_references_only(statement.sql, name) for _, name in statement.tables):
        return None
    if VERIFY and statement.tables:
        _verify(expr, values, build, dialect, statement)
    return statement


def _references_only(sql: str, name: str) -> bool:
    """Whether every occurrence of a stand-in table's name in `sql` refers to the table:
    after FROM, JOIN or a comma, or qualifying a column (`name.column`). SQLAlchemy's
    compiler names a table in both places as the dialect's `format_table` does, which is
    how `Statement.text` names the real one there."""
    word = re.escape(name)
    references = re.findall(rf'(?:\bFROM|\bJOIN|,)\s+{word}(?![\w$"`\].])'
                            rf'|(?<![\w$"`\[.]){word}\.(?=[\w"`\[])', sql)
    return len(references) == sql.count(name)


def _verify(expr: QueryExpression, values: list[Any],
            build: Callable[[QueryExpression], sa.Select[Any]], dialect: Any,
            statement: Statement) -> None:
    """Raise when the statement's text for this expression's tables differs from what
    SQLAlchemy compiles for them (`VERIFY`)."""
    slotted = expr._shape([], SLOTS)
    assert slotted is not None
    direct = build(slotted[1]).compile(dialect=dialect).string
    text = statement.text(values, dialect)
    if direct != text:
        raise AssertionError("a cached statement's text differs from SQLAlchemy's:\n"
                             f"{text}\n--- SQLAlchemy ---\n{direct}")


def count() -> int:
    """How many shapes have a statement kept (tests)."""
    return sum(isinstance(s, Statement) for s in list(_cache.values()))


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
    sql = statement.text(values, connection.engine.dialect)
    if not connection.in_transaction:
        sa_conn = connection.sa
        if not sa_conn.in_transaction() and not sa_conn.engine.echo:
            with connection.translating():
                return _read_alone(connection, sa_conn, statement, sql, parameters)
    with connection.translating(), connection.session(write=False) as sa_conn:
        if sa_conn.engine.echo:  # SQLAlchemy logs what it runs
            result = sa_conn.exec_driver_sql(sql, parameters,
                                             execution_options=statement.options)
            cursor = result.cursor
            assert cursor is not None
            rows, description = cursor.fetchall(), cursor.description
            result.close()
            return rows if isinstance(rows, list) else list(rows), description
        return _execute(connection, sa_conn, statement, sql, parameters)


def _read_alone(connection: Connection, sa_conn: SAConnection, statement: Statement,
                sql: str, parameters: Any) -> tuple[list[Any], Any]:
    """One read outside any transaction, run as the driver itself would run it: in
    autocommit where the backend reads so (`Backend.reads_in_autocommit`), else in the
    transaction the driver opens, ended by its commit (by its rollback after an error).
    SQLAlchemy's transaction bookkeeping has nothing to do for one SELECT."""
    if connection.backend_impl.reads_in_autocommit:
        return _execute(connection, sa_conn, statement, sql, parameters)
    dbapi_connection: Any = sa_conn.connection.dbapi_connection
    try:
        result = _execute(connection, sa_conn, statement, sql, parameters)
    except BaseException:
        try:
            dbapi_connection.rollback()
        except Exception:  # a lost connection: the error being raised says so
            pass
        raise
    dbapi_connection.commit()
    return result


def _execute(connection: Connection, sa_conn: SAConnection, statement: Statement,
             sql: str, parameters: Any) -> tuple[list[Any], Any]:
    dbapi_connection = sa_conn.connection.dbapi_connection
    cursor = connection.backend_impl.read_cursor(dbapi_connection, statement.options)
    try:
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
