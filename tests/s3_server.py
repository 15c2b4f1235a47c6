"""A real S3 API server for tests and benchmarks: moto's server in its own process.

`S3Server(latency=0.02)` starts `python -m tests.s3_server` (moto's WSGI app served by
werkzeug, one thread per request) on a free port, with `latency` seconds of delay added to
every request (what a remote object store costs per request), creates a bucket, and gives
the `dj.config['stores']` entry that reaches it. In its own process, the server's work does
not compete with the client's threads for the GIL.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

KEY, SECRET, REGION = "testing", "testing", "us-east-1"


class S3Server:
    def __init__(self, latency: float = 0.0) -> None:
        root = str(Path(__file__).resolve().parent.parent)
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [root, os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep)}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.s3_server", str(latency)], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        assert self.process.stdout is not None
        line = self.process.stdout.readline().strip()
        if not line.isdigit():
            self.stop()
            raise RuntimeError(f"the moto S3 server did not start (said {line!r})")
        self.endpoint = f"http://127.0.0.1:{line}"
        self.bucket = f"djtest-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=self.bucket)

    def client(self) -> Any:
        import boto3

        return boto3.client("s3", endpoint_url=self.endpoint, aws_access_key_id=KEY,
                            aws_secret_access_key=SECRET, region_name=REGION)

    def store_spec(self, prefix: str = "") -> dict[str, Any]:
        """A `dj.config['stores']` entry in this server's bucket (under `prefix`)."""
        location = f"{self.bucket}/{prefix.strip('/')}".rstrip("/")
        return {"protocol": "s3", "location": location, "key": KEY, "secret": SECRET,
                "client_kwargs": {"endpoint_url": self.endpoint, "region_name": REGION}}

    def cpu_seconds(self) -> float | None:
        """The server process's CPU time so far (Linux: /proc), None where unknown."""
        try:
            fields = Path(f"/proc/{self.process.pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            return None
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()


def _delayed(app: Callable[..., Iterable[bytes]], latency: float) -> Callable[..., Any]:
    def delayed(environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        time.sleep(latency)
        return app(environ, start_response)
    return delayed


def main() -> None:
    import logging

    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
    from werkzeug.serving import make_server

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    latency = float(sys.argv[1]) if len(sys.argv) > 1 else 0.0
    app: Any = DomainDispatcherApplication(create_backend_app)
    if latency > 0:
        app = _delayed(app, latency)
    server = make_server("127.0.0.1", 0, app, threaded=True)
    print(server.server_port, flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
