"""CORS (the Fetch standard's CORS protocol) for browser apps on other origins.

Two policies, each Starlette's ``CORSMiddleware``, chosen by the request's path:

* the **user endpoints** a single-page app calls — login, its MFA step, refresh,
  logout, the user's own MFA endpoints and ``/oauth/revoke`` — answer only the exact
  origins of ``AUTHD_CORS_ORIGINS``, with credentials (the refresh cookie) allowed;
* the **public documents** — the JWKS and the authorization-server metadata — answer
  any origin, without credentials (``Access-Control-Allow-Origin: *``).

Every other path — the machine clients' token endpoints (``/v1/token``,
``/oauth/token``), ``/admin/*``, introspection, the feed — is passed through untouched
and sends no CORS header; a preflight there meets the router's 405. With no origin
configured :func:`browser_cors` returns the application itself, so no request pays
anything for this (DESIGN §7).

The methods a preflight names are the route's own, read from the routes themselves,
so the answer always matches what the endpoint accepts.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from typing import Any

from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware.cors import CORSMiddleware
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.errors import CorsRefused
from service.http.errors import error_response

USER_ENDPOINTS = frozenset({
    "/v1/login", "/v1/login/mfa", "/v1/refresh", "/v1/logout", "/oauth/revoke", "/v1/mfa",
})
USER_PREFIXES = ("/v1/mfa/",)
PUBLIC_DOCUMENTS = frozenset({
    "/.well-known/jwks.json", "/.well-known/oauth-authorization-server",
})
# What the user endpoints read from a request beyond the CORS-safelisted headers: the
# access token or client credentials, the JSON body's type, a caller's trace id.
USER_REQUEST_HEADERS = ("Authorization", "Content-Type", "X-Request-ID")
# What a page may read beyond the CORS-safelisted response headers: when to retry a
# 429/503, why a 401 was refused, and the id to quote in a support request.
USER_RESPONSE_HEADERS = ("Retry-After", "WWW-Authenticate", "X-Request-ID")
PUBLIC_REQUEST_HEADERS = ("If-None-Match",)
PUBLIC_RESPONSE_HEADERS = ("ETag",)
# How long a browser may reuse a preflight answer (Chromium caps it at 2 hours).
PREFLIGHT_MAX_AGE = 600


def browser_cors(app: ASGIApp, *, routes: Iterable[BaseRoute],
                 origins: Collection[str]) -> ASGIApp:
    """``app`` behind the two CORS policies, or ``app`` itself when ``origins`` is
    empty (CORS off: the default)."""
    if not origins:
        return app
    methods = _methods_by_path(routes)
    policies: dict[str, ASGIApp] = {}
    for path, allowed in methods.items():
        if path in PUBLIC_DOCUMENTS:
            policies[path] = _CorsPolicy(
                app, path, allow_origins=["*"], allow_methods=allowed,
                allow_headers=PUBLIC_REQUEST_HEADERS, expose_headers=PUBLIC_RESPONSE_HEADERS,
                max_age=PREFLIGHT_MAX_AGE)
        elif path in USER_ENDPOINTS or path.startswith(USER_PREFIXES):
            policies[path] = _CorsPolicy(
                app, path, allow_origins=list(origins), allow_methods=allowed,
                allow_headers=USER_REQUEST_HEADERS, expose_headers=USER_RESPONSE_HEADERS,
                allow_credentials=True, max_age=PREFLIGHT_MAX_AGE)
    return _ByPath(app, policies)


def _methods_by_path(routes: Iterable[BaseRoute]) -> dict[str, list[str]]:
    """Each static route path with the methods its routes accept (a path may be
    served by several routes, one per method)."""
    methods: dict[str, set[str]] = {}
    for route in routes:
        if isinstance(route, Route) and route.methods and "{" not in route.path:
            methods.setdefault(route.path, set()).update(route.methods)
    return {path: sorted(found) for path, found in methods.items()}


class _ByPath:
    """One dictionary lookup per request picks the path's policy, if it has one."""

    def __init__(self, app: ASGIApp, policies: dict[str, ASGIApp]) -> None:
        self.app = app
        self.policies = policies

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            policy = self.policies.get(scope["path"])
            if policy is not None:
                await policy(scope, receive, send)
                return
        await self.app(scope, receive, send)


class _CorsPolicy(CORSMiddleware):
    """Starlette's CORS middleware with two answers made stricter:

    * a refused preflight is an ``application/problem+json`` 400 like every other
      refusal of a non-OAuth path, not a ``text/plain`` one (the browser reads only
      the status and headers; a developer reads the body);
    * an actual response carries CORS headers only for an allowed origin — Starlette
      also adds ``Access-Control-Allow-Credentials`` to a refused origin's answer —
      and a public document carries ``Access-Control-Allow-Origin: *`` whether or not
      the request had an ``Origin``, so a shared cache that stored a copy fetched
      without one cannot hand a page an answer the browser would block.
    """

    def __init__(self, app: ASGIApp, path: str, **options: Any) -> None:
        super().__init__(app, **options)
        self.path = path

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            return response
        # Starlette's text names what was refused: "Disallowed CORS origin, headers".
        refused = error_response(
            CorsRefused(f"{bytes(response.body).decode()} for this resource"), self.path)
        for name in _PREFLIGHT_HEADERS:
            if name in response.headers:
                refused.headers[name] = response.headers[name]
        return refused

    async def send(self, message: Message, send: Send, request_headers: Headers) -> None:
        if message["type"] != "http.response.start":
            await send(message)
            return
        headers = MutableHeaders(scope=message)
        if self.allow_all_origins:
            headers.update(self.simple_headers)
        else:
            origin = request_headers.get("origin")
            if origin is not None and self.is_allowed_origin(origin):
                headers.update(self.simple_headers)
                headers["Access-Control-Allow-Origin"] = origin
            headers.add_vary_header("Origin")
        await send(message)


_PREFLIGHT_HEADERS = (
    "Access-Control-Allow-Origin", "Access-Control-Allow-Methods",
    "Access-Control-Allow-Headers", "Access-Control-Allow-Credentials",
    "Access-Control-Max-Age", "Vary",
)
