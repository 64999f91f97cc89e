"""Failed-attempt budgets per caller address: password logins and MFA steps share one,
API keys have their own, and neither spends the other (DESIGN §2)."""

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
    server = start_server({**embedded_env, "AUTHD_FAILED_LOGIN_RATE": "3/m"})
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


def test_failed_api_key_exchanges_and_failed_logins_spend_separate_budgets(
    start_server: Callable[..., Server], embedded_env: dict[str, str]
) -> None:
    """In-process, unknown API keys exhaust only the API-key budget and wrong passwords
    only the login budget: a user mistyping a password never blocks the services at
    the same address, nor a broken cron job the users."""
    server = start_server({**embedded_env, "AUTHD_FAILED_API_KEY_RATE": "3/m",
                           "AUTHD_FAILED_LOGIN_RATE": "3/m"})
    unknown = {"X-API-Key": "ak_live_" + "x" * 40}
    wrong_login = {"email": "someone@example.com", "password": "wrong-password"}
    with httpx.Client(base_url=server.base_url, timeout=30) as client:
        keys = [client.post("/v1/token", headers=unknown).status_code for _ in range(4)]
        login_after_keys = client.post("/v1/login", json=wrong_login).status_code
        logins = [client.post("/v1/login", json=wrong_login).status_code for _ in range(3)]
    assert keys == [401, 401, 401, 429], keys
    assert login_after_keys == 401
    assert logins == [401, 401, 429], logins
