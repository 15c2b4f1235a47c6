"""`datajoint.heading`: Heading and Attribute."""

from __future__ import annotations

from ..heading import Attribute, Heading

__all__ = ["Attribute", "Heading"]
