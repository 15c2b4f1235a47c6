"""Draw the query-algebra figures of docs/queries.md as small SVG files.

Run `python docs/figures/make_figures.py` after changing a figure; the SVGs are committed so
the docs build needs nothing but mkdocs. Each figure shows the operands as tables, what the
operator keeps (solid) and drops (faded), and the result.
"""

from __future__ import annotations

from html import escape
from pathlib import Path

HERE = Path(__file__).resolve().parent
CELL_W, CELL_H, PAD = 74, 24, 18
KEY_FILL, HEAD_FILL, KEEP_FILL, NEW_FILL = "#dbe9f6", "#f0f0f0", "#ffffff", "#fff3c4"
FADE = "#c8c8c8"


class Table:
    def __init__(self, title: str, header: list[str], rows: list[list[object]], *,
                 key: int = 1, faded_rows: set[int] | None = None,
                 faded_cols: set[int] | None = None, new_cols: set[int] | None = None):
        self.title, self.header, self.rows, self.key = title, header, rows, key
        self.faded_rows = faded_rows or set()
        self.faded_cols = faded_cols or set()
        self.new_cols = new_cols or set()

    @property
    def width(self) -> int:
        return CELL_W * len(self.header)

    @property
    def span(self) -> float:
        """Horizontal room the table needs, title included."""
        return max(self.width, 7.6 * len(self.title))

    @property
    def height(self) -> int:
        return CELL_H * (len(self.rows) + 2)

    def svg(self, x: float, y: float) -> str:
        out = [f'<text x="{x}" y="{y + 16}" class="title">{escape(self.title)}</text>']
        y += CELL_H
        for c, name in enumerate(self.header):
            fill = NEW_FILL if c in self.new_cols else KEY_FILL if c < self.key else HEAD_FILL
            color = FADE if c in self.faded_cols else "#222"
            label = escape(name) if c >= self.key else f"<tspan text-decoration='underline'>{escape(name)}</tspan>"
            out.append(self._cell(x + c * CELL_W, y, fill, label, color, bold=True))
        for r, row in enumerate(self.rows):
            for c, value in enumerate(row):
                faded = r in self.faded_rows or c in self.faded_cols
                fill = NEW_FILL if c in self.new_cols and not faded else KEEP_FILL
                out.append(self._cell(x + c * CELL_W, y + (r + 1) * CELL_H, fill,
                                      escape(str(value)), FADE if faded else "#222"))
        return "\n".join(out)

    @staticmethod
    def _cell(x: float, y: float, fill: str, label: str, color: str, bold: bool = False) -> str:
        weight = ' font-weight="bold"' if bold else ""
        return (f'<rect x="{x}" y="{y}" width="{CELL_W}" height="{CELL_H}" fill="{fill}" '
                f'stroke="#999"/><text x="{x + CELL_W / 2}" y="{y + 16}" fill="{color}" '
                f'text-anchor="middle"{weight}>{label}</text>')


def figure(name: str, operands: list[Table], operator: str, result: Table) -> None:
    x, parts = PAD, []
    height = max(t.height for t in [*operands, result]) + 2 * PAD
    for i, table in enumerate(operands):
        parts.append(table.svg(x, PAD))
        x += table.span
        if i < len(operands) - 1:
            parts.append(f'<text x="{x + 22}" y="{PAD + 2.5 * CELL_H}" class="op">'
                         f'{escape(operator)}</text>')
            x += 44
    arrow_y = PAD + 2.2 * CELL_H
    arrow = 36 if len(operands) > 1 else max(36, 7 * len(operator))
    parts.append(f'<path d="M{x + 12},{arrow_y} h{arrow}" stroke="#444" stroke-width="2" '
                 f'marker-end="url(#arrow)"/>')
    if len(operands) == 1:
        parts.append(f'<text x="{x + 12 + arrow / 2}" y="{arrow_y - 8}" class="op small">'
                     f'{escape(operator)}</text>')
    x += arrow + 28
    parts.append(result.svg(x, PAD))
    width = int(x + result.span + PAD)
    svg = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="Helvetica, Arial, sans-serif" '
           f'font-size="12">\n<defs><marker id="arrow" markerWidth="8" markerHeight="8" '
           f'refX="6" refY="4" orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#444"/></marker>'
           f'</defs>\n<style>.title{{font-weight:bold;font-size:13px}} '
           f'.op{{font-size:20px;font-weight:bold;text-anchor:middle}} '
           f'.small{{font-size:12px}}</style>\n' + "\n".join(parts) + "\n</svg>\n")
    (HERE / f"{name}.svg").write_text(svg)


MOUSE = (["mouse_id", "sex", "strain"],
         [[1, "F", "wt"], [2, "M", "Pvalb"], [3, "F", "Sst"], [4, "M", "wt"]])
SESSION = (["mouse_id", "session", "task"],
           [[1, 1, "visual"], [1, 2, "audio"], [2, 1, "visual"], [4, 1, "audio"]])


def main() -> None:
    header, rows = MOUSE
    figure("restrict", [Table("Mouse", header, rows, faded_rows={1, 3})],
           "& {'sex': 'F'}",
           Table("Mouse & {'sex': 'F'}", header, [rows[0], rows[2]]))
    sh, srows = SESSION
    figure("semijoin", [Table("Mouse", header, rows, faded_rows={2}),
                        Table("Session", sh, srows, key=2)], "&",
           Table("Mouse & Session", header, [rows[0], rows[1], rows[3]]))
    figure("antijoin", [Table("Mouse", header, rows, faded_rows={0, 1, 3}),
                        Table("Session", sh, srows, key=2)], "-",
           Table("Mouse - Session", header, [rows[2]]))
    joined = [[s[0], s[1], m[1], m[2], s[2]] for s in srows for m in rows if m[0] == s[0]]
    figure("join", [Table("Mouse", header, rows, faded_rows={2}),
                    Table("Session", sh, srows, key=2)], "*",
           Table("Mouse * Session", ["mouse_id", "session", "sex", "strain", "task"], joined,
                 key=2))
    figure("proj", [Table("Session", sh, srows, key=2)],
           ".proj(kind='task')",
           Table("Session.proj(kind='task')", ["mouse_id", "session", "kind"], srows, key=2,
                 new_cols={2}))
    counts = [[m[0], m[1], sum(s[0] == m[0] for s in srows)] for m in rows]
    figure("aggr", [Table("Mouse", header, rows),
                    Table("Session", sh, srows, key=2)], ".aggr",
           Table("Mouse.aggr(Session, n='count(*)')", ["mouse_id", "sex", "n"],
                 [[c[0], c[1], c[2]] for c in counts], new_cols={2}))
    figure("union", [Table("Mouse & 'sex=\"F\"'", header, [rows[0], rows[2]]),
                     Table("Mouse & Session", header, [rows[0], rows[1], rows[3]])], "+",
           Table("union", header, rows))
    tasks = [["visual", 2], ["audio", 2]]
    figure("universal", [Table("Session", sh, srows, key=2, faded_cols={0, 1})],
           "dj.U('task').aggr",
           Table("dj.U('task').aggr(Session, n='count(*)')", ["task", "n"], tasks,
                 new_cols={1}))
    figure("top", [Table("Session", sh, srows, key=2, faded_rows={2, 3})],
           "& dj.Top(2, 'KEY')", Table("Session & dj.Top(2)", sh, srows[:2], key=2))


if __name__ == "__main__":
    main()
