"""Key-level scheduling in batches: the keys that commit close together share one listing of
the downstream keys they made ready (and one queue insert), without a downstream key ever
starting before its own upstream rows commit, and without a failed key holding up the
others' downstream keys."""

from __future__ import annotations

import concurrent.futures as cf
import threading
from typing import Any

import pytest

import datajoint_sa as dj
from datajoint_sa.populate import keysource
from datajoint_sa.populate.worker import Worker


def _pipeline(schema: dj.Schema, seen: dict[str, Any], *, failing: frozenset[int] = frozenset()
              ) -> tuple[Any, Any, Any, Any]:
    """Session (two key attributes: the listing matches row values) -> First -> Second ->
    Third; each downstream make records whether its upstream row was there (committed: the
    make's own session sees only committed rows of others)."""
    lock = threading.Lock()

    def note(name: str, ok: bool) -> None:
        with lock:
            seen.setdefault(name, []).append(ok)

    @schema
    class Session(dj.Manual):
        definition = """
        subject : int32
        session : int32
        """

    @schema
    class First(dj.Computed):
        definition = """
        -> Session
        ---
        value : int32
        """

        def make(self, key: dict[str, Any]) -> None:
            if key["session"] in failing:
                raise ValueError(f"session {key['session']} is broken")
            self.insert1(dict(key, value=10 * key["subject"] + key["session"]))

    @schema
    class Second(dj.Computed):
        definition = """
        -> First
        ---
        value : int32
        """

        def make(self, key: dict[str, Any]) -> None:
            note("Second", len(First & key) == 1)
            self.insert1(dict(key, value=(First & key).fetch1("value") + 1))

    @schema
    class Third(dj.Computed):
        definition = """
        -> Second
        ---
        value : int32
        """

        def make(self, key: dict[str, Any]) -> None:
            note("Third", len(Second & key) == 1)
            self.insert1(dict(key, value=(Second & key).fetch1("value") + 1))

    Session.insert([(s, n) for s in range(3) for n in range(4)])
    return Session, First, Second, Third


@pytest.fixture
def listings(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    """(table, restrictions) of every downstream listing."""
    calls: list[tuple[str, int]] = []
    original = keysource.TodoAmong.__call__

    def counted(self: keysource.TodoAmong, values: list[tuple[Any, ...]]) -> Any:
        calls.append((self.table_name, len(values)))
        return original(self, values)

    monkeypatch.setattr(keysource.TodoAmong, "__call__", counted)
    return calls


def test_committed_keys_share_one_downstream_listing(schema: dj.Schema,
                                                     listings: list[tuple[str, int]]) -> None:
    seen: dict[str, Any] = {}
    _, First, Second, Third = _pipeline(schema, seen)
    result = dj.populate(First, reserve_jobs=True)
    assert result["success_count"] == 36 and result["error_list"] == []
    assert seen["Second"] == [True] * 12 and seen["Third"] == [True] * 12
    # in this process the queue holds First's keys until all of them ran, so one listing
    # for Second covers the 12 committed keys, and one for Third
    assert listings == [("Second", 12), ("Third", 12)]
    assert sorted(Third.fetch("value")) == sorted(10 * s + n + 2 for s in range(3)
                                                  for n in range(4))
    assert len(schema.jobs) == 0


def test_a_failed_key_in_a_batch_stops_only_its_own_downstream_keys(
        schema: dj.Schema, listings: list[tuple[str, int]]) -> None:
    seen: dict[str, Any] = {}
    _, First, Second, Third = _pipeline(schema, seen, failing=frozenset({2}))
    with cf.ThreadPoolExecutor(3) as executor:
        result = dj.populate(First, executor=executor, reserve_jobs=True, suppress_errors=True)
    assert result["success_count"] == 9 + 9 + 9
    assert sorted(k["session"] for k, _ in result["error_list"]) == [2, 2, 2]
    expected = sorted((s, n) for s in range(3) for n in (0, 1, 3))
    assert sorted(zip(*Second.fetch("subject", "session"))) == expected
    assert sorted(zip(*Third.fetch("subject", "session"))) == expected
    assert seen["Second"] == [True] * 9 and seen["Third"] == [True] * 9
    # the listings are shared: fewer than one per committed upstream key
    assert 2 <= len(listings) < 18
    assert sorted(schema.jobs.fetch("status")) == ["error"] * 3


def test_a_key_of_a_lower_priority_value_is_listed_at_once(
        schema: dj.Schema, listings: list[tuple[str, int]]) -> None:
    """Batching never reorders keys: a downstream key that would run before the next queued
    key (here by a per-table priority) is listed as soon as its upstream key commits."""
    seen: dict[str, Any] = {}
    _, First, Second, Third = _pipeline(schema, seen)
    order: list[str] = []
    second_make, third_make = Second.make, Third.make

    def second(self: Any, key: dict[str, Any]) -> None:
        order.append("Second")
        second_make(self, key)

    def third(self: Any, key: dict[str, Any]) -> None:
        order.append("Third")
        third_make(self, key)

    Second.make, Third.make = second, third  # type: ignore[method-assign]
    dj.populate(First, priority={Second: 1, Third: 0, First: 9})
    assert order[:2] == ["Second", "Third"]  # right after the first key of First
    assert all(n == 1 for _, n in listings)


def test_a_worker_lists_downstream_keys_in_batches(
        schema: dj.Schema, listings: list[tuple[str, int]]) -> None:
    seen: dict[str, Any] = {}
    _, First, Second, Third = _pipeline(schema, seen)
    stats = Worker([First], max_idle=0.2, poll=0.05).run()
    assert stats.made == 36 and stats.errors == 0
    assert len(Third) == 12
    assert seen["Second"] == [True] * 12 and seen["Third"] == [True] * 12
    # a worker lists them before it reads the queue again (16 keys a read), not per key
    assert len(listings) < 24
    assert len(schema.jobs) == 0
