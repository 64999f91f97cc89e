"""Driving MFA against a real server: a signed-in user, TOTP enrolment with codes
computed from the returned secret (pyotp, as an authenticator app would), logins."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import jwt
import pyotp

from tests.sessions.helpers import PASSWORD, create_user, login
from tests.support.servers import Server


@dataclass
class Enrolled:
    """A user with TOTP; ``next_code()`` gives a code for a step not used yet (the
    server accepts one step of drift ahead, so no test ever waits for the clock)."""

    user_id: str
    email: str
    secret: str
    recovery_codes: list[str]
    used_steps: list[int] = field(default_factory=list)
    codes_seen: list[str] = field(default_factory=list)

    def code_for_step(self, step: int) -> str:
        code = str(pyotp.TOTP(self.secret).generate_otp(step))
        self.codes_seen.append(code)
        return code

    def next_code(self) -> str:
        """A code for the earliest step not yet used that the server accepts now
        (waits for the clock only when both the current and the next step are used)."""
        step = int(time.time() // 30)
        if self.used_steps:
            step = max(step, self.used_steps[-1] + 1)
        while step > int(time.time() // 30) + 1:
            time.sleep(0.5)
        self.used_steps.append(step)
        return self.code_for_step(step)

    def last_code(self) -> str:
        return self.code_for_step(self.used_steps[-1])


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def enrol(server: Server, client: httpx.Client, email: str) -> Enrolled:
    created = create_user(server, email)
    access = login(client, email)["access_token"]
    started = client.post("/v1/mfa/totp/enroll", headers=bearer(access))
    assert started.status_code == 200, started.text
    body = started.json()
    assert body["otpauth_uri"].startswith("otpauth://totp/")
    enrolled = Enrolled(created["id"], email, body["secret"], [])
    confirmed = client.post("/v1/mfa/totp/verify", headers=bearer(access),
                            json={"code": enrolled.next_code()})
    assert confirmed.status_code == 200, confirmed.text
    enrolled.recovery_codes = confirmed.json()["recovery_codes"]
    return enrolled


def password_step(client: httpx.Client, email: str, **kw: Any) -> httpx.Response:
    return client.post("/v1/login", json={"email": email, "password": PASSWORD}, **kw)


def ticket_of(response: httpx.Response) -> str:
    assert response.status_code == 401, response.text
    body = response.json()
    assert body["type"].endswith(":mfa_required") and "access_token" not in body
    return str(body["mfa_ticket"])


def second_step(client: httpx.Client, ticket: str, **answer: str) -> httpx.Response:
    return client.post("/v1/login/mfa", json={"mfa_ticket": ticket, **answer})


def claims(access_token: str) -> dict[str, Any]:
    """The token's claims (the signature is the verifier's business, tested there)."""
    decoded: dict[str, Any] = jwt.decode(access_token, options={"verify_signature": False})
    return decoded
