"""Every layout, component and filter of the web app, and its URL state (Back, Forward,
reload, a shared link), driven in a real headless browser.

Debian's Chromium (/usr/bin/chromium) through Playwright, one app server and one browser
for the module; the app runs on a SQLite file filled by tests/test_viz_layouts.py's small
pipeline (the server-side paths are tested there on every backend). The first page's time
to interactive is printed, never asserted.

`DJ_DOCS_SCREENSHOTS=1` writes each component's screenshot to docs/figures/apps/ (the
pictures of docs/apps.md); otherwise they go to the test's temporary folder.
"""

from __future__ import annotations

import os
import re
import sys
import threading
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import datajoint_sa as dj

from .conftest import unique_name
from .test_viz_browser import BROWSER_ARGS, CHROMIUM
from .test_viz_layouts import declare, fill

pytestmark = pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"),
                                reason="browser tests need Debian's chromium at "
                                       "/usr/bin/chromium (apt-get install chromium)")

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "docs" / "figures" / "apps"


def app_spec(module: str) -> dict[str, Any]:
    return {"module": module, "title": "Lab app", "page_size": 3, "pages": [
        {"name": "overview", "title": "Overview", "columns": 3, "components": [
            {"type": "filter", "name": "lab", "title": "Lab", "control": "dropdown",
             "attribute": "lab", "query": "Lab", "cell": {"row": 1, "column": 1}},
            {"type": "filter", "name": "animal", "title": "Animal", "control": "dropdown",
             "attribute": "animal", "query": "Animal", "depends_on": ["lab"],
             "cell": {"row": 1, "column": 2}},
            {"type": "filter", "name": "sex", "title": "Sex", "control": "radio",
             "attribute": "sex", "options": ["F", "M"], "cell": {"row": 1, "column": 3}},
            {"type": "filter", "name": "born", "title": "Born", "control": "daterange",
             "attribute": "born", "query": "Animal", "cell": {"row": 2, "column": 1}},
            {"type": "filter", "name": "city", "title": "City", "control": "text",
             "attribute": "city", "cell": {"row": 2, "column": 2}},
            {"type": "markdown", "name": "notes", "cell": {"row": 2, "column": 3},
             "content": "## About\n\nAnimals of **both labs**. <b>raw</b>"},
            {"type": "table", "name": "animals", "title": "Animals", "query": "Animal * Lab",
             "columns": ["animal", "lab", "city", "sex", "born", "weight"],
             "cell": {"row": 3, "column": 1, "width": 2}},
            {"type": "metadata", "name": "card", "title": "Selected animal",
             "query": "Animal", "columns": ["animal", "lab", "weight"],
             "restricted_by": "animals", "cell": {"row": 3, "column": 3}},
            {"type": "table", "name": "sessions", "title": "Sessions of the animal",
             "query": "Session", "columns": ["animal", "session", "started", "gain"],
             "restricted_by": "animals", "cell": {"row": 4, "column": 1, "width": 3}},
        ]},
        {"name": "media", "title": "Media", "columns": 2, "components": [
            {"type": "filter", "name": "gain", "title": "Gain", "control": "slider",
             "attribute": "gain", "query": "Session", "op": ">=",
             "cell": {"row": 1, "column": 1}},
            {"type": "iframe", "name": "docs", "title": "Protocol",
             "url": "https://example.org/protocol", "height": 120,
             "cell": {"row": 1, "column": 2}},
            {"type": "image", "name": "picture", "title": "Picture", "query": "Session",
             "attribute": "picture", "height": 120},
            {"type": "slideshow", "name": "frames", "title": "Frames", "query": "Session",
             "attribute": "frame", "height": 120, "max_rows": 4},
        ]},
        {"name": "plots", "title": "Plots", "columns": 2, "components": [
            {"type": "plot", "name": "weights", "title": "Weight by birth day",
             "kind": "scatter", "query": "Animal", "x": "born", "y": "weight",
             "color": "weight"},
            {"type": "plot", "name": "gains", "title": "Gains by sex", "kind": "histogram",
             "query": "Session * Animal", "x": "gain", "series": "sex", "bins": 6},
            {"type": "plot", "name": "frame", "title": "A signed frame", "kind": "heatmap",
             "query": "Session & {'animal': 1, 'session': 1}", "z": "frame"},
            {"type": "plot", "name": "report", "title": "Stored report", "kind": "plotly",
             "query": "Session", "figure": "report"},
        ]},
        {"name": "more", "title": "More", "columns": 2, "components": [
            {"type": "text", "name": "intro", "content": "Plain text, in paragraphs.\n\n"
                                                          "Pick a lab to see its details.",
             "cell": {"row": 1, "column": 1, "width": 2}},
            {"type": "table", "name": "labs", "title": "Labs", "query": "Lab"},
            {"type": "detail", "name": "lab", "title": "The lab and its animals",
             "query": "Lab", "restricted_by": "labs"},
            {"type": "diagram", "name": "diagram", "title": "The pipeline",
             "cell": {"column": 1, "width": 2}},
        ]},
        {"name": "cards", "title": "Cards", "components": [
            {"type": "filter", "name": "lab", "title": "Lab", "control": "dropdown",
             "attribute": "lab", "query": "Lab"},
            {"type": "grid", "name": "animals", "title": "One card per animal",
             "query": "Animal", "per_row": 3, "max_cells": 6, "components": [
                 {"type": "metadata", "name": "about", "query": "Animal",
                  "columns": ["lab", "sex", "weight"]},
                 {"type": "plot", "name": "signal", "title": "Signal", "kind": "line",
                  "query": "Session", "y": "signal"},
                 {"type": "image", "name": "picture", "query": "Session",
                  "attribute": "picture", "height": 40}]},
        ]},
    ]}


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    import uvicorn

    from datajoint_sa.viz import create_app
    from datajoint_sa.viz.app import LOOPBACK_HOSTS

    folder = tmp_path_factory.mktemp("vizapp")
    connection = dj.Connection(f"sqlite:///{folder / 'app.db'}")
    schema = dj.Schema(unique_name("vizapp"), connection=connection)
    tables = declare(schema)
    fill(tables)
    name = unique_name("vizappmod")
    module = types.ModuleType(name)
    module.__dict__.update(vars(tables), schema=schema)
    sys.modules[name] = module
    app = create_app(app_spec(name), connection=connection,
                     allowed_hosts=list(LOOPBACK_HOSTS))
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
    sys.modules.pop(name, None)
    connection.close()


@pytest.fixture(scope="module")
def browser_context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=str(CHROMIUM),
            headless=True, args=BROWSER_ARGS, viewport={"width": 1100, "height": 800})
        context.set_default_timeout(60_000)  # generous: CI machines are shared
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
    from playwright.sync_api import expect as playwright_expect

    playwright_expect.set_options(timeout=30_000)  # generous: CI machines are shared
    return playwright_expect(locator)


def shoot(locator: Any, name: str, tmp_path: Path) -> None:
    """A component's picture: for docs/apps.md with DJ_DOCS_SCREENSHOTS=1."""
    folder = FIGURES if os.environ.get("DJ_DOCS_SCREENSHOTS") == "1" else tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{name}.png"
    locator.screenshot(path=str(path), scale="css", animations="disabled")
    if folder == FIGURES:  # small files for the repository: 64 colours
        from PIL import Image

        with Image.open(path) as image:
            image.convert("RGB").quantize(64).save(path, optimize=True)


def ready(page: Any) -> None:
    page.wait_for_selector("body[data-ready=true]")


def rows(page: Any, table: str) -> list[list[str]]:
    return page.eval_on_selector_all(
        f"#c-{table} tr.dj-row", "rows => rows.map(r => [...r.children].map(c => c.textContent))")


def animals(page: Any) -> list[int]:
    return [int(r[0]) for r in rows(page, "animals")]


def shows(page: Any, expected: list[int], table: str = "animals") -> None:
    """Waits until the table shows these animals (first column), in this order."""
    expect(page.locator(f"#c-{table} tr.dj-row td:first-child")).to_have_text(
        [str(a) for a in expected])


def param(page: Any, name: str) -> str | None:
    from urllib.parse import parse_qs, urlsplit

    values = parse_qs(urlsplit(page.url).query, keep_blank_values=True).get(name)
    return values[0] if values else None


# ---- first page ---------------------------------------------------------------------------------
def test_first_page_time_and_assets(app_url: str, page: Any, tmp_path: Path) -> None:
    loaded: list[str] = []
    page.on("request", lambda request: loaded.append(request.url))
    page.goto(app_url + "/p/overview")
    ready(page)
    interactive = page.evaluate("window.djReadyAt")
    print(f"\nfirst page interactive after {interactive:.0f} ms (overview page, cold cache)")
    assert not any("plotly" in url for url in loaded)  # no plot on this page
    loaded.clear()
    page.goto(app_url + "/p/plots")
    ready(page)
    print(f"plots page interactive after {page.evaluate('window.djReadyAt'):.0f} ms "
          "(plotly.js loaded)")
    assert any("plotly" in url for url in loaded)
    loaded.clear()
    page.goto(app_url + "/p/overview")
    ready(page)
    print(f"overview again after {page.evaluate('window.djReadyAt'):.0f} ms (warm cache)")
    transfers = page.evaluate("performance.getEntriesByType('resource')"
                              ".filter(e => e.name.includes('/static/'))"
                              ".map(e => e.transferSize)")
    assert transfers and not any(transfers)  # from the cache: not even revalidated


# ---- layouts ------------------------------------------------------------------------------------
def test_fixed_grid_places_cells(app_url: str, page: Any, tmp_path: Path) -> None:
    page.goto(app_url + "/p/overview")
    ready(page)
    box = {name: page.locator(f"#c-{name}").bounding_box()
           for name in ("lab", "animal", "sex", "born", "animals", "card", "sessions")}
    assert box["lab"]["y"] == box["animal"]["y"] == box["sex"]["y"]  # row 1, three columns
    assert box["lab"]["x"] < box["animal"]["x"] < box["sex"]["x"]
    assert box["born"]["y"] > box["lab"]["y"]
    assert box["animals"]["width"] > 1.8 * box["card"]["width"]  # width: 2 against 1
    assert box["card"]["x"] > box["animals"]["x"] + box["animals"]["width"] - 1
    assert abs(box["sessions"]["width"] - (box["card"]["x"] + box["card"]["width"]
                                           - box["animals"]["x"])) < 2  # the full row
    shoot(page.locator("main"), "layout-fixed-grid", tmp_path)


def test_dynamic_grid_a_cell_per_row(app_url: str, page: Any, tmp_path: Path) -> None:
    page.goto(app_url + "/p/cards")
    ready(page)
    cells = page.locator("#c-animals .dj-cell")
    expect(cells).to_have_count(6)
    assert "(the first 6 rows)" in page.inner_text("#c-animals")
    first = cells.nth(0)
    expect(first.locator(".dj-cell-key")).to_have_text("animal 1")
    expect(first.locator("dd[data-attribute=lab]")).to_have_text("north")
    expect(first.locator("section[data-name=signal][data-rendered=true]")).to_have_count(1)
    expect(first.locator("section[data-name=picture][data-rendered=true]")).to_have_count(1)
    assert first.locator("section[data-name=signal] .scatterlayer .trace").count() == 2
    shoot(page.locator("#c-animals"), "layout-dynamic-grid", tmp_path)
    page.select_option("#c-lab select", "south")
    expect(cells).to_have_count(3)
    expect(cells.nth(0).locator(".dj-cell-key")).to_have_text("animal 6")
    assert param(page, "q.lab") == "south"


# ---- components ---------------------------------------------------------------------------------
def test_markdown_metadata_and_iframe(app_url: str, page: Any, tmp_path: Path) -> None:
    page.goto(app_url + "/p/overview")
    ready(page)
    expect(page.locator("#c-notes h2")).to_have_text("About")
    expect(page.locator("#c-notes strong")).to_have_text("both labs")
    assert page.locator("#c-notes b").count() == 0  # raw HTML shown as text
    assert "<b>raw</b>" in page.inner_text("#c-notes")
    shoot(page.locator("#c-notes"), "component-markdown", tmp_path)
    assert "Pick a row in Animals" in page.inner_text("#c-card")
    page.click("#c-animals tr.dj-row >> nth=1")
    expect(page.locator("#c-card dd[data-attribute=animal]")).to_have_text("2")
    expect(page.locator("#c-card dd[data-attribute=weight]")).to_have_text("22 g")
    shoot(page.locator("#c-card"), "component-metadata", tmp_path)
    # no network in tests: the iframe's page is answered here, not fetched (routing turns the
    # browser's cache off, so only this page routes)
    page.route("https://example.org/**", lambda route: route.fulfill(
        status=200, content_type="text/html", body="<p>The protocol, step by step.</p>"))
    page.goto(app_url + "/p/media")
    ready(page)
    frame = page.frame_locator("#c-docs iframe")
    expect(frame.locator("p")).to_have_text("The protocol, step by step.")
    shoot(page.locator("#c-docs"), "component-iframe", tmp_path)


def test_text_detail_and_diagram(app_url: str, page: Any, tmp_path: Path) -> None:
    page.goto(app_url + "/p/more")
    ready(page)
    expect(page.locator("#c-intro p")).to_have_count(2)
    shoot(page.locator("#c-intro"), "component-text", tmp_path)
    page.click("#c-labs tr.dj-row >> nth=1")
    expect(page.locator("#c-lab dd[data-attribute=city]")).to_have_text("Rome")
    expect(page.locator("#c-lab")).to_contain_text("Animal (3 rows)")  # its children
    shoot(page.locator("#c-lab"), "component-detail", tmp_path)
    expect(page.locator("#c-diagram[data-rendered=true]")).to_have_count(1)
    shoot(page.locator("#c-diagram"), "component-diagram", tmp_path)


def test_table_component(app_url: str, page: Any, tmp_path: Path) -> None:
    page.goto(app_url + "/p/overview")
    ready(page)
    shows(page, [1, 2, 3])
    expect(page.locator("#c-animals .dj-status")).to_contain_text("Rows 1–3 of 8 · page 1 of 3")
    shoot(page.locator("#c-animals"), "component-table", tmp_path)


def test_plots(app_url: str, page: Any, tmp_path: Path) -> None:
    page.goto(app_url + "/p/plots")
    ready(page)
    for name in ("weights", "gains", "frame", "report"):
        expect(page.locator(f"#c-{name}[data-rendered=true]")).to_have_count(1)
    expect(page.locator("#c-weights .ytitle")).to_have_text("weight [g]")  # unit from comment
    assert page.locator("#c-weights .colorbar").count() == 1
    assert page.locator("#c-gains .barlayer .trace").count() == 2  # a histogram per sex
    assert sorted(page.eval_on_selector_all("#c-gains .legendtext",
                                            "els => els.map(e => e.textContent)")) == ["F", "M"]
    assert page.locator("#c-report .barlayer .point").count() == 2
    expect(page.locator("#c-report .gtitle")).to_have_text("report 11")
    # hovering a point names its row
    point = page.locator("#c-weights .scatterlayer .point").nth(2)
    point.hover(force=True)
    expect(page.locator("#c-weights .hoverlayer")).to_contain_text("animal 3")
    # the signed frame has a diverging scale: its middle colour is white-ish, not Viridis
    scale = page.evaluate("() => document.querySelector('#c-frame .js-plotly-plot')"
                          ".data[0].colorscale")
    assert scale == "RdBu"
    for name in ("weights", "gains", "frame", "report"):
        shoot(page.locator(f"#c-{name}"), f"plot-{name}", tmp_path)


def test_image_and_slideshow(app_url: str, page: Any, tmp_path: Path) -> None:
    page.goto(app_url + "/p/media")
    ready(page)
    expect(page.locator("#c-picture[data-rendered=true]")).to_have_count(1)
    assert page.evaluate("document.querySelector('#c-picture img').naturalWidth") == 4
    shoot(page.locator("#c-picture"), "component-image", tmp_path)
    expect(page.locator("#c-frames .dj-counter")).to_have_text("1 / 4")
    page.click("#c-frames .dj-next")
    expect(page.locator("#c-frames .dj-counter")).to_have_text("2 / 4")
    expect(page.locator("#c-frames .dj-caption")).to_have_text("animal 1, session 2")
    assert param(page, "frames.slide") == "2"
    shoot(page.locator("#c-frames"), "component-slideshow", tmp_path)
    page.go_back()
    expect(page.locator("#c-frames .dj-counter")).to_have_text("1 / 4")


# ---- filters ------------------------------------------------------------------------------------
def test_filters_and_their_dependencies(app_url: str, page: Any, tmp_path: Path) -> None:
    page.goto(app_url + "/p/overview")
    ready(page)
    options = page.locator("#c-animal select option")
    expect(options).to_have_count(9)  # (all) and 8 animals
    page.select_option("#c-lab select", "south")
    expect(page.locator("#c-animals .dj-status")).to_contain_text("of 3 ")
    shows(page, [6, 7, 8])
    expect(options).to_have_count(4)  # the animal filter depends on the lab
    page.select_option("#c-animal select", "7")
    expect(page.locator("#c-animals tr.dj-row")).to_have_count(1)
    page.select_option("#c-lab select", "north")  # 7 is not in the north: cleared
    expect(page.locator("#c-animal select")).to_have_value("")
    assert param(page, "q.animal") is None
    expect(page.locator("#c-animals .dj-status")).to_contain_text("of 5 ")
    shoot(page.locator("#c-lab"), "filter-dropdown", tmp_path)
    page.check("#c-sex input[value=M]")
    expect(page.locator("#c-animals .dj-status")).to_contain_text("of 2 ")
    shows(page, [2, 4])
    shoot(page.locator("#c-sex"), "filter-radio", tmp_path)
    page.check("#c-sex input[value='']")
    page.fill("#c-born input[name=born-from]", "2024-01-02")
    page.fill("#c-born input[name=born-to]", "2024-01-03")
    expect(page.locator("#c-animals .dj-status")).to_contain_text("of 2 ")
    shows(page, [2, 3])
    assert param(page, "q.born") == "2024-01-02..2024-01-03"
    shoot(page.locator("#c-born"), "filter-daterange", tmp_path)
    page.goto(app_url + "/p/overview")
    ready(page)
    page.fill("#c-city input", "OS")
    page.press("#c-city input", "Enter")
    expect(page.locator("#c-animals .dj-status")).to_contain_text("of 5 ")
    shoot(page.locator("#c-city"), "filter-text", tmp_path)
    page.goto(app_url + "/p/media")
    ready(page)
    slider = page.locator("#c-gain input[type=range]")
    slider.fill("2")
    expect(page.locator("#c-gain output")).to_have_text(">= 2")
    assert param(page, "q.gain") == "2"
    expect(page.locator("#c-frames .dj-counter")).to_have_text("1 / 4")
    expect(page.locator("#c-frames .dj-caption")).to_have_text("animal 4, session 2")
    shoot(page.locator("#c-gain"), "filter-slider", tmp_path)


# ---- the URL holds the state ----------------------------------------------------------------------
def test_url_state_back_forward_reload_and_link(app_url: str, page: Any, browser_context: Any,
                                                tmp_path: Path) -> None:
    page.goto(app_url + "/p/overview")
    ready(page)
    page.click("#c-animals .dj-next")                                     # 1: page 2
    expect(page.locator("#c-animals .dj-status")).to_contain_text("page 2 of 3")
    page.click("#c-animals button.dj-sort[data-column=weight]")           # 2: sort by weight
    page.click("#c-animals button.dj-sort[data-column=weight]")           # 3: descending
    expect(page.locator("#c-animals button.dj-sort[data-column=weight]")
           ).to_have_attribute("data-direction", "desc")
    shows(page, [8, 7, 6])
    page.fill("#c-animals .dj-jump", "3")                                 # 4: jump to page 3
    page.press("#c-animals .dj-jump", "Enter")
    expect(page.locator("#c-animals .dj-status")).to_contain_text("page 3 of 3")
    shows(page, [2, 1])
    page.click("#c-animals tr.dj-row >> nth=0")                           # 5: select animal 2
    expect(page.locator("#c-sessions tr.dj-row")).to_have_count(2)
    page.select_option("#c-lab select", "north")                          # 6: a filter
    expect(page.locator("#c-animals .dj-status")).to_contain_text("page 1 of 2")
    page.fill("#c-animals input[data-column=sex]", "F")                   # 7: a column filter
    page.press("#c-animals input[data-column=sex]", "Enter")
    expect(page.locator("#c-animals .dj-status")).to_contain_text("of 3 ")
    shows(page, [5, 3, 1])
    final = page.url
    assert param(page, "animals.f.sex") == "F" and param(page, "q.lab") == "north"
    shoot(page.locator("main"), "url-state", tmp_path)

    page.go_back()                                                        # before 7
    expect(page.locator("#c-animals input[data-column=sex]")).to_have_value("")
    expect(page.locator("#c-animals .dj-status")).to_contain_text("Rows 1–3 of 5")
    page.go_back()                                                        # before 6
    expect(page.locator("#c-lab select")).to_have_value("")
    expect(page.locator("#c-animals .dj-status")).to_contain_text("page 3 of 3")
    shows(page, [2, 1])
    expect(page.locator("#c-animals tr.dj-selected")).to_have_count(1)
    expect(page.locator("#c-card dd[data-attribute=animal]")).to_have_text("2")
    page.go_back()                                                        # before 5
    expect(page.locator("#c-animals tr.dj-selected")).to_have_count(0)
    expect(page.locator("#c-sessions")).to_contain_text("Pick a row")
    page.go_back()                                                        # before 4
    expect(page.locator("#c-animals .dj-status")).to_contain_text("page 1 of 3")
    shows(page, [8, 7, 6])
    page.go_back()                                                        # before 3
    expect(page.locator("#c-animals button.dj-sort[data-column=weight]")
           ).to_have_attribute("data-direction", "asc")
    page.go_back()                                                        # before 2
    page.go_back()                                                        # before 1
    expect(page.locator("#c-animals .dj-status")).to_contain_text("Rows 1–3 of 8")
    shows(page, [1, 2, 3])
    page.go_forward()
    expect(page.locator("#c-animals .dj-status")).to_contain_text("page 2 of 3")
    page.go_forward()
    page.go_forward()
    page.go_forward()
    expect(page.locator("#c-animals .dj-status")).to_contain_text("page 3 of 3")

    page.goto(final)
    page.reload()                                                         # reload
    ready(page)
    expect(page.locator("#c-lab select")).to_have_value("north")
    expect(page.locator("#c-animals input[data-column=sex]")).to_have_value("F")
    shows(page, [5, 3, 1])
    shared = browser_context.new_page()                                  # a shared link
    try:
        shared.goto(final)
        ready(shared)
        shows(shared, [5, 3, 1])
        expect(shared.locator("#c-animals button.dj-sort[data-column=weight]")
               ).to_have_attribute("data-direction", "desc")
        assert re.search(r"animals\.sel\.animal=2", shared.url)
    finally:
        shared.close()
