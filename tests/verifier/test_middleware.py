"""BearerAuthMiddleware in a real Starlette app, spoken to over httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable

import httpx
import pytest
from authd_verifier import AsyncJWKSCache, AsyncVerifier, CachePolicy, Claims
from authd_verifier.middleware import CLAIMS_SCOPE_KEY, BearerAuthMiddleware, Message
from authd_verifier.testing import TokenMinter
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket

from .conftest import AUDIENCE, ISSUER
from .local_server import JWKS_PATH, JWKSRoute, LocalServer


async def whoami(request: Request) -> JSONResponse:
    claims: Claims = request.scope[CLAIMS_SCOPE_KEY]
    return JSONResponse({"sub": claims.subject, "scopes": sorted(claims.scopes)})


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def socket(websocket: WebSocket) -> None:
    await websocket.accept()
    await websocket.send_text(websocket.scope[CLAIMS_SCOPE_KEY].subject)
    await websocket.close()


def build_app(
    verifier: AsyncVerifier, *, require_scopes: Iterable[str] = (), require_mfa: bool = False
) -> Starlette:
    app = Starlette(
        routes=[
            Route("/whoami", whoami),
            Route("/healthz", healthz),
            WebSocketRoute("/ws", socket),
        ]
    )
    app.add_middleware(
        BearerAuthMiddleware,
        verifier=verifier,
        exempt_paths=["/healthz"],
        require_scopes=require_scopes,
        require_mfa=require_mfa,
    )
    return app


@pytest.fixture
async def client(minter: TokenMinter) -> AsyncIterator[httpx.AsyncClient]:
    """A client for an app requiring orders:read."""
    app = build_app(minter.async_verifier(), require_scopes=["orders:read"])
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders.test") as http:
        yield http


async def test_valid_token_reaches_the_app_with_claims(
    client: httpx.AsyncClient, minter: TokenMinter
) -> None:
    """A valid bearer token reaches the endpoint, which reads claims from the scope."""
    token = minter.mint(subject="alice", scope="orders:read")
    response = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 200
    assert response.json() == {"sub": "alice", "scopes": ["orders:read"]}


async def test_missing_credentials_get_a_bare_challenge(client: httpx.AsyncClient) -> None:
    """No Authorization header: 401 with a Bearer challenge and no error code (RFC 6750 §3.1)."""
    response = await client.get("/whoami")
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == 'Bearer realm="api"'


async def test_invalid_token_gets_invalid_token(
    client: httpx.AsyncClient, minter: TokenMinter
) -> None:
    """A bad token: 401, error="invalid_token", and a small JSON body."""
    token = minter.mint(scope="orders:read", aud="billing")
    response = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="api", error="invalid_token"')
    assert response.json()["error"] == "invalid_token"
    assert token not in response.text
    assert response.headers["cache-control"] == "no-store"


async def test_expired_token_gets_invalid_token(
    client: httpx.AsyncClient, minter: TokenMinter
) -> None:
    """An expired token: 401 invalid_token with the expiry described."""
    token = minter.mint(scope="orders:read", iat=1, nbf=1, exp=2)
    response = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


async def test_missing_scope_gets_insufficient_scope(
    client: httpx.AsyncClient, minter: TokenMinter
) -> None:
    """A valid token lacking the required scope: 403, error="insufficient_scope", scope listed."""
    token = minter.mint(scope="billing:read")
    response = await client.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 403
    challenge = response.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge
    assert 'scope="orders:read"' in challenge
    assert response.json()["error"] == "insufficient_scope"


@pytest.mark.parametrize(
    "authorization", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer a b", "Bearertoken", "Bearer é"]
)
async def test_malformed_authorization_gets_invalid_request(
    client: httpx.AsyncClient, authorization: str
) -> None:
    """An Authorization header that is not 'Bearer <token68>' gets 400 invalid_request."""
    response = await client.get(
        "/whoami", headers=[(b"Authorization", authorization.encode("utf-8"))]
    )
    assert response.status_code == 400
    assert 'error="invalid_request"' in response.headers["www-authenticate"]


async def test_bearer_scheme_is_case_insensitive(
    client: httpx.AsyncClient, minter: TokenMinter
) -> None:
    """'bearer' in lower case is accepted (RFC 9110 §11.1: schemes are case-insensitive)."""
    token = minter.mint(scope="orders:read")
    response = await client.get("/whoami", headers={"Authorization": f"bearer {token}"})
    assert response.status_code == 200


async def test_two_authorization_headers_are_refused(
    client: httpx.AsyncClient, minter: TokenMinter
) -> None:
    """Two Authorization headers are ambiguous and get 400 invalid_request."""
    token = minter.mint(scope="orders:read")
    response = await client.get(
        "/whoami",
        headers=[("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")],
    )
    assert response.status_code == 400


async def test_exempt_path_needs_no_token(client: httpx.AsyncClient) -> None:
    """Exempt paths such as /healthz pass through unauthenticated."""
    response = await client.get("/healthz")
    assert response.status_code == 200


async def test_unreachable_authd_gets_503(server: LocalServer, minter: TokenMinter) -> None:
    """When no key set can be had, the middleware answers 503, not 401."""
    route = JWKSRoute(minter.jwks())
    route.status = 503
    server.routes[JWKS_PATH] = route
    cache = AsyncJWKSCache(server.url + JWKS_PATH, policy=CachePolicy())
    verifier = AsyncVerifier(keys=cache, issuer=ISSUER, audience=AUDIENCE)
    transport = httpx.ASGITransport(app=build_app(verifier))
    async with httpx.AsyncClient(transport=transport, base_url="http://orders.test") as http:
        token = minter.mint()
        response = await http.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    await verifier.aclose()
    assert response.status_code == 503
    assert "www-authenticate" not in response.headers


async def test_mfa_required_gets_insufficient_user_authentication(minter: TokenMinter) -> None:
    """With require_mfa, a password-only token gets 401 insufficient_user_authentication."""
    app = build_app(minter.async_verifier(), require_mfa=True)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://orders.test") as http:
        token = minter.mint(amr=["pwd"])
        response = await http.get("/whoami", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401
    assert 'error="insufficient_user_authentication"' in response.headers["www-authenticate"]


async def run_websocket(app: Starlette, headers: list[tuple[bytes, bytes]]) -> list[Message]:
    """Drive one WebSocket connection through the ASGI interface and return what was sent."""
    incoming: list[Message] = [{"type": "websocket.connect"}]
    sent: list[Message] = []

    async def receive() -> Message:
        if incoming:
            return incoming.pop(0)
        return {"type": "websocket.disconnect", "code": 1000}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "websocket",
        "asgi": {"version": "3.0"},
        "scheme": "ws",
        "path": "/ws",
        "raw_path": b"/ws",
        "query_string": b"",
        "root_path": "",
        "headers": headers,
        "client": ("127.0.0.1", 5000),
        "server": ("orders.test", 80),
        "subprotocols": [],
    }
    await app(scope, receive, send)
    return sent


async def test_websocket_with_valid_token_is_accepted(minter: TokenMinter) -> None:
    """A WebSocket handshake with a valid token reaches the endpoint with claims."""
    app = build_app(minter.async_verifier())
    token = minter.mint(subject="ws-user")
    sent = await run_websocket(app, [(b"authorization", f"Bearer {token}".encode())])
    assert [message["type"] for message in sent[:2]] == ["websocket.accept", "websocket.send"]
    assert sent[1]["text"] == "ws-user"


async def test_websocket_without_token_is_closed(minter: TokenMinter) -> None:
    """A WebSocket handshake without a token is refused with close code 1008."""
    sent = await run_websocket(build_app(minter.async_verifier()), [])
    assert sent == [{"type": "websocket.close", "code": 1008, "reason": ""}]
