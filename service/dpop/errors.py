"""Typed errors of the DPoP domain (RFC 9449 §5, §8), answered as RFC 6749 §5.2
errors by the token endpoints."""

from __future__ import annotations

from service.errors import AuthdError


class InvalidDPoPProof(AuthdError):
    """The ``DPoP`` header is not a valid proof for this request (RFC 9449 §5)."""

    code = "invalid_dpop_proof"
    title = "The DPoP proof is invalid"


class UseDPoPNonce(AuthdError):
    """RFC 9449 §8: the proof must carry the server's current nonce, sent in the
    ``DPoP-Nonce`` header of this answer; the client retries with it."""

    code = "use_dpop_nonce"
    title = "The DPoP proof must carry the server's nonce"

    def __init__(self, nonce: str) -> None:
        super().__init__("retry with the nonce in the DPoP-Nonce header",
                         headers={"DPoP-Nonce": nonce})


class InvalidDPoPPresentation(AuthdError):
    """RFC 9449 §7.1: a token presented with ``Authorization: DPoP`` to one of authd's
    own resource endpoints (admin, MFA, logout, introspection) came without a valid
    proof by its key; 401 with a ``DPoP`` challenge."""

    status = 401
    code = "invalid_dpop_proof"
    title = "The DPoP proof is invalid"

    def __init__(self, description: str, algorithms: str) -> None:
        super().__init__(description, headers={"WWW-Authenticate": (
            f'DPoP realm="authd", error="invalid_dpop_proof", algs="{algorithms}"')})


class DPoPRequired(InvalidDPoPProof):
    """The client (or the refresh token's family) is bound to DPoP: a request
    without a proof by its key is refused."""

    title = "A DPoP proof is required"
