"""The table tiers: Manual, Lookup, Imported, Computed, Part (names follow DataJoint)."""

from __future__ import annotations

from typing import Any, ClassVar

from .errors import DataJointError
from .naming import from_camel_case
from .populate import AutoPopulate
from .table import Table


class Manual(Table):
    """Data entered by people or by tools outside the pipeline."""

    tier = "manual"
    _prefix = ""


class Lookup(Table):
    """Small reference tables; `contents` is inserted when the table is declared."""

    tier = "lookup"
    _prefix = "#"
    contents: ClassVar[Any] = ()


class Imported(AutoPopulate, Table):
    """Data read from outside the database by `make`, one key at a time."""

    tier = "imported"
    _prefix = "_"


class Computed(AutoPopulate, Table):
    """Data computed by `make` from other tables of the pipeline."""

    tier = "computed"
    _prefix = "__"


class Part(Table):
    """A detail table of a master, declared and filled together with it."""

    tier = "part"
    _prefix = ""
    master: ClassVar[Any] = None


TIERS = (Manual, Lookup, Imported, Computed, Part)


def renamed_from(cls: type) -> list[str]:
    """The table names a class may have had before (its own `renamed_from` attribute): a
    class name stands for its table under any tier (a tier change is a rename of the
    prefix), a table name (`"#subject"`) for itself."""
    value = vars(cls).get("renamed_from")
    if not value:
        return []
    if not isinstance(value, str):
        raise DataJointError(f"{cls.__name__}.renamed_from must be a class or table name")
    if value[:1].isupper():
        base = from_camel_case(value)
        return [tier._prefix + base for tier in (Manual, Lookup, Imported, Computed)]
    return [value]
