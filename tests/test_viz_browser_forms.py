"""Forms and the session auth modes in a real headless browser (Debian's Chromium through
Playwright, as test_viz_browser.py, whose fixtures these tests share).

- forms on SQLite: nothing preselected in the drop-downs, an error next to the field it
  names, insert, load-by-key and update, a row picked in a table filling the form, and a
  delete whose cascade is shown (and can be cancelled) before anything is deleted;
- OpenID Connect: the whole code flow through tests/oidc_provider.py on its own port;
- database login (PostgreSQL, else MariaDB; skipped only when neither server is tested): a
  SELECT-only account reads, is refused an insert, and logs out.

Screenshots go to each test's temporary folder, and also to $DJ_VIZ_SCREENSHOTS when set
(docs/figures/apps-*.png are made that way).
"""

from __future__ import annotations

import os
import shutil
import sys
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import datajoint_sa as dj

from .conftest import BACKENDS, backend_url, unique_name
from .oidc_provider import provider, serve
from .test_viz import declare, fill
from .test_viz_auth import ReadOnlyUser
from .test_viz_browser import (  # noqa: F401 - fixtures
    CHROMIUM,
    browser_context,
    expect,
    page,
)
from .test_viz_forms import forms_spec

pytestmark = pytest.mark.skipif(not CHROMIUM.exists() and not os.environ.get("CI"),
                                reason="browser tests need Debian's chromium at "
                                       "/usr/bin/chromium (apt-get install chromium)")


def shot(view: Any, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    view.screenshot(path=path, full_page=True)
    docs = os.environ.get("DJ_VIZ_SCREENSHOTS")
    if docs:
        shutil.copy(path, Path(docs) / f"apps-{name}.png")


def module_of(schema: dj.Schema) -> tuple[str, types.SimpleNamespace]:
    tables = declare(schema)
    fill(tables)
    name = unique_name("vizbrowserforms")
    module = types.ModuleType(name)
    module.__dict__.update(vars(tables), schema=schema)
    sys.modules[name] = module
    return name, tables


@pytest.fixture
def sqlite_pipeline(tmp_path: Path) -> Iterator[tuple[str, types.SimpleNamespace,
                                                      dj.Connection]]:
    connection = dj.Connection(f"sqlite:///{tmp_path / 'forms.db'}")
    name, tables = module_of(dj.Schema(unique_name("vizforms"), connection=connection))
    yield name, tables, connection
    sys.modules.pop(name, None)
    connection.close()


def test_forms_insert_update_and_delete_with_the_cascade_shown(
        sqlite_pipeline: tuple[str, types.SimpleNamespace, dj.Connection],
        page: Any, tmp_path: Path) -> None:  # noqa: F811
    from datajoint_sa.viz import create_app

    module, tables, connection = sqlite_pipeline
    spec = forms_spec(module, ["insert", "update", "delete"])
    spec["pages"][0]["components"][1]["restricted_by"] = "animals"  # a picked row fills it
    app = create_app(spec, connection=connection)
    with serve(app) as url:
        page.goto(f"{url}/p/edit")
        form = "#c-animal form"
        species = page.locator(f"{form} [name=species]")
        expect(species).to_have_value("")  # nothing preselected
        options = species.locator("option").all_inner_texts()
        assert options == ["— choose —", "mouse", "rat"]
        expect(page.locator(f"{form} [name=sex]")).to_have_value("")

        page.fill(f"{form} [name=animal]", "300")
        page.fill(f"{form} [name=name]", "newbie")
        page.select_option(f"{form} [name=sex]", "F")
        page.fill(f"{form} [name=born]", "2024-05-01")
        page.click(f"{form} button.dj-submit")
        error = page.locator(f"{form} .dj-form-result.dj-error")
        expect(error).to_contain_text("species")  # named by the server
        expect(species).to_have_attribute("aria-invalid", "true")
        shot(page, tmp_path, "form-error")
        assert len(tables.Animal & {"animal": 300}) == 0
        page.select_option(f"{form} [name=species]", "rat")
        page.click(f"{form} button.dj-submit")
        expect(page.locator(f"{form} .dj-form-result.dj-ok")).to_contain_text(
            "Inserted animal = 300")
        assert (tables.Animal & {"animal": 300}).fetch1("species") == "rat"

        page.fill(f"{form} [name=animal]", "2")
        page.click(f"{form} button.dj-load")
        expect(page.locator(f"{form} [name=name]")).to_have_value("animal_02")
        page.fill(f"{form} [name=name]", "renamed")
        page.click(f"{form} button.dj-update")
        expect(page.locator(f"{form} .dj-form-result.dj-ok")).to_contain_text(
            "Updated animal = 2")
        assert (tables.Animal & {"animal": 2}).fetch1("name") == "renamed"
        page.locator("#c-animals tr.dj-row", has_text="animal_03").click()
        expect(page.locator(f"{form} [name=name]")).to_have_value("animal_03")
        expect(page.locator(f"{form} [name=animal]")).to_have_value("3")

        page.fill(f"{form} [name=animal]", "1")
        page.click(f"{form} button.dj-delete")
        panel = page.locator("#c-animal .dj-confirm")
        expect(panel).to_contain_text("removes 9 rows")
        counts = {item.get_attribute("data-table"): int(item.get_attribute("data-count"))
                  for item in panel.locator("ul.dj-cascade > li").all()}
        assert counts == {"Animal": 1, "Scan": 3, "Scan.Roi": 4, "Surgery": 1}
        expect(panel.locator("li[data-table=Scan] .dj-cascade-keys li")).to_have_count(3)
        shot(page, tmp_path, "form-delete-cascade")
        assert len(tables.Animal & {"animal": 1}) == 1 and len(tables.Scan.Roi()) == 4
        panel.locator("button.dj-cancel").click()
        expect(panel).to_have_count(0)
        assert len(tables.Animal & {"animal": 1}) == 1

        page.click(f"{form} button.dj-delete")
        page.locator("#c-animal .dj-confirm button.dj-confirm-delete").click()
        expect(page.locator(f"{form} .dj-form-result.dj-ok")).to_contain_text(
            "Deleted 9 rows")
        assert len(tables.Animal & {"animal": 1}) == 0 and len(tables.Scan.Roi()) == 0
        assert len(tables.Surgery & {"patient": 1}) == 0


def test_oidc_login_in_the_browser(
        sqlite_pipeline: tuple[str, types.SimpleNamespace, dj.Connection],
        page: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:  # noqa: F811
    from datajoint_sa.viz import create_app

    module, _, connection = sqlite_pipeline
    monkeypatch.setenv("VIZ_OIDC_SECRET", "provider-secret")
    with provider() as idp:
        spec = {**forms_spec(module), "auth": {
            "type": "oidc", "issuer": idp.issuer, "client_id": "dj-viz",
            "client_secret_env": "VIZ_OIDC_SECRET"}}
        with serve(create_app(spec, connection=connection)) as url:
            page.goto(f"{url}/p/edit?x=1")  # to the provider and back to this address
            expect(page.locator(".dj-logout .dj-user")).to_have_text("alice@example.org")
            assert page.url == f"{url}/p/edit?x=1"
            expect(page.locator("#c-animals tr.dj-row").first).to_be_visible()
            shot(page, tmp_path, "oidc-logged-in")
            page.locator(".dj-logout button").click()
            expect(page.locator(".dj-logged-out")).to_be_visible()
            page.goto(f"{url}/api/edit/animals")
            assert "log in first" in page.content()
            assert idp.token_requests == 1


def test_database_login_in_the_browser(page: Any, tmp_path: Path,  # noqa: F811
                                       tmp_path_factory: pytest.TempPathFactory) -> None:
    from datajoint_sa.viz import create_app

    server = next((b for b in ("postgresql", "mysql") if b in BACKENDS), None)
    if server is None:
        pytest.skip("per-user database login needs PostgreSQL or MariaDB among the backends")
    connection = dj.Connection(backend_url(server, tmp_path_factory))
    schema = dj.Schema(unique_name("vizlogin"), connection=connection)
    module, tables = module_of(schema)
    reader = ReadOnlyUser(connection, schema.database)
    app_connection = dj.Connection(connection.url.set(database="")) \
        if server == "mysql" else connection
    try:
        spec = {**forms_spec(module), "auth": {"type": "database"}}
        with serve(create_app(spec, connection=app_connection)) as url:
            page.goto(f"{url}/p/edit")
            assert "/login?next=" in page.url
            page.fill("input[name=user]", reader.name)
            page.fill("input[name=password]", reader.password)
            shot(page, tmp_path, "database-login")
            page.click("button[type=submit]")
            expect(page.locator(".dj-logout .dj-user")).to_have_text(reader.name)
            expect(page.locator("#c-animals tr.dj-row").first).to_be_visible()
            form = "#c-animal form"
            page.fill(f"{form} [name=animal]", "300")
            page.fill(f"{form} [name=name]", "newbie")
            page.select_option(f"{form} [name=species]", "rat")
            page.select_option(f"{form} [name=sex]", "F")
            page.fill(f"{form} [name=born]", "2024-05-01")
            page.click(f"{form} button.dj-submit")
            expect(page.locator(f"{form} .dj-form-result.dj-error")).to_be_visible()
            assert len(tables.Animal & {"animal": 300}) == 0
            assert reader.sessions() == 1
            page.locator(".dj-logout button").click()
            expect(page.locator(".dj-logged-out")).to_be_visible()
            assert reader.sessions(expect=0) == 0
    finally:
        sys.modules.pop(module, None)
        if app_connection is not connection:
            app_connection.close()
        reader.drop()
        schema.drop(force=True)
        connection.close()


def test_a_composite_parent_drop_down_fills_its_fields(
        sqlite_pipeline: tuple[str, types.SimpleNamespace, dj.Connection],
        page: Any, tmp_path: Path) -> None:  # noqa: F811
    from datajoint_sa.viz import create_app

    module, tables, connection = sqlite_pipeline
    Scan = tables.Scan  # noqa: N806 - the definition below names it

    @tables.Animal._schema
    class Review(dj.Manual):
        definition = """
        review : int32
        ---
        -> Scan
        """

    assert Scan is not None
    sys.modules[module].Review = Review  # type: ignore[attr-defined]
    spec = {"module": module, "forms": True, "pages": [
        {"name": "edit", "components": [{"type": "form", "name": "review", "table": "Review"}]}]}
    with serve(create_app(spec, connection=connection)) as url:
        page.goto(f"{url}/p/edit")
        form = "#c-review form"
        pick = page.locator(f"{form} select.dj-parent[data-table=Scan]")
        expect(pick).to_have_value("")  # nothing preselected
        pick.select_option(label="animal = 1, scan = 2")
        expect(page.locator(f"{form} [name=animal]")).to_have_value("1")
        expect(page.locator(f"{form} [name=scan]")).to_have_value("2")
        page.fill(f"{form} [name=review]", "7")
        page.click(f"{form} button.dj-submit")
        expect(page.locator(f"{form} .dj-form-result.dj-ok")).to_contain_text("review = 7")
        shot(page, tmp_path, "form-composite-parent")
    assert (Review & {"review": 7}).fetch1("scan") == 2
