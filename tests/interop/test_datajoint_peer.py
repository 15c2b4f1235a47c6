"""Interoperability with the reference implementation, DataJoint 2.3.5, in both directions.

DataJoint runs as a peer in its own virtual environment (none of its code is in the project):
`nox -s interop` builds that environment and points `DJ_INTEROP_PYTHON` at its interpreter.
Without it these tests are skipped; the normal suite stays fast.

- DataJoint declares and fills a schema (blob, uuid, json, attach, raw bytes, a part, a
  lookup with contents, a populated computed table); datajoint_sa reads it through
  `dj.VirtualModule` alone: tiers, headings, values and queries.
- datajoint_sa declares and fills a schema; DataJoint reads it with its own VirtualModule
  (headings, decoded values, a join) and writes a row into it.

Known limits of DataJoint 2.3.5 on PostgreSQL (its own schemas included): it cannot insert or
fetch uuid values and cannot fetch attachments through psycopg2. The peer works around those
with plain SQL and says so in its output; the checks here do not depend on them. It refuses
semantic joins in a schema without its `~lineage` table, which datajoint_sa writes.
"""

from __future__ import annotations

import datetime
import json
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import datajoint_sa as dj

from ..conftest import BACKENDS, MYSQL_URL, POSTGRES_URL, unique_name

PEER_PYTHON = os.path.abspath(os.environ["DJ_INTEROP_PYTHON"]) \
    if os.environ.get("DJ_INTEROP_PYTHON") else ""
PEER = Path(__file__).with_name("peer.py")
TOKEN = uuid.UUID("12345678-1234-5678-1234-567812345678")
URLS = {"mysql": MYSQL_URL, "postgresql": POSTGRES_URL}

pytestmark = pytest.mark.skipif(
    not PEER_PYTHON, reason="needs DataJoint 2.3.5 as a peer: run `nox -s interop`")


@pytest.fixture(params=[b for b in ("mysql", "postgresql") if b in BACKENDS])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, dj.Connection]]:
    connection = dj.Connection(URLS[request.param])
    yield request.param, connection
    connection.close()


@pytest.fixture
def schema_name(server: tuple[str, dj.Connection]) -> Iterator[str]:
    """A unique schema name; the schema (whoever made it) is dropped afterwards."""
    name = unique_name("djpeer")
    yield name
    connection = server[1]
    if connection.in_transaction:
        connection.close()
    if name in dj.list_schemas(connection):
        dj.Schema(name, connection=connection, create_schema=False).drop(force=True)


def peer(action: str, url: str, schema: str, workdir: Path) -> dict[str, Any]:
    """Run the DataJoint side; its JSON answer."""
    u = sa.make_url(url)
    mysql = u.get_backend_name() in ("mysql", "mariadb")
    params = {"backend": "mysql" if mysql else "postgresql", "host": u.host or "127.0.0.1",
              "port": u.port or (3306 if mysql else 5432), "user": u.username or "",
              "password": u.password or "", "database": u.database or "", "schema": schema,
              "workdir": str(workdir)}
    result = subprocess.run([PEER_PYTHON, str(PEER), action, json.dumps(params)],
                            capture_output=True, text=True, timeout=300, cwd=workdir)
    assert result.returncode == 0, f"DataJoint peer failed:\n{result.stderr[-4000:]}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_datajoint_schema_is_read_and_queried_through_virtual_module(
        server: tuple[str, dj.Connection], schema_name: str, tmp_path: Path) -> None:
    backend, connection = server
    peer("write", URLS[backend], schema_name, tmp_path)
    vm = dj.VirtualModule("peer", schema_name, connection=connection)

    assert issubclass(vm.Subject, dj.Manual) and issubclass(vm.Rig, dj.Lookup)
    assert issubclass(vm.Stats, dj.Computed) and issubclass(vm.Session.Trial, dj.Part)
    assert vm.Subject.heading.table_comment == "experimental subjects"
    types = {a.name: a.type for a in vm.Session.heading.attributes}
    assert types == {"subject_id": "int32", "session": "int16", "rig": "varchar(16)",
                     "token": "uuid", "info": "json", "trace": "<blob>",
                     "raw": "longblob" if backend == "mysql" else "bytes",
                     "doc": "<attach>", "started": "datetime"}
    assert vm.Session.heading.primary_key == ["subject_id", "session"]
    assert vm.Session.heading["session"].comment == "session number"
    assert vm.Subject.heading["species"].default == '"mouse"'
    assert "-> Subject" in vm.Session.describe(printout=False)

    rows = {(r["subject_id"], r["session"]): r
            for r in vm.Session.fetch(as_dict=True, download_path=str(tmp_path / "dl"))}
    first, second = rows[(1, 1)], rows[(2, 1)]
    assert first["token"] == TOKEN and second["token"] is None
    assert first["info"] == {"a": [1, 2], "b": None} and second["info"] == []
    np.testing.assert_array_equal(first["trace"], np.arange(12.0).reshape(3, 4))
    np.testing.assert_array_equal(second["trace"], np.eye(2))
    assert first["raw"] == b"raw\x00bytes" and second["raw"] == b""
    assert Path(first["doc"]).name == "notes.txt"
    assert Path(first["doc"]).read_text() == "hello from DataJoint"
    assert second["doc"] is None
    assert isinstance(first["started"], datetime.datetime)

    assert sorted(vm.Stats.fetch("mean")) == [0.5, 5.5]
    assert len(vm.Rig()) == 2 and len(vm.Session.Trial & {"subject_id": 1}) == 3
    joined = (vm.Session * vm.Subject) & "weight > 10"
    assert joined.fetch("KEY") == [{"subject_id": 1, "session": 1}]
    # and datajoint_sa writes into DataJoint's tables
    vm.Subject.insert1(dict(subject_id=3, species="written by datajoint_sa"))
    vm.Session.insert1(dict(subject_id=3, session=1, rig="r1", token=uuid.uuid4(),
                            info={"x": 1}, trace=np.ones(3), raw=b"x"))
    assert len(vm.Session()) == 3


def declare_ours(connection: dj.Connection, name: str, workdir: Path) -> Any:
    schema = dj.Schema(name, connection=connection)

    @schema
    class Subject(dj.Manual):
        definition = """
        # experimental subjects
        subject_id : int32           # subject id
        ---
        species = "mouse" : varchar(32)
        weight = null : float64
        born = null : date
        """

    @schema
    class Rig(dj.Lookup):
        definition = """
        rig : varchar(16)
        ---
        room : varchar(16)
        """
        contents = [("r1", "a"), ("r2", "b")]

    @schema
    class Session(dj.Manual):
        definition = """
        -> Subject
        session : int16             # session number
        ---
        -> Rig
        token = null : uuid
        info : json
        trace : <blob>
        raw : bytes
        doc = null : <attach>
        flag = 0 : uint8
        started = CURRENT_TIMESTAMP : datetime
        """

        class Trial(dj.Part):
            definition = """
            -> master
            trial : int32
            ---
            value : float32
            """

    @schema
    class Stats(dj.Computed):
        definition = """
        -> Session
        ---
        mean : float64
        """

    attachment = workdir / "ours.txt"
    attachment.write_text("hello from datajoint_sa")
    Subject.insert([dict(subject_id=1, weight=20.5), dict(subject_id=2, species="rat")])
    Session.insert1(dict(subject_id=1, session=1, rig="r1", token=TOKEN, info={"a": [1, 2]},
                         trace=np.arange(12.0).reshape(3, 4), raw=b"raw\x00",
                         doc=str(attachment)))
    Session.Trial.insert([dict(subject_id=1, session=1, trial=t, value=t * 0.5)
                          for t in range(3)])
    Stats.insert1(dict(subject_id=1, session=1, mean=5.5), allow_direct_insert=True)
    return Subject


def test_datajoint_reads_and_writes_a_schema_declared_here(
        server: tuple[str, dj.Connection], schema_name: str, tmp_path: Path) -> None:
    backend, connection = server
    subject = declare_ours(connection, schema_name, tmp_path)
    found = peer("read", URLS[backend], schema_name, tmp_path)

    assert found["classes"] == ["Rig", "Session", "Stats", "Subject"]
    tables = found["tables"]
    assert set(tables) == {"Rig", "Session", "Session.Trial", "Stats", "Subject"}
    assert tables["Session.Trial"]["table_name"] == "session__trial"
    assert tables["Stats"]["table_name"] == "__stats"
    session = tables["Session"]
    assert session["primary_key"] == ["subject_id", "session"]
    assert "BlobCodec" in session["codecs"]["trace"]
    assert "AttachCodec" in session["codecs"]["doc"]
    (row,) = session["rows"]
    assert row["token"] == {"uuid": str(TOKEN)}
    assert row["info"] == {"a": [1, 2]}
    assert row["trace"] == {"ndarray": np.arange(12.0).reshape(3, 4).tolist(),
                            "dtype": "float64", "shape": [3, 4]}
    assert row["raw"] == {"bytes": b"raw\x00".hex()}
    assert row["doc"] == {"attachment": "ours.txt", "content": "hello from datajoint_sa"}
    assert row["flag"] == 0 and row["rig"] == "r1"
    assert [r["value"] for r in tables["Session.Trial"]["rows"]] == [0.0, 0.5, 1.0]
    assert tables["Stats"]["rows"] == [{"mean": 5.5, "session": 1, "subject_id": 1}]
    assert tables["Rig"]["rows"] == [{"rig": "r1", "room": "a"}, {"rig": "r2", "room": "b"}]
    assert found["join"] == [[1, 1]]
    # our ~lineage table lets DataJoint check the join semantically (on PostgreSQL it
    # refuses the join without one)
    assert found["semantic_join"] is True
    # the row DataJoint wrote is read here
    assert (subject & {"subject_id": 99}).fetch1("species") == "written by DataJoint"
