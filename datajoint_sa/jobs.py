"""The job table `~jobs` of a schema: who is computing which key, and which keys failed.

A worker reserves a key by inserting the row (table name, key hash): the primary key lets
exactly one insert win, on every backend, so any number of processes and machines can share
a `populate` without computing a key twice. The reservation is committed on its own; the
make that follows deletes it in the same transaction that writes the results, so a key is
either reserved, failed (`status = 'error'`, with message and traceback), ignored, or done.
A worker that dies leaves its reservation behind: `schema.jobs.clear_stale()` removes the
reservations whose process is gone (same host), whose database session is gone, or that are
older than an age limit.

The layout is the reference implementation's (0.14 line), so either can read the other's.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import decimal
import getpass
import hashlib
import json
import os
import platform
import threading
import traceback
import uuid
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import sqlalchemy as sa

from . import declare, heartbeat
from .errors import DataJointError, DuplicateError
from .table import Table

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection as SAConnection

    from .connection import Connection
    from .schema import Schema

JOBS_TABLE = "~jobs"
ERROR_MESSAGE_LENGTH = 2047
TRUNCATION_APPENDIX = "...truncated"
STATUSES = ("pending", "reserved", "error", "ignore")
#: default priority of a key (lower runs first)
DEFAULT_PRIORITY = 5
#: seconds without a heartbeat after which a reservation is anyone's to take over
#: (`DJ_JOBS_LEASE` in the environment, `datajoint-sa worker --lease`, or `set_lease`)
LEASE = float(os.environ.get("DJ_JOBS_LEASE", "60"))


def set_lease(seconds: float) -> None:
    """Set this process's lease: the reservations of others whose heartbeat is older are
    taken over; this process's heartbeat beats four times per lease."""
    global LEASE
    if not seconds > 0:
        raise DataJointError(f"the job lease must be a positive number of seconds, not {seconds}")
    LEASE = float(seconds)

RESERVE_ATTEMPTS = 3
#: keys queued per statement
ENQUEUE_CHUNK = 1000

JOBS_DEFINITION = """
# job reservations and errors of populate
table_name : varchar(255)                  # the populated table (its name in this schema)
key_hash : char(32)                        # md5 of the key's names and typed values
---
status : enum('reserved','error','ignore','pending') # a key without a row is free
priority = 5 : smallint                    # lower runs first
key = null : blob                          # the key
error_message = "" : varchar(2047)         # the error of a failed make
error_stack = null : mediumblob            # its traceback
user = "" : varchar(255)                   # database user
host = "" : varchar(255)                   # host name of the worker
pid = 0 : int unsigned                     # process id of the worker
connection_id = 0 : bigint unsigned        # database session of the worker
attempts = 0 : smallint                    # tries of the make that failed (retryable errors)
heartbeat = null : datetime                # last sign of life of the reserving worker (UTC)
timestamp = CURRENT_TIMESTAMP : timestamp  # when reserved or failed (UTC)
"""


def key_encoding(key: Mapping[str, Any]) -> str:
    """An unambiguous text of a key: its names with typed values, sorted by name.

    Values that the database stores as the same key encode the same (1, 1.0, numpy.int64(1)
    and Decimal(1) all as the integer 1), and no two different keys share an encoding:
    JSON keeps the boundaries between names and values that plain concatenation loses.
    """
    return json.dumps([[name, *_typed(value)] for name, value in sorted(key.items())],
                      ensure_ascii=False, separators=(",", ":"))


def _typed(value: Any) -> tuple[str, str]:
    """(type tag, canonical text) of one key value."""
    if value is None:
        return "null", ""
    if isinstance(value, (bool, np.bool_)):
        return "int", str(int(value))
    if isinstance(value, (int, np.integer)):
        return "int", str(int(value))
    if isinstance(value, (float, np.floating, decimal.Decimal)):
        number = decimal.Decimal(str(value)) if not isinstance(value, decimal.Decimal) else value
        if number.is_finite() and number == number.to_integral_value():
            return "int", str(int(number))
        return "num", str(number.normalize()) if number.is_finite() else str(value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return "bytes", bytes(value).hex()
    if isinstance(value, dt.datetime):
        return "datetime", value.isoformat()
    if isinstance(value, dt.date):
        return "date", value.isoformat()
    if isinstance(value, (dt.time, dt.timedelta)):
        return type(value).__name__, str(value)
    if isinstance(value, uuid.UUID):
        return "uuid", str(value)
    if isinstance(value, str):
        return "str", value
    return type(value).__name__, str(value)


def key_hash(key: Mapping[str, Any]) -> str:
    """The md5 of the key's unambiguous encoding (`key_encoding`).

    The reference implementation hashes the values concatenated as strings, so (1, 23) and
    (12, 3) would share one reservation; this hash differs from its hashes on purpose.
    """
    return hashlib.md5(key_encoding(key).encode()).hexdigest()


def same_key(a: Mapping[str, Any] | None, b: Mapping[str, Any]) -> bool:
    """Whether a stored job key is the key `b` (compared by encoding, not by hash)."""
    return a is not None and key_encoding(a) == key_encoding(b)


def error_text(error: BaseException) -> str:
    """`ClassName: message`, cut to fit the error_message column."""
    message = str(error)
    text = f"{type(error).__name__}: {message}" if message else type(error).__name__
    if len(text) > ERROR_MESSAGE_LENGTH:
        text = text[: ERROR_MESSAGE_LENGTH - len(TRUNCATION_APPENDIX)] + TRUNCATION_APPENDIX
    return text


def pid_alive(pid: int) -> bool:
    """Whether process `pid` of this host is running (an unreaped zombie counts as dead)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill would terminate the process there
        try:
            import psutil
        except ImportError:
            return True
        return bool(psutil.pid_exists(pid))
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as stat:
            state = stat.read().rpartition(")")[2].split()[0]
    except (OSError, IndexError):
        return True
    return state not in ("Z", "X")


_declaring = threading.RLock()


class JobKeyCollision(DataJointError):
    """A job row under a key's hash holds another key (e.g. a row of an older writer)."""


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(tzinfo=None, microsecond=0)


class JobTable(Table):
    """The job table of one schema: a normal, queryable table (`schema.jobs`).

    `schema.jobs & {'status': 'error'}` lists failed keys; deleting an error row
    (`(schema.jobs & ...).delete()`) lets the next `populate(reserve_jobs=True)` retry it.
    """

    definition: ClassVar[str] = JOBS_DEFINITION
    tier: ClassVar[str] = "jobs"
    #: statements compiled once per declared table
    _statements: ClassVar[dict[str, Any] | None] = None

    # ---- declaration --------------------------------------------------------------------
    @staticmethod
    def of(schema: Schema) -> JobTable:
        """The job table of `schema`, declared (and created when missing) on first use."""
        with _declaring:  # threads of one process declare it once
            cls: type[JobTable] | None = getattr(schema, "_jobs_class", None)
            if cls is None or not _still_declared(cls, schema):
                cls = type("JobTable", (JobTable,), {"__module__": __name__})
                _declare(cls, schema)
                schema._jobs_class = cls  # type: ignore[attr-defined]
        return cls()

    def _compiled(self) -> dict[str, Any]:
        statements = type(self)._statements
        if statements is None:
            table = self._sa_table
            assert table is not None
            backend = self.connection.backend_impl
            key = self.primary_key
            columns = self.heading.names
            c = table.c
            own = (c.table_name == sa.bindparam("t_name")) & (
                c.key_hash == sa.bindparam("t_hash")) & (c.host == sa.bindparam("t_host")) & (
                c.pid == sa.bindparam("t_pid"))
            alive = sa.func.coalesce(c.heartbeat, c.timestamp)
            # a key anyone may take: queued, or reserved by a worker silent for a lease
            free = (c.status == "pending") | (
                (c.status == "reserved") & (alive < sa.bindparam("t_cutoff")))
            holder: dict[str, Any] = {"user": sa.bindparam("w_user"), "host": sa.bindparam("w_host"),
                      "pid": sa.bindparam("w_pid"),
                      "connection_id": sa.bindparam("w_connection_id"),
                      "heartbeat": sa.bindparam("w_now"), "timestamp": sa.bindparam("w_now")}
            statements = {
                # an INSERT's rowcount is kept only when asked for (SQLAlchemy 2.1 + psycopg)
                "reserve": backend.insert_statement(table, columns, mode="skip", key=key)
                .execution_options(preserve_rowcount=True),
                "upsert": backend.insert_statement(table, columns, mode="replace", key=key),
                "complete": sa.delete(table).where(own),
                # a group of keys (populate/batch.py): one plain INSERT of them all (any
                # held key fails it whole) and one DELETE that completes them all
                "reserve_all": sa.insert(table).returning(c.key_hash)
                if self.connection.engine.dialect.insert_executemany_returning
                else sa.insert(table),
                "complete_all": sa.delete(table).where(
                    c.table_name == sa.bindparam("t_name"),
                    c.key_hash.in_(sa.bindparam("t_hashes", expanding=True)),
                    c.host == sa.bindparam("t_host"), c.pid == sa.bindparam("t_pid")),
                # one statement only one worker can win: the row changes hands once
                "claim": sa.update(table).where(
                    c.table_name == sa.bindparam("t_name"),
                    c.key_hash == sa.bindparam("t_hash"), free).values(
                    status="reserved", **holder),
                "release": sa.update(table).where(own, c.status == "reserved").values(
                    status="pending", heartbeat=None),
                "beat": sa.update(table).where(
                    c.status == "reserved", c.host == sa.bindparam("t_host"),
                    c.pid == sa.bindparam("t_pid")).values(heartbeat=sa.bindparam("w_now")),
                "candidates": sa.select(c.table_name, c.key_hash, c.key, c.priority).where(
                    c.table_name.in_(sa.bindparam("t_names", expanding=True)), free
                ).order_by(c.priority, c.timestamp).limit(sa.bindparam("t_limit")),
                "existing": sa.select(c.key_hash).where(
                    c.table_name == sa.bindparam("t_name"),
                    c.key_hash.in_(sa.bindparam("t_hashes", expanding=True))),
                "enqueue": backend.insert_statement(
                    table, ["table_name", "key_hash", "status", "priority", "key", "timestamp"],
                    mode="skip", key=key),
                "hashes": sa.select(c.key_hash, c.key).where(
                    c.table_name == sa.bindparam("t_name"), ~free),
                "stored_key": sa.select(c.key).where(c.table_name == sa.bindparam("t_name"),
                                                     c.key_hash == sa.bindparam("t_hash")),
            }
            type(self)._statements = statements
        return statements

    # ---- the row of this worker ---------------------------------------------------------
    def _row(self, table_name: str, key: Mapping[str, Any], hashed: str, status: str,
             message: str = "", stack: str | None = None, *, priority: int | None = None,
             attempts: int = 0) -> dict[str, Any]:
        codec = self.heading["key"].codec
        now = _utcnow()
        return {
            "table_name": table_name, "key_hash": hashed, "status": status,
            "priority": DEFAULT_PRIORITY if priority is None else int(priority),
            "key": codec.encode(dict(key)),
            "error_message": message,
            "error_stack": None if stack is None else codec.encode(stack),
            **_worker(self.connection), "attempts": attempts,
            "heartbeat": now if status == "reserved" else None, "timestamp": now,
        }

    def _holder(self) -> dict[str, Any]:
        worker = _worker(self.connection)
        return {f"w_{k}": v for k, v in worker.items()} | {"w_now": _utcnow()}

    # ---- reserving and finishing --------------------------------------------------------
    def reserve(self, table_name: str, key: Mapping[str, Any], hashed: str | None = None,
                *, queued_first: bool = False) -> bool:
        """Reserve `key` of `table_name` for this process; False when another process holds it
        (or it failed, or is ignored). One INSERT that only one worker can win, committed at
        once (see `_bookkeeping`); when the key has a row already, one UPDATE that takes it
        if it is queued (`pending`) or its holder's heartbeat is older than the lease.
        `queued_first` tries the UPDATE first (keys that the scheduler queued)."""
        hashed = hashed or key_hash(key)
        if queued_first and self.claim(table_name, key, hashed):
            return True
        if self._insert_reservation(table_name, key, hashed):
            return True
        if not queued_first and self.claim(table_name, key, hashed):
            return True
        self.check_key(table_name, key, hashed)
        return False  # another worker has it (or it failed, or is ignored)

    def claim(self, table_name: str, key: Mapping[str, Any] | None, hashed: str) -> bool:
        """Take the job row `hashed` if it is queued or abandoned (one UPDATE, committed at
        once); False when it is not there or another worker took it first."""
        connection = self.connection
        params = {"t_name": table_name, "t_hash": hashed,
                  "t_cutoff": _utcnow() - dt.timedelta(seconds=LEASE), **self._holder()}
        try:
            with _bookkeeping(connection) as sa_conn:
                won = sa_conn.execute(self._compiled()["claim"], params).rowcount == 1
        except sa.exc.DBAPIError as error:
            if connection.backend_impl.is_transient(error) or isinstance(
                    connection.classify(error, JOBS_TABLE), DuplicateError):
                return False  # contended: another worker is taking it
            raise connection.classify(error, JOBS_TABLE) from error
        if won:
            heartbeat.hold(self)
        return won

    def _insert_reservation(self, table_name: str, key: Mapping[str, Any], hashed: str
                            ) -> bool:
        connection = self.connection
        statement = self._compiled()["reserve"]
        row = self._row(table_name, key, hashed, "reserved")
        for _attempt in range(RESERVE_ATTEMPTS):
            try:
                with _bookkeeping(connection) as sa_conn:
                    if sa_conn.execute(statement, row).rowcount == 1:
                        heartbeat.hold(self)
                        return True
                return False
            except sa.exc.DBAPIError as error:
                classified = connection.classify(error, JOBS_TABLE)
                if isinstance(classified, DuplicateError):
                    return False
                # workers inserting the same key as its holder deletes it can deadlock
                # (InnoDB): the loser is told so, and asks again
                if not connection.backend_impl.is_transient(error):
                    raise classified from error
        return False

    def check_key(self, table_name: str, key: Mapping[str, Any], hashed: str) -> None:
        """Raise JobKeyCollision when the job row under `hashed` holds another key than
        `key`: that row is not this key's, so its status must not decide this key's fate."""
        rows = self.connection.query(self._compiled()["stored_key"],
                                     {"t_name": table_name, "t_hash": hashed})
        if rows:
            self.check_stored(table_name, key, hashed, rows[0][0])

    def check_stored(self, table_name: str, key: Mapping[str, Any], hashed: str,
                     stored: Any) -> bool:
        """True when the stored (encoded) job key is `key`; raise JobKeyCollision when it
        is another key; False when the row stores no key (a row of an old writer)."""
        if stored is None:
            return False
        stored_key = self.heading["key"].codec.decode(stored)
        if not same_key(stored_key, key):
            raise JobKeyCollision(
                f"The job of {table_name} for key {dict(key)} has the hash {hashed}, which the"
                f" job table holds for another key, {stored_key}: delete that row (see "
                f"`datajoint-sa jobs clear`) to compute this key")
        return True

    def complete_in(self, sa_conn: SAConnection, table_name: str, hashed: str) -> None:
        """Delete this process's reservation inside the caller's transaction (the make's)."""
        worker = _worker(self.connection)
        sa_conn.execute(self._compiled()["complete"], {
            "t_name": table_name, "t_hash": hashed, "t_host": worker["host"],
            "t_pid": worker["pid"]})

    def reserve_all(self, table_name: str, keys: Sequence[Mapping[str, Any]],
                    hashes: Sequence[str]) -> bool:
        """Reserve every key of a group in one transaction (one multi-row INSERT where the
        driver folds rows), committed at once; False (nothing reserved) when any of them has
        a job row already or the insert lost a lock conflict: then `reserve` decides key by
        key."""
        if not keys:
            return True
        connection = self.connection
        rows = [self._row(table_name, k, h, "reserved") for k, h in zip(keys, hashes)]
        try:  # one transaction of the main session (the side one commits row by row)
            with connection.session(write=True) as sa_conn:
                # with RETURNING, SQLAlchemy sends the rows as one multi-row INSERT
                # ("insertmanyvalues") instead of one statement per row
                result = sa_conn.execute(self._compiled()["reserve_all"], rows)
                if result.returns_rows:
                    result.all()
        except sa.exc.DBAPIError as error:
            classified = connection.classify(error, JOBS_TABLE)
            if isinstance(classified, DuplicateError) or connection.backend_impl.is_transient(
                    error):
                return False
            raise classified from error
        heartbeat.hold(self)
        return True

    def complete_all_in(self, sa_conn: SAConnection, table_name: str,
                        hashes: Sequence[str]) -> None:
        """Delete this process's reservations of `hashes` in the caller's transaction."""
        if not hashes:
            return
        worker = _worker(self.connection)
        sa_conn.execute(self._compiled()["complete_all"], {
            "t_name": table_name, "t_hashes": list(hashes), "t_host": worker["host"],
            "t_pid": worker["pid"]})

    def complete(self, table_name: str, key: Mapping[str, Any]) -> None:
        """Release this process's reservation of `key`."""
        with self.connection.session(write=True) as sa_conn:
            self.complete_in(sa_conn, table_name, key_hash(key))

    def release(self, table_name: str, key: Mapping[str, Any], hashed: str | None = None
                ) -> None:
        """Give this process's reservation back to the queue (`pending`): a worker that stops
        in the middle of a make hands its key to the next worker at once."""
        worker = _worker(self.connection)
        params = {"t_name": table_name, "t_hash": hashed or key_hash(key),
                  "t_host": worker["host"], "t_pid": worker["pid"]}
        with _bookkeeping(self.connection) as sa_conn:
            sa_conn.execute(self._compiled()["release"], params)

    def enqueue(self, table_name: str, keys: Iterable[Mapping[str, Any]],
                priority: Callable[[Mapping[str, Any]], int] | int | None = None) -> int:
        """Queue keys of `table_name` as `pending` (keys with a job row already are left as
        they are); returns how many were new. One insert per thousand keys (where the backend's
        skip-insert is plain and some keys have rows, a look-up of those first)."""
        codec = self.heading["key"].codec
        now = _utcnow()
        rows = []
        for key in keys:
            rank = priority(key) if callable(priority) else priority
            rows.append({"table_name": table_name, "key_hash": key_hash(key),
                         "status": "pending", "key": codec.encode(dict(key)),
                         "priority": DEFAULT_PRIORITY if rank is None else int(rank),
                         "timestamp": now})
        connection = self.connection
        statement = self._compiled()["enqueue"]
        count = 0
        for start in range(0, len(rows), ENQUEUE_CHUNK):
            chunk = rows[start:start + ENQUEUE_CHUNK]
            try:  # one statement; a backend whose "skip" insert is plain may refuse it
                with _bookkeeping(connection) as sa_conn:
                    inserted = sa_conn.execute(statement, chunk).rowcount
                count += len(chunk) if inserted is None or inserted < 0 else int(inserted)
                continue
            except sa.exc.DBAPIError as error:
                classified = connection.classify(error, JOBS_TABLE)
                if not isinstance(classified, DuplicateError):
                    raise classified from error
            # some have rows already: leave those, insert the others
            existing = {h for (h,) in connection.query(self._compiled()["existing"], {
                "t_name": table_name, "t_hashes": [r["key_hash"] for r in chunk]})}
            chunk = [r for r in chunk if r["key_hash"] not in existing]
            if not chunk:
                continue
            try:
                with _bookkeeping(connection) as sa_conn:
                    sa_conn.execute(statement, chunk)
                count += len(chunk)
            except sa.exc.DBAPIError as error:
                classified = connection.classify(error, JOBS_TABLE)
                if not isinstance(classified, DuplicateError):
                    raise classified from error
                # another worker queued some of them meanwhile: one row at a time
                for row in chunk:
                    try:
                        with _bookkeeping(connection) as sa_conn:
                            sa_conn.execute(statement, row)
                        count += 1
                    except sa.exc.DBAPIError as again:
                        if not isinstance(connection.classify(again, JOBS_TABLE),
                                          DuplicateError):
                            raise connection.classify(again, JOBS_TABLE) from again
        return count

    def next_keys(self, table_names: Iterable[str], limit: int = 16
                  ) -> list[tuple[int, str, str, dict[str, Any]]]:
        """Up to `limit` keys that a worker may take now, lowest priority value first:
        (priority, table name, key hash, key). A worker then `claim`s one; another may
        win it."""
        names = list(table_names)
        if not names:
            return []
        rows = self.connection.query(self._compiled()["candidates"], {
            "t_names": names, "t_limit": limit,
            "t_cutoff": _utcnow() - dt.timedelta(seconds=LEASE)})
        codec = self.heading["key"].codec
        return [(int(p), t, h, codec.decode(k)) for t, h, k, p in rows if k is not None]

    def beat(self, sa_conn: SAConnection) -> int:
        """Refresh the heartbeat of every reservation of this process (on `sa_conn`, the
        heartbeat thread's own session)."""
        return int(sa_conn.execute(self._compiled()["beat"], {
            "t_host": platform.node(), "t_pid": os.getpid(), "w_now": _utcnow()}).rowcount)

    def counts(self) -> dict[str, dict[str, int]]:
        """{table name: {status: rows}} of the whole job table, in one query."""
        c = self._sa_table.c  # type: ignore[union-attr]
        rows = self.connection.query(
            sa.select(c.table_name, c.status, sa.func.count()).group_by(c.table_name, c.status))
        found: dict[str, dict[str, int]] = {}
        for table_name, status, count in rows:
            found.setdefault(table_name, {})[status] = int(count)
        return found

    def error(self, table_name: str, key: Mapping[str, Any], error_message: str | BaseException,
              error_stack: str | None = None, *, attempts: int = 0) -> None:
        """Record a failed make: the key is skipped by populate until the row is deleted."""
        if isinstance(error_message, BaseException):
            if error_stack is None:
                error_stack = "".join(traceback.format_exception(
                    type(error_message), error_message, error_message.__traceback__))
            error_message = error_text(error_message)
        elif len(error_message) > ERROR_MESSAGE_LENGTH:
            error_message = (error_message[: ERROR_MESSAGE_LENGTH - len(TRUNCATION_APPENDIX)]
                             + TRUNCATION_APPENDIX)
        self._upsert(table_name, key, "error", error_message, error_stack, attempts=attempts)

    def ignore(self, table_name: str, key: Mapping[str, Any]) -> None:
        """Mark `key` of `table_name` to be skipped by populate(reserve_jobs=True)."""
        self._upsert(table_name, key, "ignore")

    def _upsert(self, table_name: str, key: Mapping[str, Any], status: str,
                message: str = "", stack: str | None = None, *, attempts: int = 0) -> None:
        connection = self.connection
        hashed = key_hash(key)
        self.check_key(table_name, key, hashed)  # never overwrite another key's row
        row = self._row(table_name, key, hashed, status, message, stack, attempts=attempts)
        try:
            with _bookkeeping(connection) as sa_conn:
                sa_conn.execute(self._compiled()["upsert"], row)
        except sa.exc.DBAPIError as error:
            raise connection.classify(error, JOBS_TABLE) from error

    def hashes(self, table_name: str) -> dict[str, Any]:
        """Every job row of `table_name` (reserved, failed or ignored): the stored (encoded)
        key by key hash. `taken` decides whether one of them is a given key's."""
        rows = self.connection.query(self._compiled()["hashes"], {
            "t_name": table_name, "t_cutoff": _utcnow() - dt.timedelta(seconds=LEASE)})
        return {h: stored for (h, stored) in rows}

    def taken(self, table_name: str, key: Mapping[str, Any], hashes: Mapping[str, Any],
              hashed: str | None = None) -> bool:
        """Whether `hashes` (from `hashes()`) holds a job row of `key` itself; a row under the
        same hash for another key is not this key's (JobKeyCollision when reserved)."""
        hashed = hashed or key_hash(key)
        if hashed not in hashes:
            return False
        try:
            return self.check_stored(table_name, key, hashed, hashes[hashed]) or True
        except JobKeyCollision:
            return False

    # ---- inspecting and cleaning up -----------------------------------------------------
    @property
    def errors(self) -> Any:
        return self & {"status": "error"}

    @property
    def reserved(self) -> Any:
        return self & {"status": "reserved"}

    def clear_stale(self, max_age: float | dt.timedelta | None = None, *,
                    sessions: bool = True) -> int:
        """Delete reservations left by workers that are gone; returns how many.

        A reservation is stale when it was made on this host by a process that no longer
        runs; or (with `sessions`, on PostgreSQL and MySQL) when the database session that
        made it, of the current database user, is closed — that covers workers on other
        hosts; or when it is older than `max_age` (seconds or a timedelta). Error rows stay.
        """
        if isinstance(max_age, (int, float)):
            max_age = dt.timedelta(seconds=max_age)
        cutoff = _utcnow() - max_age if max_age is not None else None
        connection = self.connection
        table = self._sa_table
        assert table is not None
        c = table.c
        here, me = platform.node(), _user(connection)
        with connection.session(write=True) as sa_conn:
            rows = sa_conn.execute(
                sa.select(c.table_name, c.key_hash, c.user, c.host, c.pid, c.connection_id,
                          c.timestamp).where(c.status == "reserved")).all()
            live = connection.backend_impl.live_session_ids(sa_conn) if sessions else None
            stale = []
            for row in rows:
                gone = (row.host == here and not pid_alive(int(row.pid))) or (
                    cutoff is not None and row.timestamp is not None and row.timestamp <= cutoff
                ) or (live is not None and row.user == me and bool(row.connection_id)
                      and int(row.connection_id) not in live)
                if gone:
                    stale.append(row)
            count = 0
            for row in stale:
                count += sa_conn.execute(sa.delete(table).where(
                    c.table_name == row.table_name, c.key_hash == row.key_hash,
                    c.status == "reserved", c.host == row.host, c.pid == row.pid)).rowcount
        return count

    def delete(self, *_: Any, **__: Any) -> int:
        """Delete these job rows (nothing depends on them: no cascade, no prompt)."""
        return int(self.delete_quick(get_count=True) or 0)


def _declare(cls: type[JobTable], schema: Schema) -> None:
    """Compile the definition into the schema's metadata and create the table if missing;
    workers starting together on a new schema may race to create it: one wins."""
    connection = schema.connection
    backend = connection.backend_impl
    spec = declare.parse(JOBS_DEFINITION, schema=schema.database, name=JOBS_TABLE, context={},
                         display_name=f"{schema.database}.{JOBS_TABLE}")
    sa_schema, sa_name = backend.table_identity(schema.database, JOBS_TABLE)
    existing = schema.metadata.tables.get(f"{sa_schema}.{sa_name}" if sa_schema else sa_name)
    if existing is not None:
        schema.metadata.remove(existing)
    sa_table = declare.compile(spec, schema.metadata, backend)
    try:
        with connection.session(write=True) as sa_conn:
            if not sa.inspect(sa_conn).has_table(sa_name, schema=sa_schema):
                sa_table.create(sa_conn)
                backend.after_create(sa_conn, sa_table)
    except sa.exc.DBAPIError as error:
        with connection.session(write=False) as sa_conn:
            if not sa.inspect(sa_conn).has_table(sa_name, schema=sa_schema):
                raise DataJointError(f"Cannot create the job table of {schema.database}: "
                                     f"{error.orig}") from error
    with connection.session(write=False) as sa_conn:
        present = {c["name"] for c in sa.inspect(sa_conn).get_columns(sa_name, schema=sa_schema)}
    missing = [c.name for c in sa_table.columns if c.name not in present]
    if missing:
        _upgrade_layout(connection, schema, sa_table, spec, missing)
    cls._schema = schema
    cls.table_name = JOBS_TABLE
    cls._sa_table = sa_table
    cls._spec = spec
    cls._table_heading = spec.heading
    cls._statements = None


def _upgrade_layout(connection: Connection, schema: Schema, sa_table: sa.Table, spec: Any,
                    missing: list[str]) -> None:
    """Migrate a job table of an older layout (this package's first version, DataJoint 0.14)
    in place: the queue's columns added, the status values widened, keys re-hashed."""
    from .migrate.job_table import upgrade_job_table  # back-edge: met once per old table
    try:
        upgrade_job_table(connection, sa_table, schema.database, spec.heading["key"].codec,
                          key_hash)
    except DataJointError as error:
        raise DataJointError(
            f"The job table of {schema.database} has an older layout (no {', '.join(missing)})"
            f" and could not be brought up to date: {error}. With no worker running, drop the "
            f"table {JOBS_TABLE!r} of that schema and it is created anew on next use") from error


def _still_declared(cls: type[JobTable], schema: Schema) -> bool:
    table = cls._sa_table
    return (table is not None and cls._schema is schema
            and table.metadata is schema.metadata and table.key in schema.metadata.tables)


def _user(connection: Connection) -> str:
    name = connection.url.username
    if name:
        return str(name)
    try:
        return getpass.getuser()
    except Exception:  # no user name in the environment
        return ""


def _worker(connection: Connection) -> dict[str, Any]:
    """user, host, pid and connection_id of this process's rows (asked once per session)."""
    sa_conn = connection.sa
    info = sa_conn.info
    worker = info.get("dj_worker")
    if worker is None or worker["pid"] != os.getpid():
        worker = {"user": _user(connection), "host": platform.node(), "pid": os.getpid(),
                  "connection_id": _session_id(connection)}
        info["dj_worker"] = worker
    return worker


def _session_id(connection: Connection) -> int:
    """The server's id of the connection's session (the one that runs the makes), asked once
    per database connection."""
    info = connection.sa.info
    if "dj_session_id" not in info:
        try:
            with connection.session(write=False) as sa_conn:
                info["dj_session_id"] = connection.backend_impl.session_id(sa_conn)
        except sa.exc.DBAPIError as error:
            raise DataJointError(f"Cannot read the database session id: {error.orig}") from error
    return int(info["dj_session_id"])


@contextmanager
def _bookkeeping(connection: Connection) -> Iterator[SAConnection]:
    """Where job rows are written so that they commit at once: inside an open transaction of
    `connection`, that transaction (through a savepoint); otherwise the process's second
    session of the same engine, in autocommit mode and, where the server allows, without
    waiting for the disk: a reservation or an error row lost in a server crash only means
    the key is computed again. On PostgreSQL that makes a reservation one round trip."""
    if connection.in_transaction:
        with connection.session(write=True) as sa_conn:
            yield sa_conn
        return
    side = _side_session(connection)
    try:
        with side.begin():
            yield side
    except sa.exc.DBAPIError:
        if side.invalidated or side.closed:
            _forget_side_session(connection)
        raise


_SIDE = "_dj_jobs_session"


def _side_session(connection: Connection) -> SAConnection:
    """The bookkeeping session of this process and thread (threads never share one)."""
    held = connection.__dict__.setdefault(_SIDE, {}).get(threading.get_ident())
    if held is not None and held[0] == os.getpid() and not held[1].closed:
        return held[1]
    engine = connection.engine
    side = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    try:
        with side.begin():
            connection.backend_impl.relax_durability(side)
    except sa.exc.DBAPIError:  # e.g. a server that refuses the setting: wait for the disk
        pass
    connection.__dict__[_SIDE][threading.get_ident()] = (os.getpid(), side)
    if not sa.event.contains(engine, "engine_disposed", _close_side_sessions):
        sa.event.listen(engine, "engine_disposed", _close_side_sessions)
    _by_engine.setdefault(engine, weakref.WeakSet()).add(connection)
    return side


def _forget_side_session(connection: Connection, *, every_thread: bool = False) -> None:
    sessions = connection.__dict__.get(_SIDE, {})
    threads = list(sessions) if every_thread else [threading.get_ident()]
    for thread in threads:
        held = sessions.pop(thread, None)
        if held is not None and held[0] == os.getpid():
            # invalidated: its driver connection is closed now; merely closed, it would go
            # back to a pool that Connection.close() has disposed already, where only the
            # garbage collector ends it (a server session held meanwhile, a ResourceWarning)
            with contextlib.suppress(Exception):
                held[1].invalidate()
            with contextlib.suppress(Exception):
                held[1].close()


_by_engine: weakref.WeakKeyDictionary[sa.Engine, weakref.WeakSet[Any]] = (
    weakref.WeakKeyDictionary())


def _close_side_sessions(engine: sa.Engine) -> None:
    """Connection.close() disposes the engine: close the bookkeeping sessions with it (only
    in the process that opened them: a forked child leaves its parent's alone)."""
    for connection in list(_by_engine.get(engine, ())):
        _forget_side_session(connection, every_thread=True)
    heartbeat.release(engine)
