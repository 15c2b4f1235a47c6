"""A layered SVG drawing of a `dj.Diagram` that needs no Graphviz program.

Machines without Graphviz's `dot` (a fresh laptop, a notebook server, a container) still get
a real diagram: grandalf's Sugiyama layout (layers by longest path, crossings reduced, long
edges routed through dummy points) places the nodes, and this module writes the SVG with the
same vocabulary as the Graphviz drawing in `diagram.py`: tier colours and shapes, solid thick
primary dependencies, dashed secondary ones, thin master-part links, orange labelled renamed
foreign keys, and a `<title>` per node and edge in Graphviz's own SVG structure (`<g
class="node">`, `<g class="edge">` titled `parent->child`), so anything that reads one reads
both.
"""

from __future__ import annotations

from collections.abc import Iterable
from html import escape
from typing import TYPE_CHECKING

from grandalf.graphs import Edge as LayoutEdge
from grandalf.graphs import Graph, Vertex
from grandalf.layouts import SugiyamaLayout

from .reflect import split_table_name

if TYPE_CHECKING:
    from .dependencies import Edge
    from .diagram import Diagram

CHAR_W, PAD_X, NODE_H, PART_H = 7.2, 18.0, 28.0, 20.0
LAYER_GAP, NODE_GAP, COMPONENT_GAP, MARGIN = 46.0, 22.0, 40.0, 12.0

# fill, stroke, text colour, font size, shape: the Graphviz drawing's NODE_STYLES in SVG terms
# (fills are the translucent Graphviz colours over white, opaque so that no edge shows through)
TIER_LOOK: dict[str, tuple[str, str, str, int, str]] = {
    "Manual": ("#CFFFCF", "#80FF80", "darkgreen", 12, "rounded"),
    "Lookup": ("#DFDFDF", "none", "black", 11, "plain"),
    "Imported": ("#BFBFDF", "#7F7FBF", "#5F5FA0", 12, "ellipse"),
    "Computed": ("#FFDFDF", "#FF8080", "#A05F5F", 12, "ellipse"),
    "Part": ("white", "none", "black", 9, "plain"),
    "Other": ("white", "gray", "#4d4d4d", 10, "dashed"),
}
RENAMED = "#FF8800"


class _Box:
    """grandalf's view of a vertex: its size in, its centre (`xy`) out."""

    def __init__(self, w: float, h: float) -> None:
        self.w, self.h = w, h
        self.xy: tuple[float, float] = (0.0, 0.0)


class _Route:
    """grandalf's view of an edge: the routed points, including dummy vertices."""

    def __init__(self) -> None:
        self.points: list[tuple[float, float]] = []

    def setpath(self, points: list[tuple[float, float]]) -> None:
        self.points = list(points)


def _tier_and_label(node: str) -> tuple[str, str, str | None]:
    """(tier, class label, master node or None) of a "schema.table" node."""
    schema, _, table = node.partition(".")
    split = split_table_name(table)
    if split is None:
        return "Other", table, None
    tier, master, part = split
    if part is None:
        return tier, master, None
    master_table = table.rsplit("__", 1)[0]
    return tier, f"{master}.{part}", f"{schema}.{master_table}"


def layered_svg(diagram: Diagram) -> str:
    """The diagram as an SVG document laid out in layers, parents above children."""

    order = diagram.topological_sort()
    edges = diagram.edges
    vertices: dict[str, Vertex] = {}
    for node in order:
        tier, _, _ = _tier_and_label(node)
        size = TIER_LOOK[tier][3]
        width = len(diagram.label(node)) * CHAR_W * size / 12 + PAD_X * 2
        vertex = Vertex(node)
        vertex.view = _Box(width, PART_H if tier == "Part" else NODE_H)
        vertices[node] = vertex
    routes: dict[int, _Route] = {}
    layout_edges = []
    for index, edge in enumerate(edges):
        layout_edge = LayoutEdge(vertices[edge.parent], vertices[edge.child])
        layout_edge.view = routes.setdefault(index, _Route())
        layout_edges.append(layout_edge)
    graph = Graph(list(vertices.values()), layout_edges)
    offset_x = MARGIN
    for component in _components_in_order(graph.C, order):
        layout = SugiyamaLayout(component)
        layout.xspace, layout.yspace = NODE_GAP, LAYER_GAP
        layout.init_all()
        layout.draw()
        left = min(v.view.xy[0] - v.view.w / 2 for v in component.sV)
        top = min(v.view.xy[1] - v.view.h / 2 for v in component.sV)
        shift = (offset_x - left, MARGIN - top)
        for vertex in component.sV:
            x, y = vertex.view.xy
            vertex.view.xy = (x + shift[0], y + shift[1])
        for layout_edge in component.sE:
            route = layout_edge.view
            route.points = [(x + shift[0], y + shift[1]) for x, y in route.points]
        offset_x = max(v.view.xy[0] + v.view.w / 2 for v in component.sV) + COMPONENT_GAP
    width = max((v.view.xy[0] + v.view.w / 2 for v in vertices.values()), default=0) + MARGIN
    height = max((v.view.xy[1] + v.view.h / 2 for v in vertices.values()), default=0) + MARGIN
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}pt" '
             f'height="{height:.0f}pt" viewBox="0 0 {width:.1f} {height:.1f}" '
             'font-family="Helvetica,Arial,sans-serif">',
             '<g id="graph0" class="graph"><title>datajoint</title>']
    seen: dict[tuple[str, str], int] = {}
    for index, edge in enumerate(edges):
        pair = (edge.parent, edge.child)
        nudge = 5.0 * seen.get(pair, 0)  # a second key between the same tables: beside it
        seen[pair] = seen.get(pair, 0) + 1
        points = _clipped(routes[index].points, vertices[edge.parent].view,
                          vertices[edge.child].view, nudge)
        parts.append(_edge_svg(diagram, edge, points))
    for node in order:
        parts.append(_node_svg(diagram, node, vertices[node].view))
    parts.append("</g></svg>")
    return "\n".join(parts)


def _components_in_order(components: Iterable[Graph], order: list[str]) -> list[Graph]:
    """Connected pieces left to right by their first table in topological order."""
    rank = {node: i for i, node in enumerate(order)}
    return sorted(components, key=lambda c: min(rank[v.data] for v in c.sV))


def _clipped(points: list[tuple[float, float]], parent: _Box, child: _Box,
             nudge: float) -> list[tuple[float, float]]:
    """The route from the parent's lower edge to the child's upper edge (grandalf routes
    centre to centre), moved `nudge` to the right."""
    if len(points) < 2:
        points = [parent.xy, child.xy]
    points = list(points)
    points[0] = (parent.xy[0], parent.xy[1] + parent.h / 2)
    points[-1] = (child.xy[0], child.xy[1] - child.h / 2)
    return [(x + nudge, y) for x, y in points]


def _node_svg(diagram: Diagram, node: str, box: _Box) -> str:

    tier, _, _ = _tier_and_label(node)
    fill, stroke, colour, size, shape = TIER_LOOK[tier]
    x, y = box.xy
    left, top = x - box.w / 2, y - box.h / 2
    if shape == "ellipse":
        outline = (f'<ellipse cx="{x:.1f}" cy="{y:.1f}" rx="{box.w / 2:.1f}" '
                   f'ry="{box.h / 2:.1f}" fill="{fill}" stroke="{stroke}"/>')
    else:
        rounded = ' rx="6" ry="6"' if shape == "rounded" else ""
        dashed = ' stroke-dasharray="5,2"' if shape == "dashed" else ""
        outline = (f'<rect x="{left:.1f}" y="{top:.1f}" width="{box.w:.1f}" '
                   f'height="{box.h:.1f}"{rounded} fill="{fill}" stroke="{stroke}"{dashed}/>')
    label = escape(diagram.label(node))
    return (f'<g class="node" data-tier="{tier.lower()}"><title>{escape(node)}</title>'
            f'{outline}<text text-anchor="middle" x="{x:.1f}" y="{y + size / 3:.1f}" '
            f'font-size="{size}" fill="{colour}">{label}</text></g>')


def _edge_svg(diagram: Diagram, edge: Edge, points: list[tuple[float, float]]) -> str:

    _, _, master = _tier_and_label(edge.child)
    if master == edge.parent:
        colour, width, dash, kind = "rgba(0,0,0,0.25)", 0.75, "", "part"
    elif edge.primary:
        colour, width, dash, kind = "rgba(0,0,0,0.38)", 2.0, "", "primary"
    else:
        colour, width, dash, kind = "rgba(0,0,0,0.38)", 1.0, ' stroke-dasharray="5,2"', \
            "secondary"
    label = ""
    if edge.renamed:
        colour = RENAMED
        renames = ", ".join(f"{c} ← {p}" for c, p in edge.attr_map if c != p)
        (x1, y1), (x2, y2) = points[len(points) // 2 - 1], points[len(points) // 2]
        label = (f'<text x="{(x1 + x2) / 2 + 5:.1f}" y="{(y1 + y2) / 2 + 3:.1f}" '
                 f'font-size="9" fill="{RENAMED}">{escape(renames)}</text>')
    path = " ".join(f"{'M' if i == 0 else 'L'}{x:.1f},{y:.1f}" for i, (x, y) in
                    enumerate(points))
    return (f'<g class="edge" data-kind="{kind}"><title>{escape(edge.parent)}->'
            f'{escape(edge.child)}</title><path d="{path}" fill="none" stroke="{colour}" '
            f'stroke-width="{width}"{dash}/>{label}</g>')
