"""The data of the smaller components: a metadata card, a dynamic grid's cells, images and
slideshows, Markdown text.

Each function takes an already restricted query (the page key, the filters and the cell's
row applied by app.py) and returns JSON-ready data or, for an image, its bytes and media
type. Images are sent as stored when they are PNG, JPEG, GIF or WebP files (told by their
first bytes, never by a name); numeric arrays are drawn as greyscale PNGs with Pillow.
"""

from __future__ import annotations

import io
import json
import re
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..expression import QueryExpression
from .query import RequestError, describe_value, jsonable, key_text

MAX_CELLS = 24
MAX_SLIDES = 100
#: the largest figure (characters of JSON) a plotly plot sends
MAX_FIGURE_TEXT = 20_000_000
_UNIT = re.compile(r"\[([^\[\]]{1,32})\]")
_SIGNATURES = ((b"\x89PNG\r\n\x1a\n", "image/png"), (b"\xff\xd8\xff", "image/jpeg"),
               (b"GIF87a", "image/gif"), (b"GIF89a", "image/gif"))


def unit_of(comment: str | None) -> str:
    """The unit written in an attribute's comment as `[unit]` (`# membrane potential [mV]`)."""
    match = _UNIT.search(comment or "")
    return match.group(1).strip() if match else ""


def order(expr: QueryExpression, sort: str | None) -> list[str]:
    items = [item.strip() for item in (sort or "").split(",") if item.strip()]
    return items + [k for k in expr.primary_key if k not in {i.split()[0] for i in items}]


# ---- metadata card ------------------------------------------------------------------------------
def metadata(expr: QueryExpression, columns: list[str]) -> dict[str, Any]:
    """The first row's attributes, each with its comment and unit; `more` tells when the
    restriction left several rows."""
    names = list(dict.fromkeys([*columns, *expr.primary_key]))
    rows = expr.fetch(*names, as_dict=True, order_by=order(expr, None), limit=2)
    if not rows:
        return {"items": None, "message": "no matching row"}
    heading = expr.heading
    row = rows[0]
    return {"items": [{"name": n, "value": describe_value(heading[n], row[n]),
                       "in_key": heading[n].in_key, "comment": heading[n].comment,
                       "unit": unit_of(heading[n].comment)} for n in columns],
            "more": len(rows) > 1}


# ---- dynamic grid -------------------------------------------------------------------------------
def cells(expr: QueryExpression, *, limit: int, sort: str | None) -> dict[str, Any]:
    """The keys of the grid's rows (a cell each), at most `limit`, and their total."""
    key = expr.primary_key
    rows = expr.fetch(*key, as_dict=True, order_by=order(expr, sort), limit=limit + 1)
    return {"cells": [{k: key_text(r[k]) for k in key} for r in rows[:limit]],
            "more": len(rows) > limit}


# ---- images -------------------------------------------------------------------------------------
def slides(expr: QueryExpression, *, limit: int, sort: str | None) -> dict[str, Any]:
    """The slides of a slideshow (or the one image of an image component): their keys."""
    found = cells(expr, limit=limit, sort=sort)
    return {"slides": found["cells"], "more": found["more"]}


def image(expr: QueryExpression, attribute: str, *, index: int, sort: str | None
          ) -> tuple[bytes, str]:
    """The `index`-th row's image as (bytes, media type)."""
    with tempfile.TemporaryDirectory(prefix="dj-viz-") as folder:
        values = expr.fetch(attribute, order_by=order(expr, sort), limit=1, offset=index,
                            download_path=folder)
        if not len(values):
            raise RequestError(f"no image number {index + 1}")
        value = values[0]
        if isinstance(value, (str, Path)) and Path(value).is_file():  # an attachment
            value = Path(value).read_bytes()
        return image_bytes(value, attribute)


def image_bytes(value: Any, attribute: str) -> tuple[bytes, str]:
    if isinstance(value, (bytes, bytearray, memoryview)):
        data = bytes(value)
        for signature, media in _SIGNATURES:
            if data.startswith(signature):
                return data, media
        if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
            return data, "image/webp"
        raise RequestError(f"{attribute!r} does not hold a PNG, JPEG, GIF or WebP image")
    if value is None:
        raise RequestError(f"{attribute!r} is empty")
    try:
        array = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise RequestError(f"{attribute!r} holds neither image bytes nor an array") from None
    return array_png(array, attribute), "image/png"


def array_png(array: np.ndarray, attribute: str) -> bytes:
    """A 2-D array (or H×W×3/4 colour) as a PNG, scaled to 0..255 over its finite range."""
    from PIL import Image

    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise RequestError(f"{attribute!r}: an image must be a 2-D array (or H×W×3/4); "
                           f"this one is {'×'.join(map(str, array.shape))}")
    finite = np.isfinite(array)
    low = float(array[finite].min()) if finite.any() else 0.0
    high = float(array[finite].max()) if finite.any() else 1.0
    scaled = np.where(finite, (array - low) / ((high - low) or 1.0) * 255, 0)
    pixels = scaled.astype(np.uint8)
    buffer = io.BytesIO()
    mode = {2: "L", 3: "RGB", 4: "RGBA"}[pixels.shape[2] if pixels.ndim == 3 else 2]
    Image.fromarray(pixels, mode=mode).save(buffer, format="PNG")
    return buffer.getvalue()


# ---- stored plotly figures ----------------------------------------------------------------------
def stored_figure(expr: QueryExpression, attribute: str) -> dict[str, Any]:
    """A Plotly figure stored in a table (JSON text, a json column, or a blob holding a
    dict), as DataJoint Element reports store them; the first matching row's."""
    values = expr.fetch(attribute, order_by=order(expr, None), limit=1)
    if not len(values) or values[0] is None:
        return {"data": [], "layout": {"title": {"text": "(no rows)"}}, "rows": 0}
    value = values[0]
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="replace")
    if isinstance(value, str):
        if len(value) > MAX_FIGURE_TEXT:
            raise RequestError(f"{attribute!r}: the figure is too large to send")
        try:
            value = json.loads(value)
        except ValueError:
            raise RequestError(f"{attribute!r} does not hold a Plotly figure as JSON") from None
    if not isinstance(value, dict) or not isinstance(value.get("data", []), list):
        raise RequestError(f"{attribute!r} does not hold a Plotly figure (a mapping with "
                           "`data` and `layout`)")
    figure = json.loads(json.dumps(value, default=jsonable))
    return {"data": figure.get("data", []), "layout": figure.get("layout", {}), "rows": 1}


# ---- Markdown -----------------------------------------------------------------------------------
@lru_cache(maxsize=256)
def markdown_html(text: str) -> str:
    """Markdown as HTML, with raw HTML in the text escaped and only safe link schemes
    (markdown-it-py, CommonMark)."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark", {"html": False}).enable("table").render(text)
