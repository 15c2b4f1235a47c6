"""`datajoint.fetch`: the `key` marker of fetch (`fetch(dj.key)` is `fetch("KEY")`)."""

from __future__ import annotations

key = "KEY"

__all__ = ["key"]
