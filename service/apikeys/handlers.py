"""HTTP for the API-key domain: ``POST /v1/token``, the ``client_credentials`` grant
of ``/oauth/token``, and the admin resources for clients and keys.

The two token paths are thin: they read the credential and the optional ``scope`` /
``audience`` and hand an ``ExchangeRequest`` to the domain. The admin views follow
DESIGN §3 (problem+json errors, ``authd:admin`` required):

  POST /admin/clients                      create a client
  GET  /admin/clients                      list clients
  GET  /admin/clients/{client_id}          one client
  POST /admin/clients/{client_id}/disable  disable a client (its keys stop at once)
  POST /admin/clients/{client_id}/keys     create a key (the key is in this answer only)
  GET  /admin/clients/{client_id}/keys     list a client's keys (display form, last use)
  GET  /admin/apikeys/{key_id}              one key
  POST /admin/apikeys/{key_id}/revoke       revoke a key
  POST /admin/apikeys/{key_id}/rotate       successor key; the old one expires after overlap
  POST /admin/clients/{client_id}/token-policy  exchange audiences (RFC 8693), DPoP required
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.types import Receive, Scope, Send

from service.apikeys.credentials import basic_credentials, header_api_key
from service.apikeys.exchange import ExchangeRequest, pick_audience
from service.apikeys.keys import parse_scopes
from service.config import parse_duration, parse_rate
from service.errors import InvalidClient, InvalidRequest
from service.http.auth import require_scope
from service.http.context import runtime_of
from service.http.oauth import (
    ANSWERABLE,
    FORM,
    JSON_TYPE,
    TokenRequest,
    read_request,
    send_error,
    send_token,
    token_endpoint,
    token_error,
)
from service.http.requests import parse_form, parse_json_object, read_json
from service.http.responses import json_response
from service.observability.metrics import TALLY, TOKEN_REQUESTS_FAILED, TOKENS_ISSUED

if TYPE_CHECKING:
    from service.apikeys.exchange import Exchange

ADMIN = "authd:admin"
API_KEY_GRANT = "api_key"
CLIENT_CREDENTIALS = "client_credentials"
V1_TOKEN_PATH = "/v1/token"  # noqa: S105 - a path
_ISSUED_API_KEY = TOKENS_ISSUED.labels(API_KEY_GRANT)


# ---- POST /oauth/token, grant_type=client_credentials (RFC 6749 §4.4) ----------------

async def client_credentials(request: TokenRequest) -> bytes:
    """Client authentication by ``client_secret_basic`` or ``client_secret_post``
    (RFC 6749 §2.3.1); the secret is one of the client's API keys."""
    form = request.form
    basic = request.authorization
    try:
        if basic is not None:
            if "client_secret" in form:
                raise InvalidRequest("use one client authentication method, not two")
            client_id, secret = basic_credentials(basic)
            if "client_id" in form and form["client_id"] != client_id:
                raise InvalidRequest("client_id differs from the authenticated client")
        else:
            posted_id, posted_secret = form.get("client_id"), form.get("client_secret")
            if not posted_id or not posted_secret:
                raise InvalidClient("client authentication is required")
            client_id, secret = posted_id, posted_secret
        audience = pick_audience(form.get("audience"), form.get("resource"))
        exchange: Exchange = request.runtime.api_key_exchange
        return await exchange.exchange(ExchangeRequest(
            unverified_key=secret, grant=CLIENT_CREDENTIALS, ip=request.ip,
            scope=form.get("scope"), audience=audience, client_id=client_id,
            dpop_jkt=request.dpop_jkt,
        ))
    except InvalidClient as exc:
        # RFC 6749 §5.2: the challenge names the scheme the client used.
        exc.headers["WWW-Authenticate"] = 'Basic realm="authd"'
        raise


# ---- POST /v1/token ----------------------------------------------------------------

class ApiKeyTokenEndpoint:
    """``X-API-Key: <key>`` or ``Authorization: ApiKey <key>``; optional ``scope`` and
    ``audience`` in a form or JSON body. Answers like the OAuth endpoint."""

    _WANTED = frozenset({b"authorization", b"x-api-key", b"dpop"})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            request = await read_request(scope, receive, self._WANTED)
            params = _v1_params(request.content_type, request.body)
            key = _v1_key(request.headers, request.duplicated)
            runtime = scope["state"]["runtime"]
            proof = request.headers.get(b"dpop")
            exchange: Exchange = runtime.api_key_exchange
            body = await exchange.exchange(ExchangeRequest(
                unverified_key=key, grant=API_KEY_GRANT, ip=request.ip,
                scope=params.get("scope"),
                audience=pick_audience(params.get("audience"), params.get("resource")),
                dpop_jkt=None if proof is None else await runtime.dpop.bind(
                    proof, method="POST", path=V1_TOKEN_PATH),
            ))
        except ANSWERABLE as failure:
            exc = token_error(failure)
            TOKEN_REQUESTS_FAILED.labels(API_KEY_GRANT, exc.code).inc()
            await send_error(send, exc)
            return
        TALLY.inc(_ISSUED_API_KEY)
        await send_token(send, body)


def _v1_key(headers: dict[bytes, str], duplicated: bool) -> str:
    if duplicated:
        raise InvalidRequest("a credential header appears more than once")
    return header_api_key(headers.get(b"x-api-key"), headers.get(b"authorization"))


def _v1_params(content_type: bytes, body: bytes) -> dict[str, str]:
    if not body:
        return {}
    if content_type == FORM:
        return parse_form(body)
    if content_type == JSON_TYPE:
        data = parse_json_object(body)
        params: dict[str, str] = {}
        for name in ("scope", "audience", "resource"):
            value = data.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise InvalidRequest(f"{name} must be a string")
            params[name] = value
        return params
    raise InvalidRequest("the body must be application/x-www-form-urlencoded or JSON")


# ---- admin -------------------------------------------------------------------------

async def _actor(request: Request) -> str:
    principal = await require_scope(request, ADMIN)
    return principal.subject



def _str_field(data: dict[str, Any], name: str) -> str | None:
    value = data.get(name)
    if value is not None and not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string")
    return value


def _scopes_field(data: dict[str, Any], name: str) -> Any:
    value = data.get(name)
    if value is not None and not isinstance(value, str | list):
        raise InvalidRequest(f"{name} must be a string or a list of strings")
    return value


MAX_DURATION = 100 * 365 * 86400.0


def _duration_field(data: dict[str, Any], name: str) -> float | None:
    """Seconds, at most ``MAX_DURATION``: JSON allows 1e400 (inf) and 10**400, and
    ``"999…9d"`` parses, none of which an expiry can hold (float overflow is a 500)."""
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise InvalidRequest(f"{name} must be a duration such as 90d or a number of seconds")
    try:
        seconds = float(parse_duration(value) if isinstance(value, str) else value)
    except ValueError as exc:
        raise InvalidRequest(f"{name}: {exc}") from None
    except OverflowError:
        seconds = math.inf
    if not math.isfinite(seconds) or seconds > MAX_DURATION:
        raise InvalidRequest(f"{name} must be at most 100 years")
    return seconds


async def create_client(request: Request) -> Response:
    actor = await _actor(request)
    data = await read_json(request)
    name = _str_field(data, "name")
    if not name:
        raise InvalidRequest("name is required")
    audiences = data.get("audiences", data.get("audience"))
    if isinstance(audiences, str):
        audiences = audiences.split()
    if audiences is not None and not (
        isinstance(audiences, list) and all(isinstance(a, str) for a in audiences)
    ):
        raise InvalidRequest("audiences must be a list of strings")
    exchange_audiences, dpop_required = _token_policy_fields(data)
    apikeys = runtime_of(request).apikeys
    client = await apikeys.create_client(
        name, scopes=parse_scopes(_scopes_field(data, "scopes") or data.get("scope")),
        audiences=tuple(audiences or ()), token_ttl=_duration_field(data, "token_ttl"),
        actor=actor,
    )
    if exchange_audiences or dpop_required:
        client = await apikeys.set_token_policy(
            client.id, exchange_audiences=exchange_audiences, dpop_required=dpop_required,
            actor=actor,
        )
    return json_response(client.as_dict(), 201)


def _token_policy_fields(data: dict[str, Any]) -> tuple[tuple[str, ...] | None, bool | None]:
    """``exchange_audiences`` (a list, or a space-separated string) and ``dpop_required``
    (a boolean); absent fields are None (unchanged)."""
    audiences = data.get("exchange_audiences")
    if isinstance(audiences, str):
        audiences = audiences.split()
    if audiences is not None and not (
        isinstance(audiences, list) and all(isinstance(a, str) for a in audiences)
    ):
        raise InvalidRequest("exchange_audiences must be a list of strings")
    required = data.get("dpop_required")
    if required is not None and not isinstance(required, bool):
        raise InvalidRequest("dpop_required must be true or false")
    return (None if audiences is None else tuple(audiences)), required


async def set_token_policy(request: Request) -> Response:
    """Replace the client's token-exchange audiences and/or its DPoP requirement."""
    actor = await _actor(request)
    exchange_audiences, dpop_required = _token_policy_fields(await read_json(request))
    client = await runtime_of(request).apikeys.set_token_policy(
        request.path_params["client_id"], exchange_audiences=exchange_audiences,
        dpop_required=dpop_required, actor=actor,
    )
    return json_response(client.as_dict())


async def list_clients(request: Request) -> Response:
    await _actor(request)
    clients = await runtime_of(request).apikeys.clients()
    return json_response({"clients": [c.as_dict() for c in clients]})


async def get_client(request: Request) -> Response:
    await _actor(request)
    client = await runtime_of(request).apikeys.client(request.path_params["client_id"])
    return json_response(client.as_dict())


async def disable_client(request: Request) -> Response:
    actor = await _actor(request)
    client = await runtime_of(request).apikeys.disable_client(
        request.path_params["client_id"], actor=actor
    )
    return json_response(client.as_dict())


async def create_key(request: Request) -> Response:
    actor = await _actor(request)
    data = await read_json(request) if await request.body() else {}
    scopes = _scopes_field(data, "scopes") or data.get("scope")
    rate_text = _str_field(data, "rate_limit")
    try:
        rate = parse_rate(rate_text) if rate_text else None
    except ValueError as exc:
        raise InvalidRequest(f"rate_limit: {exc}") from None
    issued = await runtime_of(request).apikeys.create_key(
        request.path_params["client_id"],
        scopes=None if scopes is None else parse_scopes(scopes),
        expires_in=_duration_field(data, "expires_in"), rate=rate, actor=actor,
    )
    return json_response(issued.as_dict(), 201)


async def list_keys(request: Request) -> Response:
    await _actor(request)
    keys = await runtime_of(request).apikeys.keys(request.path_params["client_id"])
    return json_response({"keys": [k.as_dict() for k in keys]})


async def get_key(request: Request) -> Response:
    await _actor(request)
    key = await runtime_of(request).apikeys.key(request.path_params["key_id"])
    return json_response(key.as_dict())


async def revoke_key(request: Request) -> Response:
    actor = await _actor(request)
    key = await runtime_of(request).apikeys.revoke_key(
        request.path_params["key_id"], actor=actor
    )
    return json_response(key.as_dict())


async def rotate_key(request: Request) -> Response:
    actor = await _actor(request)
    data = await read_json(request) if await request.body() else {}
    overlap = _duration_field(data, "overlap")
    issued, old = await runtime_of(request).apikeys.rotate_key(
        request.path_params["key_id"], overlap=86400.0 if overlap is None else overlap,
        actor=actor,
    )
    return json_response({**issued.as_dict(), "previous": old.as_dict()}, 201)


routes: list[BaseRoute] = [
    # /oauth/token dispatches on grant_type; other domains register their grants.
    Route("/oauth/token", token_endpoint, methods=["POST"]),
    Route("/v1/token", ApiKeyTokenEndpoint(), methods=["POST"]),
    Route("/admin/clients", create_client, methods=["POST"]),
    Route("/admin/clients", list_clients, methods=["GET"]),
    Route("/admin/clients/{client_id}", get_client, methods=["GET"]),
    Route("/admin/clients/{client_id}/disable", disable_client, methods=["POST"]),
    Route("/admin/clients/{client_id}/token-policy", set_token_policy, methods=["POST"]),
    Route("/admin/clients/{client_id}/keys", create_key, methods=["POST"]),
    Route("/admin/clients/{client_id}/keys", list_keys, methods=["GET"]),
    Route("/admin/apikeys/{key_id}", get_key, methods=["GET"]),
    Route("/admin/apikeys/{key_id}/revoke", revoke_key, methods=["POST"]),
    Route("/admin/apikeys/{key_id}/rotate", rotate_key, methods=["POST"]),
]
