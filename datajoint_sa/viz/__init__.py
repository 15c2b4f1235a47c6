"""Low-code web apps for a pipeline's data, described by a short YAML spec.

    datajoint-sa viz app.yaml [--url URL] [--host 127.0.0.1] [--port 8000] [--forms]

or from Python: `create_app(spec)` gives the ASGI app (Starlette), `cli(argv)` runs the
command. Pages hold components bound to query expressions of a pipeline module: tables
(paged, sorted and filtered in the database), the detail of one entity with its parts and
children, plots (line, scatter, histogram, image/heatmap) of numeric columns and blob arrays,
the schema's diagram, and forms for Manual tables (insert, update, delete with the cascade
shown first; off unless enabled). Login: a shared token or basic auth, each user's own
database account, or OpenID Connect (docs/apps-forms-auth.md). Needs the `viz` extra:
`pip install "datajoint-sa[viz]"`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .command import cli
from .spec import AppSpec, SpecError, load_spec

if TYPE_CHECKING:
    from starlette.applications import Starlette

__all__ = ["AppSpec", "SpecError", "check", "cli", "create_app", "load_spec"]


def create_app(spec: Any, **options: Any) -> Starlette:
    """The ASGI app of a spec (a path, YAML text, a dict or an AppSpec); see `app.create_app`."""
    from .app import create_app as create

    return create(spec, **options)


def check(spec: Any, *, url: str | None = None, connection: Any = None) -> AppSpec:
    """Load a spec and bind it to the database; raises SpecError listing every problem."""
    from ..connection import conn
    from .bind import bind

    loaded = spec if isinstance(spec, AppSpec) else load_spec(spec)
    bind(loaded, connection or conn(url))
    return loaded
