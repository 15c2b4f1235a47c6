"""`datajoint.connection`: Connection and conn().

Classic code opens a second session with `dj.Connection(host, user, password)` (a host
name with an optional ":port", as `dj.conn` takes) and passes it on as `connection=`. The
core's Connection takes one URL; this class adds the classic constructor and is otherwise
the core class, so every core connection (`dj.conn()` returns one) is also an instance of
it for `isinstance` checks.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from ..connection import Connection as CoreConnection
from ..connection import _wanted_url, conn
from ..errors import DataJointError
from ..settings import config


class _CoreIsClassic(type):
    """`isinstance(dj.conn(), dj.Connection)` holds for the core's connections too."""

    def __instancecheck__(cls, instance: Any) -> bool:
        return isinstance(instance, CoreConnection)


class Connection(CoreConnection, metaclass=_CoreIsClassic):
    """A connection opened the classic way: `Connection(host, user, password, port=None)`.

    `host` may also be a database URL (then no user or password); `user`, `password` and the
    port default to dj.config's classic keys, the driver to `database.backend` (MySQL).
    `use_tls` and `init_fun` (SQL run when the session opens) are not supported: TLS options
    belong in the URL."""

    def __init__(self, host: str | sa.URL | None = None, user: str | None = None,
                 password: str | None = None, port: int | str | None = None,
                 init_fun: str | None = None, use_tls: bool | dict[str, Any] | None = None,
                 **engine_options: Any) -> None:
        if init_fun:
            raise DataJointError("dj.Connection(init_fun=...) is not supported: run the SQL "
                                 "on the connection after it opens (connection.query)")
        if use_tls:
            raise DataJointError("dj.Connection(use_tls=...) is not supported: give the "
                                 "driver's TLS options in dj.config['database.url'] (e.g. "
                                 "?ssl_ca=... for PyMySQL, ?sslmode=require for psycopg)")
        url = _wanted_url(host, user, password)  # the URL dj.conn(host, user, password) opens
        if port is not None:
            if url is None:
                url = _wanted_url(config["database.host"], None, None)
            assert url is not None
            if not str(port).isdigit():
                raise DataJointError(f"dj.Connection: port {port!r} is not a number")
            url = url.set(port=int(port))
        super().__init__(url, **engine_options)


__all__ = ["Connection", "conn"]
