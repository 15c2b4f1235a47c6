"""One key at a time: the reservation, the make's transaction (plain or in three parts),
retries, and the job bookkeeping that commits with the results.
"""

from __future__ import annotations

import logging
import pickle
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from ..backends import Backend
from ..errors import DataJointError

if TYPE_CHECKING:
    from ..connection import Connection
    from ..jobs import JobTable

logger = logging.getLogger("datajoint_sa")

SUCCESS, SKIPPED, ERROR = "success", "skipped", "error"
#: tries of a make whose transaction lost a deadlock or a serialization conflict
MAKE_ATTEMPTS = 3


# -------------------------------------------------------------------------- one key at a time

class RetryPolicy:
    """Which errors of a make are tried again, how often, and after what pause.

    A table marks errors retryable with class attributes: `retry_on = (TimeoutError, ...)`
    (exception types), `max_retries = 3` and `retry_backoff = 1.0` (seconds, doubled after
    each try, at most `MAX_BACKOFF`); `populate(retry_on=..., max_retries=...)` overrides them.
    Other errors are recorded at once.
    """

    MAX_BACKOFF = 60.0

    def __init__(self, retry_on: tuple[type[BaseException], ...] = (), max_retries: int = 3,
                 backoff: float = 1.0) -> None:
        if not all(isinstance(t, type) and issubclass(t, BaseException) for t in retry_on):
            raise DataJointError("retry_on must be a tuple of exception classes")
        if not isinstance(max_retries, int) or max_retries < 0:
            raise DataJointError("max_retries must be a non-negative integer")
        self.retry_on, self.max_retries, self.backoff = retry_on, max_retries, float(backoff)

    @classmethod
    def of(cls, table_class: type, retry_on: Any = None, max_retries: int | None = None,
           backoff: float | None = None) -> RetryPolicy:
        on = retry_on if retry_on is not None else getattr(table_class, "retry_on", ())
        if isinstance(on, type):
            on = (on,)
        return cls(tuple(on or ()),
                   max_retries if max_retries is not None else getattr(
                       table_class, "max_retries", 3),
                   backoff if backoff is not None else getattr(table_class, "retry_backoff", 1.0))

    def should_retry(self, error: BaseException, tries: int) -> bool:
        return bool(self.retry_on) and isinstance(error, self.retry_on) and (
            tries <= self.max_retries)

    def pause(self, tries: int) -> float:
        return float(min(self.MAX_BACKOFF, self.backoff * 2 ** (tries - 1)))

    def __reduce__(self) -> tuple[Any, ...]:
        return (RetryPolicy, (self.retry_on, self.max_retries, self.backoff))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, RetryPolicy) and self.__reduce__() == other.__reduce__()

    def __hash__(self) -> int:
        return hash(self.__reduce__())


class Runner:
    """Runs `make` for one key at a time: reservation, transaction, job bookkeeping.

    Built once per populate call (or per worker process), so statements are compiled once.
    """

    def __init__(self, table: Any, *, reserve_jobs: bool = False,
                 make_kwargs: Mapping[str, Any] | None = None, queued: bool = False,
                 retry: RetryPolicy | None = None) -> None:
        self.table: Any = table
        self.connection: Connection = table.connection
        self.table_name = table.table_name
        self.node = table.node_name
        self.make_kwargs = dict(make_kwargs or {})
        self.reserve_jobs = reserve_jobs
        #: keys come from the queue (the scheduler's or a worker's): take queued rows first,
        #: and give a key back to the queue when stopped in the middle of its make
        self.queued = queued
        self.retry = retry or RetryPolicy.of(type(table))
        #: set by a worker: when it says True, a failing make was interrupted, not wrong
        self.stopping: Callable[[], bool] | None = None
        self.jobs: JobTable | None = table._schema.jobs if reserve_jobs else None
        self.tripartite = _is_tripartite(type(table))
        self.make = table.make
        target = table._sa_table
        assert target is not None
        self.key_names = table.primary_key
        self.done_statement = sa.select(sa.literal(1)).select_from(target).where(
            *(target.c[n] == sa.bindparam(f"k_{n}") for n in self.key_names)).limit(1)

    @contextmanager
    def durable_at_end(self) -> Iterator[None]:
        """Around a loop of makes: their commits do not wait for the disk (where the backend
        allows it per session), and one commit at the end waits for all of them. A server
        crash in the loop loses only the last keys' results, each whole (a make commits
        atomically, with its job row), to be computed again; once the loop is done every
        result is on disk."""
        connection, backend = self.connection, self.connection.backend_impl
        if type(backend).defer_durability is Backend.defer_durability:
            yield  # no such setting on this backend: not even a transaction to ask
            return
        with connection.translating(self.table, "populate"):
            with connection.session(write=True) as sa_conn:
                previous = backend.defer_durability(sa_conn)
        if previous is None:
            yield
            return
        failed = False
        try:
            yield
        except BaseException:
            failed = True
            raise
        finally:
            try:
                with connection.translating(self.table, "populate"):
                    with connection.session(write=True) as sa_conn:
                        backend.restore_durability(sa_conn, previous)
            except Exception as error:
                if not failed:
                    raise
                # keep the loop's own error; the server flushes the log within a second
                logger.warning("%s: could not restore commit durability: %s",
                               type(self.table).__name__, error)

    def run(self, key: dict[str, Any]) -> tuple[str, BaseException | None]:
        """(status, error) of one key: SUCCESS, SKIPPED (taken or done elsewhere) or ERROR."""
        from ..jobs import JobKeyCollision, key_hash

        jobs = self.jobs
        hashed = ""
        if jobs is not None:
            hashed = key_hash(key)
            try:
                with self.turn():
                    if not jobs.reserve(self.table_name, key, hashed, queued_first=self.queued):
                        return SKIPPED, None
            except JobKeyCollision as error:  # the row is another key's: leave it alone
                return ERROR, error
        return self.run_reserved(key, hashed)

    def run_reserved(self, key: dict[str, Any], hashed: str = "",
                     failed: Exception | None = None) -> tuple[str, BaseException | None]:
        """(status, error) of a key this process has reserved (or that needs no reservation):
        the make, tried again on the errors the table marks retryable, then the bookkeeping.
        `failed`: the make has run once already (in a group, see batch.py) and raised it."""
        jobs = self.jobs
        tries = 0
        try:
            while True:
                try:
                    if failed is not None:
                        first, failed = failed, None
                        raise first
                    done = self._attempts(key, hashed)
                    break
                except Exception as error:
                    tries += 1
                    if not self.retry.should_retry(error, tries):
                        raise
                    pause = self.retry.pause(tries)
                    logger.info("%s %s: %s; retry %d in %.1f s", type(self.table).__name__,
                                key, error, tries, pause)
                    time.sleep(pause)
        except BaseException as error:
            stopped = self.stopping is not None and self.stopping()
            if stopped or not isinstance(error, Exception):  # the key is not at fault
                if jobs is not None:
                    self._give_back(key, hashed)
                raise
            if jobs is not None:
                try:
                    with self.turn():
                        jobs.error(self.table_name, key, error, attempts=tries)
                except Exception as recording:  # keep the make's error, mention this one
                    logger.error("Could not record the error of %s %s: %s",
                                 type(self.table).__name__, key, recording)
            return ERROR, error
        return (SUCCESS if done else SKIPPED), None

    def _give_back(self, key: dict[str, Any], hashed: str) -> None:
        """Free the key for other workers: back to the queue, or deleted (plain populate)."""
        assert self.jobs is not None
        try:
            if self.queued:
                self.jobs.release(self.table_name, key, hashed or None)
            else:
                self.jobs.complete(self.table_name, key)
        except Exception as error:  # the lease frees it anyway
            logger.warning("Could not release %s %s: %s", type(self.table).__name__, key, error)

    def _attempts(self, key: dict[str, Any], hashed: str) -> bool:
        """The make's transaction, run again when it lost a lock conflict (a deadlock or a
        serialization failure rolls it back whole: nothing of it remains)."""
        for attempt in range(MAKE_ATTEMPTS):
            try:
                if self.tripartite:
                    return self._tripartite(key, hashed)
                return self._make(key, hashed)
            except Exception as error:
                if attempt + 1 == MAKE_ATTEMPTS or not self._transient(error):
                    raise
                logger.info("%s %s: %s; trying again", type(self.table).__name__, key, error)
        raise AssertionError("unreachable")

    def _transient(self, error: BaseException | None) -> bool:
        backend = self.connection.backend_impl
        while error is not None:
            if backend.is_transient(error):
                return True
            error = error.__cause__
        return False

    def _is_done(self, sa_conn: Any, key: Mapping[str, Any]) -> bool:
        params = {f"k_{n}": key[n] for n in self.key_names if n in key}
        if len(params) < len(self.key_names):  # the key source names only part of the key
            return False
        return sa_conn.execute(self.done_statement, params).first() is not None

    def _finish(self, sa_conn: Any, hashed: str) -> None:
        if self.jobs is not None:
            self.jobs.complete_in(sa_conn, self.table_name, hashed)

    def turn(self) -> AbstractContextManager[None]:
        """This process's turn to write (processes queue fairly on SQLite; see backends)."""
        return self.connection.backend_impl.writer_turn(self.connection.url)

    def _make(self, key: dict[str, Any], hashed: str) -> bool:
        with self.turn(), self.connection.session(write=True, savepoints=False) as sa_conn:
            if self._is_done(sa_conn, key):
                self._finish(sa_conn, hashed)
                return False
            with inserts_allowed(self.connection, self.node):
                self.make(dict(key), **self.make_kwargs)
            self._finish(sa_conn, hashed)
        return True

    def _tripartite(self, key: dict[str, Any], hashed: str) -> bool:
        table = self.table
        with self.connection.session(write=False) as sa_conn:
            if self._is_done(sa_conn, key):
                done = True
            else:
                done = False
        if done:
            if self.jobs is not None:
                with self.connection.session(write=True) as sa_conn:
                    self._finish(sa_conn, hashed)
            return False
        fetched = _arguments(table.make_fetch(dict(key)))
        computed = _arguments(table.make_compute(dict(key), *fetched, **self.make_kwargs))
        with self.turn(), self.connection.session(write=True, savepoints=False) as sa_conn:
            if self._is_done(sa_conn, key):
                self._finish(sa_conn, hashed)
                return False
            again = _arguments(table.make_fetch(dict(key)))
            if not same_data(fetched, again):
                raise DataJointError(
                    f"The inputs of {type(table).__name__} for key {key} changed while "
                    "make_compute ran; its results were discarded")
            with inserts_allowed(self.connection, self.node):
                table.make_insert(dict(key), *computed)
            self._finish(sa_conn, hashed)
        return True


@contextmanager
def inserts_allowed(connection: Connection, node: str) -> Iterator[None]:
    """Let the running make insert into its table and parts (Table._check_direct_insert)."""
    allowed: set[str] = connection._allowed_inserts
    added = node not in allowed
    allowed.add(node)
    try:
        yield
    finally:
        if added:
            allowed.discard(node)


def _is_tripartite(cls: type) -> bool:
    from .mixin import AutoPopulate

    make = next((vars(k)["make"] for k in cls.__mro__ if "make" in vars(k)), None)
    return make is vars(AutoPopulate)["make"] and all(
        callable(getattr(cls, name, None)) for name in ("make_fetch", "make_compute",
                                                         "make_insert"))


def _arguments(value: Any) -> tuple[Any, ...]:
    """make_fetch / make_compute results as positional arguments (a tuple or list unpacks)."""
    if isinstance(value, (tuple, list)):
        return tuple(value)
    return (value,)


def same_data(a: Any, b: Any) -> bool:
    """Deep equality of fetched inputs: numpy arrays by content, NaN equal to NaN."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        if not (isinstance(a, np.ndarray) and isinstance(b, np.ndarray)):
            return False
        if a.shape != b.shape or a.dtype != b.dtype:
            return False
        if a.dtype.kind in "fc":
            return bool(np.array_equal(a, b, equal_nan=True))
        if a.dtype.names is not None or a.dtype.kind == "O":
            return all(same_data(x, y) for x, y in zip(a.ravel().tolist(), b.ravel().tolist()))
        return bool(np.array_equal(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(same_data(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return type(a) is type(b) and len(a) == len(b) and all(
            same_data(x, y) for x, y in zip(a, b))
    if hasattr(a, "equals") and type(a) is type(b):  # pandas objects
        return bool(a.equals(b))
    if isinstance(a, float) and isinstance(b, float) and a != a and b != b:
        return True
    try:
        return bool(a == b)
    except Exception:  # comparison not defined: fall back to the serialized form
        return pickle.dumps(a) == pickle.dumps(b)


