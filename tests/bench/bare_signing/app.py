"""The bare stack's token endpoint (../shared/bench/bare_stack/app.py), signing with
the algorithm named by BARE_ALG: RS256 (RSA-2048, as the shared one), ES256 (P-256,
the 64-byte R || S of RFC 7518 §3.4) or EdDSA (Ed25519). The same least work per
token — Basic auth, form, claims, one signature, no-store answer — so the ratio of
its rates between algorithms is the most any service on this stack can gain from a
cheaper signature on this machine (the floor of issue 16's 3x target).

    BARE_ALG=EdDSA uvicorn app:app --loop uvloop --http httptools --no-access-log
"""
import base64
import hmac
import json
import os
import time
from urllib.parse import parse_qsl

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from starlette.types import Receive, Scope, Send

ALG = os.environ.get("BARE_ALG", "RS256")
ISSUER = "http://127.0.0.1"
AUDIENCE = "https://api.example.test"
CLIENT_ID, SECRET = b"bench-client", b"bench-secret"


def b64(raw: bytes) -> bytes:
    return base64.urlsafe_b64encode(raw).rstrip(b"=")


if ALG == "RS256":
    _rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    _pad, _sha = padding.PKCS1v15(), hashes.SHA256()

    def sign(message: bytes) -> bytes:
        return _rsa.sign(message, _pad, _sha)
elif ALG == "ES256":
    _ec = ec.generate_private_key(ec.SECP256R1())
    _ecdsa = ec.ECDSA(hashes.SHA256())

    def sign(message: bytes) -> bytes:
        r, s = decode_dss_signature(_ec.sign(message, _ecdsa))
        return r.to_bytes(32, "big") + s.to_bytes(32, "big")
elif ALG == "EdDSA":
    _ed = ed25519.Ed25519PrivateKey.generate()

    def sign(message: bytes) -> bytes:
        return _ed.sign(message)
else:
    raise SystemExit(f"BARE_ALG must be RS256, ES256 or EdDSA, not {ALG!r}")

HEADER = b64(json.dumps({"alg": ALG, "typ": "at+jwt", "kid": "bare"},
                        separators=(",", ":")).encode())
JSON_HEADERS = [(b"content-type", b"application/json"), (b"cache-control", b"no-store"),
                (b"pragma", b"no-cache")]


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _token(headers: list[tuple[bytes, bytes]], body: bytes) -> tuple[int, bytes]:
    auth = next((v for k, v in headers if k == b"authorization"), b"")
    scheme, _, value = auth.partition(b" ")
    if scheme.lower() != b"basic":
        return 401, b'{"error":"invalid_client"}'
    client, _, secret = base64.b64decode(value).partition(b":")
    if not (hmac.compare_digest(client, CLIENT_ID) & hmac.compare_digest(secret, SECRET)):
        return 401, b'{"error":"invalid_client"}'
    form = dict(parse_qsl(body.decode()))
    if form.get("grant_type") != "client_credentials":
        return 400, b'{"error":"unsupported_grant_type"}'
    now = int(time.time())
    claims: dict[str, str | int] = {
        "iss": ISSUER, "sub": "bench-client", "aud": AUDIENCE, "exp": now + 300, "iat": now,
        "nbf": now, "jti": b64(os.urandom(16)).decode(), "client_id": "bench-client",
        "scope": form.get("scope", "")}
    signing_input = HEADER + b"." + b64(json.dumps(claims, separators=(",", ":")).encode())
    token = signing_input + b"." + b64(sign(signing_input))
    return 200, (b'{"access_token":"' + token + b'","token_type":"Bearer","expires_in":300,'
                 b'"scope":"' + str(claims["scope"]).encode() + b'"}')


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            kind = message["type"].rsplit(".", 1)[-1]
            await send({"type": f"lifespan.{kind}.complete"})
            if kind == "shutdown":
                return
    if scope["type"] != "http":
        return
    body = await _body(receive)
    status, answer = _token(scope["headers"], body) if scope["path"] == "/token" else \
        (404, b'{"error":"not_found"}')
    await send({"type": "http.response.start", "status": status,
                "headers": [*JSON_HEADERS, (b"content-length", str(len(answer)).encode())]})
    await send({"type": "http.response.body", "body": answer})
