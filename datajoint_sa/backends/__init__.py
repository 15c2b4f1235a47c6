"""Per-backend behaviour, chosen by SQLAlchemy dialect name."""

from __future__ import annotations

from ..errors import DataJointError
from .base import Backend
from .mysql import MySQLBackend
from .postgresql import PostgreSQLBackend
from .sqlite import SQLiteBackend

_SQLITE, _POSTGRESQL, _MYSQL = SQLiteBackend(), PostgreSQLBackend(), MySQLBackend()

#: SQLAlchemy dialect name -> backend; MariaDB is served by the MySQL backend (the one
#: place that says so: everything else asks a backend for its `name`)
BACKENDS: dict[str, Backend] = {
    "sqlite": _SQLITE,
    "postgresql": _POSTGRESQL,
    "mysql": _MYSQL,
    "mariadb": _MYSQL,
}


def get_backend(dialect_name: str) -> Backend:
    try:
        return BACKENDS[dialect_name]
    except KeyError:
        raise DataJointError(f"Unsupported database backend: {dialect_name}") from None


__all__ = ["Backend", "BACKENDS", "get_backend"]
