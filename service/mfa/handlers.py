"""HTTP: the signed-in user's TOTP and recovery codes, the login's second step, and
the operator's reset. Thin: parse, call the domain, answer.

  GET  /v1/mfa                     enrolment state, recovery codes left
  POST /v1/mfa/totp/enroll         → {secret, otpauth_uri}; pending until verified
  POST /v1/mfa/totp/verify         {code}: completes a pending enrolment (→ the ten
                                   recovery codes, shown once) or checks a code
  POST /v1/mfa/totp/disable        {code | recovery_code}
  POST /v1/mfa/recovery-codes      {code}: ten new codes, the old ones die
  POST /v1/login/mfa               {mfa_ticket, code | recovery_code} → tokens
  GET  /admin/users/{user}/mfa     (authd:admin) a user's MFA state
  POST /admin/users/{user}/mfa/reset  (authd:admin) remove TOTP and recovery codes

The /v1/mfa endpoints take the user's own access token (``Authorization: Bearer``,
a login token: it has a ``sid``).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from service.errors import InvalidRequest, InvalidToken
from service.http.auth import bearer_token, dpop_key, require_scope, verified_claims
from service.http.context import client_ip, runtime_of
from service.http.requests import field, read_json
from service.http.responses import NO_STORE, json_response
from service.mfa.errors import UserTokenRequired
from service.sessions.handlers import _tokens_response
from service.sessions.login import MAX_USER_AGENT
from service.sessions.refresh import LOGIN_CLIENT_ID


async def _body(request: Request, allowed: set[str]) -> dict[str, Any]:
    data = await read_json(request)
    unknown = set(data) - allowed
    if unknown:
        raise InvalidRequest(f"unknown member {sorted(unknown)[0]!r}")
    return data


def _one_code(data: dict[str, Any], *, recovery: bool = True) -> tuple[str | None, str | None]:
    code = field(data, "code", required=False)
    recovery_code = field(data, "recovery_code", required=False) if recovery else None
    if (code is None) == (recovery_code is None):
        raise InvalidRequest("send exactly one of code and recovery_code" if recovery
                             else "code is required")
    return code, recovery_code


async def _user(request: Request) -> str:
    """The signed-in user: a verified, unrevoked login access token's ``sub``."""
    bearer = bearer_token(request)
    if bearer is None:
        raise InvalidToken("a user's access token is required (Authorization: Bearer)")
    claims = await verified_claims(runtime_of(request), bearer, request)
    if not isinstance(claims.get("sid"), str) or claims.get("client_id") != LOGIN_CLIENT_ID:
        raise UserTokenRequired("this endpoint needs a user's login access token")
    return str(claims["sub"])


async def status(request: Request) -> Response:
    runtime = runtime_of(request)
    user_id = await _user(request)
    return json_response({"user_id": user_id, **await runtime.mfa.factors.status(user_id)})


async def enroll(request: Request) -> Response:
    runtime = runtime_of(request)
    user_id = await _user(request)
    user = await runtime.sessions.users.find(user_id)
    enrolment = await runtime.mfa.factors.enrol(user_id, user.email, ip=client_ip(request))
    return json_response(enrolment.as_dict())


async def verify(request: Request) -> Response:
    runtime = runtime_of(request)
    user_id = await _user(request)
    code, _ = _one_code(await _body(request, {"code"}), recovery=False)
    factors = runtime.mfa.factors
    ip = client_ip(request)
    if (await factors.status(user_id))["totp"] == "pending":
        codes = await factors.confirm(user_id, code or "", ip=ip)
        return json_response({"state": "active", "recovery_codes": codes})
    await factors.verify(user_id, code=code, recovery_code=None, ip=ip, purpose="verify")
    return json_response({"state": "active", "verified": True})


async def disable(request: Request) -> Response:
    runtime = runtime_of(request)
    user_id = await _user(request)
    code, recovery_code = _one_code(await _body(request, {"code", "recovery_code"}))
    await runtime.mfa.factors.disable(user_id, code=code, recovery_code=recovery_code,
                                      ip=client_ip(request))
    return Response(b"", 204, NO_STORE)


async def recovery_codes(request: Request) -> Response:
    runtime = runtime_of(request)
    user_id = await _user(request)
    code, _ = _one_code(await _body(request, {"code"}), recovery=False)
    codes = await runtime.mfa.factors.regenerate(user_id, code=code or "",
                                                 ip=client_ip(request))
    return json_response({"recovery_codes": codes})


async def login_mfa(request: Request) -> Response:
    """``POST /v1/login/mfa``: the second step of a login that answered mfa_required."""
    runtime = runtime_of(request)
    data = await _body(request, {"mfa_ticket", "code", "recovery_code"})
    ticket = field(data, "mfa_ticket") or ""
    code, recovery_code = _one_code(data)
    tokens = await runtime.mfa.login.complete(
        ticket, code=code, recovery_code=recovery_code, ip=client_ip(request),
        user_agent=(request.headers.get("user-agent") or "")[:MAX_USER_AGENT],
        dpop_jkt=await dpop_key(request, "/v1/login/mfa"))
    return _tokens_response(request, tokens)


async def admin_status(request: Request) -> Response:
    runtime = runtime_of(request)
    await require_scope(request, "authd:admin")
    user = await runtime.sessions.users.find(request.path_params["user"])
    return json_response({"user_id": user.id, **await runtime.mfa.factors.status(user.id)})


async def admin_reset(request: Request) -> Response:
    runtime = runtime_of(request)
    principal = await require_scope(request, "authd:admin")
    user = await runtime.sessions.users.find(request.path_params["user"])
    removed = await runtime.mfa.factors.reset(user.id, actor=principal.subject,
                                              ip=client_ip(request))
    return json_response({"user_id": user.id, "reset": removed})


routes: list[BaseRoute] = [
    Route("/v1/mfa", status, methods=["GET"]),
    Route("/v1/mfa/totp/enroll", enroll, methods=["POST"]),
    Route("/v1/mfa/totp/verify", verify, methods=["POST"]),
    Route("/v1/mfa/totp/disable", disable, methods=["POST"]),
    Route("/v1/mfa/recovery-codes", recovery_codes, methods=["POST"]),
    Route("/v1/login/mfa", login_mfa, methods=["POST"]),
    Route("/admin/users/{user}/mfa", admin_status, methods=["GET"]),
    Route("/admin/users/{user}/mfa/reset", admin_reset, methods=["POST"]),
]
