"""`datajoint.user_tables`: the table tiers.

`Part` is the core's part tier with classic DataJoint's `delete(force=True)`: classic code
deletes part rows alone that way (our name for it is `force_parts=True`)."""

from __future__ import annotations

from typing import Any

from ..table import Table as UserTable
from ..tiers import Computed, Imported, Lookup, Manual
from ..tiers import Part as CorePart


class Part(CorePart):
    """A part table; `delete(force=True)` deletes its rows without their masters."""

    def delete(self, *args: Any, force: bool = False, **kwargs: Any) -> int:
        if force:
            kwargs["force_parts"] = True
        return super().delete(*args, **kwargs)


TIERS = (Manual, Lookup, Imported, Computed, Part)

__all__ = ["TIERS", "Computed", "Imported", "Lookup", "Manual", "Part", "UserTable"]
