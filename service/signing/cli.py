"""``authd keys list | rotate | revoke KID`` — the operator's side of DESIGN §5."""

from __future__ import annotations

import argparse
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from service.cli import CommandError
from service.config import ConfigError
from service.signing.kek import Kek, decode_kek
from service.signing.keys import KID_SHAPE

if TYPE_CHECKING:
    from service.runtime import Runtime

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
    rewrap = actions.add_parser(
        "rewrap",
        help="re-encrypt every sealed secret under a new KEK (the current one is "
        "AUTHD_KEK / AUTHD_KEK_FILE)",
    )
    rewrap.add_argument(
        "--new-kek-file", metavar="PATH",
        help="file holding the new KEK (base64 of 32 bytes); else AUTHD_NEW_KEK",
    )
    rewrap.set_defaults(handler=rewrap_keys)


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
    # On a database without keys the rotation creates the key set instead.
    return {"status": "created" if change.action == "create" else "rotated",
            **change.as_dict()}


async def revoke_key(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    kid = str(args.kid)
    if not KID_SHAPE.match(kid):
        raise CommandError("a kid is 1-128 characters of A-Z a-z 0-9 _ -")
    change = await runtime.rotation.revoke(kid, actor=ACTOR)
    return {"status": "revoked", **change.as_dict()}


def _new_kek(args: argparse.Namespace) -> Kek:
    """The new KEK from --new-kek-file or AUTHD_NEW_KEK (exactly one of them)."""
    path = args.new_kek_file
    env = os.environ.get("AUTHD_NEW_KEK", "").strip()
    if path and env:
        raise CommandError("give the new KEK once: --new-kek-file or AUTHD_NEW_KEK, not both")
    if not path and not env:
        raise CommandError("the new KEK is missing: --new-kek-file PATH or AUTHD_NEW_KEK")
    try:
        if path:
            try:
                text = Path(path).read_text(encoding="ascii")
            except (OSError, UnicodeDecodeError):
                raise CommandError(f"cannot read a KEK from {path}") from None
            return decode_kek("--new-kek-file", text)
        return decode_kek("AUTHD_NEW_KEK", env)
    except ConfigError as exc:
        raise CommandError(f"the new KEK is not valid: {exc}") from None


async def rewrap_keys(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    from service.signing.rewrap import rewrap
    from service.signing.store import SqlSealedStore

    new = _new_kek(args)
    report = await rewrap(SqlSealedStore(runtime.db), runtime.kek, new,
                          audit=runtime.audit, actor=ACTOR)
    return {"status": "rewrapped", **report.as_dict()}
