"""Parallel transfers: the store objects of a column move concurrently, not one at a time.

Inserting or fetching many `<blob@store>` / `<attach@store>` values costs one store request
per object; on an object store each request waits for the network (tens of ms), so one at
a time is slow. `encode_all` / `decode_all` (called by insert and fetch for a whole column)
keep the codecs' own work sequential and in row order (serializing, naming downloaded
files) and run only the store requests concurrently, on a thread pool of
`dj.config["transfer_workers"]` threads (default 16; 1 turns it off):

- insert: the codecs run value by value; `<hash@store>` (the store step of both types)
  computes each object's address and queues its write instead of writing; the queued
  writes then run concurrently (each distinct object once), before the rows are inserted,
  so a row still never points to a missing object.
- fetch: the objects of the column are read concurrently first (each distinct one once,
  checked against its size and hash), then the codecs decode value by value from them.

Both work in batches (`BATCH_VALUES` values or `BATCH_BYTES` bytes) to bound memory. A
thread pool rather than fsspec's async batch calls: it serves every fsspec filesystem the
same way (local folders rename a temporary file into place, object stores write once), and
s3fs already multiplexes calls from threads onto its own event loop.
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Hashable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from .settings import config

T = TypeVar("T")
#: values (and bytes) moved per batch: bounds what is held in memory at once
BATCH_VALUES = 256
BATCH_BYTES = 256 << 20
DEFAULT_WORKERS = 16

_CURRENT: contextvars.ContextVar[Batch | None] = contextvars.ContextVar("dj_transfers",
                                                                        default=None)


def workers() -> int:
    """The number of concurrent transfers (`dj.config["transfer_workers"]`)."""
    value = config.get("transfer_workers") if "transfer_workers" in config else None
    return max(1, int(value if value is not None else DEFAULT_WORKERS))


def run(tasks: Sequence[Callable[[], T]]) -> list[T]:
    """Run the tasks on the transfer pool; results in order; the first error is raised
    once every task has finished (so no write is still running when the insert fails)."""
    count = min(workers(), len(tasks))
    if count <= 1:
        return [task() for task in tasks]
    with ThreadPoolExecutor(count, thread_name_prefix="dj-transfer") as pool:
        futures = [pool.submit(task) for task in tasks]
    return [future.result() for future in futures]


class Batch:
    """The writes queued and the objects read ahead for one batch of a column."""

    def __init__(self) -> None:
        self.writes: dict[Hashable, Callable[[], Any]] = {}
        self.queued_bytes = 0
        self.reads: dict[Hashable, Any] = {}

    def defer(self, key: Hashable, size: int, write: Callable[[], Any]) -> None:
        """Queue a write (once per key: the same content is written once)."""
        if key not in self.writes:
            self.writes[key] = write
            self.queued_bytes += size

    def full(self) -> bool:
        return len(self.writes) >= BATCH_VALUES or self.queued_bytes >= BATCH_BYTES

    def flush(self) -> None:
        writes, self.writes, self.queued_bytes = list(self.writes.values()), {}, 0
        run(writes)


def current() -> Batch | None:
    """The batch a codec's store step joins, if a column is being moved concurrently."""
    return _CURRENT.get()


def _concurrent(codec: Any) -> bool:
    return workers() > 1 and any(getattr(c, "transfers", False) for c in codec.chain())


def encode_all(codec: Any, values: Sequence[Any], keys: Sequence[Any] | None,
               options: Mapping[str, Any], skip: Callable[[Any], bool]) -> list[Any]:
    """`codec.encode` of every value not skipped (None, missing), the store writes of the
    chain run concurrently; the result in the order of `values`."""
    encode = codec.encode
    result = list(values)
    todo = [i for i, v in enumerate(values) if not skip(v)]
    if len(todo) < 2 or not _concurrent(codec):
        for i in todo:
            result[i] = encode(values[i], key=keys[i] if keys is not None else None,
                               **options)
        return result
    batch = Batch()
    token = _CURRENT.set(batch)
    try:
        for i in todo:
            result[i] = encode(values[i], key=keys[i] if keys is not None else None,
                               **options)
            if batch.full():
                batch.flush()
        batch.flush()
    finally:
        _CURRENT.reset(token)
    return result


def decode_all(codec: Any, values: Sequence[Any], keys: Sequence[Any] | None,
               options: Mapping[str, Any]) -> list[Any]:
    """`codec.decode` of every stored value (None stays None), the store reads of the
    chain's innermost codec done first, concurrently; in the order of `values`."""
    decode = codec.decode
    innermost = codec.chain()[-1]
    todo = [i for i, v in enumerate(values) if v is not None]
    result: list[Any] = [None] * len(values)
    if len(todo) < 2 or workers() <= 1 or not getattr(innermost, "transfers", False):
        for i in todo:
            result[i] = decode(values[i], key=keys[i] if keys is not None else None,
                               **options)
        return result
    context = options.get("context")
    for start in range(0, len(todo), BATCH_VALUES):
        part = todo[start:start + BATCH_VALUES]
        reads: dict[Hashable, Callable[[], Any]] = {}
        for i in part:
            located = innermost.read_task(values[i], context=context)
            if located is not None:
                reads.setdefault(*located)
        batch = Batch()
        batch.reads = dict(zip(reads, run(list(reads.values()))))
        token = _CURRENT.set(batch)
        try:
            for i in part:
                result[i] = decode(values[i], key=keys[i] if keys is not None else None,
                                   **options)
        finally:
            _CURRENT.reset(token)
    return result
