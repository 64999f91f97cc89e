"""``authd users grant-admin USER`` / ``revoke-admin USER``: operator accounts, audited
with ``cli`` as actor (the CLI runs with the host's authority, like ``bootstrap``)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.runtime import Runtime


def register_user_actions(actions: argparse._SubParsersAction[argparse.ArgumentParser]
                          ) -> None:
    for name, handler, text in (
        ("grant-admin", grant_admin, "give a user the admin role (console sign-in)"),
        ("revoke-admin", revoke_admin, "take the admin role (ends their console sessions)"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("user", help="user id or email")
        action.set_defaults(handler=handler)


async def grant_admin(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    return await runtime.console.operators.grant_admin(args.user, actor="cli")


async def revoke_admin(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    return await runtime.console.operators.revoke_admin(args.user, actor="cli")
