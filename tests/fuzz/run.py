"""``make fuzz``: schemathesis against a live authd, driven by /openapi.json.

Starts the real server on a fresh PostgreSQL database and Redis prefix (the same
production shape as the end-to-end tests), creates an admin API key with ``authd
bootstrap`` so the admin operations are exercised past authentication, runs
schemathesis with a bounded number of examples per operation, and fails when any
response is a 5xx or does not match the document (status code, content type,
headers, body schema). Only 127.0.0.1 is targeted.

    python -m tests.fuzz.run [--max-examples N] [--seed N] [-- extra schemathesis args]

``SCHEMATHESIS`` names the executable (default: ``schemathesis`` next to this
interpreter, i.e. the project's virtualenv).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx
import pyotp

from tests.sessions.helpers import api_key_with_scope
from tests.support.databases import REDIS_URL, RUN_ID, create_database, drop_run_databases
from tests.support.servers import Server, free_port, new_kek

# Operations that can switch off the fuzzer's own admin credential (disable its
# client, revoke or rotate its key): they run in a second pass, after everything else
# has been exercised with a working credential.
SELF_LOCKING = r"^/admin/(clients/[^/]+/disable|apikeys/[^/]+/(revoke|rotate))$"
# The signed-in user's own MFA endpoints take a user's login access token, not the
# admin key: they run in their own pass, first, with a user enrolled in TOTP (the
# admin pass revokes signing keys, which invalidates the user's token).
USER_MFA = r"^/v1/mfa(/|$)"
# RFC 7662 introspection wants a caller holding authd:introspect, which the admin
# key does not: it gets its own pass with such a key.
INTROSPECT = r"^/oauth/introspect$"
CHECKS = ",".join((
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
))


def schemathesis_executable() -> str:
    named = os.environ.get("SCHEMATHESIS")
    beside = Path(sys.executable).parent / "schemathesis"
    found = named or (str(beside) if beside.exists() else shutil.which("schemathesis"))
    if not found:
        sys.exit("fuzz: schemathesis is not installed (it is a dev dependency: make install)")
    return found


def enrolled_user_token(base_url: str, admin_key: str) -> str:
    """A login access token of a fresh user with an active TOTP enrolment, so that
    the /v1/mfa operations are exercised past authentication and enrolment."""
    email, password = f"fuzz-{secrets.token_hex(4)}@example.com", secrets.token_urlsafe(16)
    with httpx.Client(base_url=base_url, timeout=10) as http:
        http.post("/admin/users", json={"email": email, "password": password},
                  headers={"X-API-Key": admin_key}).raise_for_status()
        login = http.post("/v1/login", json={"email": email, "password": password})
        login.raise_for_status()
        bearer = {"Authorization": f"Bearer {login.json()['access_token']}"}
        enrolment = http.post("/v1/mfa/totp/enroll", headers=bearer)
        enrolment.raise_for_status()
        code = pyotp.TOTP(enrolment.json()["secret"]).now()
        http.post("/v1/mfa/totp/verify", json={"code": code}, headers=bearer
                  ).raise_for_status()
    return str(login.json()["access_token"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--max-examples", type=int, default=30,
                        help="examples per API operation (default 30)")
    parser.add_argument("--seed", type=int, default=None, help="reproduce a run")
    parser.add_argument("extra", nargs="*", help="passed to schemathesis run")
    args = parser.parse_args(argv)
    executable = schemathesis_executable()

    database_url = asyncio.run(create_database("fuzz"))
    workdir = Path(tempfile.mkdtemp(prefix="authd-fuzz-"))
    env = {
        "AUTHD_DATABASE_URL": database_url,
        "AUTHD_REDIS_URL": REDIS_URL,
        "AUTHD_REDIS_PREFIX": f"authd-fuzz:{RUN_ID}:",
        "AUTHD_KEK": new_kek(),
        # The fuzzer sends thousands of failing credentials from one address.
        "AUTHD_FAILED_LOGIN_RATE": "100000/m",
        "AUTHD_FAILED_API_KEY_RATE": "100000/m",
        "AUTHD_API_KEY_DEFAULT_RATE": "100000/m",
        # The MFA pass's user token must outlive a long run.
        "AUTHD_ACCESS_TOKEN_TTL": "86400",
        # Every request passes the CORS dispatcher, as in a deployment with a SPA.
        "AUTHD_CORS_ORIGINS": "https://app.example.com",
    }
    server = Server(env=env, port=free_port(), log_path=workdir / "server.log")
    try:
        server.cli(["migrate"])
        admin = json.loads(server.cli(["--json", "bootstrap"]).stdout)
        server.start()
        server.wait_ready()
        user_token = enrolled_user_token(server.base_url, admin["api_key"])
        introspect_key = api_key_with_scope(server, "fuzz-introspector", "authd:introspect")
        common = [
            executable, "run", f"{server.base_url}/openapi.json",
            "--checks", CHECKS,
            "--max-examples", str(args.max_examples),
            "--request-timeout", "10",
            # One worker: schemathesis 4.32 crashed inside itself (an AST recursion
            # error) once in six runs with two.
            "--workers", "1",
            "--no-color",
            *(["--seed", str(args.seed)] if args.seed is not None else []),
            *args.extra,
        ]
        admin_header = ["--header", f"X-API-Key: {admin['api_key']}"]
        passes = [  # the user's pass first: the admin pass revokes signing keys
            ["--header", f"Authorization: Bearer {user_token}",
             "--include-path-regex", USER_MFA],
            ["--header", f"X-API-Key: {introspect_key}", "--include-path-regex", INTROSPECT],
            [*admin_header,
             "--exclude-path-regex", f"{SELF_LOCKING}|{USER_MFA}|{INTROSPECT}"],
            [*admin_header, "--include-path-regex", SELF_LOCKING],
        ]
        secrets_shown = (admin["api_key"], user_token, introspect_key)
        failed = 0
        for selection in passes:
            command = [*common, *selection]
            shown = [p if not any(x in p for x in secrets_shown) else p.split(":")[0] + ": ****"
                     for p in command]
            print("fuzz:", " ".join(shown), flush=True)
            failed += subprocess.run(command, check=False, cwd=workdir).returncode != 0
        crashed = [line for line in server.logs().splitlines() if "request.crashed" in line]
        if crashed:
            print(f"fuzz: the server logged {len(crashed)} crash(es); first:\n{crashed[0]}")
            return 1
        return 1 if failed else 0
    finally:
        server.stop()
        asyncio.run(drop_run_databases())
        print(f"fuzz: server log kept at {workdir / 'server.log'}")


if __name__ == "__main__":
    sys.exit(main())
