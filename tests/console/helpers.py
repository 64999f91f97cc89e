"""Speaking to the console as a browser would, with httpx, against a real server.

httpx keeps ``Secure`` cookies off plain http, so the ``__Host-`` session cookie is
carried by hand (chromium keeps it on ``http://127.0.0.1``: the browser tests use the
real thing). Codes come from the TOTP secret as an authenticator app's would.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import httpx

from tests.mfa.helpers import Enrolled, enrol
from tests.sessions.helpers import PASSWORD, create_user
from tests.support.servers import Server

COOKIE = "__Host-authd_console"
_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
_SECRET = re.compile(r'<code class="secret" id="totp-secret">([A-Z2-7]+)</code>')


def operator(server: Server, email: str) -> Enrolled:
    """A user with TOTP enrolled (through the MFA API) and the admin role (CLI)."""
    with httpx.Client(base_url=server.base_url) as client:
        enrolled = enrol(server, client, email)
    server.cli(["users", "grant-admin", email])
    return enrolled


def operator_without_mfa(server: Server, email: str) -> str:
    user_id = str(create_user(server, email)["id"])
    server.cli(["users", "grant-admin", email])
    return user_id


def csrf_of(page: httpx.Response) -> str:
    found = _CSRF.search(page.text)
    assert found, f"no CSRF token in the page: {page.status_code} {page.text[:300]}"
    return found.group(1)


def secret_of(page: httpx.Response) -> str:
    found = _SECRET.search(page.text)
    assert found, page.text[:500]
    return found.group(1)


@dataclass
class ConsoleClient:
    server: Server
    session_id: str | None = None
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.server.base_url, follow_redirects=False)

    def close(self) -> None:
        self.http.close()

    def _headers(self) -> dict[str, str]:
        return {"Cookie": f"{COOKIE}={self.session_id}"} if self.session_id else {}

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path, headers=self._headers())

    def post(self, path: str, data: dict[str, str], **headers: str) -> httpx.Response:
        return self.http.post(path, data=data, headers={**self._headers(), **headers})

    def post_form(self, page: str, action: str, data: dict[str, str] | None = None
                  ) -> httpx.Response:
        """POST ``action`` with the CSRF token read from ``page``, as its form would."""
        token = csrf_of(self.get(page))
        return self.post(action, {"csrf": token, **(data or {})})

    def password(self, email: str, password: str = PASSWORD) -> httpx.Response:
        response = self.post("/console/login", {"email": email, "password": password})
        cookie = response.cookies.get(COOKIE)
        if cookie is not None:
            self.session_id = cookie
        return response

    def sign_in(self, who: Enrolled) -> None:
        first = self.password(who.email)
        assert first.status_code == 303, first.text
        assert first.headers["location"] == "/console/login/code"
        done = self.post_form("/console/login/code", "/console/login/code",
                              {"code": who.next_code()})
        assert done.status_code == 303 and done.headers["location"] == "/console", done.text
