"""Admin HTTP (``authd:admin``): a user's recent logins and anomalies, a key's source
networks and allowed CIDRs.

  GET /admin/users/{user}/logins?limit=N        recent completed logins, newest first
  GET /admin/users/{user}/anomalies?limit=N     ``login.anomaly`` events, newest first
  GET /admin/apikeys/{key_id}/networks          networks the key was used from
  PUT /admin/apikeys/{key_id}/allowed-cidrs     {"allowed_cidrs": ["10.0.0.0/8"] | null}
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from service.errors import InvalidRequest
from service.http.auth import require_scope
from service.http.context import client_ip, runtime_of
from service.http.requests import read_json, whole_number
from service.http.responses import json_response


def _limit(request: Request) -> int:
    return whole_number("limit", request.query_params.get("limit", "20"), 1, 200)


async def user_logins(request: Request) -> Response:
    runtime = runtime_of(request)
    await require_scope(request, "authd:admin")
    user = await runtime.sessions.users.find(request.path_params["user"])
    logins = await runtime.anomaly.recent_logins(user.id, _limit(request))
    return json_response({"user_id": user.id, "logins": logins})


async def user_anomalies(request: Request) -> Response:
    runtime = runtime_of(request)
    await require_scope(request, "authd:admin")
    user = await runtime.sessions.users.find(request.path_params["user"])
    anomalies = await runtime.anomaly.anomalies(user.id, _limit(request))
    return json_response({"user_id": user.id, "anomalies": anomalies})


async def key_networks(request: Request) -> Response:
    runtime = runtime_of(request)
    await require_scope(request, "authd:admin")
    return json_response(await runtime.anomaly.key_networks(request.path_params["key_id"]))


async def set_allowed_cidrs(request: Request) -> Response:
    runtime = runtime_of(request)
    principal = await require_scope(request, "authd:admin")
    data = await read_json(request)
    if set(data) != {"allowed_cidrs"}:
        raise InvalidRequest("the body is {\"allowed_cidrs\": [CIDR, ...] or null}")
    cidrs = data["allowed_cidrs"]
    if cidrs is not None and not (isinstance(cidrs, list)
                                  and all(isinstance(c, str) for c in cidrs)):
        raise InvalidRequest("allowed_cidrs must be a list of strings or null")
    body = await runtime.anomaly.set_allowed_cidrs(
        request.path_params["key_id"], cidrs, actor=principal.subject, ip=client_ip(request))
    return json_response(body)


routes: list[BaseRoute] = [
    Route("/admin/users/{user}/logins", user_logins, methods=["GET"]),
    Route("/admin/users/{user}/anomalies", user_anomalies, methods=["GET"]),
    Route("/admin/apikeys/{key_id}/networks", key_networks, methods=["GET"]),
    Route("/admin/apikeys/{key_id}/allowed-cidrs", set_allowed_cidrs, methods=["PUT"]),
]
