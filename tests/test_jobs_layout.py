"""A job table of an older layout (this package's first version, DataJoint 0.14) is brought up
to date in place on first use: columns added, the `pending` status allowed, keys re-hashed,
error rows kept so that failed keys stay failed."""

from __future__ import annotations

import hashlib
from typing import Any

import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa import declare
from datajoint_sa.jobs import JOBS_TABLE, key_hash

from .conftest import on_backends
from .test_jobs import _pipeline as _jobs_pipeline

OLD_LAYOUT = """
# job reservations and errors of populate
table_name : varchar(255)
key_hash : char(32)
---
status : enum('reserved','error','ignore')
key = null : blob
error_message = "" : varchar(2047)
error_stack = null : mediumblob
user = "" : varchar(255)
host = "" : varchar(255)
pid = 0 : int unsigned
connection_id = 0 : bigint unsigned
timestamp = CURRENT_TIMESTAMP : timestamp
"""


def _old_hash(key: dict[str, Any]) -> str:
    """The first version's hash: md5 of the key's values only."""
    return hashlib.md5("".join(str(v) for v in key.values()).encode()).hexdigest()


def _create_old_job_table(schema: dj.Schema) -> sa.Table:
    backend = schema.connection.backend_impl
    spec = declare.parse(OLD_LAYOUT, schema=schema.database, name=JOBS_TABLE, context={},
                         display_name=f"{schema.database}.{JOBS_TABLE}")
    table = declare.compile(spec, sa.MetaData(naming_convention=declare.NAMING_CONVENTION), backend)
    codec = spec.heading["key"].codec
    with schema.connection.session(write=True) as sa_conn:
        table.create(sa_conn)
        backend.after_create(sa_conn, table)
        sa_conn.execute(sa.insert(table), [
            {"table_name": "__doubled", "key_hash": _old_hash({"item": 2}), "status": "error",
             "key": codec.encode({"item": 2}), "error_message": "ValueError: item 2 is broken"},
            {"table_name": "__doubled", "key_hash": _old_hash({"item": 4}), "status": "ignore",
             "key": codec.encode({"item": 4}), "error_message": ""},
            {"table_name": "__doubled", "key_hash": "0" * 32, "status": "error", "key": None,
             "error_message": "a row of an old writer without its key"},
        ])
    return table


def _pipeline(schema: dj.Schema, calls: list[int]) -> tuple[Any, Any]:
    """Item (0..5) and Doubled, as the job table's own tests declare them."""
    return _jobs_pipeline(schema, calls, set())


def test_old_job_table_is_upgraded_in_place(schema: dj.Schema) -> None:
    calls: list[int] = []
    _create_old_job_table(schema)
    _, Doubled = _pipeline(schema, calls)

    jobs = schema.jobs  # first use: the layout is migrated
    names = set(jobs.heading.names)
    assert {"priority", "attempts", "heartbeat"} <= names
    rows = {r["key_hash"]: r for r in jobs.fetch(as_dict=True)}
    assert len(rows) == 3  # nothing lost
    assert rows[key_hash({"item": 2})]["status"] == "error"
    assert rows[key_hash({"item": 2})]["error_message"] == "ValueError: item 2 is broken"
    assert rows[key_hash({"item": 4})]["status"] == "ignore"
    assert rows["0" * 32]["key"] is None  # kept under its old hash
    assert rows[key_hash({"item": 2})]["priority"] == 5

    # the queue works on the migrated table: pending rows, reservations, completion
    Doubled.populate(reserve_jobs=True)
    assert sorted(calls) == [0, 1, 3, 5]  # the failed and the ignored key stay out
    assert len(jobs & {"status": "error"}) == 2
    jobs.enqueue("__doubled", [{"item": 9}])  # the widened status values
    assert (jobs & {"status": "pending"}).fetch("key") == [{"item": 9}]
    # a second use finds the current layout and changes nothing
    assert len(dj.Schema(schema.database, connection=schema.connection).jobs) == 4


def test_upgrade_keeps_a_hash_collision_as_one_row(schema: dj.Schema) -> None:
    table = _create_old_job_table(schema)
    codec = declare.parse(OLD_LAYOUT, schema=schema.database, name=JOBS_TABLE, context={},
                          display_name="jobs").heading["key"].codec
    with schema.connection.session(write=True) as sa_conn:
        # the same key under the current hash already (written by a newer worker)
        sa_conn.execute(sa.insert(table), [
            {"table_name": "__doubled", "key_hash": key_hash({"item": 2}), "status": "error",
             "key": codec.encode({"item": 2}), "error_message": "newer"}])
    _pipeline(schema, [])
    rows = (schema.jobs & {"key_hash": key_hash({"item": 2})}).fetch(as_dict=True)
    assert len(rows) == 1
    assert len(schema.jobs) == 3


CLASSIC_014_DDL = """
CREATE TABLE `{db}`.`~jobs` (
`table_name` varchar(255) NOT NULL COMMENT "className of the table",
`key_hash` char(32) NOT NULL COMMENT "key hash",
`status` enum('reserved','error','ignore') NOT NULL COMMENT "if tuple is missing, the job is available",
`key` longblob DEFAULT NULL COMMENT "structure containing the key",
`error_message` varchar(2047) NOT NULL DEFAULT "" COMMENT "error message returned if failed",
`error_stack` mediumblob DEFAULT NULL COMMENT "error stack if failed",
`user` varchar(255) NOT NULL DEFAULT "" COMMENT "database user",
`host` varchar(255) NOT NULL DEFAULT "" COMMENT "system hostname",
`pid` int unsigned NOT NULL DEFAULT 0 COMMENT "system process id",
`connection_id` bigint unsigned NOT NULL DEFAULT 0 COMMENT "connection id",
`timestamp` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT "automatic timestamp",
PRIMARY KEY (`table_name`,`key_hash`)
) ENGINE=InnoDB COMMENT "job reservation table for `{db}`"
"""


@on_backends("mysql")
def test_classic_014_job_table_on_mysql_is_upgraded(schema: dj.Schema) -> None:
    """A lab database's job table as DataJoint 0.14 created it (MySQL only: 0.14 ran there)."""
    codec = declare.parse(OLD_LAYOUT, schema=schema.database, name=JOBS_TABLE, context={},
                          display_name="jobs").heading["key"].codec
    with schema.connection.session(write=True) as sa_conn:
        sa_conn.execute(sa.text(CLASSIC_014_DDL.format(db=schema.database)))
        sa_conn.execute(sa.text(
            f"INSERT INTO `{schema.database}`.`~jobs` (table_name, key_hash, status, `key`,"
            " error_message) VALUES ('__doubled', :h, 'error', :k, 'broken')"),
            {"h": _old_hash({"item": 3}), "k": codec.encode({"item": 3})})
    calls: list[int] = []
    _, Doubled = _pipeline(schema, calls)
    Doubled.populate(reserve_jobs=True)
    assert sorted(calls) == [0, 1, 2, 4, 5]
    jobs = schema.jobs
    jobs.enqueue("__doubled", [{"item": 9}])
    assert (jobs & {"status": "pending"}).fetch("key") == [{"item": 9}]
    assert (jobs & {"status": "error"}).fetch1("key_hash") == key_hash({"item": 3})
