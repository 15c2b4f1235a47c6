"""The map of docs/internals.md, kept true: which way imports point, which lazy imports are
named back-edges, where dialect names may appear, and what `import datajoint_sa` loads.

Imports are read from the source with `ast` (nothing is imported), so a new edge that breaks
the layering fails here with the file and line that added it."""

from __future__ import annotations

import ast
import functools
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import networkx as nx
import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "datajoint_sa"
DIALECT_NAMES = {"sqlite", "postgresql", "postgres", "mysql", "mariadb"}
#: where dialect names may appear: the backends and sqlexpr's per-dialect modules
DIALECT_ROOMS = ("backends/", "sqlexpr/sqlite.py", "sqlexpr/postgresql.py", "sqlexpr/mysql.py")
#: dialect names used as words of the classic configuration (`database.backend` picks a URL
#: driver), not as behaviour
DIALECT_WORDS = {"settings.py"}

#: rooms, lowest first; a module may import from its own room and any lower one
ROOMS: dict[str, set[str]] = {
    "foundation": {"errors", "naming", "prompt", "settings", "blob", "backends"},
    "values": {"codecs", "stores", "types", "heading", "legacy_external", "values", "store_gc",
               "objects", "transfers"},
    "sql": {"sqlexpr", "connection", "cursor", "declare", "dependencies", "lineage"},
    "algebra": {"condition", "expression", "statements", "fetch", "columnar", "preview"},
    "tables": {"table", "insert", "frame_insert", "delete", "describe", "schema", "jobs",
               "reflect", "tiers", "diagram", "diagram_svg", "staged", "relatives"},
    "computing": {"populate", "worker", "scheduler", "heartbeat"},
    "migrating": {"migrate"},
    "faces": {"cli", "viz", "compat", "__init__"},
}
ORDER = list(ROOMS)

#: imports that point upwards, each one named: (importer, imported) -> why
UPWARD = {
    ("values.heading", "algebra.fetch"): "numpy dtypes of a fetched record array",
    ("values.legacy_external", "sql.connection"): "0.14 stores are read through a connection",
    ("values.legacy_external", "algebra.fetch"): "0.14 objects are fetched like others",
    ("tables.tiers", "computing.populate"): "Computed and Imported tables populate",
    ("tables.table", "migrating.migrate"): "back-edge: Table.alter",
    ("tables.schema", "migrating.migrate"): "back-edge: Schema.migrate",
    ("tables.jobs", "migrating.migrate"): "back-edge: a job table of an older layout",
    ("migrating.migrate", "tables.schema"): "migrate loads pipelines of schemas",
    # scale's workers, landed last: to be cut when populate/ becomes a package
    ("tables.jobs", "computing.heartbeat"): "reservations carry the worker's heartbeat",
    ("computing.populate", "faces.cli"): "a worker loads the pipeline module like the CLI",
}
#: the only cycles allowed: a query restricts a query, and the table facade
ALLOWED_CYCLES = [{"condition", "expression"}]
#: cycles that are being cut by their owners (none at present)
PENDING_CYCLES: list[set[str]] = [  # populate/worker.py -> cli, landed last: to be cut
    {"cli", "diagram", "diagram_svg", "heartbeat", "jobs", "migrate", "populate", "reflect",
     "schema", "table", "tiers", "viz"}]
FACADE = {"table", "schema", "tiers", "populate", "jobs", "reflect", "migrate", "insert",
          "delete", "heartbeat", "scheduler", "worker", "relatives"}
#: function-level imports that are not back-edges: optional or slow dependencies of the
#: faces, and modules whose owners are restructuring them (populate -> package, stores -> gc
#: split) -- everything else must say "back-edge" on its line
LAZY_ALLOWED = {"cli.py", "viz/", "compat/", "populate/", "scheduler.py", "heartbeat.py",
                "worker.py", "stores.py", "store_gc.py", "objects.py",
                "legacy_external.py", "__init__.py"}


@dataclass(frozen=True)
class Edge:
    source: str  # module path relative to the package, e.g. "table.py"
    target: str  # top-level module of the package, e.g. "expression"
    line: int
    lazy: bool
    text: str


def _top(module: str) -> str:
    return module.split(".", 1)[0] or "__init__"


def _module_of(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE).with_suffix("").parts)
    return ".".join(parts)


@functools.cache
def edges() -> list[Edge]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        source = path.read_text()
        lines = source.splitlines()
        tree = ast.parse(source)
        guarded = {id(n) for node in ast.walk(tree) if isinstance(node, ast.If)
                   and "TYPE_CHECKING" in ast.unparse(node.test) for n in ast.walk(node)}
        top_level = {id(n) for n in tree.body}
        here = _module_of(path).split(".")
        package = here if path.name == "__init__.py" else here[:-1]
        for node in ast.walk(tree):
            if id(node) in guarded:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name[len("datajoint_sa."):] for a in node.names
                           if a.name.startswith("datajoint_sa.")]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package[:len(package) - node.level + 1]
                    module = ".".join([*base, *([node.module] if node.module else [])])
                    if not module:
                        targets = [a.name for a in node.names]
                    else:
                        targets = [module]
                elif (node.module or "").startswith("datajoint_sa."):
                    targets = [node.module[len("datajoint_sa."):]]  # type: ignore[index]
            rel = str(path.relative_to(PACKAGE))
            for target in targets:
                top = _top(target)
                if top == _top(_module_of(path)) and "/" in rel:
                    continue  # inside a subpackage
                found.append(Edge(rel, top, node.lineno, id(node) not in top_level,
                                  lines[node.lineno - 1]))
    return found


def room_of(module: str) -> str:
    name = _top(module.removesuffix(".py").replace("/", "."))
    for room, members in ROOMS.items():
        if name in members:
            return room
    raise AssertionError(f"{module} belongs to no room: add it to ROOMS and docs/internals.md")


def test_every_module_has_a_room() -> None:
    for path in PACKAGE.rglob("*.py"):
        room_of(str(path.relative_to(PACKAGE)))


def test_imports_point_down_or_are_named() -> None:
    wrong = []
    for edge in edges():
        if edge.target not in {m for ms in ROOMS.values() for m in ms}:
            continue
        src, dst = room_of(edge.source), room_of(edge.target)
        if ORDER.index(dst) <= ORDER.index(src):
            continue
        key = (f"{src}.{_top(edge.source.removesuffix('.py').replace('/', '.'))}",
               f"{dst}.{edge.target}")
        if key not in UPWARD:
            wrong.append(f"{edge.source}:{edge.line} imports {edge.target} ({src} -> {dst})")
    assert not wrong, "imports against the room order (see docs/internals.md):\n" + \
        "\n".join(wrong)


def test_only_the_named_cycles() -> None:
    graph = nx.DiGraph()
    for edge in edges():
        source = _top(edge.source.removesuffix(".py").replace("/", "."))
        if source != edge.target:
            graph.add_edge(source, edge.target)
    cycles = [c for c in nx.strongly_connected_components(graph) if len(c) > 1]
    extra = [sorted(c) for c in cycles
             if c not in ALLOWED_CYCLES and c not in PENDING_CYCLES and not c <= FACADE]
    assert not extra, f"import cycles beyond the named ones: {extra}"


def test_no_cycle_at_top_level() -> None:
    graph = nx.DiGraph()
    for edge in edges():
        if not edge.lazy:
            source = _top(edge.source.removesuffix(".py").replace("/", "."))
            if source != edge.target:
                graph.add_edge(source, edge.target)
    assert nx.is_directed_acyclic_graph(graph), list(nx.simple_cycles(graph))[:3]


def test_lazy_imports_are_named_back_edges() -> None:
    unnamed = [f"{e.source}:{e.line}: {e.text.strip()}" for e in edges()
               if e.lazy and "back-edge" not in e.text
               and not any(e.source == a or e.source.startswith(a) for a in LAZY_ALLOWED)]
    assert not unnamed, "function-level imports that are not named back-edges (hoist them, " \
        "or say '# back-edge: why' on the line):\n" + "\n".join(unnamed)


def test_core_never_imports_compat() -> None:
    wrong = [f"{e.source}:{e.line}" for e in edges()
             if e.target == "compat" and not e.source.startswith("compat/")
             and e.source != "__init__.py"]
    assert not wrong, f"the core imports datajoint_sa.compat: {wrong}"
    # the package's own __init__ may offer install_as_datajoint, but only lazily
    assert all(e.lazy for e in edges() if e.target == "compat" and e.source == "__init__.py")


def _docstrings(tree: ast.AST) -> set[int]:
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                found.add(id(body[0].value))
    return found


def test_dialect_names_only_in_dialect_rooms() -> None:
    wrong = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(PACKAGE))
        if rel.startswith(DIALECT_ROOMS) or rel in DIALECT_WORDS:
            continue
        tree = ast.parse(path.read_text())
        docs = _docstrings(tree)
        for node in ast.walk(tree):
            if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                    and id(node) not in docs and node.value.lower() in DIALECT_NAMES):
                wrong.append(f"{rel}:{node.lineno}: {node.value!r}")
    assert not wrong, "dialect names outside backends/ and sqlexpr/<dialect>.py (make it a " \
        "Backend hook):\n" + "\n".join(wrong)


@pytest.mark.parametrize("heavy", ["alembic", "starlette", "datajoint_sa.compat"])
def test_import_loads_no_heavy_module(heavy: str) -> None:
    code = f"import sys, datajoint_sa; print({heavy!r} in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=True)
    assert result.stdout.strip() == "False", f"import datajoint_sa loads {heavy}"


def test_readme_file_map_lists_every_module() -> None:
    """The README's file map names every module and subpackage, and nothing that is gone."""
    readme = (PACKAGE.parent / "README.md").read_text()
    tree = readme[readme.index("datajoint_sa/\n"):readme.index("migrations/ ")]
    listed = {line.split()[0] for line in tree.splitlines()[1:]
              if line.startswith("  ") and not line.startswith("   ") and line.split()}
    present = {p.name + ("/" if p.is_dir() else "") for p in PACKAGE.iterdir()
               if (p.suffix == ".py" or (p.is_dir() and (p / "__init__.py").exists()))}
    assert listed == present, (f"missing from the README: {sorted(present - listed)}; "
                               f"gone: {sorted(listed - present)}")
