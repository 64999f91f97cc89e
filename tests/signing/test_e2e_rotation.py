"""Zero-downtime rotation across two real server processes (DESIGN §5)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import httpx
import jwt
import pytest

from tests.signing.e2e import (
    StrictJwksCache,
    admin_key,
    fetch_token,
    has_private_material,
    jwks_kids,
)
from tests.support.servers import REPO, Server, base_env

pytestmark = [
    pytest.mark.e2e, pytest.mark.postgres, pytest.mark.redis,
    # tests/support/servers.py leaves each server's log file open (reported to the lead).
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

ROTATIONS = 5


def fast_env(server_env: dict[str, str], max_age: str = "1") -> dict[str, str]:
    return {**server_env, "AUTHD_JWKS_MAX_AGE": max_age,
            "AUTHD_API_KEY_DEFAULT_RATE": "100000/s", "AUTHD_ISSUER": "https://authd.test"}


def key_states(server: Server) -> list[dict[str, str]]:
    listed: list[dict[str, str]] = json.loads(
        server.cli(["--json", "keys", "list"]).stdout)["keys"]
    return listed


def rotate_when_allowed(server: Server) -> None:
    """``authd keys rotate``, retried while it answers that the next key is too fresh."""
    while True:
        result = server.cli(["--json", "keys", "rotate"], check=False)
        if result.returncode == 0:
            return
        assert "rotation is possible from" in json.loads(result.stdout)["message"], result
        time.sleep(0.3)


@dataclass
class LoadRecord:
    failures: list[str] = field(default_factory=list)
    # kid -> monotonic time the first token signed with it was requested
    first_use: dict[str, float] = field(default_factory=dict)
    # kid -> monotonic time it was first seen in a JWKS response
    first_published: dict[str, float] = field(default_factory=dict)
    tokens: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def issue_and_verify(server: Server, api_key: str, cache: StrictJwksCache,
                     record: LoadRecord, stop: threading.Event) -> None:
    with httpx.Client(timeout=10) as client:
        while not stop.is_set():
            requested = time.monotonic()
            token = fetch_token(client, server, api_key)
            if token is None:
                time.sleep(0.01)
                continue
            kid = str(jwt.get_unverified_header(token)["kid"])
            try:
                cache.verify(client, token)
            except Exception as exc:
                with record.lock:
                    record.failures.append(f"{kid}: {type(exc).__name__}: {exc}")
            with record.lock:
                record.tokens += 1
                record.first_use.setdefault(kid, requested)


def watch_jwks(servers: list[Server], record: LoadRecord, stop: threading.Event) -> None:
    while not stop.is_set():
        for server in servers:
            seen = jwks_kids(server)
            now = time.monotonic()
            with record.lock:
                for kid in seen:
                    record.first_published.setdefault(kid, now)
        time.sleep(0.05)


def test_rotating_five_times_under_load_fails_no_verification(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """Two servers issue and a Cache-Control-honouring verifier checks every token while
    the CLI rotates five times: zero failures, and each kid was published before use."""
    env = fast_env(server_env)
    first = start_server(env)
    second = start_server(env, migrate_first=False)
    api_key = admin_key(first)
    record = LoadRecord()
    stop = threading.Event()
    caches = [StrictJwksCache(f"{s.base_url}/.well-known/jwks.json", env["AUTHD_ISSUER"])
              for s in (first, second)]
    for server in (first, second):
        record.first_published.update(dict.fromkeys(jwks_kids(server), time.monotonic()))
    workers = [threading.Thread(target=watch_jwks, args=([first, second], record, stop))]
    # Each server's tokens are verified against the other's JWKS, as a downstream
    # service behind a load balancer would.
    for server, cache in ((first, caches[1]), (second, caches[0])):
        workers.append(threading.Thread(
            target=issue_and_verify, args=(server, api_key, cache, record, stop)))
    for worker in workers:
        worker.start()
    try:
        time.sleep(1)
        for _ in range(ROTATIONS):
            rotate_when_allowed(first)
        time.sleep(1.5)
    finally:
        stop.set()
        for worker in workers:
            worker.join(timeout=30)
    assert record.failures == []
    assert len(record.first_use) >= ROTATIONS + 1
    for kid, used in record.first_use.items():
        assert record.first_published[kid] < used, kid
    for server in (first, second):
        assert not has_private_material(server.logs())


def test_kill_during_rotation_leaves_one_active_key(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """SIGKILL of the server and of the CLI in the middle of rotations, then a restart,
    leaves exactly one active key and a JWKS holding every kid that signed a live token."""
    env = fast_env(server_env, max_age="0")
    server = start_server(env)
    api_key = admin_key(server)
    signed: set[str] = set()
    with httpx.Client(timeout=10) as client:
        for attempt in range(4):
            for _ in range(3):
                token = fetch_token(client, server, api_key)
                assert token is not None
                signed.add(str(jwt.get_unverified_header(token)["kid"]))
            time.sleep(2.2)  # the next key is promotable (max-age 0 + propagation)
            # The admin rotation runs inside the server: kill it while in flight.
            request = threading.Thread(target=_post_quietly, args=(
                f"{server.base_url}/admin/keys/rotate", api_key))
            request.start()
            time.sleep(0.02 * attempt)
            server.stop(signal.SIGKILL)
            request.join()
            # And a CLI rotation killed part-way through.
            cli = subprocess.Popen([sys.executable, "-m", "service", "keys", "rotate"],
                                   env=base_env(env), cwd=REPO)
            time.sleep(0.6 + 0.15 * attempt)
            cli.kill()
            cli.wait()
            server.start()
            states = [k["state"] for k in key_states(server)]
            assert states.count("active") == 1, states
            assert signed <= jwks_kids(server)


def _post_quietly(url: str, api_key: str) -> None:
    try:
        httpx.post(url, headers={"X-API-Key": api_key}, timeout=5)
    except httpx.HTTPError:
        pass


def test_revoked_active_key_leaves_every_process_within_2s(
    server_env: dict[str, str], start_server: Callable[..., Server]
) -> None:
    """``keys revoke`` of the active key: gone from both JWKS within 2 s, a new key signs,
    and tokens of the revoked key no longer verify."""
    env = fast_env(server_env)
    first = start_server(env)
    second = start_server(env, migrate_first=False)
    api_key = admin_key(first)
    with httpx.Client(timeout=10) as client:
        old = fetch_token(client, first, api_key)
        assert old is not None
        old_kid = str(jwt.get_unverified_header(old)["kid"])
        bearer = {"Authorization": f"Bearer {old}"}
        assert client.get(f"{second.base_url}/admin/keys", headers=bearer).status_code == 200
        first.cli(["keys", "revoke", old_kid])
        deadline = time.monotonic() + 2.0
        pending = {first.base_url, second.base_url}
        while pending and time.monotonic() < deadline:
            for server in (first, second):
                if old_kid not in jwks_kids(server):
                    pending.discard(server.base_url)
            time.sleep(0.05)
        assert pending == set()
        for server in (first, second):
            new = fetch_token(client, server, api_key)
            assert new is not None
            assert jwt.get_unverified_header(new)["kid"] != old_kid
            response = client.get(f"{server.base_url}/admin/keys", headers=bearer)
            assert response.status_code == 401
            assert not has_private_material(response.text)
        states = {k["kid"]: k["state"] for k in key_states(first)}
        assert states[old_kid] == "revoked"
        assert list(states.values()).count("active") == 1
