"""The web app: a Starlette application serving the pages of a bound spec and their data.

Pages are HTML shells rendered with Jinja2; each component fetches its data as JSON from
`/api/<page>/<component>` (GET), and an enabled form posts to the same address. Database
work runs in a worker thread under one lock, because a datajoint_sa Connection is one
SQLAlchemy connection. Errors reach the browser as short messages: a `DataJointError`'s
own text (which never holds a password) for a bad request, "internal error" for anything
else; the traceback goes to the server's log only.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import jinja2
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from ..connection import Connection
from ..errors import DataJointError
from ..table import Table
from . import auth, filters, plots, query, views
from . import forms as form_routes
from .bind import BoundApp, BoundComponent, bind
from .middleware import (
    LOOPBACK_HOSTS,
    MAX_BODY,
    BodyLimitMiddleware,
    BodyTooLarge,
    HostCheckMiddleware,
    SecurityHeadersMiddleware,
)
from .spec import AppSpec, AuthSpec, SpecError, load_spec

__all__ = ["LOOPBACK_HOSTS", "create_app", "read_secrets"]

logger = logging.getLogger("datajoint_sa.viz")

HERE = Path(__file__).parent
COUNT_SECONDS = 30.0  # how long a table view's total is reused


def plotly_js_path() -> Path | None:
    """plotly.min.js as shipped inside the `plotly` package (no internet needed)."""
    try:
        import plotly
    except ImportError:
        return None
    path = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return path if path.exists() else None


def plotly_version() -> str:
    import plotly

    return str(plotly.__version__)


# ---- authentication ---------------------------------------------------------------------------
def read_secrets(auth: AuthSpec | None, source: str = "") -> dict[str, str]:
    """The secrets named by the spec, from the environment; missing ones are a SpecError."""
    if auth is None:
        return {}
    if auth.type in ("database", "oidc"):
        from .auth import read_session_secrets

        return read_session_secrets(auth, source)
    names = {"token": auth.env} if auth.type == "token" else \
        {"user": auth.user_env, "password": auth.password_env}
    values = {role: os.environ.get(name, "") for role, name in names.items()}
    missing = [names[role] for role, value in values.items() if not value]
    if missing:
        raise SpecError(f"auth {auth.type}: the environment variable"
                        f"{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
                        f"{'are' if len(missing) > 1 else 'is'} not set", source)
    return values


# ---- the app ----------------------------------------------------------------------------------
class VizApp:
    """The routes of one bound spec (see the module doc)."""

    def __init__(self, bound: BoundApp, *, forms: bool) -> None:
        self.bound = bound
        self.spec = bound.spec
        self.forms = forms
        self.csrf = secrets.token_urlsafe(24)
        self.lock = threading.Lock()
        self.templates = jinja2.Environment(
            loader=jinja2.FileSystemLoader(str(HERE / "templates")),
            autoescape=jinja2.select_autoescape(default=True), trim_blocks=True,
            lstrip_blocks=True)
        self._graph: Any = None
        self._svgs: dict[int, str] = {}
        self.counts = CountCache()

    # -- helpers
    async def _run(self, function: Callable[..., Any], *args: Any) -> Any:
        session = auth.current()
        if session is not None and session.connection is not None:
            return await session.run(function, *args)  # the user's own connection

        def locked() -> Any:
            with self.lock:
                return function(*args)

        return await run_in_threadpool(locked)

    def _component(self, request: Request) -> BoundComponent:
        found = self.bound.component(request.path_params["page"],
                                     request.path_params["component"])
        if found is None:
            raise NotFound("no such component")
        return found

    def _key(self, component: BoundComponent, params: dict[str, str]) -> dict[str, Any]:
        return query.key_from_params(component.heading, params)

    def _restricted(self, component: BoundComponent, params: dict[str, str]) -> Any:
        """The component's query restricted by the page key (or its cell's row, or the
        selected row it is restricted_by) and by the page's filters."""
        assert component.query is not None
        expr = auth.user_bound(component.query) & self._key(component, params)
        return filters.restrict(expr, filters.page_filters(self.bound, component), params)

    # -- pages
    async def index(self, request: Request) -> Response:
        first = next((p for p in self.spec.pages if not p.hidden), self.spec.pages[0])
        return RedirectResponse(f"/p/{first.name}", status_code=303)

    async def page(self, request: Request) -> Response:
        page = self.spec.page(request.path_params["page"])
        if page is None:
            raise NotFound("no such page")
        params = dict(request.query_params)
        page_key = {k: params[k] for k in page.key if k in params}
        missing = [k for k in page.key if k not in params]
        components = await self._run(
            lambda: [self._component_config(page.name, c.name) for c in page.components])
        session = auth.current()
        config = {"page": page.name, "key": page_key,
                  "csrf": auth.csrf_token(request, self.csrf),
                  "user": session.user if session is not None else None,
                  "components": components}
        has_plot = any(c.type == "plot" or any(t.type == "plot" for t in c.children)
                       for c in page.components)
        # plotly.js (4.8 MB) only on a page with a plot, loaded while the rest renders
        config["plotly"] = f"/vendor/plotly.min.js?v={plotly_version()}" \
            if has_plot and plotly_js_path() is not None else None
        html = self.templates.get_template("page.html").render(
            title=self.spec.title, page=page, pages=[p for p in self.spec.pages if not p.hidden],
            key_text=", ".join(f"{k} = {v}" for k, v in page_key.items()),
            missing=missing, components=components,
            plotly=config["plotly"],
            asset=self.asset_url,
            config_json=json.dumps(config).replace("<", "\\u003c"))
        return HTMLResponse(html, status_code=400 if missing else 200)

    def asset_url(self, name: str) -> str:
        """A static file's address with its content hash: cached for a year, and a new
        version of the file is a new address."""
        return f"/static/{name}?v={_asset_hashes().get(name, '0')}"

    def _component_config(self, page: str, name: str) -> dict[str, Any]:
        bound = self.bound.component(page, name)
        assert bound is not None
        spec = bound.spec
        config: dict[str, Any] = {"name": name.rpartition(".")[2], "type": spec.type,
                                  "title": spec.title, "api": f"/api/{page}/{name}",
                                  "restricted_by": spec.restricted_by,
                                  "filters": bound.page_filters,
                                  "style": _cell_style(spec.cell)}
        if spec.type == "table":
            heading = bound.heading
            config.update(columns=[{"name": n, "in_key": heading[n].in_key,
                                    "type": heading[n].type,
                                    "comment": heading[n].comment,
                                    "filter": n in bound.filters,
                                    "hint": _filter_hint(heading[n])} for n in bound.columns],
                          link=spec.get("link"), page_size=spec.get("page_size")
                          or self.spec.page_size,
                          primary_key=heading.primary_key)
            config["title"] = spec.title or spec.get("query")
        elif spec.type == "form":
            config.update(form_routes.component_config(self, bound))
        elif spec.type == "text":
            config["paragraphs"] = [p.strip() for p in str(spec.get("content")).split("\n\n")
                                    if p.strip()]
        elif spec.type == "diagram":
            config["title"] = spec.title or "Schema diagram"
        elif spec.type == "markdown":
            config["html"] = views.markdown_html(str(spec.get("content")))
        elif spec.type == "iframe":
            config.update(url=spec.get("url"), height=spec.get("height") or 400)
        elif spec.type == "filter":
            attribute = bound.attribute
            assert attribute is not None
            config.update(control=spec.get("control"), attribute=attribute.name,
                          depends_on=spec.get("depends_on") or [],
                          default=None if spec.get("default") is None
                          else str(spec.get("default")),
                          hint=_filter_hint(attribute),
                          unit=views.unit_of(attribute.comment),
                          title=spec.title or attribute.name)
        elif spec.type == "grid":
            config.update(per_row=spec.get("per_row") or 3,
                          cells=[self._component_config(page, f"{name}.{child.name}")
                                 for child in spec.children],
                          title=spec.title or spec.get("query"))
        elif spec.type in ("image", "slideshow"):
            config.update(height=spec.get("height"), title=spec.title or spec.get("query"))
        else:
            config["title"] = spec.title or spec.get("query")
        return config

    # -- data
    async def data(self, request: Request) -> Response:
        component = self._component(request)
        params = dict(request.query_params)
        kind = component.spec.type
        if kind == "table":
            return JSONResponse(await self._run(self._table_data, component, params))
        if kind == "detail":
            return JSONResponse(await self._run(self._detail_data, component, params))
        if kind == "plot":
            return JSONResponse(await self._run(self._plot_data, component, params))
        if kind == "diagram":
            svg = await self._run(self._diagram_svg, component)
            return Response(svg, media_type="image/svg+xml")
        handler = self._views.get(kind)
        if handler is not None:
            return JSONResponse(await self._run(handler, component, params))
        raise NotFound("this component has no data")

    @property
    def _views(self) -> dict[str, Callable[[BoundComponent, dict[str, str]], Any]]:
        return {"metadata": self._metadata_data, "grid": self._grid_data,
                "image": self._slides_data, "slideshow": self._slides_data,
                "filter": self._filter_data}

    def _metadata_data(self, component: BoundComponent, params: dict[str, str]) -> Any:
        return views.metadata(self._restricted(component, params), component.columns)

    def _grid_data(self, component: BoundComponent, params: dict[str, str]) -> Any:
        spec = component.spec
        return views.cells(self._restricted(component, params),
                           limit=spec.get("max_cells") or views.MAX_CELLS, sort=spec.get("sort"))

    def _slides_data(self, component: BoundComponent, params: dict[str, str]) -> Any:
        spec = component.spec
        limit = 1 if spec.type == "image" else spec.get("max_rows") or views.MAX_SLIDES
        return views.slides(self._restricted(component, params), limit=limit,
                            sort=spec.get("sort"))

    def _filter_data(self, component: BoundComponent, params: dict[str, str]) -> Any:
        return filters.choices(self.bound, component, params)

    async def image(self, request: Request) -> Response:
        """The `index`-th image of an image or slideshow component (`index` from 1)."""
        component = self._component(request)
        if component.spec.type not in ("image", "slideshow"):
            raise NotFound("this component has no images")
        params = dict(request.query_params)
        index = _int_param(params, "index", 1) - 1
        data, media = await self._run(
            lambda: views.image(self._restricted(component, params),
                                component.spec.get("attribute"), index=index,
                                sort=component.spec.get("sort")))
        return Response(data, media_type=media, headers={"cache-control": "no-cache"})

    def _table_data(self, component: BoundComponent, params: dict[str, str]) -> dict[str, Any]:
        """A page of rows; `count=1` asks for the total instead. The total is asked for
        separately (and kept for COUNT_SECONDS) so that paging a large table costs only the
        page's own rows."""
        expr = self._restricted(component, params)
        column_filters = {k[2:]: v for k, v in params.items() if k.startswith("f.")}
        expr = query.restrict_by_filters(expr, column_filters, component.filters)
        cache_key = (component.page.name, component.spec.name,
                     tuple(sorted((k, v) for k, v in params.items()
                                  if k.startswith(("k.", "f.", filters.PREFIX)) and v)),
                     tuple((f, filters.value_of(b, params)) for f, b in
                           filters.page_filters(self.bound, component).items()))
        if params.get("count") in ("1", "true"):
            total = len(expr)
            self.counts.put(cache_key, total)
            return {"total": total}
        size = _int_param(params, "size", component.spec.get("page_size")
                          or self.spec.page_size)
        page = query.page_of(expr, columns=component.columns, page=_int_param(params, "page", 1),
                             size=size, sort=params.get("sort") or None,
                             descending=params.get("desc") in ("1", "true"),
                             default_sort=component.spec.get("sort"), count=False,
                             total=self.counts.get(cache_key))
        return page.to_json()

    def _detail_data(self, component: BoundComponent, params: dict[str, str]
                     ) -> dict[str, Any]:
        assert component.query is not None
        key = self._key(component, params)
        return query.detail(auth.user_bound(component.query), key, self._relations(component))

    def _relations(self, component: BoundComponent) -> list[query.Relation]:
        table = component.table
        if table is None:
            return []
        want_parts = component.spec.get("parts", True)
        want_children = component.spec.get("children", True)
        parts = {id(p) for p in table().parts}
        if not (want_parts or want_children):
            return []
        graph = self.graph()
        by_node = {t().node_name: t for t in self.bound.tables}
        relations = []
        for edge in sorted(graph.children(table().node_name), key=lambda e: e.child):
            child = by_node.get(edge.child)
            if child is None:
                continue
            kind = "part" if id(child) in parts else "child"
            if (kind == "part" and not want_parts) or (kind == "child" and not want_children):
                continue
            relations.append(query.Relation(class_label(child), kind,
                                            auth.user_bound(child()), edge.attr_map))
        return relations

    def graph(self) -> Any:
        if self._graph is None:
            from ..dependencies import Dependencies

            schemas = sorted({t._schema.database for t in self.bound.tables
                              if t._schema is not None})
            self._graph = Dependencies.load(self.bound.connection, schemas)
        return self._graph

    def _plot_data(self, component: BoundComponent, params: dict[str, str]) -> dict[str, Any]:
        expr = self._restricted(component, params)
        if component.spec.get("kind") == "plotly":
            return views.stored_figure(expr, component.spec.get("figure"))
        return plots.figure(expr, component.spec.options)

    def _diagram_svg(self, component: BoundComponent) -> str:
        from ..diagram import Diagram

        cached = self._svgs.get(id(component))
        if cached is not None:
            return cached
        sources: list[Any] = list(component.tables)
        if not sources:  # the whole pipeline: one diagram per schema, combined
            schemas = {id(t._schema): t._schema for t in self.bound.tables
                       if t._schema is not None}
            sources = list(schemas.values())
        diagram: Diagram | None = None
        for source in sources:
            part = Diagram(source)
            diagram = part if diagram is None else diagram + part
        assert diagram is not None
        svg = diagram.make_svg()  # drawn in Python when Graphviz's dot is missing
        self._svgs[id(component)] = svg
        return svg


def _cell_style(cell: dict[str, int]) -> str:
    """The CSS grid placement of a fixed-grid cell (`cell: {row, column, width, height}`)."""
    parts = []
    if cell.get("column") or cell.get("width"):
        start = str(cell["column"]) if cell.get("column") else "auto"
        parts.append(f"grid-column: {start} / span {cell.get('width', 1)}")
    if cell.get("row") or cell.get("height"):
        start = str(cell["row"]) if cell.get("row") else "auto"
        parts.append(f"grid-row: {start} / span {cell.get('height', 1)}")
    return "; ".join(parts)


@functools.lru_cache(maxsize=1)
def _asset_hashes() -> dict[str, str]:
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest()[:12]
            for path in (HERE / "static").iterdir() if path.is_file()}


IMMUTABLE = "public, max-age=31536000, immutable"


@functools.lru_cache(maxsize=1)
def _gzipped(path: Path) -> bytes:
    """A file's gzip, made once per process (plotly.min.js: compressed once, then served
    from memory to every browser that has not cached it yet)."""
    import gzip

    return gzip.compress(path.read_bytes(), compresslevel=6)


class CachedStaticFiles(StaticFiles):
    """Static files a browser keeps: for a year when asked for by their content hash
    (`?v=`, see VizApp.asset_url), otherwise revalidated by ETag on each use."""

    def file_response(self, *args: Any, **kwargs: Any) -> Response:
        response = super().file_response(*args, **kwargs)
        scope = args[2] if len(args) > 2 else kwargs["scope"]
        versioned = b"v=" in scope.get("query_string", b"")
        response.headers["cache-control"] = IMMUTABLE if versioned else "no-cache"
        return response


def iframe_origins(spec: AppSpec) -> list[str]:
    """The origins the spec's iframes show (the only frames the page may hold)."""
    from urllib.parse import urlsplit

    origins = []
    for page in spec.pages:
        for component in page.components:
            if component.type == "iframe":
                parts = urlsplit(str(component.get("url")))
                origins.append(f"{parts.scheme}://{parts.netloc}")
    return sorted(set(origins))


class CountCache:
    """Totals of recent table views, for COUNT_SECONDS: paging through a view counts once.
    An insert through a form clears it; other writers show up within COUNT_SECONDS."""

    def __init__(self, seconds: float = COUNT_SECONDS, size: int = 256) -> None:
        self.seconds = seconds
        self.size = size
        self._items: dict[Any, tuple[float, int]] = {}

    @staticmethod
    def _own(key: Any) -> Any:
        """Each database login counts for itself (its rights may show it fewer rows)."""
        session = auth.current()
        return (session.user if session is not None and session.connection else None, key)

    def get(self, key: Any) -> int | None:
        found = self._items.get(self._own(key))
        if found is None or time.monotonic() - found[0] > self.seconds:
            return None
        return found[1]

    def put(self, key: Any, total: int) -> None:
        if len(self._items) >= self.size:
            oldest = min(self._items, key=lambda k: self._items[k][0])
            del self._items[oldest]
        self._items[self._own(key)] = (time.monotonic(), total)

    def clear(self) -> None:
        self._items.clear()


def class_label(table: type[Table]) -> str:
    """`Class` or `Master.Part`."""
    master = getattr(table, "master", None)
    return f"{master.__name__}.{table.__name__}" if master is not None else table.__name__


class NotFound(Exception):
    pass


#: the largest page number or size a request may ask for
MAX_PARAMETER = 10**9


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    text = params.get(name)
    if text is None or text == "":
        return default
    try:
        value = int(text) if len(text) <= 12 else MAX_PARAMETER + 1
    except ValueError:
        raise query.RequestError(f"{name} must be a whole number, not {text[:40]!r}") from None
    if value < 1:
        raise query.RequestError(f"{name} must be at least 1")
    if value > MAX_PARAMETER:
        raise query.RequestError(f"{name} must be at most {MAX_PARAMETER}")
    return value


def _filter_hint(attribute: Any) -> str:
    if not attribute.type:
        return "=, >, <, a..b"
    category = attribute.type_info.category
    if category in ("char", "varchar", "text"):
        return "contains… (=exact)"
    if category == "enum":
        return "|".join(attribute.type_info.enum_values)
    if category == "bool":
        return "true / false"
    if category == "date":
        return "YYYY-MM-DD, >, <, a..b"
    if category == "uuid":
        return "uuid"
    return "=, >, <, a..b"


def _errors(handler: Callable[[Request], Awaitable[Response]], *, json_errors: bool
            ) -> Callable[[Request], Awaitable[Response]]:
    """Short messages to the browser; the traceback to the log."""

    async def wrapped(request: Request) -> Response:
        status, message = 500, "internal error (the server's log has the details)"
        try:
            return await handler(request)
        except BodyTooLarge:
            raise  # answered by BodyLimitMiddleware
        except NotFound as error:
            status, message = 404, str(error)
        except (query.RequestError, DataJointError) as error:
            status, message = 400, str(error)
        except Exception:
            logger.exception("error serving %s", request.url.path)
        if json_errors:
            return JSONResponse({"error": message}, status_code=status)
        return PlainTextResponse(message, status_code=status)

    return wrapped


def create_app(spec: AppSpec | str | Path | dict[str, Any], *, url: str | None = None,
               connection: Connection | None = None, forms: bool | None = None,
               allowed_hosts: list[str] | None = None, max_body: int = MAX_BODY
               ) -> Starlette:
    """The ASGI app of a spec, bound to the database: every problem of the spec (unknown
    tables or attributes, bad component types, unset auth secrets) is a SpecError here,
    before any server starts. `forms=True` enables insert forms whatever the spec says;
    `allowed_hosts` limits the Host names answered (the command line passes the loopback
    names when it serves on 127.0.0.1); a request body over `max_body` bytes is refused."""
    if not isinstance(spec, AppSpec):
        spec = load_spec(spec)
    secrets_ = read_secrets(spec.auth, spec.source)
    if connection is None:
        from ..connection import conn

        connection = conn(url)
    bound = bind(spec, connection)
    viz = VizApp(bound, forms=spec.forms if forms is None else forms)
    static = CachedStaticFiles(directory=str(HERE / "static"))
    plotly_path = plotly_js_path()

    async def plotly_js(request: Request) -> Response:
        if plotly_path is None:
            return PlainTextResponse("plotly is not installed", status_code=404)
        etag = f'"plotly-{plotly_version()}-{plotly_path.stat().st_size}"'
        headers = {"cache-control": IMMUTABLE, "etag": etag}
        if request.headers.get("if-none-match") == etag:
            return Response(status_code=304, headers=headers)
        headers["vary"] = "accept-encoding"
        if "gzip" in request.headers.get("accept-encoding", ""):  # 4.8 MB -> about 1.4 MB
            body = await run_in_threadpool(_gzipped, plotly_path)
            return Response(body, media_type="text/javascript",
                            headers={**headers, "content-encoding": "gzip"})
        return FileResponse(plotly_path, media_type="text/javascript", headers=headers)

    routes = [
        Route("/", _errors(viz.index, json_errors=False)),
        Route("/p/{page}", _errors(viz.page, json_errors=False)),
        Route("/api/{page}/{component}", _errors(viz.data, json_errors=True), methods=["GET"]),
        Route("/api/{page}/{component}/image", _errors(viz.image, json_errors=True),
              methods=["GET"]),
        *form_routes.Forms(viz).routes(
            lambda h: _errors(form_routes.guarded(h), json_errors=True)),
        Route("/vendor/plotly.min.js", plotly_js),
        Route("/favicon.ico", lambda request: Response(status_code=204)),
        Mount("/static", app=static, name="static"),
    ]
    app = Starlette(routes=routes)
    app.state.viz = viz
    app.add_middleware(BodyLimitMiddleware, limit=max_body)
    app.add_middleware(SecurityHeadersMiddleware, frame_sources=iframe_origins(spec))
    if spec.auth is not None:
        auth.install(app, spec.auth, secrets_, spec.title, connection)
    if allowed_hosts is not None:
        app.add_middleware(HostCheckMiddleware, hosts=allowed_hosts)
    return app

