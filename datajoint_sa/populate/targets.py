"""What `dj.populate` starts from: tables, schemas or modules, and the table classes of
the nodes of the foreign-key graph.
"""

from __future__ import annotations

import logging
from types import ModuleType
from typing import TYPE_CHECKING, Any

from ..errors import DataJointError

if TYPE_CHECKING:
    from ..connection import Connection
from .make import _is_tripartite
from .mixin import AutoPopulate

logger = logging.getLogger("datajoint_sa")


def _collect_targets(targets: tuple[Any, ...]) -> tuple[list[type], list[str], Connection]:
    from ..schema import Schema
    from ..table import Table

    if not targets:
        raise DataJointError("dj.populate needs tables, schemas or modules to start from")
    classes: list[type] = []
    nodes: list[str] = []
    connection = None

    def add_schema(schema: Schema) -> None:
        nonlocal connection
        if not schema.is_activated:
            return
        connection = connection or schema.connection
        classes.extend(schema._classes.values())
        nodes.extend(f"{schema.database}.{name}" for name in schema.list_tables())

    for target in targets:
        if isinstance(target, Table):
            target = type(target)
        if isinstance(target, type) and issubclass(target, Table):
            if target._sa_table is None or target._schema is None:
                raise DataJointError(f"{target.__name__} is not declared in a schema")
            classes.append(target)
            nodes.append(f"{target._schema.database}.{target.table_name}")
            connection = connection or target._schema.connection
        elif isinstance(target, Schema):
            add_schema(target)
        elif isinstance(target, ModuleType):
            for value in vars(target).values():
                if isinstance(value, Schema):
                    add_schema(value)
                elif (isinstance(value, type) and issubclass(value, Table)
                      and value._sa_table is not None and value._schema is not None):
                    classes.append(value)
                    nodes.append(f"{value._schema.database}.{value.table_name}")
                    connection = connection or value._schema.connection
        else:
            raise DataJointError(f"dj.populate: {target!r} is not a table, schema or module")
    if connection is None:
        raise DataJointError("dj.populate: none of the given schemas is activated")
    return classes, list(dict.fromkeys(nodes)), connection


def _classes_by_node(given: list[type]) -> dict[str, type]:
    """Declared table classes by node name: the given ones first, then every other class
    declared in this process (downstream tables may live in other modules)."""
    from ..table import Table

    found: dict[str, type] = {}

    def add(table_class: Any) -> None:
        schema = table_class._schema
        if table_class._sa_table is None or schema is None or not schema.database:
            return
        if table_class._sa_table.key not in schema.metadata.tables:
            return  # re-declared since: a newer class holds the node
        node = f"{schema.database}.{table_class.table_name}"
        if node not in found or (_makes(table_class) and not _makes(found[node])):
            found[node] = table_class  # e.g. the pipeline's class over a virtual module's

    for table_class in given:
        add(table_class)
    stack: list[type] = list(Table.__subclasses__())
    while stack:
        table_class = stack.pop()
        stack.extend(table_class.__subclasses__())
        add(table_class)
    return found


def _makes(table_class: type) -> bool:
    """Whether a class can compute: its own make, or the three parts."""
    if not issubclass(table_class, AutoPopulate):
        return False
    make = next((vars(k)["make"] for k in table_class.__mro__ if "make" in vars(k)), None)
    return make is not vars(AutoPopulate)["make"] or _is_tripartite(table_class)

