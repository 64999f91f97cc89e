"""Delegation chains (RFC 8693 act) in the verifier: claims.actors and DelegationPolicy."""

from __future__ import annotations

from typing import Any

import pytest
from authd_verifier import Claims, DelegationPolicy, DelegationRefused, MalformedToken

FIRST_HAND: dict[str, Any] = {"sub": "user-1"}
DELEGATED: dict[str, Any] = {"sub": "user-1", "act": {"sub": "svc-b", "act": {"sub": "svc-a"}}}


def test_actors_lists_the_chain_most_recent_first() -> None:
    """claims.actors is the act chain, the current actor first."""
    assert Claims(DELEGATED).actors == ("svc-b", "svc-a")


def test_a_first_hand_token_has_no_actors() -> None:
    """A token without act has an empty chain."""
    assert Claims(FIRST_HAND).actors == ()


def test_a_malformed_act_is_refused() -> None:
    """act without a string sub is malformed."""
    with pytest.raises(MalformedToken):
        _ = Claims({"sub": "u", "act": {"sub": 5}}).actors


def test_a_chain_too_deep_is_refused() -> None:
    """A chain deeper than the library's bound is malformed."""
    act: dict[str, Any] = {"sub": "s0"}
    for i in range(1, 12):
        act = {"sub": f"s{i}", "act": act}
    with pytest.raises(MalformedToken):
        _ = Claims({"sub": "u", "act": act}).actors


def test_requiring_delegation_refuses_a_first_hand_token() -> None:
    """delegated=True refuses a token without act."""
    with pytest.raises(DelegationRefused):
        DelegationPolicy(delegated=True).check(FIRST_HAND)


def test_refusing_delegation_refuses_an_exchanged_token() -> None:
    """delegated=False refuses a token with act."""
    with pytest.raises(DelegationRefused):
        DelegationPolicy(delegated=False).check(DELEGATED)


def test_allowed_actors_admit_only_the_named_acting_client() -> None:
    """actors= limits the direct actor (the chain's first entry)."""
    assert DelegationPolicy(actors={"svc-b"}).check(DELEGATED) == ("svc-b", "svc-a")
    with pytest.raises(DelegationRefused):
        DelegationPolicy(actors={"svc-a"}).check(DELEGATED)


def test_the_default_policy_accepts_both_kinds() -> None:
    """Without options, first-hand and delegated tokens both pass."""
    policy = DelegationPolicy()
    assert policy.check(FIRST_HAND) == () and policy.check(DELEGATED)
