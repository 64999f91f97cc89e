"""The token issuer: claims in, a signed RFC 9068 access token out (DESIGN §4).

Always signs with the key ring's active key, in that key's algorithm (RS256, ES256 or
EdDSA), through its prepared signer: the encoded header and the signature function
were made once when the key set changed, so a token costs one JSON encoding, two
base64url encodings and one signature. The signature may run in a small thread pool:
``cryptography`` releases the GIL while it signs, so one worker process can use more
than one core (AUTHD_SIGNING_THREADS). By default it signs on the event loop: a
signature is ~0.3 ms, and the hand-off to a thread costs more CPU than it frees.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from itertools import islice
from typing import Any

from service.signing.keyring import KeyRing, PreparedSigner
from service.signing.keys import b64url_bytes

TOKEN_TYPE = "at+jwt"  # noqa: S105 - a media type, not a secret
# Claims the issuer owns; ``extra`` may add others (sid, amr, acr) but never these.
RESERVED_CLAIMS = frozenset(
    {"iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope"}
)


@dataclass(slots=True, repr=False)  # built per token: frozen costs ~2 µs of __setattr__
class IssuedToken:
    # The JWS compact serialisation as the signer made it: the token endpoints put it
    # in their answer as bytes, without a round trip through str.
    encoded: bytes
    jti: str
    kid: str
    issued_at: int
    expires_at: int
    claims: dict[str, Any]

    @property
    def token(self) -> str:
        return self.encoded.decode("ascii")

    def __repr__(self) -> str:
        return f"IssuedToken(jti={self.jti!r}, kid={self.kid!r}, expires_at={self.expires_at})"


def claims_json(claims: dict[str, Any]) -> bytes:
    """``json.dumps(claims, separators=(",", ":"))``, with the nine members every token
    starts with (in the order ``issue`` builds them) formatted as a template, each
    string through json's own encoder: a third of the cost on every token. Anything
    else (another order, a list audience) is handed to ``json.dumps`` as it is."""
    if len(claims) < 9 or tuple(islice(claims, 9)) != _ORDER:
        return json.dumps(claims, separators=(",", ":")).encode()
    exp, iat, nbf, aud = claims["exp"], claims["iat"], claims["nbf"], claims["aud"]
    if not (type(exp) is int and type(iat) is int and type(nbf) is int
            and type(aud) is str):
        return json.dumps(claims, separators=(",", ":")).encode()
    text = (f'{{"iss":{_string(claims["iss"])},"sub":{_string(claims["sub"])},'
            f'"aud":{_string(aud)},"exp":{exp},"iat":{iat},"nbf":{nbf},'
            f'"jti":{_string(claims["jti"])},"client_id":{_string(claims["client_id"])},'
            f'"scope":{_string(claims["scope"])}')
    if len(claims) == 9:
        return (text + "}").encode()
    rest = dict(islice(claims.items(), 9, None))
    return (text + "," + json.dumps(rest, separators=(",", ":"))[1:]).encode()


_ORDER = ("iss", "sub", "aud", "exp", "iat", "nbf", "jti", "client_id", "scope")
_string = json.encoder.encode_basestring_ascii  # what json.dumps writes for a str


def _sign(claims: dict[str, Any], key: PreparedSigner) -> bytes:
    """The JWS compact serialisation (RFC 7515 §7.1) of ``claims`` under ``key``."""
    payload = claims_json(claims)
    signing_input = key.header_prefix + b64url_bytes(payload)
    return signing_input + b"." + b64url_bytes(key.sign(signing_input))


class _RandomIds:
    """Version-4 UUIDs (``str(uuid.uuid4())``) for token ids, from the operating
    system's CSPRNG like ``uuid4``, but read 4 KiB at a time: a ``getrandom`` call per
    token was the largest single cost of a token after its signature on a VM (measured
    with py-spy). Formatted from the hex in one step, without a ``UUID`` object. A
    forked child reads afresh, so no two processes hand out the same bytes."""

    _BATCH = 256  # ids per read

    def __init__(self) -> None:
        self._hex = ""
        self._at = 0
        os.register_at_fork(after_in_child=self._drop)

    def _drop(self) -> None:
        self._hex, self._at = "", 0

    def new(self) -> str:
        at = self._at
        if at >= len(self._hex):
            self._hex, at = os.urandom(16 * self._BATCH).hex(), 0
        self._at = at + 32
        h = self._hex[at:at + 32]
        return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


_VARIANT = "89ab"  # RFC 9562 §4.1: the two high bits of octet 8 are 10
_uuid4 = _RandomIds().new


class TokenIssuer:
    def __init__(self, keys: KeyRing, *, issuer: str, threads: int = 0) -> None:
        self._keys = keys
        self._issuer = issuer
        # 0 signs on the event loop: the fewest CPU-seconds per token (no thread
        # hand-off), so throughput scales with AUTHD_WORKERS. N > 0 lets one worker
        # use more cores (cryptography releases the GIL while signing), at ~10 % more
        # CPU per token measured here.
        self._pool = (
            ThreadPoolExecutor(max_workers=threads, thread_name_prefix="authd-sign")
            if threads > 0 else None
        )

    async def issue(
        self,
        *,
        subject: str,
        audience: str,
        scope: str,
        client_id: str,
        ttl: float,
        extra: Mapping[str, Any] | None = None,
    ) -> IssuedToken:
        """Sign a token for ``subject``; NoActiveKey (503) if no key may sign."""
        if ttl <= 0:
            raise ValueError("a token lifetime is positive")
        key = self._keys.prepared_signer()
        now = int(time.time())
        expires_at = now + int(ttl)
        jti = _uuid4()
        claims: dict[str, Any] = {
            "iss": self._issuer,
            "sub": subject,
            "aud": audience,
            "exp": expires_at,
            "iat": now,
            "nbf": now,
            "jti": jti,
            "client_id": client_id,
            "scope": scope,
        }
        if extra:
            clash = RESERVED_CLAIMS.intersection(extra)
            if clash:
                raise ValueError(f"extra claims may not override {sorted(clash)}")
            claims.update(extra)
        if self._pool is None:
            token = _sign(claims, key)
        else:
            loop = asyncio.get_running_loop()
            token = await loop.run_in_executor(self._pool, _sign, claims, key)
        return IssuedToken(token, jti, key.kid, now, expires_at, claims)

    async def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
