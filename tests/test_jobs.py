"""The job table: reservations, recorded errors, ignored keys, clearing stale reservations."""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import threading
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa.jobs import ERROR_MESSAGE_LENGTH, key_hash


def _pipeline(schema: dj.Schema, calls: list[int], failing: set[int]) -> tuple[Any, Any]:
    @schema
    class Item(dj.Manual):
        definition = """
        item : int32
        """

    @schema
    class Doubled(dj.Computed):
        definition = """
        -> Item
        ---
        doubled : int32
        """

        def make(self, key: dict[str, Any]) -> None:
            calls.append(key["item"])
            if key["item"] in failing:
                raise ValueError(f"item {key['item']} is broken")
            self.insert1(dict(key, doubled=2 * key["item"]))

    Item.insert([(i,) for i in range(6)])
    return Item, Doubled


def _set(jobs: Any, values: dict[str, Any], **where: Any) -> None:
    table = jobs._sa_table
    with jobs.connection.session(write=True) as sa_conn:
        sa_conn.execute(sa.update(table).where(
            *(table.c[k] == v for k, v in where.items())).values(**values))


def test_jobs_table_is_hidden_and_queryable(schema: dj.Schema) -> None:
    _pipeline(schema, [], set())
    jobs = schema.jobs
    assert len(jobs) == 0
    assert "~jobs" not in schema.list_tables()
    assert jobs.primary_key == ["table_name", "key_hash"]
    assert schema.jobs.reserve("__doubled", {"item": 1})
    row = (jobs & {"status": "reserved"}).fetch1()
    assert row["key"] == {"item": 1} and row["key_hash"] == key_hash({"item": 1})
    assert row["host"] == platform.node() and row["pid"] == os.getpid()
    assert row["user"]
    assert abs(row["timestamp"] - dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)) < \
        dt.timedelta(minutes=5)
    assert len(jobs.reserved) == 1 and len(jobs.errors) == 0
    assert jobs.delete() == 1
    assert len(schema.jobs) == 0


def test_a_reservation_is_exclusive(schema: dj.Schema, db_url: str) -> None:
    jobs = schema.jobs
    assert jobs.reserve("__t", {"k": 1})
    assert not jobs.reserve("__t", {"k": 1})
    assert jobs.reserve("__t", {"k": 2})
    other_connection = dj.Connection(db_url)
    try:
        other = dj.Schema(schema.database, connection=other_connection)
        assert not other.jobs.reserve("__t", {"k": 1})  # another session loses too
        assert other.jobs.reserve("__t", {"k": 3})
    finally:
        other_connection.close()
    jobs.complete("__t", {"k": 1})
    assert jobs.reserve("__t", {"k": 1})
    assert len(jobs) == 3


def test_errors_are_recorded_and_skipped_until_deleted(schema: dj.Schema) -> None:
    calls: list[int] = []
    failing = {2, 4}
    _, Doubled = _pipeline(schema, calls, failing)
    result = Doubled.populate(reserve_jobs=True, suppress_errors=True)
    assert result["success_count"] == 4
    assert sorted(k["item"] for k, _ in result["error_list"]) == [2, 4]
    errors = schema.jobs.errors.fetch(as_dict=True, order_by="key_hash")
    assert sorted(e["key"]["item"] for e in errors) == [2, 4]
    for error in errors:
        assert error["table_name"] == "__doubled" and error["status"] == "error"
        assert error["error_message"] == f"ValueError: item {error['key']['item']} is broken"
        assert "Traceback" in error["error_stack"] and "is broken" in error["error_stack"]
        assert error["host"] == platform.node() and error["pid"] == os.getpid()
    # a failed key is skipped by reserving workers until its error row goes
    calls.clear()
    failing.clear()
    assert Doubled.populate(reserve_jobs=True)["success_count"] == 0
    assert calls == []
    (schema.jobs & {"status": "error"} & 'error_message LIKE "%2 is broken"').delete()
    assert Doubled.populate(reserve_jobs=True)["success_count"] == 1
    assert calls == [2]
    assert len(schema.jobs) == 1
    # without reservations the job table is not consulted
    assert Doubled.populate()["success_count"] == 1
    assert sorted(Doubled.fetch("item")) == list(range(6))


def test_an_error_without_suppress_is_recorded_and_raised(schema: dj.Schema) -> None:
    _, Doubled = _pipeline(schema, [], {3})
    with pytest.raises(ValueError, match="item 3"):
        Doubled.populate(reserve_jobs=True)
    assert (schema.jobs & {"status": "error"}).fetch1("key") == {"item": 3}
    assert sorted(Doubled.fetch("item")) == [0, 1, 2]


def test_long_error_messages_are_cut(schema: dj.Schema) -> None:
    jobs = schema.jobs
    jobs.error("__t", {"k": 1}, "x" * 5000, "stack")
    message = jobs.fetch1("error_message")
    assert len(message) == ERROR_MESSAGE_LENGTH and message.endswith("...truncated")


def test_ignored_keys_are_skipped(schema: dj.Schema) -> None:
    calls: list[int] = []
    _, Doubled = _pipeline(schema, calls, set())
    schema.jobs.ignore(Doubled.table_name, {"item": 5})
    assert Doubled.populate(reserve_jobs=True)["success_count"] == 5
    assert 5 not in calls
    assert (schema.jobs & {"status": "ignore"}).fetch1("key") == {"item": 5}


def test_keys_reserved_elsewhere_are_skipped(schema: dj.Schema) -> None:
    calls: list[int] = []
    _, Doubled = _pipeline(schema, calls, set())
    schema.jobs.reserve(Doubled.table_name, {"item": 1})
    assert Doubled.populate(reserve_jobs=True)["success_count"] == 5
    assert 1 not in calls


def test_a_key_done_meanwhile_is_not_made_again(schema: dj.Schema) -> None:
    """The key list is read before the reservations: a key finished by another worker in
    between is reserved, found done inside the transaction, and released."""
    calls: list[int] = []
    _, Doubled = _pipeline(schema, calls, set())
    Doubled.insert1({"item": 1, "doubled": 2}, allow_direct_insert=True)
    result = Doubled.populate(keys=[{"item": 1}, {"item": 2}], reserve_jobs=True)
    assert result["success_count"] == 1 and calls == [2]
    assert len(schema.jobs) == 0


def test_an_interrupted_make_frees_its_reservation(schema: dj.Schema) -> None:
    @schema
    class Item(dj.Manual):
        definition = """
        item : int32
        """

    @schema
    class Stopped(dj.Computed):
        definition = """
        -> Item
        """

        def make(self, key: dict[str, Any]) -> None:
            self.insert1(key)
            raise KeyboardInterrupt

    Item.insert1((1,))
    with pytest.raises(KeyboardInterrupt):
        Stopped.populate(reserve_jobs=True)
    assert len(Stopped) == 0 and len(schema.jobs) == 0


def _dead_pid() -> int:
    process = subprocess.Popen([sys.executable, "-c", "pass"])
    process.wait()
    return process.pid


def test_clear_stale_by_process_and_age(schema: dj.Schema) -> None:
    jobs = schema.jobs
    for k in range(4):
        assert jobs.reserve("__t", {"k": k})
    _set(jobs, {"pid": _dead_pid()}, key_hash=key_hash({"k": 0}))  # died on this host
    _set(jobs, {"pid": _dead_pid(), "host": "elsewhere"}, key_hash=key_hash({"k": 1}))
    old = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) - dt.timedelta(hours=3)
    _set(jobs, {"timestamp": old, "host": "elsewhere"}, key_hash=key_hash({"k": 2}))
    jobs.error("__t", {"k": 9}, "failed")  # errors are not reservations: they stay
    _set(jobs, {"pid": _dead_pid()}, key_hash=key_hash({"k": 9}))
    assert jobs.clear_stale(sessions=False) == 1  # k=0; k=3 is ours and alive
    assert jobs.clear_stale(max_age=dt.timedelta(hours=1), sessions=False) == 1  # k=2
    assert jobs.clear_stale(7200, sessions=False) == 0
    remaining = sorted(k["k"] for k in jobs.fetch("key"))
    assert remaining == [1, 3, 9]
    assert jobs.clear_stale(0, sessions=False) == 2  # an age limit of zero clears them all
    assert jobs.fetch1("status") == "error"


def test_clear_stale_by_closed_session(schema: dj.Schema, backend: str) -> None:
    """On PostgreSQL and MySQL a reservation whose database session is closed is stale,
    whichever host made it; SQLite has no sessions to ask about."""
    jobs = schema.jobs
    assert jobs.reserve("__t", {"k": 1})
    assert jobs.reserve("__t", {"k": 2})
    _set(jobs, {"host": "elsewhere", "connection_id": 2**31 - 7}, key_hash=key_hash({"k": 1}))
    assert jobs.clear_stale(sessions=False) == 0
    expected = 0 if backend == "sqlite" else 1
    assert jobs.clear_stale() == expected
    assert len(jobs) == 2 - expected
    assert jobs.clear_stale() == 0  # our own live session keeps k=2


def test_keys_whose_values_concatenate_alike_have_their_own_jobs(schema: dj.Schema) -> None:
    """(1, 23) and (12, 3) once shared a hash (values concatenated as strings): an error
    on one kept the other from ever being computed."""
    @schema
    class Pair(dj.Manual):
        definition = """
        a : int32
        b : int32
        """

    @schema
    class Summed(dj.Computed):
        definition = """
        -> Pair
        ---
        total : int32
        """

        def make(self, key: dict[str, Any]) -> None:
            if (key["a"], key["b"]) == (1, 23):
                raise ValueError("broken pair")
            self.insert1(dict(key, total=key["a"] + key["b"]))

    Pair.insert([(1, 23), (12, 3), (123, 0)])
    assert len({key_hash(k) for k in Pair.fetch("KEY")}) == 3
    assert key_hash({"a": 1, "b": 23}) != key_hash({"a": 12, "b": 3})
    assert key_hash({"x": "1", "y": "23"}) != key_hash({"x": "12", "y": "3"})
    assert key_hash({"x": 1}) != key_hash({"x": "1"})  # typed: the int is not the string
    assert key_hash({"x": 1}) == key_hash({"x": 1.0}) == key_hash({"x": np.int64(1)})
    result = Summed.populate(reserve_jobs=True, suppress_errors=True)
    assert result["success_count"] == 2 and len(result["error_list"]) == 1
    assert sorted(Summed.fetch("a")) == [12, 123]
    assert schema.jobs.errors.fetch1("key") == {"a": 1, "b": 23}
    again = Summed.populate(reserve_jobs=True, suppress_errors=True)  # the error row stays
    assert again["success_count"] == 0 and again["error_list"] == []


def test_a_job_row_of_another_key_under_the_same_hash_is_not_this_keys(
        schema: dj.Schema) -> None:
    """The stored key is checked when a job row exists: a row written under a key's hash
    for another key (an older writer's hash) neither blocks the key nor is overwritten."""
    calls: list[int] = []
    _, Doubled = _pipeline(schema, calls, set())
    jobs = schema.jobs
    jobs.error(Doubled.table_name, {"item": 99}, "someone else's error")
    _set(jobs, {"key_hash": key_hash({"item": 3})}, key_hash=key_hash({"item": 99}))
    with pytest.raises(dj.DataJointError, match="holds for another key"):
        jobs.reserve(Doubled.table_name, {"item": 3})
    result = Doubled.populate(reserve_jobs=True, suppress_errors=True)
    assert result["success_count"] == 5  # every key but the one whose hash is occupied
    assert len(result["error_list"]) == 1
    assert "holds for another key" in str(result["error_list"][0][1])
    assert jobs.fetch1("key") == {"item": 99}  # the other key's row is untouched


def _ended(dbapi_connection: Any) -> bool:
    """Whether a driver connection is closed (every driver refuses a query on one)."""
    try:
        cursor = dbapi_connection.cursor()
        cursor.execute("SELECT 1")
        cursor.fetchall()
    except Exception:
        return True
    return False


def test_close_ends_every_session_of_the_connection(schema: dj.Schema, db_url: str) -> None:
    """close() ends on the spot each session the connection opened: this thread's, another
    thread's that is still alive, and the job table's bookkeeping session (those two went
    back to the pool close() had just disposed, where only the garbage collector ended them:
    a server session held meanwhile by a long-running worker or web app)."""
    connection = dj.Connection(db_url)
    opened: list[Any] = []
    sa.event.listen(connection.engine, "connect", lambda dbapi, record: opened.append(dbapi))
    other = dj.Schema(schema.database, connection=connection)
    assert other.jobs.reserve("__t", {"k": 1})  # the bookkeeping session
    used, done = threading.Event(), threading.Event()

    def in_a_thread() -> None:
        with connection.session(write=False) as sa_conn:
            sa_conn.exec_driver_sql("SELECT 1").all()
        used.set()
        done.wait(60)

    thread = threading.Thread(target=in_a_thread)
    thread.start()
    try:
        assert used.wait(60)
        with connection.session(write=False) as sa_conn:
            sa_conn.exec_driver_sql("SELECT 1").all()
        assert len(opened) >= 3
        connection.close()
        assert [_ended(c) for c in opened] == [True] * len(opened)
    finally:
        done.set()
        thread.join()
        connection.close()
