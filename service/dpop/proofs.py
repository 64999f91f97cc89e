"""DPoP proofs at authd's token endpoints (RFC 9449 §4-§5, §8).

``DPoPService.bind`` checks the ``DPoP`` header of a token request and returns the
RFC 7638 thumbprint of the proof's key, which the issued access token carries as
``cnf.jkt`` (and a refresh family keeps). The proof checks themselves are the
verifier library's (``authd_verifier.dpop``), the same code resource servers run;
this adds the shared replay cache and the server nonces.

``htu`` is compared with the issuer URL plus the endpoint's path: the URL clients
are told about (RFC 8414 metadata), whatever proxy stands in front. At authd's own
resource endpoints the admin listener's configured address (AUTHD_ADMIN_LISTEN) is
accepted as well. Never a URL built from the request's ``Host`` header: the client
chooses that, so a proof made for another server (its ``htu``) could be replayed here
with a forged ``Host``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from authd_verifier.dpop import (
    DPoPBindingMismatch,
    ProofChecker,
    bound_thumbprint,
    normalize_htu,
    replay_key,
)
from authd_verifier.dpop import InvalidDPoPProof as ProofRefused

from service.dpop.errors import InvalidDPoPPresentation, InvalidDPoPProof, UseDPoPNonce
from service.dpop.nonces import NonceSource
from service.dpop.replay import ProofReplayCache
from service.errors import InvalidToken
from service.observability.metrics import DPOP_PROOFS


class DPoPService:
    def __init__(
        self,
        *,
        issuer: str,
        algorithms: Iterable[str],
        max_age: int,
        replay: ProofReplayCache,
        nonces: NonceSource | None,
        admin_origin: str | None = None,
    ) -> None:
        """``admin_origin``: ``scheme://host:port`` of the AUTHD_ADMIN_LISTEN listener,
        from configuration, when there is one."""
        self._issuer = issuer.rstrip("/")
        self._admin_origin = None if admin_origin is None else admin_origin.rstrip("/")
        self._checker = ProofChecker(algorithms=algorithms, max_age=max_age)
        self._replay = replay
        self._nonces = nonces

    @property
    def algorithms(self) -> list[str]:
        """For RFC 8414 ``dpop_signing_alg_values_supported``."""
        return sorted(self._checker.algorithms)

    async def bind(self, unverified_proof: str, *, method: str, path: str) -> str:
        """The proof key's thumbprint, or InvalidDPoPProof / UseDPoPNonce."""
        url = self._issuer + path
        try:
            proof = self._checker.check(unverified_proof, method=method, url=url)
        except ProofRefused as refused:
            DPOP_PROOFS.labels("invalid").inc()
            # A fixed string of the library's, never taken from the proof.
            raise InvalidDPoPProof(str(refused)) from None
        if self._nonces is not None and not self._nonces.valid(proof.nonce):
            DPOP_PROOFS.labels("nonce").inc()
            raise UseDPoPNonce(self._nonces.current())
        if not await self._replay.first_use(replay_key(proof, url), self._checker.replay_window):
            DPOP_PROOFS.labels("replayed").inc()
            raise InvalidDPoPProof("the DPoP proof was used before")
        DPOP_PROOFS.labels("valid").inc()
        return proof.jkt

    async def check_presentation(
        self, claims: Mapping[str, Any], access_token: str, scheme: str,
        unverified_proofs: list[str], *, method: str, path: str,
    ) -> None:
        """RFC 9449 §7 at authd's own resource endpoints: a token sent as ``DPoP``
        needs one proof by its bound key for this request (with ``ath``); a bound
        token sent as ``Bearer`` is refused. ``htu`` is the issuer URL + path, or the
        configured admin listener's origin + path (it has an origin of its own)."""
        try:
            jkt = bound_thumbprint(claims)
        except DPoPBindingMismatch as refused:
            raise InvalidToken(str(refused)) from None
        if scheme != "dpop":
            if jkt is not None:
                raise InvalidToken("a DPoP-bound access token must be presented with DPoP")
            return
        algorithms = " ".join(self.algorithms)
        if jkt is None:
            raise InvalidToken("the access token is not DPoP-bound")
        if len(unverified_proofs) != 1:
            raise InvalidDPoPPresentation("one DPoP proof header is required", algorithms)
        url = self._issuer + path
        try:
            proof = self._checker.check(unverified_proofs[0], method=method, url=url,
                                        access_token=access_token)
        except ProofRefused as refused:
            admin_url = None if self._admin_origin is None else self._admin_origin + path
            try:
                if admin_url is None or normalize_htu(admin_url) == normalize_htu(url):
                    raise
                proof = self._checker.check(unverified_proofs[0], method=method,
                                            url=admin_url, access_token=access_token)
                url = admin_url
            except ProofRefused:
                DPOP_PROOFS.labels("invalid").inc()
                raise InvalidDPoPPresentation(str(refused), algorithms) from None
        if proof.jkt != jkt:
            raise InvalidToken("the DPoP proof is signed by another key")
        if not await self._replay.first_use(replay_key(proof, url), self._checker.replay_window):
            DPOP_PROOFS.labels("replayed").inc()
            raise InvalidDPoPPresentation("the DPoP proof was used before", algorithms)
        DPOP_PROOFS.labels("valid").inc()
