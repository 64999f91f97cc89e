"""CLIENT and INTERNAL spans around storage, Redis and signing, when tracing is on.

Each wrapper is put in place at wiring time (``service/runtime.py``,
``service/signing/wiring.py``) and only when tracing is on; with it off, the
domains hold the very ``Database``, Redis client and issuer they hold today.

What a span may say is decided here, once: a statement's operation and the table it
names (never its text or parameters: an e-mail, a digest, a key id), a Redis
command's name (never its keys: they carry digests of API keys and refresh tokens),
a signature's algorithm and key id. A failure marks the span with the exception's
type only: a driver's message may quote the row that broke a constraint.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from contextlib import (
    AbstractAsyncContextManager,
    AbstractContextManager,
    asynccontextmanager,
    contextmanager,
)
from typing import Any

from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer, get_current_span
from redis.asyncio import Redis
from redis.asyncio.client import Pipeline

from service.signing.issuer import IssuedToken, TokenIssuer
from service.signing.keyring import KeyRing
from service.store.database import Connection, Database, Row, Statement

# The first keyword, and the first table after FROM / INTO / UPDATE / JOIN: enough
# to tell "SELECT api_keys" from "UPDATE refresh_tokens" without any of the text.
_OPERATION = re.compile(r"^\s*([A-Za-z]+)")
_TABLE = re.compile(r"\b(?:FROM|INTO|UPDATE|JOIN)\s+\"?([A-Za-z_][A-Za-z0-9_]*)", re.IGNORECASE)
# Statements are constants of the stores, so the parses are few; the bound guards
# against SQL built per call (an IN list of varying length) growing it forever.
_PARSED_MAX = 4096


@contextmanager
def _span(tracer: Tracer, name: str, kind: SpanKind,
          attributes: Mapping[str, str | int]) -> Iterator[Span | None]:
    """A child span of the current one; none at all outside a traced request: the
    background loops (bus polling, revocation sync, audit flushes) would otherwise
    export a one-span trace every few hundred milliseconds, telling nobody anything."""
    if not get_current_span().is_recording():
        yield None
        return
    with tracer.start_as_current_span(name, kind=kind, attributes=attributes,
                                      record_exception=False,
                                      set_status_on_exception=False) as span:
        try:
            yield span
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__qualname__)
            span.set_status(Status(StatusCode.ERROR))
            raise


class _TracedStatements:
    """A Connection whose statements each run in a CLIENT span."""

    def __init__(self, inner: Connection, tracer: Tracer, system: str,
                 parsed: dict[str, tuple[str, dict[str, str | int]]]) -> None:
        self._inner = inner
        self._tracer = tracer
        self._system = system
        self._parsed = parsed

    def _statement(self, sql: str) -> AbstractAsyncContextManager[None]:
        return _async(self._statement_span(sql))

    def _statement_span(self, sql: str) -> AbstractContextManager[Span | None]:
        known = self._parsed.get(sql)
        if known is None:
            known = _describe(sql, self._system)
            if len(self._parsed) < _PARSED_MAX:
                self._parsed[sql] = known
        return _span(self._tracer, known[0], SpanKind.CLIENT, known[1])

    async def fetch(self, sql: str, *args: Any) -> list[Row]:
        async with self._statement(sql):
            return await self._inner.fetch(sql, *args)

    async def fetchrow(self, sql: str, *args: Any) -> Row | None:
        async with self._statement(sql):
            return await self._inner.fetchrow(sql, *args)

    async def fetchval(self, sql: str, *args: Any) -> Any:
        async with self._statement(sql):
            return await self._inner.fetchval(sql, *args)

    async def execute(self, sql: str, *args: Any) -> int:
        async with self._statement(sql):
            return await self._inner.execute(sql, *args)

    async def lock(self, name: str) -> None:
        with _span(self._tracer, "LOCK", SpanKind.CLIENT, {"db.system.name": self._system,
                                                            "db.operation.name": "LOCK"}):
            await self._inner.lock(name)


class TracedDatabase(_TracedStatements):
    """``Database`` with a span per statement and one around each transaction; both
    dialects, since every store speaks only this interface."""

    def __init__(self, inner: Database, tracer: Tracer) -> None:
        super().__init__(inner, tracer, inner.dialect, {})
        self._database = inner
        self.dialect = inner.dialect

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Connection]:
        with _span(self._tracer, "transaction", SpanKind.CLIENT,
                   {"db.system.name": self._system}):
            async with self._database.transaction() as connection:
                yield _TracedStatements(connection, self._tracer, self._system, self._parsed)

    async def transact(self, statements: Sequence[Statement]) -> list[list[Row]]:
        """One span for the whole transaction: its statements run in one trip (on
        SQLite in one call to the driver's thread), so they have no times of their own;
        the span counts them."""
        with _span(self._tracer, "transaction", SpanKind.CLIENT,
                   {"db.system.name": self._system,
                    "db.operation.batch.size": len(statements)}):
            return await self._database.transact(statements)

    async def ping(self) -> None:
        await self._database.ping()

    async def close(self) -> None:
        await self._database.close()


def _describe(sql: str, system: str) -> tuple[str, dict[str, str | int]]:
    """The span name and attributes of a statement: operation and table, no more."""
    match = _OPERATION.match(sql)
    operation = match.group(1).upper() if match else "QUERY"
    attributes: dict[str, str | int] = {"db.system.name": system,
                                        "db.operation.name": operation}
    table = _TABLE.search(sql)
    if table is None:
        return operation, attributes
    attributes["db.collection.name"] = table.group(1).lower()
    return f"{operation} {table.group(1).lower()}", attributes


@asynccontextmanager
async def _async(span: AbstractContextManager[Span | None]) -> AsyncIterator[None]:
    with span:
        yield


def trace_redis(redis: Redis, tracer: Tracer) -> None:
    """Give ``redis`` (this one client, not the class) a span per command and per
    pipeline. redis-py sends every command through ``execute_command`` (scripts too,
    as EVALSHA) and a pipeline's through its ``execute``; replacing the two on the
    instance covers both without wrapping the client in a look-alike type."""
    send = redis.execute_command
    make_pipeline = redis.pipeline

    async def execute_command(*args: Any, **options: Any) -> Any:
        name = str(args[0]).upper() if args else "COMMAND"
        with _span(tracer, name, SpanKind.CLIENT, {"db.system.name": "redis",
                                                    "db.operation.name": name}):
            return await send(*args, **options)  # type: ignore[no-untyped-call]

    def pipeline(transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        pipe = make_pipeline(transaction=transaction, shard_hint=shard_hint)
        run = pipe.execute

        async def execute(raise_on_error: bool = True) -> list[Any]:
            names = [str(command[0][0]).upper() for command in pipe.command_stack]
            operation = "MULTI" if transaction else "PIPELINE"
            with _span(tracer, operation, SpanKind.CLIENT, {
                "db.system.name": "redis", "db.operation.name": operation,
                "db.operation.batch.size": len(names),
                "authd.redis.commands": " ".join(names),
            }):
                return await run(raise_on_error=raise_on_error)

        pipe.execute = execute  # type: ignore[method-assign]
        return pipe

    redis.execute_command = execute_command  # type: ignore[method-assign]
    redis.pipeline = pipeline  # type: ignore[method-assign]


class TracedTokenIssuer(TokenIssuer):
    """The issuer, with an INTERNAL span per signature naming its algorithm and key."""

    def __init__(self, keys: KeyRing, *, issuer: str, threads: int, tracer: Tracer) -> None:
        super().__init__(keys, issuer=issuer, threads=threads)
        self._tracer = tracer

    async def issue(self, **request: Any) -> IssuedToken:
        with _span(self._tracer, "sign", SpanKind.INTERNAL, {}) as span:
            token = await super().issue(**request)
            if span is not None:
                span.set_attribute("authd.signing.kid", token.kid)
                signer = self._keys.prepared
                if signer is not None and signer.kid == token.kid:  # no rotation meanwhile
                    span.set_attribute("authd.signing.alg", signer.alg)
            return token
