"""The examples run end to end on every backend, exactly as a user starts them.

Each example runs in a subprocess (`python -m examples.NAME --url URL ...`), the way the
README tells a user to run it, on a small data size and a uniquely named schema that is
dropped afterwards.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import datajoint_sa as dj

from .conftest import unique_name

ROOT = Path(__file__).resolve().parents[1]


def run_example(module: str, *args: str, cwd: Path | None = None,
                extra_env: dict[str, str] | None = None) -> str:
    """Run `python -m module args` from the repository root; return its output."""
    env = {**os.environ, **(extra_env or {}), "PYTHONPATH": os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
    env.pop("DJ_DATABASE_URL", None)
    result = subprocess.run([sys.executable, "-m", module, *args], cwd=cwd or ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, (
        f"python -m {module} {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout


@pytest.fixture
def cleanup(db_url: str) -> Iterator[list[str]]:
    """Names of schemas the example may have created; each is dropped after the test."""
    names: list[str] = []
    yield names
    connection = dj.Connection(db_url)
    try:
        existing = set(dj.list_schemas(connection))
        for name in names:
            if name in existing:
                dj.Schema(name, connection=connection).drop(force=True)
    finally:
        connection.close()


def test_university(db_url: str, cleanup: list[str]) -> None:
    name = unique_name("univ")
    cleanup.append(name)
    out = run_example("examples.university", "--url", db_url, "--schema", name,
                      "--students", "300")
    assert "Declared 9 tables" in out
    assert "Student 300" in out
    from examples.university import queries

    assert len(queries.runnable()) >= 12
    for function in queries.runnable():
        assert f"### {function.__name__}:" in out
    # a second run replaces the schema (and this one drops it when done)
    out = run_example("examples.university", "--url", db_url, "--schema", name,
                      "--students", "40", "--drop")
    assert f"Dropping the previous schema {name!r}" in out
    assert "Student 40" in out
    assert f"Dropped schema {name!r}" in out


def test_university_data_is_reproducible() -> None:
    from examples.university import loader

    first, second = loader.generate(200, seed=7), loader.generate(200, seed=7)
    assert first == second
    assert loader.generate(200, seed=8)["Student"] != first["Student"]


def test_neuro(db_url: str, cleanup: list[str], tmp_path: Path) -> None:
    prefix = unique_name("neuro") + "_"
    cleanup.extend([f"{prefix}ephys", f"{prefix}lab"])
    workdir = tmp_path / "work"
    workdir.mkdir()
    data_root = ["--data-root", str(tmp_path / "data")]
    private_tmp = tmp_path / "tmp"  # the example's temporary folder, this test's alone
    private_tmp.mkdir()
    if db_url.startswith("sqlite"):  # once: the default data root is not the work tree
        data_root = []
    out = run_example("examples.neuro", "--url", db_url, "--prefix", prefix, *data_root,
                      "--subjects", "2", "--sessions", "2", "--duration", "2", "--drop",
                      cwd=workdir, extra_env={"TMPDIR": str(private_tmp)})
    assert list(workdir.iterdir()) == []  # nothing written where the example was run
    assert f"Activated {prefix + 'lab'!r}" in out
    assert "flowchart" in out  # the diagram, as Mermaid text
    assert "Recording 4, SpikeDetection 8" in out  # 4 sessions x 2 parameter sets
    assert "units detected" in out
    assert f"Dropped schemas {prefix + 'ephys'!r} and {prefix + 'lab'!r}" in out
    written = tmp_path / "data" if data_root else private_tmp / "datajoint_sa-neuro"
    assert (written / "pipeline.svg").exists()  # drawn with or without Graphviz


DUMP_QUERIES = r"""
import datetime, decimal, json, sys
import numpy as np
import datajoint_sa as dj
from examples.university import loader, pipeline, queries

url, name, path = sys.argv[1:4]
pipeline.activate(name, connection=dj.conn(url))
loader.load(150, seed=3, verbose=False)

def plain(value):
    if isinstance(value, (int, float, decimal.Decimal, np.number)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    return value

answers = {}
for query in queries.QUERIES:
    expression = query()
    names = expression.heading.names
    rows = [[plain(row[n]) for n in names] for row in expression.fetch(as_dict=True)]
    answers[query.__name__] = {"names": names, "rows": sorted(rows, key=json.dumps)}
with open(path, "w") as file:
    json.dump(answers, file)
"""


def test_university_queries_agree_across_backends(tmp_path: Path) -> None:
    """The same pipeline and data give the same answer to every query on every backend."""
    from .conftest import BACKENDS, MYSQL_URL, POSTGRES_URL

    urls = {"sqlite": f"sqlite:///{tmp_path / 'univ.db'}", "postgresql": POSTGRES_URL,
            "mysql": MYSQL_URL}
    name = unique_name("univ")
    answers = {}
    try:
        for backend in BACKENDS:
            out = tmp_path / f"{backend}.json"
            script = tmp_path / "dump.py"
            script.write_text(DUMP_QUERIES)
            env = {**os.environ, "PYTHONPATH": str(ROOT)}
            result = subprocess.run([sys.executable, str(script), urls[backend], name, str(out)],
                                    cwd=ROOT, env=env, capture_output=True, text=True,
                                    timeout=600)
            assert result.returncode == 0, f"{backend}:\n{result.stderr}"
            answers[backend] = json.loads(out.read_text())
    finally:
        for backend in BACKENDS:
            connection = dj.Connection(urls[backend])
            try:
                if name in dj.list_schemas(connection):
                    dj.Schema(name, connection=connection).drop(force=True)
            finally:
                connection.close()
    reference_backend, reference = next(iter(answers.items()))
    for backend, answer in answers.items():
        for query, expected in reference.items():
            got = answer[query]
            assert got["names"] == expected["names"], (query, backend)
            assert len(got["rows"]) == len(expected["rows"]), (
                f"{query}: {len(got['rows'])} rows on {backend}, "
                f"{len(expected['rows'])} on {reference_backend}")
            for mine, theirs in zip(got["rows"], expected["rows"]):
                assert all(a == b or (isinstance(a, float) and isinstance(b, float)
                                      and math.isclose(a, b, abs_tol=0.0101))
                           for a, b in zip(mine, theirs)), (query, backend, mine, theirs)
