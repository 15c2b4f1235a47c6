"""dj.config: one dict-like settings object, read from datajoint.json and the environment."""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

from .errors import DataJointError

DEFAULT_URL = "sqlite:///datajoint.db"
LOCAL_CONFIG = "datajoint.json"
URL_ENV = "DJ_DATABASE_URL"

DEFAULTS: dict[str, Any] = {
    "database.url": None,
    "safemode": True,
    "display.limit": 12,
    "display.width": 14,
    "loglevel": "INFO",
    "stores": {},
    "download_path": ".",
    "insert.chunk_size": 10_000,
}


class Config(MutableMapping[str, Any]):
    """Settings with dotted keys; `database.url` falls back to $DJ_DATABASE_URL, then SQLite."""

    def __init__(self) -> None:
        self._values: dict[str, Any] = json.loads(json.dumps(DEFAULTS))

    def __getitem__(self, key: str) -> Any:
        if key == "database.url":
            return os.environ.get(URL_ENV) or self._values.get(key) or DEFAULT_URL
        return self._values[key]

    def __setitem__(self, key: str, value: Any) -> None:
        if key == "loglevel":
            logging.getLogger("datajoint_sa").setLevel(value)
        self._values[key] = value

    def __delitem__(self, key: str) -> None:
        del self._values[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        from .connection import hide_password

        shown = dict(self._values)
        shown["database.url"] = hide_password(self["database.url"])
        return f"Config({shown!r})"

    def load(self, path: str | os.PathLike[str]) -> None:
        """Merge a JSON file into the settings."""
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as error:
            raise DataJointError(f"Cannot read config file {path}: {error}") from error
        if not isinstance(data, dict):
            raise DataJointError(f"Config file {path} must hold a JSON object")
        for key, value in data.items():
            self[key] = value

    def save(self, path: str | os.PathLike[str] = LOCAL_CONFIG) -> None:
        Path(path).write_text(json.dumps(self._values, indent=2, default=str))

    def override(self, **values: Any) -> _Override:
        """Temporarily change settings: `with dj.config.override(safemode=False): ...`."""
        return _Override(self, {k.replace("__", "."): v for k, v in values.items()})


class _Override:
    def __init__(self, config: Config, values: dict[str, Any]) -> None:
        self.config, self.values = config, values
        self.saved: dict[str, Any] = {}

    def __enter__(self) -> Config:
        missing = object()
        self.saved = {k: self.config._values.get(k, missing) for k in self.values}
        self.config._values.update(self.values)
        return self.config

    def __exit__(self, *exc: object) -> None:
        for key, value in self.saved.items():
            if isinstance(value, object) and value.__class__ is object:
                self.config._values.pop(key, None)
            else:
                self.config._values[key] = value


config = Config()
if Path(LOCAL_CONFIG).exists():
    config.load(LOCAL_CONFIG)
