"""``authd revoke subject SUB`` — the "employee left" command."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.runtime import Runtime


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    revoke = sub.add_parser("revoke", help="revoke tokens")
    actions = revoke.add_subparsers(dest="revoke_command", required=True, metavar="ACTION")
    subject = actions.add_parser("subject", help="revoke everything of a subject issued before now")
    subject.add_argument("sub", help="the subject (a user id or a client id)")
    subject.set_defaults(handler=revoke_subject)


async def revoke_subject(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    sub = str(args.sub)
    entry = await runtime.revocations.revoke_subject_for_operator(sub, actor="cli")
    return {"status": "revoked", "sub": sub, "not_before": int(entry.not_before or 0),
            "expires_at": int(entry.expires_at)}
