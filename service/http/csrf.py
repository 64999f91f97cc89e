"""The CSRF rule for requests that the refresh cookie alone authenticates.

A browser attaches the cookie by itself, whichever page makes the request;
``SameSite=Strict`` keeps other *sites* out, but not a sibling subdomain or another
port of the same host, which are the same site. So a request whose only credential is
the cookie must also show that an allowed page made it:

1. its body is ``application/json`` — which no HTML form can send and which a
   script on another origin can send only after a CORS preflight that authd answers
   for allow-listed origins alone (a form, ``text/plain`` or no body is refused);
2. its ``Origin`` — or, where a browser sent none, its ``Referer`` — is the issuer's
   own origin or one of ``AUTHD_CORS_ORIGINS``. A request with neither is refused:
   every browser sends ``Origin`` on a cross-origin POST, and a client that is not a
   browser sends its refresh token in the body instead.

Both failures are a 403 ``cross_site_request`` problem. This is the OWASP
"verifying origin with standard headers" defence plus the JSON content-type rule.
"""

from __future__ import annotations

from starlette.requests import Request

from service.errors import CrossSiteRequest
from service.http.origins import origin_or_none
from service.http.requests import JSON, media_type


def require_allowed_page(request: Request, allowed_origins: frozenset[str]) -> None:
    """Raise CrossSiteRequest unless ``request`` is JSON from an allowed origin."""
    if media_type(request) != JSON:
        raise CrossSiteRequest(
            f"a request authenticated by the refresh cookie must send an {JSON} body",
            log_detail="refresh cookie without a JSON body")
    unverified_origin = request_origin(request)
    if unverified_origin is None:
        raise CrossSiteRequest(
            "a request authenticated by the refresh cookie must carry an Origin "
            "(or Referer) header", log_detail="refresh cookie without Origin or Referer")
    if unverified_origin not in allowed_origins:
        # The origin is logged as serialized above (scheme://host[:port] or "null"),
        # never as the raw header: it is the caller's text.
        raise CrossSiteRequest(
            "the refresh cookie is accepted only from the issuer's origin or an allowed one",
            log_detail=f"refresh cookie from origin {unverified_origin}")


def request_origin(request: Request) -> str | None:
    """The origin the browser says the request came from: ``Origin``, or else the
    origin of ``Referer``; None when it sent neither. ``Origin: null`` (a sandboxed
    frame, a ``data:`` page, a redirect across origins) and a value that is no http(s)
    origin are ``"null"``: present, and matching nothing."""
    origin = request.headers.get("origin")
    if origin is not None:
        return origin_or_none(origin.strip()) or "null"
    referer = request.headers.get("referer")
    if referer is not None:
        return origin_or_none(referer.strip(), whole_url=True) or "null"
    return None
