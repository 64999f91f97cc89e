"""The verifier's two DESIGN §7 ratios counted in CPU instructions (valgrind callgrind).

Wall-clock ratios from ``bench_verify.py`` move by several points on a busy
shared machine; instruction counts do not. This script counts, per token:

- first-seen: ``Verifier.verify`` on distinct tokens, against the benchmark's
  floor (decode, RSA check, plain JSON parse, inline);
- repeated: a cache hit (a live revocation list and a required scope, as in
  ``bench_verify.py``), against ``RSAPublicKey.verify``.

Each figure is (a run doing N operations minus the same run doing none) / N, so
start-up and setup cancel out; the tokens are minted once beforehand so every
run uses the same key. Instructions are not time: the interpreter retires fewer
instructions per cycle than the bignum code, so time ratios come out lower.

Run: ``python verifier/bench/count_instructions.py`` (needs ``valgrind``; takes a
few minutes). Internally it runs itself as ``... measure MODE N FILE`` under
callgrind.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from authd_verifier import JWKSCache, RevocationList, Verifier
from authd_verifier.encoding import b64url_decode
from authd_verifier.flavour import FLAVOUR
from authd_verifier.testing import StaticJWKS, TokenMinter

FIRST_SEEN, HOT = 2000, 250


def prepare(path: Path) -> None:
    minter = TokenMinter(issuer="https://authd.bench", audience="bench-api", lifetime=36_000)
    tokens = [
        minter.mint(subject=f"user-{n}", scope="orders:read orders:write", sid=f"s-{n}")
        for n in range(FIRST_SEEN)
    ]
    path.write_text(json.dumps({"jwks": minter.jwks(), "tokens": tokens}))


def measure(mode: str, count: int, path: Path) -> None:
    sys.path.insert(0, str(Path(__file__).parent))
    from bench_verify import serve_jwks  # the benchmark's own JWKS server

    document = json.loads(path.read_text())
    tokens: list[str] = document["tokens"]
    public_key: Any = next(iter(StaticJWKS(document["jwks"]).keys.values())).public_key
    server = serve_jwks(document["jwks"])
    host, port = server.server_address[:2]
    cache = JWKSCache(f"http://{host!s}:{port}/.well-known/jwks.json")
    options: dict[str, Any] = {"keys": cache, "issuer": "https://authd.bench"}
    if mode == "first-seen":
        verifier = Verifier(audience="bench-api", **options)
        verifier.verify(tokens[-1])  # fetch the JWKS, fill the header cache
        for token in tokens[:count]:
            verifier.verify(token)
    elif mode == "floor":
        # bench_verify.py's floor, step for step.
        import binascii
        import hashlib

        from cryptography.hazmat.primitives.asymmetric import padding

        recover, pkcs1 = public_key.recover_data_from_signature, padding.PKCS1v15()
        digest_info = bytes.fromhex("3031300d060960864801650304020105000420")
        to_standard, a2b = bytes.maketrans(b"-_", b"+/"), binascii.a2b_base64
        scan = json.JSONDecoder().scan_once  # type: ignore[attr-defined]
        for token in tokens[:count]:
            signing_input, _, signature = token.encode().rpartition(b".")
            payload = signing_input.partition(b".")[2]
            if recover(a2b(signature.translate(to_standard) + b"=="), pkcs1, None) != (
                digest_info + hashlib.sha256(signing_input).digest()
            ):
                raise SystemExit("floor: a bad signature")
            scan(a2b(payload.translate(to_standard) + b"==").decode(), 0)
    elif mode == "hit":
        revocations = RevocationList()
        expires = int(time.time()) + 3600
        revocations.apply(
            [
                {
                    "kind": kind,
                    "value": f"{prefix}-{n}",
                    "not_before": 1 if kind == "sub" else None,
                    "expires_at": expires,
                }
                for kind, prefix in (("jti", "revoked"), ("sid", "revoked"), ("sub", "user"))
                for n in range(100)
            ]
        )
        verifier = Verifier(audience="bench-api", revocations=revocations, **options)
        hot, required = tokens[:HOT], {"orders:read"}
        for _ in range(2):  # remembered from the second use
            for token in hot:
                verifier.verify(token, require_scopes=required)
        for _ in range(count // HOT):
            for token in hot:
                verifier.verify(token, require_scopes=required)
    elif mode == "raw":
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        pkcs1, sha256 = padding.PKCS1v15(), hashes.SHA256()
        pairs = []
        for token in tokens[:HOT]:
            signing_input, _, signature = token.encode("ascii").rpartition(b".")
            pairs.append((signing_input, b64url_decode(signature)))
        for _ in range(count // HOT):
            for signing_input, signature in pairs:
                public_key.verify(signature, signing_input, pkcs1, sha256)
    server.shutdown()


def instructions(mode: str, count: int, path: Path) -> int:
    # valgrind from PATH, on this script: a developer tool run by hand.
    with tempfile.NamedTemporaryFile() as out:
        result = subprocess.run(  # noqa: S603
            [  # noqa: S607
                "valgrind",
                "--tool=callgrind",
                f"--callgrind-out-file={out.name}",
                sys.executable,
                __file__,
                "measure",
                mode,
                str(count),
                str(path),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
    match = re.search(r"Collected : (\d+)", result.stderr)
    if match is None:
        raise SystemExit(f"no instruction count from callgrind:\n{result.stderr[-2000:]}")
    return int(match.group(1))


def per_operation(mode: str, count: int, path: Path) -> float:
    return (instructions(mode, count, path) - instructions(mode, 0, path)) / count


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "measure":
        measure(sys.argv[2], int(sys.argv[3]), Path(sys.argv[4]))
        return
    with tempfile.TemporaryDirectory() as work:
        path = Path(work) / "tokens.json"
        prepare(path)
        first_seen = per_operation("first-seen", FIRST_SEEN, path)
        floor = per_operation("floor", FIRST_SEEN, path)
        hit = per_operation("hit", 40 * HOT, path)
        raw = per_operation("raw", 2 * HOT, path)
    print(f"authd_verifier flavour: {FLAVOUR}")
    print(f"first-seen token: {first_seen:10,.0f} instructions; floor {floor:10,.0f}")
    print(f"cache hit:        {hit:10,.0f} instructions; RSAPublicKey.verify {raw:10,.0f}")
    print(f"first-seen/floor: {floor / first_seen:.3f} (target 0.9, counted in instructions)")
    print(f"repeated/raw:     {raw / hit:.1f} x (target 20 x, counted in instructions)")


if __name__ == "__main__":
    main()
