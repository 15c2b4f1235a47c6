"""The classic top-level namespace (`import datajoint as dj` after install_as_datajoint()).

Everything of `datajoint_sa` plus the classic spellings: `dj.schema`, `create_virtual_module`,
`FreeTable`, `key`, `key_hash`, `AttributeAdapter`, `Di`/`ERD`, `MatCell`/`MatStruct`.
"""

from __future__ import annotations

import logging

from .. import (
                AndList,
                Attribute,
                Codec,
                Computed,
                DataJointError,
                Heading,
                Imported,
                Lookup,
                Manual,
                Not,
                QueryExpression,
                Table,
                Top,
                U,
                VirtualModule,
                config,
                conn,
                list_schemas,
                populate,
)
from ..blob import MatCell, MatStruct
from .attribute_adapter import AttributeAdapter
from .connection import Connection
from .diagram import Diagram
from .hash import key_hash
from .schemas import Schema, create_virtual_module, schema
from .table import FreeTable
from .user_tables import Part

__version__ = "0.14.3"  # the classic release whose API this namespace follows
__author__ = "datajoint_sa (classic DataJoint API compatibility)"

#: `Table.fetch(dj.key)` is `fetch("KEY")`: the primary key of each row, as dicts
key = "KEY"
Di = ERD = Diagram
logger = logging.getLogger("datajoint")

__all__ = [
    "AndList", "Attribute", "AttributeAdapter", "Codec", "Computed", "Connection",
    "DataJointError", "Di", "Diagram", "ERD", "FreeTable", "Heading", "Imported", "Lookup",
    "Manual", "MatCell", "MatStruct", "Not", "Part", "QueryExpression", "Schema", "Table",
    "Top", "U", "VirtualModule", "config", "conn", "create_virtual_module", "key", "key_hash",
    "list_schemas", "logger", "populate", "schema",
]
