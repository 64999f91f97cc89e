"""``authd audit tail``: the latest audit events, oldest first, as an operator reads."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

from service.audit.query import AuditQuery

if TYPE_CHECKING:
    from service.runtime import Runtime


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    audit = sub.add_parser("audit", help="the audit log")
    actions = audit.add_subparsers(dest="audit_command", required=True, metavar="ACTION")
    tail = actions.add_parser("tail", help="the latest events, oldest first")
    tail.add_argument("--limit", default="20", help="how many (1-1000, default 20)")
    tail.add_argument("--action", default=None, help="only this action, e.g. apikey.revoke")
    tail.add_argument("--subject", default=None, help="only events about this subject")
    tail.add_argument("--after-id", default="0", help="only events newer than this id")
    tail.set_defaults(handler=audit_tail)


async def audit_tail(runtime: Runtime, args: argparse.Namespace) -> dict[str, Any]:
    query = AuditQuery.of(action=args.action, subject=args.subject,
                          after_id=args.after_id, limit=args.limit)
    events = await runtime.audit.store.query(
        action=query.action, subject=query.subject, after_id=query.after_id,
        limit=query.limit,
    )
    return {"events": [event.as_dict() for event in reversed(events)]}
