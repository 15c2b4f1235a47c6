"""`datajoint-sa viz app.yaml [--url URL] [--host 127.0.0.1] [--port 8000] [--forms]
[--reload]`.

The spec is read and checked against the database before the server starts; a bad spec
prints its problems (no traceback) and exits with status 2.
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from typing import Any

from ..errors import DataJointError
from .spec import SpecError, load_spec

LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1"}  # as --host values


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="datajoint-sa viz",
        description="Serve a web app for a pipeline's data, described by a YAML spec.")
    p.add_argument("spec", help="the app's YAML spec")
    p.add_argument("--url", help="SQLAlchemy database URL (default: dj.config, i.e. "
                   "$DJ_DATABASE_URL, datajoint.json or sqlite:///datajoint.db)")
    p.add_argument("--host", default="127.0.0.1",
                   help="address to listen on (default: %(default)s, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="default: %(default)s")
    p.add_argument("--forms", action="store_true",
                   help="enable the spec's forms: insert, update, delete (off unless the spec "
                   "says forms: true)")
    p.add_argument("--reload", action="store_true",
                   help="re-read the spec when its file changes (a bad edit keeps the "
                   "previous version serving)")
    p.add_argument("--check", action="store_true",
                   help="check the spec against the database and exit without serving")
    return p


def cli(argv: list[str]) -> int:
    """Run the viz command with `argv` (the arguments after `viz`); returns the exit status."""
    args = parser().parse_args(argv)
    try:
        spec = load_spec(args.spec)
        from ..connection import conn
        from .app import LOOPBACK_HOSTS, create_app

        hosts = list(LOOPBACK_HOSTS) if is_loopback(args.host) else None
        connection = conn(args.url)
        app: Any = create_app(spec, connection=connection, forms=True if args.forms else None,
                              allowed_hosts=hosts)
        if args.reload:
            from .reload import ReloadingApp

            app = ReloadingApp(args.spec, lambda: create_app(
                load_spec(args.spec), connection=connection,
                forms=True if args.forms else None, allowed_hosts=hosts), first=app)
    except SpecError as error:
        print(f"datajoint-sa viz: error: {error}", file=sys.stderr)
        return 2
    except DataJointError as error:
        print(f"datajoint-sa viz: error: {error}", file=sys.stderr)
        return 1
    viz = app.state.viz
    pages = len(spec.pages)
    components = sum(len(p.components) for p in spec.pages)
    print(f"{spec.title}: {pages} page{'s' if pages != 1 else ''}, {components} components, "
          f"database {viz.bound.connection.url.render_as_string(hide_password=True)}; "
          f"forms {'enabled' if viz.forms else 'disabled'}; "
          f"auth {spec.auth.type if spec.auth else 'none'}")
    if args.check:
        print("the spec is valid")
        return 0
    if not is_loopback(args.host) and spec.auth is None:
        print(f"warning: serving on {args.host} without auth: anyone who can reach this "
              "address can read the data; add `auth:` to the spec", file=sys.stderr)
    import uvicorn

    from .middleware import uvicorn_log_config

    try:
        uvicorn.run(app, host=args.host, port=args.port, log_level="info",
                    server_header=False, proxy_headers=False, log_config=uvicorn_log_config())
    finally:
        sessions = getattr(app.state, "sessions", None)
        if sessions is not None:  # the logged-in users' own connections
            sessions.close_all()
    return 0


def main() -> None:
    sys.exit(cli(sys.argv[1:]))


if __name__ == "__main__":
    main()
