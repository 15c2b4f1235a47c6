"""The JSON Schema of the app spec, for editor completion and checking (YAML language servers
read it from a `# yaml-language-server: $schema=...` line).

Generated from spec.py's component registry, so a kind or key added there appears here;
`spec.schema.json` next to this module is its output, kept current by a test:

    python -m datajoint_sa.viz.schema > datajoint_sa/viz/spec.schema.json

The schema describes shape only; spec.py's checks (and bind.py's, against the database)
remain the authority on what an app accepts.
"""

from __future__ import annotations

import json
from typing import Any

from . import spec as spec_module

SCHEMA_ID = "https://datajoint-sa.invalid/viz/spec.schema.json"

_TEXT = {"type": "string"}
_NAMES = {"oneOf": [{"type": "array", "items": {"type": "string"}},
                    {"type": "string", "description": "names separated by commas"}]}
_POSITIVE = {"type": "integer", "minimum": 1}
_NUMBER = {"type": "number"}
_VALUE = {"type": ["string", "number"]}

#: every component key: its schema and what it means
OPTIONS: dict[str, tuple[dict[str, Any], str]] = {
    "type": (_TEXT, "the component's kind"),
    "name": ({"type": "string", "pattern": spec_module.NAME.pattern},
             "its name on the page (in the URL state, restricted_by, filtered_by); "
             "default: the kind and its position"),
    "title": (_TEXT, "the heading shown above it"),
    "restricted_by": (_TEXT, "a table component of the same page: this one shows only what "
                             "matches the row picked there"),
    "cell": ({"$ref": "#/$defs/cell"}, "where it sits in the page's fixed grid"),
    "filtered_by": (_NAMES, "the page's filters that restrict it (default: every filter "
                            "whose attribute its query has)"),
    "query": (_TEXT, "a query expression over the pipeline's tables: names, Master.Part, "
                     "* & - + @ ^, .proj(), .aggr(), .join() and literal values"),
    "columns": (_NAMES, "the attributes shown (default: all but blobs)"),
    "filters": ({"oneOf": [{"type": "boolean"}, _NAMES]},
                "column filters under the heading: true (every shown column), false, or "
                "the columns"),
    "sort": (_TEXT, "the default order: 'attr' or 'attr desc', separated by commas"),
    "page_size": ({**_POSITIVE, "maximum": spec_module.MAX_PAGE_SIZE}, "rows per page"),
    "link": (_TEXT, "a page (with a key) that a click on a row opens"),
    "parts": ({"type": "boolean"}, "show the entity's part tables"),
    "children": ({"type": "boolean"}, "show the entity's child tables"),
    "kind": ({"enum": list(spec_module.PLOT_KINDS)}, "the kind of plot"),
    "x": (_TEXT, "the attribute on the x axis (numbers, dates, or a blob of numbers)"),
    "y": (_TEXT, "the attribute on the y axis (numbers or a blob of numbers)"),
    "z": (_TEXT, "a blob attribute holding a 2-D array (or 1-D arrays stacked by row)"),
    "series": (_TEXT, "an attribute whose values split the data into traces (line, scatter) "
                      "or overlaid histograms"),
    "bins": ({**_POSITIVE, "maximum": 1000}, "the histogram's number of bins (default 30)"),
    "max_rows": ({**_POSITIVE, "maximum": 100_000}, "the most rows fetched"),
    "max_points": ({**_POSITIVE, "maximum": 2_000_000}, "the most points sent to the browser"),
    "figure": (_TEXT, "an attribute holding a Plotly figure as JSON (kind: plotly)"),
    "color": (_TEXT, "a numeric attribute colouring a scatter's markers"),
    "colorscale": (_TEXT, "a Plotly colour scale name (default: RdBu around 0 for signed "
                          "data, Viridis otherwise)"),
    "tables": (_NAMES, "the tables drawn (default: every schema of the pipeline)"),
    "table": (_TEXT, "the Manual table the form writes to"),
    "actions": ({"oneOf": [{"type": "array", "items": {"enum": list(spec_module.FORM_ACTIONS)}},
                           {"type": "string"}]},
                "what the form may do: insert, update, delete (default insert)"),
    "content": (_TEXT, "the text (markdown: Markdown, raw HTML shown as text)"),
    "url": ({"type": "string", "pattern": "^https?://"}, "the http(s) address shown"),
    "height": ({**_POSITIVE, "maximum": 4000}, "height in pixels"),
    "attribute": (_TEXT, "the attribute it shows (image, slideshow) or restricts (filter)"),
    "per_row": ({**_POSITIVE, "maximum": spec_module.MAX_GRID_COLUMNS},
                "cells per row of the dynamic grid (default 3)"),
    "max_cells": ({**_POSITIVE, "maximum": 200}, "the most cells (default 24)"),
    "components": ({"type": "array", "items": {"$ref": "#/$defs/component"}},
                   "what each cell shows, restricted to the cell's row"),
    "control": ({"enum": list(spec_module.FILTER_CONTROLS)}, "the filter's control"),
    "options": ({"type": "array", "items": _VALUE}, "the choices of a dropdown or radio "
                                                    "(default: the values in `query`)"),
    "min": (_NUMBER, "the slider's low end (default: the smallest value in `query`)"),
    "max": (_NUMBER, "the slider's high end (default: the largest value in `query`)"),
    "step": (_NUMBER, "the slider's step (default: 1 for integers, any otherwise)"),
    "op": ({"enum": list(spec_module.FILTER_OPS)},
           "how the slider's value restricts: attribute op value (default =)"),
    "depends_on": (_NAMES, "filters restricting this filter's choices"),
    "default": (_VALUE, "the filter's value when the URL has none"),
}

_PAGE: dict[str, tuple[dict[str, Any], str]] = {
    "name": ({"type": "string", "pattern": spec_module.NAME.pattern},
             "the page's name, its address /p/<name>"),
    "title": (_TEXT, "the page's heading and menu entry"),
    "key": (_NAMES, "attributes a link must give: the page shows one entity"),
    "hidden": ({"type": "boolean"}, "left out of the menu (default: true with a key)"),
    "columns": ({**_POSITIVE, "maximum": spec_module.MAX_GRID_COLUMNS},
                "columns of the page's fixed grid (default 1)"),
    "components": ({"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/component"}},
                   "what the page shows"),
}

_APP: dict[str, tuple[dict[str, Any], str]] = {
    "title": (_TEXT, "the app's title"),
    "module": (_TEXT, "the pipeline's Python module (imported, never creating tables)"),
    "activate": ({"type": "object"}, "keyword arguments of the module's activate()"),
    "schemas": ({"oneOf": [{"type": "object", "additionalProperties": {"type": "string"}},
                           {"type": "array", "items": {"type": "string"}}]},
                "schemas read from the database instead: {alias: schema name}"),
    "forms": ({"type": "boolean"}, "enable the forms (default false: read-only)"),
    "auth": ({"type": "object", "properties": {"type": _TEXT}, "required": ["type"]},
             "who may use the app (see docs/apps-forms-auth.md and docs/security.md)"),
    "page_size": ({**_POSITIVE, "maximum": spec_module.MAX_PAGE_SIZE},
                  "rows per page of every table (default 25)"),
    "pages": ({"type": "array", "minItems": 1, "items": {"$ref": "#/$defs/page"}},
              "the app's pages"),
}

_CELL = {"row": "the first row (from 1)", "column": "the first column (from 1)",
         "width": "columns spanned (default 1)", "height": "rows spanned (default 1)"}


def _properties(table: dict[str, tuple[dict[str, Any], str]], keys: list[str]
                ) -> dict[str, Any]:
    return {key: {**table[key][0], "description": table[key][1]} for key in keys}


def _component(kind: str) -> dict[str, Any]:
    keys = sorted(spec_module._COMMON_KEYS | spec_module._COMPONENT_KEYS[kind])
    properties = _properties(OPTIONS, [k for k in keys if k in OPTIONS])
    properties.update({k: {"description": "see the component's documentation"}
                       for k in keys if k not in OPTIONS})
    properties["type"] = {"const": kind}
    return {"title": f"{kind} component", "type": "object", "properties": properties,
            "required": ["type", *spec_module._REQUIRED.get(kind, ())],
            "additionalProperties": False}


def schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of an app spec."""
    kinds = spec_module.component_types()
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "datajoint-sa viz app spec",
        "description": "A web app over a DataJoint pipeline: `datajoint-sa viz app.yaml`.",
        "type": "object",
        "properties": _properties(_APP, sorted(_APP)),
        "required": ["pages"],
        "additionalProperties": False,
        "$defs": {
            "page": {"type": "object", "properties": _properties(_PAGE, sorted(_PAGE)),
                     "required": ["name", "components"], "additionalProperties": False},
            "cell": {"type": "object", "additionalProperties": False,
                     "properties": {k: {**_POSITIVE, "description": d}
                                    for k, d in _CELL.items()}},
            "component": {"oneOf": [{"$ref": f"#/$defs/{kind}"} for kind in kinds]},
            **{kind: _component(kind) for kind in kinds},
        },
    }


def schema_text() -> str:
    return json.dumps(schema(), indent=2, sort_keys=False) + "\n"


if __name__ == "__main__":
    print(schema_text(), end="")
