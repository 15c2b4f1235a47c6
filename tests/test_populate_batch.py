"""Grouped populate (populate/batch.py): makes of several keys commit together, with the
per-key path's results and guarantees, on every backend."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa.jobs import JobTable, key_hash
from datajoint_sa.populate import batch
from datajoint_sa.populate.batch import GroupRunner

from .conftest import on_backends

KEYS = 12


def _pipeline(schema: dj.Schema, calls: list[int], *, fail_on: frozenset[int] = frozenset(),
              interrupt_on: int | None = None, reads_own: bool = False) -> tuple[Any, Any]:
    @schema
    class Number(dj.Manual):
        definition = """
        n : int32
        ---
        params : <blob>
        """

    @schema
    class Square(dj.Computed):
        definition = """
        -> Number
        ---
        square : int64
        stats : <blob>
        """

        class Digit(dj.Part):
            definition = """
            -> master
            position : int16
            ---
            digit : int16
            weight = null : float64
            """

        def make(self, key: dict[str, Any]) -> None:
            calls.append(key["n"])
            if key["n"] == interrupt_on:
                raise KeyboardInterrupt
            params = (Number & key).fetch1("params")
            value = key["n"] ** 2
            self.insert1(dict(key, square=value, stats=params * 2))
            if reads_own:  # read its own master row back before the parts
                value = int((self & key).fetch1("square"))
            # rows with and without the defaulted attribute: two insert groups per key
            self.Digit.insert([dict(key, position=i, digit=int(d), weight=i / 2 if i else None)
                               for i, d in enumerate(str(value))])
            if key["n"] in fail_on:  # fail after the master row and the parts are inserted
                raise ValueError(f"no square for {key['n']}")

    Number.insert([(n, np.arange(3.0) + n) for n in range(KEYS)])
    return Number, Square


def _contents(Square: Any) -> tuple[list[Any], list[Any]]:
    masters = [(r["n"], r["square"], r["stats"].tolist())
               for r in Square.to_dicts(order_by="n")]
    parts = sorted((r["n"], r["position"], r["digit"], r["weight"])
                   for r in Square.Digit.to_dicts())
    return masters, parts


def _expected_parts(keys: range) -> list[tuple[int, int, int, float | None]]:
    return sorted((n, i, int(d), i / 2 if i else None)
                  for n in keys for i, d in enumerate(str(n * n)))


def test_groups_give_the_per_key_results(make_schema: Any) -> None:
    outcomes = []
    for size in (1, 5):
        calls: list[int] = []
        _, Square = _pipeline(make_schema(), calls)
        result = Square.populate(batch_size=size)
        assert result == {"success_count": KEYS, "error_list": []}
        assert sorted(calls) == list(range(KEYS))  # every make ran once
        outcomes.append(_contents(Square))
    assert outcomes[0] == outcomes[1]
    masters, parts = outcomes[1]
    assert [m[:2] for m in masters] == [(n, n * n) for n in range(KEYS)]
    assert masters[3][2] == [6.0, 8.0, 10.0]
    assert parts == _expected_parts(range(KEYS))


def test_a_failing_make_loses_only_its_key(schema: dj.Schema) -> None:
    calls: list[int] = []
    _, Square = _pipeline(schema, calls, fail_on=frozenset({4, 7}))
    with pytest.raises(ValueError, match="no square for 4"):
        Square.populate(batch_size=6)
    # keys before 4 committed, key 4 left nothing, nothing after it ran
    assert sorted(Square.fetch("n")) == [0, 1, 2, 3] and calls == [0, 1, 2, 3, 4]
    result = Square.populate(batch_size=6, suppress_errors=True)
    assert result["success_count"] == KEYS - 6
    assert sorted(k["n"] for k, _ in result["error_list"]) == [4, 7]
    done = [n for n in range(KEYS) if n not in (4, 7)]
    assert sorted(Square.fetch("n")) == done
    assert _contents(Square)[1] == _expected_parts(done)  # type: ignore[arg-type]


def test_a_colliding_flush_is_replayed_key_by_key(schema: dj.Schema,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys found done only when the group writes (another session inserted them after the
    done check): the group rolls back, every key is written once, the others skipped."""
    calls: list[int] = []
    _, Square = _pipeline(schema, calls)
    Square.populate(keys=[{"n": 2}, {"n": 9}], batch_size=1)
    monkeypatch.setattr(GroupRunner, "_done", lambda self, sa_conn, items: set())
    result = Square.populate(keys=[{"n": n} for n in range(KEYS)], batch_size=KEYS,
                             reserve_jobs=True)
    assert result == {"success_count": KEYS - 2, "error_list": []}
    masters, parts = _contents(Square)
    assert [m[0] for m in masters] == list(range(KEYS))
    assert parts == _expected_parts(range(KEYS))
    assert len(schema.jobs) == 0


# a SQLite group holds the write lock: no other session writes meanwhile
@on_backends("postgresql", "mysql")
def test_a_key_inserted_by_another_session_mid_group(connection: dj.Connection,
                                                     schema: dj.Schema) -> None:
    calls: list[int] = []
    _, Square = _pipeline(schema, calls)
    other = dj.Connection(connection.url)
    try:
        target = Square._sa_table
        square = Square()
        original = square.make

        def make(key: dict[str, Any]) -> None:
            if key["n"] == 0:  # another session finishes key 5 after the group's done check
                with other.session(write=True) as sa_conn:
                    sa_conn.execute(sa.insert(target).values(n=5, square=25, stats=b"x"))
            original(key)

        square.make = make  # type: ignore[method-assign]
        result = square.populate(batch_size=KEYS)
    finally:
        other.close()
    assert result == {"success_count": KEYS - 1, "error_list": []}
    assert sorted(Square.fetch("n")) == list(range(KEYS))
    assert 5 in calls  # made in the group, found done only by the flush
    assert len(Square.Digit & {"n": 5}) == 0  # the other session's key stays as it wrote it


def test_reserved_groups_record_errors_and_skip_taken_keys(
        schema: dj.Schema, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    _, Square = _pipeline(schema, calls, fail_on=frozenset({3}))
    jobs = schema.jobs
    original = vars(JobTable)["reserve_all"]

    def reserve_all(self: Any, table_name: str, keys: Any, hashes: Any) -> bool:
        if any(k["n"] == 8 for k in keys):  # another worker takes key 8 meanwhile
            assert self.reserve(table_name, {"n": 8})
            with self.connection.session(write=True) as sa_conn:
                sa_conn.execute(sa.update(self._sa_table).where(
                    self._sa_table.c.key_hash == key_hash({"n": 8})).values(host="elsewhere"))
        return original(self, table_name, keys, hashes)

    monkeypatch.setattr(JobTable, "reserve_all", reserve_all)
    result = Square.populate(reserve_jobs=True, suppress_errors=True, batch_size=5)
    assert result["success_count"] == KEYS - 2
    assert [k["n"] for k, _ in result["error_list"]] == [3]
    assert 8 not in calls and sorted(Square.fetch("n")) == [
        n for n in range(KEYS) if n not in (3, 8)]
    statuses = {key["n"]: status for key, status in zip(*jobs.fetch("key", "status"))}
    assert statuses == {3: "error", 8: "reserved"}  # only the other worker's reservation
    assert (jobs & {"status": "reserved"}).fetch1("host") == "elsewhere"


def test_a_make_that_reads_its_own_rows_runs_per_key(schema: dj.Schema) -> None:
    calls: list[int] = []
    _, Square = _pipeline(schema, calls, reads_own=True)
    assert Square.populate(batch_size=5)["success_count"] == KEYS
    masters, parts = _contents(Square)
    assert [m[:2] for m in masters] == [(n, n * n) for n in range(KEYS)]
    assert parts == _expected_parts(range(KEYS))
    # the keys stopped at the read ran again per key; after those, per key from the start
    assert sorted(set(calls)) == list(range(KEYS))
    assert len(calls) == KEYS + batch.STICKY_FALLBACKS


def test_writes_the_buffer_cannot_hold_run_per_key(schema: dj.Schema) -> None:
    @schema
    class Item(dj.Manual):
        definition = """
        item : int32
        """

    @schema
    class Log(dj.Manual):
        definition = """
        item : int32
        """

    @schema
    class Copied(dj.Computed):
        definition = """
        -> Item
        """

        def make(self, key: dict[str, Any]) -> None:
            self.insert1(key, skip_duplicates=True)
            Log.insert1(key)

    Item.insert([(i,) for i in range(6)])
    assert Copied.populate(batch_size=3)["success_count"] == 6
    assert sorted(Copied.fetch("item")) == sorted(Log.fetch("item")) == list(range(6))


def test_an_interrupt_mid_group_leaves_no_reservation(schema: dj.Schema) -> None:
    calls: list[int] = []
    _, Square = _pipeline(schema, calls, interrupt_on=5)
    with pytest.raises(KeyboardInterrupt):
        Square.populate(reserve_jobs=True, batch_size=KEYS)
    assert len(schema.jobs) == 0
    assert sorted(Square.fetch("n")) == [0, 1, 2, 3, 4]  # the keys made before it commit
    assert _contents(Square)[1] == _expected_parts(range(5))


def test_batch_size_one_is_the_per_key_path(schema: dj.Schema,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    _, Square = _pipeline(schema, calls)
    with pytest.raises(dj.DataJointError, match="batch_size"):
        Square.populate(batch_size=0)

    def refuse(*_: Any) -> Any:
        raise AssertionError("grouped")

    monkeypatch.setattr(GroupRunner, "run", refuse)
    with dj.config.override(populate__batch_size=1):
        assert Square.populate()["success_count"] == KEYS
    with pytest.raises(AssertionError, match="grouped"):
        Square.populate(batch_size=2, keys=[{"n": 0}, {"n": 1}])



def test_a_composite_key_is_checked_done_per_group(schema: dj.Schema) -> None:
    calls: list[tuple[int, str]] = []

    @schema
    class Trial(dj.Manual):
        definition = """
        subject : int32
        label : varchar(8)
        """

    @schema
    class Score(dj.Computed):
        definition = """
        -> Trial
        ---
        score : float64
        """

        def make(self, key: dict[str, Any]) -> None:
            calls.append((key["subject"], key["label"]))
            self.insert1(dict(key, score=key["subject"] + len(key["label"])))

    Trial.insert([(s, label) for s in range(3) for label in ("a", "bb")])
    Score.populate(keys=[{"subject": 1, "label": "bb"}], batch_size=1)
    everything = [{"subject": s, "label": label} for s in range(3) for label in ("a", "bb")]
    result = Score.populate(keys=everything, batch_size=4)  # (1, "bb") found done, not made
    assert result == {"success_count": 5, "error_list": []}
    assert sorted(calls) == sorted((k["subject"], k["label"]) for k in everything)
    assert {(r["subject"], r["label"]): r["score"] for r in Score.to_dicts()} == {
        (s, label): float(s + len(label)) for s in range(3) for label in ("a", "bb")}


def test_a_raised_error_gives_back_the_rest_of_the_group(schema: dj.Schema) -> None:
    calls: list[int] = []
    _, Square = _pipeline(schema, calls, fail_on=frozenset({4}))
    with pytest.raises(ValueError, match="no square for 4"):
        Square.populate(reserve_jobs=True, batch_size=8)
    assert calls == [0, 1, 2, 3, 4] and sorted(Square.fetch("n")) == [0, 1, 2, 3]
    # the error row of 4 stays; 5..7 were reserved with the group and are given back
    assert [(k["n"], s) for k, s in zip(*schema.jobs.fetch("key", "status"))] == [(4, "error")]
