"""`datajoint.settings`: the configuration object."""

from __future__ import annotations

from ..settings import CLASSIC_GLOBAL_CONFIG, CLASSIC_LOCAL_CONFIG, Config, config

#: classic names of the config files (the global one relative to the home folder)
LOCALCONFIG = CLASSIC_LOCAL_CONFIG
GLOBALCONFIG = CLASSIC_GLOBAL_CONFIG.removeprefix("~/")

__all__ = ["GLOBALCONFIG", "LOCALCONFIG", "Config", "config"]
