"""DataJoint 0.14's external stores, read as they are: `~external_<store>` tables and their
hash-addressed files, for `blob@store`, `attach@store` and `filepath@store`.

The database and the files are made here with plain SQL and plain file writes, in 0.14's
layout: a column of an external type is `binary(16)` holding a UUID (the MD5 of the
packed blob; of the attachment's name, a NUL byte and its content; or of a filepath's
path relative to the store), marked `:blob@store:` (...) in its comment, with a foreign key
to `~external_<store>`, which keeps the size, the attachment's name or the relative
filepath and its content's MD5. Blob and attachment files live at
`{location}/{database}/{h[0:2]}/{h[2:4]}/{h}` (attachments with `.{name}` appended), with
0.14's default subfolding (2, 2); filepath files at `{location}/{relative path}`.
MySQL only, as 0.14 was.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import datajoint_sa as dj

from ..conftest import BACKENDS, MYSQL_URL, unique_name
from .test_legacy_014 import vector

pytestmark = pytest.mark.skipif("mysql" not in BACKENDS, reason="DataJoint 0.14 ran on MySQL")

DDL = """
CREATE TABLE `{db}`.`~external_raw` (
  `hash` binary(16) NOT NULL COMMENT ':uuid:hash of contents (blob), of filename + contents (attach), or relative filepath (filepath)',
  `size` bigint unsigned NOT NULL COMMENT 'size of object in bytes',
  `attachment_name` varchar(255) DEFAULT NULL COMMENT 'the filename of an attachment',
  `filepath` varchar(1000) DEFAULT NULL COMMENT 'relative filepath or attachment filename',
  `contents_hash` binary(16) DEFAULT NULL COMMENT ':uuid:used for the filepath datatype',
  `timestamp` timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP COMMENT 'automatic timestamp',
  PRIMARY KEY (`hash`)
) ENGINE=InnoDB COMMENT='external storage tracking';
CREATE TABLE `{db}`.`scan` (
  `scan_id` int NOT NULL COMMENT '',
  `movie` binary(16) NOT NULL COMMENT ':blob@raw:motion-corrected movie',
  `notes` binary(16) DEFAULT NULL COMMENT ':attach@raw:',
  `raw_file` binary(16) DEFAULT NULL COMMENT ':filepath@raw:the acquisition file',
  PRIMARY KEY (`scan_id`),
  CONSTRAINT `scan_ibfk_1` FOREIGN KEY (`movie`) REFERENCES `{db}`.`~external_raw` (`hash`)
    ON UPDATE RESTRICT ON DELETE RESTRICT,
  CONSTRAINT `scan_ibfk_2` FOREIGN KEY (`notes`) REFERENCES `{db}`.`~external_raw` (`hash`)
    ON UPDATE RESTRICT ON DELETE RESTRICT,
  CONSTRAINT `scan_ibfk_3` FOREIGN KEY (`raw_file`) REFERENCES `{db}`.`~external_raw` (`hash`)
    ON UPDATE RESTRICT ON DELETE RESTRICT
) ENGINE=InnoDB COMMENT='';
"""


def md5_uuid(*parts: bytes) -> uuid.UUID:
    digest = hashlib.md5()
    for part in parts:
        digest.update(part)
    return uuid.UUID(bytes=digest.digest())


def hashed_path(location: Path, database: str, key: uuid.UUID, suffix: str = "") -> Path:
    h = key.hex
    return location / database / h[:2] / h[2:4] / (h + suffix)


@pytest.fixture
def legacy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch
           ) -> Iterator[tuple[dj.Connection, str, dict[str, Any]]]:
    connection = dj.Connection(MYSQL_URL)
    name = unique_name("dj014x")
    location, stage = tmp_path / "store", tmp_path / "stage"
    monkeypatch.setitem(dj.config, "stores", {"raw": {
        "protocol": "file", "location": str(location), "stage": str(stage)}})
    with connection.engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE `{name}`")
        for statement in DDL.format(db=name).split(";"):
            if statement.strip():
                conn.exec_driver_sql(statement)
    data = fill(connection, name, location)
    yield connection, name, data
    connection.close()
    with connection.engine.begin() as conn:
        conn.exec_driver_sql(f"DROP DATABASE IF EXISTS `{name}`")
    connection.engine.dispose()


def fill(connection: dj.Connection, name: str, location: Path) -> dict[str, Any]:
    """Two scans as 0.14 left them: blobs (one shared), an attachment, a filepath."""
    movie, movie_value = vector("float64_big.z.blob")
    other, other_value = vector("arange_int64.blob")
    notes = b"imaging notes\n"
    relative = "sub1/session1/scan.tif"
    tif = bytes(range(256)) * 40
    external: list[dict[str, Any]] = []
    files: list[tuple[Path, bytes]] = []
    movie_key, other_key = md5_uuid(movie), md5_uuid(other)
    for key, blob in ((movie_key, movie), (other_key, other)):
        files.append((hashed_path(location, name, key), blob))
        external.append({"hash": key.bytes, "size": len(blob)})
    notes_key = md5_uuid(b"notes.txt\0", notes)
    files.append((hashed_path(location, name, notes_key, ".notes.txt"), notes))
    external.append({"hash": notes_key.bytes, "size": len(notes),
                     "attachment_name": "notes.txt"})
    file_key = md5_uuid(relative.encode())
    files.append((location / relative, tif))
    external.append({"hash": file_key.bytes, "size": len(tif), "filepath": relative,
                     "contents_hash": md5_uuid(tif).bytes})
    for path, content in files:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
    with connection.engine.begin() as conn:
        for row in external:
            row = {"attachment_name": None, "filepath": None, "contents_hash": None, **row}
            conn.execute(sa.text(
                f"INSERT INTO `{name}`.`~external_raw` (hash, size, attachment_name, "
                "filepath, contents_hash) VALUES (:hash, :size, :attachment_name, :filepath, "
                ":contents_hash)"), row)
        conn.execute(sa.text(f"INSERT INTO `{name}`.`scan` VALUES (:s, :m, :n, :f)"), [
            {"s": 1, "m": movie_key.bytes, "n": notes_key.bytes, "f": file_key.bytes},
            {"s": 2, "m": other_key.bytes, "n": None, "f": None},
            {"s": 3, "m": movie_key.bytes, "n": None, "f": None}])
    return {"movie": movie_value, "other": other_value, "notes": notes, "tif": tif,
            "relative": relative}


def test_read_014_external_blob_attach_and_filepath(
        legacy: tuple[dj.Connection, str, dict[str, Any]], tmp_path: Path) -> None:
    connection, name, data = legacy
    vm = dj.VirtualModule("legacy_ext", name, connection=connection)
    assert {n for n, v in vars(vm).items() if isinstance(v, type)} == {"Scan"}
    rows = vm.Scan.fetch(as_dict=True, order_by="scan_id", download_path=tmp_path / "dl")
    np.testing.assert_array_equal(rows[0]["movie"], data["movie"])
    np.testing.assert_array_equal(rows[1]["movie"], data["other"])
    np.testing.assert_array_equal(rows[2]["movie"], data["movie"])  # the shared object
    assert Path(rows[0]["notes"]).name == "notes.txt"
    assert Path(rows[0]["notes"]).read_bytes() == data["notes"]
    assert Path(rows[0]["raw_file"]).read_bytes() == data["tif"]
    assert rows[0]["raw_file"].replace("\\", "/").endswith(data["relative"])
    assert rows[1]["notes"] is None and rows[1]["raw_file"] is None
    movie = (vm.Scan & {"scan_id": 2}).fetch1("movie")
    np.testing.assert_array_equal(movie, data["other"])


def test_014_external_file_missing_or_changed(
        legacy: tuple[dj.Connection, str, dict[str, Any]], tmp_path: Path) -> None:
    connection, name, data = legacy
    location = Path(dj.config["stores"]["raw"]["location"])
    (location / data["relative"]).write_bytes(b"changed")
    vm = dj.VirtualModule("legacy_ext2", name, connection=connection)
    with pytest.raises(dj.DataJointError, match="raw_file"):
        (vm.Scan & {"scan_id": 1}).fetch1("raw_file", download_path=tmp_path)
    for path in (location / name).rglob("*"):
        if path.is_file():
            path.unlink()
    with pytest.raises(dj.DataJointError, match="missing"):
        (vm.Scan & {"scan_id": 2}).fetch1("movie")
