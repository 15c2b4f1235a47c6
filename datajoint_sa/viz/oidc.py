"""OpenID Connect login (the authorization-code flow) through authlib's Starlette client.

authlib does the protocol: discovery, the state and nonce kept in the signed session, the
code traded for tokens with the client secret, and the ID token's signature (from the
provider's JWKS), issuer, audience, expiry and nonce checked. This module decides who may
come in (`allow:` lists emails or subjects; empty lets any user of the provider in) and
starts the app's own session.
"""

from __future__ import annotations

import html
import logging

from authlib.integrations.starlette_client import OAuth, OAuthError
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from .auth import SessionStore, UserSession, login_page
from .middleware import local_target
from .spec import AuthSpec

logger = logging.getLogger("datajoint_sa.viz")


class OidcLogin:
    def __init__(self, auth: AuthSpec, client_secret: str, title: str,
                 store: SessionStore) -> None:
        self.auth = auth
        self.title = title
        self.store = store
        self.oauth = OAuth()
        self.client = self.oauth.register(
            "oidc", client_id=auth.client_id, client_secret=client_secret,
            server_metadata_url=auth.issuer.rstrip("/") + "/.well-known/openid-configuration",
            client_kwargs={"scope": auth.scope})

    async def login(self, request: Request) -> Response:
        """Send the browser to the provider; it comes back to /auth/callback."""
        request.session["next"] = local_target(request.query_params.get("next", "/"))
        redirect_uri = str(request.base_url).rstrip("/") + "/auth/callback"
        try:
            return await self.client.authorize_redirect(request, redirect_uri)
        except Exception:  # the provider does not answer its discovery address
            logger.exception("OIDC discovery failed for %s", self.auth.issuer)
            return login_page(self.title, "<p class=dj-error role=alert>The login provider "
                              "does not answer; try again later.</p>", status=502)

    async def callback(self, request: Request) -> Response:
        try:
            token = await self.client.authorize_access_token(request)
        except OAuthError as error:
            return self._refused(f"login failed: {error.error}")
        except Exception:
            logger.exception("OIDC token exchange failed")
            return self._refused("login failed: the provider's answer could not be checked")
        claims = token.get("userinfo") or {}
        user = str(claims.get("email") or claims.get("sub") or "")
        allowed = self.auth.allow
        if not user or (allowed and user not in allowed
                        and str(claims.get("sub")) not in allowed):
            return self._refused(f"{user or 'this account'} may not use this app")
        next_ = local_target(request.session.pop("next", "/"))
        request.session.clear()
        request.session.update(sid=self.store.new(UserSession(user=user)), user=user)
        return RedirectResponse(next_, status_code=303)

    def _refused(self, message: str) -> Response:
        return login_page(self.title, f"<p class=dj-error role=alert>{html.escape(message)}</p>"
                          "<p><a href=/login>Try again</a></p>", status=403)
