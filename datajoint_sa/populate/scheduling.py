"""Key-level scheduling of a whole pipeline: `dj.populate(*tables|schemas|modules, ...)`.

Every Imported/Computed table of the pipeline is a step. A key of a step is submitted as
soon as the upstream rows it needs are committed, with no barrier between tables: when the
makes of upstream keys commit, the scheduler asks the database which keys of each downstream
step they made ready (the step's key source restricted by the committed keys, minus what
the step holds) and queues them. Keys that commit close together share that work: one
listing and one queue insert per downstream step for the whole batch (`ReadyBelow`); the
listing waits for more keys only while the queue holds keys that run first anyway.
Independent branches run side by side; a failed key stops only the keys below it.

A step is scheduled key by key when its keys are exactly its key source (the default one,
joining its primary-key parents) and every upstream table of the pipeline is one of those
parents (or a part of one: parts commit with their master). Any other step (an overridden
key source, an upstream table reached through a secondary foreign key or a manual table)
waits until all its upstream steps are drained, then lists its keys: still no barrier for
the rest of the pipeline.

With `reserve_jobs=True` the keys are queued once in the job tables (`pending`, with their
priority) and a task takes its key with one UPDATE that only one worker wins, so other
workers (`datajoint-sa worker`) can share the queue. Tasks run in this process, in
populate's own processes (`processes=N`), on any `concurrent.futures.Executor` (threads
need no pickling: locally defined classes work), or on Dask (`client=` or
`client.get_executor()`), where task names show table and key.
"""

from __future__ import annotations

import concurrent.futures as cf
import heapq
import itertools
import logging
import multiprocessing
import random
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import DataJointError

if TYPE_CHECKING:
    from ..connection import Connection
    from ..dependencies import Dependencies

logger = logging.getLogger("datajoint_sa")

#: tasks kept in flight per worker: few, so that priorities and downstream keys go first
IN_FLIGHT_PER_WORKER = 2
#: database sessions a worker thread may hold at once (its own and its bookkeeping one)
SESSIONS_PER_THREAD = 2
#: committed keys whose downstream listing may wait for more to share it (while the queue
#: holds keys that run first anyway): one listing and one queue insert per batch
BELOW_BATCH = 256
#: restrictions per listing statement
LISTING_CHUNK = 1000


@dataclass
class Step:
    """One table of the pipeline and what the scheduler knows about it."""

    node: str
    table_class: type
    index: int  # topological position: ties of priority go upstream first
    upstream: set[str] = field(default_factory=set)
    keyed: bool = True  # ready keys are found per committed upstream key
    renames: dict[str, dict[str, str]] = field(default_factory=dict)  # upstream -> {p: c}
    source_names: set[str] = field(default_factory=set)
    children: list[str] = field(default_factory=list)
    listed: bool = False  # its key source was listed (at the start, or once drained)
    queued: int = 0
    in_flight: int = 0
    awaiting: int = 0  # committed upstream keys whose ready keys here are not listed yet
    submitted: int = 0

    @property
    def name(self) -> str:
        return self.table_class.__name__


def plan(targets: tuple[Any, ...]) -> tuple[list[Step], Connection]:
    """The steps downstream of (and including) the targets, parents first."""
    from ..dependencies import Dependencies, is_auto_populated_name
    from .mixin import AutoPopulate
    from .targets import _classes_by_node, _collect_targets, _makes

    classes, start_nodes, connection = _collect_targets(targets)
    graph = Dependencies.load(connection)
    if not set(start_nodes) <= graph.nodes:  # read while other sessions changed the catalog
        graph = Dependencies.load(connection)
        missing = sorted(set(start_nodes) - graph.nodes)
        if missing:
            raise DataJointError(f"dj.populate: {', '.join(missing)} not found in the database")
    wanted: set[str] = set()
    for node in start_nodes:
        if node in graph.nodes:
            wanted.update(graph.descendants(node))
    known = _classes_by_node(classes)
    steps: dict[str, Step] = {}
    for node in graph.topological(wanted):
        table_class = known.get(node)
        if table_class is None:
            if is_auto_populated_name(node.partition(".")[2]):
                logger.warning("dj.populate: no class for %s in this process; skipped", node)
            continue
        if issubclass(table_class, AutoPopulate) and _makes(table_class):
            steps[node] = Step(node, table_class, len(steps))
    for step in steps.values():
        _link(step, steps, graph)
    return list(steps.values()), connection


def _link(step: Step, steps: dict[str, Step], graph: Dependencies) -> None:
    """Find the upstream steps of `step` and whether it can be scheduled key by key."""
    from .mixin import AutoPopulate

    default_source = _attribute_owner(step.table_class, "key_source") is AutoPopulate
    direct: dict[str, Any] = {}  # upstream step -> the primary edge that leads to it
    for edge in graph.parents(step.node):
        parent = edge.parent
        reached = _upstream_of(parent, steps, graph)
        step.upstream.update(reached)
        owner = parent if parent in steps else _master_step(parent, steps, graph)
        if owner is not None and edge.primary:
            direct[owner] = edge
    step.keyed = default_source and step.upstream <= set(direct)
    for owner, edge in direct.items():
        step.renames[owner] = {p: c for c, p in edge.attr_map}
    try:
        step.source_names = set(step.table_class().key_source.heading.names)
    except Exception:  # a key source that cannot be built yet: list it when drained
        step.keyed = False
    for node in step.upstream:
        steps[node].children.append(step.node)


def _attribute_owner(cls: type, name: str) -> type | None:
    return next((k for k in cls.__mro__ if name in vars(k)), None)


def _upstream_of(node: str, steps: Mapping[str, Step], graph: Dependencies) -> set[str]:
    """The steps at or above `node`, walking up through tables that are not steps."""
    if node in steps:
        return {node}
    found: set[str] = set()
    seen = {node}
    frontier = [node]
    while frontier:
        current = frontier.pop()
        for edge in graph.parents(current):
            if edge.parent in steps:
                found.add(edge.parent)
            elif edge.parent not in seen:
                seen.add(edge.parent)
                frontier.append(edge.parent)
    return found


def _master_step(node: str, steps: Mapping[str, Step], graph: Dependencies) -> str | None:
    """The step whose part `node` is (`schema.master__part` below `schema.master`)."""
    schema, _, name = node.partition(".")
    for edge in graph.parents(node):
        master = edge.parent
        if master in steps and name.startswith(master.partition(".")[2] + "__") and (
                master.partition(".")[0] == schema):
            return master
    return None


# ------------------------------------------------------------------------------ executors

class _Inline(cf.Executor):
    """Runs each task at once in this process (the serial schedule)."""

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> cf.Future[Any]:
        future: cf.Future[Any] = cf.Future()
        try:
            future.set_result(fn(*args))
        except BaseException as error:
            if not isinstance(error, Exception):
                raise
            future.set_exception(error)
        return future


def _is_dask(executor: cf.Executor) -> bool:
    return type(executor).__module__.startswith("distributed") and hasattr(executor, "_client")


def task_name(step: Step, key: Mapping[str, Any]) -> str:
    """`Table-attr=value,attr=value-<unique>`: what the Dask dashboard shows for a task."""
    text = ",".join(f"{k}={v}" for k, v in key.items()).replace("-", "_")
    return f"{step.name}-{text}-{uuid.uuid4().hex}"


class ReadyBelow:
    """Committed keys waiting for the listing of the downstream keys they made ready.

    Per committed key and key-level downstream step, the restriction is the key renamed to
    the step's attributes and cut to its key source's; `take` then lists each downstream
    step's ready keys for ALL the waiting restrictions of one attribute set in one query
    (`TodoAmong`, compiled once per step), instead of one listing per committed key. A key
    is added only once its make has committed, so a listed downstream key always finds its
    own upstream rows; a failed key is never added, so it stops only the keys below it.
    """

    def __init__(self, steps: Mapping[str, Step], chosen: set[str] | None = None) -> None:
        self.steps = steps
        self.chosen = chosen
        self.waiting: dict[tuple[str, tuple[str, ...]], dict[tuple[Any, ...], None]] = {}
        self.listings: dict[tuple[str, tuple[str, ...]], Any] = {}
        self.count = 0  # restrictions waiting, over all steps

    def add(self, node: str, key: Mapping[str, Any]) -> None:
        """`key` of step `node` committed: its key-level downstream keys are to be listed."""
        for child_node in self.steps[node].children:
            child = self.steps[child_node]
            if not child.keyed or (self.chosen is not None and child_node not in self.chosen):
                continue
            renames = child.renames.get(node, {})
            restriction = {renames.get(a, a): v for a, v in key.items()}
            names = tuple(a for a in restriction if a in child.source_names)
            values = self.waiting.setdefault((child_node, names), {})
            value = tuple(restriction[a] for a in names)
            if value not in values:
                values[value] = None
                child.awaiting += 1
                self.count += 1

    def nodes(self) -> set[str]:
        """The steps with keys waiting to be listed."""
        return {child for child, _ in self.waiting}

    def take(self) -> dict[str, list[dict[str, Any]]]:
        """List the ready keys of every waiting step: one query per step and attribute set
        (per thousand restrictions); the waiting restrictions are then gone."""
        from .keysource import TodoAmong

        waiting, self.waiting, self.count = self.waiting, {}, 0
        ready: dict[str, list[dict[str, Any]]] = {}
        for (child_node, names), values in waiting.items():
            child = self.steps[child_node]
            child.awaiting = 0
            listing = self.listings.get((child_node, names))
            if listing is None:
                listing = TodoAmong(child.table_class(), names)
                self.listings[(child_node, names)] = listing
            rows = list(values)
            found = ready.setdefault(child_node, [])
            for start in range(0, max(1, len(rows)), LISTING_CHUNK):
                found.extend(listing(rows[start:start + LISTING_CHUNK]))
        return ready


# ------------------------------------------------------------------------------ scheduler

class Scheduler:
    """Runs the steps' keys on an executor in dependency order, key by key."""

    below: ReadyBelow

    def __init__(self, steps: list[Step], connection: Connection, *,
                 reserve_jobs: bool = False, suppress_errors: bool = False,
                 return_exception_objects: bool = False, max_calls: int | None = None,
                 order: str = "original", display_progress: bool = False,
                 processes: int = 1, make_kwargs: Mapping[str, Any] | None = None,
                 executor: cf.Executor | None = None, client: Any = None,
                 priority: Any = None, retry_on: Any = None,
                 max_retries: int | None = None) -> None:
        from .make import RetryPolicy
        from .mixin import ORDERS

        if order not in ORDERS:
            raise DataJointError(f"dj.populate: order must be one of {', '.join(ORDERS)}, "
                                 f"not {order!r}")
        if not isinstance(processes, int) or processes < 1:
            raise DataJointError("dj.populate: processes must be a positive integer")
        if sum(x is not None for x in (executor, client)) + (processes > 1) > 1:
            raise DataJointError("dj.populate: give one of processes, executor and client")
        if max_calls is not None and (not isinstance(max_calls, int) or max_calls < 0):
            raise DataJointError("dj.populate: max_calls must be a non-negative integer")
        if connection.in_transaction:
            raise DataJointError("dj.populate cannot run inside a transaction: each make "
                                 "runs in its own")
        self.steps = {s.node: s for s in steps}
        self.connection = connection
        self.reserve_jobs = reserve_jobs
        self.suppress_errors = suppress_errors
        self.objects = return_exception_objects
        self.max_calls = max_calls
        self.order = order
        self.display_progress = display_progress
        self.priority = priority
        self.options = {
            node: {"reserve_jobs": reserve_jobs, "make_kwargs": dict(make_kwargs or {}),
                   "queued": reserve_jobs,
                   "retry": RetryPolicy.of(step.table_class, retry_on, max_retries)}
            for node, step in self.steps.items()}
        if client is not None:
            executor = client.get_executor(pure=False)
        self.processes = processes
        self.executor = executor
        self.heap: list[tuple[int, int, int, str, dict[str, Any]]] = []
        self.seq = itertools.count()
        self.attempted: set[tuple[str, str]] = set()
        self.results: dict[str, dict[str, Any]] = {
            node: {"success_count": 0, "error_list": []} for node in self.steps}
        self.first_error: BaseException | None = None

    # ---- keys ---------------------------------------------------------------------------
    def _priority_of(self, step: Step) -> Any:
        """The priority given for `step`: None, a number, or a function of the key."""
        chosen = self.priority
        if isinstance(chosen, Mapping):
            chosen = next((chosen[k] for k in (step.table_class, step.name, step.node)
                           if k in chosen), None)
        return chosen

    def _rank(self, step: Step, key: Mapping[str, Any]) -> int:
        from ..jobs import DEFAULT_PRIORITY

        chosen = self._priority_of(step)
        if callable(chosen):
            chosen = chosen(dict(key))
        return DEFAULT_PRIORITY if chosen is None else int(chosen)

    def _push(self, step: Step, keys: list[Any]) -> None:
        """Queue keys of a step that this run has not tried yet."""
        from ..jobs import key_hash

        fresh: list[dict[str, Any]] = []
        for key in keys:
            if self.max_calls is not None and step.submitted + len(fresh) >= self.max_calls:
                break
            marker = (step.node, key_hash(key))
            if marker not in self.attempted:
                self.attempted.add(marker)
                fresh.append(key)
        if not fresh:
            return
        ranks = [self._rank(step, key) for key in fresh]
        if self.reserve_jobs:  # queued once, for this run's tasks and any other worker
            by_key = {id(k): r for k, r in zip(fresh, ranks)}
            table: Any = step.table_class
            table._schema.jobs.enqueue(table.table_name, fresh, lambda k: by_key[id(k)])
        for key, rank in zip(fresh, ranks):
            heapq.heappush(self.heap, (rank, step.index, next(self.seq), step.node, key))
        step.queued += len(fresh)
        step.submitted += len(fresh)
        if self.bar is not None:
            self.bar.total = (self.bar.total or 0) + len(fresh)
            self.bar.refresh()

    def _list(self, step: Step, restriction: Mapping[str, Any] | None = None, *,
              sweep: bool = False) -> None:
        """List the keys to do of a step (all of them, or those one upstream key made
        ready) and queue them."""
        table: Any = step.table_class()
        keys = table._keys_to_do(() if restriction is None else (dict(restriction),))
        if restriction is None:
            step.listed = True
            if self.reserve_jobs and keys:
                from .mixin import say_blocked

                jobs = table._schema.jobs
                hashes = jobs.hashes(table.table_name)
                if hashes:
                    remaining = len(keys)
                    keys = [k for k in keys if not jobs.taken(table.table_name, k, hashes)]
                    if remaining and not keys and not sweep:
                        say_blocked(table, jobs)
            if self.order == "reverse":
                keys.reverse()
            elif self.order == "random":
                random.shuffle(keys)
        self._push(step, keys)

    def _drained(self, node: str, seen: set[str] | None = None) -> bool:
        step = self.steps[node]
        seen = seen if seen is not None else set()
        if node in seen:
            return True
        seen.add(node)
        return step.listed and not (step.queued or step.in_flight or step.awaiting) and all(
            self._drained(up, seen) for up in step.upstream)

    def _start_waiting(self) -> None:
        for step in self.steps.values():
            if not step.listed and all(self._drained(up) for up in step.upstream):
                self._list(step)

    def _sweep(self) -> bool:
        """When all is quiet: list every step once more (keys that became ready in ways the
        scheduler did not see, e.g. made by another worker). True when work was found."""
        before = len(self.heap)
        for step in self.steps.values():
            self._list(step, sweep=True)
        return len(self.heap) > before

    # ---- running ------------------------------------------------------------------------
    def _workers(self, executor: cf.Executor) -> int:
        from .workers import _worker_count

        return 1 if isinstance(executor, _Inline) else _worker_count(executor)

    def run(self) -> dict[str, Any]:
        from tqdm import tqdm

        self.bar: Any = None
        with tqdm(total=0, desc="dj.populate", disable=not self.display_progress) as bar:
            self.bar = bar
            executor, own, ref = self._executor()
            try:
                self._loop(executor, ref)
            finally:
                if own:
                    executor.shutdown(wait=True, cancel_futures=True)
        return self._result()

    def _executor(self) -> tuple[cf.Executor, bool, Callable[[Step], Any]]:
        """(executor, whether this run owns it, how a task names its table)."""
        from .workers import TableRef, _init_pipeline_worker, _start_method

        if self.executor is None and self.processes == 1:
            return _Inline(), True, lambda step: step.table_class
        if self.executor is None:
            method = _start_method()
            classes = {node: (s.table_class if method == "fork" else TableRef.of(s.table_class))
                       for node, s in self.steps.items()}
            self.connection.close()  # children must not inherit a live database socket
            executor = cf.ProcessPoolExecutor(
                max_workers=self.processes, mp_context=multiprocessing.get_context(method),
                initializer=_init_pipeline_worker, initargs=(classes,))
            return executor, True, lambda step: step.node
        if isinstance(self.executor, cf.ThreadPoolExecutor):
            self._check_pool(self.executor)
            return self.executor, False, lambda step: step.table_class
        return self.executor, False, lambda step: TableRef.of(step.table_class)

    def _check_pool(self, executor: cf.ThreadPoolExecutor) -> None:
        """Threads each hold their own sessions: the engine's pool must have room."""
        pool = self.connection.engine.pool
        size = getattr(pool, "size", None)
        overflow = getattr(pool, "_max_overflow", -1)
        if not callable(size) or overflow < 0:
            return
        needed = SESSIONS_PER_THREAD * (executor._max_workers + 1) + 1
        if size() + overflow < needed:
            raise DataJointError(
                f"dj.populate: {executor._max_workers} threads need up to {needed} database "
                f"sessions, but the connection's pool holds {size() + overflow}: open the "
                f"connection with dj.Connection(url, pool_size={needed}) or use fewer threads")

    def _loop(self, executor: cf.Executor, ref: Callable[[Step], Any]) -> None:
        from .workers import run_task

        limit = 1 if isinstance(executor, _Inline) else max(
            1, self._workers(executor)) * IN_FLIGHT_PER_WORKER
        dask = _is_dask(executor)
        running: dict[cf.Future[Any], tuple[Step, dict[str, Any]]] = {}
        self.below = ReadyBelow(self.steps)
        for step in self.steps.values():
            if step.keyed or not step.upstream:
                self._list(step)
        try:
            while True:
                self._start_waiting()
                while len(running) < limit:
                    if self.below.count and self._list_below_now():
                        self._push_below()
                        self._start_waiting()
                        continue
                    if not self.heap:
                        break
                    _, _, _, node, key = heapq.heappop(self.heap)
                    step = self.steps[node]
                    step.queued -= 1
                    step.in_flight += 1
                    args = (ref(step), key, self.options[node])
                    if dask:  # the ClientExecutor hands `key` to Client.submit: the task name
                        submit: Any = executor.submit
                        future = submit(run_task, *args, key=task_name(step, key))
                    else:
                        future = executor.submit(run_task, *args)
                    running[future] = (step, key)
                if not running:
                    if self.heap or self._sweep():
                        continue
                    return
                done, _ = cf.wait(list(running), return_when=cf.FIRST_COMPLETED)
                for future in done:
                    step, key = running.pop(future)
                    step.in_flight -= 1
                    if self._finished(step, key, future):
                        self.below.add(step.node, key)
        except BaseException:
            for future in running:
                future.cancel()
            raise

    def _list_below_now(self) -> bool:
        """Whether the waiting downstream listing must run before the next queued key: when
        the queue is empty, the batch is full, or a key it may find would run first (a
        lower priority value, or an upstream step on a tie). Otherwise the next queued key
        runs before any key the listing would find anyway, so more committed keys can
        share the listing at no cost to the order."""
        if not self.heap or self.below.count >= BELOW_BATCH:
            return True
        rank, index = self.heap[0][:2]
        for node in self.below.nodes():
            step = self.steps[node]
            if (self._least_rank(step), step.index) < (rank, index):
                return True
        return False

    def _least_rank(self, step: Step) -> float:
        """The lowest priority value a key of `step` can have (-inf when it depends on
        the key)."""
        from ..jobs import DEFAULT_PRIORITY

        chosen = self._priority_of(step)
        if callable(chosen):
            return float("-inf")
        return DEFAULT_PRIORITY if chosen is None else int(chosen)

    def _push_below(self) -> None:
        """List the downstream keys the committed keys made ready, and queue them (one
        query and one queue insert per step)."""
        for node, keys in self.below.take().items():
            self._push(self.steps[node], keys)

    def _finished(self, step: Step, key: dict[str, Any], future: cf.Future[Any]) -> bool:
        """Count the outcome of a task; True when its downstream keys may be ready (the
        make committed, or the key was done or taken elsewhere)."""
        from ..jobs import error_text
        from .make import ERROR, SUCCESS

        try:
            _, status, error = future.result()
        except Exception as failure:  # the task itself failed (e.g. the worker was lost)
            status, error = ERROR, failure
        result = self.results[step.node]
        if status == SUCCESS:
            result["success_count"] += 1
        if status == ERROR:
            assert error is not None
            self.first_error = self.first_error or error
            result["error_list"].append((key, error if self.objects else error_text(error)))
            logger.info("%s %s failed: %s; the keys below it wait", step.name, key, error)
        if self.bar is not None:
            self.bar.update()
        return status != ERROR

    def _result(self) -> dict[str, Any]:
        if self.first_error is not None and not self.suppress_errors:
            raise self.first_error
        success = sum(r["success_count"] for r in self.results.values())
        errors = [e for r in self.results.values() for e in r["error_list"]]
        return {"success_count": success, "error_list": errors, "tables": self.results}


def populate_pipeline(*targets: Any, **options: Any) -> dict[str, Any]:
    """Populate every Imported/Computed table downstream of (and including) the given
    tables, schemas or modules, key by key in the order of the foreign-key graph across
    schemas (see the module's docstring). Options are those of `populate`, and `client=` (a
    dask.distributed Client).

    Returns `{'success_count': n, 'error_list': [(key, error), ...], 'tables': {node:
    result}}`, node being "schema.table"; a table with no class in this process is skipped
    with a warning. Errors stop only the keys downstream of the failed key; without
    `suppress_errors` the first error is raised once everything else is done.
    """
    steps, connection = plan(targets)
    return Scheduler(steps, connection, **options).run()
