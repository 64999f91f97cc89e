"""Reading an API key presented as client credentials, the one way for every endpoint
that accepts one (``/oauth/token``, ``/v1/token``, ``/oauth/revoke``).

Only the reading lives here; checking the key, and counting a failure against the
caller's failed-authentication budget, is ``Exchange.authenticate``.
"""

from __future__ import annotations

import binascii
from collections.abc import Mapping
from urllib.parse import unquote

from service.errors import InvalidClient, InvalidRequest


def basic_credentials(header: str) -> tuple[str, str]:
    """``Authorization: Basic`` → (client_id, secret), RFC 6749 §2.3.1."""
    scheme, _, encoded = header.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        raise InvalidClient("the Authorization header must use the Basic scheme")
    try:
        # ``base64.b64decode(validate=True)`` without its Python wrapper (every
        # client_secret_basic token request); a non-ASCII header fails to encode.
        decoded = binascii.a2b_base64(encoded.strip().encode("ascii"),
                                      strict_mode=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise InvalidClient("the Basic credentials are malformed") from None
    client_id, colon, secret = decoded.partition(":")
    if not colon or not client_id or not secret:
        raise InvalidClient("the Basic credentials are malformed")
    # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
    return unquote(client_id.replace("+", " ")), unquote(secret.replace("+", " "))


def header_api_key(x_api_key: str | None, authorization: str | None) -> str:
    """``X-API-Key: <key>`` or ``Authorization: ApiKey <key>``; both carrying different
    keys is refused rather than one silently chosen."""
    auth_key = None
    if authorization is not None:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "apikey":
            raise InvalidClient("the Authorization header must use the ApiKey scheme",
                                scheme="ApiKey")
        auth_key = value.strip()
    if x_api_key is not None and auth_key is not None and x_api_key != auth_key:
        raise InvalidRequest("X-API-Key and Authorization carry different keys")
    key = x_api_key if x_api_key is not None else auth_key
    if not key:
        raise InvalidClient("an API key is required (X-API-Key or Authorization: ApiKey)",
                            scheme="ApiKey")
    return key


def form_client_credentials(form: Mapping[str, str], authorization: str | None) -> tuple[str, str]:
    """(client_id, secret) of a token request by ``client_secret_basic`` or
    ``client_secret_post`` (RFC 6749 §2.3.1): one method, not two; a ``client_id``
    in the form must name the Basic client."""
    if authorization is not None:
        if "client_secret" in form:
            raise InvalidRequest("use one client authentication method, not two")
        client_id, secret = basic_credentials(authorization)
        if "client_id" in form and form["client_id"] != client_id:
            raise InvalidRequest("client_id differs from the authenticated client")
        return client_id, secret
    posted_id, posted_secret = form.get("client_id"), form.get("client_secret")
    if not posted_id or not posted_secret:
        raise InvalidClient("client authentication is required")
    return posted_id, posted_secret
