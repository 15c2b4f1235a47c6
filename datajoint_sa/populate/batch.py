"""Group commit for the serial populate: the makes of up to `populate.batch_size` keys run in
one transaction and their results are written and committed together.

A transaction per key costs round trips (BEGIN, the done check, each INSERT, the job
row, COMMIT) that dwarf a small make. In a group, the done check is one SELECT for all the
keys, each make only reads (its plain inserts into the table and its parts are checked and
encoded at once, as always, but kept in a per-key buffer: `WriteBuffer.take`, called by
insert.insert_rows), and one flush writes every buffered row per table with the backend's
bulk path, completes the job rows in one DELETE and commits.

What stays as the per-key path guarantees:
- a make that raises leaves nothing: its buffer is dropped; the keys before it commit first,
  then its error is handled exactly as `Runner.run_reserved` does (retries, job error row);
- a make that does anything but read other tables (reads its own table or parts, writes
  elsewhere, inserts with skip_duplicates/replace or from a query) is stopped before that
  statement runs (`NeedsClassic`, raised by a statement hook); the keys before it commit and
  it runs again the per-key way, in its own transaction. After `STICKY_FALLBACKS` such keys
  the rest of the populate runs per key;
- a flush that fails (another process inserted one of the keys meanwhile, say) rolls back and
  replays the buffered rows key by key, each in its own transaction with the done check; a
  key whose replay fails runs its make the per-key way (its error is that key's error);
- an interrupt (KeyboardInterrupt, SystemExit) commits the keys made so far and gives back
  the reservations of the others.
A server crash may lose the last group (each key whole), as `Runner.durable_at_end` already
accepts for the last keys; once populate returns, everything is on disk.

Workers could use the same class: `GroupRunner(runner, size, seconds).run(keys)` yields
(key, status, error) for keys that are theirs to compute.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Generator, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..settings import config
from .make import ERROR, SKIPPED, SUCCESS, Runner, inserts_allowed

if TYPE_CHECKING:
    from ..connection import Connection
    from ..table import Table

logger = logging.getLogger("datajoint_sa")

#: keys that had to run per key before the rest of a populate does so without trying groups
STICKY_FALLBACKS = 2

Result = tuple[dict[str, Any], str, "BaseException | None"]
Groups = list[tuple[list[str], Sequence[tuple[Any, ...]]]]


class NeedsClassic(Exception):
    """Raised into a grouped make before a statement that a buffer cannot serve (a read of
    its own table or parts, or any write): the key runs again in its own transaction."""


class WriteBuffer:
    """Where a grouped make's plain inserts into its table and parts go (per thread, as
    `Connection.write_buffer`), and what tells the statement hook that a make is running."""

    __slots__ = ("target", "node", "covered", "writes", "in_make", "classic")

    def __init__(self, table: Table) -> None:
        #: part tables are named <master>__<part>: the master's name is in all of them
        self.target: str = table.table_name
        self.node: str = table.node_name
        self.covered: dict[type, bool] = {}
        self.writes: list[tuple[Table, Groups]] = []
        self.in_make = False
        self.classic = False

    def take(self, table: Table, groups: Groups, mode: str) -> bool:
        """Keep rows of a plain insert into the target or a part; False: write them now."""
        if not self.in_make or mode != "insert":
            return False
        cls = type(table)
        covered = self.covered.get(cls)
        if covered is None:
            covered = self.covered[cls] = self._covers(table)
        if covered:
            self.writes.append((table, groups))
        return covered

    def _covers(self, table: Table) -> bool:
        if table.node_name == self.node:
            return True
        master = getattr(type(table), "master", None) if table.tier == "part" else None
        return master is not None and master().node_name == self.node

    def check(self, statement: str) -> None:
        """The statement hook: only reads of other tables may run during a grouped make."""
        if self.in_make and (self.target in statement
                             or statement.lstrip()[:6].upper() != "SELECT"):
            self.classic = True
            raise NeedsClassic(f"grouped make of {self.target} ran: {statement[:80]}")


def _watch(connection: Connection) -> None:
    """Install the statement hook on the connection's engine (once)."""
    if connection.__dict__.get("_dj_group_watch"):
        return

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any,
               executemany: bool) -> None:
        buffer = connection.write_buffer
        if buffer is not None:
            buffer.check(statement)

    sa.event.listen(connection.engine, "before_cursor_execute", before)
    connection.__dict__["_dj_group_watch"] = before


class _Item:
    """One key of a group: its job hash, its buffered writes, whether it has its result."""

    __slots__ = ("key", "hashed", "values", "writes", "finished")

    def __init__(self, key: dict[str, Any], hashed: str, names: Sequence[str]) -> None:
        self.key = key
        self.hashed = hashed
        self.values = tuple(key[n] for n in names) if all(n in key for n in names) else None
        self.writes: list[tuple[Table, Groups]] = []
        self.finished = False


class _Stopped(Exception):
    """Leaves the group's transaction (rolling it back) when a make was interrupted."""


class GroupRunner:
    """Runs a serial populate's makes in groups that commit together (see the module)."""

    def __init__(self, runner: Runner, size: int | None = None,
                 seconds: float | None = None) -> None:
        self.runner = runner
        self.connection: Connection = runner.connection
        self.size = int(size if size is not None else config["populate.batch_size"])
        self.seconds = float(seconds if seconds is not None
                             else config["populate.batch_seconds"])
        self.buffer = WriteBuffer(runner.table)
        self.fallbacks = 0
        target = runner.table._sa_table
        columns = [target.c[n] for n in runner.key_names]
        left: Any = columns[0] if len(columns) == 1 else sa.tuple_(*columns)
        self.done_among = sa.select(*columns).where(
            left.in_(sa.bindparam("keys", expanding=True)))

    # ---- the loop -----------------------------------------------------------------------
    def run(self, keys: Sequence[dict[str, Any]]) -> Generator[Result, None, None]:
        """(key, status, error) of every key, as the per-key path gives them."""
        _watch(self.connection)
        for start in range(0, len(keys), self.size):
            yield from self._chunk(keys[start:start + self.size])

    def _chunk(self, keys: Sequence[dict[str, Any]]) -> Iterator[Result]:
        runner = self.runner
        items: list[_Item] = []
        try:
            items, refused = self._reserve(keys)
            yield from refused
            pending = items
            while pending:
                if self.fallbacks >= STICKY_FALLBACKS:
                    item = pending[0]
                    pending = pending[1:]
                    status, error = runner.run_reserved(item.key, item.hashed)
                    item.finished = True
                    yield item.key, status, error
                    continue
                pending = yield from self._group(pending)
        finally:
            self._release([i for i in items if not i.finished])

    def _reserve(self, keys: Sequence[dict[str, Any]]) -> tuple[list[_Item], list[Result]]:
        """Reserve the keys (reserve_jobs): one INSERT for all; key by key if any is held."""
        from ..jobs import JobKeyCollision, key_hash

        runner, jobs = self.runner, self.runner.jobs
        names = runner.key_names
        if jobs is None:
            return [_Item(k, "", names) for k in keys], []
        items = [_Item(k, key_hash(k), names) for k in keys]
        with runner.turn():
            if jobs.reserve_all(runner.table_name, keys, [i.hashed for i in items]):
                return items, []
        held: list[_Item] = []
        refused: list[Result] = []
        for item in items:
            try:
                with runner.turn():
                    taken = jobs.reserve(runner.table_name, item.key, item.hashed)
            except JobKeyCollision as error:  # the row is another key's: leave it alone
                refused.append((item.key, ERROR, error))
                continue
            if taken:
                held.append(item)
            else:
                refused.append((item.key, SKIPPED, None))
        return held, refused

    def _release(self, items: list[_Item]) -> None:
        """Give back reservations of keys left without a result (an interrupt, an error
        raised by the caller)."""
        if self.runner.jobs is None:
            return
        for item in items:
            self.runner._give_back(item.key, item.hashed)

    def _group(self, pending: list[_Item]) -> Generator[Result, None, list[_Item]]:
        """Make keys of `pending` in one transaction until done, out of time or stopped;
        returns the keys still to do."""
        runner, connection = self.runner, self.connection
        made: list[_Item] = []
        done: list[_Item] = []
        stop: tuple[_Item, BaseException] | None = None
        flushing = False
        start = time.monotonic()
        position = 0
        try:
            with runner.turn(), connection.session(write=True, savepoints=False) as sa_conn:
                found = self._done(sa_conn, pending)
                for position, item in enumerate(pending):  # noqa: B007 (read after the loop)
                    if made and time.monotonic() - start > self.seconds:
                        break
                    if item.values is not None and item.values in found:
                        done.append(item)
                        continue
                    try:
                        self._make(item)
                    except BaseException as error:
                        stop = (item, error)
                        raise _Stopped from None
                    made.append(item)
                else:
                    position = len(pending)
                flushing = True
                self._flush(sa_conn, made, done)
        except _Stopped:
            pass
        except Exception as error:
            if not flushing:
                raise
            logger.info("%s: the group's flush failed (%s); writing key by key",
                        type(runner.table).__name__, error)
            yield from self._replay(made, done)
            return pending[position:]
        else:
            yield from self._finished(made, done)
            return pending[position:]
        # a make was interrupted: the transaction is rolled back, the keys before it commit
        assert stop is not None
        item, interruption = stop
        yield from self._flush_alone(made, done)
        if not isinstance(interruption, Exception):
            raise interruption
        if isinstance(interruption, NeedsClassic):
            self.fallbacks += 1
            logger.info("%s %s: %s; making it in its own transaction",
                        type(runner.table).__name__, item.key, interruption)
            status, result = runner.run_reserved(item.key, item.hashed)
        elif runner._transient(interruption):
            status, result = runner.run_reserved(item.key, item.hashed)
        else:
            status, result = runner.run_reserved(item.key, item.hashed, failed=interruption)
        item.finished = True
        yield item.key, status, result
        return pending[position + 1:]

    # ---- one key's make -----------------------------------------------------------------
    def _make(self, item: _Item) -> None:
        runner, connection, buffer = self.runner, self.connection, self.buffer
        buffer.writes = item.writes = []
        buffer.classic = False
        buffer.in_make = True
        connection.write_buffer = buffer
        try:
            with inserts_allowed(connection, runner.node):
                runner.make(dict(item.key), **runner.make_kwargs)
        except Exception as error:
            if buffer.classic and not isinstance(error, NeedsClassic):
                raise NeedsClassic(str(error)) from error  # the make wrapped our stop
            raise
        finally:
            buffer.in_make = False
            connection.write_buffer = None
        if buffer.classic:  # the make caught NeedsClassic and went on
            raise NeedsClassic(f"a grouped make of {buffer.target} ignored a stop")

    # ---- writing ------------------------------------------------------------------------
    def _done(self, sa_conn: Any, items: list[_Item]) -> set[tuple[Any, ...]]:
        """Key values of `items` the table holds already: one SELECT."""
        values = [i.values for i in items if i.values is not None]
        if not values:
            return set()
        if len(self.runner.key_names) == 1:
            params: list[Any] = [v[0] for v in values]
        else:
            params = values
        return {tuple(row) for row in sa_conn.execute(self.done_among, {"keys": params})}

    def _flush(self, sa_conn: Any, made: list[_Item], done: list[_Item]) -> None:
        """Every buffered row per table (in the order the makes first wrote the tables:
        masters before parts), then the job rows, in the caller's transaction."""
        connection = self.connection
        backend = connection.backend_impl
        tables: dict[Any, tuple[Table, dict[tuple[str, ...], list[tuple[Any, ...]]]]] = {}
        for item in made:
            for table, groups in item.writes:
                entry = tables.get(table._sa_table)
                if entry is None:
                    entry = tables[table._sa_table] = (table, {})
                for present, rows in groups:
                    entry[1].setdefault(tuple(present), []).extend(rows)
        size = None if backend.bulk_streams else int(config["insert.chunk_size"])
        for sa_table, (table, by_names) in tables.items():
            with connection.translating(table, "insert into"):
                for names, rows in by_names.items():
                    if not names:  # all defaults: INSERT ... DEFAULT VALUES, row by row
                        for _ in rows:
                            sa_conn.execute(sa.insert(sa_table))
                        continue
                    step = size or len(rows)
                    for begin in range(0, len(rows), step):
                        backend.insert_rows(sa_conn, sa_table, list(names),
                                            rows[begin:begin + step], mode="insert",
                                            key=table.primary_key)
        jobs = self.runner.jobs
        if jobs is not None:
            jobs.complete_all_in(sa_conn, self.runner.table_name,
                                 [i.hashed for i in (*made, *done)])

    def _finished(self, made: list[_Item], done: list[_Item]) -> Iterator[Result]:
        for item in made:
            item.finished = True
            yield item.key, SUCCESS, None
        for item in done:
            item.finished = True
            yield item.key, SKIPPED, None

    def _flush_alone(self, made: list[_Item], done: list[_Item]) -> Iterator[Result]:
        """Commit keys made before an interrupted one, in a transaction of their own."""
        if not made and not done:
            return
        runner = self.runner
        try:
            with runner.turn(), self.connection.session(write=True, savepoints=False) as c:
                self._flush(c, made, done)
        except Exception as error:
            logger.info("%s: the group's flush failed (%s); writing key by key",
                        type(runner.table).__name__, error)
            yield from self._replay(made, done)
            return
        yield from self._finished(made, done)

    def _replay(self, made: list[_Item], done: list[_Item]) -> Iterator[Result]:
        """Key by key, each in its own transaction with the done check; a key whose rows
        cannot be written runs its make the per-key way."""
        runner = self.runner
        for item in made:
            try:
                with runner.turn(), self.connection.session(write=True,
                                                            savepoints=False) as sa_conn:
                    if runner._is_done(sa_conn, item.key):
                        written = False
                    else:
                        self._flush(sa_conn, [item], [])
                        written = True
                    if not written:
                        runner._finish(sa_conn, item.hashed)
                status, error = (SUCCESS if written else SKIPPED), None
            except Exception as failure:
                logger.info("%s %s: its rows could not be written (%s); making it again",
                            type(runner.table).__name__, item.key, failure)
                status, error = runner.run_reserved(item.key, item.hashed)
            item.finished = True
            yield item.key, status, error
        for item in done:
            if runner.jobs is not None:
                with runner.turn(), self.connection.session(write=True) as sa_conn:
                    runner._finish(sa_conn, item.hashed)
            item.finished = True
            yield item.key, SKIPPED, None
