"""Previews of a query's first rows for terminals (repr) and notebooks (_repr_html_).

A preview runs two small queries (the first rows, then the count only when there are more)
and never fetches blob or codec columns: they show as =BLOB=. The notebook preview is a
styled HTML table: each column header carries the attribute's type and comment as a tooltip
(its ``title``), primary-key columns are marked, long values are cut with "..." (the whole
value in the cell's tooltip), rows beyond ``display.limit`` end in a "..." row, and the row
count follows. Every piece of text is escaped, so a value or a comment cannot inject HTML.
"""

from __future__ import annotations

import decimal
import html
import json
import numbers
from typing import TYPE_CHECKING, Any

from .settings import config

if TYPE_CHECKING:
    from .expression import QueryExpression
    from .heading import Attribute

BLOB = "=BLOB="


def _text(value: Any) -> str:
    """A value as shown: blobs as =BLOB=, NULL as nothing, JSON documents as JSON."""
    if value is BLOB or isinstance(value, (bytes, bytearray, memoryview)):
        return BLOB
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=str, ensure_ascii=False)
    return str(value)


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else text[: max(width - 3, 1)] + "..."


def _cell(value: Any, width: int) -> str:
    return _cut(_text(value), width)


def _rows(expr: QueryExpression, limit: int | None = None
          ) -> tuple[list[str], list[dict[str, Any]], int]:
    limit = int(config["display.limit"]) if limit is None else limit
    heading = expr.heading
    names = heading.names
    shown = [n for n in names if heading[n].codec is None]
    select = expr.sorted_select(limit=limit + 1)
    columns = select.selected_columns
    result = expr.connection.query(select.with_only_columns(*(columns[n] for n in shown)))
    rows = [{**dict.fromkeys(names, BLOB), **dict(zip(shown, row))} for row in result]
    count = len(rows) if len(rows) <= limit else len(expr)
    return names, rows[:limit], count


def preview_text(expr: QueryExpression, limit: int | None = None) -> str:
    try:
        names, rows, count = _rows(expr, limit)
    except Exception as error:  # a preview must never hide the object
        return f"<{type(expr).__name__}: preview failed: {error}>"
    width = int(config["display.width"])
    key = set(expr.primary_key)
    header = [("*" + n if n in key else n) for n in names]
    table = [header] + [[_cell(r[n], width) for n in names] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(names))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    more = " ..." if count > len(rows) else ""
    lines.append(f"{more} ({count} tuples)".lstrip())
    return "\n".join(lines)


# ---- HTML -------------------------------------------------------------------------------------
_STYLE = """<style>
.dj-preview{font-size:13px;max-width:100%;overflow-x:auto}
.dj-preview table.dj-table{border-collapse:collapse;margin:0}
.dj-preview .dj-table th,.dj-preview .dj-table td{padding:3px 8px;border:1px solid #e1e4e8;
 text-align:left;white-space:nowrap;vertical-align:top}
.dj-preview .dj-table thead th{background:#f3f5f8;cursor:help}
.dj-preview .dj-table th.dj-key{background:#e3e9f7;text-decoration:underline}
.dj-preview .dj-table td.dj-num{text-align:right;font-variant-numeric:tabular-nums}
.dj-preview .dj-table td.dj-blob,.dj-preview .dj-table td.dj-more{color:#8a8f98}
.dj-preview .dj-table tbody tr:nth-child(even){background:#fafbfc}
.dj-preview .dj-count{margin:4px 0 0;color:#555}
</style>"""


def _attr(text: str) -> str:
    """Text for a double-quoted HTML attribute."""
    return html.escape(text, quote=True)


def _tooltip(attribute: Attribute) -> str:
    """'name : type  (primary key)' and the comment, for a column header's title."""
    kind = attribute.type or "computed"
    fragment = attribute.expression
    if fragment is not None and getattr(fragment, "text", None):
        kind += f" = {fragment.text}"
    lines = [f"{attribute.name} : {kind}" + ("  (primary key)" if attribute.in_key else "")]
    if attribute.comment:
        lines.append(attribute.comment)
    return "\n".join(lines)


def _header(attribute: Attribute) -> str:
    css = ' class="dj-key"' if attribute.in_key else ""
    return (f'<th{css} title="{_attr(_tooltip(attribute))}" scope="col">'
            f"{html.escape(attribute.name)}</th>")


_NUMBERS = (numbers.Number, decimal.Decimal)


def _td(value: Any, width: int) -> str:
    text = _text(value)
    shown = _cut(text, width)
    if value is BLOB or isinstance(value, (bytes, bytearray, memoryview)):
        css = "dj-blob"
    elif isinstance(value, _NUMBERS) and not isinstance(value, bool):
        css = "dj-num"
    else:
        css = ""
    attrs = f' class="{css}"' if css else ""
    if shown != text:  # cut: the whole value in the tooltip
        attrs += f' title="{_attr(text)}"'
    return f"<td{attrs}>{html.escape(shown)}</td>"


def preview_html(expr: QueryExpression, limit: int | None = None) -> str:
    try:
        names, rows, count = _rows(expr, limit)
    except Exception as error:
        return f"<pre>{html.escape(type(expr).__name__)}: preview failed: " \
               f"{html.escape(str(error))}</pre>"
    heading = expr.heading
    width = int(config["display.width"]) * 3
    head = "".join(_header(heading[n]) for n in names)
    body = "".join("<tr>" + "".join(_td(r[n], width) for n in names) + "</tr>" for r in rows)
    if count > len(rows):
        body += f'<tr><td class="dj-more" colspan="{len(names)}">...</td></tr>'
    comment = getattr(heading, "table_comment", "")
    caption = f"<caption>{html.escape(comment)}</caption>" if comment else ""
    shown = f"{len(rows)} of {count} shown; " if count > len(rows) else ""
    return (f'<div class="dj-preview">{_STYLE}<table class="dj-table">{caption}'
            f"<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
            f'<p class="dj-count">{shown}Total: {count}</p></div>')
