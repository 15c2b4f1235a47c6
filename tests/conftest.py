"""One fixture parametrizes every backend-facing test over SQLite, PostgreSQL and MySQL.

`DJ_TEST_BACKENDS` (comma-separated) narrows the run, e.g. for the per-backend nox sessions.
A server that does not answer at its test URL is replaced by a throwaway one the suite starts
itself (tests/servers.py) when the server programs are installed; otherwise its tests fail
loudly, naming what to install. They are never skipped.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Callable, Iterator

import pytest

import datajoint_sa as dj
from datajoint_sa import statements

from . import servers

# every statement cached during the tests is compared with SQLAlchemy's own compile over the
# real tables (production compiles a shape once and checks its text's table references)
statements.VERIFY = True

ALL_BACKENDS = ("sqlite", "postgresql", "mysql")
BACKENDS = [b.strip() for b in os.environ.get("DJ_TEST_BACKENDS", ",".join(ALL_BACKENDS))
            .split(",") if b.strip()]
SERVER_URLS = {"postgresql": ("DJ_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test"),
               "mysql": ("DJ_TEST_MYSQL_URL", "mysql+pymysql://root:@127.0.0.1:3306/test")}


def _servers_for_this_run() -> None:
    """In the process that runs the session (not in an xdist worker, which inherits the
    environment): a server that does not answer at its test URL is replaced by a throwaway
    one (tests/servers.py); if none can be started, its tests fail with what to install."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    for backend, (variable, default) in SERVER_URLS.items():
        if backend not in BACKENDS or os.environ.get(f"{variable}_ERROR"):
            continue
        try:
            os.environ[variable] = servers.ensure_server(
                backend, os.environ.get(variable, default))
        except (servers.ServerUnavailable, OSError, subprocess.SubprocessError) as error:
            os.environ[f"{variable}_ERROR"] = str(error)


_servers_for_this_run()
POSTGRES_URL = os.environ.get(*SERVER_URLS["postgresql"])
MYSQL_URL = os.environ.get(*SERVER_URLS["mysql"])


def backend_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
    error = os.environ.get(f"{SERVER_URLS[backend][0]}_ERROR")
    if error:
        pytest.fail(f"no {backend} server for the tests: {error}", pytrace=False)
    return {"postgresql": POSTGRES_URL, "mysql": MYSQL_URL}[backend]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def on_backends(*names: str) -> pytest.MarkDecorator:
    """A test of what exists on some backends only (a MySQL-only legacy layout, a second
    session writing meanwhile): generated for those of this run's backends alone, so it is
    not a skip on the others (a test skipped in CI cannot fail)."""
    return pytest.mark.parametrize("backend", [b for b in BACKENDS if b in names])


@pytest.fixture
def db_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    return backend_url(backend, tmp_path_factory)


@pytest.fixture
def connection(db_url: str) -> Iterator[dj.Connection]:
    connection = dj.Connection(db_url)
    yield connection
    connection.close()


def unique_name(prefix: str = "djtest") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_schema(connection: dj.Connection) -> Iterator[Callable[..., dj.Schema]]:
    """Factory of uniquely named schemas, all dropped (with their tables) afterwards."""
    created: list[dj.Schema] = []

    def make(name: str | None = None, **kwargs: object) -> dj.Schema:
        schema = dj.Schema(name or unique_name(), connection=connection, **kwargs)  # type: ignore[arg-type]
        created.append(schema)
        return schema

    yield make
    if connection.in_transaction:
        connection.close()
    for schema in reversed(created):
        if schema.is_activated:
            schema.drop(force=True)


@pytest.fixture
def schema(make_schema: Callable[..., dj.Schema]) -> dj.Schema:
    return make_schema()


@pytest.fixture(scope="module", params=BACKENDS)
def module_backend(request: pytest.FixtureRequest) -> str:
    """The backend of a module-scoped pipeline (one pipeline per backend per module)."""
    return str(request.param)


@pytest.fixture(scope="module")
def module_connection(module_backend: str, tmp_path_factory: pytest.TempPathFactory
                      ) -> Iterator[dj.Connection]:
    connection = dj.Connection(backend_url(module_backend, tmp_path_factory))
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def module_schema(module_connection: dj.Connection) -> Iterator[dj.Schema]:
    """One uniquely named schema for a test module that declares and fills its pipeline once
    (in its own module-scoped fixture) and runs many read-only tests on it; dropped after."""
    schema = dj.Schema(unique_name(), connection=module_connection)
    yield schema
    if module_connection.in_transaction:
        module_connection.close()
    if schema.is_activated:
        schema.drop(force=True)


@pytest.fixture(autouse=True)
def _no_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any unexpected confirmation prompt fails the test instead of hanging it."""
    def refuse(prompt: str = "") -> str:
        raise AssertionError(f"unexpected prompt: {prompt}")

    monkeypatch.setattr("builtins.input", refuse)
