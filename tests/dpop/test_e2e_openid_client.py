"""Interop: node openid-client (a standard client with DPoP support), unmodified,
against a real authd and a real resource service guarded by authd-verifier's
DPoPAuthMiddleware (uvicorn on a loopback port)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import pytest
import uvicorn
from authd_verifier import AsyncVerifier, DPoPVerifier
from authd_verifier.dpop_middleware import CLAIMS_SCOPE_KEY, DPoPAuthMiddleware
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.support.node import run_script
from tests.support.servers import free_port
from tests.support.service_to_service import authd, claims_of, new_client
from tests.verifier.e2e_support import AUDIENCE, PYTEST_MARKS, Authd

__all__ = ["authd"]
pytestmark = PYTEST_MARKS


async def orders(request: Request) -> JSONResponse:
    claims = request.scope[CLAIMS_SCOPE_KEY]
    return JSONResponse({"sub": claims.subject, "jkt": claims.dpop_thumbprint})


@pytest.fixture
async def resource_url(authd: Authd) -> AsyncIterator[str]:
    """http://127.0.0.1:PORT/orders: Starlette behind DPoPAuthMiddleware, served by uvicorn."""
    verifier = AsyncVerifier.for_issuer(authd.issuer, AUDIENCE)
    app = Starlette(routes=[Route("/orders", orders)])
    app.add_middleware(DPoPAuthMiddleware, verifier=verifier, dpop=DPoPVerifier())
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    for _ in range(400):  # uvicorn offers no event to await; a bounded wait
        if server.started:
            break
        await asyncio.sleep(0.05)
    assert server.started, "the resource service did not start"
    yield f"http://127.0.0.1:{port}/orders"
    server.should_exit = True
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await verifier.aclose()


async def test_openid_client_gets_uses_and_exchanges_a_dpop_bound_token(
    authd: Authd, resource_url: str
) -> None:
    """openid-client generates its key, gets a bound token, calls the resource with
    proofs, and exchanges the bound token for another audience with its key."""
    client_id, secret = new_client(authd, "orders:read", "--exchange-audience", "svc-b")
    seen = await asyncio.to_thread(run_script, "openid_client_dpop.mjs", authd.issuer,
                                   client_id, secret, resource_url, "svc-b")
    assert "ES256" in seen["metadata_algs"]
    assert seen["token_type"].lower() == "dpop"
    jkt = claims_of(seen["access_token"])["cnf"]["jkt"]
    assert seen["resource_status"] == 200
    assert seen["resource"] == {"sub": client_id, "jkt": jkt}
    assert seen["exchanged_token_type"].lower() == "dpop"
    assert seen["issued_token_type"] == "urn:ietf:params:oauth:token-type:access_token"
    exchanged = claims_of(seen["exchanged_token"])
    assert exchanged["aud"] == "svc-b" and exchanged["act"] == {"sub": client_id}
    assert exchanged["cnf"]["jkt"] == jkt
