"""The web app's session auth modes without a browser.

- `database`: users log in with their own database account. On PostgreSQL and MariaDB the
  test creates a SELECT-only role/user (dropped at the end): it can read through the app but
  not insert or delete through the forms, its own connection is open on the server while it
  is logged in and gone after logout or idle expiry. SQLite has no users: the mode is refused.
- `oidc`: the code flow against tests/oidc_provider.py, run on a free port; the browser
  drives the same in test_viz_browser_forms.py.
"""

from __future__ import annotations

import re
import sys
import time
import types
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa

import datajoint_sa as dj

pytest.importorskip("starlette", reason="the viz extra is not installed")
pytest.importorskip("authlib", reason="the viz extra is not installed")
from starlette.testclient import TestClient  # noqa: E402

from datajoint_sa.viz import create_app  # noqa: E402
from datajoint_sa.viz.auth import SESSION_COOKIE  # noqa: E402
from datajoint_sa.viz.spec import SpecError, load_spec  # noqa: E402

from .conftest import unique_name  # noqa: E402
from .test_viz import declare, fill  # noqa: E402
from .test_viz_forms import forms_spec, page_config  # noqa: E402


@pytest.fixture
def pipeline(schema: dj.Schema) -> Iterator[types.SimpleNamespace]:
    tables = declare(schema)
    fill(tables)
    name = unique_name("vizauth")
    module = types.ModuleType(name)
    module.__dict__.update(vars(tables), schema=schema)
    sys.modules[name] = module
    tables.module_name = name
    tables.schema = schema
    yield tables
    sys.modules.pop(name, None)


def login_token(client: TestClient) -> str:
    page = client.get("/login")
    assert page.status_code == 200
    found = re.search(r'name=csrf value="([^"]+)"', page.text)
    assert found, page.text
    return found.group(1)


def log_in(client: TestClient, user: str, password: str = "", next_: str = "/p/edit") -> Any:
    return client.post("/login", data={"csrf": login_token(client), "user": user,
                                       "password": password, "next": next_},
                       follow_redirects=False)


# ---- per-user database login ----------------------------------------------------------------
class ReadOnlyUser:
    """A database account that may only SELECT in one schema; created and dropped here."""

    def __init__(self, connection: dj.Connection, database: str) -> None:
        self.name = unique_name("djro")
        self.password = "ro-" + unique_name("pw")
        self.backend = connection.backend
        self.engine = sa.create_engine(connection.url, isolation_level="AUTOCOMMIT")
        namespace = connection.backend_impl.table_identity(database, "x")[0]
        if self.backend == "postgresql":
            self._run(f"CREATE ROLE {self.name} LOGIN PASSWORD '{self.password}'",
                      f'GRANT USAGE ON SCHEMA "{namespace}" TO {self.name}',
                      f'GRANT SELECT ON ALL TABLES IN SCHEMA "{namespace}" TO {self.name}')
        else:
            self._run(f"CREATE USER '{self.name}'@'%' IDENTIFIED BY '{self.password}'",
                      f"GRANT SELECT ON `{namespace}`.* TO '{self.name}'@'%'")

    def _run(self, *statements: str) -> None:
        with self.engine.connect() as sa_conn:
            for statement in statements:
                sa_conn.execute(sa.text(statement))

    def sessions(self, expect: int | None = None) -> int:
        """This user's connections open on the server (a closed one may linger a moment in
        the server's list: with `expect`, wait up to 10 s for that number)."""
        deadline = time.monotonic() + 10
        while True:
            found = self._sessions()
            if expect is None or found == expect or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def _sessions(self) -> int:
        query = ("SELECT count(*) FROM pg_stat_activity WHERE usename = :u"
                 if self.backend == "postgresql" else
                 "SELECT count(*) FROM information_schema.processlist WHERE user = :u")
        with self.engine.connect() as sa_conn:
            return int(sa_conn.execute(sa.text(query), {"u": self.name}).scalar() or 0)

    def drop(self) -> None:
        if self.backend == "postgresql":
            self._run(f"DROP OWNED BY {self.name}", f"DROP ROLE IF EXISTS {self.name}")
        else:
            self._run(f"DROP USER IF EXISTS '{self.name}'@'%'")
        self.engine.dispose()


def test_database_login_applies_the_databases_privileges(
        pipeline: types.SimpleNamespace, connection: dj.Connection, backend: str) -> None:
    spec = {**forms_spec(pipeline.module_name, ["insert", "update", "delete"]),
            "auth": {"type": "database", "idle_minutes": 5}}
    if backend == "sqlite":  # a file has no users: the mode is refused, saying so
        with pytest.raises(SpecError, match="SQLite has no users"):
            create_app(spec, connection=connection)
        return
    reader = ReadOnlyUser(connection, pipeline.schema.database)
    app_connection = connection
    try:
        # users log in to the address's database: on MariaDB it is only a default, and one
        # the reader may not open, so the app's address names none there
        app_connection = dj.Connection(connection.url.set(database="")) \
            if backend == "mysql" else connection
        app = create_app(spec, connection=app_connection)
        store = app.state.sessions
        client = TestClient(app)
        page = client.get("/p/edit", follow_redirects=False)
        assert page.status_code == 303 and page.headers["location"] == "/login?next=%2Fp%2Fedit"
        assert client.get("/api/edit/animals").status_code == 401

        # the login form is same-site and token-checked; bad accounts are refused
        refused = client.post("/login", data={"user": reader.name, "password": reader.password})
        assert refused.status_code == 403 and len(store) == 0
        wrong = log_in(client, "no_such_user_" + reader.name[-6:], "nope")
        assert wrong.status_code == 401 and "login failed" in wrong.text
        if backend != "postgresql":  # the test server trusts local PostgreSQL logins
            assert log_in(client, reader.name, "wrong password").status_code == 401

        # a login cannot be turned into a redirect to another site, nor be oversized
        away = log_in(client, reader.name, reader.password, next_="//evil.example/x")
        assert away.status_code == 303 and away.headers["location"] == "/evil.example/x"
        store.close_all()
        assert reader.sessions(expect=0) == 0
        huge = client.post("/login", content=b"user=" + b"x" * 70_000,
                           headers={"content-type": "application/x-www-form-urlencoded"})
        assert huge.status_code == 413

        done = log_in(client, reader.name, reader.password)
        assert done.status_code == 303 and done.headers["location"] == "/p/edit", done.text
        cookie = done.headers["set-cookie"]
        assert cookie.startswith(SESSION_COOKIE) and "httponly" in cookie.lower()
        assert "samesite=lax" in cookie.lower() and reader.password not in cookie
        assert reader.sessions() == 1  # their own connection, opened at login
        config = page_config(client)
        assert config["user"] == reader.name and config["csrf"] != app.state.viz.csrf
        rows = client.get("/api/edit/animals?size=5").json()["rows"]
        assert len(rows) == 5  # SELECT is granted: the user reads

        csrf = config["csrf"]
        row = {"animal": "500", "name": "x", "species": "rat", "sex": "F", "born": "2024-01-01"}
        denied = client.post("/api/edit/animal", json=row, headers={"x-dj-csrf": csrf})
        assert denied.status_code == 400 and "Traceback" not in denied.text, denied.text
        assert len(pipeline.Animal & {"animal": 500}) == 0
        plan = client.post("/api/edit/animal/delete", json={"key": {"animal": "1"}},
                           headers={"x-dj-csrf": csrf})
        assert plan.status_code == 400 and len(pipeline.Animal & {"animal": 1}) == 1
        assert reader.sessions() == 1  # every request ran on that one connection

        # logout closes the connection; the session is gone
        assert client.post("/logout", data={"csrf": "stale"}).status_code == 403
        out = client.post("/logout", data={"csrf": csrf}, follow_redirects=False)
        assert out.status_code == 200 and "You are logged out" in out.text
        assert len(store) == 0 and reader.sessions(expect=0) == 0
        assert client.get("/api/edit/animals").status_code == 401

        # an idle session expires the same way, closed by the sweeper without any request
        store.idle_seconds = 0.5
        assert log_in(client, reader.name, reader.password).status_code == 303
        assert reader.sessions(expect=0) == 0 and len(store) == 0
        assert client.get("/api/edit/animals").status_code == 401
        store.idle_seconds = 300

        # the owner's account may write: the same form inserts under their login
        owner = connection.url
        assert log_in(client, owner.username or "", owner.password or "").status_code == 303
        csrf = page_config(client)["csrf"]
        written = client.post("/api/edit/animal", json=row, headers={"x-dj-csrf": csrf})
        assert written.status_code == 200, written.text
        assert len(pipeline.Animal & {"animal": 500}) == 1
        store.close_all()
    finally:
        if app_connection is not connection:
            app_connection.close()
        reader.drop()


def test_session_auth_specs_are_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    pages = [{"name": "a", "components": [{"type": "text", "content": "hi"}]}]
    with pytest.raises(SpecError) as info:
        load_spec({"module": "m", "pages": pages, "auth": {"type": "oidc", "issuer": "ftp://x",
                                                            "secure": "yes", "password": "x"}})
    text = str(info.value)
    for needed in ("needs `client_id:`", "needs `client_secret_env:`", "http(s) address",
                   "secure must be true or false", "unknown key 'password'"):
        assert needed in text, text
    spec = load_spec({"module": "m", "pages": pages, "auth": {
        "type": "oidc", "issuer": "https://id.example", "client_id": "app",
        "client_secret_env": "VIZ_OIDC_SECRET", "allow": "a@x.org, b@x.org", "secure": True}})
    assert spec.auth is not None and spec.auth.allow == ["a@x.org", "b@x.org"]
    assert spec.auth.secure is True and spec.auth.idle_minutes == 30
    from datajoint_sa.viz.app import read_secrets

    monkeypatch.delenv("VIZ_OIDC_SECRET", raising=False)
    with pytest.raises(SpecError, match="VIZ_OIDC_SECRET is not set"):
        read_secrets(spec.auth)
    database = load_spec({"module": "m", "pages": pages, "auth": {
        "type": "database", "secret_env": "VIZ_SESSION_KEY"}}).auth
    monkeypatch.setenv("VIZ_SESSION_KEY", "k" * 32)
    assert read_secrets(database) == {"secret": "k" * 32}


# ---- OpenID Connect -------------------------------------------------------------------------
@pytest.fixture
def sqlite_tables(tmp_path: Any) -> Iterator[tuple[str, dj.Connection]]:
    connection = dj.Connection(f"sqlite:///{tmp_path / 'oidc.db'}")
    schema = dj.Schema(unique_name("vizoidc"), connection=connection)
    tables = declare(schema)
    fill(tables)
    name = unique_name("vizoidcmod")
    module = types.ModuleType(name)
    module.__dict__.update(vars(tables))
    sys.modules[name] = module
    yield name, connection
    sys.modules.pop(name, None)
    connection.close()


def test_oidc_code_flow(sqlite_tables: tuple[str, dj.Connection],
                        monkeypatch: pytest.MonkeyPatch) -> None:
    import httpx

    from .oidc_provider import provider

    module, connection = sqlite_tables
    monkeypatch.setenv("VIZ_OIDC_SECRET", "provider-secret")
    with provider() as idp:
        spec = {**forms_spec(module), "auth": {
            "type": "oidc", "issuer": idp.issuer, "client_id": "dj-viz",
            "client_secret_env": "VIZ_OIDC_SECRET", "allow": ["alice@example.org"]}}
        app = create_app(spec, connection=connection)
        client = TestClient(app, base_url="http://127.0.0.1:8000")

        def through_provider() -> Any:
            start = client.get("/p/edit", follow_redirects=False)
            assert start.headers["location"] == "/login?next=%2Fp%2Fedit"
            to_provider = client.get(start.headers["location"], follow_redirects=False)
            assert to_provider.status_code == 302
            assert to_provider.headers["location"].startswith(idp.issuer + "/authorize?")
            back = httpx.get(to_provider.headers["location"], follow_redirects=False)
            assert back.headers["location"].startswith("http://127.0.0.1:8000/auth/callback?")
            return client.get(back.headers["location"], follow_redirects=False)

        done = through_provider()
        assert done.status_code == 303 and done.headers["location"] == "/p/edit", done.text
        assert page_config(client)["user"] == "alice@example.org"
        assert client.get("/api/edit/animals?size=3").status_code == 200
        # a replayed callback (its state is used up) is refused
        assert client.get("/auth/callback?code=x&state=y").status_code == 403
        out = client.post("/logout", data={"csrf": page_config(client)["csrf"]},
                          follow_redirects=False)
        assert out.status_code == 200 and len(app.state.sessions) == 0
        assert client.get("/api/edit/animals").status_code == 401

        idp.user = {"sub": "u-2", "email": "mallory@example.org"}  # not in `allow`
        refused = through_provider()
        assert refused.status_code == 403 and "may not use this app" in refused.text
        assert client.get("/api/edit/animals").status_code == 401
        assert idp.token_requests == 2
