"""Throwaway database servers for the test suite on a machine where none answers.

`pip install -e ".[dev]" && nox -s tests` must pass on a fresh machine. When PostgreSQL or
MariaDB/MySQL does not answer at its test URL but its server programs are installed, the
suite starts a private server of its own: a data directory in a temporary folder, a free
port on 127.0.0.1, trust/empty-password authentication, a `test` database, stopped and
deleted when the run ends. Where the programs are missing the failure names the packages to
install. CI keeps using the servers already running (they answer, so nothing is started).
"""

from __future__ import annotations

import atexit
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa

PACKAGES = {
    "postgresql": "PostgreSQL's server programs (Debian/Ubuntu: apt-get install postgresql; "
                  "macOS: brew install postgresql)",
    "mysql": "MariaDB's or MySQL's server programs (Debian/Ubuntu: apt-get install "
             "mariadb-server; macOS: brew install mariadb)",
}
START_TIMEOUT = 60.0


class ServerUnavailable(RuntimeError):
    """No server answers at the URL and none can be started here."""


def answers(url: str, timeout: float = 3.0) -> bool:
    """Whether a database server accepts a connection at `url`."""
    connect_args = {"connect_timeout": int(max(timeout, 1))}
    engine = sa.create_engine(url, connect_args=connect_args, poolclass=sa.pool.NullPool)
    try:
        with engine.connect():
            return True
    except Exception:
        return False
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Throwaway:
    """A server this process started: its URL, process and folder, stopped at exit."""

    backend: str
    url: str
    folder: Path
    process: subprocess.Popen[bytes] | None = None
    stop_command: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.stop_command:
            subprocess.run(self.stop_command, capture_output=True, timeout=60)
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
        shutil.rmtree(self.folder, ignore_errors=True)


def _as_owner(command: list[str], user: str | None) -> list[str]:
    """Run as `user` when we are root (initdb and postgres refuse to run as root)."""
    if user is None:
        return command
    runuser = shutil.which("runuser")
    if runuser is None:
        raise ServerUnavailable("cannot start PostgreSQL as root without `runuser`")
    return [runuser, "-u", user, "--", *command]


def _wait(url: str, process: subprocess.Popen[bytes] | None, log: Path) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if answers(url, timeout=1):
            return
        if process is not None and process.poll() is not None:
            break
        time.sleep(0.3)
    detail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
    raise ServerUnavailable(f"the throwaway server did not start ({url}):\n{detail}")


def _postgres_bin(name: str) -> str | None:
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return candidates[0] if candidates else None


def start_postgresql() -> Throwaway:
    initdb, pg_ctl = _postgres_bin("initdb"), _postgres_bin("pg_ctl")
    if initdb is None or pg_ctl is None:
        raise ServerUnavailable(f"PostgreSQL does not answer and {PACKAGES['postgresql']} "
                                "are not installed")
    owner = "postgres" if os.geteuid() == 0 else None
    folder = Path(tempfile.mkdtemp(prefix="dj-test-postgres-"))
    data, log, port = folder / "data", folder / "server.log", free_port()
    if owner:
        shutil.chown(folder, owner)
    subprocess.run(_as_owner([initdb, "-D", str(data), "-U", "postgres", "--auth=trust",
                              "--encoding=UTF8", "--no-sync"], owner),
                   check=True, capture_output=True, timeout=120)
    options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
    subprocess.run(_as_owner([pg_ctl, "-D", str(data), "-l", str(log), "-o", options,
                              "-w", "start"], owner), check=True, capture_output=True,
                   timeout=120)
    server = Throwaway("postgresql", f"postgresql+psycopg://postgres@127.0.0.1:{port}/test",
                       folder, stop_command=_as_owner([pg_ctl, "-D", str(data), "-m", "fast",
                                                       "stop"], owner))
    admin = f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres"
    try:
        _wait(admin, None, log)
        engine = sa.create_engine(admin, isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE test"))
        engine.dispose()
    except BaseException:
        server.stop()
        raise
    return server


def start_mysql() -> Throwaway:
    install = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
    daemon = next((found for name in ("mariadbd", "mysqld") for found in
                   [shutil.which(name) or (f"/usr/sbin/{name}"
                                           if os.path.exists(f"/usr/sbin/{name}") else None)]
                   if found), None)
    if install is None or daemon is None:
        raise ServerUnavailable(f"MySQL does not answer and {PACKAGES['mysql']} are not "
                                "installed")
    folder = Path(tempfile.mkdtemp(prefix="dj-test-mariadb-"))
    data, log, port = folder / "data", folder / "server.log", free_port()
    user = ["--user=root"] if os.geteuid() == 0 else []
    subprocess.run([install, "--no-defaults", f"--datadir={data}", *user,
                    "--auth-root-authentication-method=normal", "--skip-test-db"],
                   check=True, capture_output=True, timeout=180)
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [daemon, "--no-defaults", f"--datadir={data}", f"--port={port}",
             "--bind-address=127.0.0.1", f"--socket={folder / 'mysqld.sock'}",
             f"--pid-file={folder / 'mysqld.pid'}", "--innodb-flush-log-at-trx-commit=0",
             "--skip-log-bin", *user], stdout=out, stderr=subprocess.STDOUT)
    server = Throwaway("mysql", f"mysql+pymysql://root:@127.0.0.1:{port}/test", folder,
                       process=process)
    admin = f"mysql+pymysql://root:@127.0.0.1:{port}/mysql"
    try:
        _wait(admin, process, log)
        engine = sa.create_engine(admin)
        with engine.connect() as conn:
            conn.execute(sa.text("CREATE DATABASE test"))
        engine.dispose()
    except BaseException:
        server.stop()
        raise
    return server


STARTERS = {"postgresql": start_postgresql, "mysql": start_mysql}


def ensure_server(backend: str, url: str) -> str:
    """`url` if a server answers there, else the URL of a throwaway server started now
    (stopped when this process exits); raises ServerUnavailable naming what to install."""
    if answers(url):
        return url
    server = STARTERS[backend]()
    atexit.register(server.stop)
    return server.url
