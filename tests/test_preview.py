"""Notebook previews (`_repr_html_`) as styled HTML tables, on every backend.

The HTML is read back with the standard library's parser, so the tests check what a browser
would see: header tooltips with types and comments, primary-key marks, the row count, the
"..." row and cut values, =BLOB= placeholders, and hostile text only ever as text.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import numpy as np
import pytest

import datajoint_sa as dj

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


class Table(HTMLParser):
    """Headers (text, attributes), body rows (cells as (text, attributes)), paragraphs and
    every tag seen."""

    def __init__(self, markup: str) -> None:
        super().__init__(convert_charrefs=True)
        self.headers: list[tuple[str, dict[str, str]]] = []
        self.rows: list[list[tuple[str, dict[str, str]]]] = []
        self.paragraphs: list[str] = []
        self.tags: list[str] = []
        self._cell: tuple[str, dict[str, str]] | None = None
        self._in: str | None = None
        self.feed(markup)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        values = {k: v or "" for k, v in attrs}
        if tag == "tr" and self._in == "tbody":
            self.rows.append([])
        if tag in ("th", "td"):
            self._cell = ("", values)
        if tag in ("thead", "tbody", "p", "style"):
            self._in = tag
            if tag == "p":
                self.paragraphs.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td") and self._cell is not None:
            (self.headers if tag == "th" else self.rows[-1]).append(self._cell)
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell = (self._cell[0] + data, self._cell[1])
        elif self._in == "p":
            self.paragraphs[-1] += data


@pytest.fixture(scope="module")
def table(module_schema: dj.Schema) -> Any:
    @module_schema
    class Recording(dj.Manual):
        definition = """
        # recordings, <b>bold</b> in the table comment
        subject : varchar(16)      # who was recorded
        rec : int32
        ---
        rate : float64             # sampling rate [Hz] "quoted" <i>tag</i>
        note = "" : varchar(255)
        trace = null : blob        # raw samples
        params = null : json
        """

    Recording.insert([
        {"subject": "ann", "rec": 1, "rate": 30000.0, "note": "short",
         "trace": np.arange(5.0), "params": {"a": [1, 2]}},
        {"subject": "ann", "rec": 2, "rate": 20000.5, "note": "x" * 200, "trace": None},
        {"subject": "bob", "rec": 1, "rate": 1.0, "note": HOSTILE, "trace": np.ones(3)},
        *({"subject": "cy", "rec": i, "rate": float(i), "note": ""} for i in range(10)),
    ])
    return Recording


def test_headers_carry_types_comments_and_the_key(table: Any) -> None:
    parsed = Table(table()._repr_html_())
    names = [text for text, _ in parsed.headers]
    assert names == ["subject", "rec", "rate", "note", "trace", "params"]
    attrs = dict(zip(names, (a for _, a in parsed.headers)))
    assert "varchar(16)" in attrs["subject"]["title"]
    assert "who was recorded" in attrs["subject"]["title"]
    assert "primary key" in attrs["subject"]["title"]
    assert 'sampling rate [Hz] "quoted" <i>tag</i>' in attrs["rate"]["title"]
    assert "float64" in attrs["rate"]["title"] and "primary key" not in attrs["rate"]["title"]
    assert [n for n in names if "dj-key" in attrs[n].get("class", "")] == ["subject", "rec"]


def test_rows_count_and_truncation(table: Any) -> None:
    with dj.config.override(**{"display.limit": 4, "display.width": 10}):
        parsed = Table(table()._repr_html_())
    assert len(parsed.rows) == 5  # four rows and the "..." row
    assert [c[0] for c in parsed.rows[-1]] == ["..."]
    assert parsed.rows[-1][0][1].get("colspan") == "6"
    assert any("Total: 13" in p for p in parsed.paragraphs)
    assert any("4 of 13" in p for p in parsed.paragraphs)
    note = next(r[3] for r in parsed.rows[:-1] if r[3][0].startswith("xxx"))
    assert note[0].endswith("...") and len(note[0]) == 30
    assert note[1]["title"] == "x" * 200  # the whole value in the tooltip


def test_small_result_has_no_ellipsis(table: Any) -> None:
    parsed = Table((table() & {"subject": "ann"})._repr_html_())
    assert len(parsed.rows) == 2 and all(c[0] != "..." for r in parsed.rows for c in r)
    assert any("Total: 2" in p for p in parsed.paragraphs)


def test_blobs_are_placeholders_and_values_are_escaped(table: Any) -> None:
    markup = table()._repr_html_()
    parsed = Table(markup)
    assert "script" not in parsed.tags and "img" not in parsed.tags and "i" not in parsed.tags
    assert "<script>" not in markup
    cells = {(r[0][0], r[1][0]): r for r in parsed.rows if len(r) > 1}
    hostile = cells[("bob", "1")][3]  # shown as text (cut), the whole of it in the tooltip
    assert hostile[0].startswith('<script>alert("x")') and hostile[1]["title"] == HOSTILE
    assert cells[("ann", "1")][4][0] == "=BLOB="
    assert "dj-blob" in cells[("ann", "1")][4][1]["class"]
    assert cells[("ann", "1")][5][0] == '{"a": [1, 2]}'
    assert "dj-num" in cells[("ann", "1")][2][1]["class"]


def test_computed_attributes_show_their_expression(table: Any) -> None:
    parsed = Table(table().proj(khz="rate / 1000")._repr_html_())
    name, attrs = parsed.headers[2]
    assert name == "khz" and "rate / 1000" in attrs["title"]


def test_failed_preview_is_escaped(table: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(HOSTILE)

    monkeypatch.setattr("datajoint_sa.preview._rows", fail)
    markup = table()._repr_html_()
    assert markup.startswith("<pre>") and "preview failed" in markup
    assert "<script>" not in markup and "&lt;script&gt;" in markup
