"""The app's layouts, components and filters without a browser, on every backend: the
spec's checks, each component's JSON (metadata card, dynamic grid, image and slideshow,
stored Plotly figures, Markdown, iframe), the page filters as bound restrictions (with
their dependencies), plot units / hover keys / diverging colours / histogram series, static
caching, and `--reload`.

The browser side is tests/test_viz_browser_app.py.
"""

from __future__ import annotations

import datetime
import io
import json
import sys
import time
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import datajoint_sa as dj

pytest.importorskip("starlette", reason="the viz extra is not installed")
from starlette.testclient import TestClient  # noqa: E402

from datajoint_sa.viz import create_app, load_spec  # noqa: E402
from datajoint_sa.viz.spec import SpecError  # noqa: E402

from .conftest import unique_name  # noqa: E402

N_ANIMALS = 8


def png(value: int) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new("L", (4, 3), color=value).save(buffer, format="PNG")
    return buffer.getvalue()


def figure_json(n: int) -> str:
    return json.dumps({"data": [{"type": "bar", "x": ["a", "b"], "y": [n, n + 1]}],
                       "layout": {"title": {"text": f"report {n}"}}})


def declare(schema: dj.Schema) -> types.SimpleNamespace:
    @schema
    class Lab(dj.Lookup):
        definition = """
        lab : varchar(16)
        ---
        city : varchar(32)
        """
        contents = [("north", "Oslo"), ("south", "Rome")]

    @schema
    class Animal(dj.Manual):
        definition = """
        animal : int32
        ---
        -> Lab
        sex : enum('F', 'M')
        born : date
        weight = null : float64      # body weight [g]
        """

    @schema
    class Session(dj.Manual):
        definition = """
        -> Animal
        session : int16
        ---
        started : datetime
        gain : float64               # signed gain [dB]
        signal = null : longblob     # recorded voltage [mV]
        picture = null : bytes       # a PNG
        frame = null : longblob      # an image as an array
        report = null : varchar(2000)  # a Plotly figure as JSON
        """

    return types.SimpleNamespace(Lab=Lab, Animal=Animal, Session=Session)


def fill(t: types.SimpleNamespace) -> None:
    t.Animal.insert([{"animal": i, "lab": "north" if i <= 5 else "south",
                      "sex": "F" if i % 2 else "M",
                      "born": datetime.date(2024, 1, i), "weight": 20.0 + i}
                     for i in range(1, N_ANIMALS + 1)])
    t.Session.insert([{"animal": i, "session": s,
                       "started": datetime.datetime(2024, 3, i, 9 + s, 30),
                       "gain": (-1) ** s * i * 0.5,
                       "signal": np.sin(np.arange(20) / (i + s)),
                       "picture": png(20 * i + s),
                       "frame": np.arange(12.0).reshape(3, 4) - 6 * s,
                       "report": figure_json(10 * i + s)}
                      for i in range(1, N_ANIMALS + 1) for s in (1, 2)])


@pytest.fixture(scope="module")
def shared(module_schema: dj.Schema) -> Iterator[types.SimpleNamespace]:
    tables = declare(module_schema)
    fill(tables)
    name = unique_name("vizlay")
    module = types.ModuleType(name)
    module.__dict__.update(vars(tables), schema=module_schema)
    sys.modules[name] = module
    tables.module_name = name
    tables.connection = module_schema.connection
    yield tables
    sys.modules.pop(name, None)


def spec_of(module: str) -> dict[str, Any]:
    return {"module": module, "title": "Layouts", "pages": [
        {"name": "home", "columns": 3, "components": [
            {"type": "filter", "name": "lab", "control": "dropdown", "attribute": "lab",
             "query": "Lab", "cell": {"row": 1, "column": 1}},
            {"type": "filter", "name": "animal", "control": "dropdown", "attribute": "animal",
             "query": "Animal", "depends_on": ["lab"], "cell": {"row": 1, "column": 2}},
            {"type": "filter", "name": "sex", "control": "radio", "attribute": "sex",
             "options": ["F", "M"]},
            {"type": "filter", "name": "born", "control": "daterange", "attribute": "born",
             "query": "Animal"},
            {"type": "filter", "name": "gain", "control": "slider", "attribute": "gain",
             "query": "Session", "op": ">="},
            {"type": "filter", "name": "started", "control": "daterange",
             "attribute": "started", "query": "Session"},
            {"type": "filter", "name": "city", "control": "text", "attribute": "city"},
            {"type": "table", "name": "animals", "query": "Animal * Lab",
             "cell": {"row": 2, "column": 1, "width": 3}},
            {"type": "metadata", "name": "card", "query": "Animal",
             "columns": ["animal", "lab", "weight"], "filtered_by": ["animal"]},
            {"type": "markdown", "name": "notes",
             "content": "# Notes\n\n*Hello* <script>alert(1)</script> [x](javascript:alert(1))"},
            {"type": "iframe", "name": "docs", "url": "https://example.org/page?a=1",
             "height": 300},
            {"type": "plot", "name": "weights", "kind": "scatter", "query": "Animal",
             "x": "born", "y": "weight", "color": "weight"},
            {"type": "plot", "name": "gains", "kind": "histogram", "query": "Session * Animal",
             "x": "gain", "series": "sex", "bins": 4},
            {"type": "plot", "name": "frame", "kind": "heatmap", "query": "Session", "z": "frame",
             "filtered_by": []},
            {"type": "plot", "name": "report", "kind": "plotly", "query": "Session",
             "figure": "report"},
            {"type": "image", "name": "picture", "query": "Session", "attribute": "picture"},
            {"type": "slideshow", "name": "frames", "query": "Session", "attribute": "frame",
             "sort": "session desc"},
            {"type": "grid", "name": "cards", "query": "Animal", "per_row": 4, "max_cells": 5,
             "components": [
                 {"type": "metadata", "name": "about", "query": "Animal",
                  "columns": ["animal", "sex"]},
                 {"type": "plot", "name": "signal", "kind": "line", "query": "Session",
                  "y": "signal"}]},
        ]}]}


@pytest.fixture(scope="module")
def client(shared: types.SimpleNamespace) -> Iterator[TestClient]:
    app = create_app(spec_of(shared.module_name), connection=shared.connection)
    with TestClient(app) as test_client:
        yield test_client


def get(client: TestClient, component: str, **params: Any) -> Any:
    response = client.get(f"/api/home/{component}", params=params)
    assert response.status_code == 200, response.text
    return response.json()


# ---- spec checks (no database) ----------------------------------------------------------------
def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(data)
    return info.value.problems


def page_with(*components: dict[str, Any], columns: int = 1) -> dict[str, Any]:
    return {"module": "m", "pages": [{"name": "p", "columns": columns,
                                      "components": list(components)}]}


def test_spec_checks_layouts_filters_and_new_components() -> None:
    problems = problems_of(page_with(
        {"type": "table", "name": "t", "query": "A", "cell": {"column": 2, "width": 2}},
        {"type": "filter", "name": "f", "control": "knob", "attribute": "a"},
        {"type": "filter", "name": "g", "control": "slider", "attribute": "a"},
        {"type": "filter", "name": "h", "control": "dropdown", "attribute": "a"},
        {"type": "filter", "name": "i", "control": "text", "attribute": "a",
         "depends_on": ["j"]},
        {"type": "filter", "name": "j", "control": "text", "attribute": "a",
         "depends_on": ["i"]},
        {"type": "iframe", "name": "fr", "url": "javascript:alert(1)"},
        {"type": "plot", "name": "pl", "kind": "plotly", "query": "A"},
        {"type": "grid", "name": "gr", "query": "A", "components": [
            {"type": "filter", "name": "x", "control": "text", "attribute": "a"}]},
        {"type": "metadata", "name": "md", "query": "A", "filtered_by": ["nope"]},
        columns=2))
    text = "\n".join(problems)
    assert "cell reaches column 3, but page 'p' has 2" in text
    assert "bad filter control 'knob'" in text
    assert "a slider needs `min:` and `max:`" in text
    assert "a dropdown filter needs `query:`" in text
    assert "depends_on makes a cycle" in text
    assert "url must be an http:// or https:// address" in text
    assert "a plotly plot needs `figure:`" in text
    assert "a filter cannot be in a grid's cell" in text
    assert "'nope' is not a filter of page 'p'" in text
    assert problems_of(page_with({"type": "markdown", "content": "x", "cell": {"span": 2}}))
    spec = load_spec(page_with({"type": "markdown", "name": "m", "content": "x",
                                "cell": {"row": 2, "column": 2, "width": 2}}, columns=3))
    assert spec.pages[0].columns == 3
    assert spec.pages[0].components[0].cell == {"row": 2, "column": 2, "width": 2}


def test_bind_checks_filter_types_and_attributes(shared: types.SimpleNamespace) -> None:
    module = shared.module_name
    with pytest.raises(SpecError) as info:
        create_app({"module": module, "pages": [{"name": "p", "components": [
            {"type": "filter", "name": "s", "control": "slider", "attribute": "sex",
             "query": "Animal"},
            {"type": "filter", "name": "d", "control": "daterange", "attribute": "weight",
             "query": "Animal"},
            {"type": "filter", "name": "z", "control": "text", "attribute": "nothing"},
            {"type": "image", "name": "i", "query": "Animal", "attribute": "sex"},
            {"type": "table", "name": "t", "query": "Lab", "filtered_by": ["s"]},
        ]}]}, connection=shared.connection)
    text = str(info.value)
    assert "a slider needs a numeric attribute; 'sex'" in text
    assert "a daterange needs a date or datetime attribute; 'weight'" in text
    assert "no component of page 'p' has attribute 'nothing'" in text
    assert "attribute 'sex' must hold images" in text
    assert "filtered_by 's', but its query has no attribute 'sex'" in text


# ---- the page ---------------------------------------------------------------------------------
def test_page_places_cells_and_loads_plotly_only_with_a_plot(client: TestClient,
                                                              shared: types.SimpleNamespace
                                                              ) -> None:
    html = client.get("/p/home").text
    assert "grid-template-columns: repeat(3, minmax(0, 1fr))" in html
    assert 'style="grid-column: 1 / span 3; grid-row: 2 / span 1"' in html
    assert "/vendor/plotly.min.js" in html
    config = json.loads(html.split('id="dj-config">')[1].split("</script>")[0])
    by_name = {c["name"]: c for c in config["components"]}
    notes = by_name["notes"]["html"]
    assert "<h1>Notes</h1>" in notes and "<em>Hello</em>" in notes
    assert "<script>" not in notes and "&lt;script&gt;" in notes  # raw HTML is text
    assert "<a " not in notes  # no javascript: link
    assert by_name["cards"]["cells"][1]["api"] == "/api/home/cards.signal"
    assert by_name["animals"]["filters"] == ["lab", "animal", "sex", "born", "city"]
    assert by_name["card"]["filters"] == ["animal"]
    assert by_name["frame"]["filters"] == []
    csp = client.get("/p/home").headers["content-security-policy"]
    assert "frame-src https://example.org" in csp

    other = create_app({"module": shared.module_name, "pages": [{"name": "t", "components": [
        {"type": "table", "query": "Lab"}]}]}, connection=shared.connection)
    with TestClient(other) as plain:
        page = plain.get("/p/t")
        assert "/vendor/plotly" not in page.text  # no plot, no 4.8 MB of plotly
        assert "frame-src" not in page.headers["content-security-policy"]


def test_static_assets_are_versioned_and_cached(client: TestClient) -> None:
    html = client.get("/p/home").text
    script = html.split('<script src="/static/app.js')[1].split('"')[0]
    script = "/static/app.js" + script
    assert script.startswith("/static/app.js?v=")
    first = client.get(script)
    assert first.headers["cache-control"] == "public, max-age=31536000, immutable"
    again = client.get(script, headers={"if-none-match": first.headers["etag"]})
    assert again.status_code == 304
    assert client.get("/static/app.js").headers["cache-control"] == "no-cache"
    plotly = client.get("/vendor/plotly.min.js?v=1", headers={"accept-encoding": "gzip"})
    assert plotly.headers["cache-control"].endswith("immutable")
    assert plotly.headers["content-encoding"] == "gzip"  # the client unpacked it
    assert int(plotly.headers["content-length"]) < len(plotly.content) / 2
    assert plotly.content.startswith(b"/**") or b"Plotly" in plotly.content[:2000]
    plain = client.get("/vendor/plotly.min.js?v=1", headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers and plain.content == plotly.content
    assert client.get("/vendor/plotly.min.js?v=1", headers={
        "if-none-match": plotly.headers["etag"]}).status_code == 304


# ---- filters ------------------------------------------------------------------------------------
def table_keys(client: TestClient, **params: Any) -> list[int]:
    data = get(client, "animals", size=50, **params)
    return [int(k["animal"]) for k in data["keys"]]


def test_filters_restrict_components(client: TestClient, shared: types.SimpleNamespace
                                     ) -> None:
    assert table_keys(client) == list(range(1, N_ANIMALS + 1))
    assert table_keys(client, **{"q.lab": "south"}) == [6, 7, 8]
    assert table_keys(client, **{"q.lab": "north", "q.sex": "M"}) == [2, 4]
    assert table_keys(client, **{"q.born": "2024-01-03..2024-01-05"}) == [3, 4, 5]
    assert table_keys(client, **{"q.born": "..2024-01-02"}) == [1, 2]
    assert table_keys(client, **{"q.city": "ROM"}) == [6, 7, 8]  # contains, any case
    assert get(client, "animals", **{"q.lab": "south", "count": 1})["total"] == 3
    # the card is filtered by `animal` only (filtered_by), not by lab
    card = get(client, "card", **{"q.animal": "7", "q.lab": "north"})
    assert {i["name"]: i["value"] for i in card["items"]} == {
        "animal": 7, "lab": "south", "weight": 27.0}
    assert card["items"][2]["unit"] == "g"
    # a datetime range includes the whole last day; the slider keeps gains >= value
    frames = get(client, "frames", **{"q.started": "2024-03-02..2024-03-02",
                                      "q.gain": "0"})
    assert frames["slides"] == [{"animal": "2", "session": "2"}]


def test_filter_values_are_typed_and_bounded(client: TestClient) -> None:
    for params, message in (({"q.animal": "one"}, "'one' is not a valid int32"),
                            ({"q.born": "2024-13-01..", }, "is not a date"),
                            ({"q.born": "yesterday"}, "a date range is written"),
                            ({"q.sex": "X"}, "must be one of F, M"),
                            ({"q.city": "x" * 5000}, "too long")):
        response = client.get("/api/home/animals", params=params)
        assert response.status_code == 400 and message in response.json()["error"], params
    quote = client.get("/api/home/animals", params={"q.city": "'; drop table x; --"})
    assert quote.status_code == 200 and quote.json()["rows"] == []


def test_filter_choices_follow_their_dependencies(client: TestClient) -> None:
    assert get(client, "lab")["options"] == ["north", "south"]
    assert get(client, "animal")["options"] == [str(i) for i in range(1, N_ANIMALS + 1)]
    assert get(client, "animal", **{"q.lab": "south"})["options"] == ["6", "7", "8"]
    assert get(client, "sex")["options"] == ["F", "M"]
    gain = get(client, "gain")
    assert (gain["min"], gain["max"], gain["op"]) == (-4.0, 4.0, ">=")
    born = get(client, "born")
    assert (born["min"], born["max"]) == ("2024-01-01", "2024-01-08")
    assert get(client, "born", **{"q.born": "2024-01-02.."})["value"] == "2024-01-02.."


# ---- components ---------------------------------------------------------------------------------
def test_grid_cells_and_their_components(client: TestClient) -> None:
    cells = get(client, "cards")
    assert cells["cells"] == [{"animal": str(i)} for i in range(1, 6)] and cells["more"]
    assert get(client, "cards", **{"q.lab": "south"})["cells"] == [
        {"animal": "6"}, {"animal": "7"}, {"animal": "8"}]
    about = get(client, "cards.about", **{"k.animal": "3"})
    assert [i["value"] for i in about["items"]] == [3, "F"]
    signal = get(client, "cards.signal", **{"k.animal": "3"})
    assert len(signal["data"]) == 2  # the animal's two sessions, a line each
    assert signal["layout"]["yaxis"]["title"]["text"] == "signal [mV]"


def test_images_and_slideshow(client: TestClient) -> None:
    assert get(client, "picture")["slides"] == [{"animal": "1", "session": "1"}]
    picture = client.get("/api/home/picture/image", params={"q.animal": "2"})
    assert picture.headers["content-type"] == "image/png" and picture.content == png(41)
    slides = get(client, "frames", **{"q.animal": "3"})["slides"]
    assert slides == [{"animal": "3", "session": "2"}, {"animal": "3", "session": "1"}]
    from PIL import Image

    second = client.get("/api/home/frames/image", params={"q.animal": "3", "index": "2"})
    assert second.headers["content-type"] == "image/png"
    pixels = np.asarray(Image.open(io.BytesIO(second.content)))
    assert pixels.shape == (3, 4) and pixels[0, 0] == 0 and pixels[2, 3] == 255
    missing = client.get("/api/home/frames/image", params={"q.animal": "3", "index": "9"})
    assert missing.status_code == 400 and "no image number 9" in missing.json()["error"]


def test_plot_units_hover_colours_and_series(client: TestClient) -> None:
    weights = get(client, "weights")
    assert weights["layout"]["yaxis"]["title"]["text"] == "weight [g]"
    trace = weights["data"][0]
    assert trace["customdata"][0] == "animal 1"
    assert "%{customdata}" in trace["hovertemplate"] and "weight [g]" in trace["hovertemplate"]
    assert trace["marker"]["colorscale"] == "Viridis"  # weights are all positive
    gains = get(client, "gains", bins=4)
    assert sorted(t["name"] for t in gains["data"]) == ["F", "M"]  # series: one per sex
    assert gains["layout"]["barmode"] == "overlay"
    by_sex = {t["name"]: sum(t["y"]) for t in gains["data"]}
    assert by_sex == {"F": 8, "M": 8}
    assert gains["data"][0]["x"] == gains["data"][1]["x"]  # the same bins
    signed = get(client, "frame", **{"k.animal": "1", "k.session": "1"})  # -6 .. 5
    assert signed["data"][0]["colorscale"] == "RdBu" and signed["data"][0]["zmid"] == 0
    negative = get(client, "frame", **{"k.animal": "1", "k.session": "2"})  # -12 .. -1
    assert negative["data"][0]["colorscale"] == "Viridis"
    report = get(client, "report", **{"q.animal": "4"})
    assert report["layout"]["title"]["text"] == "report 41"
    assert report["data"][0]["y"] == [41, 42]


# ---- reload ---------------------------------------------------------------------------------------
def test_reload_rereads_the_spec(shared: types.SimpleNamespace, tmp_path: Path) -> None:
    from datajoint_sa.viz import reload

    path = tmp_path / "app.yaml"

    def write(title: str, query: str = "Lab") -> None:
        path.write_text(f"module: {shared.module_name}\ntitle: {title}\npages:\n"
                        f"  - name: t\n    components:\n      - {{type: table, query: {query}}}\n")

    write("First")
    app = reload.ReloadingApp(path, lambda: create_app(path, connection=shared.connection))
    with TestClient(app) as test_client:
        assert "First" in test_client.get("/p/t").text
        time.sleep(0.01)
        write("Second, longer")
        app.checked = 0.0
        assert "Second, longer" in test_client.get("/p/t").text and app.reloads == 1
        write("Broken", query="NoSuchTable")
        app.checked = 0.0
        page = test_client.get("/p/t")  # a bad edit keeps the working app serving
        assert "Second, longer" in page.text and "NoSuchTable" in (app.error or "")


def test_command_reload_serves_the_edited_spec(shared: types.SimpleNamespace, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    import uvicorn

    from datajoint_sa.viz import cli, reload

    served: list[Any] = []
    monkeypatch.setattr(uvicorn, "run", lambda app, **options: served.append(app))
    path = tmp_path / "app.yaml"
    path.write_text(f"module: {shared.module_name}\ntitle: Before\npages:\n  - name: t\n"
                    "    components:\n      - {type: table, query: Lab}\n")
    url = shared.connection.url.render_as_string(hide_password=False)
    assert cli([str(path), "--url", url, "--reload"]) == 0
    app = served[0]
    assert isinstance(app, reload.ReloadingApp)
    with TestClient(app, base_url="http://127.0.0.1") as test_client:  # loopback only
        assert "Before" in test_client.get("/p/t").text
        time.sleep(0.01)
        path.write_text(path.read_text().replace("Before", "After, edited"))
        app.checked = 0.0
        assert "After, edited" in test_client.get("/p/t").text
