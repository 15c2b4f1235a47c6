"""AutoPopulate: make, key_source, populate and the job table (see issue 6)."""

from __future__ import annotations

from typing import Any

from .errors import DataJointError


class AutoPopulate:
    """Mixin of Imported and Computed tables."""

    def populate(self, *restrictions: Any, **options: Any) -> dict[str, Any]:
        raise DataJointError("populate is not available yet")
