"""``GET /admin/audit``: the operator's view of the audit log (DESIGN §3)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route

from service.audit.query import AuditQuery
from service.http.auth import require_scope
from service.http.context import runtime_of
from service.http.responses import json_response

ADMIN_SCOPE = "authd:admin"


async def list_events(request: Request) -> Response:
    """Newest first; ``after_id`` returns only events newer than a cursor."""
    await require_scope(request, ADMIN_SCOPE)
    query = AuditQuery.from_params(request.query_params)
    events = await runtime_of(request).audit.store.query(
        action=query.action, subject=query.subject, after_id=query.after_id,
        limit=query.limit,
    )
    body = {
        "events": [event.as_dict() for event in events],
        "cursor": max((event.id or 0 for event in events), default=query.after_id),
    }
    return json_response(body)


routes: list[BaseRoute] = [Route("/admin/audit", list_events, methods=["GET"])]
