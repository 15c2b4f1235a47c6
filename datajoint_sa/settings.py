"""dj.config: one dict-like settings object, read from config files and the environment.

It keeps classic DataJoint's habits: dotted keys, `with dj.config(safemode=False): ...`,
keys of the caller's own (e.g. under `custom`) kept and saved, `dj_local_conf.json`, and the
`database.host/user/password/port` keys, which name a server the way classic DataJoint did
(see `database_url` for how they become a URL).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from .errors import DataJointError

DEFAULT_URL = "sqlite:///datajoint.db"
LOCAL_CONFIG = "datajoint.json"
CLASSIC_LOCAL_CONFIG = "dj_local_conf.json"
CLASSIC_GLOBAL_CONFIG = "~/.datajoint_config.json"
URL_ENV = "DJ_DATABASE_URL"
#: classic keys naming a server, and the environment variables classic DataJoint read them from
SERVER_KEYS = {"database.host": "DJ_HOST", "database.user": "DJ_USER",
               "database.password": "DJ_PASS", "database.port": "DJ_PORT"}
#: classic DataJoint spoke only MySQL: classic server keys mean MySQL unless this says otherwise
BACKEND_DRIVERS = {"mysql": "mysql+pymysql", "postgresql": "postgresql+psycopg"}
#: sections whose nested form ({"database": {"host": ...}}) is read as dotted keys
SECTIONS = ("database", "display", "connection", "insert", "populate")

DEFAULTS: dict[str, Any] = {
    "database.url": None,
    "database.host": None,
    "database.user": None,
    "database.password": None,
    "database.port": None,
    "database.backend": "mysql",
    "safemode": True,
    "display.limit": 12,
    "display.width": 14,
    "loglevel": "INFO",
    "stores": {},
    "custom": {},
    "download_path": ".",
    # what fetch() of whole rows returns when no format is given: "array" or "frame"
    "fetch_format": "array",
    "insert.chunk_size": 10_000,
    # a serial populate runs makes in groups that commit together (see populate/batch.py)
    "populate.batch_size": 50,
    "populate.batch_seconds": 1.0,
    "transfer_workers": 16,  # concurrent store transfers of a column (see transfers.py)
}


def server_url(host: str | None, user: str | None = None, password: str | None = None,
               port: int | str | None = None, backend: str = "mysql") -> sa.URL:
    """The URL of a server named the classic way: `host` may carry the port ("db:3306");
    `backend` picks the driver (MySQL by default, as classic DataJoint)."""
    try:
        driver = BACKEND_DRIVERS[backend]
    except KeyError:
        raise DataJointError(f"dj.config['database.backend'] is {backend!r}; use one of "
                             f"{', '.join(BACKEND_DRIVERS)} (or set dj.config['database.url'])"
                             ) from None
    host = host or "localhost"
    if port is None and ":" in host:
        host, _, port = host.rpartition(":")
    try:
        number = int(port) if port not in (None, "") else None
    except ValueError:
        raise DataJointError(f"Database port {port!r} is not a number") from None
    return sa.URL.create(driver, username=user or None, password=password or None, host=host,
                         port=number)


def hide_password(url: str | sa.URL) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


class Config(MutableMapping[str, Any]):
    """Settings with dotted keys.

    `database.url` is, first match wins: `database.url` set in code; classic server keys
    (`database.host`, ...) set in code; $DJ_DATABASE_URL; $DJ_HOST (with $DJ_USER, $DJ_PASS,
    $DJ_PORT); `database.url` from a config file; classic server keys from a config file;
    SQLite in the working directory.
    """

    def __init__(self) -> None:
        self._values: dict[str, Any] = json.loads(json.dumps(DEFAULTS))
        self._set_in_code: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        if key == "database.url":
            return self._database_url()
        return self._values[key]

    def _database_url(self) -> str:
        in_code = self._set_in_code
        if "database.url" in in_code and self._values.get("database.url"):
            return str(self._values["database.url"])
        if in_code & set(SERVER_KEYS) and self._server_given(self._values):
            return self._server(self._values)
        if os.environ.get(URL_ENV):
            return os.environ[URL_ENV]
        from_env = {key: os.environ.get(env) for key, env in SERVER_KEYS.items()}
        if from_env["database.host"]:
            return self._server({**self._values, **{k: v for k, v in from_env.items() if v}})
        if self._values.get("database.url"):
            return str(self._values["database.url"])
        if self._server_given(self._values):
            return self._server(self._values)
        return DEFAULT_URL

    @staticmethod
    def _server_given(values: dict[str, Any]) -> bool:
        return any(values.get(key) not in (None, "") for key in SERVER_KEYS)

    def _server(self, values: dict[str, Any]) -> str:
        url = server_url(values.get("database.host"), values.get("database.user"),
                         values.get("database.password"), values.get("database.port"),
                         values.get("database.backend") or "mysql")
        return url.render_as_string(hide_password=False)

    def __setitem__(self, key: str, value: Any) -> None:
        self._store(key, value)
        self._set_in_code.add(key)

    def _store(self, key: str, value: Any) -> None:
        if key == "fetch_format" and value not in ("array", "frame"):
            raise DataJointError(f"dj.config['fetch_format'] must be 'array' or 'frame', "
                                 f"not {value!r}")
        if key == "database.port" and value not in (None, "") and not str(value).isdigit():
            raise DataJointError(f"dj.config['database.port'] must be a port number, "
                                 f"not {value!r}")
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

    def __contains__(self, key: object) -> bool:
        return key in self._values

    def __repr__(self) -> str:
        shown = dict(self._values)
        shown["database.url"] = hide_password(self["database.url"])
        if shown.get("database.password"):
            shown["database.password"] = "***"
        return f"Config({shown!r})"

    def load(self, path: str | os.PathLike[str]) -> None:
        """Merge a JSON file into the settings (flat dotted keys, or sections such as
        {"database": {"host": ...}} read as dotted keys); keys we do not use are kept."""
        try:
            data = json.loads(Path(path).expanduser().read_text())
        except (OSError, ValueError) as error:
            raise DataJointError(f"Cannot read config file {path}: {error}") from error
        if not isinstance(data, dict):
            raise DataJointError(f"Config file {path} must hold a JSON object")
        for key, value in data.items():
            if key in SECTIONS and isinstance(value, dict):
                for inner, inner_value in value.items():
                    self._store(f"{key}.{inner}", inner_value)
            else:
                self._store(key, value)

    def save(self, path: str | os.PathLike[str] = LOCAL_CONFIG) -> None:
        Path(path).expanduser().write_text(json.dumps(self._values, indent=2, default=str))

    def save_local(self) -> None:
        """Write the settings to dj_local_conf.json in the working directory (classic name)."""
        self.save(CLASSIC_LOCAL_CONFIG)

    def save_global(self) -> None:
        """Write the settings to ~/.datajoint_config.json (classic name)."""
        self.save(CLASSIC_GLOBAL_CONFIG)

    def override(self, **values: Any) -> _Override:
        """Temporarily change settings: `with dj.config.override(safemode=False): ...`
        (`display__limit=3` stands for `display.limit`); restored on exit, errors included."""
        return _Override(self, {k.replace("__", "."): v for k, v in values.items()})

    __call__ = override  # the classic spelling: `with dj.config(safemode=False): ...`

    def load_default_files(self, directory: str | os.PathLike[str] = ".") -> list[Path]:
        """Read the config files found, later ones winning: the classic file
        (dj_local_conf.json here, else ~/.datajoint_config.json), then datajoint.json."""
        here = Path(directory)
        classic = here / CLASSIC_LOCAL_CONFIG
        if not classic.exists():
            classic = Path(CLASSIC_GLOBAL_CONFIG).expanduser()
        found = [p for p in (classic, here / LOCAL_CONFIG) if p.exists()]
        for path in found:
            self.load(path)
        return found


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
config.load_default_files()
