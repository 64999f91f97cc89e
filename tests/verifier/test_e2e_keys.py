"""Signing-key changes at a real authd as a downstream verifier sees them: five
rotations under continuous load, and the emergency revocation of the active key."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

import jwt
import pytest
from authd_verifier import CachePolicy, JWKSCache, UnknownKey, Verifier, jwks_url

from tests.verifier.e2e_support import AUDIENCE, PYTEST_MARKS, Authd, StartAuthd, start_authd

__all__ = ["start_authd"]
pytestmark = PYTEST_MARKS

ROTATIONS = 5
#: authd's JWKS max-age in these tests: short, so a new next key matures in seconds.
MAX_AGE = "1"
#: A verifier that honours a 1 s max-age (the default floor of 30 s and refetch
#: interval of 10 s suit production lifetimes, not a test that rotates every 3 s).
FAST_POLICY = CachePolicy(min_ttl=1, default_ttl=1, refetch_interval=0.5)


def kid_of(token: str) -> str:
    return str(jwt.get_unverified_header(token)["kid"])


@dataclass
class Load:
    """What the issue-and-verify loop saw."""

    verified: int = 0
    kids: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)


def issue_and_verify(authd: Authd, api_key: str, verifier: Verifier, load: Load,
                     stop: threading.Event) -> None:
    while not stop.is_set():
        token = authd.v1_token(api_key)
        kid = kid_of(token)
        try:
            verifier.verify(token, require_scopes={"orders:read"})
        except Exception as error:  # any failure at all is what the test counts
            load.failures.append(f"{kid}: {type(error).__name__}: {error}")
        load.verified += 1
        if not load.kids or load.kids[-1] != kid:
            load.kids.append(kid)


def test_five_rotations_under_continuous_verification_fail_nothing(
    start_authd: StartAuthd,
) -> None:
    """While ``authd keys rotate`` runs five times, every token issued is verified by a
    ``Verifier.for_issuer`` honouring the JWKS max-age: zero failures over six keys."""
    authd = start_authd(AUTHD_JWKS_MAX_AGE=MAX_AGE)
    _, api_key = authd.service_client("orders:read")
    load, stop = Load(), threading.Event()
    with Verifier.for_issuer(authd.issuer, AUDIENCE, policy=FAST_POLICY) as verifier:
        worker = threading.Thread(target=issue_and_verify,
                                  args=(authd, api_key, verifier, load, stop))
        worker.start()
        try:
            for _ in range(ROTATIONS):
                authd.rotate()
            time.sleep(1.0)  # tokens of the last key are verified too
        finally:
            stop.set()
            worker.join(timeout=30)
    assert load.failures == []
    assert len(load.kids) == ROTATIONS + 1 and len(set(load.kids)) == ROTATIONS + 1
    assert load.verified > 10 * (ROTATIONS + 1)


def test_revoked_active_key_is_refused_after_the_next_refresh(start_authd: StartAuthd) -> None:
    """Once ``authd keys revoke`` of the active key has taken it out of the JWKS, the
    verifier's next refresh drops it: tokens it signed raise UnknownKey, the new key's
    tokens verify."""
    authd = start_authd(AUTHD_JWKS_MAX_AGE=MAX_AGE)
    _, api_key = authd.service_client("orders:read")
    cache = JWKSCache(jwks_url(authd.issuer), policy=FAST_POLICY)
    with Verifier(keys=cache, issuer=authd.issuer, audience=AUDIENCE) as verifier:
        old = authd.v1_token(api_key)
        verifier.verify(old)
        authd.cli_json("keys", "revoke", kid_of(old))
        deadline = time.monotonic() + 10
        while kid_of(old) in authd.jwks_kids():
            assert time.monotonic() < deadline, "the revoked key stayed in the JWKS"
            time.sleep(0.1)
        new = authd.v1_token(api_key)
        assert kid_of(new) != kid_of(old)
        # The cached key set is due for its refresh (max-age 1 s has passed); the next
        # lookup starts it in the background.
        while time.monotonic() < cache.snapshot.expires_at:
            time.sleep(0.05)
        fetches = cache.fetch_count
        verifier.verify(new)
        cache.wait_for_refresh(timeout=10)
        assert cache.fetch_count == fetches + 1
        with pytest.raises(UnknownKey):
            verifier.verify(old)
        assert verifier.verify(new).token_id
