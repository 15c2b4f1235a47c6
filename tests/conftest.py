"""One fixture parametrizes every backend-facing test over SQLite, PostgreSQL and MySQL.

`DJ_TEST_BACKENDS` (comma-separated) narrows the run, e.g. for the per-backend nox sessions.
A server that does not answer fails its tests loudly; it is never skipped.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator

import pytest

import datajoint_sa as dj

POSTGRES_URL = os.environ.get("DJ_TEST_POSTGRES_URL",
                              "postgresql+psycopg://postgres@127.0.0.1:5432/test")
MYSQL_URL = os.environ.get("DJ_TEST_MYSQL_URL", "mysql+pymysql://root:@127.0.0.1:3306/test")
ALL_BACKENDS = ("sqlite", "postgresql", "mysql")
BACKENDS = [b.strip() for b in os.environ.get("DJ_TEST_BACKENDS", ",".join(ALL_BACKENDS))
            .split(",") if b.strip()]


def backend_url(backend: str, tmp_path_factory: pytest.TempPathFactory) -> str:
    if backend == "sqlite":
        return f"sqlite:///{tmp_path_factory.mktemp('sqlite') / 'test.db'}"
    return {"postgresql": POSTGRES_URL, "mysql": MYSQL_URL}[backend]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


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


@pytest.fixture(autouse=True)
def _no_prompts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any unexpected confirmation prompt fails the test instead of hanging it."""
    def refuse(prompt: str = "") -> str:
        raise AssertionError(f"unexpected prompt: {prompt}")

    monkeypatch.setattr("builtins.input", refuse)
