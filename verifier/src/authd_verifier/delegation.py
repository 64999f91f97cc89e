"""Delegated tokens (RFC 8693 §4.1): who acted on the subject's behalf.

authd's token exchange issues a token whose ``sub`` is still the user (or service)
it speaks for, and whose ``act`` names the client that exchanged it, nesting the
``act`` of the token it was exchanged from: ``{"sub": "svc-b", "act": {"sub":
"svc-a"}}`` reads "svc-b acts for the subject, after svc-a did". The chain is
:func:`actor_chain` (most recent actor first), also ``claims.actors``.

A service decides what it accepts with a :class:`DelegationPolicy`: refuse delegated
tokens (only first-hand ones), require them, and/or accept only known actors.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from .errors import MalformedToken, VerificationError

#: Deeper chains are refused as malformed (authd itself never issues more).
MAX_ACTOR_DEPTH: Final = 8


class DelegationRefused(VerificationError):
    """The token's delegation (its ``act`` chain, or the lack of one) is not accepted
    by this service's :class:`DelegationPolicy`."""

    default_message = "the access token's delegation is not accepted here"


def actor_chain(claims: Mapping[str, Any]) -> tuple[str, ...]:
    """The ``sub`` of each nested ``act``, the current actor first; () for a token
    that was not exchanged."""
    actors: list[str] = []
    act = claims.get("act")
    while act is not None:
        if not isinstance(act, dict) or not isinstance(act.get("sub"), str) or not act["sub"]:
            raise MalformedToken("the access token has an invalid act claim")
        if len(actors) == MAX_ACTOR_DEPTH:
            raise MalformedToken("the access token's act chain is too deep")
        actors.append(act["sub"])
        act = act.get("act")
    return tuple(actors)


class DelegationPolicy:
    """What a service accepts of delegation.

    ``delegated``: ``None`` accepts both kinds, ``True`` requires an ``act`` chain,
    ``False`` refuses one. ``actors``, when given, lists the clients that may act
    directly (the chain's first entry).
    """

    __slots__ = ("actors", "delegated")

    def __init__(self, *, delegated: bool | None = None,
                 actors: Iterable[str] | None = None) -> None:
        self.delegated = delegated
        self.actors = None if actors is None else frozenset(actors)
        if self.actors is not None and delegated is False:
            raise ValueError("allowed actors make sense only for delegated tokens")

    def check(self, claims: Mapping[str, Any]) -> tuple[str, ...]:
        """The actor chain, or DelegationRefused."""
        chain = actor_chain(claims)
        if self.delegated is True and not chain:
            raise DelegationRefused("a delegated (exchanged) access token is required")
        if self.delegated is False and chain:
            raise DelegationRefused("delegated (exchanged) access tokens are refused here")
        if self.actors is not None and chain and chain[0] not in self.actors:
            raise DelegationRefused("the acting client is not accepted here")
        return chain
