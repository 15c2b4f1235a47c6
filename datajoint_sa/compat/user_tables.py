"""`datajoint.user_tables`: the table tiers."""

from __future__ import annotations

from ..table import Table as UserTable
from ..tiers import TIERS, Computed, Imported, Lookup, Manual, Part

__all__ = ["TIERS", "Computed", "Imported", "Lookup", "Manual", "Part", "UserTable"]
