"""Arrow results through an ADBC driver (PostgreSQL: binary COPY), for the columnar
fetch: the driver fills Arrow columns in C, so no Python object is made per value.

The ADBC connection is a second session of its own (autocommit, one per process and thread),
so it is only used for reads outside a transaction: inside one, the session that holds the
transaction's writes must read them. Any trouble (no driver installed, a parameter it cannot
bind, a server error) returns None and the caller takes the row path, which then reports a
real error in the usual words.
"""

from __future__ import annotations

import atexit
import datetime
import importlib
import logging
import os
import threading
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

logger = logging.getLogger("datajoint_sa")
_local = threading.local()
_all: list[tuple[int, Any]] = []  # (process id, connection) of every one opened
_lock = threading.Lock()
#: parameter types whose Arrow form binds as the row driver binds them
_PLAIN = (bool, int, float, str, bytes, datetime.date)


def _connection(driver: str, uri: str) -> Any | None:
    cache: dict[tuple[Any, ...], Any] = _local.__dict__.setdefault("connections", {})
    key = (os.getpid(), driver, uri)
    connection = cache.get(key)
    if connection is None:
        try:
            module = importlib.import_module(f"adbc_driver_{driver}.dbapi")
        except ImportError:
            return None
        connection = module.connect(uri, autocommit=True)
        cache[key] = connection
        with _lock:
            _all.append((os.getpid(), connection))
    return connection


def _forget(driver: str, uri: str) -> None:
    cache: dict[tuple[Any, ...], Any] = _local.__dict__.setdefault("connections", {})
    connection = cache.pop((os.getpid(), driver, uri), None)
    if connection is not None:
        try:
            connection.close()
        except Exception:  # a broken session: dropping it is all that is left
            pass


@atexit.register
def _close_all() -> None:
    """Close this process's connections at exit; a forked child leaves its parent's alone
    (closing one would end the parent's session on the shared socket)."""
    with _lock:
        for pid, connection in _all:
            if pid == os.getpid():
                try:
                    connection.close()
                except Exception:
                    pass
        _all.clear()


def positional(select: sa.Select[Any], dialect: Any) -> tuple[str, list[Any]] | None:
    """`select` compiled for `dialect` (a positional paramstyle) and its parameters in order,
    or None when a parameter is of a type whose Arrow form might bind differently."""
    compiled = select.compile(dialect=dialect, compile_kwargs={"render_postcompile": True})
    order = compiled.positiontup or []
    params = [compiled.params[name] for name in order]
    if not all(v is None or isinstance(v, _PLAIN) for v in params):
        return None
    if any(isinstance(v, datetime.datetime) and v.tzinfo is not None for v in params):
        return None
    return compiled.string, params


def read(driver: str, uri: str, sql: str, params: Sequence[Any]) -> Any | None:
    """The Arrow table of one query, or None (see the module docstring)."""
    try:
        connection = _connection(driver, uri)
    except Exception as error:  # cannot connect: the row path will say why, if it fails too
        logger.debug("ADBC %s connection failed: %s", driver, error)
        return None
    if connection is None:
        return None
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(sql, tuple(params) if params else None)
            return cursor.fetch_arrow_table()
        finally:
            cursor.close()
    except Exception as error:
        logger.debug("ADBC %s read failed, taking the row path: %s", driver, error)
        _forget(driver, uri)
        return None
