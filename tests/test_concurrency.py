"""Several processes populating one table: each key once, no partial rows after a kill.

Every test runs on each backend (SQLite with a file database shared by the processes). The
workers log each make call to a file, outside the database, so that a make that ran twice
would show even if its second transaction had been rolled back.
"""

from __future__ import annotations

import collections
import concurrent.futures as cf
import gc
import multiprocessing
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import datajoint_sa as dj

from .conftest import BACKENDS, POSTGRES_URL, unique_name

MAKE_LOG = "DJ_TEST_MAKE_LOG"
fork = multiprocessing.get_context("fork")


def log_make(key: dict[str, Any]) -> None:
    with open(os.environ[MAKE_LOG], "a") as log:
        log.write(f"{key['item']} {os.getpid()}\n")


def made(log: Path) -> collections.Counter[int]:
    if not log.exists():
        return collections.Counter()
    return collections.Counter(int(line.split()[0]) for line in log.read_text().splitlines())


# Module-level tables for executors whose workers import the classes by module path: each
# test declares them in its own schema; a worker process activates `spawned` by name.
spawned = dj.Schema()


@spawned
class SpawnItem(dj.Manual):
    definition = """
    item : int32
    """


@spawned
class SpawnSquare(dj.Computed):
    definition = """
    -> SpawnItem
    ---
    square : int64
    worker : int32
    """

    def make(self, key: dict[str, Any]) -> None:
        log_make(key)
        time.sleep(0.005)
        self.insert1(dict(key, square=key["item"] ** 2, worker=os.getpid()))


def _declare_spawned(schema: dj.Schema, keys: int) -> None:
    schema(SpawnItem)
    schema(SpawnSquare)
    SpawnItem.insert([(i,) for i in range(keys)])


def _squares(schema: dj.Schema, keys: int, *, pause: float = 0.002) -> tuple[Any, Any]:
    @schema
    class Item(dj.Manual):
        definition = """
        item : int32
        """

    @schema
    class Square(dj.Computed):
        definition = """
        -> Item
        ---
        square : int64
        worker : int32
        """

        class Detail(dj.Part):
            definition = """
            -> master
            detail : int16
            """

        def make(self, key: dict[str, Any]) -> None:
            log_make(key)
            self.insert1(dict(key, square=key["item"] ** 2, worker=os.getpid()))
            self.Detail.insert(dict(key, detail=d) for d in range(3))
            marker = os.environ.get("DJ_TEST_STALL")
            if marker and not os.path.exists(marker):  # the first make stalls once
                Path(marker).write_text(str(os.getpid()))
                time.sleep(120)
            time.sleep(pause)

    Item.insert([(i,) for i in range(keys)])
    return Item, Square


def _worker(table: Any, barrier: Any, results: Any) -> None:
    barrier.wait()
    try:
        result = table.populate(reserve_jobs=True, suppress_errors=True)
        results.put((os.getpid(), result["success_count"],
                     [str(e) for _, e in result["error_list"]]))
    except BaseException as error:  # report, do not hang the parent
        results.put((os.getpid(), -1, [repr(error)]))


def test_four_workers_compute_each_key_once(schema: dj.Schema, connection: dj.Connection,
                                            tmp_path: Path, monkeypatch: Any) -> None:
    keys = 40
    log = tmp_path / "make.log"
    monkeypatch.setenv(MAKE_LOG, str(log))
    _, Square = _squares(schema, keys, pause=0.01)
    connection.close()  # the children must not inherit a live socket
    barrier = fork.Barrier(4)
    results = fork.Queue()
    workers = [fork.Process(target=_worker, args=(Square, barrier, results)) for _ in range(4)]
    for worker in workers:
        worker.start()
    reports = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
        assert worker.exitcode == 0
    assert all(errors == [] for _, _, errors in reports), reports
    assert sum(count for _, count, _ in reports) == keys
    counts = made(log)
    assert sorted(counts) == list(range(keys)) and set(counts.values()) == {1}
    assert len(Square) == keys and len(Square.Detail) == 3 * keys
    assert len(schema.jobs) == 0
    busy = set(Square.fetch("worker"))
    # only the workers did the work; how they shared it depends on scheduling, not on the job
    # table (a loaded machine may let one worker take every key), so it is not asserted
    assert busy <= {w.pid for w in workers} and len(busy) >= 1


@pytest.mark.parametrize("reserve_jobs", [True, False])
def test_populate_with_worker_processes(schema: dj.Schema, tmp_path: Path, monkeypatch: Any,
                                        reserve_jobs: bool) -> None:
    keys = 30
    log = tmp_path / "make.log"
    monkeypatch.setenv(MAKE_LOG, str(log))
    _, Square = _squares(schema, keys)
    result = Square.populate(processes=3, reserve_jobs=reserve_jobs, display_progress=False)
    assert result == {"success_count": keys, "error_list": []}
    counts = made(log)
    assert sorted(counts) == list(range(keys)) and set(counts.values()) == {1}
    assert len(Square.Detail) == 3 * keys
    workers = set(Square.fetch("worker"))
    assert os.getpid() not in workers and 1 <= len(workers) <= 3
    assert Square.populate(processes=3)["success_count"] == 0


def test_worker_errors_come_back(schema: dj.Schema, tmp_path: Path, monkeypatch: Any) -> None:
    monkeypatch.setenv(MAKE_LOG, str(tmp_path / "make.log"))
    _, Square = _squares(schema, 6)

    @schema
    class Fragile(dj.Computed):
        definition = """
        -> Square
        """

        def make(self, key: dict[str, Any]) -> None:
            if key["item"] == 4:
                raise ValueError("four is fragile")
            self.insert1(key)

    Square.populate()
    result = Fragile.populate(processes=2, suppress_errors=True, reserve_jobs=True)
    assert result["success_count"] == 5
    ((key, message),) = result["error_list"]
    assert key == {"item": 4} and message == "ValueError: four is fragile"
    assert (schema.jobs & {"status": "error"}).fetch1("key") == {"item": 4}
    (schema.jobs & {"status": "error"}).delete()
    with pytest.raises(ValueError, match="four is fragile"):
        Fragile.populate(processes=2)


def test_a_killed_worker_leaves_no_rows_and_its_reservation_is_cleared(
        schema: dj.Schema, connection: dj.Connection, tmp_path: Path, monkeypatch: Any) -> None:
    keys = 3
    stall = tmp_path / "stalled"
    monkeypatch.setenv(MAKE_LOG, str(tmp_path / "make.log"))
    monkeypatch.setenv("DJ_TEST_STALL", str(stall))
    _, Square = _squares(schema, keys)
    connection.close()
    # key by key: a grouped populate reserves its whole group (all three keys) at once
    child = fork.Process(target=Square.populate, kwargs={"reserve_jobs": True,
                                                         "batch_size": 1})
    child.start()
    deadline = time.monotonic() + 60
    while not stall.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert stall.exists(), "the worker never reached its make"
    # the marker is written after the master row and its parts: the transaction is open now
    os.kill(child.pid, signal.SIGKILL)
    child.join(timeout=30)
    assert child.exitcode == -signal.SIGKILL
    assert len(Square) == 0 and len(Square.Detail) == 0
    reserved = (schema.jobs & {"status": "reserved"}).fetch(as_dict=True)
    assert [(r["key"], r["pid"]) for r in reserved] == [({"item": 0}, child.pid)]
    assert Square.populate(reserve_jobs=True)["success_count"] == keys - 1  # 0 is taken
    assert schema.jobs.clear_stale() == 1
    assert len(schema.jobs) == 0
    assert Square.populate(reserve_jobs=True)["success_count"] == 1
    assert len(Square) == keys and len(Square.Detail) == 3 * keys


def test_spawned_worker_processes_through_an_executor(schema: dj.Schema, tmp_path: Path,
                                                       monkeypatch: Any) -> None:
    keys = 20
    log = tmp_path / "make.log"
    monkeypatch.setenv(MAKE_LOG, str(log))
    _declare_spawned(schema, keys)
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(max_workers=2, mp_context=context) as executor:
        result = SpawnSquare.populate(executor=executor, reserve_jobs=True)
    assert result == {"success_count": keys, "error_list": []}
    counts = made(log)
    assert sorted(counts) == list(range(keys)) and set(counts.values()) == {1}
    workers = set(SpawnSquare.fetch("worker"))
    assert os.getpid() not in workers and 1 <= len(workers) <= 2
    assert len(schema.jobs) == 0


def test_threads_take_locally_defined_classes(schema: dj.Schema, tmp_path: Path,
                                              monkeypatch: Any) -> None:
    """Threads share this process's memory: a class defined in a function needs no
    pickling (each thread has its own database sessions). Other processes import classes
    by module path, so a spawned pool refuses a local class with a clear error."""
    log = tmp_path / "make.log"
    monkeypatch.setenv(MAKE_LOG, str(log))
    Item, Square = _squares(schema, 12, pause=0)
    with cf.ThreadPoolExecutor(3) as executor:
        result = Square.populate(executor=executor, reserve_jobs=True)
    assert result == {"success_count": 12, "error_list": []}
    assert sorted(made(log)) == list(range(12)) and set(made(log).values()) == {1}
    assert len(Square.Detail) == 36 and len(schema.jobs) == 0
    Item.insert1((12,))
    context = multiprocessing.get_context("spawn")
    with cf.ProcessPoolExecutor(1, mp_context=context) as executor, pytest.raises(
            dj.DataJointError, match="module level"):
        Square.populate(executor=executor)


@pytest.mark.skipif("postgresql" not in BACKENDS, reason="PostgreSQL is not among the backends")
def test_dask_cluster_postgresql(tmp_path: Path, monkeypatch: Any) -> None:
    """An existing Dask cluster runs the make calls; the job table keeps them exclusive."""
    distributed = pytest.importorskip("dask.distributed")
    keys = 30
    log = tmp_path / "make.log"
    monkeypatch.setenv(MAKE_LOG, str(log))
    connection = dj.Connection(POSTGRES_URL)
    schema = dj.Schema(unique_name(), connection=connection)
    try:
        _declare_spawned(schema, keys)
        with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, \
                distributed.Client(cluster) as client:
            result = SpawnSquare.populate(executor=client.get_executor(), reserve_jobs=True)
        assert result == {"success_count": keys, "error_list": []}
        counts = made(log)
        assert sorted(counts) == list(range(keys)) and set(counts.values()) == {1}
        workers = set(SpawnSquare.fetch("worker"))
        assert os.getpid() not in workers and 1 <= len(workers) <= 2
        assert len(schema.jobs) == 0
    finally:
        schema.drop(force=True)
        connection.close()


def _use_inherited(connection: dj.Connection) -> None:
    with connection.session(write=False) as sa_conn:
        sa_conn.exec_driver_sql("SELECT 1").all()
    gc.collect()  # what the child dropped is finalized now, not at os._exit


def test_a_forked_child_leaves_its_parents_session_alone(connection: dj.Connection,
                                                          tmp_path: Path) -> None:
    """A forked child that uses a connection its parent has open opens a session of its own
    and never resets the parent's: SQLAlchemy's pool resets a collected session with a
    ROLLBACK, sent on the parent's socket; two children doing so at once can read each
    other's replies, and one waits forever."""
    parent, touched = os.getpid(), tmp_path / "touched"
    _use_inherited(connection)  # the session is the connection's alone (no local holds it)
    parents = connection.sa.connection.dbapi_connection

    def on_reset(dbapi_connection: Any, *args: Any) -> None:
        if os.getpid() != parent and dbapi_connection is parents:
            touched.touch()

    sa.event.listen(connection.engine, "reset", on_reset)
    children = [fork.Process(target=_use_inherited, args=(connection,)) for _ in range(2)]
    try:
        for child in children:
            child.start()
        for child in children:
            child.join(60)
        assert [child.exitcode for child in children] == [0, 0]
        assert not touched.exists(), "a child reset its parent's session"
    except BaseException:
        # the socket may hold a reply meant for a child: a read on it could wait forever
        connection.sa.invalidate()
        raise
    finally:
        for child in children:
            child.kill()
    with connection.session(write=False) as sa_conn:  # the parent's session still works
        assert sa_conn.exec_driver_sql("SELECT 1").scalar() == 1
