"""A plain layered SVG of a `dj.Diagram`, for machines without Graphviz's `dot` program.

Each table sits on the row of its longest chain of parents; edges are straight lines. It is
cruder than Graphviz's drawing, but it needs nothing beyond the diagram's own nodes and edges.
"""

from __future__ import annotations

from html import escape
from typing import Any

NODE_W, NODE_H, GAP_X, GAP_Y, MARGIN = 170, 30, 20, 50, 10


def simple_svg(diagram: Any) -> str:
    order: list[str] = diagram.topological_sort()
    edges = diagram.edges
    level: dict[str, int] = {}
    for node in order:
        parents = [level[e.parent] for e in edges if e.child == node and e.parent in level]
        level[node] = 1 + max(parents) if parents else 0
    rows: dict[int, list[str]] = {}
    for node in order:
        rows.setdefault(level[node], []).append(node)
    width = max(len(r) for r in rows.values()) if rows else 1
    position: dict[str, tuple[float, float]] = {}
    for depth, nodes in rows.items():
        for i, node in enumerate(nodes):
            position[node] = (MARGIN + i * (NODE_W + GAP_X), MARGIN + depth * (NODE_H + GAP_Y))
    total_w = MARGIN * 2 + width * (NODE_W + GAP_X)
    total_h = MARGIN * 2 + len(rows) * (NODE_H + GAP_Y)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" '
             f'viewBox="0 0 {total_w} {total_h}" font-family="sans-serif" font-size="12">']
    for edge in edges:
        (x1, y1), (x2, y2) = position[edge.parent], position[edge.child]
        dash = "" if edge.primary else ' stroke-dasharray="4 3"'
        parts.append(f'<line x1="{x1 + NODE_W / 2}" y1="{y1 + NODE_H}" x2="{x2 + NODE_W / 2}" '
                     f'y2="{y2}" stroke="#888"{dash}/>')
    for node, (x, y) in position.items():
        label = escape(diagram.label(node))
        parts.append(f'<rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6" '
                     f'fill="#eef4ff" stroke="#5577aa"/>'
                     f'<text x="{x + NODE_W / 2}" y="{y + NODE_H / 2 + 4}" '
                     f'text-anchor="middle">{label}</text>')
    parts.append("</svg>")
    return "".join(parts)
