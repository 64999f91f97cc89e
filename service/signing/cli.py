"""``authd keys list | rotate | revoke KID`` — the operator's side of DESIGN §5."""

from __future__ import annotations

import argparse
import re
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from service.cli import CommandError

if TYPE_CHECKING:
    from service.runtime import Runtime

_KID = re.compile(r"^[A-Za-z0-9_-]{1,128}$")
ACTOR = "cli"


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="signing keys")
    actions = keys.add_subparsers(dest="keys_command", required=True, metavar="ACTION")
    actions.add_parser("list", help="every key with its state and dates").set_defaults(
        handler=list_keys
    )
    actions.add_parser(
        "rotate", help="the next key signs, the active one retires, a new next key is made"
    ).set_defaults(handler=rotate)
    revoke = actions.add_parser("revoke", help="remove a compromised key from the JWKS now")
    revoke.add_argument("kid")
    revoke.set_defaults(handler=revoke_key)


def _when(value: float | None) -> str | None:
    if value is None:
        return None
    return datetime.fromtimestamp(value, UTC).isoformat(timespec="seconds")


async def list_keys(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    records = await runtime.rotation.list_keys()
    return {"keys": [
        {"kid": r.kid, "state": r.state, "alg": r.alg, "created": _when(r.created_at),
         "activated": _when(r.activated_at), "retired": _when(r.retired_at),
         "revoked": _when(r.revoked_at), "erased": _when(r.erased_at)}
        for r in records
    ]}


async def rotate(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    change = await runtime.rotation.rotate(trigger="cli", actor=ACTOR)
    return {"status": "rotated", **change.as_dict()}


async def revoke_key(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    kid = str(args.kid)
    if not _KID.match(kid):
        raise CommandError("a kid is 1-128 characters of A-Z a-z 0-9 _ -")
    change = await runtime.rotation.revoke(kid, actor=ACTOR)
    return {"status": "revoked", **change.as_dict()}
