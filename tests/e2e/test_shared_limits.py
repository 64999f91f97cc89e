"""Failed-attempt budgets are one per caller, whichever domain counts against them."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from tests.support.servers import Server

pytestmark = pytest.mark.e2e


def test_failed_mfa_steps_and_failed_logins_share_the_address_budget_without_redis(
    start_server: Callable[..., Server], embedded_env: dict[str, str]
) -> None:
    """In-process (no Redis), bad MFA tickets spend the budget a password login then hits."""
    server = start_server({**embedded_env, "AUTHD_FAILED_AUTH_RATE": "3/m"})
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        refused = [
            client.post("/v1/login/mfa", json={"mfa_ticket": "mt_" + "x" * 43,
                                               "code": "123456"}).status_code
            for _ in range(3)
        ]
        assert 429 not in refused, refused
        login = client.post("/v1/login", json={"email": "someone@example.com",
                                               "password": "wrong-password"})
    assert login.status_code == 429
    assert int(login.headers["retry-after"]) >= 1


def test_failed_api_key_exchanges_and_failed_logins_share_the_address_budget(
    start_server: Callable[..., Server], embedded_env: dict[str, str]
) -> None:
    """Unknown API keys spend the budget a password login then hits, and the other way
    round: one AUTHD_FAILED_AUTH_RATE per client IP, not one per domain."""
    server = start_server({**embedded_env, "AUTHD_FAILED_AUTH_RATE": "3/m"})
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        refused = [
            client.post("/v1/token", headers={"X-API-Key": "ak_live_" + "x" * 40}).status_code
            for _ in range(2)
        ]
        assert refused == [401, 401], refused
        login = client.post("/v1/login", json={"email": "someone@example.com",
                                               "password": "wrong-password"})
        assert login.status_code == 401, login.text
        exchange = client.post("/v1/token", headers={"X-API-Key": "ak_live_" + "x" * 40})
        login = client.post("/v1/login", json={"email": "someone@example.com",
                                               "password": "wrong-password"})
    assert exchange.status_code == 429, exchange.text
    assert int(exchange.headers["retry-after"]) >= 1
    assert login.status_code == 429
