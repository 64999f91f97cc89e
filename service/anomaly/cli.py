"""``authd users logins ID`` · ``authd users anomalies ID`` (added to the ``users``
command) and ``authd anomaly key-networks KEY_ID`` · ``authd anomaly allow-cidrs
KEY_ID [CIDR ...]`` (none lifts the restriction)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from service.runtime import Runtime

    Actions = argparse._SubParsersAction[argparse.ArgumentParser]


def register_user_actions(actions: Actions) -> None:
    for name, handler, text in (
        ("logins", list_logins, "a user's recent logins, newest first"),
        ("anomalies", list_anomalies, "a user's login anomalies, newest first"),
    ):
        action = actions.add_parser(name, help=text)
        action.add_argument("user", help="user id or email")
        action.add_argument("--limit", type=int, default=20)
        action.set_defaults(handler=handler)


def register(sub: Actions) -> None:
    anomaly = sub.add_parser("anomaly", help="API-key source networks and allowed CIDRs")
    actions = anomaly.add_subparsers(dest="anomaly_command", required=True, metavar="ACTION")
    networks = actions.add_parser("key-networks", help="networks an API key was used from")
    networks.add_argument("key_id")
    networks.set_defaults(handler=key_networks)
    allow = actions.add_parser("allow-cidrs",
                               help="restrict an API key to CIDRs (none: no restriction)")
    allow.add_argument("key_id")
    allow.add_argument("cidrs", nargs="*", metavar="CIDR")
    allow.set_defaults(handler=allow_cidrs)


async def list_logins(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    user = await runtime.sessions.users.find(args.user)
    return {"user_id": user.id,
            "logins": await runtime.anomaly.recent_logins(user.id, args.limit)}


async def list_anomalies(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    user = await runtime.sessions.users.find(args.user)
    return {"user_id": user.id,
            "anomalies": await runtime.anomaly.anomalies(user.id, args.limit)}


async def key_networks(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    return await runtime.anomaly.key_networks(args.key_id)


async def allow_cidrs(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    return await runtime.anomaly.set_allowed_cidrs(args.key_id, args.cidrs or None,
                                                   actor="cli")
