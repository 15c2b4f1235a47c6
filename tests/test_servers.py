"""The suite's throwaway servers (tests/servers.py): used only where no server answers."""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from . import servers
from .conftest import BACKENDS, MYSQL_URL, POSTGRES_URL

SERVER_BACKENDS = [b for b in ("postgresql", "mysql") if b in BACKENDS]
RUNNING = {"postgresql": POSTGRES_URL, "mysql": MYSQL_URL}


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
def test_a_server_that_answers_is_used_as_it_is(backend: str) -> None:
    assert servers.ensure_server(backend, RUNNING[backend]) == RUNNING[backend]


@pytest.mark.parametrize("backend", SERVER_BACKENDS)
def test_throwaway_server_starts_serves_and_is_removed(backend: str) -> None:
    server = servers.STARTERS[backend]()
    try:
        assert servers.answers(server.url)
        engine = sa.create_engine(server.url, poolclass=sa.pool.NullPool)
        with engine.begin() as conn:  # the `test` database exists and takes writes
            conn.execute(sa.text("CREATE TABLE probe (x INTEGER PRIMARY KEY)"))
            conn.execute(sa.text("INSERT INTO probe VALUES (1)"))
            assert conn.execute(sa.text("SELECT count(*) FROM probe")).scalar() == 1
        engine.dispose()
    finally:
        server.stop()
    assert not server.folder.exists()
    assert not servers.answers(server.url, timeout=1)


@pytest.mark.parametrize("backend", ["postgresql", "mysql"])
def test_missing_programs_name_the_packages(backend: str,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(servers.shutil, "which", lambda name: None)
    monkeypatch.setattr(servers.glob, "glob", lambda pattern: [])
    monkeypatch.setattr(servers.os.path, "exists", lambda path: False)
    with pytest.raises(servers.ServerUnavailable, match="apt-get install"):
        servers.STARTERS[backend]()
