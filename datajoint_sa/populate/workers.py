"""Keys in other processes and on executors: table references that travel, the task a
worker runs, populate's own process pool.
"""

from __future__ import annotations

import concurrent.futures as cf
import importlib
import logging
import multiprocessing
import pickle
import sys
import threading
import traceback
from typing import TYPE_CHECKING, Any

from ..errors import DataJointError

if TYPE_CHECKING:
    from .mixin import _Outcome
from .make import Runner

logger = logging.getLogger("datajoint_sa")

#: futures kept in flight per worker when keys go to an executor
IN_FLIGHT_PER_WORKER = 4


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
        from ..connection import Connection
        from ..schema import Schema

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
        from ..jobs import error_text

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


