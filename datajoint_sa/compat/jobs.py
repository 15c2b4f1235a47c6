"""`schema.jobs` as classic DataJoint shows it: the columns of its `~jobs` table.

Classic code reads the job table (`schema.jobs.fetch(format="frame")`,
`(schema.jobs & 'status="error"').fetch("key", "error_message")`) and clears errors
(`(schema.jobs & 'status="error"').delete()`). Our job table is the same table with three
more columns (priority, attempts, heartbeat: the queue and the lease); this view shows the
classic columns only, deletes the rows it shows, and passes every job operation (reserve,
complete, error, ignore, clear_stale, ...) to the job table itself, so populate and the
workers behave as on any schema.
"""

from __future__ import annotations

from typing import Any

from ..expression import Projection
from ..jobs import ERROR_MESSAGE_LENGTH, TRUNCATION_APPENDIX, JobTable

#: the secondary columns of classic DataJoint's ~jobs (its key is table_name, key_hash)
CLASSIC_COLUMNS = ("status", "key", "error_message", "error_stack", "user", "host", "pid",
                   "connection_id", "timestamp")


class ClassicJobs(Projection):
    """A schema's job table with classic DataJoint's columns."""

    def __init__(self, jobs: JobTable) -> None:
        super().__init__(jobs, CLASSIC_COLUMNS, {})
        self._jobs = jobs

    def delete(self, *_: Any, **__: Any) -> int:
        """Delete the job rows shown (no cascade and no prompt: nothing depends on them)."""
        return int(self._jobs.restrict(self.proj()).delete_quick(get_count=True) or 0)

    def delete_quick(self, get_count: bool = False) -> int | None:
        count = self.delete()
        return count if get_count else None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.__dict__["_jobs"], name)


__all__ = ["CLASSIC_COLUMNS", "ERROR_MESSAGE_LENGTH", "TRUNCATION_APPENDIX", "ClassicJobs",
           "JobTable"]
