"""Diagrams of the foreign-key graph: SVG through Graphviz, Graphviz source, Mermaid text."""

from __future__ import annotations

import os
import shutil
import types
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path

import pytest

import datajoint_sa as dj
from datajoint_sa.diagram import Diagram

from .conftest import unique_name

# CI installs Graphviz: there its absence fails these tests instead of skipping them
needs_dot = pytest.mark.skipif(shutil.which("dot") is None and not os.environ.get("CI"),
                               reason="Graphviz's dot is not installed (apt-get install graphviz)")
SVG = "{http://www.w3.org/2000/svg}"


def two_schema_pipeline(make_schema: Callable[..., dj.Schema]) -> types.SimpleNamespace:
    lab = make_schema(unique_name("dglab"))
    ses = make_schema(unique_name("dgses"))

    @lab
    class Subject(dj.Manual):
        definition = """
        subject_id : int32
        """

    @lab
    class Rig(dj.Lookup):
        definition = """
        rig : varchar(8)
        """

    @ses
    class Session(dj.Manual):
        definition = """
        -> Subject
        session : int16
        ---
        -> [nullable] Rig
        """

        class Trial(dj.Part):
            definition = """
            -> master
            trial : int16
            """

    @ses
    class Scan(dj.Imported):
        definition = """
        -> Session
        """

    @ses
    class Pair(dj.Computed):
        definition = """
        -> Scan
        -> Scan.proj(other='session')
        """

    nodes = {
        f"{lab.database}.subject": ("Manual", "Subject"),
        f"{lab.database}.#rig": ("Lookup", "Rig"),
        f"{ses.database}.session": ("Manual", "Session"),
        f"{ses.database}.session__trial": ("Part", "Session.Trial"),
        f"{ses.database}._scan": ("Imported", "Scan"),
        f"{ses.database}.__pair": ("Computed", "Pair"),
    }
    edges = {
        (f"{lab.database}.subject", f"{ses.database}.session"),
        (f"{lab.database}.#rig", f"{ses.database}.session"),
        (f"{ses.database}.session", f"{ses.database}.session__trial"),
        (f"{ses.database}.session", f"{ses.database}._scan"),
        (f"{ses.database}._scan", f"{ses.database}.__pair"),
    }
    return types.SimpleNamespace(lab=lab, ses=ses, Subject=Subject, Rig=Rig, Session=Session,
                                 Scan=Scan, Pair=Pair, nodes=nodes, edges=edges)


def parse_svg(svg: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """({node id: label text}, [(parent, child)]) of Graphviz's SVG output."""
    root = ET.fromstring(svg)
    nodes: dict[str, str] = {}
    edges: list[tuple[str, str]] = []
    for group in root.iter(f"{SVG}g"):
        title = group.find(f"{SVG}title")
        if title is None or title.text is None:
            continue
        if group.get("class") == "node":
            texts = [t.text or "" for t in group.iter(f"{SVG}text")]
            nodes[title.text] = " ".join(texts)
        elif group.get("class") == "edge":
            parent, _, child = title.text.partition("->")
            edges.append((parent, child))
    return nodes, edges


ENGINES = [pytest.param("graphviz", marks=needs_dot), "python"]


@pytest.mark.parametrize("engine", ENGINES)
def test_svg_of_two_schemas_has_every_table_and_edge(make_schema: Callable[..., dj.Schema],
                                                     engine: str) -> None:
    p = two_schema_pipeline(make_schema)
    diagram = dj.Diagram(p.lab) + dj.Diagram(p.ses)
    nodes, edges = parse_svg(diagram.make_svg(engine=engine))
    assert set(nodes) == set(p.nodes)
    for node, (_, label) in p.nodes.items():
        assert nodes[node] == label
    # the renamed self-join of Pair on Scan is its own edge: six in all
    assert sorted(edges) == sorted([*p.edges, (f"{p.ses.database}._scan",
                                               f"{p.ses.database}.__pair")])


@pytest.mark.parametrize("engine", ENGINES)
def test_cross_schema_nodes_carry_their_schema(make_schema: Callable[..., dj.Schema],
                                               engine: str) -> None:
    p = two_schema_pipeline(make_schema)
    nodes, _ = parse_svg((dj.Diagram(p.ses) - 1).make_svg(engine=engine))
    assert nodes[f"{p.lab.database}.subject"] == f"{p.lab.database}.Subject"
    assert nodes[f"{p.ses.database}.session"] == "Session"


def test_graphviz_source_styles_tiers_and_dependencies(make_schema: Callable[..., dj.Schema]
                                                       ) -> None:
    p = two_schema_pipeline(make_schema)
    dot = (dj.Diagram(p.lab) + dj.Diagram(p.ses)).make_dot()
    by_name = {n.get_name().strip('"'): n for g in [dot, *_subgraphs(dot)]
               for n in g.get_nodes()}
    assert by_name[f"{p.lab.database}.subject"].get("shape") == "box"
    assert by_name[f"{p.lab.database}.#rig"].get("shape") == "plaintext"
    assert by_name[f"{p.ses.database}._scan"].get("shape") == "ellipse"
    assert by_name[f"{p.ses.database}.__pair"].get("fillcolor").strip('"') == "#FF000020"
    edges = {(e.get_source().strip('"'), e.get_destination().strip('"'),
              (e.get("label") or "").strip('"')): e for e in dot.get_edges()}
    primary = edges[(f"{p.lab.database}.subject", f"{p.ses.database}.session", "")]
    secondary = edges[(f"{p.lab.database}.#rig", f"{p.ses.database}.session", "")]
    renamed = edges[(f"{p.ses.database}._scan", f"{p.ses.database}.__pair", "other ← session")]
    assert primary.get("style") == "solid" and secondary.get("style") == "dashed"
    assert renamed.get("color").strip('"') == "#FF8800"
    # the part sits beside its master: same rank
    families = [g for g in _subgraphs(dot) if g.get("rank") == "same"]
    assert any({n.get_name().strip('"') for n in g.get_nodes()} ==
               {f"{p.ses.database}.session", f"{p.ses.database}.session__trial"}
               for g in families)


def _subgraphs(graph: object) -> list[object]:
    found = []
    for sub in graph.get_subgraphs():  # type: ignore[attr-defined]
        found += [sub, *_subgraphs(sub)]
    return found


def test_expansion_and_algebra(make_schema: Callable[..., dj.Schema]) -> None:
    p = two_schema_pipeline(make_schema)
    lab, ses = p.lab.database, p.ses.database
    session = dj.Diagram(p.Session)
    assert session.nodes == {f"{ses}.session"}
    assert (session + 1).nodes == {f"{ses}.session", f"{ses}.session__trial", f"{ses}._scan"}
    assert (session + 2).nodes == (session + 1).nodes | {f"{ses}.__pair"}
    assert (session - 1).nodes == {f"{ses}.session", f"{lab}.subject", f"{lab}.#rig"}
    assert (dj.Diagram(p.Pair) - 10).nodes == {f"{ses}.__pair", f"{ses}._scan",
                                               f"{ses}.session", f"{lab}.subject",
                                               f"{lab}.#rig"}
    both = dj.Diagram(p.lab) + dj.Diagram(p.ses)
    assert len(both) == 6
    assert (both - dj.Diagram(p.lab)).nodes == set(dj.Diagram(p.ses).nodes)
    assert (both * dj.Diagram(p.Scan)).nodes == {f"{ses}._scan"}
    module = types.ModuleType("pipeline")
    module.schema = p.ses  # type: ignore[attr-defined]
    assert dj.Diagram(module).nodes == dj.Diagram(p.ses).nodes
    assert [n.split(".")[1] for n in dj.Diagram(p.ses).topological_sort()][0] == "session"
    assert "6 tables" in repr(both)


def test_mermaid_needs_no_graphviz(make_schema: Callable[..., dj.Schema],
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    p = two_schema_pipeline(make_schema)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    text = (dj.Diagram(p.lab) + dj.Diagram(p.ses)).to_mermaid()
    lines = text.splitlines()
    assert lines[0] == "flowchart TB"
    assert sum("subgraph" in line for line in lines) == 2
    assert any('["Session"]:::manual' in line for line in lines)
    assert any('(("Pair")):::computed' in line for line in lines)
    assert any('(["Scan"]):::imported' in line for line in lines)
    assert any('[/"Rig"/]:::lookup' in line for line in lines)
    assert sum(" --> " in line or "-->|" in line for line in lines) == 5  # primary keys
    assert sum(" -.-> " in line for line in lines) == 1  # -> [nullable] Rig
    assert any('|"other ← session"|' in line for line in lines)


def test_save_formats_and_missing_graphviz(make_schema: Callable[..., dj.Schema],
                                          tmp_path: Path,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    p = two_schema_pipeline(make_schema)
    diagram = dj.Diagram(p.ses)
    diagram.save(tmp_path / "d.dot")
    assert (tmp_path / "d.dot").read_text().startswith("digraph")
    diagram.save(tmp_path / "d.mmd")
    assert (tmp_path / "d.mmd").read_text().startswith("flowchart")
    if shutil.which("dot"):
        diagram.save(tmp_path / "d.png")
        assert (tmp_path / "d.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        diagram.save(tmp_path / "d.svg")
        assert "<svg" in (tmp_path / "d.svg").read_text()
    with pytest.raises(dj.DataJointError, match="use one of"):
        diagram.save(tmp_path / "d.txt")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert "<svg" in diagram._repr_svg_()  # drawn in Python
    diagram.save(tmp_path / "nodot.svg")
    assert "<svg" in (tmp_path / "nodot.svg").read_text()
    with pytest.raises(dj.DataJointError, match="Graphviz's `dot` program is not installed"):
        diagram.save(tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()
    with pytest.raises(dj.DataJointError, match="Unknown diagram engine"):
        diagram.make_svg(engine="neato")


def _centres(svg: str) -> dict[str, tuple[float, float]]:
    """Centre of each node's shape in the Python-drawn SVG."""
    centres: dict[str, tuple[float, float]] = {}
    for group in ET.fromstring(svg).iter(f"{SVG}g"):
        title = group.find(f"{SVG}title")
        if group.get("class") != "node" or title is None or title.text is None:
            continue
        text = group.find(f"{SVG}text")
        assert text is not None
        centres[title.text] = (float(text.get("x", 0)), float(text.get("y", 0)))
    return centres


def test_python_layout_is_layered_and_styled_like_graphviz(
        make_schema: Callable[..., dj.Schema]) -> None:
    """Without Graphviz: every child sits below each of its parents, no two tables overlap,
    and tiers and dependency kinds keep the Graphviz drawing's look."""
    p = two_schema_pipeline(make_schema)
    svg = (dj.Diagram(p.lab) + dj.Diagram(p.ses)).make_svg(engine="python")
    centres = _centres(svg)
    for parent, child in p.edges:
        assert centres[child][1] > centres[parent][1], (parent, child)
    points = sorted(centres.values())
    assert len(set(points)) == len(points)
    root = ET.fromstring(svg)
    tiers = {g.find(f"{SVG}title").text: g.get("data-tier")  # type: ignore[union-attr]
             for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    assert tiers == {node: tier.lower() for node, (tier, _) in p.nodes.items()}
    shapes = {g.find(f"{SVG}title").text: g[1].tag.removeprefix(SVG)  # type: ignore[union-attr]
              for g in root.iter(f"{SVG}g") if g.get("class") == "node"}
    assert shapes[f"{p.ses.database}._scan"] == "ellipse"
    assert shapes[f"{p.lab.database}.subject"] == "rect"
    kinds = {}
    for group in root.iter(f"{SVG}g"):
        if group.get("class") == "edge":
            path = group.find(f"{SVG}path")
            assert path is not None
            kinds.setdefault(group.get("data-kind"), []).append(path)
    assert len(kinds["primary"]) == 4 and len(kinds["secondary"]) == 1
    assert len(kinds["part"]) == 1
    assert all(path.get("stroke-dasharray") for path in kinds["secondary"])
    assert "other ← session" in svg
    assert sum(path.get("stroke") == "#FF8800" for paths in kinds.values()
               for path in paths) == 1


def test_diagram_without_dot_on_path(make_schema: Callable[..., dj.Schema], tmp_path: Path,
                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """With no `dot` anywhere on PATH (not a patched lookup): SVG, source and Mermaid work."""
    p = two_schema_pipeline(make_schema)
    monkeypatch.setenv("PATH", str(tmp_path))
    assert shutil.which("dot") is None
    diagram = dj.Diagram(p.ses)
    nodes, edges = parse_svg(diagram._repr_svg_())
    assert set(nodes) == {n for n in p.nodes if n.startswith(p.ses.database)}
    assert len(edges) == 4


def test_bad_sources_are_refused(connection: dj.Connection) -> None:
    with pytest.raises(dj.DataJointError, match="Cannot draw"):
        Diagram(42)
    with pytest.raises(dj.DataJointError, match="not activated"):
        Diagram(dj.Schema())
