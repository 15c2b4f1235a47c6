"""Previews of a query's first rows for terminals (repr) and notebooks (_repr_html_).

A preview runs two small queries (the first rows, then the count only when there are more)
and never fetches blob or codec columns: they show as =BLOB=.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

from .settings import config

if TYPE_CHECKING:
    from .expression import QueryExpression

BLOB = "=BLOB="


def _cell(value: Any, width: int) -> str:
    if value is BLOB or isinstance(value, (bytes, bytearray, memoryview)):
        text = BLOB
    else:
        text = "" if value is None else str(value)
    return text if len(text) <= width else text[: max(width - 3, 1)] + "..."


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


def preview_html(expr: QueryExpression, limit: int | None = None) -> str:
    try:
        names, rows, count = _rows(expr, limit)
    except Exception as error:
        return f"<pre>{html.escape(type(expr).__name__)}: preview failed: " \
               f"{html.escape(str(error))}</pre>"
    key = set(expr.primary_key)
    width = int(config["display.width"]) * 3
    head = "".join(
        f"<th>{'<u>' if n in key else ''}{html.escape(n)}{'</u>' if n in key else ''}</th>"
        for n in names)
    body = "".join(
        "<tr>" + "".join(f"<td>{html.escape(_cell(r[n], width))}</td>" for n in names) + "</tr>"
        for r in rows)
    more = "<p>...</p>" if count > len(rows) else ""
    return (f"<div class='dj-preview'><table><thead><tr>{head}</tr></thead><tbody>{body}"
            f"</tbody></table>{more}<p>Total: {count}</p></div>")
