"""``authd clients …``, ``authd apikeys …`` and ``authd bootstrap`` (DESIGN §3a).

The commands call the same service methods as the admin API, so they are audited the
same way (actor ``cli``) and publish the same invalidations: a key revoked from the
CLI stops working on every replica within a second when Redis is configured.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from service.apikeys.keys import parse_scopes
from service.config import Rate, parse_duration, parse_rate

if TYPE_CHECKING:
    from service.runtime import Runtime

ACTOR = "cli"


def _duration(text: str) -> float:
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _rate(text: str) -> Rate:
    try:
        return parse_rate(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bootstrap_cmd = sub.add_parser(
        "bootstrap", help="create the admin client if absent and print a new admin API key"
    )
    bootstrap_cmd.add_argument("--if-absent", action="store_true",
                               help="do nothing when the admin client exists")
    bootstrap_cmd.set_defaults(handler=bootstrap)

    clients = sub.add_parser("clients", help="service accounts")
    c_actions = clients.add_subparsers(dest="clients_command", required=True, metavar="ACTION")
    create = c_actions.add_parser("create", help="create a client")
    create.add_argument("name")
    create.add_argument("--scope", default="",
                        help='allowed scopes, e.g. "read:things write:things"')
    create.add_argument("--audience", default=None,
                        help="allowed audiences, space separated; the first is the default")
    create.add_argument("--token-ttl", type=_duration, default=None,
                        help="access-token lifetime, e.g. 15m (default AUTHD_API_KEY_TOKEN_TTL)")
    _token_policy_options(create)
    create.set_defaults(handler=create_client)
    policy = c_actions.add_parser(
        "set-policy", help="set a client's token-exchange audiences and DPoP requirement")
    policy.add_argument("client_id")
    _token_policy_options(policy)
    policy.add_argument("--no-exchange", action="store_true",
                        help="allow no token exchange at all")
    policy.set_defaults(handler=set_policy)
    c_actions.add_parser("list", help="list clients").set_defaults(handler=list_clients)
    disable = c_actions.add_parser("disable", help="disable a client and all its keys")
    disable.add_argument("client_id")
    disable.set_defaults(handler=disable_client)

    apikeys = sub.add_parser("apikeys", help="API keys")
    k_actions = apikeys.add_subparsers(dest="apikeys_command", required=True, metavar="ACTION")
    k_create = k_actions.add_parser("create", help="create a key (printed once)")
    k_create.add_argument("--client", required=True, dest="client_id")
    k_create.add_argument("--scope", default=None, help="a subset of the client's scopes")
    k_create.add_argument("--expires-in", type=_duration, default=None, help="e.g. 90d")
    k_create.add_argument("--rate-limit", type=_rate, default=None, help="e.g. 100/m")
    k_create.set_defaults(handler=create_key)
    k_list = k_actions.add_parser("list", help="list a client's keys")
    k_list.add_argument("--client", required=True, dest="client_id")
    k_list.set_defaults(handler=list_keys)
    k_revoke = k_actions.add_parser("revoke", help="revoke a key")
    k_revoke.add_argument("key_id")
    k_revoke.set_defaults(handler=revoke_key)
    k_rotate = k_actions.add_parser("rotate", help="create a successor; expire the old key later")
    k_rotate.add_argument("key_id")
    k_rotate.add_argument("--overlap", type=_duration, default=86400.0,
                          help="how long the old key keeps working (default 24h)")
    k_rotate.set_defaults(handler=rotate_key)


async def bootstrap(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    issued = await runtime.apikeys.bootstrap(if_absent=args.if_absent, actor=ACTOR)
    if issued is None:
        # Human output stays silent on later starts of `make run`; --json still
        # prints its one object.
        return {"status": "exists", "message": ""}
    result = issued.as_dict()
    result["message"] = (
        f"Admin API key (scope authd:admin), shown once - store it now:\n"
        f"  {result['api_key']}\n"
        f"Exchange it: curl -s -X POST -H 'X-API-Key: <key>' {runtime.settings.issuer}/v1/token"
    )
    return result


async def create_client(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    client = await runtime.apikeys.create_client(
        args.name, scopes=parse_scopes(args.scope),
        audiences=tuple((args.audience or "").split()), token_ttl=args.token_ttl, actor=ACTOR,
    )
    if args.exchange_audiences or args.dpop_required:
        client = await runtime.apikeys.set_token_policy(
            client.id, exchange_audiences=args.exchange_audiences and tuple(
                args.exchange_audiences), dpop_required=args.dpop_required, actor=ACTOR,
        )
    return client.as_dict()


def _token_policy_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--exchange-audience", action="append", default=None,
                        metavar="AUD", dest="exchange_audiences",
                        help="an audience this client may obtain by token exchange"
                             " (RFC 8693); repeat for several")
    parser.add_argument("--dpop-required", action=argparse.BooleanOptionalAction,
                        default=None, help="token requests must carry a DPoP proof (RFC 9449)")


async def set_policy(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    audiences = () if args.no_exchange else (
        None if args.exchange_audiences is None else tuple(args.exchange_audiences))
    client = await runtime.apikeys.set_token_policy(
        args.client_id, exchange_audiences=audiences, dpop_required=args.dpop_required,
        actor=ACTOR,
    )
    return client.as_dict()


async def list_clients(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    return {"clients": [c.as_dict() for c in await runtime.apikeys.clients()]}


async def disable_client(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    return (await runtime.apikeys.disable_client(args.client_id, actor=ACTOR)).as_dict()


async def create_key(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    issued = await runtime.apikeys.create_key(
        args.client_id,
        scopes=None if args.scope is None else parse_scopes(args.scope),
        expires_in=args.expires_in, rate=args.rate_limit, actor=ACTOR,
    )
    return issued.as_dict()


async def list_keys(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    return {"keys": [k.as_dict() for k in await runtime.apikeys.keys(args.client_id)]}


async def revoke_key(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    return (await runtime.apikeys.revoke_key(args.key_id, actor=ACTOR)).as_dict()


async def rotate_key(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    issued, old = await runtime.apikeys.rotate_key(args.key_id, overlap=args.overlap, actor=ACTOR)
    return {**issued.as_dict(), "previous": old.as_dict()}
