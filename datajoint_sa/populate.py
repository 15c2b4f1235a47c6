"""AutoPopulate: `make`, `key_source`, `populate`, `progress`, and the pipeline resolver.

One `populate` call asks the database once for the keys to do (the key source minus what
the table already holds, one query), then runs `make` for each key in its own transaction
together with the job bookkeeping: a key's results and parts commit completely or not at
all. The keys run in this process, in worker processes (`processes=N`), or on any
`concurrent.futures.Executor` (`executor=`, e.g. a Dask cluster's); with
`reserve_jobs=True` the schema's job table (jobs.py) keeps them exclusive across workers.
`populate_pipeline` (`dj.populate`) orders a whole pipeline by the foreign-key graph.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import logging
import multiprocessing
import os
import pickle
import random
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from functools import reduce
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa

from .errors import DataJointError

if TYPE_CHECKING:
    from .connection import Connection
    from .expression import QueryExpression
    from .jobs import JobTable
    from .table import Table

logger = logging.getLogger("datajoint_sa")

ORDERS = ("original", "reverse", "random")
SUCCESS, SKIPPED, ERROR = "success", "skipped", "error"
#: tries of a make whose transaction lost a deadlock or a serialization conflict
MAKE_ATTEMPTS = 3
#: futures kept in flight per worker when keys go to an executor
IN_FLIGHT_PER_WORKER = 4


class AutoPopulate:
    """Mixin of Imported and Computed tables: `make(key)` fills the table one key at a time.

    Define either `make(self, key)`, or the three-part form for long computations:
    `make_fetch(key)` returns the inputs, `make_compute(key, *fetched)` computes outside any
    transaction, `make_insert(key, *computed)` inserts. Then the fetch is repeated inside
    the transaction and the results are discarded, with an error, if the inputs changed.
    """

    # ---- what to compute ----------------------------------------------------------------
    @property
    def key_source(self) -> QueryExpression:
        """The keys that `make` is called with: by default the join of the primary-key
        parents, projected to their keys. Override with any query expression."""
        return default_key_source(self)  # type: ignore[arg-type]

    def make(self, key: dict[str, Any]) -> None:
        """Compute and insert the rows of `key` (runs inside a transaction)."""
        table: Any = self
        if not _is_tripartite(type(self)):
            raise NotImplementedError(
                f"{type(self).__name__} defines neither make(self, key) nor make_fetch, "
                "make_compute and make_insert")
        fetched = _arguments(table.make_fetch(dict(key)))
        computed = _arguments(table.make_compute(dict(key), *fetched))
        table.make_insert(dict(key), *computed)

    def _keys_to_do(self, restrictions: tuple[Any, ...]) -> list[dict[str, Any]]:
        """The keys of the restricted key source not yet in the table, in key order."""
        select, names = _todo_select(self, restrictions)  # type: ignore[arg-type]
        rows = self.connection.query(select)  # type: ignore[attr-defined]
        return [dict(zip(names, row)) for row in rows]

    def progress(self, *restrictions: Any, display: bool = False) -> tuple[int, int]:
        """(remaining, total) keys of the (restricted) key source, in one query."""
        table: Any = self
        source = _restricted_source(table, restrictions)
        sub = source.to_select().subquery("key_source")
        done = _done_clause(table, sub, source.primary_key)
        counts = sa.select(sa.func.count(),
                           sa.func.coalesce(sa.func.sum(sa.case((done, 0), else_=1)), 0)
                           ).select_from(sub)
        total, remaining = (int(v) for v in table.connection.query(counts)[0])
        if display:
            share = 100.0 * (total - remaining) / total if total else 100.0
            print(f"{type(self).__name__:<20}: Completed {total - remaining} of {total} "
                  f"({share:.1f}%)")
        return remaining, total

    # ---- populate -----------------------------------------------------------------------
    def populate(self, *restrictions: Any, keys: Iterable[Mapping[str, Any]] | None = None,
                 suppress_errors: bool = False, return_exception_objects: bool = False,
                 reserve_jobs: bool = False, max_calls: int | None = None,
                 order: str = "original", display_progress: bool = False,
                 processes: int | None = 1,
                 make_kwargs: Mapping[str, Any] | None = None,
                 executor: cf.Executor | None = None, priority: Any = None,
                 retry_on: Any = None, max_retries: int | None = None) -> dict[str, Any]:
        """Call `make` for every key of the key source (restricted by `restrictions`) that
        the table does not hold yet.

        Returns `{'success_count': n, 'error_list': [(key, error), ...]}`; errors are
        message strings, or the exceptions with `return_exception_objects=True`. Without
        `suppress_errors` the first error is raised. `reserve_jobs=True` coordinates with
        other workers through the schema's job table and records errors there (a failed key
        is skipped until its error row is deleted). `keys=` gives the keys explicitly.
        `processes=None` runs one worker process per CPU (at most one per key).
        `priority` (a number or a function of the key; lower runs first) orders the keys;
        `retry_on` (exception classes) and `max_retries` try those errors again with backoff
        (see RetryPolicy).
        """
        table: Any = self
        name = type(self).__name__
        if order not in ORDERS:
            raise DataJointError(f"populate of {name}: order must be one of {', '.join(ORDERS)},"
                                 f" not {order!r}")
        if processes is not None and (not isinstance(processes, int) or processes < 1):
            raise DataJointError(f"populate of {name}: processes must be a positive integer")
        if executor is not None and processes not in (1, None):
            raise DataJointError(f"populate of {name}: give either processes or executor")
        if max_calls is not None and (not isinstance(max_calls, int) or max_calls < 0):
            raise DataJointError(f"populate of {name}: max_calls must be a non-negative integer")
        if make_kwargs is not None and not isinstance(make_kwargs, Mapping):
            raise DataJointError(f"populate of {name}: make_kwargs must be a dict")
        connection = table.connection
        if connection.in_transaction:
            raise DataJointError(f"populate of {name} cannot run inside a transaction: each "
                                 "make runs in its own")
        if keys is None:
            todo = self._keys_to_do(restrictions)
        else:
            todo = [dict(k) for k in keys]
        if reserve_jobs and todo:  # taken, failed and ignored keys: one query, not one per key
            jobs = table._schema.jobs
            hashes = jobs.hashes(table.table_name)
            if hashes:
                remaining = len(todo)
                todo = [k for k in todo if not jobs.taken(table.table_name, k, hashes)]
                if remaining and not todo:
                    say_blocked(table, jobs)
        if order == "reverse":
            todo.reverse()
        elif order == "random":
            random.shuffle(todo)
        if priority is not None:
            todo.sort(key=lambda k: priority(k) if callable(priority) else priority)
        if max_calls is not None:
            todo = todo[:max_calls]
        options: dict[str, Any] = {"reserve_jobs": reserve_jobs,
                                   "make_kwargs": dict(make_kwargs or {})}
        if retry_on is not None or max_retries is not None:
            options["retry"] = RetryPolicy.of(type(self), retry_on, max_retries)
        outcome = _Outcome(suppress_errors, return_exception_objects)
        if not todo:
            return outcome.result()
        if processes is None:
            processes = 1 if executor is not None else max(1, min(len(todo),
                                                                   os.cpu_count() or 1))
        from tqdm import tqdm

        with tqdm(total=len(todo), desc=name, disable=not display_progress) as bar:
            if executor is None and processes == 1:
                runner = Runner(table, **options)
                for key in todo:
                    status, error = runner.run(key)
                    outcome.add(key, status, error)
                    bar.update()
            else:
                _run_distributed(table, todo, options, outcome, bar, executor=executor,
                                 processes=processes)
        return outcome.result()


def say_blocked(table: Any, jobs: Any) -> None:
    """Tell the user why a populate did nothing when only failed or ignored keys remain."""
    counts = jobs.counts().get(table.table_name, {})
    errors, ignored = counts.get("error", 0), counts.get("ignore", 0)
    if not errors:
        return
    schema = table._schema.database
    logger.warning(
        "%s: nothing to do: every remaining key has an error in the job table (%d error(s)%s)."
        " See them with `datajoint-sa jobs %s --table %s --status error` and clear them with "
        "`datajoint-sa jobs clear %s --table %s --status error` to compute them again",
        type(table).__name__, errors, f", {ignored} ignored" if ignored else "", schema,
        type(table).__name__, schema, type(table).__name__)


class _Outcome:
    """Counts and errors of one populate call; raises the first error unless suppressed."""

    def __init__(self, suppress_errors: bool, return_exception_objects: bool) -> None:
        self.suppress = suppress_errors
        self.objects = return_exception_objects
        self.success_count = 0
        self.error_list: list[tuple[dict[str, Any], Any]] = []

    def add(self, key: dict[str, Any], status: str, error: BaseException | None) -> None:
        if status == SUCCESS:
            self.success_count += 1
        elif status == ERROR:
            assert error is not None
            if not self.suppress:
                raise error
            from .jobs import error_text

            self.error_list.append((key, error if self.objects else error_text(error)))

    def result(self) -> dict[str, Any]:
        return {"success_count": self.success_count, "error_list": self.error_list}


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

    def run(self, key: dict[str, Any]) -> tuple[str, BaseException | None]:
        """(status, error) of one key: SUCCESS, SKIPPED (taken or done elsewhere) or ERROR."""
        from .jobs import JobKeyCollision, key_hash

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

    def run_reserved(self, key: dict[str, Any], hashed: str = ""
                     ) -> tuple[str, BaseException | None]:
        """(status, error) of a key this process has reserved (or that needs no reservation):
        the make, tried again on the errors the table marks retryable, then the bookkeeping."""
        jobs = self.jobs
        tries = 0
        try:
            while True:
                try:
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


# --------------------------------------------------------------------------- the key source

def default_key_source(table: Table) -> QueryExpression:
    """The join of the primary-key parents, projected to their keys (renames applied)."""
    spec = table._spec
    parents = [fk for fk in spec.foreign_keys if fk.in_key] if spec is not None else []
    if not parents:
        raise DataJointError(
            f"{type(table).__name__} has no foreign keys in its primary key, so it has no "
            "default key_source: define key_source")
    terms = []
    for fk in parents:
        parent = fk.parent() if isinstance(fk.parent, type) else fk.parent
        renames = {c: p for c, p in zip(fk.attributes, fk.parent_attributes) if c != p}
        terms.append(parent.proj(**renames) if renames else parent.proj())
    return reduce(lambda a, b: a * b, terms).proj()


def _restricted_source(table: Any, restrictions: tuple[Any, ...]) -> Any:
    source = table.key_source
    if isinstance(source, type):
        source = source()
    for condition in restrictions:
        source = source & condition
    return source


def _done_clause(table: Any, sub: Any, names: list[str]) -> Any:
    """EXISTS(the table has a row matching the key source row), on common attributes."""
    target = table._sa_table
    common = [n for n in names if n in target.c]
    return sa.exists(sa.select(sa.literal(1)).select_from(target).where(
        *(target.c[n] == sub.c[n] for n in common)))


def _todo_select(table: Any, restrictions: tuple[Any, ...]) -> tuple[sa.Select[Any], list[str]]:
    """One query for the keys to do: the key source NOT EXISTS in the table."""
    source = _restricted_source(table, restrictions)
    names = list(source.primary_key)
    sub = source.to_select().subquery("key_source")
    select = sa.select(*(sub.c[n] for n in names)).where(
        ~_done_clause(table, sub, names)).order_by(*(sub.c[n] for n in names))
    return select, names


# ------------------------------------------------------------------ processes and executors

_resolving = threading.RLock()


class TableRef:
    """A table class by module path, schema and database URL: what a task sends to a worker
    process that does not share this one's memory (spawned processes, Dask workers)."""

    def __init__(self, module: str, qualname: str, database: str, url: str) -> None:
        self.module, self.qualname, self.database, self.url = module, qualname, database, url

    @classmethod
    def of(cls, table_class: type) -> TableRef:
        qualname = table_class.__qualname__
        if "<locals>" in qualname:
            raise DataJointError(
                f"{table_class.__name__} is defined inside a function, so other processes "
                "cannot import it: define it at module level to populate through an executor")
        schema = table_class._schema  # type: ignore[attr-defined]
        url = schema.connection.url.render_as_string(hide_password=False)
        return cls(table_class.__module__, qualname, schema.database, url)

    def __reduce__(self) -> tuple[Any, ...]:
        return (TableRef, (self.module, self.qualname, self.database, self.url))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, TableRef) and self.__reduce__() == other.__reduce__()

    def __hash__(self) -> int:
        return hash((self.module, self.qualname, self.database, self.url))

    def __repr__(self) -> str:
        return f"TableRef({self.module}.{self.qualname} in {self.database!r})"

    def resolve(self) -> type:
        """The table class in this process, declared against the named schema."""

        with _resolving:  # threads of one worker resolve (and activate) one at a time
            return self._resolve()

    def _resolve(self) -> type:
        from .connection import Connection
        from .schema import Schema

        module = importlib.import_module(self.module)
        found: Any = module
        for part in self.qualname.split("."):
            found = getattr(found, part, None)
            if found is None:
                raise DataJointError(f"{self.module} has no table class {self.qualname}")
        if found._sa_table is None:  # not declared in this process: activate its schema
            schema = next((s for s in vars(module).values() if isinstance(s, Schema)
                           and any(c is found for c, _ in s._deferred)), None)
            if schema is None:
                raise DataJointError(f"{self.module}.{self.qualname} is not declared in a "
                                     "schema in this process")
            schema.activate(self.database, connection=Connection(self.url), create_schema=False)
        if found._schema.database != self.database:
            raise DataJointError(
                f"{self.module}.{self.qualname} is declared in schema {found._schema.database!r}"
                f" in this process, but the task is for {self.database!r}")
        return found


_worker_state: dict[str, Any] = {}
_runners = threading.local()  # each thread its own runners (and database sessions)
#: runners kept per thread (one per table and options)
RUNNERS_PER_THREAD = 32


def _init_worker(table: Any, options: dict[str, Any]) -> None:
    """Initializer of populate's own worker processes (the table class itself when forked)."""
    _worker_state.clear()
    _worker_state["default"] = (table, options)


def _init_pipeline_worker(classes: dict[str, Any]) -> None:
    """Initializer of dj.populate's own worker processes: table classes (forked) or
    TableRefs (spawned) by node name; tasks name their table by node."""
    _worker_state.clear()
    _worker_state["classes"] = classes


def resolve_table(table: Any) -> type:
    """The table class a task names: a class, a TableRef, or a node name of this worker."""
    if isinstance(table, str):
        table = _worker_state["classes"][table]
    return table.resolve() if isinstance(table, TableRef) else table


def run_task(table: Any, key: dict[str, Any], options: dict[str, Any] | None
             ) -> tuple[dict[str, Any], str, BaseException | None]:
    """One key in a worker; `table` is a table class (threads), a TableRef (other
    processes), a node name (dj.populate's own processes), or None (populate's own pool).

    Each thread has its own runners and database sessions: threads never share a session.
    """
    if table is None:
        table, options = _worker_state["default"]
    elif isinstance(table, str):
        table = _worker_state["classes"][table]
    assert options is not None
    cached: list[tuple[Any, Any, dict[str, Any], Runner]] = getattr(
        _runners, "cache", None) or []
    _runners.cache = cached
    # a class declared again (into another schema) is another table: its own runner
    declared = getattr(table, "_sa_table", None)
    runner = next((r for t, d, o, r in cached if t == table and d is declared and o == options),
                  None)
    if runner is None:
        table_class = table.resolve() if isinstance(table, TableRef) else table
        runner = Runner(table_class(), **options)
        cached.append((table, declared, options, runner))
        del cached[:-RUNNERS_PER_THREAD]
    status, error = runner.run(key)
    return key, status, _portable(error)


def _portable(error: BaseException | None) -> BaseException | None:
    """The error, with its traceback as a note, in a form that pickles back to the caller."""
    if error is None:
        return None
    stack = "".join(traceback.format_exception(type(error), error, error.__traceback__))
    if hasattr(error, "add_note"):
        try:
            error.add_note(f"In the worker process:\n{stack}")
        except Exception:  # notes are a courtesy
            pass
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # an exception that does not pickle travels as its message
        from .jobs import error_text

        return DataJointError(f"{error_text(error)}\n{stack}")


def _start_method() -> str:
    """Fork on Linux (table classes defined anywhere, even in a notebook, work); spawn
    elsewhere (macOS frameworks do not survive a fork), which imports them by module path."""
    return "fork" if sys.platform.startswith("linux") else "spawn"


def _run_distributed(table: Any, keys: list[dict[str, Any]], options: dict[str, Any],
                     outcome: _Outcome, bar: Any, *, executor: cf.Executor | None,
                     processes: int) -> None:
    """Send the keys to worker processes, keeping a bounded number of tasks in flight."""
    own = executor is None
    ref: Any
    if own:
        method = _start_method()
        payload: Any = type(table) if method == "fork" else TableRef.of(type(table))
        # children must not inherit a live database socket: close ours before forking
        table.connection.close()
        executor = cf.ProcessPoolExecutor(
            max_workers=processes, mp_context=multiprocessing.get_context(method),
            initializer=_init_worker, initargs=(payload, options))
        ref, task_options = None, None
        workers = processes
    else:
        assert executor is not None
        # threads share this process's memory: the class itself, however it was defined
        ref = type(table) if isinstance(executor, cf.ThreadPoolExecutor) else TableRef.of(
            type(table))
        task_options = options
        workers = _worker_count(executor)
    pending: set[cf.Future[Any]] = set()
    remaining = iter(keys)
    limit = max(1, workers) * IN_FLIGHT_PER_WORKER
    try:
        for key in remaining:
            pending.add(executor.submit(run_task, ref, key, task_options))
            if len(pending) >= limit:
                break
        while pending:
            finished, pending = cf.wait(pending, return_when=cf.FIRST_COMPLETED)
            for future in finished:
                key, status, error = future.result()
                outcome.add(key, status, error)
                bar.update()
                following = next(remaining, None)
                if following is not None:
                    pending.add(executor.submit(run_task, ref, following, task_options))
    except BaseException:
        for future in pending:
            future.cancel()
        raise
    finally:
        if own:
            executor.shutdown(wait=True, cancel_futures=True)


def _worker_count(executor: cf.Executor) -> int:
    count = getattr(executor, "_max_workers", None)
    if isinstance(count, int):
        return count
    client = getattr(executor, "_client", None)  # dask.distributed's ClientExecutor
    if client is not None:
        try:
            return max(1, sum(client.nthreads().values()))
        except Exception:  # an unusual client: assume a few
            pass
    return 4


# ------------------------------------------------------------------ the pipeline resolver

def populate_pipeline(*targets: Any, **populate_options: Any) -> dict[str, Any]:
    """`dj.populate`: the whole pipeline below the targets, key by key (see scheduler.py)."""
    from .scheduler import populate_pipeline as run

    return run(*targets, **populate_options)


def _collect_targets(targets: tuple[Any, ...]) -> tuple[list[type], list[str], Connection]:
    from .schema import Schema
    from .table import Table

    if not targets:
        raise DataJointError("dj.populate needs tables, schemas or modules to start from")
    classes: list[type] = []
    nodes: list[str] = []
    connection = None

    def add_schema(schema: Schema) -> None:
        nonlocal connection
        if not schema.is_activated:
            return
        connection = connection or schema.connection
        classes.extend(schema._classes.values())
        nodes.extend(f"{schema.database}.{name}" for name in schema.list_tables())

    for target in targets:
        if isinstance(target, Table):
            target = type(target)
        if isinstance(target, type) and issubclass(target, Table):
            if target._sa_table is None or target._schema is None:
                raise DataJointError(f"{target.__name__} is not declared in a schema")
            classes.append(target)
            nodes.append(f"{target._schema.database}.{target.table_name}")
            connection = connection or target._schema.connection
        elif isinstance(target, Schema):
            add_schema(target)
        elif isinstance(target, ModuleType):
            for value in vars(target).values():
                if isinstance(value, Schema):
                    add_schema(value)
                elif (isinstance(value, type) and issubclass(value, Table)
                      and value._sa_table is not None and value._schema is not None):
                    classes.append(value)
                    nodes.append(f"{value._schema.database}.{value.table_name}")
                    connection = connection or value._schema.connection
        else:
            raise DataJointError(f"dj.populate: {target!r} is not a table, schema or module")
    if connection is None:
        raise DataJointError("dj.populate: none of the given schemas is activated")
    return classes, list(dict.fromkeys(nodes)), connection


def _classes_by_node(given: list[type]) -> dict[str, type]:
    """Declared table classes by node name: the given ones first, then every other class
    declared in this process (downstream tables may live in other modules)."""
    from .table import Table

    found: dict[str, type] = {}

    def add(table_class: Any) -> None:
        schema = table_class._schema
        if table_class._sa_table is None or schema is None or not schema.database:
            return
        if table_class._sa_table.key not in schema.metadata.tables:
            return  # re-declared since: a newer class holds the node
        node = f"{schema.database}.{table_class.table_name}"
        if node not in found or (_makes(table_class) and not _makes(found[node])):
            found[node] = table_class  # e.g. the pipeline's class over a virtual module's

    for table_class in given:
        add(table_class)
    stack: list[type] = list(Table.__subclasses__())
    while stack:
        table_class = stack.pop()
        stack.extend(table_class.__subclasses__())
        add(table_class)
    return found


def _makes(table_class: type) -> bool:
    """Whether a class can compute: its own make, or the three parts."""
    if not issubclass(table_class, AutoPopulate):
        return False
    make = next((vars(k)["make"] for k in table_class.__mro__ if "make" in vars(k)), None)
    return make is not vars(AutoPopulate)["make"] or _is_tripartite(table_class)
