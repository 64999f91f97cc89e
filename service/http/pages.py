"""Security headers of the server-rendered pages (the operator console, /console).

Set on every response under the prefix — pages, redirects, errors and static files
alike — by one pure-ASGI wrapper outside the routing, so no error path can lose them:
a CSP that allows only the console's own files (no inline script or style at all), no
framing, no MIME sniffing, no referrer (a console URL never leaves the browser), and
``no-store`` (an operator's pages stay out of shared and back-forward caches).
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

CONSOLE_PREFIX = "/console"
CSP = "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
PAGE_HEADERS: dict[str, str] = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-store",
}
_RAW = [(k.lower().encode(), v.encode()) for k, v in PAGE_HEADERS.items()]
_NAMES = {name for name, _ in _RAW}


def is_page_path(path: str) -> bool:
    return path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/")


class PageHeaders:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not is_page_path(scope["path"]):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [(k, v) for k, v in message.get("headers", []) if k.lower() not in _NAMES]
                message["headers"] = [*kept, *_RAW]
            await send(message)

        await self.app(scope, receive, send_with_headers)
