"""Per-backend behaviour, chosen by SQLAlchemy dialect name."""

from __future__ import annotations

from .base import Backend
from .mysql import MySQLBackend
from .postgresql import PostgreSQLBackend
from .sqlite import SQLiteBackend

BACKENDS: dict[str, Backend] = {
    "sqlite": SQLiteBackend(),
    "postgresql": PostgreSQLBackend(),
    "mysql": MySQLBackend(),
    "mariadb": MySQLBackend(),
}


def get_backend(dialect_name: str) -> Backend:
    try:
        return BACKENDS[dialect_name]
    except KeyError:
        from ..errors import DataJointError

        raise DataJointError(f"Unsupported database backend: {dialect_name}") from None


__all__ = ["Backend", "BACKENDS", "get_backend"]
