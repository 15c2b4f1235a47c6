"""Connection, configuration and transactions."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

import datajoint_sa as dj


def test_backend_detection(connection: dj.Connection, backend: str) -> None:
    assert connection.backend == backend
    assert connection.engine.dialect.name in (backend, "mariadb")


def test_password_is_hidden() -> None:
    connection = dj.Connection("postgresql+psycopg://user:s3cret@127.0.0.1:1/db")
    assert "s3cret" not in repr(connection)
    with pytest.raises(dj.DataJointError) as info:
        connection.sa  # noqa: B018  (nothing listens on port 1)
    assert "s3cret" not in str(info.value)


def test_transactions_commit_roll_back_and_nest(schema: dj.Schema) -> None:
    @schema
    class Item(dj.Manual):
        definition = """
        item : int32
        """

    connection = schema.connection
    with connection.transaction:
        Item.insert1((1,))
        assert connection.in_transaction
    assert not connection.in_transaction
    with pytest.raises(RuntimeError):
        with connection.transaction:
            Item.insert1((2,))
            raise RuntimeError("boom")
    assert Item.fetch("item").tolist() == [1]
    with connection.transaction:
        Item.insert1((3,))
        with pytest.raises(dj.errors.DuplicateError):
            with connection.transaction:
                Item.insert1((4,))
                Item.insert1((1,))
        Item.insert1((5,))
    assert sorted(Item.fetch("item").tolist()) == [1, 3, 5]


def test_sqlite_pragmas(tmp_path) -> None:  # type: ignore[no-untyped-def]
    connection = dj.Connection(f"sqlite:///{tmp_path / 'x.db'}")
    rows = {name: connection.query(sa.text(f"PRAGMA {name}"))[0][0]
            for name in ("foreign_keys", "journal_mode", "busy_timeout")}
    assert rows["foreign_keys"] == 1
    assert rows["journal_mode"] == "wal"
    assert rows["busy_timeout"] > 0
    connection.close()


def test_mysql_runs_strict_with_utf8mb4_only_on_mysql(connection: dj.Connection) -> None:
    if connection.backend != "mysql":
        return
    mode = connection.query(sa.text("SELECT @@SESSION.sql_mode"))[0][0]
    charset = connection.query(sa.text("SELECT @@character_set_client"))[0][0]
    assert "STRICT_ALL_TABLES" in mode
    assert charset == "utf8mb4"


def test_config_file_and_environment(tmp_path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "datajoint.json"
    path.write_text(json.dumps({"database.url": "sqlite:///from_file.db", "display.limit": 3}))
    config = dj.settings.Config()
    config.load(path)
    monkeypatch.delenv("DJ_DATABASE_URL", raising=False)
    assert config["database.url"] == "sqlite:///from_file.db"
    assert config["display.limit"] == 3
    monkeypatch.setenv("DJ_DATABASE_URL", "sqlite:///from_env.db")
    assert config["database.url"] == "sqlite:///from_env.db"
    config.save(tmp_path / "copy.json")
    assert json.loads((tmp_path / "copy.json").read_text())["display.limit"] == 3
    with pytest.raises(dj.DataJointError):
        config.load(tmp_path / "missing.json")


def test_default_url_is_sqlite(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("DJ_DATABASE_URL", raising=False)
    assert dj.settings.Config()["database.url"] == "sqlite:///datajoint.db"


def test_shared_connection(tmp_path) -> None:  # type: ignore[no-untyped-def]
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    first = dj.conn(url)
    assert dj.conn() is first
    second = dj.conn(url, reset=True)
    assert second is not first
    second.close()
