"""``authd users mfa-reset ID`` (lost device: removes TOTP and recovery codes) and
``authd users mfa ID`` (the state), added to the sessions domain's ``users`` command.
Both audited like the admin API."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.runtime import Runtime


def register_user_actions(actions: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    reset = actions.add_parser("mfa-reset", help="remove a user's TOTP and recovery codes")
    reset.add_argument("user", help="user id or email")
    reset.set_defaults(handler=mfa_reset)
    show = actions.add_parser("mfa", help="a user's MFA state")
    show.add_argument("user", help="user id or email")
    show.set_defaults(handler=mfa_status)


async def mfa_reset(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    user = await runtime.sessions.users.find(args.user)
    removed = await runtime.mfa.factors.reset(user.id, actor="cli")
    return {"user_id": user.id, "reset": removed}


async def mfa_status(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    user = await runtime.sessions.users.find(args.user)
    return {"user_id": user.id, **await runtime.mfa.factors.status(user.id)}
