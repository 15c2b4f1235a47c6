"""Scale-out: key-level scheduling, long-lived workers with heartbeats and leases, priorities,
retries, the jobs command line, and a Dask cluster."""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import datajoint_sa as dj
from datajoint_sa import cli

from . import scale_pipeline
from .conftest import BACKENDS, POSTGRES_URL, unique_name

ROOT = Path(__file__).resolve().parents[1]


def _chain(schema: dj.Schema, log: list[tuple[str, int]], *, failing: set[int] = frozenset(),
           ) -> tuple[Any, Any, Any]:
    @schema
    class Item(dj.Manual):
        definition = """
        item : int32
        """

    @schema
    class First(dj.Computed):
        definition = """
        -> Item
        ---
        value : int32
        """

        def make(self, key: dict[str, Any]) -> None:
            log.append(("First", key["item"]))
            if key["item"] in failing:
                raise ValueError(f"item {key['item']} is broken")
            self.insert1(dict(key, value=key["item"]))

    @schema
    class Second(dj.Computed):
        definition = """
        -> First
        ---
        value : int32
        """

        def make(self, key: dict[str, Any]) -> None:
            log.append(("Second", key["item"]))
            self.insert1(dict(key, value=(First & key).fetch1("value") + 1))

    Item.insert([(i,) for i in range(6)])
    return Item, First, Second


def test_key_level_order_on_threads_with_local_classes(schema: dj.Schema) -> None:
    """A key of the downstream table starts while a slow upstream key still runs (no
    barrier between tables), and never before its own upstream row is committed. The
    classes are defined in this function: threads need no pickling."""
    downstream_started = threading.Event()
    seen: dict[str, Any] = {}

    @schema
    class Item(dj.Manual):
        definition = """
        item : int32
        """

    @schema
    class Slow(dj.Computed):
        definition = """
        -> Item
        ---
        value : int32
        """

        def make_fetch(self, key: dict[str, Any]) -> tuple[int]:
            return (key["item"],)

        def make_compute(self, key: dict[str, Any], item: int) -> tuple[int]:
            if item == 0:  # outside any transaction: wait for a downstream key to start
                seen["overlap"] = downstream_started.wait(60)
            return (item * 10,)

        def make_insert(self, key: dict[str, Any], value: int) -> None:
            self.insert1(dict(key, value=value))

    @schema
    class Next(dj.Computed):
        definition = """
        -> Slow
        ---
        value : int32
        """

        def make(self, key: dict[str, Any]) -> None:
            # this make's own session sees its upstream row: it was committed before
            seen.setdefault("upstream_rows", []).append(len(Slow & key))
            downstream_started.set()
            self.insert1(dict(key, value=(Slow & key).fetch1("value") + 1))

    Item.insert([(i,) for i in range(5)])
    with cf.ThreadPoolExecutor(2) as executor:
        result = dj.populate(Slow, executor=executor, reserve_jobs=True)
    assert seen["overlap"] is True  # Next started before Slow's key 0 had finished
    assert seen["upstream_rows"] == [1] * 5
    assert result["success_count"] == 10 and result["error_list"] == []
    assert sorted(Next.fetch("value")) == [1, 11, 21, 31, 41]
    assert len(schema.jobs) == 0


def test_errors_stop_only_downstream_keys_and_priorities_order_keys(
        schema: dj.Schema, caplog: pytest.LogCaptureFixture) -> None:
    log: list[tuple[str, int]] = []
    Item, First, Second = _chain(schema, log, failing={2})
    # lower runs first; key by key, a key's downstream make follows it at once
    result = dj.populate(First, reserve_jobs=True, suppress_errors=True,
                         priority=lambda key: -key["item"])
    assert log == [(t, i) for i in (5, 4, 3, 2, 1, 0) for t in ("First", "Second")
                   if (t, i) != ("Second", 2)]
    assert result["success_count"] == 10 and len(result["error_list"]) == 1
    assert result["error_list"][0][0] == {"item": 2}
    assert sorted(Second.fetch("item")) == [0, 1, 3, 4, 5]
    jobs = schema.jobs.fetch(as_dict=True)
    assert [(j["status"], j["key"]) for j in jobs] == [("error", {"item": 2})]
    # nothing left but the failed key: the populate says so and names the clearing command
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="datajoint_sa"):
        again = dj.populate(First, reserve_jobs=True, suppress_errors=True)
    assert again["success_count"] == 0
    assert "every remaining key has an error" in caplog.text
    assert f"datajoint-sa jobs clear {schema.database} --table First --status error" in \
        caplog.text
    # per table: the downstream table first wherever it has work
    log.clear()
    Item.insert([(6,), (7,)])
    dj.populate(First, priority={Second: 1, First: 9}, reserve_jobs=True, suppress_errors=True)
    assert log == [("First", 6), ("Second", 6), ("First", 7), ("Second", 7)]
    # without suppress_errors the first error is raised once the other keys are done
    (schema.jobs & {"status": "error"}).delete()
    Item.insert([(8,)])
    log.clear()
    with pytest.raises(ValueError, match="item 2 is broken"):
        dj.populate(Item)
    assert ("Second", 8) in log


def test_retryable_errors_are_tried_again_with_backoff(schema: dj.Schema) -> None:
    calls: dict[int, int] = {}

    @schema
    class Item(dj.Manual):
        definition = """
        item : int32
        """

    @schema
    class Flaky(dj.Computed):
        definition = """
        -> Item
        """
        retry_on = (TimeoutError,)
        max_retries = 2
        retry_backoff = 0.01

        def make(self, key: dict[str, Any]) -> None:
            item = key["item"]
            calls[item] = calls.get(item, 0) + 1
            if item == 1 and calls[item] <= 2:
                raise TimeoutError("the instrument is busy")
            if item == 2:
                raise TimeoutError("the instrument is gone")
            if item == 3:
                raise ValueError("not retryable")
            self.insert1(key)

    Item.insert([(i,) for i in range(4)])
    result = Flaky.populate(reserve_jobs=True, suppress_errors=True)
    assert result["success_count"] == 2
    assert calls == {0: 1, 1: 3, 2: 3, 3: 1}
    errors = {e["key"]["item"]: e for e in schema.jobs.errors.fetch(as_dict=True)}
    assert sorted(errors) == [2, 3]
    assert errors[2]["attempts"] == 3 and "gone" in errors[2]["error_message"]
    assert errors[3]["attempts"] == 1
    # populate's options override the class's
    (schema.jobs & {"status": "error"}).delete()
    calls.clear()
    Flaky.populate(reserve_jobs=True, suppress_errors=True, retry_on=(ValueError,),
                   max_retries=1)
    assert calls == {2: 1, 3: 2}


# ------------------------------------------------------------------ long-lived workers

def _declare(schema: dj.Schema, sources: int) -> None:
    for table in scale_pipeline.TABLES:
        schema(table)
    scale_pipeline.Source.insert([(i,) for i in range(sources)])


def _worker(db_url: str, schema: dj.Schema, tmp_path: Path, *args: str,
            env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    environment = {**os.environ, "DJ_SCALE_SCHEMA": schema.database, "DJ_SCALE_URL": db_url,
                   "DJ_SCALE_MARK": str(tmp_path), **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.Popen(
        [sys.executable, "-m", "datajoint_sa.cli", "worker", "tests.scale_pipeline",
         "--url", db_url, "--poll", "0.1", *args],
        cwd=ROOT, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait_for(condition: Callable[[], bool], what: str, process: Any = None,
              timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if process is not None and process.poll() is not None:
            raise AssertionError(f"the worker exited before {what}: {process.stderr.read()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _job(schema: dj.Schema, table: str, source: int) -> dict[str, Any] | None:
    rows = [r for r in schema.jobs.fetch(as_dict=True)
            if r["table_name"] == table and r["key"] == {"source": source}]
    return rows[0] if rows else None


def test_workers_stop_cleanly_and_a_killed_worker_is_taken_over(
        schema: dj.Schema, db_url: str, tmp_path: Path) -> None:
    """SIGTERM abandons the running make (rolled back, its key back in the queue) and the
    worker exits 0; a worker killed with SIGKILL leaves a reservation that another worker
    takes over once its heartbeat is older than the lease, without anyone clearing it."""
    _declare(schema, 4)
    stage1 = scale_pipeline.Stage1.table_name
    blocked = {"DJ_SCALE_BLOCK": "Stage1:2"}
    marks = lambda: sorted(p.name.rsplit("-", 1)[0] for p in tmp_path.iterdir())  # noqa: E731

    with _worker(db_url, schema, tmp_path, "--max-idle", "60", env=blocked) as first:
        try:
            _wait_for(lambda: "Stage1-2" in marks(), "the blocking make", first)
            os.kill(first.pid, signal.SIGTERM)
            out, err = first.communicate(timeout=60)  # reads both pipes: none fills up
        finally:
            first.kill()
    assert first.returncode == 0, err
    assert "stopped: SIGTERM" in out
    assert len(scale_pipeline.Stage1 & {"source": 2}) == 0  # rolled back
    assert _job(schema, stage1, 2)["status"] == "pending"  # type: ignore[index]

    for mark in tmp_path.iterdir():
        mark.unlink()
    with _worker(db_url, schema, tmp_path, "--lease", "1", "--max-idle", "60",
                 env=blocked) as second:
        try:
            _wait_for(lambda: "Stage1-2" in marks(), "the blocking make", second)
            os.kill(second.pid, signal.SIGKILL)
            second.wait(60)
        finally:
            second.kill()
    job = _job(schema, stage1, 2)
    assert job is not None and job["status"] == "reserved" and job["pid"] == second.pid

    with _worker(db_url, schema, tmp_path, "--lease", "1", "--max-idle", "3") as third:
        try:
            out, err = third.communicate(timeout=120)
        finally:
            third.kill()
    assert third.returncode == 0, err
    assert sorted(scale_pipeline.Stage3.fetch("value")) == [2, 12, 22, 32]
    assert len(schema.jobs) == 0
    assert "Stage1-2" in marks()  # the third worker made it


def test_worker_processes_share_the_queue(schema: dj.Schema, db_url: str,
                                          tmp_path: Path) -> None:
    _declare(schema, 6)
    with _worker(db_url, schema, tmp_path, "--processes", "2", "--max-idle", "2") as worker:
        try:
            out, err = worker.communicate(timeout=120)
        finally:
            worker.kill()
    assert worker.returncode == 0, err
    assert "worker: made 18 keys" in out
    made = [p.name.rsplit("-", 1)[0] for p in tmp_path.iterdir()]
    assert len(made) == len(set(made)) == 18  # each make exactly once
    assert len(scale_pipeline.Stage3) == 6 and len(schema.jobs) == 0


# ------------------------------------------------------------------ the jobs command line

def test_jobs_command_lists_clears_and_counts(schema: dj.Schema, db_url: str,
                                              capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(dj.config, "database.url", dj.config["database.url"])
    monkeypatch.setenv("DJ_SCALE_FAIL", "Stage2:1")
    _declare(schema, 3)
    result = dj.populate(scale_pipeline.Stage1, reserve_jobs=True, suppress_errors=True)
    assert result["success_count"] == 7, result["error_list"]
    name = schema.database

    def run(*args: str) -> str:
        capsys.readouterr()
        assert cli.main([*args, "--url", db_url]) == 0
        return capsys.readouterr().out

    out = run("jobs", "progress", name)
    rows = {line.split()[0]: line.split()[1:] for line in out.splitlines()[2:]}
    # done, to do, queued, reserved, errors, ignored, total
    assert rows["Stage1"] == ["3", "0", "0", "0", "0", "0", "3"]
    assert rows["Stage2"] == ["2", "0", "0", "0", "1", "0", "3"]
    assert rows["Stage3"] == ["2", "0", "0", "0", "0", "0", "2"]
    out = run("jobs", name, "--status", "error")
    assert "Stage2 refuses source 1" in out and "1 job(s)" in out
    assert "0 job(s)" in run("jobs", "list", name, "--table", "Stage1")
    assert "cleared 1 job(s) (error)" in run("jobs", "clear", name, "--table", "Stage2")
    monkeypatch.delenv("DJ_SCALE_FAIL")
    assert dj.populate(scale_pipeline.Stage2, reserve_jobs=True)["success_count"] == 2
    out = run("jobs", "progress", name, "--table", "Stage3")
    assert out.splitlines()[2].split() == ["Stage3", "3", "0", "0", "0", "0", "0", "3"]
    # stale reservations: cleared by `clear --status stale`, a live one is kept
    jobs = schema.jobs
    assert jobs.reserve("__stage9", {"source": 1})
    assert "cleared 0 job(s) (stale)" in run("jobs", "clear", name, "--status", "stale")
    old = jobs._sa_table
    with jobs.connection.session(write=True) as sa_conn:
        import datetime as dt

        import sqlalchemy as sa
        sa_conn.execute(sa.update(old).values(heartbeat=dt.datetime(2000, 1, 1), pid=0))
    assert "cleared 1 job(s) (stale)" in run("jobs", "clear", name, "--status", "stale")


# ------------------------------------------------------------------ Dask

@pytest.mark.skipif("postgresql" not in BACKENDS, reason="PostgreSQL is not among the backends")
def test_dask_local_cluster_runs_a_pipeline_key_by_key(tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """The recipe of docs/scale-out.md with a LocalCluster standing in for a SLURMCluster
    (dask-jobqueue clusters are scaled the same way): a 3-table pipeline on PostgreSQL."""
    distributed = pytest.importorskip("dask.distributed")
    monkeypatch.setenv("DJ_SCALE_MARK", str(tmp_path))
    connection = dj.Connection(POSTGRES_URL)
    schema = dj.Schema(unique_name(), connection=connection)
    try:
        _declare(schema, 5)
        with distributed.LocalCluster(n_workers=0, threads_per_worker=2, processes=True,
                                      dashboard_address=None) as cluster:
            cluster.scale(2)  # as with SLURMCluster(...).scale(jobs=2)
            with distributed.Client(cluster) as client:
                client.wait_for_workers(2, timeout=120)
                with distributed.get_task_stream(client) as tasks:
                    result = dj.populate(schema, client=client, reserve_jobs=True)
        assert result["success_count"] == 15 and result["error_list"] == []
        assert sorted(scale_pipeline.Stage3.fetch("value")) == [2, 12, 22, 32, 42]
        names = {str(t["key"]) for t in tasks.data}
        assert any(n.startswith("Stage2-source=3-") for n in names), names
        made = [p.name for p in tmp_path.iterdir()]
        assert len(made) == 15 and str(os.getpid()) not in {m.rsplit("-", 1)[1] for m in made}
        assert len(schema.jobs) == 0
    finally:
        schema.drop(force=True)
        connection.close()
