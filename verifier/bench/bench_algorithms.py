"""Verifier throughput per algorithm (issue 16), beside each algorithm's raw verify rate.

For RS256, ES256 and EdDSA: first-seen tokens per CPU-second through
``Verifier.verify`` (every check on, the verified-token cache off, keys from a static
JWKS), and the raw ``cryptography`` verify rate of the same signatures on the same
signing inputs (RSA PKCS#1 v1.5 SHA-256; ECDSA P-256 SHA-256 given the DER form it
needs; Ed25519). One process, one core, the contestants interleaved chunk by chunk
so a drift of the machine's load hits every row alike. Prints one line per
algorithm: ``ALG: verifier N tokens/cpu_s, raw verify M/cpu_s, ratio N/M``, then
the verifier's ES256 and EdDSA rates as multiples of its RS256 rate. No target
applies here (issue 16's targets are on the server's signing side); expect the
multiples below 1: an RSA signature is cheap to verify, an ECDSA or Ed25519 one
is not.

    .venv/bin/python verifier/bench/bench_algorithms.py [--tokens 3000] [--chunk 300]
"""

from __future__ import annotations

import argparse
import base64
import time
from collections.abc import Callable

from authd_verifier import Verifier
from authd_verifier.testing import MINTABLE_ALGORITHMS, StaticJWKS, TokenMinter
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature


def _unb64(segment: str) -> bytes:
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def _raw_check(minter: TokenMinter) -> Callable[[bytes, bytes], None]:
    public = minter.private_key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
        return lambda message, signature: public.verify(signature, message, pkcs1, sha256)
    if isinstance(public, ec.EllipticCurvePublicKey):
        ecdsa = ec.ECDSA(hashes.SHA256())
        # The DER form is what the library takes; converting is outside the timing.
        return lambda message, signature: public.verify(signature, message, ecdsa)
    assert isinstance(public, ed25519.Ed25519PublicKey)
    return lambda message, signature: public.verify(signature, message)


def _der(raw: bytes) -> bytes:
    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


def measure(alg: str, count: int, chunk: int) -> tuple[float, float]:
    """(verifier first-seen tokens per CPU-second, raw verifies per CPU-second)."""
    minter = TokenMinter(issuer="https://authd.bench", audience="bench", algorithm=alg,
                         lifetime=3600)
    verifier = Verifier(keys=StaticJWKS(minter.jwks()), issuer=minter.issuer,
                        audience="bench", token_cache_size=0)
    tokens = [minter.mint(subject=f"user-{i}") for i in range(count)]
    raw_inputs = []
    for token in tokens:
        signing_input, _, signature = token.rpartition(".")
        decoded = _unb64(signature)
        raw_inputs.append((signing_input.encode(), _der(decoded) if alg == "ES256" else decoded))
    raw = _raw_check(minter)
    verifier_cpu = raw_cpu = 0.0
    for start in range(0, count, chunk):
        rows = ((True, False) if (start // chunk) % 2 == 0 else (False, True))
        for is_verifier in rows:
            began = time.process_time()
            if is_verifier:
                for token in tokens[start:start + chunk]:
                    verifier.verify(token)
                verifier_cpu += time.process_time() - began
            else:
                for message, signature in raw_inputs[start:start + chunk]:
                    raw(message, signature)
                raw_cpu += time.process_time() - began
    return count / verifier_cpu, count / raw_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tokens", type=int, default=3000)
    parser.add_argument("--chunk", type=int, default=300)
    args = parser.parse_args()
    rates: dict[str, float] = {}
    for alg in MINTABLE_ALGORITHMS:
        verified, raw = measure(alg, args.tokens, args.chunk)
        rates[alg] = verified
        print(f"{alg}: verifier {verified:,.0f} tokens/cpu_s, raw verify {raw:,.0f}/cpu_s, "
              f"ratio {verified / raw:.2f}")
    for alg in MINTABLE_ALGORITHMS:
        if alg != "RS256":
            multiple = rates[alg] / rates["RS256"]
            print(f"verifier {alg} / RS256 tokens per CPU-second = {multiple:.2f}")


if __name__ == "__main__":
    main()
