"""Long-lived workers: `datajoint-sa worker PIPELINE_MODULE`.

A worker keeps taking keys from the job tables of a pipeline until it is idle for
`max_idle` seconds, has made `max_jobs` keys, or is stopped. It lists the keys to do once
when it starts (and again when it runs out of queued keys, at most every `rescan`
seconds), queueing them as `pending`; then it takes the next queued key, lowest priority
value first, with one UPDATE that only one worker wins, and runs the make. The keys that
committed makes made ready below them are listed and queued before the worker next reads
the queue (one query and one insert per downstream table for all of them), so many workers
form the same key-level dataflow as `dj.populate`.

Each reservation carries a heartbeat, refreshed while the make runs (heartbeat.py); a
reservation whose heartbeat is older than the lease is taken over by any worker on any host.
SIGTERM or SIGINT abandons the current make (its transaction rolls back, its key goes back
to the queue) and the worker exits with status 0.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import random
import signal
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from queue import Empty
from types import FrameType
from typing import Any

from ..connection import close_all
from ..errors import DataJointError

logger = logging.getLogger("datajoint_sa")

#: seconds between looks at an empty queue
POLL = 0.5
#: seconds between listings of the key sources while the queue is empty
RESCAN = 30.0
#: queued keys read per look at the queue
BATCH = 16


class WorkerStop(BaseException):
    """Raised in the make of a worker that was told to stop (SIGTERM/SIGINT): not an error
    of the key, so the key goes back to the queue."""


@dataclass
class WorkerStats:
    made: int = 0
    errors: int = 0
    skipped: int = 0
    stopped_by: str = ""
    error_list: list[tuple[dict[str, Any], str]] = field(default_factory=list)


class Worker:
    """Takes keys of the pipeline's steps from their job tables until idle or stopped."""

    def __init__(self, targets: Sequence[Any], *, tables: Sequence[str] | None = None,
                 max_idle: float | None = None, max_jobs: int | None = None,
                 poll: float = POLL, rescan: float = RESCAN, lease: float | None = None,
                 make_kwargs: dict[str, Any] | None = None) -> None:
        from .. import jobs
        from .make import RetryPolicy, Runner
        from .scheduling import ReadyBelow, plan

        if lease is not None:
            jobs.set_lease(lease)
        steps, self.connection = plan(tuple(targets))
        if tables:
            names = set(tables)
            unknown = names - {s.name for s in steps} - {s.node for s in steps}
            if unknown:
                raise DataJointError(f"worker: no Imported or Computed table named "
                                     f"{', '.join(sorted(unknown))} in the pipeline")
            chosen = {s.node for s in steps if s.name in names or s.node in names}
        else:
            chosen = {s.node for s in steps}
        self.steps = {s.node: s for s in steps}
        self.chosen = chosen
        self.max_idle, self.max_jobs = max_idle, max_jobs
        self.poll, self.rescan = poll, rescan
        self.runners = {
            node: Runner(step.table_class(), reserve_jobs=True, queued=True,
                         make_kwargs=make_kwargs,
                         retry=RetryPolicy.of(step.table_class))
            for node, step in self.steps.items() if node in chosen}
        for runner in self.runners.values():
            runner.stopping = self._stopping
        # the job tables to look at, with the tables of each
        self.queues: dict[int, tuple[Any, list[str]]] = {}
        for node in chosen:
            table: Any = self.steps[node].table_class
            jobs_table = table._schema.jobs
            self.queues.setdefault(id(table._schema), (jobs_table, []))[1].append(
                table.table_name)
        self.by_name = {(id(self.steps[n].table_class._schema),  # type: ignore[attr-defined]
                         self.steps[n].table_class.table_name): n  # type: ignore[attr-defined]
                        for n in chosen}
        self.batch: list[tuple[int, float, int, str, dict[str, Any]]] = []
        self.below = ReadyBelow(self.steps, chosen)
        self.stop_reason = ""
        self.in_make = False

    # ---- stopping -----------------------------------------------------------------------
    def _stopping(self) -> bool:
        return bool(self.stop_reason)

    def request_stop(self, reason: str = "stopped") -> None:
        self.stop_reason = reason

    def _on_signal(self, number: int, frame: FrameType | None) -> None:
        self.request_stop(signal.Signals(number).name)
        if self.in_make:  # abandon it: rolled back, the key back in the queue
            raise WorkerStop(self.stop_reason)

    # ---- the queue ----------------------------------------------------------------------
    def scan(self, nodes: Sequence[str] | None = None) -> int:
        """Queue the keys to do of the chosen tables (one query and one insert each)."""
        queued = 0
        for node in nodes if nodes is not None else sorted(
                self.chosen, key=lambda n: self.steps[n].index):
            table: Any = self.steps[node].table_class()
            keys = table._keys_to_do(())
            if keys:
                queued += table._schema.jobs.enqueue(table.table_name, keys)
        return queued

    def _queue_below(self, node: str, key: dict[str, Any]) -> None:
        """Note that `key` of `node` committed: the keys it made ready below it are listed
        and queued with those of the keys committed after it, before this worker next
        reads the queue (it would not take them sooner), or once BATCH keys wait."""
        self.below.add(node, key)
        if self.below.count >= BATCH:
            self._flush_below()

    def _flush_below(self) -> None:
        """List and queue the keys made ready below the committed keys: one query and one
        insert per downstream table."""
        for child_node, keys in self.below.take().items():
            table: Any = self.steps[child_node].table_class
            if keys:
                table._schema.jobs.enqueue(table.table_name, keys)

    def take(self) -> tuple[str, dict[str, Any], str] | None:
        """Claim the next queued key: (node, key, key hash), or None when none is free."""
        from ..jobs import key_hash

        for _ in range(2):
            if not self.batch:
                self._flush_below()
                self._read_batch()
            while self.batch and not self.stop_reason:
                _, _, schema_id, table_name, key = self.batch.pop(0)
                node = self.by_name[(schema_id, table_name)]
                jobs_table = self.queues[schema_id][0]
                hashed = key_hash(key)
                if jobs_table.claim(table_name, key, hashed):
                    return node, key, hashed
        return None

    def _read_batch(self) -> None:
        found = []
        for schema_id, (jobs_table, names) in self.queues.items():
            for priority, table_name, _hashed, key in jobs_table.next_keys(names, BATCH):
                # equal priorities in random order: workers reading the same batch spread out
                found.append((priority, random.random(), schema_id, table_name, key))
        found.sort(key=lambda row: row[:2])
        self.batch = found

    def _flush_at_exit(self) -> None:
        """Queue what the last committed keys made ready, for the next worker (a failure
        here only leaves them to the next worker's listing of the key sources)."""
        if not self.below.count:
            return
        try:
            self._flush_below()
        except Exception as error:
            logger.warning("worker: could not queue the keys made ready downstream: %s", error)

    # ---- the loop -----------------------------------------------------------------------
    def run(self) -> WorkerStats:
        """Work until idle, done or stopped; installs SIGTERM/SIGINT handlers when it runs
        in the main thread."""
        stats = WorkerStats()
        handlers = {}
        if threading.current_thread() is threading.main_thread():
            for number in (signal.SIGTERM, signal.SIGINT):
                handlers[number] = signal.signal(number, self._on_signal)
        try:
            self._loop(stats)
        except WorkerStop:
            pass
        finally:
            self._flush_at_exit()
            for number, handler in handlers.items():
                signal.signal(number, handler)
        stats.stopped_by = stats.stopped_by or self.stop_reason
        return stats

    def _loop(self, stats: WorkerStats) -> None:
        from ..jobs import error_text
        from .make import ERROR, SUCCESS

        self.scan()
        last_scan = idle_since = time.monotonic()
        while not self.stop_reason:
            taken = self.take()
            if taken is None:
                now = time.monotonic()
                if now - last_scan >= self.rescan:
                    last_scan = now
                    if self.scan():
                        continue
                if self.max_idle is not None and now - idle_since >= self.max_idle:
                    stats.stopped_by = "idle"
                    return
                time.sleep(min(self.poll, max(0.0, (self.max_idle or self.poll) / 4)))
                continue
            node, key, hashed = taken
            runner = self.runners[node]
            self.in_make = True
            try:
                status, error = runner.run_reserved(key, hashed)
            finally:
                self.in_make = False
            if status == SUCCESS:
                stats.made += 1
                self._queue_below(node, key)
            elif status == ERROR:
                stats.errors += 1
                stats.error_list.append((key, error_text(error) if error else ""))
            else:
                stats.skipped += 1
                self._queue_below(node, key)
            idle_since = time.monotonic()
            if self.max_jobs is not None and stats.made + stats.errors >= self.max_jobs:
                stats.stopped_by = "max_jobs"
                return


def run_workers(module: str, processes: int = 1, **options: Any) -> list[WorkerStats]:
    """Run `processes` workers on the pipeline module (a dotted name or a .py file); with
    more than one, each in its own process, SIGTERM/SIGINT forwarded to all of them."""
    if processes <= 1:
        return [_worker_for(module, **options).run()]
    context: Any = multiprocessing.get_context("spawn" if os.name == "nt" else "fork")
    queue: Any = context.Queue()
    children = [context.Process(target=_child, args=(module, options, queue), daemon=False)
                for _ in range(processes)]

    def forward(number: int, frame: FrameType | None) -> None:
        for child in children:
            if child.pid is not None and child.is_alive():
                os.kill(child.pid, number)

    previous = {n: signal.signal(n, forward) for n in (signal.SIGTERM, signal.SIGINT)}
    try:
        close_all()  # no socket of this process is shared with the children
        for child in children:
            child.start()
        results = []
        # the results are read while the children run: a child that has put its result
        # cannot end until the pipe takes it, so joining first can wait forever on one
        # whose result fills the pipe (multiprocessing's "joining processes that use
        # queues")
        while any(child.is_alive() for child in children):
            try:
                results.append(queue.get(timeout=0.2))
            except Empty:
                pass
        for child in children:
            child.join()
        while len(results) < len(children):
            try:
                results.append(queue.get(timeout=0.2))
            except Empty:
                break
        failed = [c.exitcode for c in children if c.exitcode not in (0, None)]
        if failed:
            raise DataJointError(f"worker: {len(failed)} worker process(es) failed "
                                 f"(exit codes {failed})")
        return results
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


def _worker_for(module: str, **options: Any) -> Worker:
    from ..cli import load_module

    return Worker([load_module(module)], **options)


def _child(module: str, options: dict[str, Any], queue: Any) -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    stats = _worker_for(module, **options).run()
    queue.put(stats)
