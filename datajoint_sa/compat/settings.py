"""`datajoint.settings`: the configuration object."""

from __future__ import annotations

from ..settings import Config, config

__all__ = ["Config", "config"]
