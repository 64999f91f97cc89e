"""HTTP Strict Transport Security (RFC 6797) for a deployment whose issuer is https.

The header goes on every response once the issuer is an ``https://`` URL, whether
authd terminates TLS itself or sits behind a TLS-terminating proxy: browsers ignore
it on plain-http responses (RFC 6797 §8.1), and tying it to the issuer rather than to
the connection keeps it on even when the proxy is not (yet) a trusted one. An
``http://`` issuer (local use) gets the application back unwrapped: no per-request cost.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

# Two years, the value hstspreload.org asks for; subdomains of the issuer's host
# (not of its parent domain) are covered too. No `preload`: that is the operator's call.
HSTS_HEADER = (b"strict-transport-security", b"max-age=63072000; includeSubDomains")


def strict_transport_security(app: ASGIApp, *, issuer: str) -> ASGIApp:
    """``app`` with HSTS on every HTTP response when ``issuer`` is https, else ``app``."""
    if not issuer.startswith("https://"):
        return app
    return _StrictTransportSecurity(app)


class _StrictTransportSecurity:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_hsts(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), HSTS_HEADER]
            await send(message)

        await self.app(scope, receive, send_with_hsts)
