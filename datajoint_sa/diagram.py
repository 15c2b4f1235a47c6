"""Diagram: the foreign-key graph of schemas and tables, drawn with pydot/Graphviz or Mermaid.

The graph is the one in `dependencies.py`, read from the live database, so a diagram shows
every schema the tables reach, whether or not this process declared them. Nodes are styled
by tier (taken from the table-name prefix), primary-key dependencies are solid and secondary
ones dashed, renamed foreign keys are orange and labelled `new ← old`, parts are drawn beside
their masters, and tables of other schemas than the ones asked for carry their schema name.
"""

from __future__ import annotations

import os
import shutil
import types
from collections.abc import Iterable
from typing import Any

from .connection import Connection, conn
from .dependencies import Dependencies, Edge
from .diagram_svg import _tier_and_label, layered_svg
from .errors import DataJointError
from .schema import Schema
from .table import Table

HIDDEN_PREFIX = "~"

# node attributes per tier (colours follow DataJoint's diagrams)
NODE_STYLES: dict[str, dict[str, str]] = {
    "Manual": {"shape": "box", "style": "filled,rounded", "fillcolor": "#00FF0030",
               "fontcolor": "darkgreen", "color": "#00FF0080", "fontsize": "12"},
    "Lookup": {"shape": "plaintext", "style": "filled", "fillcolor": "#00000020",
               "fontcolor": "black", "color": "#00000040", "fontsize": "11"},
    "Imported": {"shape": "ellipse", "style": "filled", "fillcolor": "#00007F40",
                 "fontcolor": "#00007FA0", "color": "#00007F80", "fontsize": "12"},
    "Computed": {"shape": "ellipse", "style": "filled", "fillcolor": "#FF000020",
                 "fontcolor": "#7F0000A0", "color": "#FF000080", "fontsize": "12"},
    "Part": {"shape": "plaintext", "style": "", "fontcolor": "black", "fontsize": "9"},
    "Other": {"shape": "box", "style": "dashed", "fontcolor": "gray30", "fontsize": "10"},
}
MERMAID_STYLES = {
    "Manual": "fill:#00FF0030,stroke:#00A000,color:#006400",
    "Lookup": "fill:#00000020,stroke:#808080,color:#000000",
    "Imported": "fill:#00007F40,stroke:#00007F,color:#00007F",
    "Computed": "fill:#FF000020,stroke:#B00000,color:#7F0000",
    "Part": "fill:#FFFFFF,stroke:#C0C0C0,color:#000000,font-size:10px",
    "Other": "fill:#FFFFFF,stroke:#808080,stroke-dasharray:4 3",
}
MERMAID_SHAPES = {"Manual": ('["', '"]'), "Lookup": ('[/"', '"/]'), "Imported": ('(["', '"])'),
                  "Computed": ('(("', '"))'), "Part": ('["', '"]'), "Other": ('["', '"]')}
PNG_DPI = 150  # Graphviz's default of 72 is blurry on any current screen
FORMATS = {"svg", "png", "pdf", "dot", "gv", "mmd", "mermaid"}


class Diagram:
    """`dj.Diagram(schema | table | module)`: a drawable part of the foreign-key graph.

    `D + n` / `D - n` add n levels of descendants / ancestors; `D1 + D2`, `D1 - D2` and
    `D1 * D2` are union, difference and intersection. In a notebook the diagram shows itself
    as SVG; `save()` writes SVG, PNG, PDF, Graphviz source or Mermaid text. SVG, Graphviz
    source and `to_mermaid()` need no Graphviz program: without `dot` the SVG is laid out in
    Python (`diagram_svg`); only PNG and PDF need it.
    """

    def __init__(self, source: Any = None, *, connection: Connection | None = None) -> None:
        if isinstance(source, Diagram):
            self.connection: Connection = source.connection
            self.graph: Dependencies = source.graph
            self.nodes: set[str] = set(source.nodes)
            self.home: set[str] = set(source.home)
            return
        nodes, home, found = self._resolve(source)
        connection = connection or found
        if connection is None:
            connection = conn()
        self.connection = connection
        self.graph = _load_graph(connection)
        visible = {n for n in self.graph.nodes if not self._hidden(n)}
        self.nodes = set()
        for item in nodes:
            if item.endswith(".*"):
                schema = item[:-2]
                self.nodes |= {n for n in visible if n.split(".", 1)[0] == schema}
            elif item in self.graph.nodes:
                self.nodes.add(item)
            else:
                raise DataJointError(f"Table {item} is not in the database")
        self.home = home

    # ---- what a diagram may be made of ----------------------------------------------------
    @staticmethod
    def _hidden(node: str) -> bool:
        return node.partition(".")[2].startswith(HIDDEN_PREFIX)

    @classmethod
    def _resolve(cls, source: Any) -> tuple[list[str], set[str], Connection | None]:
        """(nodes, or "schema.*" for whole schemas; home schemas; a connection if known)."""
        if source is None:
            raise DataJointError("Diagram needs a schema, a table class or a module")
        if isinstance(source, Schema):
            if not source.is_activated:
                raise DataJointError("Diagram of a schema that is not activated")
            return [f"{source.database}.*"], {source.database}, source.connection
        if isinstance(source, Table) or (isinstance(source, type) and issubclass(source, Table)):
            table = source() if isinstance(source, type) else source
            if table._schema is None or not table.table_name:
                raise DataJointError(f"{getattr(source, '__name__', source)!r} is not declared")
            return [table.node_name], {table.database}, table._schema.connection
        if isinstance(source, types.ModuleType):
            schema = getattr(source, "schema", None)
            if isinstance(schema, Schema):
                return cls._resolve(schema)
            nodes: list[str] = []
            home: set[str] = set()
            connection = None
            for value in vars(source).values():
                if isinstance(value, Schema) and value.is_activated:
                    found = cls._resolve(value)
                elif isinstance(value, type) and issubclass(value, Table) and \
                        value._schema is not None and value.table_name:
                    found = cls._resolve(value)
                else:
                    continue
                nodes += found[0]
                home |= found[1]
                connection = connection or found[2]
            if not nodes:
                raise DataJointError(f"Module {source.__name__} has no schema or table classes")
            return nodes, home, connection
        if isinstance(source, (list, tuple, set)):
            nodes, home, connection = [], set(), None
            for item in source:
                found = cls._resolve(item)
                nodes += found[0]
                home |= found[1]
                connection = connection or found[2]
            return nodes, home, connection
        raise DataJointError(f"Cannot draw a diagram of {source!r}: give a schema, a table "
                             "class or a module")

    def _copy(self, nodes: Iterable[str], home: Iterable[str] | None = None) -> Diagram:
        copy = Diagram(self)
        copy.nodes = set(nodes)
        if home is not None:
            copy.home = set(home)
        return copy

    # ---- algebra ------------------------------------------------------------------------
    def _expand(self, steps: int, downstream: bool) -> Diagram:
        nodes = set(self.nodes)
        frontier = set(nodes)
        for _ in range(steps):
            grown: set[str] = set()
            for node in frontier:
                edges = self.graph.children(node) if downstream else self.graph.parents(node)
                grown |= {e.child if downstream else e.parent for e in edges}
            grown = {n for n in grown if not self._hidden(n)} - nodes
            if not grown:
                break
            nodes |= grown
            frontier = grown
        return self._copy(nodes)

    def _check_other(self, other: Diagram) -> None:
        if other.connection is not self.connection and other.connection.url != \
                self.connection.url:
            raise DataJointError("Diagrams of different databases cannot be combined")

    def _operand(self, other: Any) -> Any:
        """A table (class or instance), schema or module stands for its diagram:
        `dj.Diagram(Session) + Recording`."""
        if isinstance(other, (Table, Schema, types.ModuleType)) or (
                isinstance(other, type) and issubclass(other, Table)):
            return Diagram(other, connection=self.connection)
        return other

    def __add__(self, other: int | Diagram | Any) -> Diagram:
        other = self._operand(other)
        if isinstance(other, Diagram):
            self._check_other(other)
            return self._copy(self.nodes | other.nodes, self.home | other.home)
        if isinstance(other, int) and not isinstance(other, bool):
            return self._expand(other, downstream=True) if other >= 0 \
                else self._expand(-other, downstream=False)
        return NotImplemented

    def __sub__(self, other: int | Diagram | Any) -> Diagram:
        other = self._operand(other)
        if isinstance(other, Diagram):
            self._check_other(other)
            return self._copy(self.nodes - other.nodes)
        if isinstance(other, int) and not isinstance(other, bool):
            return self._expand(other, downstream=False) if other >= 0 \
                else self._expand(-other, downstream=True)
        return NotImplemented

    def __mul__(self, other: Diagram | Any) -> Diagram:
        other = self._operand(other)
        if not isinstance(other, Diagram):
            return NotImplemented
        self._check_other(other)
        return self._copy(self.nodes & other.nodes, self.home | other.home)

    def __len__(self) -> int:
        return len(self.nodes)

    def __contains__(self, node: object) -> bool:
        return node in self.nodes

    @property
    def edges(self) -> list[Edge]:
        """The foreign keys between the shown tables."""
        return [e for e in self.graph.edges if e.parent in self.nodes and e.child in self.nodes]

    def topological_sort(self) -> list[str]:
        return self.graph.topological(self.nodes)

    def label(self, node: str) -> str:
        """`Class`, `Master.Part`, or `schema.Class` for a table outside the home schemas."""
        schema = node.split(".", 1)[0]
        _, name, _ = _tier_and_label(node)
        return name if schema in self.home else f"{schema}.{name}"

    def __repr__(self) -> str:
        schemas = sorted({n.split(".", 1)[0] for n in self.nodes})
        return (f"Diagram({len(self.nodes)} tables, {len(self.edges)} dependencies in "
                f"{', '.join(schemas) or 'no schema'})")

    # ---- Graphviz -------------------------------------------------------------------------
    def make_dot(self) -> Any:
        """The diagram as a pydot graph (no Graphviz program needed to build it)."""
        import pydot

        dot = pydot.Dot(graph_type="digraph", rankdir="TB", nodesep="0.3", ranksep="0.4",
                        fontname="Helvetica", bgcolor="transparent", compound="true")
        dot.set_node_defaults(fontname="Helvetica", margin="0.05,0.03", height="0.3")
        dot.set_edge_defaults(arrowhead="none", color="#00000060")
        order = self.topological_sort()
        schemas = sorted({n.split(".", 1)[0] for n in order})
        clusters: dict[str, Any] = {}
        for schema in schemas:
            if len(schemas) > 1:
                cluster = pydot.Cluster(_safe_id(schema), label=_dot_string(schema),
                                        style="dashed", color="gray60", fontcolor="gray40",
                                        fontsize="11", labeljust="l")
                dot.add_subgraph(cluster)  # type: ignore[arg-type]
                clusters[schema] = cluster
            else:
                clusters[schema] = dot
        families: dict[str, list[str]] = {}
        for node in order:
            tier, _, master = _tier_and_label(node)
            if master is not None and master in self.nodes:
                families.setdefault(master, []).append(node)
        placed: set[str] = set()
        for node in order:
            if node in placed:
                continue
            tier, _, master = _tier_and_label(node)
            if master is not None and master in self.nodes:
                continue  # drawn with its master
            parent_graph = clusters[node.split(".", 1)[0]]
            members = [node, *families.get(node, [])]
            target = parent_graph
            if len(members) > 1:
                target = pydot.Subgraph(_safe_id(f"family_{node}"), rank="same")
                parent_graph.add_subgraph(target)
            for member in members:
                target.add_node(self._dot_node(pydot, member))
                placed.add(member)
        for edge in self.edges:
            dot.add_edge(self._dot_edge(pydot, edge))
        return dot

    def _dot_node(self, pydot: Any, node: str) -> Any:
        tier, _, _ = _tier_and_label(node)
        style = dict(NODE_STYLES[tier])
        return pydot.Node(_dot_id(node), label=_dot_string(self.label(node)),
                          tooltip=_dot_string(f"{node} ({tier})"), **style)

    def _dot_edge(self, pydot: Any, edge: Edge) -> Any:
        attrs: dict[str, str] = {}
        _, _, master = _tier_and_label(edge.child)
        if master == edge.parent:
            attrs.update(penwidth="0.75", style="solid", color="#00000040")
        elif edge.primary:
            attrs.update(penwidth="2", style="solid")
        else:
            attrs.update(penwidth="1", style="dashed")
        if edge.renamed:
            attrs.update(color="#FF8800", fontcolor="#FF8800", fontsize="9",
                         label=_dot_string(", ".join(f"{c} ← {p}" for c, p in edge.attr_map
                                                     if c != p)))
        return pydot.Edge(_dot_id(edge.parent), _dot_id(edge.child), **attrs)

    def _render(self, fmt: str, dpi: int | None = None) -> bytes:
        if shutil.which("dot") is None:
            raise DataJointError(
                "Graphviz's `dot` program is not installed or not on PATH, so the diagram "
                f"cannot be rendered as {fmt.upper()}: install Graphviz (apt-get install "
                "graphviz, brew install graphviz or conda install graphviz), or save as "
                "SVG (drawn without Graphviz), or use Diagram.to_mermaid() or save('x.dot')")
        try:
            graph = self.make_dot()
            if dpi is not None:  # raster resolution only; SVG and PDF are vector
                graph.set("dpi", str(dpi))
            return bytes(graph.create(prog="dot", format=fmt, encoding="utf-8"))
        except Exception as error:  # pydot raises plain exceptions with dot's stderr
            raise DataJointError(f"Graphviz could not render the diagram: {error}") from None

    def make_svg(self, engine: str | None = None) -> str:
        """SVG through Graphviz's `dot` when it is installed, else (or with
        `engine="python"`) the layered drawing of `diagram_svg`, which needs no program."""
        if engine not in (None, "graphviz", "python"):
            raise DataJointError(f"Unknown diagram engine {engine!r}: use 'graphviz' or "
                                 "'python'")
        if engine == "python" or (engine is None and shutil.which("dot") is None):
            return layered_svg(self)
        return self._render("svg").decode("utf-8")

    def make_png(self, dpi: int = PNG_DPI) -> bytes:
        return self._render("png", dpi)

    def _repr_svg_(self) -> str:
        return self.make_svg()

    def save(self, filename: str | os.PathLike[str], format: str | None = None, *,
             dpi: int = PNG_DPI) -> str:
        """Write the diagram; the format follows the extension (svg, png, pdf, dot, mmd);
        `dpi` is the resolution of a PNG."""
        path = os.fspath(filename)
        fmt = (format or os.path.splitext(path)[1].lstrip(".")).lower()
        if fmt not in FORMATS:
            raise DataJointError(f"Cannot save a diagram as {fmt or 'a file without extension'}"
                                 f": use one of {', '.join(sorted(FORMATS))}")
        if fmt in ("dot", "gv"):
            data = self.make_dot().to_string().encode("utf-8")
        elif fmt in ("mmd", "mermaid"):
            data = self.to_mermaid().encode("utf-8")
        elif fmt == "svg":
            data = self.make_svg().encode("utf-8")
        else:
            data = self._render(fmt, dpi if fmt == "png" else None)
        with open(path, "wb") as file:
            file.write(data)
        return path

    # ---- Mermaid --------------------------------------------------------------------------
    def to_mermaid(self, direction: str = "TB") -> str:
        """Mermaid flowchart text: renders on GitHub, in Jupyter, in docs; no Graphviz."""
        order = self.topological_sort()
        ids = {node: f"t{i}" for i, node in enumerate(order)}
        schemas = sorted({n.split(".", 1)[0] for n in order})
        lines = [f"flowchart {direction}"]
        for schema in schemas:
            members = [n for n in order if n.split(".", 1)[0] == schema]
            indent = "    "
            if len(schemas) > 1:
                lines.append(f'    subgraph {_mermaid_id(schema)}["{_mermaid_text(schema)}"]')
                indent = "        "
            for node in members:
                tier, _, _ = _tier_and_label(node)
                opening, closing = MERMAID_SHAPES[tier]
                lines.append(f"{indent}{ids[node]}{opening}{_mermaid_text(self.label(node))}"
                             f"{closing}:::{tier.lower()}")
            if len(schemas) > 1:
                lines.append("    end")
        for edge in self.edges:
            arrow = "-->" if edge.primary else "-.->"
            label = ""
            if edge.renamed:
                renames = ", ".join(f"{c} ← {p}" for c, p in edge.attr_map if c != p)
                label = f'|"{_mermaid_text(renames)}"|'
            lines.append(f"    {ids[edge.parent]} {arrow}{label} {ids[edge.child]}")
        used = sorted({_tier_and_label(n)[0] for n in order})
        lines += [f"    classDef {tier.lower()} {MERMAID_STYLES[tier]}" for tier in used]
        return "\n".join(lines) + "\n"


def _load_graph(connection: Connection, attempts: int = 3) -> Dependencies:
    """The whole foreign-key graph; read again when a schema vanished while it was read
    (another process dropping it between listing schemas and reading their tables)."""
    import sqlalchemy as sa

    for attempt in range(attempts):
        try:
            return Dependencies.load(connection)
        except sa.exc.DBAPIError:
            if attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def _dot_id(name: str) -> str:
    """A Graphviz ID: always quoted, so that dots, `#` and `~` in table names are safe."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _safe_id(text: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in text)


def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _mermaid_id(text: str) -> str:
    return "s_" + "".join(ch if ch.isalnum() else "_" for ch in text)


def _mermaid_text(text: str) -> str:
    return text.replace('"', "#quot;")
