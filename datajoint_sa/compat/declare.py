"""`datajoint.declare`: definitions parsed into table specifications (no database)."""

from __future__ import annotations

from ..declare import TableSpec, compile, parse

__all__ = ["TableSpec", "compile", "parse"]
