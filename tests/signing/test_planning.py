"""The lifecycle rules of DESIGN §5, as a pure function of keys, clock and policy."""

from __future__ import annotations

import pytest

from service.signing.errors import RotationNotReady
from service.signing.rotation import RotationPolicy, plan, plan_rotation
from service.signing.store import SigningKeyRecord

POLICY = RotationPolicy(
    jwks_max_age=300, max_token_ttl=86400, rotation_interval=30 * 86400, propagation=2
)
T0 = 1_800_000_000.0


def key(kid: str, state: str, created: float, *, activated: float | None = None,
        retired: float | None = None, alg: str = "RS256") -> SigningKeyRecord:
    return SigningKeyRecord(kid=kid, alg=alg, state=state,  # type: ignore[arg-type]
                            public_jwk="{}", created_at=created, activated_at=activated,
                            retired_at=retired)


def test_empty_key_set_gets_an_active_and_a_next_key() -> None:
    """A first start creates one active and one next key."""
    todo = plan([], T0, POLICY)
    assert todo.create_active and todo.create_next and not todo.promote_next


def test_settled_key_set_needs_nothing() -> None:
    """An active and a next key before the rotation interval need no action."""
    keys = [key("a", "active", T0, activated=T0), key("n", "next", T0)]
    assert plan(keys, T0 + 86400, POLICY).empty


def test_missing_next_key_is_created() -> None:
    """An active key without a next key gets one."""
    todo = plan([key("a", "active", T0, activated=T0)], T0 + 10, POLICY)
    assert todo.create_next and not todo.create_active and not todo.promote_next


def test_scheduled_rotation_when_interval_passed() -> None:
    """After the rotation interval the next key is promoted and a new next made."""
    keys = [key("a", "active", T0, activated=T0), key("n", "next", T0)]
    todo = plan(keys, T0 + POLICY.rotation_interval, POLICY)
    assert todo.promote_next and todo.create_next


def test_scheduled_rotation_waits_for_next_key_publication() -> None:
    """A next key younger than max-age plus propagation is not promoted, even when due."""
    created = T0 + POLICY.rotation_interval - 100
    keys = [key("a", "active", T0, activated=T0), key("n", "next", created)]
    assert not plan(keys, T0 + POLICY.rotation_interval, POLICY).promote_next
    assert plan(keys, created + 302, POLICY).promote_next


def test_without_active_key_the_next_key_is_promoted_at_once() -> None:
    """With no active key, availability wins and the next key signs immediately."""
    todo = plan([key("n", "next", T0)], T0 + 1, POLICY)
    assert todo.promote_next and todo.create_next and not todo.create_active


def test_retired_key_stays_until_tokens_and_caches_expired() -> None:
    """A retired key is kept until retired_at + propagation + max TTL + max-age."""
    retired_at = T0 + 1000
    keys = [key("r", "retired", T0, activated=T0, retired=retired_at),
            key("a", "active", T0 + 1, activated=retired_at), key("n", "next", retired_at)]
    deadline = retired_at + 2 + 86400 + 300
    assert plan(keys, deadline - 1, POLICY).erase == ()
    assert plan(keys, deadline, POLICY).erase == ("r",)


def test_on_demand_rotation_refused_while_next_key_is_fresh() -> None:
    """Rotation before the next key was published for max-age is refused with the time."""
    keys = [key("a", "active", T0, activated=T0), key("n", "next", T0 + 100)]
    with pytest.raises(RotationNotReady) as caught:
        plan_rotation(keys, T0 + 200, POLICY)
    assert caught.value.ready_at == T0 + 100 + 302
    assert "n" in caught.value.description and "in 202 s" in caught.value.description


def test_on_demand_rotation_allowed_once_published() -> None:
    """Rotation is allowed from the instant the next key has been published long enough."""
    keys = [key("a", "active", T0, activated=T0), key("n", "next", T0 + 100)]
    assert plan_rotation(keys, T0 + 402, POLICY).kid == "n"


def test_oldest_next_key_is_promoted() -> None:
    """With two next keys, the one published longest is the one promoted."""
    keys = [key("a", "active", T0, activated=T0), key("n2", "next", T0 + 50),
            key("n1", "next", T0 + 10)]
    assert plan_rotation(keys, T0 + 1000, POLICY).kid == "n1"


# --- a change of the key set's target algorithm (issue 16) ------------------------------


def test_next_key_of_another_algorithm_is_withdrawn_and_replaced() -> None:
    """When the target becomes ES256, the RS256 next key is withdrawn and an ES256
    next key is made; the active key keeps signing meanwhile."""
    keys = [key("a", "active", T0, activated=T0), key("n", "next", T0)]
    todo = plan(keys, T0 + 10, POLICY, "ES256")
    assert todo.withdraw == ("n",) and todo.create_next
    assert not todo.promote_next and not todo.create_active


def test_next_key_in_the_target_is_promoted_once_published_long_enough() -> None:
    """An active key of the old algorithm is replaced as soon as the next key in the
    target has been published for max-age plus propagation, not at the interval."""
    keys = [key("a", "active", T0, activated=T0), key("n", "next", T0 + 10, alg="EdDSA")]
    ready = POLICY.promotable_at(keys[1])
    assert not plan(keys, ready - 1, POLICY, "EdDSA").promote_next
    todo = plan(keys, ready, POLICY, "EdDSA")
    assert todo.promote_next and todo.create_next and not todo.withdraw


def test_settled_key_set_in_the_target_needs_nothing() -> None:
    """Active and next keys both in the target algorithm need no action."""
    keys = [key("a", "active", T0, activated=T0, alg="ES256"),
            key("n", "next", T0, alg="ES256")]
    assert plan(keys, T0 + 86400, POLICY, "ES256").empty


def test_without_an_active_key_the_stale_next_key_is_not_promoted() -> None:
    """With no active key and a next key of another algorithm, a new active key is
    made in the target rather than promoting the stale one."""
    todo = plan([key("n", "next", T0)], T0 + 10, POLICY, "ES256")
    assert todo.withdraw == ("n",) and todo.create_active and todo.create_next
