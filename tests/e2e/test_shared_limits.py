"""Failed-attempt budgets are one per caller, whichever domain counts against them."""

from __future__ import annotations

from collections.abc import Callable

import httpx

from tests.support.servers import Server


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
