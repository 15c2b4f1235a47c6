"""The viz app without a browser: spec validation, the query layer on every backend
(pagination, sorting, filters as bound restrictions, detail with parts and children), and
the HTTP layer (JSON endpoints, forms, auth, errors without tracebacks).

Browser tests of the example app are in test_viz_browser.py.
"""

from __future__ import annotations

import base64
import contextlib
import datetime
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import sqlalchemy as sa

import datajoint_sa as dj

pytest.importorskip("starlette", reason="the viz extra is not installed")
from starlette.testclient import TestClient  # noqa: E402

from datajoint_sa.viz import create_app, load_spec  # noqa: E402
from datajoint_sa.viz.query import (  # noqa: E402
    RequestError,
    filter_condition,
    page_of,
    restrict_by_filters,
)
from datajoint_sa.viz.spec import SpecError  # noqa: E402

from .conftest import unique_name  # noqa: E402

N_ANIMALS = 57
SPECIAL_NAMES = {50: "50%_off", 51: "under_score", 52: "O'Brien", 53: "ANIMAL_x"}


# ---- a small pipeline, exposed as an importable module ------------------------------------
def declare(schema: dj.Schema) -> types.SimpleNamespace:
    @schema
    class Species(dj.Lookup):
        definition = """
        species : varchar(16)
        ---
        common : varchar(32)
        """
        contents = [("mouse", "house mouse"), ("rat", "brown rat")]

    @schema
    class Animal(dj.Manual):
        definition = """
        # animals
        animal : int32
        ---
        name : varchar(32)           # a lab name
        -> Species
        sex : enum('F', 'M')
        weight = null : float64
        born : date
        """

    @schema
    class Scan(dj.Manual):
        definition = """
        -> Animal
        scan : int16
        ---
        image = null : longblob
        trace = null : longblob
        """

        class Roi(dj.Part):
            definition = """
            -> master
            roi : int16
            ---
            area : float64
            """

    @schema
    class Surgery(dj.Manual):  # a child through a renamed foreign key
        definition = """
        surgery : int32
        ---
        -> Animal.proj(patient='animal')
        note = "" : varchar(100)
        """

    return types.SimpleNamespace(Species=Species, Animal=Animal, Scan=Scan, Surgery=Surgery)


def name_of(i: int) -> str:
    return SPECIAL_NAMES.get(i, f"animal_{i:02d}")


def fill(t: types.SimpleNamespace) -> None:
    t.Animal.insert([
        {"animal": i, "name": name_of(i),
         "species": "mouse" if i % 3 else "rat", "sex": "F" if i % 2 else "M",
         "weight": None if i % 10 == 0 else 10 + i * 0.5,
         "born": datetime.date(2024, 1, 1) + datetime.timedelta(days=i)}
        for i in range(1, N_ANIMALS + 1)])
    t.Scan.insert([{"animal": 1, "scan": s, "image": np.arange(12.0).reshape(3, 4) * s,
                    "trace": np.sin(np.arange(50) / (s + 1))} for s in (1, 2, 3)])
    t.Scan.Roi.insert([{"animal": 1, "scan": 1, "roi": r, "area": r * 2.5} for r in range(4)])
    t.Surgery.insert([{"surgery": 1, "patient": 1, "note": "implant"},
                      {"surgery": 2, "patient": 2, "note": "other"}])


@pytest.fixture(scope="module")
def shared(module_schema: dj.Schema) -> Iterator[types.SimpleNamespace]:
    """The filled pipeline once per backend, for the tests that only read."""
    schema = module_schema
    connection = schema.connection
    tables = declare(schema)
    fill(tables)
    name = unique_name("vizmod")
    module = types.ModuleType(name)
    module.__dict__.update(vars(tables), schema=schema)
    sys.modules[name] = module
    tables.module_name = name
    tables.connection = connection
    tables.schema_name = schema.database
    yield tables
    sys.modules.pop(name, None)


@pytest.fixture
def pipeline(schema: dj.Schema) -> Iterator[types.SimpleNamespace]:
    """The tables, filled, and a module `name` that a spec's `module:` can import."""
    tables = declare(schema)
    fill(tables)
    name = unique_name("vizmod")
    module = types.ModuleType(name)
    module.__dict__.update(vars(tables), schema=schema)
    sys.modules[name] = module
    tables.module_name = name
    tables.schema = schema
    yield tables
    sys.modules.pop(name, None)


def app_spec(module: str, *pages: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"module": module, "pages": list(pages), **top}


def standard_spec(module: str, **top: Any) -> dict[str, Any]:
    return app_spec(
        module,
        {"name": "animals", "components": [
            {"type": "table", "name": "animals", "query": "Animal", "link": "animal",
             "page_size": 10},
            {"type": "plot", "name": "weights", "kind": "histogram", "query": "Animal",
             "x": "weight"}]},
        {"name": "animal", "key": ["animal"], "components": [
            {"type": "detail", "name": "animal", "query": "Animal"},
            {"type": "table", "name": "scans", "query": "Scan"},
            {"type": "plot", "name": "trace", "kind": "line", "query": "Scan", "y": "trace",
             "restricted_by": "scans"},
            {"type": "plot", "name": "image", "kind": "image", "query": "Scan", "z": "image",
             "restricted_by": "scans"},
            {"type": "detail", "name": "scan", "query": "Scan", "restricted_by": "scans"}]},
        {"name": "new", "components": [
            {"type": "form", "name": "add", "table": "Animal"},
            {"type": "diagram", "name": "diagram"}]},
        **top)


@contextlib.contextmanager
def sql_log(connection: dj.Connection) -> Iterator[list[str]]:
    """The SQL statements sent inside the block."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *rest: Any) -> None:
        statements.append(statement)

    sa.event.listen(connection.engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        sa.event.remove(connection.engine, "before_cursor_execute", record)


# ---- spec validation (no database) ----------------------------------------------------------
def spec_problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        load_spec(text)
    return info.value.problems


def test_spec_loads_and_defaults() -> None:
    spec = load_spec("""
module: some.module
pages:
  - name: home
    components:
      - type: table
        query: Animal
  - name: one
    key: [animal]
    components:
      - {type: detail, query: Animal}
""")
    assert spec.forms is False and spec.auth is None and spec.page_size == 25
    assert [p.name for p in spec.pages] == ["home", "one"]
    assert spec.pages[0].components[0].name == "table1"
    assert spec.pages[1].hidden  # a page with a key is reached by links, not the menu


def test_spec_bad_component_type_and_plot_kind_name_their_lines() -> None:
    problems = spec_problems("""module: m
pages:
  - name: home
    components:
      - type: tabel
        query: Animal
      - type: plot
        query: Animal
        kind: pie
        y: weight
""")
    assert any("line 5" in p and "bad component type 'tabel'" in p and "table" in p
               for p in problems), problems
    assert any("line 7" in p and "bad plot kind 'pie'" in p for p in problems), problems


def test_spec_unknown_keys_missing_parts_and_references() -> None:
    problems = spec_problems("""module: m
colour: blue
pages:
  - name: home
    components:
      - type: table
        quer: Animal
        link: nowhere
      - type: plot
        kind: image
        query: Animal
        restricted_by: ghost
""")
    text = "\n".join(problems)
    assert "unknown key 'colour'" in text
    assert "unknown key 'quer'" in text and "needs `query:`" in text
    assert "link to unknown page 'nowhere'" in text
    assert "needs `z:`" in text
    assert "restricted_by names unknown component 'ghost'" in text


def test_spec_yaml_errors_and_empty_and_auth() -> None:
    problem = spec_problems("module: m\ntitle: a: b\npages: []\n")[0]
    assert problem.startswith("line 2: not valid YAML"), problem
    assert "empty" in spec_problems("# nothing\n")[0]
    assert any("pages must be a non-empty list" in p for p in spec_problems("module: m\n"))
    assert any("needs `module:`" in p for p in spec_problems(
        "pages: [{name: a, components: [{type: text, content: hi}]}]"))
    problems = spec_problems("module: m\nauth: {type: basic, user: bob, password: pw}\n"
                             "pages: [{name: a, components: [{type: text, content: hi}]}]")
    assert any("unknown key 'password'" in p for p in problems)
    assert any("never written in the spec" in p for p in problems)
    with pytest.raises(SpecError, match="duplicate key 'module'"):
        load_spec("module: a\nmodule: b\npages: []\n")


def test_spec_error_from_a_file_names_the_file(tmp_path: Any) -> None:
    path = tmp_path / "app.yaml"
    path.write_text("module: m\npages:\n  - name: x\n    components: [{type: chart}]\n")
    with pytest.raises(SpecError, match=r"app\.yaml: line 4: .*bad component type 'chart'"):
        load_spec(path)
    with pytest.raises(SpecError, match="cannot read the app spec"):
        load_spec(tmp_path / "missing.yaml")


# ---- binding: the spec against the database ---------------------------------------------
def test_bind_reports_unknown_tables_and_attributes(shared: types.SimpleNamespace) -> None:
    spec = app_spec(shared.module_name, {"name": "p", "components": [
        {"type": "table", "query": "Animals"},
        {"type": "table", "query": "Animal", "columns": ["name", "colour"]},
        {"type": "plot", "kind": "scatter", "query": "Animal", "x": "born", "y": "name"},
        {"type": "plot", "kind": "image", "query": "Scan", "z": "scan"},
        {"type": "table", "query": "Animal & 'heigth > 3'"},
        {"type": "table", "query": "__import__('os')"},
        {"type": "form", "table": "Species"},
        {"type": "table", "query": "Scan", "filters": ["image"]},
    ]})
    with pytest.raises(SpecError) as info:
        create_app(spec, connection=shared.connection)
    text = str(info.value)
    assert "unknown table 'Animals'" in text and "Animal" in text
    assert "unknown attribute 'colour' of Animal" in text
    assert "y 'name' must be numeric" in text
    assert "z 'scan' must be a blob attribute" in text
    assert "heigth" in text
    assert "unknown table '__import__'" in text
    assert "insert forms are for Manual tables; Species is lookup" in text
    assert "cannot filter by 'image'" in text


def test_bind_unknown_module_and_missing_auth_secret(shared: types.SimpleNamespace,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(SpecError, match="cannot import module 'no_such_module_xyz'"):
        create_app(app_spec("no_such_module_xyz", {"name": "p", "components": [
            {"type": "text", "content": "x"}]}), connection=shared.connection)
    monkeypatch.delenv("VIZ_TEST_TOKEN", raising=False)
    with pytest.raises(SpecError, match="VIZ_TEST_TOKEN is not set"):
        create_app(standard_spec(shared.module_name,
                                 auth={"type": "token", "env": "VIZ_TEST_TOKEN"}),
                   connection=shared.connection)


def test_bind_page_key_and_links_checked(shared: types.SimpleNamespace) -> None:
    spec = app_spec(shared.module_name,
                    {"name": "list", "components": [
                        {"type": "table", "query": "Species", "link": "one"}]},
                    {"name": "one", "key": ["animal", "colour"], "components": [
                        {"type": "detail", "query": "Animal"}]})
    with pytest.raises(SpecError, match="unknown attribute 'colour'"):
        create_app(spec, connection=shared.connection)
    spec["pages"][1]["key"] = ["animal"]
    with pytest.raises(SpecError, match="link to page 'one' needs 'animal'"):
        create_app(spec, connection=shared.connection)


def test_query_language_supports_the_algebra(shared: types.SimpleNamespace) -> None:
    spec = app_spec(shared.module_name, {"name": "p", "components": [
        {"type": "table", "name": "joined", "query": "Animal * Species & {'sex': 'F'}",
         "columns": ["name", "common"]},
        {"type": "table", "name": "agg",
         "query": "Animal.aggr(Scan, n='count(*)') & 'n > 0'"},
        {"type": "table", "name": "part", "query": "(Scan.Roi & 'area > 2').proj('area')"},
    ]})
    client = TestClient(create_app(spec, connection=shared.connection))
    joined = client.get("/api/p/joined?size=100").json()
    assert len(joined["rows"]) == sum(1 for i in range(1, N_ANIMALS + 1) if i % 2)
    assert joined["columns"] == ["name", "common"]
    assert client.get("/api/p/agg").json()["rows"] == [{"animal": 1, "n": 3}]
    assert client.get("/api/p/part?count=1").json()["total"] == 3


def test_spec_reads_schemas_without_python_source(shared: types.SimpleNamespace) -> None:
    spec = {"schemas": {"lab": shared.schema_name}, "pages": [
        {"name": "p", "components": [
            {"type": "table", "name": "scans", "query": "lab.Scan * Animal",
             "columns": ["animal", "scan", "name"]},
            {"type": "plot", "name": "trace", "kind": "line", "query": "Scan", "y": "trace"}]},
        {"name": "one", "key": ["animal"], "components": [
            {"type": "detail", "name": "animal", "query": "Animal"}]}]}
    client = TestClient(create_app(spec, connection=shared.connection))
    rows = client.get("/api/p/scans").json()["rows"]
    assert [(r["scan"], r["name"]) for r in rows] == [(1, "animal_01"), (2, "animal_01"),
                                                      (3, "animal_01")]
    assert len(client.get("/api/p/trace").json()["data"]) == 3
    detail = client.get("/api/one/animal?k.animal=2").json()
    assert {c["table"]: c["total"] for c in detail["children"]} == {"Scan": 0, "Surgery": 1}
    with pytest.raises(SpecError, match="schema 'no_such_schema_xyz' does not exist"):
        create_app({"schemas": ["no_such_schema_xyz"], "pages": spec["pages"]},
                   connection=shared.connection)


# ---- the query layer on every backend -------------------------------------------------------
def names_of(rows: list[dict[str, Any]]) -> list[str]:
    return [r["name"] for r in rows]


def test_pages_cover_the_table_once_in_order(shared: types.SimpleNamespace) -> None:
    animal = shared.Animal()
    columns = ["animal", "name", "species", "weight"]
    first = page_of(animal, columns=columns, page=1, size=10)
    assert first.total == N_ANIMALS and first.pages == 6 and len(first.rows) == 10
    assert [r["animal"] for r in first.rows] == list(range(1, 11))
    assert first.keys[0] == {"animal": "1"}
    last = page_of(animal, columns=columns, page=6, size=10)
    assert [r["animal"] for r in last.rows] == list(range(51, 58))
    assert page_of(animal, columns=columns, page=7, size=10).rows == []
    for sort, descending in (("species", True), ("weight", False), ("sex", False)):
        seen = []
        for page in range(1, 7):
            seen += [r["animal"] for r in page_of(animal, columns=columns, page=page, size=10,
                                                  sort=sort, descending=descending).rows]
        assert sorted(seen) == list(range(1, N_ANIMALS + 1)), sort  # no row twice, none lost
    by_species = page_of(animal, columns=columns, size=N_ANIMALS, sort="species",
                         descending=True).rows
    assert [r["species"] for r in by_species[:19]] == ["rat"] * 19
    assert [r["animal"] for r in by_species[:3]] == [3, 6, 9]  # ties by primary key
    with pytest.raises(RequestError, match="cannot sort by 'nope'"):
        page_of(animal, columns=columns, sort="nope")


def test_a_page_fetches_one_page_and_no_blobs(shared: types.SimpleNamespace) -> None:
    with sql_log(shared.connection) as log:
        page = page_of(shared.Scan(), columns=["animal", "scan"], page=1, size=2)
    assert len(page.rows) == 2 and page.total == 3
    paged = [s for s in log if " LIMIT " in s.upper().replace("\n", " ")]
    assert len(paged) == 1  # one query for the page, with a LIMIT
    selected = paged[0].split("FROM")[0]  # what comes back: no blob crosses the wire
    assert "image" not in selected and "trace" not in selected
    huge = page_of(shared.Animal(), columns=["animal"], size=10**6)
    assert huge.size == 500


@pytest.mark.parametrize("column, text, expected", [
    ("name", "ANIMAL_1", [f"animal_{i}" for i in range(10, 20)]),  # contains, any case
    ("name", "50%", ["50%_off"]),                   # % is a character, not a wildcard
    ("name", "_o", ["50%_off"]),                    # and so is _
    ("name", "=animal_05", ["animal_05"]),
    ("name", "O'Brien", ["O'Brien"]),
    ("name", "'; DROP TABLE animal; --", []),
    ("animal", "5", ["animal_05"]),
    ("animal", ">=55", ["animal_55", "animal_56", "animal_57"]),
    ("animal", "<2", ["animal_01"]),
    ("animal", "3..5", ["animal_03", "animal_04", "animal_05"]),
    ("weight", "> 38", ["animal_57"]),
    ("born", "2024-01-03..2024-01-04", ["animal_02", "animal_03"]),
    ("born", "<2024-01-03", ["animal_01"]),
    ("species", "=rat", None),
    ("sex", "M", None),
    ("animal", "!=1", None),
])
def test_filters_restrict_with_bound_values(shared: types.SimpleNamespace, column: str, text: str,
                                           expected: list[str] | None) -> None:
    animal = shared.Animal()
    with sql_log(shared.connection) as log:
        restricted = restrict_by_filters(animal, {column: text}, animal.heading.names)
        rows = restricted.fetch("name", as_dict=True, order_by="animal")
    if expected is None:  # computed from the data instead
        wanted = {"species": lambda i: i % 3 == 0, "sex": lambda i: i % 2 == 0,
                  "animal": lambda i: i != 1}[column]
        expected = [name_of(i) for i in range(1, N_ANIMALS + 1) if wanted(i)]
    assert names_of(rows) == expected
    value = text.lstrip("=<>!").split("..")[0].strip()
    if len(value) >= 4:  # distinctive enough to look for in the SQL text
        assert all(value not in s for s in log), "a filter value was pasted into SQL"
    assert len(animal) == N_ANIMALS


def test_filters_combine_and_refuse_bad_input(shared: types.SimpleNamespace) -> None:
    animal = shared.Animal()
    both = restrict_by_filters(animal, {"species": "rat", "animal": ">40", "name": ""},
                               animal.heading.names)
    assert names_of(both.fetch(as_dict=True, order_by="animal")) == [
        name_of(i) for i in (42, 45, 48, 51, 54, 57)]
    with pytest.raises(RequestError, match="'weight' .* 'heavy' is not a valid float64"):
        restrict_by_filters(animal, {"weight": ">heavy"}, animal.heading.names)
    with pytest.raises(RequestError, match="'sex' .* must be one of F, M"):
        restrict_by_filters(animal, {"sex": "X"}, animal.heading.names)
    with pytest.raises(RequestError, match="cannot filter by 'born'"):
        restrict_by_filters(animal, {"born": "2024"}, ["name"])
    with pytest.raises(RequestError, match="not a valid date"):
        filter_condition(animal.heading["born"], "2024-13-01")


def test_http_table_detail_plots_and_form(pipeline: types.SimpleNamespace,
                                         connection: dj.Connection) -> None:
    client = TestClient(create_app(standard_spec(pipeline.module_name), connection=connection,
                                   forms=True))
    assert client.get("/", follow_redirects=False).headers["location"] == "/p/animals"
    html = client.get("/p/animals")
    assert html.status_code == 200 and "/vendor/plotly.min.js" in html.text
    assert "content-security-policy" in html.headers
    view = "/api/animals/animals?page=2&sort=weight&desc=1&f.species=rat"
    with sql_log(connection) as log:
        page = client.get(view).json()
    selects = [q for q in log if q.lstrip().upper().startswith("SELECT")]
    assert len(selects) == 1  # a page is one query of its own rows: the count comes apart
    assert page["page"] == 2 and len(page["rows"]) == 9 and page["more"] is False
    assert page["total"] is None and "image" not in page["columns"]
    assert client.get(view + "&count=1").json() == {"total": 19}
    assert client.get(view).json()["total"] == 19  # kept for the next pages
    assert client.get("/api/animals/animals?f.animal=abc").status_code == 400

    detail = client.get("/api/animal/animal?k.animal=1").json()
    entity = {a["name"]: a["value"] for a in detail["entity"]}
    assert entity["name"] == "animal_01" and entity["born"] == "2024-01-02"
    children = {c["table"]: c for c in detail["children"]}
    assert children["Scan"]["total"] == 3
    assert children["Surgery"]["total"] == 1  # through the renamed foreign key
    assert children["Surgery"]["rows"][0]["note"] == "implant"
    scan = client.get("/api/animal/scan?k.animal=1&k.scan=1").json()
    assert [p["table"] for p in scan["parts"]] == ["Scan.Roi"] and scan["parts"][0]["total"] == 4
    assert {a["name"]: a["value"] for a in scan["entity"]}["image"] == "<array float64 3×4>"
    assert client.get("/api/animal/animal?k.animal=999").json()["entity"] is None

    histogram = client.get("/api/animals/weights").json()
    assert histogram["data"][0]["type"] == "bar" and sum(histogram["data"][0]["y"]) == 52
    trace = client.get("/api/animal/trace?k.animal=1&k.scan=2").json()
    assert len(trace["data"]) == 1 and len(trace["data"][0]["y"]) == 50
    image = client.get("/api/animal/image?k.animal=1&k.scan=2").json()
    assert image["data"][0]["type"] == "heatmap" and image["data"][0]["z"][2][3] == 22.0
    diagram = client.get("/api/new/diagram")
    assert diagram.status_code == 200 and "<svg" in diagram.text

    csrf = client.app.state.viz.csrf  # type: ignore[attr-defined]
    good = {"animal": "100", "name": "newbie", "species": "rat", "sex": "F",
            "born": "2024-05-01", "weight": ""}
    assert client.post("/api/new/add", json=good).status_code == 403  # no form token
    response = client.post("/api/new/add", json=good, headers={"x-dj-csrf": csrf})
    assert response.status_code == 200, response.text
    assert response.json() == {"inserted": {"animal": "100"}}
    assert (pipeline.Animal & {"animal": 100}).fetch1("weight") is None
    duplicate = client.post("/api/new/add", json=good, headers={"x-dj-csrf": csrf})
    assert duplicate.status_code == 400 and "Traceback" not in duplicate.text
    bad = client.post("/api/new/add", json={**good, "animal": "101", "species": "cat"},
                      headers={"x-dj-csrf": csrf})
    assert bad.status_code == 400 and len(pipeline.Animal & {"animal": 101}) == 0
    missing = client.post("/api/new/add", json={"animal": "102"}, headers={"x-dj-csrf": csrf})
    assert missing.status_code == 400 and "name" in missing.json()["error"]


# ---- HTTP behaviour that does not depend on the backend (SQLite only) ----------------------
@pytest.fixture
def sqlite_pipeline(tmp_path: Any) -> Iterator[tuple[types.SimpleNamespace, dj.Connection]]:
    connection = dj.Connection(f"sqlite:///{tmp_path / 'viz.db'}")
    schema = dj.Schema(unique_name("viz"), connection=connection)
    tables = declare(schema)
    fill(tables)
    name = unique_name("vizmod")
    module = types.ModuleType(name)
    module.__dict__.update(vars(tables))
    sys.modules[name] = module
    tables.module_name = name
    yield tables, connection
    sys.modules.pop(name, None)
    connection.close()


def test_read_only_by_default_sqlite(
        sqlite_pipeline: tuple[types.SimpleNamespace, dj.Connection]) -> None:
    tables, connection = sqlite_pipeline
    client = TestClient(create_app(standard_spec(tables.module_name), connection=connection))
    assert client.app.state.viz.forms is False  # type: ignore[attr-defined]
    csrf = client.app.state.viz.csrf  # type: ignore[attr-defined]
    response = client.post("/api/new/add", json={"animal": "200"}, headers={"x-dj-csrf": csrf})
    assert response.status_code == 403 and len(tables.Animal & {"animal": 200}) == 0
    for method in (client.put, client.delete):
        assert method("/api/animals/animals").status_code == 405
    assert client.get("/api/nope/nothing").status_code == 404
    assert client.get("/p/nope").status_code == 404
    assert client.get("/p/animal").status_code == 400  # a keyed page without its key


def test_errors_reach_the_browser_without_tracebacks_sqlite(
        sqlite_pipeline: tuple[types.SimpleNamespace, dj.Connection],
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    tables, connection = sqlite_pipeline
    client = TestClient(create_app(standard_spec(tables.module_name), connection=connection),
                        raise_server_exceptions=False)

    def explode(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret password=hunter2 at /home/lab/db")

    monkeypatch.setattr("datajoint_sa.viz.query.page_of", explode)
    response = client.get("/api/animals/animals")
    assert response.status_code == 500
    assert response.json() == {"error": "internal error (the server's log has the details)"}
    assert "hunter2" in caplog.text  # the log has it, the browser does not


def test_only_loopback_host_names_are_answered_sqlite(
        sqlite_pipeline: tuple[types.SimpleNamespace, dj.Connection]) -> None:
    from datajoint_sa.viz.app import LOOPBACK_HOSTS

    tables, connection = sqlite_pipeline
    app = create_app(standard_spec(tables.module_name), connection=connection,
                     allowed_hosts=list(LOOPBACK_HOSTS))
    client = TestClient(app, base_url="http://127.0.0.1:8000")
    assert client.get("/p/animals").status_code == 200
    assert client.get("/p/animals", headers={"host": "localhost:8000"}).status_code == 200
    assert client.get("/p/animals", headers={"host": "[::1]:8000"}).status_code == 200
    rebound = client.get("/api/animals/animals", headers={"host": "evil.example:8000"})
    assert rebound.status_code == 400 and "animal_" not in rebound.text


def test_token_auth_sqlite(sqlite_pipeline: tuple[types.SimpleNamespace, dj.Connection],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    tables, connection = sqlite_pipeline
    monkeypatch.setenv("VIZ_TEST_TOKEN", "s3cret-token")
    app = create_app(standard_spec(tables.module_name,
                                   auth={"type": "token", "env": "VIZ_TEST_TOKEN"}),
                     connection=connection)
    client = TestClient(app)
    assert client.get("/api/animals/animals").status_code == 401
    assert client.get("/api/animals/animals",
                      headers={"authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/api/animals/animals",
                      headers={"authorization": "Bearer s3cret-token"}).status_code == 200
    first = client.get("/p/animals?token=s3cret-token", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/p/animals"
    assert "httponly" in first.headers["set-cookie"].lower()
    assert client.get("/api/animals/animals").status_code == 200  # the cookie now


def test_basic_auth_sqlite(sqlite_pipeline: tuple[types.SimpleNamespace, dj.Connection],
                           monkeypatch: pytest.MonkeyPatch) -> None:
    tables, connection = sqlite_pipeline
    monkeypatch.setenv("VIZ_TEST_USER", "lab")
    monkeypatch.setenv("VIZ_TEST_PASSWORD", "pa:ss")
    client = TestClient(create_app(standard_spec(
        tables.module_name, auth={"type": "basic", "user_env": "VIZ_TEST_USER",
                                  "password_env": "VIZ_TEST_PASSWORD"}), connection=connection))

    def basic(user: str, password: str) -> dict[str, str]:
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        return {"authorization": f"Basic {token}"}

    denied = client.get("/p/animals")
    assert denied.status_code == 401 and "basic" in denied.headers["www-authenticate"].lower()
    assert client.get("/p/animals", headers=basic("lab", "wrong")).status_code == 401
    assert client.get("/p/animals", headers=basic("lab", "pa:ss")).status_code == 200


def test_cli_checks_the_spec_before_serving_sqlite(
        sqlite_pipeline: tuple[types.SimpleNamespace, dj.Connection], tmp_path: Any,
        capsys: pytest.CaptureFixture[str]) -> None:
    from datajoint_sa.viz import cli

    tables, connection = sqlite_pipeline
    url = connection.url.render_as_string(hide_password=False)
    bad = tmp_path / "bad.yaml"
    bad.write_text(f"module: {tables.module_name}\npages:\n  - name: a\n    components:\n"
                   "      - {type: table, query: Nope}\n")
    assert cli([str(bad), "--url", url]) == 2
    err = capsys.readouterr().err
    assert "unknown table 'Nope'" in err and "Traceback" not in err
    good = tmp_path / "good.yaml"
    good.write_text(f"module: {tables.module_name}\npages:\n  - name: a\n    components:\n"
                    "      - {type: table, query: Animal}\n")
    assert cli([str(good), "--url", url, "--check"]) == 0
    assert "the spec is valid" in capsys.readouterr().out

    from datajoint_sa.cli import main  # `datajoint-sa [--url URL] viz ...` forwards to cli()

    assert main(["--url", url, "viz", str(good), "--check"]) == 0
    assert main(["viz", str(bad), "--url", url]) == 2
    assert "unknown table 'Nope'" in capsys.readouterr().err
    assert main(["viz", "--help"]) == 0
    assert "--forms" in capsys.readouterr().out


def test_example_spec_is_valid() -> None:
    spec = load_spec(Path(__file__).resolve().parents[1] / "examples" / "neuro" / "app.yaml")
    assert spec.module == "examples.neuro.pipeline" and not spec.forms
    kinds = {c.get("kind") for p in spec.pages for c in p.components if c.type == "plot"}
    assert {"scatter", "histogram", "line", "heatmap"} <= kinds

