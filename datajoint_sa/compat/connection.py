"""`datajoint.connection`: Connection and conn()."""

from __future__ import annotations

from ..connection import Connection, conn

__all__ = ["Connection", "conn"]
