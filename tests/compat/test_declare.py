"""Every table of the pinned Elements declares, unchanged, on every backend after
install_as_datajoint(): each workflow of elements.WORKFLOWS in a fresh interpreter (the
"lab" workflow is declared, and counted, in-process by test_workflow.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.compat.elements import WORKFLOWS
from tests.conftest import backend_url

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("workflow", [w for w in WORKFLOWS if w != "lab"])
def test_every_table_declares(workflow: str, backend: str,
                              tmp_path_factory: pytest.TempPathFactory) -> None:
    url = backend_url(backend, tmp_path_factory)
    prefix = f"cx{uuid.uuid4().hex[:6]}_"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    done = subprocess.run([sys.executable, "-m", "tests.compat.elements", workflow, url, prefix],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert sorted(counts) == sorted(WORKFLOWS[workflow])
    short = {m: c for m, c in counts.items() if c[0] != c[1]}
    assert not short, f"tables not declared (declared, defined): {short}"
    declared = sum(c[0] for c in counts.values())
    print(f"{backend} {workflow}: {declared} tables declared")
    assert declared == sum(c[1] for c in counts.values()) > 0
