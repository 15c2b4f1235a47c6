"""AutoPopulate, the mixin of Imported and Computed tables: `make`, `key_source`,
`populate` and `progress` of one table.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import random
from collections.abc import Iterable, Mapping
from contextlib import closing
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import DataJointError
from ..settings import config

if TYPE_CHECKING:
    from ..expression import QueryExpression
from .batch import GroupRunner
from .keysource import _done_clause, _restricted_source, _todo_select, default_key_source
from .make import ERROR, SUCCESS, RetryPolicy, Runner, _arguments, _is_tripartite
from .workers import _run_distributed

logger = logging.getLogger("datajoint_sa")

ORDERS = ("original", "reverse", "random")


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
                 retry_on: Any = None, max_retries: int | None = None,
                 batch_size: int | None = None) -> dict[str, Any]:
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
        (see RetryPolicy). `batch_size` (default `dj.config["populate.batch_size"]`) is how
        many keys a serial populate makes in one transaction (see populate/batch.py); 1 makes
        each key in its own.
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
        if batch_size is None:
            batch_size = config["populate.batch_size"]
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise DataJointError(f"populate of {name}: batch_size must be a positive integer")
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
                with runner.durable_at_end():
                    if batch_size > 1 and len(todo) > 1 and not runner.tripartite:
                        with closing(GroupRunner(runner, batch_size).run(todo)) as results:
                            for key, status, error in results:
                                outcome.add(key, status, error)
                                bar.update()
                    else:
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
            from ..jobs import error_text

            self.error_list.append((key, error if self.objects else error_text(error)))

    def result(self) -> dict[str, Any]:
        return {"success_count": self.success_count, "error_list": self.error_list}


