"""A look at one refresh family in the server's PostgreSQL database, for tests that
must show a request rotated or revoked nothing (or did)."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg
import jwt

from tests.support.servers import Server


@dataclass(frozen=True)
class Family:
    tokens: int
    spent: int
    revoke_reason: str | None


def sid_of(access_token: str) -> str:
    """The session (refresh family) an access token belongs to; the signature is not
    checked here, only read, since the test got the token from the server itself."""
    claims = jwt.decode(access_token, options={"verify_signature": False})
    return str(claims["sid"])


async def family(server: Server, sid: str) -> Family:
    conn = await asyncpg.connect(server.env["AUTHD_DATABASE_URL"])
    try:
        row = await conn.fetchrow(
            "SELECT COUNT(*) AS tokens, COUNT(t.spent_at) AS spent, f.revoke_reason"
            " FROM refresh_families f JOIN refresh_tokens t ON t.family_id = f.id"
            " WHERE f.id = $1 GROUP BY f.revoke_reason", sid)
    finally:
        await conn.close()
    assert row is not None, f"no refresh family {sid}"
    return Family(row["tokens"], row["spent"], row["revoke_reason"])


UNTOUCHED = Family(tokens=1, spent=0, revoke_reason=None)
