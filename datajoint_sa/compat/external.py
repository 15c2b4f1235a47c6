"""`datajoint.external`: a schema's view of the configured external stores."""

from __future__ import annotations

from ..store_gc import External, ExternalStore

#: classic name of one store's table of stored objects
ExternalTable = ExternalStore

__all__ = ["External", "ExternalStore", "ExternalTable"]
