"""CachePolicy.lifetime: max-age, no-cache / no-store and Age (RFC 9111), within the bounds."""

from __future__ import annotations

import pytest
from authd_verifier import CachePolicy

#: No floor, so what the headers say is visible unclamped.
UNBOUNDED = CachePolicy(min_ttl=0, default_ttl=300, max_ttl=86_400)


@pytest.mark.parametrize(
    "cache_control",
    ["no-cache", "no-store", "public, no-cache", "No-Store, max-age=600", 'no-cache="set-cookie"'],
)
def test_no_cache_and_no_store_mean_no_freshness(cache_control: str) -> None:
    """no-cache or no-store (any case, with or without max-age or a field list) gives 0 s."""
    assert UNBOUNDED.lifetime({"cache-control": cache_control}) == 0.0


def test_no_cache_is_raised_to_the_floor() -> None:
    """With the default floor, no-cache cannot make every lookup fetch: it lasts min_ttl."""
    policy = CachePolicy(min_ttl=30)
    assert policy.lifetime({"cache-control": "no-cache"}) == 30.0


def test_similar_directive_names_are_not_no_cache() -> None:
    """A directive that merely starts with no-cache is not no-cache; max-age applies."""
    assert UNBOUNDED.lifetime({"cache-control": "no-cache-please, max-age=120"}) == 120.0


def test_age_is_subtracted_from_max_age() -> None:
    """A response that waited 100 s in a shared cache has 100 s less to live (RFC 9111 §4.2.3)."""
    assert UNBOUNDED.lifetime({"cache-control": "max-age=300", "age": "100"}) == 200.0


def test_age_beyond_max_age_falls_to_the_floor() -> None:
    """An already stale response is fresh for min_ttl, not for a negative time."""
    policy = CachePolicy(min_ttl=30)
    assert policy.lifetime({"cache-control": "max-age=300", "age": "1000"}) == 30.0
    assert UNBOUNDED.lifetime({"cache-control": "max-age=300", "age": "1000"}) == 0.0


@pytest.mark.parametrize("age", ["-50", "1.5", "ten", "", "12345678901"])
def test_invalid_age_is_ignored(age: str) -> None:
    """An Age that is not a plain, bounded count of seconds counts as 0."""
    assert UNBOUNDED.lifetime({"cache-control": "max-age=300", "age": age}) == 300.0


def test_age_without_max_age_does_not_shorten_the_default() -> None:
    """Age only adjusts an explicit max-age; the default lifetime is the operator's choice."""
    assert UNBOUNDED.lifetime({"age": "100"}) == 300.0
