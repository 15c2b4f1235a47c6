"""The connection: one SQLAlchemy engine and connection, nesting transactions, the backend."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection as SAConnection

from .backends import Backend, get_backend
from .errors import DataJointError
from .settings import config

logger = logging.getLogger("datajoint_sa")


def hide_password(url: str | sa.URL) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


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
        self._sa: SAConnection | None = None
        self._depth = 0
        self._pid = os.getpid()

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
            self._sa, self._depth, self._pid = None, 0, os.getpid()
        if self._sa is None or self._sa.closed:
            try:
                self._sa = self.engine.connect()
            except sa.exc.DBAPIError as error:
                raise DataJointError(
                    f"Cannot connect to {hide_password(self.url)}: {error.orig}") from None
        return self._sa

    def close(self) -> None:
        if self._sa is not None:
            self._sa.close()
            self._sa = None
        self._depth = 0
        self.engine.dispose()

    def is_connected(self) -> bool:
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

    @property
    def transaction(self) -> Any:
        """Context manager: `with conn.transaction:` (nests through savepoints)."""
        return self._transaction()

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        with self.session(write=True):
            yield self

    @contextmanager
    def session(self, *, write: bool = True) -> Iterator[SAConnection]:
        """The SQLAlchemy connection inside a transaction (joined if one is open)."""
        connection = self.sa
        if self._depth and not write:
            # a read joins the open transaction as it is: a savepoint would cost two round
            # trips per fetch inside make(), and a failed read fails the transaction anyway
            self._depth += 1
            try:
                yield connection
            finally:
                self._depth -= 1
            return
        transaction: sa.Transaction
        if self._depth == 0:
            connection.info["dj_read_only"] = not write
            transaction = connection.begin()
        else:
            transaction = connection.begin_nested()
        self._depth += 1
        try:
            yield connection
        except BaseException:
            self._depth -= 1
            if transaction.is_active:
                transaction.rollback()
            raise
        else:
            self._depth -= 1
            transaction.commit()
        finally:
            connection.info["dj_read_only"] = False

    def execute(self, statement: Any, parameters: Any = None, *, write: bool = True) -> Any:
        """Execute a statement and return all rows (a list of Row) or the rowcount."""
        with self.session(write=write) as connection:
            result = connection.execute(statement, parameters)
            return result.all() if result.returns_rows else result.rowcount

    def query(self, statement: Any, parameters: Any = None) -> list[Any]:
        """All rows of a read-only statement."""
        with self.session(write=False) as connection:
            return list(connection.execute(statement, parameters).all())

    def classify(self, error: BaseException, table: str = "") -> BaseException:
        """The DataJointError for a driver error (or the error itself when unknown)."""
        return self.backend_impl.classify_error(error, table) or error


_shared: Connection | None = None


def conn(url: str | sa.URL | None = None, *, reset: bool = False) -> Connection:
    """The shared connection; `reset=True` (or a different url) replaces it."""
    global _shared
    wanted = sa.make_url(url) if url is not None else None
    if _shared is not None and (reset or (wanted is not None and wanted != _shared.url)):
        _shared.close()
        _shared = None
    if _shared is None:
        _shared = Connection(wanted)
    return _shared
