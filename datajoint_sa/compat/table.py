"""`datajoint.table`: Table, and `FreeTable(conn, "db.table")` -- a table named by its full
name, its class rebuilt from the database (reflect.py)."""

from __future__ import annotations

import re
from typing import Any

from ..connection import Connection
from ..errors import DataJointError, MissingTableError
from ..reflect import Spawner
from ..table import Table

_FULL_NAME = re.compile(r"""^\s*[`"]?([^`".]+)[`"]?\s*\.\s*[`"]?([^`"]+)[`"]?\s*$""")


def FreeTable(conn: Connection, full_table_name: str) -> Any:  # noqa: N802 (classic name)
    """The table `schema.table` (quoted or not) as a query expression and writable table."""
    match = _FULL_NAME.match(full_table_name)
    if not match:
        raise DataJointError(f"FreeTable: {full_table_name!r} is not a full table name "
                             "such as `schema`.`table`")
    node = f"{match.group(1)}.{match.group(2)}"
    cls = Spawner(conn).ensure(node)
    if cls is None:
        raise MissingTableError(f"FreeTable: table {node} does not exist (or its layout is "
                                "not one datajoint_sa can read)")
    return cls()


__all__ = ["FreeTable", "Table"]
