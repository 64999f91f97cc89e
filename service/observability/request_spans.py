"""One SERVER span per HTTP request, joined to the caller's trace (W3C Trace Context).

The span is named ``METHOD /route/{template}`` once the router has answered, never
after the raw path (it may hold an identifier), and carries only what the HTTP
semantic conventions ask for plus ``authd.grant``: which way a token was asked for.
Nothing of the request's headers but ``traceparent``/``tracestate`` is read, nothing
of its body; an exception marks the span with its type, never its message (a
driver's message may quote a value).
"""

from __future__ import annotations

from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from service.apikeys.handlers import API_KEY_GRANT
from service.http.middleware import UNMATCHED, route_template

# The endpoints whose route alone says the grant; /oauth/token leaves the form's
# grant_type in ``scope["state"]["grant"]`` once a handler for it exists.
GRANT_OF_ROUTE = {"/v1/token": API_KEY_GRANT, "/v1/login": "login", "/v1/refresh": "refresh"}
_CONTEXT_HEADERS = {b"traceparent": "traceparent", b"tracestate": "tracestate"}
_PROPAGATOR = TraceContextTextMapPropagator()


class RequestSpans:
    def __init__(self, app: ASGIApp, tracer: Tracer) -> None:
        self.app = app
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier = {_CONTEXT_HEADERS[name]: value.decode("latin-1")
                   for name, value in scope["headers"] if name in _CONTEXT_HEADERS}
        method = scope["method"]
        path = scope["path"]
        status = 500

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        with self.tracer.start_as_current_span(
            method, context=_PROPAGATOR.extract(carrier), kind=SpanKind.SERVER,
            attributes={"http.request.method": method, "url.scheme": scope["scheme"]},
            record_exception=False, set_status_on_exception=False,
        ) as span:
            try:
                await self.app(scope, receive, send_status)
            except BaseException as exc:
                span.set_attribute("error.type", type(exc).__qualname__)
                raise
            finally:
                template = route_template(scope, path)
                if template != UNMATCHED:
                    span.update_name(f"{method} {template}")
                    span.set_attribute("http.route", template)
                grant = scope.get("state", {}).get("grant") or GRANT_OF_ROUTE.get(template)
                if grant is not None:
                    span.set_attribute("authd.grant", grant)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
