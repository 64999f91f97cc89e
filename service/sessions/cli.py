"""``authd users create EMAIL`` (password from stdin), ``set-password``, ``disable``,
``unlock``, ``show`` — each an audit event."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING, Any

from service.cli import CommandError

if TYPE_CHECKING:
    from service.runtime import Runtime


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = sub.add_parser("users", help="end users")
    actions = users.add_subparsers(dest="users_command", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a user; the password is read from stdin")
    create.add_argument("email")
    create.set_defaults(handler=create_user)
    password = actions.add_parser("set-password", help="set a password read from stdin")
    password.add_argument("user", help="user id or email")
    password.set_defaults(handler=set_password)
    for name, handler, text in (
        ("disable", disable_user, "disable a user and revoke everything of theirs"),
        ("unlock", unlock_user, "clear a login lockout"),
        ("show", show_user, "show a user"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("user", help="user id or email")
        action.set_defaults(handler=handler)
    # MFA and anomaly actions on users (issue 9): mfa-reset, mfa, logins, anomalies.
    from service.anomaly.cli import register_user_actions as anomaly_actions
    from service.mfa.cli import register_user_actions as mfa_actions

    mfa_actions(actions)
    anomaly_actions(actions)
    # Operator accounts (issue 18): grant-admin, revoke-admin.
    from service.console.cli import register_user_actions as console_actions

    console_actions(actions)


def _password_from_stdin() -> str:
    if sys.stdin.isatty():
        import getpass

        return getpass.getpass("password: ")
    text = sys.stdin.readline()
    password = text.removesuffix("\n").removesuffix("\r")
    if not password:
        raise CommandError("no password on stdin")
    return password


async def create_user(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    user = await runtime.sessions.users.create(args.email, _password_from_stdin(), actor="cli")
    return user.public()


async def set_password(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    user = await runtime.sessions.users.set_password(args.user, _password_from_stdin(),
                                                     actor="cli")
    return user.public()


async def disable_user(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    return (await runtime.sessions.users.disable(args.user, actor="cli")).public()


async def unlock_user(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    return (await runtime.sessions.users.unlock(args.user, actor="cli")).public()


async def show_user(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    return (await runtime.sessions.users.find(args.user)).public()
