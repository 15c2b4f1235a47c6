"""Classic DataJoint's configuration and connection calls: dj.config as a context manager,
its own keys and files, the server keys, dj.conn(host, user, password), Connection.query,
is_connected, and close() inside a transaction."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path

import pytest
import sqlalchemy as sa

import datajoint_sa as dj
from datajoint_sa.settings import Config


@pytest.fixture
def fresh(monkeypatch: pytest.MonkeyPatch) -> Config:
    for name in ("DJ_DATABASE_URL", "DJ_HOST", "DJ_USER", "DJ_PASS", "DJ_PORT"):
        monkeypatch.delenv(name, raising=False)
    return Config()


def test_config_as_context_manager_restores_also_on_error() -> None:
    before = dj.config["safemode"]
    with dj.config(safemode=not before, display__limit=3) as cfg:
        assert cfg is dj.config
        assert dj.config["safemode"] is (not before) and dj.config["display.limit"] == 3
    assert dj.config["safemode"] is before and dj.config["display.limit"] == 12
    with pytest.raises(RuntimeError), dj.config(safemode=not before, custom={"x": 1}):
        raise RuntimeError("boom")
    assert dj.config["safemode"] is before and dj.config["custom"] == {}


def test_membership_and_keys_of_our_own(fresh: Config, tmp_path: Path) -> None:
    assert "safemode" in fresh and "database.host" in fresh and "custom" in fresh
    assert "no.such.key" not in fresh
    fresh["custom"] = {"database.prefix": "lab_", "root_data_dir": ["/data"]}
    fresh["my.own"] = 5
    assert "my.own" in fresh
    fresh.save(tmp_path / "saved.json")
    again = Config()
    again.load(tmp_path / "saved.json")
    assert again["custom"]["database.prefix"] == "lab_" and again["my.own"] == 5


def test_classic_server_keys_make_a_mysql_url(fresh: Config) -> None:
    assert fresh["database.url"] == "sqlite:///datajoint.db"
    fresh["database.host"] = "db.lab.org"
    fresh["database.user"] = "alice"
    fresh["database.password"] = "s3cret"
    url = sa.make_url(fresh["database.url"])
    assert (url.drivername, url.host, url.port, url.username, url.password) == (
        "mysql+pymysql", "db.lab.org", None, "alice", "s3cret")
    fresh["database.port"] = 3307
    assert sa.make_url(fresh["database.url"]).port == 3307
    fresh["database.backend"] = "postgresql"
    assert sa.make_url(fresh["database.url"]).drivername == "postgresql+psycopg"
    assert "s3cret" not in repr(fresh)
    fresh["database.url"] = "sqlite:///explicit.db"  # an explicit URL wins
    assert fresh["database.url"] == "sqlite:///explicit.db"
    fresh["database.backend"] = "oracle"
    del fresh["database.url"]
    with pytest.raises(dj.DataJointError, match="database.backend"):
        fresh["database.url"]  # noqa: B018


def test_host_with_port_and_environment(fresh: Config, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJ_HOST", "envhost:3310")
    monkeypatch.setenv("DJ_USER", "bob")
    url = sa.make_url(fresh["database.url"])
    assert (url.host, url.port, url.username) == ("envhost", 3310, "bob")
    monkeypatch.setenv("DJ_DATABASE_URL", "sqlite:///env.db")  # the URL variable wins
    assert fresh["database.url"] == "sqlite:///env.db"
    fresh["database.host"] = "codehost"  # and code beats the environment
    assert sa.make_url(fresh["database.url"]).host == "codehost"


def test_classic_local_conf_file_and_precedence(fresh: Config, tmp_path: Path) -> None:
    (tmp_path / "dj_local_conf.json").write_text(json.dumps({
        "database.host": "classic.host", "database.user": "carol", "display.limit": 5,
        "custom": {"imaging_root_data_dir": "/data"}, "fetch_format": "array"}))
    assert [p.name for p in fresh.load_default_files(tmp_path)] == ["dj_local_conf.json"]
    assert sa.make_url(fresh["database.url"]).host == "classic.host"
    assert fresh["custom"]["imaging_root_data_dir"] == "/data"
    assert fresh["fetch_format"] == "array"  # a classic key we do not use is kept
    # datajoint.json is read after the classic file: its values win
    (tmp_path / "datajoint.json").write_text(json.dumps({
        "database": {"url": "sqlite:///ours.db"}, "display": {"limit": 7}}))
    again = Config()
    assert len(again.load_default_files(tmp_path)) == 2
    assert again["database.url"] == "sqlite:///ours.db" and again["display.limit"] == 7


def test_config_read_at_import(tmp_path: Path) -> None:
    """The files are read when datajoint_sa is imported, in a fresh interpreter."""
    import subprocess
    import sys

    (tmp_path / "dj_local_conf.json").write_text(json.dumps({"database.host": "h1",
                                                             "custom": {"k": 1}}))
    env = {k: v for k, v in os.environ.items() if not k.startswith("DJ_")}
    out = subprocess.run(
        [sys.executable, "-c", "import datajoint_sa as dj; print(dj.config['database.url'], "
         "dj.config['custom']['k'])"],
        cwd=tmp_path, env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["mysql+pymysql://h1", "1"]


def test_conn_classic_signature(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from datajoint_sa import connection as module

    monkeypatch.setattr(module, "_shared", None)
    url = f"sqlite:///{tmp_path / 'a.db'}"
    first = dj.conn(url)
    assert dj.conn() is first and dj.conn(reset=True) is not first
    with dj.config(database__port=None, database__backend="mysql"):
        made = module._wanted_url("db.lab.org:3307", "dave", "pw")
    assert made is not None
    assert (made.drivername, made.host, made.port, made.username, made.password) == (
        "mysql+pymysql", "db.lab.org", 3307, "dave", "pw")
    with pytest.raises(dj.DataJointError, match="inside the URL"):
        dj.conn(url, "someone")
    dj.conn().close()


def test_query_with_classic_placeholders(schema: dj.Schema) -> None:
    @schema
    class Item(dj.Manual):
        definition = """
        item : int32
        ---
        word : varchar(20)
        """

    Item.insert([(1, "a:b"), (2, "50%"), (3, "c")])
    connection = schema.connection
    table = Item.full_table_name
    cursor = connection.query(f"SELECT item, word FROM {table} WHERE item >= %s ORDER BY item",
                              args=(2,))
    assert cursor.fetchone() == (2, "50%")
    assert cursor.fetchall() == [(3, "c")]
    assert cursor.fetchone() is None
    rows = connection.query(
        f"SELECT item, word FROM {table} WHERE word LIKE %(pattern)s OR word = 'a:b' "
        "ORDER BY item", {"pattern": "%0%"}, as_dict=True).fetchall()
    assert rows == [{"item": 1, "word": "a:b"}, {"item": 2, "word": "50%"}]
    assert [r for r in connection.query(f"SELECT item FROM {table} WHERE word LIKE '5%%'")
            ] == [(2,)]  # %% is a percent, as in PyMySQL
    connection.query(f"UPDATE {table} SET word = %s WHERE item = %s", ("z", 3))
    assert (Item & {"item": 3}).fetch1("word") == "z"  # committed by its own transaction
    with pytest.raises(dj.DataJointError, match="placeholders"):
        connection.query(f"SELECT * FROM {table} WHERE item = %s AND word = %s", (1,))
    with pytest.raises(dj.DataJointError):
        connection.query("SELECT * FROM no_such_table_here")


def test_is_connected(connection: dj.Connection) -> None:
    assert connection.is_connected is True
    broken = dj.Connection("postgresql+psycopg://nobody@127.0.0.1:1/none")
    assert broken.is_connected is False


def test_close_inside_a_transaction_leaves_nothing_behind(
        make_schema: Callable[..., dj.Schema], db_url: str) -> None:
    schema = make_schema()

    @schema
    class Item(dj.Manual):
        definition = """
        item : int32
        """

    Item.insert1((1,))
    connection = schema.connection
    with pytest.raises(dj.DataJointError, match="closed inside a transaction"):
        with connection.transaction:
            Item.insert1((2,))
            with connection.transaction:  # a savepoint
                Item.insert1((3,))
                connection.close()
    assert not connection.in_transaction
    # the same connection is usable again, outside any transaction
    Item.insert1((4,))
    assert not connection.in_transaction
    # and another connection can write at once: no lock or open transaction is left
    other = dj.Connection(db_url)
    try:
        table = Item.full_table_name
        other.query(f"INSERT INTO {table} VALUES (%s)", (5,))
        assert sorted(r[0] for r in other.query(f"SELECT item FROM {table}")) == [1, 4, 5]
    finally:
        other.close()
    # an error raised after close() propagates as itself
    with pytest.raises(RuntimeError), connection.transaction:
        Item.insert1((6,))
        connection.close()
        raise RuntimeError("after close")
    assert sorted(Item.fetch("item").tolist()) == [1, 4, 5]


def test_fetch_and_fetch1_download_path_classic_forms(
        schema: dj.Schema, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Attachments in the table and in a store land in download_path, whichever form the
    classic fetch call takes."""
    monkeypatch.setitem(dj.config, "stores",
                        {"files": {"protocol": "file", "location": str(tmp_path / "store")}})

    @schema
    class Report(dj.Manual):
        definition = """
        report : int32
        ---
        inline : attach
        stored : attach@files
        """

    source = tmp_path / "src"
    source.mkdir()
    (source / "a.txt").write_text("inline")
    (source / "b.txt").write_text("stored")
    Report.insert1({"report": 1, "inline": source / "a.txt", "stored": source / "b.txt"})
    out = tmp_path / "out"
    row = (Report & {"report": 1}).fetch1(download_path=str(out))
    assert Path(row["inline"]).read_text() == "inline" and Path(row["inline"]).parent == out
    assert Path(row["stored"]).read_text() == "stored" and Path(row["stored"]).parent == out
    keys, files = Report.fetch("KEY", "stored", download_path=out / "again")
    assert keys == [{"report": 1}] and Path(files[0]).read_text() == "stored"
    frame = Report.fetch(format="frame", download_path=out / "frame")
    assert Path(frame.loc[1, "inline"]).read_text() == "inline"
    inline, stored = (Report & "report = 1").fetch1("inline", "stored", download_path=out)
    assert (Path(inline).name, Path(stored).name) == ("a.txt", "b.txt")


def test_bad_port_refused_when_set(fresh: Config) -> None:
    """A port that is not a number is refused where it is set (classic's validator), not
    later when a connection is made; the setting keeps its value."""
    before = fresh["database.port"]
    with pytest.raises(dj.DataJointError, match="harbor"):
        fresh["database.port"] = "harbor"
    assert fresh["database.port"] == before
    fresh["database.port"] = "3307"
    fresh["database.port"] = 3308
    assert fresh["database.port"] == 3308
