"""Forms of the web app on every backend, without a browser: insert, update and delete
through the library's own write paths, the delete's cascade shown before anything goes, and
the form token plus same-site check on every POST.

The pipeline (Species -> Animal -> Scan with its part Roi, and Surgery through a renamed
foreign key) is test_viz.py's. The browser drives the same forms in test_viz_browser_forms.py.
"""

from __future__ import annotations

import json
import re
import sys
import types
from collections.abc import Iterator
from typing import Any

import pytest

import datajoint_sa as dj

pytest.importorskip("starlette", reason="the viz extra is not installed")
from starlette.testclient import TestClient  # noqa: E402

from datajoint_sa.viz import create_app  # noqa: E402
from datajoint_sa.viz.spec import SpecError, load_spec  # noqa: E402

from .conftest import unique_name  # noqa: E402
from .test_viz import declare, fill  # noqa: E402


@pytest.fixture
def pipeline(schema: dj.Schema) -> Iterator[types.SimpleNamespace]:
    tables = declare(schema)
    fill(tables)
    name = unique_name("vizforms")
    module = types.ModuleType(name)
    module.__dict__.update(vars(tables), schema=schema)
    sys.modules[name] = module
    tables.module_name = name
    tables.schema = schema
    yield tables
    sys.modules.pop(name, None)


def forms_spec(module: str, actions: list[str] | None = None) -> dict[str, Any]:
    form: dict[str, Any] = {"type": "form", "name": "animal", "table": "Animal"}
    if actions is not None:
        form["actions"] = actions
    return {"module": module, "forms": True, "pages": [
        {"name": "edit", "components": [
            {"type": "table", "name": "animals", "query": "Animal"}, form]}]}


def page_config(client: TestClient, page: str = "edit") -> dict[str, Any]:
    html = client.get(f"/p/{page}").text
    found = re.search(r'<script type="application/json" id="dj-config">(.*?)</script>', html,
                      re.DOTALL)
    assert found, html[:500]
    return dict(json.loads(found.group(1)))


def post(client: TestClient, path: str, body: Any, csrf: str, **headers: str) -> Any:
    return client.post(path, json=body, headers={"x-dj-csrf": csrf, **headers})


def test_insert_validates_through_the_insert_path(pipeline: types.SimpleNamespace,
                                                  connection: dj.Connection) -> None:
    client = TestClient(create_app(forms_spec(pipeline.module_name,
                                              ["insert", "update", "delete"]),
                                   connection=connection))
    config = page_config(client)
    form = next(c for c in config["components"] if c["type"] == "form")
    assert form["actions"] == ["insert", "update", "delete"] and form["primary_key"] == [
        "animal"]
    fields = {f["name"]: f for f in form["fields"]}
    # the foreign key's drop-down holds the parent's values (the page adds an empty first
    # option, so none is preselected)
    assert fields["species"]["input"] == "select"
    assert fields["species"]["options"] == ["mouse", "rat"]
    assert fields["sex"]["options"] == ["F", "M"] and fields["weight"]["required"] is False
    csrf = config["csrf"]
    good = {"animal": "300", "name": "newbie", "species": "rat", "sex": "F",
            "born": "2024-05-01", "weight": ""}

    # the form token and the same-site check, before anything is read from the body
    assert client.post("/api/edit/animal", json=good).status_code == 403
    assert post(client, "/api/edit/animal", good, "stale").status_code == 403
    cross = post(client, "/api/edit/animal", good, csrf, origin="https://evil.example")
    assert cross.status_code == 403 and "cross-site" in cross.json()["error"]
    fetch_site = post(client, "/api/edit/animal", good, csrf, **{"sec-fetch-site": "cross-site"})
    assert fetch_site.status_code == 403
    assert len(pipeline.Animal & {"animal": 300}) == 0

    # bad values are refused naming their attribute, and nothing is written
    for change, field in (({"weight": "heavy"}, "weight"), ({"born": "yesterday"}, "born"),
                          ({"animal": "1e99"}, "animal"), ({"name": ""}, "name")):
        answer = post(client, "/api/edit/animal", {**good, **change}, csrf)
        assert answer.status_code == 400, (change, answer.text)
        assert answer.json()["field"] == field and field in answer.json()["error"]
    assert post(client, "/api/edit/animal", {**good, "colour": "red"}, csrf).status_code == 400
    cat = post(client, "/api/edit/animal", {**good, "species": "cat"}, csrf)  # no such parent
    assert cat.status_code == 400 and "Traceback" not in cat.text
    assert len(pipeline.Animal & {"animal": 300}) == 0

    same_site = post(client, "/api/edit/animal", good, csrf, origin="http://testserver",
                     **{"sec-fetch-site": "same-origin"})
    assert same_site.status_code == 200, same_site.text
    assert same_site.json() == {"inserted": {"animal": "300"}}
    row = (pipeline.Animal & {"animal": 300}).fetch1()
    assert row["name"] == "newbie" and row["weight"] is None and row["species"] == "rat"
    duplicate = post(client, "/api/edit/animal", good, csrf)
    assert duplicate.status_code == 400 and "Animal" in duplicate.json()["error"]
    assert client.get("/api/edit/animals?count=1").json()["total"] == 58  # counted afresh


def test_update_reads_and_changes_one_row(pipeline: types.SimpleNamespace,
                                         connection: dj.Connection) -> None:
    client = TestClient(create_app(forms_spec(pipeline.module_name, ["update"]),
                                   connection=connection))
    csrf = page_config(client)["csrf"]
    row = client.get("/api/edit/animal/row?k.animal=2").json()["row"]
    assert row["name"] == "animal_02" and row["born"] == "2024-01-03"
    assert row["species"] == "rat" or row["species"] == "mouse"
    answer = post(client, "/api/edit/animal/update",
                  {**row, "name": "renamed", "weight": "", "sex": "F"}, csrf)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"updated": {"animal": "2"}}
    changed = (pipeline.Animal & {"animal": 2}).fetch1()
    assert changed["name"] == "renamed" and changed["weight"] is None and changed["sex"] == "F"
    # a NOT NULL attribute cannot be emptied; a missing row is an error; nothing changes
    empty = post(client, "/api/edit/animal/update", {"animal": "2", "name": ""}, csrf)
    assert empty.status_code == 400 and "name" in empty.json()["error"]
    missing = post(client, "/api/edit/animal/update", {"animal": "999", "name": "x"}, csrf)
    assert missing.status_code == 400
    assert (pipeline.Animal & {"animal": 2}).fetch1("name") == "renamed"
    assert client.get("/api/edit/animal/row?k.animal=999").status_code == 400
    # an action the spec did not list is refused
    assert post(client, "/api/edit/animal", {**row, "animal": "400"}, csrf).status_code == 403
    assert post(client, "/api/edit/animal/delete", {"key": {"animal": "2"}},
                csrf).status_code == 403
    assert len(pipeline.Animal & {"animal": 2}) == 1


def test_delete_shows_the_cascade_then_deletes_what_was_shown(
        pipeline: types.SimpleNamespace, connection: dj.Connection) -> None:
    client = TestClient(create_app(forms_spec(pipeline.module_name, ["insert", "delete"]),
                                   connection=connection))
    csrf = page_config(client)["csrf"]
    database = pipeline.schema.database
    before = {t: len(getattr(pipeline, t)()) for t in ("Animal", "Scan", "Surgery")}
    before["Scan.Roi"] = len(pipeline.Scan.Roi())

    plan = post(client, "/api/edit/animal/delete", {"key": {"animal": "1"}}, csrf).json()
    tables = {item["table"]: item for item in plan["plan"]}
    assert {t: i["count"] for t, i in tables.items()} == {
        "Animal": 1, "Scan": 3, "Scan.Roi": 4, "Surgery": 1}
    assert plan["total"] == 9 and plan["changed"] is False
    assert tables["Scan"]["keys"] == [{"animal": "1", "scan": str(s)} for s in (1, 2, 3)]
    assert tables["Surgery"]["keys"] == []  # its heading names the animal `patient`
    assert set(plan["counts"]) == {f"{database}.{t}" for t in (
        pipeline.Animal.table_name, pipeline.Scan.table_name, pipeline.Scan.Roi.table_name,
        pipeline.Surgery.table_name)}
    after_plan = {t: len(getattr(pipeline, t)()) for t in ("Animal", "Scan", "Surgery")}
    after_plan["Scan.Roi"] = len(pipeline.Scan.Roi())
    assert after_plan == before  # planning deleted nothing

    # the cascade grew since it was shown: nothing is deleted, the new plan comes back
    pipeline.Scan.insert1({"animal": 1, "scan": 9})
    stale = post(client, "/api/edit/animal/delete",
                 {"key": {"animal": "1"}, "confirm": plan["counts"]}, csrf)
    assert stale.status_code == 409 and stale.json()["total"] == 10
    assert len(pipeline.Animal & {"animal": 1}) == 1 and len(pipeline.Scan & {"animal": 1}) == 4

    cross = post(client, "/api/edit/animal/delete",
                 {"key": {"animal": "1"}, "confirm": stale.json()["counts"]}, csrf,
                 origin="http://elsewhere.example")
    assert cross.status_code == 403 and len(pipeline.Animal & {"animal": 1}) == 1
    done = post(client, "/api/edit/animal/delete",
                {"key": {"animal": "1"}, "confirm": stale.json()["counts"]}, csrf)
    assert done.status_code == 200, done.text
    assert done.json()["total"] == 10
    assert len(pipeline.Animal & {"animal": 1}) == 0 and len(pipeline.Scan & {"animal": 1}) == 0
    assert len(pipeline.Surgery & {"patient": 1}) == 0
    assert len(pipeline.Animal()) == before["Animal"] - 1  # only that animal

    nothing = post(client, "/api/edit/animal/delete", {"key": {"animal": "777"}}, csrf).json()
    assert nothing["total"] == 0 and nothing["plan"] == []
    bad_key = post(client, "/api/edit/animal/delete", {"key": {"animal": "x"}}, csrf)
    assert bad_key.status_code == 400 and bad_key.json()["field"] == "animal"
    assert post(client, "/api/edit/animal/delete", {"key": {"animal": "2"},
                                                    "confirm": "yes"}, csrf).status_code == 400


def test_form_actions_are_checked_in_the_spec() -> None:
    with pytest.raises(SpecError, match="actions must be some of insert, update, delete"):
        load_spec({"module": "m", "pages": [{"name": "a", "components": [
            {"type": "form", "table": "T", "actions": ["insert", "truncate"]}]}]})
    spec = load_spec({"module": "m", "pages": [{"name": "a", "components": [
        {"type": "form", "table": "T", "actions": "update, delete"}]}]})
    assert spec.pages[0].components[0].get("actions") == ["update", "delete"]


def test_a_parent_of_several_key_attributes_is_one_drop_down(
        pipeline: types.SimpleNamespace, connection: dj.Connection) -> None:
    schema = pipeline.schema
    Scan = pipeline.Scan  # noqa: N806 - the definition below names it

    @schema
    class Review(dj.Manual):
        definition = """
        review : int32
        ---
        -> Scan
        verdict = null : varchar(20)
        """

    assert Scan is not None
    sys.modules[pipeline.module_name].Review = Review  # type: ignore[attr-defined]
    spec = {"module": pipeline.module_name, "forms": True, "pages": [
        {"name": "edit", "components": [{"type": "form", "name": "review", "table": "Review"}]}]}
    client = TestClient(create_app(spec, connection=connection))
    config = page_config(client)
    form = next(c for c in config["components"] if c["type"] == "form")
    assert form["parents"] == [{"table": "Scan", "attributes": ["animal", "scan"],
                                "options": [{"animal": "1", "scan": str(s)} for s in (1, 2, 3)]}]
    fields = {f["name"]: f for f in form["fields"]}
    assert fields["animal"]["input"] == "number"  # filled by the Scan drop-down, or typed
    answer = post(client, "/api/edit/review", {"review": "1", "animal": "1", "scan": "2"},
                  config["csrf"])
    assert answer.status_code == 200, answer.text
    assert (Review & {"review": 1}).fetch1("scan") == 2
