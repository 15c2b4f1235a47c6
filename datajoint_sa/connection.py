"""The connection: one SQLAlchemy engine and connection, nesting transactions, the backend."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection as SAConnection

from .backends import Backend, get_backend
from .cursor import QueryResult, classic_text
from .errors import (
    DataJointError,
    DuplicateError,
    IntegrityError,
    LostConnectionError,
    QueryError,
)
from .settings import config, hide_password, server_url

if TYPE_CHECKING:
    from .table import Table

T = TypeVar("T")

logger = logging.getLogger("datajoint_sa")


class Connection:
    """A database session: the shared SQLAlchemy connection and its transaction depth.

    `with conn.transaction:` commits on success and rolls back on an exception; nested
    blocks become savepoints, so an inner failure can be caught without losing the outer work.
    """

    def __init__(self, url: str | sa.URL | None = None, **engine_options: Any) -> None:
        self.url = sa.make_url(url or config["database.url"])
        self.backend_impl: Backend = get_backend(self.url.get_backend_name())
        options = self.backend_impl.engine_options(self.url)
        options.update(engine_options)
        try:
            self.engine = sa.create_engine(self.url, **options)
        except Exception as error:  # a bad URL or a missing driver
            raise DataJointError(
                f"Cannot create an engine for {hide_password(self.url)}: {error}") from None
        sa.event.listen(self.engine, "connect",
                        lambda dbapi_conn, record: self.backend_impl.on_connect(dbapi_conn))
        self.backend_impl.install_events(self.engine)
        self._local = threading.local()  # each thread its own session (populate's threads)
        # every thread's session, for close(): one left open when its thread is done would
        # go back to a pool already disposed, where only the garbage collector ends it
        self._sessions: weakref.WeakSet[SAConnection] = weakref.WeakSet()
        self._sa = None
        self._depth = 0
        self._savepoints = True  # whether nested write blocks open savepoints (see session)
        self._pid = os.getpid()
        self._doing: list[tuple[Table | str | None, str]] = []  # see `translating`
        _OPEN.add(self)

    # per-thread state: a Connection may be shared by threads, a session and its open
    # transaction never are (each thread checks its own out of the engine's pool)
    @property
    def _sa(self) -> SAConnection | None:
        return getattr(self._local, "sa", None)

    @_sa.setter
    def _sa(self, value: SAConnection | None) -> None:
        self._local.sa = value

    @property
    def _depth(self) -> int:
        return getattr(self._local, "depth", 0)

    @_depth.setter
    def _depth(self, value: int) -> None:
        self._local.depth = value

    @property
    def _savepoints(self) -> bool:
        return getattr(self._local, "savepoints", True)

    @_savepoints.setter
    def _savepoints(self, value: bool) -> None:
        self._local.savepoints = value

    @property
    def _pid(self) -> int:
        return getattr(self._local, "pid", os.getpid())

    @_pid.setter
    def _pid(self, value: int) -> None:
        self._local.pid = value

    @property
    def _allowed_inserts(self) -> set[str]:
        """Tables a running make of this thread may insert into (see populate)."""
        allowed = getattr(self._local, "allowed", None)
        if allowed is None:
            allowed = self._local.allowed = set()
        return allowed

    @_allowed_inserts.setter
    def _allowed_inserts(self, value: set[str]) -> None:
        self._local.allowed = set(value)

    @property
    def write_buffer(self) -> Any:
        """The write buffer of a grouped populate running in this thread (populate/batch.py),
        or None: plain inserts of the make go there instead of to the database."""
        return getattr(self._local, "write_buffer", None)

    @write_buffer.setter
    def write_buffer(self, value: Any) -> None:
        self._local.write_buffer = value

    # ---- identity -----------------------------------------------------------------------
    @property
    def backend(self) -> str:
        """"sqlite", "postgresql" or "mysql"."""
        return self.backend_impl.name

    def __repr__(self) -> str:
        state = "connected" if self._sa is not None else "not connected"
        return f"Connection({hide_password(self.url)!r}, {state})"

    def __getstate__(self) -> dict[str, Any]:
        return {"url": self.url.render_as_string(hide_password=False)}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["url"])  # type: ignore[misc]

    # ---- the SQLAlchemy connection ------------------------------------------------------
    @property
    def sa(self) -> SAConnection:
        """The live SQLAlchemy connection (opened on first use, reopened after a fork)."""
        if self._pid != os.getpid():  # a forked child must not share the parent's socket
            self.engine.dispose(close=False)
            _leave_alone([*self._sessions, self._sa])
            self._sa, self._depth, self._pid = None, 0, os.getpid()
            self._sessions = weakref.WeakSet()
        if self._sa is None or self._sa.closed:
            try:
                self._sa = self.engine.connect()
            except sa.exc.DBAPIError as error:
                raise DataJointError(
                    f"Cannot connect to {hide_password(self.url)}: {error.orig}") from None
            self._sessions.add(self._sa)
        return self._sa

    def close(self) -> None:
        """Close the connection; an open transaction is rolled back (its locks and savepoints
        go with it) and the `with conn.transaction:` blocks around the call end without
        touching the next connection (a block that ends normally raises: nothing it wrote
        was committed)."""
        if self._sa is not None:
            if self._sa.in_transaction():
                try:
                    self._sa.rollback()
                except sa.exc.DBAPIError:  # the server is gone: closing is all that is left
                    pass
            self._sa.close()
            self._sa = None
        self._depth = 0
        if self._pid == os.getpid():  # other threads' sessions (a child's are its parent's)
            for other in list(self._sessions):
                with contextlib.suppress(Exception):
                    other.close()
        self._sessions.clear()
        self.engine.dispose()

    @property
    def is_connected(self) -> bool:
        """Whether the server answers (classic DataJoint's property; opens the connection)."""
        try:
            self.sa.exec_driver_sql("SELECT 1").all()
            if not self._depth:
                self.sa.commit()
            return True
        except Exception:
            return False

    # ---- transactions -------------------------------------------------------------------
    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def check_ddl(self, what: str) -> None:
        """Refuse `what` (a CREATE, ALTER or DROP) inside a transaction on a backend that
        commits the open transaction at any DDL statement (MySQL): the caller's writes
        before it would be committed half-way, and a rollback after it would undo nothing."""
        if self.in_transaction and not self.backend_impl.transactional_ddl:
            raise DataJointError(
                f"Cannot {what} inside a transaction on {self.backend}: it commits the "
                "open transaction at every CREATE, ALTER or DROP, so the writes before it "
                "could no longer be rolled back. Declare, alter and drop tables before the "
                "transaction begins.")

    @property
    def transaction(self) -> Any:
        """Context manager: `with conn.transaction:` (nests through savepoints)."""
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self.session(write=True):
            yield self

    @contextmanager
    def session(self, *, write: bool = True, savepoints: bool = True
                ) -> Iterator[SAConnection]:
        """The SQLAlchemy connection inside a transaction (joined if one is open).

        `savepoints=False` on the outermost block makes it one all-or-nothing unit: nested
        blocks join it without a savepoint (two round trips each), so any failure inside
        fails the whole unit. populate's make transaction is such a unit.
        """
        connection = self.sa
        if self._depth and (not write or not self._savepoints):
            # a read joins the open transaction as it is: a savepoint would cost two round
            # trips per fetch inside make(), and a failed read fails the transaction anyway
            self._depth += 1
            try:
                yield connection
            finally:
                if connection is self._sa:
                    self._depth -= 1
            return
        transaction: sa.Transaction
        if self._depth == 0:
            connection.info["dj_read_only"] = not write
            self._savepoints = savepoints
            transaction = connection.begin()
        else:
            transaction = connection.begin_nested()
        self._depth += 1
        try:
            yield connection
        except BaseException:
            if connection is not self._sa:  # closed inside the block: already rolled back
                raise
            self._depth -= 1
            if transaction.is_active:
                transaction.rollback()
            raise
        else:
            if connection is not self._sa:
                raise DataJointError("The connection was closed inside a transaction: its "
                                     "changes were rolled back, nothing was committed")
            self._depth -= 1
            try:
                transaction.commit()
            except Exception as error:
                if self._depth or not self._is_driver_error(error):
                    raise
                translated = self.translate(error)
                if isinstance(translated, LostConnectionError):
                    translated.retryable = False  # the commit may or may not have happened
                    translated.args = (f"{translated} (during COMMIT: whether the "
                                       "transaction was applied is unknown; check before "
                                       "repeating it)",)
                raise translated from error
        finally:
            if self._depth == 0:
                self._savepoints = True
                if not connection.closed:
                    connection.info["dj_read_only"] = False

    def execute(self, statement: Any, parameters: Any = None, *, write: bool = True) -> Any:
        """Execute a statement and return all rows (a list of Row) or the rowcount."""
        def run() -> Any:
            with self.translating(), self.session(write=write) as connection:
                result = connection.execute(statement, parameters)
                return result.all() if result.returns_rows else result.rowcount
        return self.retrying(run)

    def query(self, sql: Any, args: Any = (), *, as_dict: bool = False) -> QueryResult:
        """Run a statement and return its rows, read like a cursor (classic DataJoint's call).

        `sql` is SQL text with PyMySQL-style `%s` / `%(name)s` placeholders bound to `args`
        (a sequence or a dict) on every backend, or a SQLAlchemy statement with `args` as its
        parameters. It runs in the open transaction, or in one of its own that commits.
        Rows are tuples, or dicts with `as_dict=True`."""
        statement: Any
        parameters: Any
        if isinstance(sql, str):
            statement, parameters = classic_text(sql, args)
        else:
            statement, parameters = sql, (args or None)
        write = not isinstance(statement, (sa.Select, sa.CompoundSelect))

        def run() -> QueryResult:
            with self.translating(action="run the query", fallback=QueryError), \
                    self.session(write=write) as connection:
                return QueryResult(connection.execute(statement, parameters), as_dict=as_dict)
        return self.retrying(run)

    # ---- the one funnel for driver errors -----------------------------------------------
    @contextmanager
    def translating(self, table: Table | str | None = None, action: str = "", *,
                    fallback: type[DataJointError] = DataJointError) -> Iterator[None]:
        """Every driver error raised inside becomes a DataJointError subclass (the driver's
        error chained), named after `table` and `action` ("insert into", "delete from") or,
        when nested, after the innermost block that names them. The one place where errors
        of SQLite, PostgreSQL and MySQL are translated (SQLAlchemy's single DBAPI-error
        handler plays this part for SQLAlchemy)."""
        self._doing.append((table, action))
        try:
            yield
        except DataJointError:
            raise
        except Exception as error:
            if not self._is_driver_error(error):
                raise  # not the database's: a bug or the user's own exception
            table, action = next(((t, a) for t, a in reversed(self._doing)
                                  if t is not None or a), (None, ""))
            raise self.translate(error, table, action, fallback=fallback) from error
        finally:
            self._doing.pop()

    def _is_driver_error(self, error: BaseException) -> bool:
        if isinstance(error, sa.exc.StatementError):  # DBAPIError, or the driver refusing
            return True                                # a parameter
        dbapi = getattr(self.engine.dialect, "dbapi", None)
        base = getattr(dbapi, "Error", None)
        return isinstance(base, type) and isinstance(error, base)

    def translate(self, error: BaseException, table: Table | str | None = None,
                  action: str = "", *, fallback: type[DataJointError] = DataJointError
                  ) -> DataJointError:
        """The DataJointError for a driver error: the backend's kind (duplicate, missing
        parent, lost connection ...) or, failing that, a plain DataJointError that names what
        was being done; a Table adds its key, unique indexes and foreign keys."""
        where = label(table) if table is not None and not isinstance(table, str) else \
            (table or "")
        result = self.backend_impl.classify_error(error, where)
        if result is None:
            orig = getattr(error, "orig", None) or error
            doing = f"Cannot {action} {where}" if action else \
                (f"Database error in {where}" if where else "Database error")
            result = fallback(f"{doing}: {type(orig).__name__}: "
                                    f"{' '.join(str(orig).split())}")
        if table is None or isinstance(table, str):
            return result
        sa_table = table._sa_table
        if isinstance(result, DuplicateError) and sa_table is not None:
            uniques = [f"({', '.join(c.name for c in index.columns)})"
                       for index in sa_table.indexes if index.unique]
            result = DuplicateError(f"{result} (primary key: {', '.join(table.primary_key)}"
                                    f"{'; unique: ' + ', '.join(uniques) if uniques else ''})")
        if isinstance(result, IntegrityError) and action == "insert into" and \
                sa_table is not None and sa_table.foreign_key_constraints:
            parents = "; ".join(f"({', '.join(fk.column_keys)}) -> {fk.referred_table.name}"
                                for fk in sa_table.foreign_key_constraints)
            result = IntegrityError(f"{result} (a parent row is missing; foreign keys: "
                                    f"{parents})")
        return result

    def classify(self, error: BaseException, table: str = "") -> BaseException:
        """The DataJointError for a driver error (or the error itself when unknown)."""
        return self.backend_impl.classify_error(error, table) or error

    def retrying(self, operation: Callable[[], T]) -> T:
        """Run `operation` (one whole transaction); if the server dropped the session and no
        transaction was open, reconnect and run it once more. Inside a transaction a lost
        session loses the transaction's work, so the LostConnectionError reaches the caller."""
        if self._depth:
            return operation()
        try:
            return operation()
        except LostConnectionError as error:
            if not getattr(error, "retryable", True):
                raise
            logger.warning("Lost the database session (%s); reconnecting once", error)
            self._drop_session()
        return operation()

    def _drop_session(self) -> None:
        """Forget a dead SQLAlchemy connection (the next use opens a new one)."""
        if self._sa is not None:
            try:
                self._sa.invalidate()
                self._sa.close()
            except Exception:  # it is dead already; closing it is a courtesy
                pass
            self._sa = None
        self._depth = 0


def label(table: Table) -> str:
    """How errors name a table: its class and its place in the database."""
    return f"{type(table).__name__} ({table.node_name})" if table._schema else \
        type(table).__name__


#: the parent's sessions a forked child inherited: kept, never collected in the child
_INHERITED: list[SAConnection] = []


def _leave_alone(sessions: list[SAConnection | None]) -> None:
    """Keep a forked child's copies of its parent's sessions from ever being finalized:
    SQLAlchemy's pool resets a collected session with a ROLLBACK, which the child would
    send on its parent's socket; two children doing so at once may read each other's
    replies, and one then waits forever (a `worker --processes 2` that hung on MariaDB)."""
    for session in sessions:
        if session is None:
            continue
        _INHERITED.append(session)
        # at the child's exit too (a finalizer runs then for every live object):
        # `weakref.finalize` of the pooled connection, detached where SQLAlchemy has it
        finalizer = getattr(getattr(session, "_dbapi_connection", None), "_finalizer", None)
        if isinstance(finalizer, weakref.finalize):
            finalizer.detach()


_shared: Connection | None = None


#: every Connection of this process (weakly), for `close_all`
_OPEN: weakref.WeakSet[Connection] = weakref.WeakSet()


def close_all() -> None:
    """Close every connection of this process and its engine's pool, before forking worker
    processes: a child that inherits a live socket may use it or, when the driver object
    is collected, end it, next to its siblings and its parent (each reconnects on first
    use, this process too)."""
    for connection in list(_OPEN):
        connection.close()


def conn(host: str | sa.URL | None = None, user: str | None = None,
         password: str | None = None, *, reset: bool = False) -> Connection:
    """The shared connection; `reset=True` (or a different server) replaces it.

    `host` is a database URL, or (the classic call `dj.conn(host, user, password)`) a host
    name, optionally with ":port"; `user` and `password` default to dj.config's
    `database.user` and `database.password`, the driver to `database.backend` (MySQL)."""
    global _shared
    wanted = _wanted_url(host, user, password)
    if _shared is not None and (reset or (wanted is not None and wanted != _shared.url)):
        _shared.close()
        _shared = None
    if _shared is None:
        _shared = Connection(wanted)
    return _shared


def _wanted_url(host: str | sa.URL | None, user: str | None, password: str | None
                ) -> sa.URL | None:
    if isinstance(host, sa.URL) or (host is not None and "://" in host):
        if user is not None or password is not None:
            raise DataJointError("dj.conn: give the user and password inside the URL")
        return sa.make_url(host)
    if host is None and user is None and password is None:
        return None
    return server_url(host if host is not None else config["database.host"],
                      user if user is not None else config["database.user"],
                      password if password is not None else config["database.password"],
                      config["database.port"], config["database.backend"])
