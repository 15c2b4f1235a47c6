"""Reading a schema in DataJoint 0.14's layout, which many labs still run on MySQL.

The schema is made here with plain SQL, as 0.14 left it: a latin1 database, native column
types with no `:type:` marker, serialized blobs in plain `longblob` columns (0.14 wrote
`mYm`/`dj0` blobs, zlib-compressed behind `ZL123`), `:uuid:` and `:attach:` markers, and the
hidden `~log`, `~jobs` and `~external_*` tables. The blob bytes are the reference vectors the
reference implementation produced (tests/data/blob-vectors). Runs on MySQL only: 0.14 had no
other backend. It needs no DataJoint peer, so it is part of the normal suite.
"""

from __future__ import annotations

import json
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import datajoint_sa as dj

from ..conftest import BACKENDS, MYSQL_URL, unique_name

VECTORS = Path(__file__).resolve().parents[1] / "data" / "blob-vectors"
TOKEN = uuid.UUID("0a1b2c3d-4e5f-6071-8293-a4b5c6d7e8f9")

pytestmark = pytest.mark.skipif("mysql" not in BACKENDS, reason="DataJoint 0.14 ran on MySQL")

DDL = """
CREATE TABLE `{db}`.`subject` (
  `subject_id` int NOT NULL COMMENT 'subject id',
  `species` varchar(30) NOT NULL DEFAULT 'mouse' COMMENT '',
  `nickname` varchar(20) DEFAULT NULL COMMENT 'what the lab calls it',
  `weight` double DEFAULT NULL COMMENT '',
  PRIMARY KEY (`subject_id`)
) ENGINE=InnoDB COMMENT='experimental subjects';
CREATE TABLE `{db}`.`#rig` (
  `rig` char(4) NOT NULL COMMENT '',
  `kind` enum('ephys','imaging') NOT NULL DEFAULT 'ephys' COMMENT '',
  PRIMARY KEY (`rig`)
) ENGINE=InnoDB COMMENT='';
CREATE TABLE `{db}`.`_recording` (
  `subject_id` int NOT NULL COMMENT 'subject id',
  `rec_id` smallint unsigned NOT NULL COMMENT 'recording number',
  `rig` char(4) NOT NULL COMMENT '',
  `trace` longblob NOT NULL COMMENT 'the signal',
  `extra` longblob DEFAULT NULL COMMENT '',
  `token` binary(16) NOT NULL COMMENT ':uuid:recording id',
  `doc` longblob DEFAULT NULL COMMENT ':attach:lab notes',
  `rec_time` datetime DEFAULT CURRENT_TIMESTAMP COMMENT '',
  PRIMARY KEY (`subject_id`, `rec_id`),
  KEY `rig` (`rig`),
  CONSTRAINT `_recording_ibfk_1` FOREIGN KEY (`subject_id`) REFERENCES `{db}`.`subject`
    (`subject_id`) ON UPDATE CASCADE,
  CONSTRAINT `_recording_ibfk_2` FOREIGN KEY (`rig`) REFERENCES `{db}`.`#rig` (`rig`)
    ON UPDATE CASCADE
) ENGINE=InnoDB COMMENT='raw recordings';
CREATE TABLE `{db}`.`__filtered` (
  `subject_id` int NOT NULL COMMENT 'subject id',
  `rec_id` smallint unsigned NOT NULL COMMENT 'recording number',
  `cutoff` float NOT NULL COMMENT 'Hz',
  PRIMARY KEY (`subject_id`, `rec_id`),
  CONSTRAINT `__filtered_ibfk_1` FOREIGN KEY (`subject_id`, `rec_id`) REFERENCES
    `{db}`.`_recording` (`subject_id`, `rec_id`) ON UPDATE CASCADE
) ENGINE=InnoDB COMMENT='';
CREATE TABLE `{db}`.`__filtered__channel` (
  `subject_id` int NOT NULL COMMENT 'subject id',
  `rec_id` smallint unsigned NOT NULL COMMENT 'recording number',
  `channel` tinyint unsigned NOT NULL COMMENT '',
  `samples` longblob NOT NULL COMMENT '',
  PRIMARY KEY (`subject_id`, `rec_id`, `channel`),
  CONSTRAINT `__filtered__channel_ibfk_1` FOREIGN KEY (`subject_id`, `rec_id`) REFERENCES
    `{db}`.`__filtered` (`subject_id`, `rec_id`) ON UPDATE CASCADE
) ENGINE=InnoDB COMMENT='';
CREATE TABLE `{db}`.`~log` (
  `timestamp` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  `version` varchar(12) NOT NULL COMMENT 'datajoint version',
  `user` varchar(255) NOT NULL,
  `host` varchar(255) NOT NULL DEFAULT '',
  `event` varchar(255) NOT NULL DEFAULT '',
  PRIMARY KEY (`timestamp`)
) ENGINE=InnoDB COMMENT='event logging table for `{db}`';
CREATE TABLE `{db}`.`~external_raw` (
  `hash` binary(16) NOT NULL COMMENT ':uuid:hash of contents',
  `size` bigint unsigned NOT NULL,
  PRIMARY KEY (`hash`)
) ENGINE=InnoDB COMMENT='external storage tracking';
"""


def vector(name: str) -> tuple[bytes, Any]:
    """(blob bytes written by the reference implementation, the value they hold)."""
    manifest = {m["file"]: m for m in json.loads((VECTORS / "manifest.json").read_text())
                if "file" in m}
    value = eval(manifest[name]["expr"], {"np": np})  # the manifest's own expressions
    return (VECTORS / name).read_bytes(), value


@pytest.fixture
def legacy() -> Iterator[tuple[dj.Connection, str]]:
    connection = dj.Connection(MYSQL_URL)
    name = unique_name("dj014")
    engine = connection.engine
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}` CHARACTER SET latin1 "
                             "COLLATE latin1_swedish_ci")
        for statement in DDL.format(db=name).split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
    yield connection, name
    connection.close()
    with engine.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    engine.dispose()


def fill(connection: dj.Connection, name: str) -> dict[str, Any]:
    arange, arange_value = vector("arange_int64.blob")  # mYm
    big, big_value = vector("float64_big.z.blob")  # ZL123 + mYm
    text, text_value = vector("string.blob")  # dj0
    with connection.engine.begin() as conn:
        def insert(table: str, row: dict[str, Any]) -> None:
            columns = ", ".join(f"`{c}`" for c in row)
            values = ", ".join(f":{c}" for c in row)
            conn.execute(sa.text(f"INSERT INTO `{name}`.`{table}` ({columns}) VALUES "
                                 f"({values})"), row)

        insert("subject", {"subject_id": 1, "nickname": "Zoë", "weight": 21.5})
        insert("subject", {"subject_id": 2, "species": "rat"})
        insert("#rig", {"rig": "R1"})
        insert("_recording", {"subject_id": 1, "rec_id": 1, "rig": "R1", "trace": arange,
                              "extra": b"\x00\x01 not a blob", "token": TOKEN.bytes,
                              "doc": b"notes.txt\x00field notes"})
        insert("_recording", {"subject_id": 1, "rec_id": 2, "rig": "R1", "trace": big,
                              "extra": text, "token": uuid.uuid4().bytes})
        insert("__filtered", {"subject_id": 1, "rec_id": 1, "cutoff": 300.0})
        insert("__filtered__channel", {"subject_id": 1, "rec_id": 1, "channel": 0,
                                       "samples": arange})
    return {"arange": arange_value, "big": big_value, "text": text_value}


def test_read_datajoint_014_layout_mysql_only(legacy: tuple[dj.Connection, str],
                                              tmp_path: Path) -> None:
    connection, name = legacy
    values = fill(connection, name)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        vm = dj.VirtualModule("legacy", name, connection=connection)
    # hidden tables are not classes; nothing else was left out
    assert {n for n, v in vars(vm).items() if isinstance(v, type)} == {
        "Subject", "Rig", "Recording", "Filtered"}
    assert not [w for w in caught if "left out" in str(w.message)]

    assert issubclass(vm.Rig, dj.Lookup) and issubclass(vm.Recording, dj.Imported)
    assert issubclass(vm.Filtered, dj.Computed) and issubclass(vm.Filtered.Channel, dj.Part)
    assert vm.Subject.heading.table_comment == "experimental subjects"
    recording = {a.name: a.type for a in vm.Recording.heading.attributes}
    assert recording == {"subject_id": "int", "rec_id": "smallint unsigned", "rig": "char(4)",
                         "trace": "longblob", "extra": "longblob", "token": "uuid",
                         "doc": "<attach>", "rec_time": "datetime"}
    assert vm.Recording.heading["doc"].comment == "lab notes"
    assert vm.Rig.heading["kind"].type == "enum('ephys','imaging')"
    assert vm.Subject.heading["species"].default == '"mouse"'
    assert vm.Filtered.Channel.heading["channel"].type == "tinyint unsigned"
    described = vm.Recording.describe(printout=False)
    assert "-> Subject" in described and "-> Rig" in described

    first, second = vm.Recording.fetch(as_dict=True, order_by="rec_id",
                                       download_path=str(tmp_path))
    np.testing.assert_array_equal(first["trace"], values["arange"])  # mYm
    np.testing.assert_array_equal(second["trace"], values["big"])  # ZL123-compressed
    assert second["extra"] == values["text"]  # dj0
    assert first["extra"] == b"\x00\x01 not a blob"  # no blob header: the bytes as stored
    assert first["token"] == TOKEN
    assert Path(first["doc"]).read_text() == "field notes" and second["doc"] is None
    np.testing.assert_array_equal(vm.Filtered.Channel.fetch1("samples"), values["arange"])

    # latin1 text, queries and writes through the reflected classes
    assert (vm.Subject & {"subject_id": 1}).fetch1("nickname") == "Zoë"
    assert len(vm.Recording * vm.Subject & "weight > 20") == 2
    vm.Subject.insert1(dict(subject_id=3, nickname="Chloé"))
    assert (vm.Subject & {"subject_id": 3}).fetch1("species") == "mouse"
