"""The heartbeat of a process's job reservations.

A reservation names its worker (host, pid) and carries a heartbeat time. While a process
holds reservations, one daemon thread refreshes the heartbeat of all of them, four times per
lease (`jobs.LEASE`), on its own database session; a reservation whose heartbeat is older
than the lease belongs to a worker that died or hangs, and any worker on any host may take
it over (`JobTable.claim`). No shared process table is needed, only roughly synchronized
clocks (NTP): the lease must be much longer than the clock skew between hosts.
"""

from __future__ import annotations

import logging
import os
import threading
from typing import Any

import sqlalchemy as sa

logger = logging.getLogger("datajoint_sa")

_lock = threading.Lock()
_tables: dict[tuple[int, str], Any] = {}  # (engine id, job table key) -> JobTable
_state: dict[str, Any] = {"pid": None, "thread": None, "wake": threading.Event()}


def hold(jobs: Any) -> None:
    """Keep the reservations of this process in `jobs` (a JobTable) alive from now on."""
    with _lock:
        if _state["pid"] != os.getpid():  # a forked child: the parent's thread is not here
            _tables.clear()
            _state.update(pid=os.getpid(), thread=None, wake=threading.Event())
        _tables.setdefault(_key(jobs), jobs)
        thread = _state["thread"]
        if thread is None or not thread.is_alive():
            thread = threading.Thread(target=_run, args=(_state["wake"],),
                                      name="datajoint-sa heartbeat", daemon=True)
            _state["thread"] = thread
            thread.start()


def beat_now() -> int:
    """Refresh every held reservation at once (returns how many rows were refreshed)."""
    with _lock:
        tables = list(_tables.values()) if _state["pid"] == os.getpid() else []
    refreshed = 0
    for jobs in tables:
        try:
            with jobs.connection.engine.connect() as sa_conn, sa_conn.begin():
                count = jobs.beat(sa_conn)
        except sa.exc.DBAPIError as error:  # e.g. SQLite busy: the next beat tries again
            logger.debug("heartbeat of %s failed: %s", jobs._sa_table.key, error)
            if jobs.connection.backend_impl.is_transient(error):
                continue
            count = 0  # e.g. the table is gone
        refreshed += count
        if not count:  # nothing of this process is reserved there any more
            with _lock:
                _tables.pop(_key(jobs), None)
    return refreshed


def release(engine: sa.Engine) -> None:
    """Stop refreshing the reservations held through `engine` (its Connection was closed):
    a later beat would open a session in the engine's new pool that nothing closes."""
    with _lock:
        for key in [k for k in _tables if k[0] == id(engine)]:
            del _tables[key]


def _key(jobs: Any) -> tuple[int, str]:
    return id(jobs.connection.engine), jobs._sa_table.key


def interval() -> float:
    from . import jobs

    return max(0.05, jobs.LEASE / 4)


def _run(wake: threading.Event) -> None:
    while True:
        wake.wait(interval())
        if _state["pid"] != os.getpid():
            return
        try:
            beat_now()
        except Exception as error:  # never let the heartbeat thread die silently
            logger.warning("datajoint-sa heartbeat: %s", error)
