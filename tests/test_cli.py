"""`datajoint-sa` as a user runs it: subprocesses, exit codes, one-line errors on stderr."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

import pytest

import datajoint_sa as dj

from .conftest import unique_name

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = textwrap.dedent('''
    """A tiny pipeline for the command-line tests."""
    import os

    import datajoint_sa as dj

    schema = dj.Schema(os.environ["CLI_TEST_SCHEMA"])


    @schema
    class Number(dj.Lookup):
        definition = """
        # numbers to square
        n : int32
        """
        contents = [(i,) for i in range(5)]


    @schema
    class Square(dj.Computed):
        definition = """
        -> Number
        ---
        sq : int64
        """

        def make(self, key):
            if key["n"] == 3 and os.environ.get("CLI_TEST_FAIL"):
                raise ValueError("three is\\nnot welcome")
            self.insert1(dict(key, sq=key["n"] ** 2))
''')


def run(*args: str, cwd: Path, env: dict[str, str] | None = None
        ) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, **(env or {})}
    environment.pop("DJ_DATABASE_URL", None)
    environment["PYTHONPATH"] = os.pathsep.join(
        [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    return subprocess.run([sys.executable, "-m", "datajoint_sa.cli", *args], cwd=cwd,
                          env=environment, capture_output=True, text=True, timeout=300)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("datajoint-sa: error: ")
    return lines[0]


@pytest.fixture
def pipeline(tmp_path: Path, make_schema: Callable[..., dj.Schema]) -> tuple[Path, str]:
    name = unique_name("djcli")
    make_schema(name)  # the CLI declares into it; dropped after the test
    path = tmp_path / "cli_pipeline.py"
    path.write_text(PIPELINE)
    return path, name


def test_populate_diagram_tables_describe(pipeline: tuple[Path, str], db_url: str,
                                          connection: dj.Connection, tmp_path: Path) -> None:
    path, name = pipeline
    env = {"CLI_TEST_SCHEMA": name}
    result = run("populate", str(path), "--url", db_url, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    assert "populated 5 keys" in result.stdout
    square = dj.VirtualModule("m", name, connection=connection).Square
    assert sorted(square.fetch("sq")) == [0, 1, 4, 9, 16]

    result = run("--url", db_url, "diagram", str(path), "-o", "pipeline.mmd", cwd=tmp_path,
                 env=env)
    assert result.returncode == 0, result.stderr
    mermaid = (tmp_path / "pipeline.mmd").read_text()
    assert '"Number"' in mermaid and '"Square"' in mermaid
    # a schema name works too: drawn from the database alone
    result = run("diagram", name, "-o", "schema.dot", "--url", db_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "digraph" in (tmp_path / "schema.dot").read_text()
    # SVG with no Graphviz program on PATH: laid out in Python
    no_dot = os.pathsep.join([os.path.dirname(sys.executable)] + [
        f for f in os.environ["PATH"].split(os.pathsep) if not os.path.exists(f"{f}/dot")])
    result = run("diagram", name, "-o", "schema.svg", "--url", db_url, cwd=tmp_path,
                 env={"PATH": no_dot})
    assert result.returncode == 0, result.stderr
    svg = (tmp_path / "schema.svg").read_text()
    assert 'data-tier="computed"' in svg and ">Square<" in svg
    if shutil.which("dot"):  # PNG resolution: --dpi, 150 by default
        widths = {}
        for dpi in ("72", "150"):
            extra = ("--dpi", dpi) if dpi == "72" else ()
            result = run("diagram", name, "-o", f"d{dpi}.png", *extra, "--url", db_url,
                         cwd=tmp_path)
            assert result.returncode == 0, result.stderr
            header = (tmp_path / f"d{dpi}.png").read_bytes()[:24]
            widths[dpi] = int.from_bytes(header[16:20], "big")  # the IHDR width
        assert widths["150"] > 1.8 * widths["72"]

    result = run("tables", name, "--url", db_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["table", "class", "tier", "rows", "comment"]
    assert lines[2].split()[:4] == ["#number", "Number", "Lookup", "5"]
    assert lines[3].split()[:4] == ["__square", "Square", "Computed", "5"]

    result = run("describe", f"{name}.Square", "--url", db_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["-> Number", "---", "sq : int64"]


def test_populate_errors_exit_1_and_show_in_jobs(pipeline: tuple[Path, str], db_url: str,
                                                 tmp_path: Path) -> None:
    path, name = pipeline
    env = {"CLI_TEST_SCHEMA": name, "CLI_TEST_FAIL": "1"}
    result = run("populate", str(path), "Square", "--reserve-jobs", "--max-calls", "10",
                 "--url", db_url, cwd=tmp_path, env=env)
    assert result.returncode == 1, result.stderr
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and "three is not welcome" in errors[0]
    assert "populated 4 keys, 1 error(s)" in result.stdout

    result = run("jobs", name, "--errors", "--clear-stale", "--url", db_url, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "cleared 0 reservation(s)" in result.stdout
    assert "three is not welcome" in result.stdout and "1 error(s)" in result.stdout

    # the failed key is computed once the cause is gone and its error row is deleted
    connection = dj.Connection(db_url)
    try:
        dj.Schema(name, connection=connection).jobs.delete()
    finally:
        connection.close()
    result = run("populate", str(path), "--reserve-jobs", "--url", db_url, cwd=tmp_path,
                 env={"CLI_TEST_SCHEMA": name})
    assert result.returncode == 0, result.stderr
    assert "populated 1 key" in result.stdout


def test_bad_usage_exits_2_with_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from datajoint_sa import cli

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    monkeypatch.setitem(dj.config, "database.url", dj.config["database.url"])
    monkeypatch.setattr("datajoint_sa.connection._shared", None)
    monkeypatch.chdir(tmp_path)
    cases = [
        (),
        ("populate",),
        ("populate", "no_such_module_anywhere", "--url", url),
        ("populate", "x.py", "--processes", "0", "--url", url),
        ("describe", "noschema", "--url", url),
        ("describe", "noschema.Table", "--url", url),
        ("tables", "noschema", "--url", url),
        ("jobs", "noschema", "--url", url),
        ("diagram", "no_such_thing", "-o", "x.svg", "--url", url),
        ("frobnicate",),
    ]
    for args in cases:
        assert cli.main(args) == 2, args
        captured = capsys.readouterr()
        lines = [line for line in captured.err.splitlines() if line.strip()]
        assert len(lines) == 1 and lines[0].startswith("datajoint-sa: error: "), (args, lines)
    # and the same through a real process
    result = run("describe", "noschema.Table", "--url", url, cwd=tmp_path)
    assert result.returncode == 2
    assert "no schema named 'noschema'" in one_line_error(result)
    result = run("--help", cwd=tmp_path)
    assert result.returncode == 0 and "populate" in result.stdout


def test_errors_during_work_exit_1(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("import datajoint_sa as dj\nraise dj.DataJointError('bad\\npipeline')\n")
    result = run("populate", str(broken), "--url", f"sqlite:///{tmp_path / 'x.db'}",
                 cwd=tmp_path)
    assert result.returncode == 1
    assert "bad pipeline" in one_line_error(result)
    result = run("tables", "x", "--url", "nosuchdriver://host/db", cwd=tmp_path)
    assert result.returncode == 1
    one_line_error(result)


@pytest.mark.skipif(shutil.which("datajoint-sa") is None and not os.environ.get("CI"),
                    reason="the console script is installed with `pip install -e .`")
def test_console_script_is_installed(tmp_path: Path) -> None:
    result = subprocess.run(["datajoint-sa", "--help"], capture_output=True, text=True,
                            timeout=120, cwd=tmp_path)
    assert result.returncode == 0
    for command in ("populate", "diagram", "jobs", "tables", "describe", "migrate"):
        assert command in result.stdout


def test_migrate_forwards_its_arguments(monkeypatch: pytest.MonkeyPatch) -> None:
    from datajoint_sa import cli

    seen: list[list[str]] = []
    fake = type(sys)("datajoint_sa.migrate")
    fake.cli = lambda argv: seen.append(list(argv)) or 3  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "datajoint_sa.migrate", fake)
    monkeypatch.setattr(dj, "migrate", fake, raising=False)
    monkeypatch.setitem(dj.config, "database.url", dj.config["database.url"])
    monkeypatch.setattr("datajoint_sa.connection._shared", None)
    assert cli.main(["migrate", "--url", "sqlite://", "upgrade", "head", "--sql"]) == 3
    assert seen == [["upgrade", "head", "--sql"]]
    assert cli.main(["migrate", "--", "--help"]) == 3
    assert seen[-1] == ["--help"]


def test_describe_by_table_name_and_part(schema: dj.Schema, db_url: str,
                                         capsys: pytest.CaptureFixture[str],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from datajoint_sa import cli

    monkeypatch.setitem(dj.config, "database.url", dj.config["database.url"])
    monkeypatch.setattr("datajoint_sa.connection._shared", None)

    @schema
    class Probe(dj.Manual):
        definition = """
        # probes
        probe : varchar(16)
        """

        class Channel(dj.Part):
            definition = """
            -> master
            channel : uint16
            """

    for name in ("Probe", "probe"):
        assert cli.main(["describe", f"{schema.database}.{name}", "--url", db_url]) == 0
        assert capsys.readouterr().out == "# probes\nprobe : varchar(16)\n---\n"
    for name in ("Probe.Channel", "probe__channel"):
        assert cli.main(["describe", f"{schema.database}.{name}", "--url", db_url]) == 0
        assert capsys.readouterr().out == "-> master\nchannel : uint16\n---\n"
    assert cli.main(["describe", f"{schema.database}.Nothing", "--url", db_url]) == 2
    assert "has no table 'Nothing'" in capsys.readouterr().err
