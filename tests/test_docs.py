"""The documentation builds with warnings as errors, and its Python blocks are valid Python.

The build is the same as `nox -s docs` (mkdocs + mkdocstrings, `--strict`): a broken link,
a missing page or an API reference that no longer resolves fails it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import datajoint_sa.connection as dj_connection

ROOT = Path(__file__).resolve().parents[1]
PAGES = sorted((ROOT / "docs").rglob("*.md"))
BLOCK = re.compile(r"^```python[ \t]*\n(?P<code>.*?)^```[ \t]*$", re.M | re.S)


def test_docs_build_strict(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert result.returncode == 0, f"mkdocs build --strict failed:\n{result.stderr}"
    assert (tmp_path / "api" / "tables" / "index.html").exists()


@pytest.mark.parametrize("page", PAGES, ids=[str(p.relative_to(ROOT)) for p in PAGES])
def test_docs_python_blocks_compile(page: Path) -> None:
    text = page.read_text()
    for match in BLOCK.finditer(text):
        line = text.count("\n", 0, match.start("code")) + 1
        compile(textwrap.dedent(match["code"]), f"{page}:{line}", "exec")


def test_docs_home_page_example_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The example on the first page a reader sees runs as written (SQLite, empty folder)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DJ_DATABASE_URL", raising=False)
    monkeypatch.setattr(dj_connection, "_shared", None)
    text = (ROOT / "docs" / "index.md").read_text()
    match = BLOCK.search(text)
    assert match is not None
    namespace: dict[str, object] = {"__name__": "__docs_index__"}
    try:
        exec(compile(match["code"], str(ROOT / "docs" / "index.md"), "exec"), namespace)
        assert len(namespace["Age"]) == 2  # type: ignore[arg-type]
    finally:
        if dj_connection._shared is not None:
            dj_connection._shared.close()
