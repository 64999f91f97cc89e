"""Fixtures for the verifier's tests: a real local JWKS server, minters, a clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from authd_verifier.testing import TokenMinter

from .local_server import JWKS_PATH, JWKSRoute, LocalServer, ManualClock

ISSUER = "https://authd.test"
AUDIENCE = "orders"


@pytest.fixture(scope="session")
def minter() -> TokenMinter:
    """A minter for the trusted issuer and audience, shared: key generation is slow."""
    return TokenMinter(issuer=ISSUER, audience=AUDIENCE, kid="key-2026-01")


@pytest.fixture(scope="session")
def other_minter() -> TokenMinter:
    """A second key for the same issuer (rotation) or an attacker's key."""
    return TokenMinter(issuer=ISSUER, audience=AUDIENCE, kid="key-2026-02")


@pytest.fixture
def server() -> Iterator[LocalServer]:
    """A real HTTP server on 127.0.0.1, stopped after the test."""
    local = LocalServer().start()
    yield local
    local.stop()


@pytest.fixture
def jwks_route(server: LocalServer, minter: TokenMinter) -> JWKSRoute:
    """The server publishes the minter's key at the JWKS path."""
    route = JWKSRoute(minter.jwks())
    server.routes[JWKS_PATH] = route
    return route


@pytest.fixture
def clock() -> ManualClock:
    """A monotonic clock moved by hand."""
    return ManualClock()
