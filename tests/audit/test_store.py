"""The audit store, the foundation's own domain store, on both backends."""

from __future__ import annotations

from service.audit.log import AuditLog
from service.audit.store import AuditEvent, AuditStore
from service.store import Database


def event(action: str, at: float, subject: str | None = None, **details: object) -> AuditEvent:
    return AuditEvent(at=at, action=action, outcome="ok", actor="admin", subject=subject,
                      ip="127.0.0.1", details=dict(details))


async def test_appended_events_read_back_newest_first(database: Database) -> None:
    """query answers every field of every event, the newest first."""
    store = AuditStore(database)
    await store.append([event("keys.rotate", 1.0, kid="k1"), event("clients.create", 2.0)])
    found = await store.query()
    assert [e.action for e in found] == ["clients.create", "keys.rotate"]
    rotate = found[1]
    assert rotate.details == {"kid": "k1"}
    assert (rotate.at, rotate.outcome, rotate.actor, rotate.ip) == (1.0, "ok", "admin",
                                                                     "127.0.0.1")
    assert rotate.id is not None


async def test_query_filters_by_action_and_subject(database: Database) -> None:
    """action and subject narrow the result; None means no filter."""
    store = AuditStore(database)
    await store.append([
        event("a", 1.0, subject="s1"), event("b", 2.0, subject="s1"), event("a", 3.0, "s2"),
    ])
    assert [e.at for e in await store.query(action="a")] == [3.0, 1.0]
    assert [e.at for e in await store.query(subject="s1")] == [2.0, 1.0]
    assert [e.at for e in await store.query(action="a", subject="s1")] == [1.0]
    assert await store.query(action="none") == []


async def test_query_pages_by_id_and_limit(database: Database) -> None:
    """limit caps the answer and after_id skips what was already read."""
    store = AuditStore(database)
    await store.append([event("a", float(i)) for i in range(5)])
    newest_two = await store.query(limit=2)
    assert [e.at for e in newest_two] == [4.0, 3.0]
    oldest_id = min(e.id for e in await store.query() if e.id is not None)
    after = await store.query(after_id=oldest_id)
    assert len(after) == 4


async def test_appending_nothing_is_a_no_op(database: Database) -> None:
    """An empty batch writes nothing and does not fail."""
    store = AuditStore(database)
    await store.append([])
    assert await store.query() == []


async def test_a_batch_is_written_atomically(database: Database) -> None:
    """A batch with one bad event writes none of its events."""
    store = AuditStore(database)
    bad = AuditEvent(at=1.0, action=None, outcome="ok")  # type: ignore[arg-type]
    try:
        await store.append([event("a", 1.0), bad])
    except Exception:  # noqa: S110 - the NOT NULL violation is the point
        pass
    assert await store.query() == []


async def test_the_audit_log_flushes_buffered_events(database: Database) -> None:
    """Events recorded on the hot path reach the store when the log flushes."""
    audit = AuditLog(AuditStore(database))
    audit.record("token.issued", subject="c1", client_id="c1")
    await audit.flush()
    [written] = await audit.store.query()
    assert (written.action, written.subject) == ("token.issued", "c1")


async def test_audit_details_never_hold_a_secret(database: Database) -> None:
    """A credential passed as an audit detail is redacted before it is stored."""
    audit = AuditLog(AuditStore(database))
    await audit.write("apikeys.create", api_key="ak_live_" + "A" * 30, note="ok")
    [written] = await audit.store.query()
    assert "ak_live_" not in str(written.details)
    assert written.details["note"] == "ok"
