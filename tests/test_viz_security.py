"""The web app under hostile requests: no secret in the access log, no redirect off-site,
a bounded request body, and a 400 that says what was wrong for values no column can hold
(huge integers, inf, very long filters) on every backend, never a 500."""

from __future__ import annotations

import logging
import socket
import threading
import time
import types
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin, urlsplit

import pytest

import datajoint_sa as dj

pytest.importorskip("starlette", reason="the viz extra is not installed")
from starlette.testclient import TestClient  # noqa: E402

from datajoint_sa.viz import create_app  # noqa: E402
from datajoint_sa.viz.middleware import RedactSecrets, local_target, redact  # noqa: E402

from .test_viz import shared, sqlite_pipeline, standard_spec  # noqa: E402,F401

TOKEN = "s3cret-token-value"


def _token_app(tables: types.SimpleNamespace, connection: dj.Connection,
               monkeypatch: pytest.MonkeyPatch, **options: Any) -> Any:
    monkeypatch.setenv("VIZ_TEST_TOKEN", TOKEN)
    return create_app(standard_spec(tables.module_name,
                                    auth={"type": "token", "env": "VIZ_TEST_TOKEN"}),
                      connection=connection, **options)


# ---- the access log ---------------------------------------------------------------------------
def test_the_token_never_reaches_the_access_log(
        sqlite_pipeline: tuple[types.SimpleNamespace, dj.Connection],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    """A real uvicorn server with the command's log configuration: its access log line for
    `?token=...` shows `token=***`."""
    uvicorn = pytest.importorskip("uvicorn")
    from datajoint_sa.viz.middleware import uvicorn_log_config

    tables, connection = sqlite_pipeline
    app = _token_app(tables, connection, monkeypatch)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="info",
                            log_config=uvicorn_log_config())
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    caplog.set_level(logging.INFO, logger="uvicorn.access")
    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(self.format(record))

    keep = Keep()
    keep.addFilter(RedactSecrets())
    logging.getLogger("uvicorn.access").addHandler(keep)
    thread.start()
    try:
        deadline = time.monotonic() + 20
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.05)
        import http.client

        client = http.client.HTTPConnection("127.0.0.1", port, timeout=20)
        client.request("GET", f"/p/animals?x=1&token={TOKEN}")
        assert client.getresponse().status == 303
        client.close()
        deadline = time.monotonic() + 20  # the access line is written after the response
        while not any("/p/animals" in line for line in records) and \
                time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        logging.getLogger("uvicorn.access").removeHandler(keep)
    handlers = [h for h in logging.getLogger("uvicorn.access").handlers]
    assert all(any(isinstance(f, RedactSecrets) for f in h.filters) for h in handlers)
    logged = "\n".join(records + [caplog.text])
    assert "/p/animals?x=1&token=***" in logged
    assert TOKEN not in logged


def test_redact_hides_secret_parameters_only() -> None:
    assert redact('GET /p/a?token=abc&x=token%3D HTTP/1.1') == 'GET /p/a?token=***&x=token%3D HTTP/1.1'
    assert redact("/p/a?x=1&TOKEN=abc#frag") == "/p/a?x=1&TOKEN=***#frag"
    assert redact("/p/a?mytoken=abc") == "/p/a?mytoken=abc"
    record = logging.LogRecord("uvicorn.access", logging.INFO, "", 0, '%s - "%s %s"',
                               ("1.2.3.4", "GET", f"/p?token={TOKEN}"), None)
    RedactSecrets().filter(record)
    assert TOKEN not in record.getMessage()


# ---- the redirect after the token exchange ----------------------------------------------------
@pytest.mark.parametrize("path", ["//evil.example", "/\\evil.example", "///evil.example/x",
                                  "/%2F%2Fevil.example", "/p/animals"])
def test_the_token_exchange_redirects_only_within_the_site(
        sqlite_pipeline: tuple[types.SimpleNamespace, dj.Connection],  # noqa: F811
        monkeypatch: pytest.MonkeyPatch, path: str) -> None:
    tables, connection = sqlite_pipeline
    client = TestClient(_token_app(tables, connection, monkeypatch))
    response = client.get(f"{path}?token={TOKEN}&next=//evil.example", follow_redirects=False)
    assert response.status_code == 303
    location = response.headers["location"]
    assert location.startswith("/") and not location.startswith(("//", "/\\"))
    assert urlsplit(urljoin("http://testserver/a/b", location)).netloc == "testserver"
    assert TOKEN not in location
    for target in ("//evil.example", "/\\evil.example", "\\\\evil.example", "/ok",
                   "https://evil.example"):
        local = local_target(target)
        assert local.startswith("/") and not local.startswith(("//", "/\\"))


# ---- the request body -------------------------------------------------------------------------
def test_request_bodies_are_bounded(
        sqlite_pipeline: tuple[types.SimpleNamespace, dj.Connection]  # noqa: F811
        ) -> None:
    tables, connection = sqlite_pipeline
    client = TestClient(create_app(standard_spec(tables.module_name), connection=connection,
                                   forms=True, max_body=4096))
    csrf = client.app.state.viz.csrf  # type: ignore[attr-defined]
    big = {"animal": "300", "name": "x" * 10_000}
    response = client.post("/api/new/add", json=big, headers={"x-dj-csrf": csrf})
    assert response.status_code == 413 and "too large" in response.text

    def chunks() -> Iterator[bytes]:  # no Content-Length: a chunked body
        yield b'{"animal": "301", "name": "'
        for _ in range(100):
            yield b"y" * 1000
        yield b'"}'

    streamed = client.post("/api/new/add", content=chunks(),
                           headers={"x-dj-csrf": csrf, "content-type": "application/json"})
    assert streamed.status_code == 413
    assert len(tables.Animal & "animal >= 300") == 0
    small = client.post("/api/new/add", json={"animal": "302", "name": "ok", "species": "rat",
                                              "sex": "F", "born": "2024-05-01"},
                        headers={"x-dj-csrf": csrf})
    assert small.status_code == 200, small.text


# ---- values no column can hold: 400 with the reason, on every backend --------------------------
HOSTILE = [
    ("/api/animals/animals?f.animal=" + "9" * 40, "out of range"),
    ("/api/animals/animals?f.animal=>" + "9" * 25, "out of range"),
    ("/api/animals/animals?f.animal=-99999999999999999999..5", "out of range"),
    ("/api/animals/animals?f.weight=inf", "finite"),
    ("/api/animals/animals?f.weight=>-Infinity", "finite"),
    ("/api/animals/animals?f.weight=1e400", "finite"),
    ("/api/animals/animals?f.name=" + "a" * 5000, "too long"),
    ("/api/animals/animals?f.animal=" + "1" * 5000, "too long"),
    ("/api/animals/animals?page=" + "9" * 30, "page"),
    ("/api/animals/animals?size=" + "9" * 30, "size"),
    ("/api/animal/animal?k.animal=" + "9" * 30, "out of range"),
    ("/api/animal/animal?k.animal=1e999", "animal"),
    ("/api/animals/animals?f.born=9999999-01-01", "born"),
]


@pytest.mark.parametrize("url,reason", HOSTILE, ids=[str(i) for i in range(len(HOSTILE))])
def test_hostile_values_are_a_400_with_a_reason(shared: types.SimpleNamespace,  # noqa: F811
                                                url: str, reason: str) -> None:
    client = TestClient(create_app(standard_spec(shared.module_name),
                                   connection=shared.connection),
                        raise_server_exceptions=False)
    response = client.get(url)
    assert response.status_code == 400, (response.status_code, response.text)
    assert reason in response.json()["error"], response.text


def test_hostile_form_values_are_a_400(shared: types.SimpleNamespace) -> None:  # noqa: F811
    client = TestClient(create_app(standard_spec(shared.module_name),
                                   connection=shared.connection, forms=True),
                        raise_server_exceptions=False)
    csrf = client.app.state.viz.csrf  # type: ignore[attr-defined]
    good = {"animal": "400", "name": "n", "species": "rat", "sex": "F", "born": "2024-05-01"}
    for field, value, reason in [("animal", "9" * 30, "out of range"),
                                 ("weight", "inf", "finite"), ("weight", "-1e999", "finite"),
                                 ("animal", 10**40, "out of range")]:
        response = client.post("/api/new/add", json={**good, field: value},
                               headers={"x-dj-csrf": csrf})
        assert response.status_code == 400, (field, value, response.text)
        assert reason in response.json()["error"]
    assert len(shared.Animal & {"animal": 400}) == 0
