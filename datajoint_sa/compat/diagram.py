"""`datajoint.diagram`: Diagram (classic aliases Di and ERD).

Classic `Diagram(source, context=None)` used `context` to name the nodes by the caller's
class names; ours names them from the database, so `context` is accepted and not needed."""

from __future__ import annotations

from typing import Any

from ..connection import Connection
from ..diagram import Diagram as CoreDiagram


class Diagram(CoreDiagram):
    """The core Diagram, also taking classic's `context=` keyword."""

    def __init__(self, source: Any = None, context: Any = None, *,
                 connection: Connection | None = None) -> None:
        super().__init__(source, connection=connection)


Di = ERD = Diagram

__all__ = ["ERD", "Di", "Diagram"]
