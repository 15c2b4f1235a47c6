"""`datajoint-sa viz app.yaml --reload`: the app re-reads its YAML spec when the file changes.

An ASGI wrapper around the current app: before serving a request it looks at the spec
file's modification time (at most every CHECK_SECONDS) and, when it changed, builds a new
app from the file. A spec that no longer loads or binds keeps the previous app serving and
logs the problems, so a half-saved file never takes the site down. Only the YAML is
re-read; a pipeline module it names stays imported (restart for Python changes).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Receive, Scope, Send

from ..errors import DataJointError

logger = logging.getLogger("datajoint_sa.viz")
CHECK_SECONDS = 0.5


class ReloadingApp:
    """Serves `build()`'s app, rebuilt when the file at `path` changes."""

    def __init__(self, path: str | Path, build: Callable[[], ASGIApp],
                 first: ASGIApp | None = None) -> None:
        self.path = Path(path)
        self.build = build
        self.stamp = self._stamp()
        self.app = first if first is not None else build()
        self.checked = time.monotonic()
        self.error: str | None = None
        self.reloads = 0
        self._lock = threading.Lock()

    @property
    def state(self) -> Any:
        return getattr(self.app, "state", None)

    def _stamp(self) -> tuple[int, int]:
        try:
            stat = self.path.stat()
        except OSError:
            return (0, 0)
        return (stat.st_mtime_ns, stat.st_size)

    def check(self) -> bool:
        """Rebuild when the file changed; True when a new app now serves."""
        with self._lock:
            stamp = self._stamp()
            if stamp == self.stamp:
                return False
            self.stamp = stamp
            try:
                app = self.build()
            except DataJointError as error:  # SpecError included: keep the working app
                self.error = str(error)
                logger.error("the changed spec was not loaded; the previous one still "
                             "serves: %s", error)
                return False
            self.app, self.error = app, None
            self.reloads += 1
            logger.info("reloaded %s", self.path)
            return True

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and time.monotonic() - self.checked >= CHECK_SECONDS:
            self.checked = time.monotonic()
            await run_in_threadpool(self.check)
        await self.app(scope, receive, send)
