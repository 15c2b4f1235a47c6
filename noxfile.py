"""Sessions: tests per backend (and all three), lint, typecheck, bench, interop."""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
# uv builds each session's venv in seconds instead of minutes (CI builds five from a fresh
# clone); plain virtualenv + pip where uv is not installed
nox.options.default_venv_backend = "uv|virtualenv"
BACKENDS = ("sqlite", "postgresql", "mysql")


def _pytest(session: nox.Session, backends: str) -> None:
    # dask: populate(executor=...) on a LocalCluster; arrow, polars: to_arrow(), to_polars()
    session.install("-e", ".[test,dask,arrow,polars]")
    # two workers: the machine CI runs on has two cores (throwaway servers, if any, are
    # started once by the controlling process and shared by both)
    # an unclosed connection, socket, file or pipe fails the test that leaked it (a leaked
    # connection is a real bug for long-running workers and web apps)
    session.run("python", "-m", "pytest", "-q", "-n", "2", "-W", "error::ResourceWarning",
                "-W", "error::pytest.PytestUnraisableExceptionWarning", *session.posargs,
                env={"DJ_TEST_BACKENDS": backends})


@nox.session(name="tests")
def tests(session: nox.Session) -> None:
    """The whole suite on SQLite, PostgreSQL and MySQL."""
    _pytest(session, ",".join(BACKENDS))


for _backend in BACKENDS:
    def _one(session: nox.Session, backend: str = _backend) -> None:
        _pytest(session, backend)

    nox.session(name=f"tests-{_backend}")(_one)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff")
    session.run("ruff", "check", "datajoint_sa", "tests", "benchmarks", "noxfile.py")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install("-e", ".[test]", "mypy", "pandas-stubs")
    session.run("mypy", "datajoint_sa")


def _reference_python(session: nox.Session) -> str:
    """DataJoint 2.3.5 in a virtual environment of its own (none of its code enters ours)."""
    peer = os.path.abspath(os.path.join(session.create_tmp(), "datajoint-2.3.5"))
    peer_python = os.path.join(peer, "bin", "python")
    if not os.path.exists(peer_python):
        session.run("python", "-m", "venv", peer)
    session.run(peer_python, "-m", "pip", "install", "-q", "datajoint==2.3.5",
                "psycopg2-binary", external=True)
    return peer_python


@nox.session
def bench(session: nox.Session) -> None:
    """The phase table of issue 17 per backend: ratios to the raw drivers and DataJoint
    2.3.5's figures from the same run (`-- --scale 0.5`, `-- --report` rewrites
    docs/benchmarks.md). The other benchmark modules: `python -m benchmarks`."""
    session.install("-e", ".[test]")
    session.run("python", "-m", "benchmarks.phases", "--peer", _reference_python(session),
                *session.posargs)


@nox.session(name="bench-scale")
def bench_scale(session: nox.Session) -> None:
    """Issue 17's scale curve and peak memory (benchmarks/scale_curve.py): per-row cost at
    10^4, 10^5, 10^6 rows (`-- --large`: and 10^7) against the raw drivers; `-- --report`
    rewrites its section of docs/benchmarks.md and docs/figures/scale_curve.png."""
    session.install("-e", ".[test,arrow,bench]")
    session.run("python", "-m", "benchmarks.scale_curve", *session.posargs)


@nox.session
def interop(session: nox.Session) -> None:
    """Both directions with the reference implementation, DataJoint 2.3.5, on MySQL and
    PostgreSQL (tests/interop). DataJoint runs as a peer in its own virtual environment, so
    none of its code enters ours; DJ_INTEROP_PYTHON tells the tests where it is."""
    session.install("-e", ".[test]")
    peer = os.path.abspath(os.path.join(session.create_tmp(), "datajoint-2.3.5"))
    peer_python = os.path.join(peer, "bin", "python")
    if not os.path.exists(peer_python):
        session.run("python", "-m", "venv", peer)
    session.run(peer_python, "-m", "pip", "install", "-q", "datajoint==2.3.5",
                "psycopg2-binary", external=True)
    # the blob test that has the reference unpack what we pack uses the same peer
    session.run("python", "-m", "pytest", "-q", "tests/interop", "tests/test_blob.py",
                *session.posargs,
                env={"DJ_INTEROP_PYTHON": peer_python, "DJ_REFERENCE_PYTHON": peer_python,
                     "DJ_TEST_BACKENDS": "mysql,postgresql"})


@nox.session
def compat(session: nox.Session) -> None:
    """The published DataJoint Elements, pinned (tests/compat/requirements.txt), unchanged,
    on SQLite, PostgreSQL and MySQL after install_as_datajoint(). They are installed with
    --no-deps: their requirement on the `datajoint` package would shadow ours; what their
    modules import at top level comes from the `compat` extra."""
    session.install("-e", ".[test,compat]")
    session.install("--no-deps", "-r", "tests/compat/requirements.txt")
    env = {"DJ_TEST_BACKENDS": ",".join(BACKENDS), "DJ_COMPAT_REQUIRED": "1"}
    # each declaration workflow in its own interpreter, two at a time; then the lab
    # workflow's ordered steps in one process (they share one assembled pipeline per backend)
    session.run("python", "-m", "pytest", "-q", "-n", "2", "tests/compat/test_declare.py",
                *session.posargs, env=env)
    session.run("python", "-m", "pytest", "-q", "-p", "no:xdist",
                "tests/compat/test_workflow.py", *session.posargs, env=env)


@nox.session
def docs(session: nox.Session) -> None:
    """Build the documentation (mkdocs + mkdocstrings); any warning is an error."""
    session.install("-e", ".[docs]")
    site = session.create_tmp()
    session.run("mkdocs", "build", "--strict", "--site-dir", f"{site}/site", *session.posargs)
