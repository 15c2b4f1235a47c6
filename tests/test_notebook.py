"""examples/tour.ipynb runs top to bottom in a fresh kernel, and its rich displays work.

The notebook is executed with nbclient in an empty directory (its SQLite file lands there),
exactly as a reader would run it with "Run all". A cell that raises fails the test with the
cell's source and traceback.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOK = Path(__file__).resolve().parents[1] / "examples" / "tour.ipynb"


def path_without_dot() -> str:
    """PATH without any folder that holds Graphviz's `dot`, as on a machine without it."""
    folders = [os.path.dirname(sys.executable)]
    folders += [f for f in os.environ.get("PATH", "").split(os.pathsep)
                if f and not os.path.exists(os.path.join(f, "dot"))]
    return os.pathsep.join(folders)


@pytest.fixture(scope="module", params=["with-dot", "without-dot"])
def executed(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> nbformat.NotebookNode:
    """The tour, run once with Graphviz (when installed) and once with `dot` off PATH."""
    env = dict(os.environ)
    if request.param == "with-dot":
        if shutil.which("dot") is None:
            if os.environ.get("CI"):  # CI installs Graphviz: its absence is a failure there
                pytest.fail("Graphviz's dot is not installed (apt-get install graphviz)")
            pytest.skip("Graphviz's dot is not installed (apt-get install graphviz)")
    else:
        env["PATH"] = path_without_dot()
    workdir = tmp_path_factory.mktemp("tour")
    shutil.copy(NOTEBOOK, workdir / NOTEBOOK.name)
    notebook = nbformat.read(workdir / NOTEBOOK.name, as_version=4)
    client = NotebookClient(notebook, timeout=300, kernel_name="python3",
                            resources={"metadata": {"path": str(workdir)}})
    try:
        client.execute(env=env)
    except CellExecutionError as error:
        pytest.fail(f"examples/tour.ipynb failed ({request.param}):\n{error}")
    notebook.metadata["dj_test_variant"] = request.param
    return notebook


def outputs(notebook: nbformat.NotebookNode) -> list[dict]:
    return [output for cell in notebook.cells if cell.cell_type == "code"
            for output in cell.outputs]


def test_tour_runs_without_errors(executed: nbformat.NotebookNode) -> None:
    assert not [o for o in outputs(executed) if o["output_type"] == "error"]


def test_tour_shows_html_previews(executed: nbformat.NotebookNode) -> None:
    html = [o["data"]["text/html"] for o in outputs(executed)
            if "text/html" in o.get("data", {})]
    assert any("dj-preview" in h for h in html), "no _repr_html_ preview of a query"


def test_tour_draws_an_svg_diagram(executed: nbformat.NotebookNode) -> None:
    svgs = [o["data"]["image/svg+xml"] for o in outputs(executed)
            if "image/svg+xml" in o.get("data", {})]
    assert svgs and "<svg" in svgs[0] and "Session" in svgs[0]
    drawn_in_python = 'class="node" data-tier=' in svgs[0]
    assert drawn_in_python == (executed.metadata["dj_test_variant"] == "without-dot")


def test_tour_is_committed_without_outputs() -> None:
    """Outputs in the committed file would go stale; CI produces fresh ones."""
    notebook = nbformat.read(NOTEBOOK, as_version=4)
    assert all(not cell.get("outputs") for cell in notebook.cells if cell.cell_type == "code")
