"""Who is asking: the app's auth modes, and the logged-in user's own database connection.

`basic` and `token` (one shared secret) are `middleware.AuthMiddleware`. The two session
modes live here:

- `database`: each user logs in with their own database account; the app opens a
  Connection of their own (one per session, with one worker thread, so exactly one database
  connection), runs every data request and every form write of theirs on it, so the
  database's own privileges apply, and closes it on logout or after `idle_minutes`. SQLite
  has no users: the mode is refused there.
- `oidc`: OpenID Connect's code flow through `authlib` (see `viz/oidc.py`); the data is read
  with the app's own connection.

The session cookie is signed with itsdangerous (Starlette's SessionMiddleware) and holds only
a random session id, the user's name and the session's form token; passwords stay in server
memory inside the user's Connection. The cookie is http-only, SameSite=Lax (the OIDC
provider's redirect back is a cross-site navigation) and, with `secure: true`, sent only over
https.
"""

from __future__ import annotations

import asyncio
import contextvars
import hmac
import html
import logging
import secrets
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlencode

from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from ..connection import Connection
from ..errors import DataJointError
from .middleware import AuthMiddleware, local_target
from .spec import AuthSpec, SpecError

if TYPE_CHECKING:
    from starlette.applications import Starlette

logger = logging.getLogger("datajoint_sa.viz")

SESSION_COOKIE = "dj_viz_session"
#: paths answered without a login (the login itself, its callback, static assets)
PUBLIC = ("/login", "/logout", "/auth/callback", "/static/", "/favicon.ico")
SESSION_MODES = ("database", "oidc")

#: the session of the request being served (set by SessionAuthMiddleware)
CURRENT: contextvars.ContextVar[UserSession | None] = contextvars.ContextVar(
    "dj_viz_user_session", default=None)


# ---- the user's session ------------------------------------------------------------------------
@dataclass
class UserSession:
    """One logged-in user: their name, their form token and (database mode) their own
    Connection, used from one worker thread only."""

    user: str
    connection: Connection | None = None
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    last_used: float = field(default_factory=time.monotonic)
    _worker: ThreadPoolExecutor | None = None

    def __post_init__(self) -> None:
        if self.connection is not None:
            self._worker = ThreadPoolExecutor(max_workers=1,
                                              thread_name_prefix="dj-viz-session")

    async def run(self, function: Callable[..., Any], *args: Any) -> Any:
        """`function(*args)` on this session's worker thread (its connection's thread)."""
        assert self._worker is not None
        context = contextvars.copy_context()
        future = self._worker.submit(context.run, function, *args)
        return await asyncio.wrap_future(future)

    def close(self) -> None:
        """Close the user's connection (on its own thread, where it was opened)."""
        if self._worker is None or self.connection is None:
            return
        connection, worker = self.connection, self._worker
        self.connection, self._worker = None, None
        worker.submit(connection.close)
        worker.shutdown(wait=True)


class SessionStore:
    """The sessions of this process, by random id; idle ones are closed and forgotten, at
    the next request or by a sweeper thread that runs while any session is open (so an idle
    user's connection closes even when nobody visits)."""

    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self._sessions: dict[str, UserSession] = {}
        self._lock = threading.Lock()
        self._sweeper: threading.Thread | None = None
        self._wake = threading.Event()  # a new session: look at idle_seconds again

    def new(self, session: UserSession) -> str:
        sid = secrets.token_urlsafe(32)
        with self._lock:
            self._sessions[sid] = session
            if self._sweeper is None or not self._sweeper.is_alive():
                self._sweeper = threading.Thread(target=self._sweep_while_open, daemon=True,
                                                 name="dj-viz-session-sweeper")
                self._sweeper.start()
            else:
                self._wake.set()
        return sid

    def _sweep_while_open(self) -> None:
        while True:
            self._wake.wait(max(0.05, min(60.0, self.idle_seconds / 2)))
            self._wake.clear()
            self.sweep()
            with self._lock:
                if not self._sessions:
                    self._sweeper = None
                    return

    def get(self, sid: str | None) -> UserSession | None:
        self.sweep()
        if not sid:
            return None
        with self._lock:
            found = self._sessions.get(sid)
        if found is not None:
            found.last_used = time.monotonic()
        return found

    def end(self, sid: str | None) -> None:
        with self._lock:
            found = self._sessions.pop(sid or "", None)
        if found is not None:
            found.close()

    def sweep(self) -> None:
        now = time.monotonic()
        with self._lock:
            idle = [sid for sid, s in self._sessions.items()
                    if now - s.last_used > self.idle_seconds]
            expired = [self._sessions.pop(sid) for sid in idle]
        for session in expired:
            session.close()

    def close_all(self) -> None:
        with self._lock:
            sessions, self._sessions = list(self._sessions.values()), {}
        for session in sessions:
            session.close()

    def __len__(self) -> int:
        return len(self._sessions)


def current() -> UserSession | None:
    """The logged-in session of the request being served, if any."""
    return CURRENT.get()


def user_bound(expr: Any) -> Any:
    """`expr` on the logged-in user's own connection (database mode), else `expr` itself.
    Only the outermost expression's connection runs the query, so a shallow copy suffices."""
    session = CURRENT.get()
    connection = session.connection if session is not None else None
    if expr is None or connection is None or getattr(expr, "_connection", None) is connection:
        return expr
    copy = object.__new__(type(expr))
    copy.__dict__.update(expr.__dict__)
    copy._connection = connection
    return copy


def csrf_token(request: Request, default: str) -> str:
    """The form token of this request's session, or the app's own when there are none."""
    session = CURRENT.get()
    return session.csrf if session is not None else default


def same_origin(request: Request) -> bool:
    """Whether a state-changing request comes from this site's own pages: a browser says
    where a request comes from (Origin, Sec-Fetch-Site); a request naming another site is
    refused. Clients that are not browsers send neither and are judged by the token alone."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    host = request.headers.get("host", "")
    return origin.partition("://")[2].rstrip("/").lower() == host.lower()


def check_post(request: Request, token: str, given: str) -> str | None:
    """Why a POST is refused (another site, or a missing/stale form token), or None."""
    if not same_origin(request):
        return "cross-site request refused"
    if not given or not hmac.compare_digest(given.encode(), token.encode()):
        return "missing or stale form token: reload the page"
    return None


# ---- the middleware ----------------------------------------------------------------------------
class SessionAuthMiddleware:
    """Lets through requests of a live session (and the public paths); sends a page request
    without one to the login page, and answers an API request with 401."""

    def __init__(self, app: ASGIApp, store: SessionStore) -> None:
        self.app = app
        self.store = store

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        session = self.store.get(scope.get("session", {}).get("sid"))
        if session is None and not path.startswith(PUBLIC):
            response: Response
            if path.startswith("/api/"):
                response = JSONResponse({"error": "log in first"}, status_code=401)
            else:
                query = scope.get("query_string", b"").decode("latin-1")
                target = local_target(path, query)
                response = RedirectResponse("/login?" + urlencode({"next": target}),
                                            status_code=303)
            await response(scope, receive, send)
            return
        token = CURRENT.set(session)
        try:
            await self.app(scope, receive, send)
        finally:
            CURRENT.reset(token)


# ---- pages -------------------------------------------------------------------------------------
def login_page(title: str, body: str, *, status: int = 200) -> HTMLResponse:
    """A small page of its own (no script: the CSP allows none inline)."""
    return HTMLResponse(
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>Log in · {html.escape(title)}</title>"
        "<link rel=stylesheet href=/static/app.css></head><body class=dj-login>"
        f"<main><h1>{html.escape(title)}</h1>{body}</main></body></html>", status_code=status)


async def form_fields(request: Request) -> dict[str, str]:
    """An urlencoded form body (within the app's body limit)."""
    body = (await request.body()).decode("utf-8", "replace")
    return dict(parse_qsl(body, keep_blank_values=True))


class DatabaseLogin:
    """Log in with one's own database account (see the module doc)."""

    def __init__(self, title: str, base: Connection, store: SessionStore) -> None:
        if not base.backend_impl.has_users:
            raise SpecError("auth database: SQLite has no users or privileges; use "
                            "PostgreSQL or MySQL/MariaDB, or auth token/basic/oidc")
        self.title = title
        self.url = base.url
        self.store = store
        self.form_token = secrets.token_urlsafe(24)  # login form: same-site + this token

    def _form(self, next_: str, message: str = "") -> str:
        error = f'<p class=dj-error role=alert>{html.escape(message)}</p>' if message else ""
        return (f"{error}<form method=post action=/login class=dj-login-form>"
                f'<input type=hidden name=csrf value="{self.form_token}">'
                f'<input type=hidden name=next value="{html.escape(next_)}">'
                "<p>Log in with your database account "
                f"({html.escape(self.url.render_as_string(hide_password=True).split('@')[-1])})"
                ".</p><label>User <input name=user autocomplete=username required></label>"
                "<label>Password <input name=password type=password "
                "autocomplete=current-password></label>"
                "<button type=submit>Log in</button></form>")

    async def login(self, request: Request) -> Response:
        next_ = local_target(request.query_params.get("next", "/"))
        if request.method == "GET":
            return login_page(self.title, self._form(next_))
        fields = await form_fields(request)
        next_ = local_target(fields.get("next", "/"))
        refused = check_post(request, self.form_token, fields.get("csrf", ""))
        if refused:
            return login_page(self.title, self._form(next_, refused), status=403)
        user = fields.get("user", "").strip()
        if not user:
            return login_page(self.title, self._form(next_, "give a user name"), status=400)
        session = await asyncio.get_running_loop().run_in_executor(
            None, self._open, user, fields.get("password", ""))
        if session is None:
            return login_page(self.title, self._form(
                next_, "login failed: the database refused this user name and password"),
                status=401)
        request.session.clear()
        request.session.update(sid=self.store.new(session), user=user)
        return RedirectResponse(next_, status_code=303)

    def _open(self, user: str, password: str) -> UserSession | None:
        connection = Connection(self.url.set(username=user, password=password or None))
        session = UserSession(user=user, connection=connection)
        try:
            assert session._worker is not None
            session._worker.submit(lambda: connection.sa).result()  # connect on its thread
        except Exception as error:  # refused, or the server is unreachable: say no more
            if not isinstance(error, DataJointError):
                logger.warning("database login of %r failed: %s", user, type(error).__name__)
            session.close()
            return None
        return session


async def logout(request: Request) -> Response:
    store: SessionStore = request.app.state.sessions
    session = store.get(request.session.get("sid"))
    if request.method == "POST" and session is not None:
        fields = await form_fields(request)
        if check_post(request, session.csrf, fields.get("csrf", "")):
            return JSONResponse({"error": "cross-site or stale log-out refused"},
                                status_code=403)
    elif session is not None:
        return login_page("Log out", "<form method=post action=/logout>"
                          f'<input type=hidden name=csrf value="{session.csrf}">'
                          "<button type=submit>Log out</button></form>")
    store.end(request.session.get("sid"))
    request.session.clear()
    # a page of its own, not the login: an OIDC provider would log the user straight back in
    return login_page("Logged out", "<p class=dj-logged-out>You are logged out.</p>"
                      "<p><a href=/login>Log in again</a></p>")


# ---- installing --------------------------------------------------------------------------------
def read_session_secrets(auth: AuthSpec, source: str = "") -> dict[str, str]:
    """The secrets of a session mode, from the environment; a missing required one is a
    SpecError. Without `secret_env` the cookie key is random (sessions end on restart)."""
    import os

    values: dict[str, str] = {}
    if auth.secret_env:
        values["secret"] = os.environ.get(auth.secret_env, "")
        if not values["secret"]:
            raise SpecError(f"auth {auth.type}: the environment variable {auth.secret_env} "
                            "is not set", source)
    if auth.type == "oidc":
        values["client_secret"] = os.environ.get(auth.client_secret_env, "")
        if not values["client_secret"]:
            raise SpecError(f"auth oidc: the environment variable {auth.client_secret_env} "
                            "is not set", source)
    return values


def install(app: Starlette, auth: AuthSpec, secrets_: dict[str, str], title: str,
            connection: Connection) -> None:
    """Add the auth mode's middleware (and, for the session modes, its routes) to `app`."""
    if auth.type not in SESSION_MODES:
        app.add_middleware(AuthMiddleware, auth=auth, secrets_=secrets_)
        return
    store = SessionStore(idle_seconds=auth.idle_minutes * 60)
    app.state.sessions = store
    login: Any
    if auth.type == "database":
        handler = DatabaseLogin(title, connection, store)
        login = handler.login
        routes = [Route("/login", login, methods=["GET", "POST"])]
    else:
        from .oidc import OidcLogin

        oidc = OidcLogin(auth, secrets_["client_secret"], title, store)
        routes = [Route("/login", oidc.login, methods=["GET"]),
                  Route("/auth/callback", oidc.callback, methods=["GET"])]
    routes.append(Route("/logout", logout, methods=["GET", "POST"]))
    app.router.routes[:0] = routes
    app.add_middleware(SessionAuthMiddleware, store=store)
    app.add_middleware(SessionMiddleware, secret_key=secrets_.get("secret")
                       or secrets.token_urlsafe(32), session_cookie=SESSION_COOKIE,
                       max_age=auth.idle_minutes * 60, same_site="lax",
                       https_only=auth.secure)
