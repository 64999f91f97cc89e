"""A DPoP client key as a client would hold one: a key pair it generated, and the
proofs (RFC 9449 §4.2) it signs per request, with knobs to make bad ones."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
from authd_verifier.dpop import access_token_hash, jwk_thumbprint
from cryptography.hazmat.primitives.asymmetric import ec, ed25519


class DPoPKey:
    def __init__(self, alg: str = "ES256") -> None:
        self.alg = alg
        if alg == "EdDSA":
            self.private: Any = ed25519.Ed25519PrivateKey.generate()
            self.public_jwk: dict[str, Any] = json.loads(
                jwt.algorithms.OKPAlgorithm.to_jwk(self.private.public_key()))
        else:
            self.private = ec.generate_private_key(ec.SECP256R1())
            self.public_jwk = json.loads(
                jwt.algorithms.ECAlgorithm.to_jwk(self.private.public_key()))

    @property
    def thumbprint(self) -> str:
        return jwk_thumbprint(self.public_jwk)

    def proof(
        self,
        method: str,
        url: str,
        *,
        access_token: str | None = None,
        nonce: str | None = None,
        iat: float | None = None,
        jti: str | None = None,
        header: dict[str, Any] | None = None,
        claims: dict[str, Any] | None = None,
        drop: tuple[str, ...] = (),
    ) -> str:
        payload: dict[str, Any] = {
            "jti": jti or str(uuid.uuid4()), "htm": method, "htu": url,
            "iat": int(time.time() if iat is None else iat),
        }
        if access_token is not None:
            payload["ath"] = access_token_hash(access_token)
        if nonce is not None:
            payload["nonce"] = nonce
        payload.update(claims or {})
        for name in drop:
            payload.pop(name, None)
        headers = {"typ": "dpop+jwt", "jwk": self.public_jwk, **(header or {})}
        return jwt.encode(payload, self.private, algorithm=self.alg, headers=headers)
