"""Optional revocation: follow authd's feed and reject what it lists.

Access tokens are verified locally, so revoking one at authd has no effect here
until this service learns of it. :class:`RevocationFeed` (threads) and
:class:`AsyncRevocationFeed` (asyncio) poll ``GET {base}/v1/revocations?since=CURSOR``
every ``interval`` seconds — that interval is the lag between a revocation at
authd and its enforcement here — and keep a :class:`RevocationList`.

The feed answers ``{"entries": [...], "cursor": "..."}`` where each entry is
``{"kind": "jti" | "sid" | "sub", "value": str, "not_before": int | null,
"expires_at": int}``:

- ``jti``: that one token; ``sid``: every token of that login session;
- ``sub``: every token of that subject issued (``iat``) before ``not_before``,
  or every token of the subject when ``not_before`` is null;
- each entry is forgotten after ``expires_at``, when every token it could cover
  has expired anyway, so the list stays small.

If the feed cannot be reached, the last known list keeps applying (fail open:
tokens are short-lived, and refusing every request because authd is briefly
away would turn an authd outage into an outage of every service). Monitor
``last_success`` if you need to know how stale it is.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from types import TracebackType
from typing import Any, Final, Self

import httpx

from .encoding import json_object
from .errors import MalformedToken
from .fetching import aread_capped, check_url, read_capped

logger = logging.getLogger("authd_verifier")

#: Default polling interval, in seconds: the revocation lag.
DEFAULT_INTERVAL: Final = 5.0

#: When a poll returns entries, poll again at once (up to this many pages) in
#: case the feed pages its answer; an empty page ends the round.
MAX_PAGES_PER_POLL: Final = 10

#: A feed page larger than this is refused, after reading no more than that:
#: entries live only as long as the tokens they cover, so real pages are small.
MAX_FEED_BYTES: Final = 16 * 1024 * 1024

_KINDS: Final = frozenset({"jti", "sid", "sub"})


class RevocationList:
    """The revocations known right now; ``is_revoked`` is safe to call from any thread."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._tokens: dict[str, int] = {}
        self._sessions: dict[str, int] = {}
        self._subjects: dict[str, list[tuple[float, int]]] = {}
        #: Grows whenever an entry is added (after it is in place), so a cache of
        #: verified tokens knows when "not revoked" may have stopped being true.
        #: Expiry never bumps it: an expired entry covers fewer tokens, not more.
        self.generation = 0

    def __len__(self) -> int:
        return len(self._tokens) + len(self._sessions) + len(self._subjects)

    def apply(self, entries: Iterable[Any]) -> None:
        """Add feed entries; malformed ones are skipped with a log line."""
        added = False
        with self._lock:
            for entry in entries:
                if not _valid_entry(entry):
                    logger.warning("skipping malformed revocation entry")
                    continue
                kind, value, expires_at = entry["kind"], entry["value"], entry["expires_at"]
                if kind == "jti":
                    self._tokens[value] = max(expires_at, self._tokens.get(value, 0))
                elif kind == "sid":
                    self._sessions[value] = max(expires_at, self._sessions.get(value, 0))
                else:
                    not_before = entry["not_before"]
                    cutoff = math.inf if not_before is None else float(not_before)
                    self._subjects.setdefault(value, []).append((cutoff, expires_at))
                added = True
            self._prune(self._clock())
            if added:
                self.generation += 1

    def _prune(self, now: float) -> None:
        self._tokens = {k: v for k, v in self._tokens.items() if v > now}
        self._sessions = {k: v for k, v in self._sessions.items() if v > now}
        subjects: dict[str, list[tuple[float, int]]] = {}
        for subject, windows in self._subjects.items():
            live = [window for window in windows if window[1] > now]
            if live:
                subjects[subject] = live
        self._subjects = subjects

    def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        """Whether a verified token with these claims is covered by a live entry."""
        if not (self._tokens or self._sessions or self._subjects):
            return False
        now = self._clock()
        expires = self._tokens.get(claims["jti"])
        if expires is not None and expires > now:
            return True
        sid = claims.get("sid")
        if sid is not None:
            expires = self._sessions.get(sid)
            if expires is not None and expires > now:
                return True
        issued_at = claims["iat"]
        for cutoff, window_expires in self._subjects.get(claims["sub"], ()):
            if window_expires > now and issued_at < cutoff:
                return True
        return False


def _valid_entry(entry: Any) -> bool:
    if not isinstance(entry, dict):
        return False
    not_before = entry.get("not_before")
    expires_at = entry.get("expires_at")
    value = entry.get("value")
    return (
        entry.get("kind") in _KINDS
        and isinstance(value, str)
        and bool(value)
        and (not_before is None or type(not_before) is int)
        and type(expires_at) is int
    )


def _parse_page(body: bytes) -> tuple[list[Any], str]:
    try:
        page = json_object(body)
    except MalformedToken as error:
        raise ValueError("revocation feed answer is not a JSON object") from error
    entries, cursor = page.get("entries"), page.get("cursor")
    if not isinstance(entries, list) or not isinstance(cursor, str):
        raise ValueError("revocation feed answer lacks entries or cursor")
    return entries, cursor


class _FeedCore:
    def __init__(
        self, base_url: str, interval: float, clock: Callable[[], float], allow_insecure_http: bool
    ) -> None:
        check_url(base_url, allow_insecure_http, "revocation feed")
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.url = base_url.rstrip("/") + "/v1/revocations"
        self.interval = interval
        self.revocations = RevocationList(clock)
        self.cursor: str | None = None
        #: ``time.monotonic()`` of the last successful poll, or ``None``.
        self.last_success: float | None = None

    def is_revoked(self, claims: Mapping[str, Any]) -> bool:
        """Whether the token is revoked, as of the last successful poll."""
        return self.revocations.is_revoked(claims)

    @property
    def generation(self) -> int:
        """:attr:`RevocationList.generation` of the list this feed keeps."""
        return self.revocations.generation

    def _params(self) -> dict[str, str]:
        return {} if self.cursor is None else {"since": self.cursor}

    def _accept(self, status: int, body: bytes) -> bool:
        """Apply one page; return whether another page should be fetched now."""
        if status != 200:
            raise ValueError(f"unexpected HTTP status {status}")
        entries, cursor = _parse_page(body)
        self.revocations.apply(entries)
        more = bool(entries) and cursor != self.cursor
        self.cursor = cursor
        return more

    def _succeeded(self) -> None:
        self.last_success = time.monotonic()

    def _failed(self, error: Exception) -> None:
        logger.warning("revocation feed poll of %s failed: %s", self.url, error)


class RevocationFeed(_FeedCore):
    """Polls authd's revocation feed from a daemon thread; pass it as ``revocations=``."""

    def __init__(
        self,
        base_url: str,
        *,
        interval: float = DEFAULT_INTERVAL,
        client: httpx.Client | None = None,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        allow_insecure_http: bool = False,
    ) -> None:
        super().__init__(base_url, interval, clock, allow_insecure_http)
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def poll_once(self) -> bool:
        """Fetch what is new since the last cursor; return whether it succeeded."""
        try:
            for _ in range(MAX_PAGES_PER_POLL):
                with self._client.stream("GET", self.url, params=self._params()) as response:
                    body = read_capped(response.iter_bytes(), MAX_FEED_BYTES)
                if not self._accept(response.status_code, body):
                    break
        except (httpx.HTTPError, ValueError) as error:
            self._failed(error)
            return False
        self._succeeded()
        return True

    def start(self) -> Self:
        """Poll once now (so the list is current before serving), then every ``interval``."""
        if self._thread is None:
            self.poll_once()
            self._thread = threading.Thread(
                target=self._run, name="authd-verifier-revocations", daemon=True
            )
            self._thread.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.poll_once()

    def close(self) -> None:
        """Stop polling and close the HTTP client if we created it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncRevocationFeed(_FeedCore):
    """Polls authd's revocation feed from an asyncio task; pass it as ``revocations=``."""

    def __init__(
        self,
        base_url: str,
        *,
        interval: float = DEFAULT_INTERVAL,
        client: httpx.AsyncClient | None = None,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.time,
        allow_insecure_http: bool = False,
    ) -> None:
        super().__init__(base_url, interval, clock, allow_insecure_http)
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._task: asyncio.Task[None] | None = None

    async def poll_once(self) -> bool:
        """Fetch what is new since the last cursor; return whether it succeeded."""
        try:
            for _ in range(MAX_PAGES_PER_POLL):
                async with self._client.stream("GET", self.url, params=self._params()) as response:
                    body = await aread_capped(response.aiter_bytes(), MAX_FEED_BYTES)
                if not self._accept(response.status_code, body):
                    break
        except (httpx.HTTPError, ValueError) as error:
            self._failed(error)
            return False
        self._succeeded()
        return True

    async def start(self) -> Self:
        """Poll once now (so the list is current before serving), then every ``interval``."""
        if self._task is None:
            await self.poll_once()
            self._task = asyncio.get_running_loop().create_task(
                self._run(), name="authd-verifier-revocations"
            )
        return self

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.poll_once()

    async def aclose(self) -> None:
        """Stop polling and close the HTTP client if we created it."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
