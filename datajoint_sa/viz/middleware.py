"""The web app's ASGI middlewares, each with one job: who may ask (auth, Host), how much
they may send (body limit), what every answer carries (security headers), and a log filter
that keeps secrets out of the server's access log.

They wrap the Starlette app in `app.create_app`; docs/security.md describes the trust model.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .spec import AuthSpec

SECURITY_HEADERS = {
    "content-security-policy": ("default-src 'self'; img-src 'self' data: blob:; "
                                "style-src 'self' 'unsafe-inline'; object-src 'none'; "
                                "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"),
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "same-origin",
}
TOKEN_COOKIE = "dj_viz_token"
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "::1")
#: the largest request body accepted (bytes): a form row is a few hundred
MAX_BODY = 64 * 1024
#: query parameters whose values never reach a log
SECRET_PARAMETERS = ("token",)


# ---- authentication ---------------------------------------------------------------------------
def local_target(path: str, query: str = "") -> str:
    """A redirect target that stays on this site: one leading slash, never `//host` or
    `/\\host` (which browsers read as another site), no scheme."""
    path = "/" + path.lstrip("/\\")
    if not re.fullmatch(r"/[^\\\s]*", path):
        path = "/"
    return path + (f"?{query}" if query else "")


class AuthMiddleware:
    """HTTP basic auth, or a token (Authorization: Bearer, a cookie, or `?token=` once,
    traded for an http-only cookie by a redirect to the same page on this site)."""

    def __init__(self, app: ASGIApp, auth: AuthSpec, secrets_: dict[str, str]) -> None:
        self.app = app
        self.kind = auth.type
        self.secrets = secrets_

    def _same(self, given: str, expected: str) -> bool:
        return hmac.compare_digest(given.encode(), expected.encode())

    def _authorized(self, request: Request) -> bool:
        header = request.headers.get("authorization", "")
        if self.kind == "basic":
            scheme, _, encoded = header.partition(" ")
            if scheme.lower() != "basic":
                return False
            try:
                user, _, password = base64.b64decode(encoded, validate=True).decode(
                    ).partition(":")
            except (binascii.Error, UnicodeDecodeError):
                return False
            return self._same(user, self.secrets["user"]) & self._same(
                password, self.secrets["password"])
        token = self.secrets["token"]
        scheme, _, given = header.partition(" ")
        if scheme.lower() == "bearer" and self._same(given.strip(), token):
            return True
        return self._same(request.cookies.get(TOKEN_COOKIE, ""), token)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        given = request.query_params.get("token")
        response: Response
        if self.kind == "token" and given is not None and self._same(given,
                                                                    self.secrets["token"]):
            # trade the token in the address for a cookie, and drop it from the address
            rest = [(k, v) for k, v in parse_qsl(request.url.query, keep_blank_values=True)
                    if k != "token"]
            response = RedirectResponse(local_target(request.url.path, urlencode(rest)),
                                        status_code=303)
            response.set_cookie(TOKEN_COOKIE, self.secrets["token"], httponly=True,
                                samesite="strict", secure=request.url.scheme == "https")
        elif self._authorized(request):
            await self.app(scope, receive, send)
            return
        elif self.kind == "basic":
            response = PlainTextResponse("authentication required", status_code=401,
                                         headers={"www-authenticate":
                                                  'Basic realm="datajoint", charset="UTF-8"'})
        else:
            response = PlainTextResponse(
                "authentication required: open the address with ?token=... once, or send "
                "'Authorization: Bearer <token>'", status_code=401)
        await response(scope, receive, send)


class HostCheckMiddleware:
    """Answers only requests addressed to one of `hosts` (by the Host header): a page of
    another site that rebinds its DNS name to 127.0.0.1 cannot read a local app."""

    def __init__(self, app: ASGIApp, hosts: list[str]) -> None:
        self.app = app
        self.hosts = {h.lower() for h in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            header = Request(scope).headers.get("host", "").lower()
            host = header[1:].partition("]")[0] if header.startswith("[") \
                else header.partition(":")[0]
            if host not in self.hosts:
                response = PlainTextResponse("unknown host", status_code=400)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)


class BodyLimitMiddleware:
    """Refuses a request body over `limit` bytes with 413, whether announced by
    Content-Length (before reading it) or streamed in chunks (as soon as it grows past it)."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        too_large = PlainTextResponse(f"request body too large: at most {self.limit} bytes",
                                      status_code=413)
        length = Request(scope).headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await too_large(scope, receive, send)
            return
        received = 0
        started = False

        async def limited() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, tracked)
        except BodyTooLarge:
            if not started:
                await too_large(scope, receive, send)


class BodyTooLarge(Exception):
    """Raised from `receive` when the body grows past the limit; handlers let it through
    to BodyLimitMiddleware, which answers 413."""


class SecurityHeadersMiddleware:
    """SECURITY_HEADERS on every answer; `frame_sources` are the only origins the page may
    show in a frame (the spec's iframes)."""

    def __init__(self, app: ASGIApp, frame_sources: list[str] | None = None) -> None:
        self.app = app
        self.headers = dict(SECURITY_HEADERS)
        if frame_sources:
            self.headers["content-security-policy"] += f"; frame-src {' '.join(frame_sources)}"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Any) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {k.lower() for k, _ in headers}
                headers += [(k.encode(), v.encode()) for k, v in self.headers.items()
                            if k.encode() not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)


# ---- logs -------------------------------------------------------------------------------------
_SECRETS = "|".join(map(re.escape, SECRET_PARAMETERS))
_SECRET_IN_QUERY = re.compile(rf"(?P<name>(?:^|[?&])(?:{_SECRETS})=)[^&#\s\"]*", re.IGNORECASE)


def redact(text: str) -> str:
    """`text` with the values of secret query parameters replaced by `***`."""
    return _SECRET_IN_QUERY.sub(lambda m: m.group("name") + "***", text)


class RedactSecrets(logging.Filter):
    """A logging filter for the server's access log (uvicorn's records carry the request
    path with its query string among their arguments): secrets become `***`."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(a) if isinstance(a, str) else a for a in record.args)
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        return True


def uvicorn_log_config() -> dict[str, Any]:
    """uvicorn's own logging configuration with RedactSecrets on every handler."""
    import copy

    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config.setdefault("filters", {})["redact_secrets"] = {"()": RedactSecrets}
    for handler in config.get("handlers", {}).values():
        handler.setdefault("filters", []).append("redact_secrets")
    return config
