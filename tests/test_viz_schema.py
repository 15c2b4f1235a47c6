"""The spec's JSON Schema: current with the component registry (both copies), valid, and in
agreement with the spec's own checks; docs/apps.md documents every kind and key."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from datajoint_sa.viz import load_spec
from datajoint_sa.viz import spec as spec_module
from datajoint_sa.viz.schema import schema, schema_text
from datajoint_sa.viz.spec import SpecError

from .test_viz_browser_app import app_spec
from .test_viz_layouts import spec_of

ROOT = Path(__file__).resolve().parents[1]
COPIES = [ROOT / "datajoint_sa" / "viz" / "spec.schema.json", ROOT / "docs" / "spec.schema.json"]
REGENERATE = ("regenerate it: python -m datajoint_sa.viz.schema > datajoint_sa/viz/"
              "spec.schema.json && cp datajoint_sa/viz/spec.schema.json docs/")


@pytest.mark.parametrize("path", COPIES, ids=lambda p: str(p.relative_to(ROOT)))
def test_schema_file_is_current(path: Path) -> None:
    assert path.read_text() == schema_text(), f"{path.name} is stale; {REGENERATE}"


def validator() -> Any:
    jsonschema.Draft202012Validator.check_schema(schema())
    return jsonschema.Draft202012Validator(schema())


def test_specs_the_app_accepts_are_valid() -> None:
    check = validator()
    examples = [yaml.safe_load((ROOT / "examples" / "neuro" / "app.yaml").read_text()),
                spec_of("some.module"), app_spec("some.module")]
    for example in examples:
        load_spec(example)  # the app accepts it
        assert not [e.message for e in check.iter_errors(example)]


@pytest.mark.parametrize("component", [
    {"type": "tabel", "query": "A"},
    {"type": "table"},
    {"type": "table", "query": "A", "colour": "red"},
    {"type": "plot", "query": "A", "kind": "pie", "y": "a"},
    {"type": "filter", "control": "knob", "attribute": "a"},
    {"type": "table", "query": "A", "cell": {"span": 2}},
    {"type": "iframe", "url": "ftp://example.org"},
])
def test_specs_the_app_refuses_are_invalid(component: dict[str, Any]) -> None:
    data = {"module": "m", "pages": [{"name": "p", "columns": 2, "components": [component]}]}
    with pytest.raises(SpecError):
        load_spec(data)
    assert list(validator().iter_errors(data))


def test_docs_document_every_kind_and_key() -> None:
    text = (ROOT / "docs" / "apps.md").read_text()
    documented = set(re.findall(r"`([a-z_]+)`", text))
    forms = ROOT / "docs" / "apps-forms-auth.md"  # the forms' own page, when it exists
    if forms.exists():
        documented |= set(re.findall(r"`([a-z_]+)`", forms.read_text()))
    for kind in spec_module.component_types():
        headings = re.findall(r"^###? (.*)$", text, re.M)
        assert any(kind in h.lower() for h in headings) or f"`type: {kind}`" in text, kind
        keys = spec_module._COMPONENT_KEYS[kind]
        if kind == "form" and not forms.exists():
            keys = {"table"}
        for key in keys:
            assert key in documented, f"docs/apps.md does not document {kind}'s {key!r}"
    for key in spec_module._APP_KEYS | spec_module._PAGE_KEYS | spec_module._COMMON_KEYS:
        assert key in documented, key
    for name in re.findall(r"figures/apps/([\w-]+\.png)", text):
        assert (ROOT / "docs" / "figures" / "apps" / name).exists(), name


def test_schema_lists_every_registered_kind() -> None:
    kinds = {ref["$ref"].rsplit("/", 1)[1] for ref in schema()["$defs"]["component"]["oneOf"]}
    assert kinds == set(spec_module.component_types())
    assert json.loads(schema_text()) == schema()
