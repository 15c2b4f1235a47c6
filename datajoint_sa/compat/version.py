"""`datajoint.version`: the classic release whose API the compatibility room follows."""

from __future__ import annotations

__version__ = "0.14.3"

__all__ = ["__version__"]
