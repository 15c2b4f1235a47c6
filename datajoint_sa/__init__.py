"""datajoint_sa: DataJoint-style scientific data pipelines on SQLAlchemy Core.

`import datajoint_sa as dj` gives the classic DataJoint API on SQLite, PostgreSQL and MySQL.
"""

from __future__ import annotations

from . import errors
from .codecs import Codec
from .connection import Connection, conn
from .diagram import Diagram
from .errors import DataJointError
from .expression import AndList, Not, QueryExpression, Top, U
from .heading import Attribute, Heading
from .populate import populate_pipeline as populate
from .reflect import VirtualModule
from .schema import Schema, list_schemas
from .settings import config
from .table import Table
from .tiers import Computed, Imported, Lookup, Manual, Part

__version__ = "0.1.0"


def install_as_datajoint() -> object:
    """Make `import datajoint` resolve to datajoint_sa's classic-API compatibility room
    (datajoint_sa/compat), so pipelines written for classic DataJoint run unchanged."""
    from .compat import install_as_datajoint as install

    return install()


__all__ = [
    "AndList",
    "Attribute",
    "Codec",
    "Computed",
    "Connection",
    "DataJointError",
    "Diagram",
    "Heading",
    "Imported",
    "Lookup",
    "Manual",
    "Not",
    "Part",
    "QueryExpression",
    "Schema",
    "Table",
    "Top",
    "U",
    "VirtualModule",
    "config",
    "conn",
    "errors",
    "install_as_datajoint",
    "list_schemas",
    "populate",
]
