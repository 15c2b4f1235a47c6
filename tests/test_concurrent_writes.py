"""Several processes inserting overlapping keys at once: every row lands exactly once, no
process sees an error (skip_duplicates and replace are atomic on every backend).

Each backend runs it; SQLite with a file database shared by the processes.
"""

from __future__ import annotations

import multiprocessing
import os
import random
from typing import Any

import pytest

import datajoint_sa as dj

fork = multiprocessing.get_context("fork")
WORKERS = 4
KEYS = 120
ROUNDS = 6


def _declare(schema: dj.Schema) -> Any:
    @schema
    class Reading(dj.Manual):
        definition = """
        sensor : int32
        sample : int32
        ---
        value : float64
        writer : int32
        label = null : varchar(40)
        unique index (label)
        """

    return Reading


def _writer(table: Any, mode: str, seed: int, barrier: Any, results: Any) -> None:
    """Insert overlapping slices of the key range, each round in a fresh random order."""
    rng = random.Random(seed)
    try:
        barrier.wait()
        for round_ in range(ROUNDS):
            start = rng.randrange(0, KEYS // 2)
            keys = list(range(start, start + KEYS // 2))
            rng.shuffle(keys)
            rows = [{"sensor": k % 3, "sample": k, "value": float(round_), "writer": os.getpid()}
                    for k in keys]
            table.insert(rows, skip_duplicates=mode == "skip", replace=mode == "replace")
            for k in keys[:5]:  # single-row inserts interleave with the batches
                table.insert1({"sensor": k % 3, "sample": k, "value": -1.0, "writer": 0},
                              skip_duplicates=mode == "skip", replace=mode == "replace")
        results.put((os.getpid(), "ok"))
    except BaseException as error:  # report, never hang the parent
        results.put((os.getpid(), f"{type(error).__name__}: {error}"))


@pytest.mark.parametrize("mode", ["skip", "replace"])
def test_four_writers_with_overlapping_keys(schema: dj.Schema, connection: dj.Connection,
                                            mode: str) -> None:
    Reading = _declare(schema)
    connection.close()  # the children must not inherit a live socket
    barrier = fork.Barrier(WORKERS)
    results = fork.Queue()
    workers = [fork.Process(target=_writer, args=(Reading, mode, seed, barrier, results))
               for seed in range(WORKERS)]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=240) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert [r for _, r in reports] == ["ok"] * WORKERS, reports
    keys = Reading.fetch("sensor", "sample", as_dict=True)
    assert len(keys) == len({(k["sensor"], k["sample"]) for k in keys})
    written = {k["sample"] for k in keys}
    assert written and written <= set(range(KEYS))
    # every row a worker gave is there: the union of what the workers inserted
    expected: set[int] = set()
    for seed in range(WORKERS):
        rng = random.Random(seed)
        for _ in range(ROUNDS):
            start = rng.randrange(0, KEYS // 2)
            keys_ = list(range(start, start + KEYS // 2))
            rng.shuffle(keys_)
            expected |= set(keys_)
    assert written == expected


def test_concurrent_skip_still_refuses_a_secondary_unique_clash(
        schema: dj.Schema, connection: dj.Connection) -> None:
    """The atomic skip form skips primary-key duplicates only, also under concurrency."""
    Reading = _declare(schema)
    Reading.insert1({"sensor": 0, "sample": 0, "value": 0.0, "writer": 0, "label": "taken"})
    with pytest.raises(dj.errors.DuplicateError):
        Reading.insert([{"sensor": 0, "sample": 0, "value": 1.0, "writer": 1},
                        {"sensor": 0, "sample": 1, "value": 1.0, "writer": 1, "label": "taken"}],
                       skip_duplicates=True)
    with pytest.raises(dj.errors.DuplicateError):
        Reading.insert1({"sensor": 0, "sample": 2, "value": 1.0, "writer": 1, "label": "taken"},
                        replace=True)
    assert Reading.fetch("sample", "value", "label", as_dict=True) == [
        {"sample": 0, "value": 0.0, "label": "taken"}]


def test_skip_with_a_generated_key_still_refuses_a_secondary_unique_clash(
        schema: dj.Schema) -> None:
    """Rows that leave an auto_increment key out: a unique clash is a duplicate entry, not a
    missing key (MySQL's guard sees no key value given)."""
    @schema
    class Note(dj.Manual):
        definition = """
        note_id : int32 auto_increment
        ---
        slug : varchar(20)
        unique index (slug)
        """

    Note.insert1({"slug": "first"})
    for options in ({"skip_duplicates": True}, {"replace": True}):
        with pytest.raises(dj.errors.DuplicateError):
            Note.insert([{"slug": "second"}, {"slug": "first"}], **options)
    assert sorted(Note.fetch("slug")) == ["first"]
