"""The README cannot lie: every ```python block in it runs, and every command it shows exists.

Each python block runs as a reader would paste it into a fresh interpreter: in its own
namespace, in an empty working directory (so the default `sqlite:///datajoint.db` lands
there), with a fresh shared connection and the settings restored afterwards. A block that
only configures a server URL runs as written (assignments connect to nothing); each URL it
names must then make an engine, which proves the driver it names is installed.

The ```bash blocks are checked, not run (they install packages): every `python -m MODULE`
must be importable and every `nox -s SESSION` must be a session of the noxfile. The
university example that the first command runs is executed by tests/test_examples.py.
"""

from __future__ import annotations

import importlib.util
import re
import shlex
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import datajoint_sa as dj
import datajoint_sa.connection as dj_connection

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
BLOCK = re.compile(r"^```(?P<lang>[\w+-]*)[ \t]*\n(?P<code>.*?)^```[ \t]*$", re.M | re.S)
URL = re.compile(r"""["'](?P<url>[a-z][\w+]*://[^"']*)["']""")


def blocks(language: str) -> list[Any]:
    text = README.read_text()
    found = []
    for match in BLOCK.finditer(text):
        if match["lang"] == language:
            line = text.count("\n", 0, match.start("code")) + 1
            found.append(pytest.param(match["code"], line, id=f"README.md:{line}"))
    return found


def test_readme_has_python_blocks() -> None:
    assert blocks("python"), "README.md has no ```python block to test"


@pytest.fixture
def fresh_session(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An empty working directory, default settings and no shared connection yet."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("DJ_DATABASE_URL", raising=False)
    monkeypatch.setattr(dj_connection, "_shared", None)
    saved = dict(dj.config._values)
    yield tmp_path
    shared = dj_connection._shared
    if shared is not None:
        shared.close()
    dj.config._values.clear()
    dj.config._values.update(saved)


@pytest.mark.parametrize(("code", "line"), blocks("python"))
def test_python_block_runs(code: str, line: int, fresh_session: Path,
                           capsys: pytest.CaptureFixture[str]) -> None:
    namespace: dict[str, Any] = {"__name__": "__readme__"}
    exec(compile(code, f"{README}:{line}", "exec"), namespace)
    for match in URL.finditer(code):
        url = match["url"]
        engine_check = dj.Connection(url)  # makes an engine; connects to nothing
        assert engine_check.backend in ("sqlite", "postgresql", "mysql"), url
        engine_check.close()
    # a block that sets the URL leaves it set to the last URL it names
    if "database.url" in code:
        assert dj.config["database.url"] == URL.findall(code)[-1]


class _SessionRecorder(types.ModuleType):
    """Stands in for `nox` while the noxfile is read: records the names of its sessions
    (nox itself is a dev tool, not installed in the test environment)."""

    def __init__(self) -> None:
        super().__init__("nox")
        self.names: set[str] = set()
        self.options = types.SimpleNamespace()
        self.Session = object

    def session(self, func: Any = None, **options: Any) -> Any:
        def register(function: Any) -> Any:
            self.names.add(options.get("name") or function.__name__)
            return function

        return register(func) if callable(func) else register


def _nox_sessions() -> set[str]:
    recorder = _SessionRecorder()
    saved = sys.modules.get("nox")
    sys.modules["nox"] = recorder
    try:
        source = (ROOT / "noxfile.py").read_text()
        exec(compile(source, str(ROOT / "noxfile.py"), "exec"), {"__name__": "noxfile"})
    finally:
        if saved is None:
            del sys.modules["nox"]
        else:
            sys.modules["nox"] = saved
    return recorder.names


@pytest.mark.parametrize(("code", "line"), blocks("bash"))
def test_bash_block_commands_exist(code: str, line: int) -> None:
    sessions: set[str] | None = None
    for command in re.split(r"&&|\n|;", code):
        words = shlex.split(command)
        if words[:2] == ["python", "-m"] and len(words) > 2:
            assert importlib.util.find_spec(words[2]) is not None, f"no module {words[2]}"
        if words[:1] == ["nox"] and "-s" in words:
            sessions = sessions if sessions is not None else _nox_sessions()
            for name in words[words.index("-s") + 1:]:
                if name.startswith("-"):
                    break
                assert name in sessions, f"README.md:{line}: no nox session {name!r}"
        if words[:2] == ["pip", "install"]:
            for target in words[2:]:
                if target.startswith("."):
                    extras = re.findall(r"\[(.*)\]", target)
                    for extra in (extras[0].split(",") if extras else []):
                        assert f"\n{extra.strip()} = " in (ROOT / "pyproject.toml").read_text(), \
                            f"README.md:{line}: no extra {extra!r} in pyproject.toml"


def test_readme_url_examples_parse() -> None:
    """The URLs the README names in prose are valid SQLAlchemy URLs."""
    for url in re.findall(r"`((?:sqlite|postgresql|mysql)[\w+]*://[^`]*)`", README.read_text()):
        sa.make_url(url)
