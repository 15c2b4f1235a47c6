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
    """Settings with dotted keys.

    `database.url` is, in order: a value set in code (`dj.config[...] = ...`), then
    $DJ_DATABASE_URL, then a config file's value, then SQLite in the working directory.
    """

    def __init__(self) -> None:
        self._values: dict[str, Any] = json.loads(json.dumps(DEFAULTS))
        self._set_in_code: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        if key == "database.url":
            explicit = self._values.get(key) if key in self._set_in_code else None
            return explicit or os.environ.get(URL_ENV) or self._values.get(key) or DEFAULT_URL
        return self._values[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self._store(key, value)
        self._set_in_code.add(key)

    def _store(self, key: str, value: Any) -> None:
        if key == "loglevel":
            logging.getLogger("datajoint_sa").setLevel(value)
        self._values[key] = value

    def __delitem__(self, key: str) -> None:
        del self._values[key]
        self._set_in_code.discard(key)

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
            self._store(key, value)

    def save(self, path: str | os.PathLike[str] = LOCAL_CONFIG) -> None:
        Path(path).write_text(json.dumps(self._values, indent=2, default=str))

    def override(self, **values: Any) -> _Override:
        """Temporarily change settings: `with dj.config.override(safemode=False): ...`."""
        return _Override(self, {k.replace("__", "."): v for k, v in values.items()})


class _Override:
    """Restores the overridden settings (and whether they were set in code) on exit."""

    def __init__(self, config: Config, values: dict[str, Any]) -> None:
        self.config, self.values = config, values
        self.saved: dict[str, Any] = {}
        self.saved_in_code: set[str] = set()

    def __enter__(self) -> Config:
        self.saved = {k: self.config._values[k] for k in self.values if k in self.config._values}
        self.saved_in_code = set(self.config._set_in_code)
        for key, value in self.values.items():
            self.config[key] = value
        return self.config

    def __exit__(self, *exc: object) -> None:
        for key in self.values:
            if key in self.saved:
                self.config._store(key, self.saved[key])
            else:
                self.config._values.pop(key, None)
        self.config._set_in_code = self.saved_in_code


config = Config()
if Path(LOCAL_CONFIG).exists():
    config.load(LOCAL_CONFIG)
