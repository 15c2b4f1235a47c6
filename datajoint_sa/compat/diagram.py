"""`datajoint.diagram`: Diagram (classic aliases Di and ERD)."""

from __future__ import annotations

from ..diagram import Diagram

Di = ERD = Diagram

__all__ = ["ERD", "Di", "Diagram"]
