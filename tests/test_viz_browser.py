"""The example app (examples/neuro/app.yaml) driven in a real headless browser.

Debian's Chromium (/usr/bin/chromium) through Playwright; Playwright never downloads a
browser of its own here. The tests skip only when /usr/bin/chromium is absent (a developer
machine without it); CI installs it. The app runs on SQLite, filled by the neuro example
itself, in a uvicorn server on a free port of 127.0.0.1. Screenshots go to each test's
temporary folder.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import datajoint_sa as dj

CHROMIUM = Path("/usr/bin/chromium")
ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "examples" / "neuro" / "app.yaml"
N_SUBJECTS, N_SESSIONS = 6, 2  # 12 sessions: two pages of the spec's 10
BROWSER_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking",
                "--disable-component-update", "--disable-sync"]

# CI installs Chromium, so there a missing browser fails the tests instead of skipping them
pytestmark = pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"),
                                reason="browser tests need Debian's chromium at "
                                       "/usr/bin/chromium (apt-get install chromium)")


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The example app on a freshly filled SQLite database, served on 127.0.0.1."""
    import uvicorn

    from datajoint_sa.viz import create_app
    from datajoint_sa.viz.app import LOOPBACK_HOSTS

    folder = tmp_path_factory.mktemp("neuro")
    url = f"sqlite:///{folder / 'neuro.db'}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("DJ_DATABASE_URL", None)
    filled = subprocess.run(
        [sys.executable, "-m", "examples.neuro", "--url", url, "--data-root",
         str(folder / "data"), "--subjects", str(N_SUBJECTS), "--sessions", str(N_SESSIONS),
         "--duration", "2"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert filled.returncode == 0, filled.stdout + filled.stderr
    connection = dj.Connection(url)
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    app = create_app(SPEC, connection=connection, forms=True,
                     allowed_hosts=list(LOOPBACK_HOSTS))  # as the command line serves it
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "the server did not start"
        time.sleep(0.05)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)
    connection.close()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM),
            headless=True, args=BROWSER_ARGS, viewport={"width": 1280, "height": 900})
        context.set_default_timeout(20_000)
        yield context
        context.close()


@pytest.fixture
def page(browser_context: Any) -> Iterator[Any]:
    page = browser_context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    page.close()
    assert not errors, f"JavaScript errors: {errors}"


def expect(locator: Any) -> Any:
    """Playwright's auto-waiting assertions (they run under the app's CSP, unlike
    wait_for_function, which evaluates a string)."""
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(locator)


def example_tables() -> Any:
    from examples.neuro import pipeline

    return pipeline


def shown_keys(page: Any, component: str) -> list[tuple[str, int]]:
    cells = page.eval_on_selector_all(
        f"#c-{component} tr.dj-row",
        "rows => rows.map(r => [r.children[0].textContent, r.children[1].textContent])")
    return [(subject, int(session)) for subject, session in cells]


def test_first_page_time(app_url: str, page: Any) -> None:
    """The example app's first page, cold (a fresh browser profile: this test runs first):
    the time until every component has shown its data is printed, not asserted (the
    machine may be shared)."""
    page.goto(app_url + "/")
    page.wait_for_selector("body[data-ready=true]")
    ready = page.evaluate("window.djReadyAt")
    html, loaded = page.evaluate("[performance.getEntriesByType('navigation')[0].responseEnd,"
                                 " performance.getEntriesByType('navigation')[0]"
                                 ".domContentLoadedEventEnd]")
    print(f"\nexample app: first page interactive after {ready:.0f} ms (its HTML by "
          f"{html:.0f} ms, scripts run by {loaded:.0f} ms)")
    assert ready > 0 and page.locator("#c-sessions tr.dj-row").count() == 10
    assert not page.evaluate("typeof Plotly !== 'undefined'")  # no plot on this page


def test_table_pages_filter_and_sort(app_url: str, page: Any, tmp_path: Path) -> None:
    pipeline = example_tables()
    expected = (pipeline.Session * pipeline.Subject).fetch(
        "subject", "session", as_dict=True, order_by=["session_date desc", "KEY"])
    expected_keys = [(r["subject"], r["session"]) for r in expected]
    assert len(expected_keys) == N_SUBJECTS * N_SESSIONS

    page.goto(app_url + "/")
    page.wait_for_selector("#c-sessions tr.dj-row")
    assert page.url.endswith("/p/sessions")
    assert shown_keys(page, "sessions") == expected_keys[:10]
    expect(page.locator("#c-sessions .dj-status")).to_contain_text("Rows 1–10 of 12")
    page.screenshot(path=tmp_path / "sessions-page1.png", full_page=True)

    page.click("#c-sessions .dj-next")
    expect(page.locator("#c-sessions tr.dj-row")).to_have_count(2)
    assert shown_keys(page, "sessions") == expected_keys[10:]
    expect(page.locator("#c-sessions .dj-status")).to_contain_text("page 2 of 2")

    page.fill("#c-sessions input[data-column=subject]", "r1")  # contains, any case
    page.press("#c-sessions input[data-column=subject]", "Enter")
    expect(page.locator("#c-sessions .dj-status")).to_contain_text("page 1 of 1")
    filtered = shown_keys(page, "sessions")
    assert filtered == [k for k in expected_keys if "r1" in k[0].lower()] and filtered
    page.screenshot(path=tmp_path / "sessions-filtered.png", full_page=True)

    page.fill("#c-sessions input[data-column=subject]", "")
    page.fill("#c-sessions input[data-column=session]", ">1")
    page.press("#c-sessions input[data-column=session]", "Enter")
    expect(page.locator("#c-sessions .dj-status")).to_contain_text("of 6 ")
    assert {s for _, s in shown_keys(page, "sessions")} == {2}
    page.click("#c-sessions button.dj-sort[data-column=subject]")
    page.wait_for_selector("#c-sessions button.dj-sort[data-column=subject][data-direction=asc]")
    subjects = [s for s, _ in shown_keys(page, "sessions")]
    assert subjects == sorted(subjects)
    page.fill("#c-sessions input[data-column=session]", "one")
    page.press("#c-sessions input[data-column=session]", "Enter")
    page.wait_for_selector("#c-sessions .dj-error")
    assert "not a valid int16" in page.inner_text("#c-sessions .dj-error")


def test_row_opens_detail_and_plots_render(app_url: str, page: Any, tmp_path: Path) -> None:
    page.goto(app_url + "/p/sessions")
    page.wait_for_selector("#c-sessions tr.dj-row")
    subject, session = shown_keys(page, "sessions")[0]
    page.click("#c-sessions tr.dj-row >> nth=0")
    page.wait_for_url(re.compile(r"/p/session\?"))
    page.wait_for_selector("#c-session dd[data-attribute=subject]")
    assert page.inner_text("#c-session dd[data-attribute=subject]") == subject
    assert page.inner_text("#c-session dd[data-attribute=session]") == str(session)
    assert "Recording (1 row)" in page.inner_text("#c-session")  # a child of the session
    assert "Pick a row" in page.inner_text("#c-raster")

    page.click("#c-detections tr.dj-row >> nth=0")
    for plot in ("raster", "rates", "quality", "waveforms", "correlations"):
        page.wait_for_selector(f"#c-{plot}[data-rendered=true]")
    assert page.locator("#c-raster .scatterlayer .point").count() > 10  # spikes drawn
    assert page.locator("#c-rates .barlayer .point").count() > 0
    assert page.locator("#c-correlations .hm, #c-correlations image").count() > 0
    page.wait_for_selector("#c-units tr.dj-row")
    page.screenshot(path=tmp_path / "session.png", full_page=True)

    page.goto(app_url + "/p/pipeline")
    page.wait_for_selector("#c-diagram[data-rendered=true]")
    page.screenshot(path=tmp_path / "diagram.png", full_page=True)


def test_insert_form_inserts_and_rejects(app_url: str, page: Any, tmp_path: Path) -> None:
    pipeline = example_tables()
    before = len(pipeline.Subject())
    page.goto(app_url + "/p/subjects")
    page.wait_for_selector("#c-subjects tr.dj-row")
    form = "#c-new_subject form"
    page.fill(f"{form} [name=subject]", "Z900")
    page.select_option(f"{form} [name=species]", "Mus musculus")
    page.select_option(f"{form} [name=sex]", "F")
    page.fill(f"{form} [name=date_of_birth]", "2024-02-03")
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector(f"{form} .dj-form-result.dj-ok")
    assert "subject = Z900" in page.inner_text(f"{form} .dj-form-result")
    row = (pipeline.Subject & {"subject": "Z900"}).fetch1()
    assert row["genotype"] == "wild type" and str(row["date_of_birth"]) == "2024-02-03"
    page.fill("#c-subjects input[data-column=subject]", "Z9")
    page.press("#c-subjects input[data-column=subject]", "Enter")
    expect(page.locator("#c-subjects tr.dj-row")).to_have_count(1)
    page.screenshot(path=tmp_path / "inserted.png", full_page=True)

    page.fill(f"{form} [name=subject]", "Z900")  # the same key again
    page.select_option(f"{form} [name=sex]", "M")
    page.fill(f"{form} [name=date_of_birth]", "2024-02-04")
    page.click(f"{form} button[type=submit]")
    page.wait_for_selector(f"{form} .dj-form-result.dj-error")
    assert "Traceback" not in page.inner_text(f"{form} .dj-form-result")
    page.fill(f"{form} [name=subject]", "Z901")  # no date of birth
    page.fill(f"{form} [name=date_of_birth]", "")
    page.click(f"{form} button[type=submit]")
    expect(page.locator(f"{form} .dj-form-result")).to_contain_text("date_of_birth")
    page.screenshot(path=tmp_path / "rejected.png", full_page=True)
    assert len(pipeline.Subject()) == before + 1
    assert (pipeline.Subject & {"subject": "Z900"}).fetch1("sex") == "F"


def test_overview_cards_and_filters(app_url: str, page: Any, tmp_path: Path) -> None:
    """The example's overview: a card per session (dynamic grid) under three filters."""
    pipeline = example_tables()
    page.goto(app_url + "/p/overview")
    page.wait_for_selector("body[data-ready=true]")
    cards = page.locator("#c-cards .dj-cell")
    expect(cards).to_have_count(N_SUBJECTS * N_SESSIONS)
    latest = pipeline.Session().fetch("session_date", order_by="session_date desc",
                                      limit=1)[0]
    expect(cards.nth(0).locator("dd[data-attribute=session_date]")).to_have_text(str(latest))
    subjects = sorted(pipeline.Subject().fetch("subject"))
    page.select_option("#c-subject select", subjects[0])
    expect(cards).to_have_count(N_SESSIONS)
    assert f"q.subject={subjects[0]}" in page.url
    page.screenshot(path=tmp_path / "overview.png", full_page=True)
    page.go_back()
    expect(cards).to_have_count(N_SUBJECTS * N_SESSIONS)
