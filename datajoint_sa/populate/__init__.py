"""Populate: Imported and Computed tables compute their rows, key by key.

One `populate` call asks the database once for the keys to do (the key source minus what
the table already holds, one query), then runs `make` for each key in its own transaction
together with the job bookkeeping: a key's results and parts commit completely or not at
all. `dj.populate` schedules a whole pipeline key by key.

The rooms of this package, each with one job:

- `mixin`: AutoPopulate, the mixin of Imported/Computed tables (`populate`, `progress`);
- `keysource`: the key source and the one query for the keys still to do;
- `make`: one key at a time: reservation, the make's transaction, retries, bookkeeping;
- `workers`: table references that travel to other processes, tasks, the process pool;
- `targets`: what `dj.populate` starts from, and the classes of the graph's nodes;
- `scheduling`: the key-level pipeline scheduler (`dj.populate`);
- `worker`: long-lived workers (`datajoint-sa worker`).

The job table itself is `datajoint_sa.jobs`; the heartbeat of reservations is
`datajoint_sa.heartbeat`.
"""

from __future__ import annotations

from .keysource import default_key_source
from .make import (
                   ERROR,
                   MAKE_ATTEMPTS,
                   SKIPPED,
                   SUCCESS,
                   RetryPolicy,
                   Runner,
                   inserts_allowed,
                   same_data,
)
from .mixin import ORDERS, AutoPopulate, say_blocked
from .scheduling import Scheduler, plan, populate_pipeline
from .targets import _classes_by_node, _collect_targets, _makes
from .workers import IN_FLIGHT_PER_WORKER, TableRef, resolve_table, run_task

__all__ = [
    "AutoPopulate", "ERROR", "IN_FLIGHT_PER_WORKER", "MAKE_ATTEMPTS", "ORDERS", "RetryPolicy",
    "Runner", "SKIPPED", "SUCCESS", "Scheduler", "TableRef", "default_key_source",
    "inserts_allowed", "plan", "populate_pipeline", "resolve_table", "run_task",
    "same_data", "say_blocked", "_classes_by_node", "_collect_targets", "_makes",
]
