"""`datajoint.schemas`: the classic Schema (with AttributeAdapter types), `dj.schema`,
`create_virtual_module` and `VirtualModule`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ..connection import Connection
from ..reflect import VirtualModule
from ..schema import Schema as CoreSchema
from ..schema import list_schemas
from ..table import Table
from .attribute_adapter import register_adapters
from .jobs import ClassicJobs


class _Answer(int):
    """A yes/no that classic code may also call: `schema.is_activated()`."""

    def __call__(self) -> bool:
        return bool(self)

    def __repr__(self) -> str:
        return repr(bool(self))


class _Code(str):
    """Python source that classic code reads as a property (`schema.code`) and ours calls
    (`schema.code()`)."""

    def __call__(self) -> str:
        return str(self)


class Schema(CoreSchema):
    """The core Schema, which also accepts classic `AttributeAdapter` objects in its context
    or `add_objects` (each becomes the codec `<name>` before definitions are parsed), and
    whose `is_activated` may be called as the classic method. Its tables drop the fractional
    seconds a datetime column does not keep, as classic DataJoint's server did (Elements
    store file times, with microseconds, in `datetime` columns)."""

    drops_excess_fractions = True
    fetch1_null_float_is_nan = True

    @property
    def jobs(self) -> ClassicJobs:  # type: ignore[override]
        """The job table with classic DataJoint's columns (see compat/jobs.py)."""
        return ClassicJobs(super().jobs)

    @property
    def is_activated(self) -> _Answer:  # type: ignore[override]
        return _Answer(bool(self.database))

    @property
    def code(self) -> _Code:
        """The schema as Python source (classic: a property; also callable)."""
        return _Code(super().code())

    def _declare_class(self, cls: type[Table], caller: Mapping[str, Any]) -> None:
        _make_from_make_tuples(cls)
        super()._declare_class(cls, caller)

    def _context(self, cls: type, caller: Mapping[str, Any]) -> dict[str, Any]:
        context = super()._context(cls, caller)
        register_adapters(context)
        return context


def _make_from_make_tuples(cls: type) -> None:
    """Older classic pipelines name `make` `_make_tuples`; classic DataJoint 0.14 still
    called it, in preference to `make`. Such a class gets a `make` that calls it."""
    if "_make_tuples" in vars(cls) and callable(vars(cls)["_make_tuples"]):
        def make(self: Any, key: dict[str, Any]) -> None:
            self._make_tuples(key)

        make.__doc__ = "Calls the classic `_make_tuples(key)`."
        cls.make = make  # type: ignore[attr-defined]


#: classic lowercase alias: `dj.schema("name")`, or `dj.schema()` for a deferred schema
schema = Schema


def create_virtual_module(module_name: str, schema_name: str, create_schema: bool = False,
                          create_tables: bool = False, connection: Connection | None = None,
                          add_objects: Mapping[str, Any] | None = None) -> VirtualModule:
    """A module whose classes are the tables of `schema_name`, read from the database."""
    return VirtualModule(module_name, schema_name, create_schema=create_schema,
                         create_tables=create_tables, connection=connection,
                         add_objects=add_objects)


__all__ = ["Schema", "Table", "VirtualModule", "create_virtual_module", "list_schemas", "schema"]
