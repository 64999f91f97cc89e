"""``AUTHD_ADMIN_LISTEN``: the admin API and the console on a listener of their own.

When it is set, ``authd serve`` binds a second socket (in every worker) and this
wrapper splits the surface by the socket a request arrived on (``scope["server"]``,
the local address): the public port answers 404 for ``/admin/*`` and ``/console``,
the admin port answers only those (and ``/healthz``, ``/readyz`` for its own probes).
So the public port can face the internet while the admin port stays on a private
network, as Hydra separates its admin port. Unset, one port serves everything.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

from service.errors import NotFound
from service.http.errors import error_response

ADMIN_PREFIXES = ("/admin/", "/console/")
ADMIN_PATHS = ("/admin", "/console")
PROBES = ("/healthz", "/readyz")


def is_admin_path(path: str) -> bool:
    return path in ADMIN_PATHS or path.startswith(ADMIN_PREFIXES)


def split_listeners(app: ASGIApp, *, admin_port: int | None) -> ASGIApp:
    """``app`` unchanged without an admin listener, else wrapped by the split."""
    return app if admin_port is None else _ListenerSplit(app, admin_port)


class _ListenerSplit:
    def __init__(self, app: ASGIApp, admin_port: int) -> None:
        self.app = app
        self.admin_port = admin_port

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            server = scope.get("server")
            on_admin = server is not None and server[1] == self.admin_port
            path = scope["path"]
            allowed = (is_admin_path(path) or path in PROBES) if on_admin else \
                not is_admin_path(path)
            if not allowed:
                response = error_response(NotFound("no such resource on this listener"), path)
                await response(scope, receive, send)
                return
        await self.app(scope, receive, send)
