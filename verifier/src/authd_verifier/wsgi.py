"""WSGI: the same Bearer checks for Django, Flask and any WSGI app, over the sync Verifier.

No framework is imported. Two ways in:

- :class:`BearerAuthMiddleware` wraps a whole WSGI application (Django's
  ``application`` in ``wsgi.py``; Flask's ``app.wsgi_app``) and puts the verified
  :class:`~authd_verifier.claims.Claims` in the environ under
  :data:`CLAIMS_ENVIRON_KEY` (``"authd.claims"``)::

      application = BearerAuthMiddleware(application, verifier, require_scopes=["orders:read"])

- :func:`require_token` decorates one endpoint with its own scopes. On a WSGI
  callable ``(environ, start_response)`` it needs nothing else; on a Flask-style
  view (no request argument) give it ``environ=``, a function returning the
  current request's environ, and a refusal is returned as a small WSGI
  application, which Flask accepts as a view's return value::

      @app.get("/orders")
      @require_token(verifier, scopes=["orders:read"], environ=lambda: request.environ)
      def orders():
          return {"user": request.environ["authd.claims"].subject}

Refusals are RFC 6750's, built by :mod:`authd_verifier.bearer` exactly as for the
ASGI middleware and the FastAPI dependency.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, Final, TypeVar, cast

from .bearer import BearerChallenge, Refusal, bearer_token
from .claims import Claims
from .dpop import refuse_bound_bearer
from .errors import VerificationError
from .verify import Verifier

__all__ = ["CLAIMS_ENVIRON_KEY", "BearerAuthMiddleware", "require_token"]

#: The WSGI environ key under which verified claims are stored.
CLAIMS_ENVIRON_KEY: Final = "authd.claims"

Environ = MutableMapping[str, Any]
StartResponse = Callable[..., Any]
WSGIApp = Callable[[Environ, StartResponse], Iterable[bytes]]

_View = TypeVar("_View", bound=Callable[..., Any])


def _authorizations(environ: Environ) -> list[bytes]:
    # WSGI folds repeated headers into one value joined by ", ", which then fails
    # the single-Bearer match: several Authorization headers are refused as 400.
    value = environ.get("HTTP_AUTHORIZATION")
    return [] if value is None else [value.encode("latin-1")]


def _verified(verifier: Verifier, environ: Environ, scopes: frozenset[str], mfa: bool) -> Claims:
    claims = verifier.verify(
        bearer_token(_authorizations(environ)), require_scopes=scopes, require_mfa=mfa
    )
    refuse_bound_bearer(claims.raw)  # RFC 9449 §7.2: a DPoP-bound token is no bearer token
    return claims


def refusal_app(refusal: Refusal) -> WSGIApp:
    """A WSGI application that answers ``refusal``."""
    status, headers, body = refusal
    reason = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden"}.get(
        status, "Service Unavailable"
    )

    def answer(environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        start_response(f"{status} {reason}", [(name.title(), value) for name, value in headers])
        return [body]

    return answer


class BearerAuthMiddleware:
    """Authenticate every request to a WSGI application with an authd access token.

    ``require_scopes`` applies to every request; ``exempt_paths`` (exact
    ``PATH_INFO`` values, e.g. ``/healthz``) pass through unauthenticated.
    """

    def __init__(
        self,
        app: WSGIApp,
        verifier: Verifier,
        *,
        realm: str = "api",
        require_scopes: Iterable[str] = (),
        require_mfa: bool = False,
        exempt_paths: Iterable[str] = (),
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.require_scopes = frozenset(require_scopes)
        self.require_mfa = require_mfa
        self.exempt_paths = frozenset(exempt_paths)
        self._challenge = BearerChallenge(realm)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        if environ.get("PATH_INFO", "") in self.exempt_paths:
            return self.app(environ, start_response)
        try:
            claims = _verified(self.verifier, environ, self.require_scopes, self.require_mfa)
        except VerificationError as error:
            return refusal_app(self._challenge.refusal(error))(environ, start_response)
        environ[CLAIMS_ENVIRON_KEY] = claims
        return self.app(environ, start_response)


def require_token(
    verifier: Verifier,
    *,
    scopes: Iterable[str] = (),
    mfa: bool = False,
    realm: str = "api",
    environ: Callable[[], Environ] | None = None,
) -> Callable[[_View], _View]:
    """Decorate a WSGI callable, or with ``environ=`` a Flask-style view, to require a token.

    The verified claims are put in the environ under :data:`CLAIMS_ENVIRON_KEY`
    before the endpoint runs; a refused request never reaches it.
    """
    required = frozenset(scopes)
    challenge = BearerChallenge(realm)

    def decorate(endpoint: _View) -> _View:
        if environ is None:

            @functools.wraps(endpoint)
            def wsgi_endpoint(
                request_environ: Environ, start_response: StartResponse
            ) -> Iterable[bytes]:
                try:
                    claims = _verified(verifier, request_environ, required, mfa)
                except VerificationError as error:
                    return refusal_app(challenge.refusal(error))(request_environ, start_response)
                request_environ[CLAIMS_ENVIRON_KEY] = claims
                return cast(Iterable[bytes], endpoint(request_environ, start_response))

            return cast(_View, wsgi_endpoint)

        current_environ = environ

        @functools.wraps(endpoint)
        def view(*args: Any, **kwargs: Any) -> Any:
            request_environ = current_environ()
            try:
                claims = _verified(verifier, request_environ, required, mfa)
            except VerificationError as error:
                return refusal_app(challenge.refusal(error))
            request_environ[CLAIMS_ENVIRON_KEY] = claims
            return endpoint(*args, **kwargs)

        return cast(_View, view)

    return decorate
