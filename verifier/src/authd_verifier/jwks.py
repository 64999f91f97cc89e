"""JWKS caches that fetch authd's public keys lazily and keep them fresh.

:class:`JWKSCache` (threads, ``httpx.Client``) and :class:`AsyncJWKSCache`
(asyncio, ``httpx.AsyncClient``) behave the same way:

- The first lookup fetches ``{issuer}/.well-known/jwks.json``; later lookups are
  a dictionary read.
- Keys are fresh for the response's ``max-age`` (bounded by :class:`CachePolicy`).
  Once ``refresh_ahead`` of that lifetime is left, a lookup starts a background
  refresh and returns at once; it revalidates with ``If-None-Match``.
- An unknown ``kid`` triggers a refetch only if none ran within
  ``refetch_interval``, and concurrent lookups share one fetch (single flight).
- If authd cannot be reached, cached keys keep serving for ``stale_if_error``
  past their expiry; then lookups raise :class:`KeySetUnavailable`.
- Redirects are not followed, and the URL must be HTTPS unless it points at the
  loopback interface or ``allow_insecure_http`` is set: the JWKS decides which
  signatures are believed, so where it comes from matters.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Final, Self

import httpx

from .cache_policy import MAX_JWKS_BYTES, CachePolicy, KeySetSnapshot
from .errors import KeySetUnavailable
from .fetching import ResponseTooLarge, aread_capped, check_url, read_capped
from .keys import VerificationKey

logger = logging.getLogger("authd_verifier")

Clock = Callable[[], float]
DEFAULT_TIMEOUT: Final = 5.0


def jwks_url(issuer: str) -> str:
    """Where authd publishes its keys for ``issuer`` (DESIGN §3)."""
    return issuer.rstrip("/") + "/.well-known/jwks.json"


class _CacheCore:
    """State and decisions shared by the sync and async caches (no I/O here)."""

    def __init__(
        self, url: str, policy: CachePolicy, clock: Clock, allow_insecure_http: bool
    ) -> None:
        check_url(url, allow_insecure_http, "JWKS")
        self.url = url
        self.policy = policy
        self._clock = clock
        self._snapshot = KeySetSnapshot()
        self._last_attempt = -float("inf")
        # Bumped after every fetch, so a caller that queued behind a fetch can
        # tell that it already happened and reuse its result (single flight).
        self._generation = 0
        self.fetch_count = 0

    @property
    def snapshot(self) -> KeySetSnapshot:
        """The current key set and its timers."""
        return self._snapshot

    def _may_fetch(self, now: float) -> bool:
        return now - self._last_attempt >= self.policy.refetch_interval

    def _begin_fetch(self) -> dict[str, str]:
        self._last_attempt = self._clock()
        self.fetch_count += 1
        return self._snapshot.request_headers()

    def _end_fetch(self, status: int, headers: httpx.Headers, body: bytes) -> None:
        try:
            self._snapshot = self._snapshot.after_response(
                self.policy, status, headers, body, self._clock()
            )
        except ValueError as error:
            logger.warning("JWKS from %s rejected: %s", self.url, error)
        self._generation += 1

    def _fetch_failed(self, error: Exception) -> None:
        logger.warning("JWKS fetch from %s failed: %s", self.url, type(error).__name__)
        self._generation += 1

    def _lookup(self, kid: str) -> tuple[VerificationKey | None, bool, bool]:
        """Return (key, whether a refetch could help, whether to refresh in background)."""
        now = self._clock()
        snapshot = self._snapshot
        if now < snapshot.usable_until:
            key = snapshot.keys.get(kid)
            refresh = now >= snapshot.refresh_at and self._may_fetch(now)
            return key, key is None, refresh
        return None, True, False

    def _after_refetch(self, kid: str) -> VerificationKey | None:
        snapshot = self._snapshot
        if self._clock() >= snapshot.usable_until:
            raise KeySetUnavailable()
        return snapshot.keys.get(kid)


class JWKSCache(_CacheCore):
    """Thread-safe JWKS cache for synchronous code; see the module docstring."""

    def __init__(
        self,
        url: str,
        *,
        policy: CachePolicy | None = None,
        client: httpx.Client | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Clock = time.monotonic,
        allow_insecure_http: bool = False,
    ) -> None:
        super().__init__(url, policy or CachePolicy(), clock, allow_insecure_http)
        self._owns_client = client is None
        self._client = client or httpx.Client(timeout=timeout, follow_redirects=False)
        self._fetch_lock = threading.Lock()
        self._refresher: threading.Thread | None = None
        self._refresher_lock = threading.Lock()

    def get_key(self, kid: str) -> VerificationKey | None:
        """The published key ``kid``, or ``None`` if authd does not publish it.

        Blocks only for the first fetch, or for a rate-limited refetch on an
        unknown ``kid``. Raises :class:`KeySetUnavailable` when no usable key set
        can be had.
        """
        snapshot = self._snapshot
        if self._clock() < snapshot.refresh_at:  # the hot path: fresh keys, nothing due
            key = snapshot.keys.get(kid)
            if key is not None:
                return key
        key, refetch, refresh = self._lookup(kid)
        if refresh:
            self._refresh_in_background()
        if not refetch:
            return key
        self._refetch()
        return self._after_refetch(kid)

    def refresh(self) -> None:
        """Fetch now unless a fetch ran within ``refetch_interval`` (or is running)."""
        self._refetch()

    def _refetch(self) -> None:
        generation = self._generation
        with self._fetch_lock:
            if self._generation != generation or not self._may_fetch(self._clock()):
                return
            headers = self._begin_fetch()
            try:
                with self._client.stream("GET", self.url, headers=headers) as response:
                    body = read_capped(response.iter_bytes(), MAX_JWKS_BYTES)
            except (httpx.HTTPError, ResponseTooLarge) as error:
                self._fetch_failed(error)
                return
            self._end_fetch(response.status_code, response.headers, body)

    def _refresh_in_background(self) -> None:
        with self._refresher_lock:
            if self._refresher is not None and self._refresher.is_alive():
                return
            self._refresher = threading.Thread(
                target=self._refetch, name="authd-verifier-jwks", daemon=True
            )
            self._refresher.start()

    def wait_for_refresh(self, timeout: float | None = None) -> None:
        """Wait for a running background refresh (useful in tests and at shutdown)."""
        refresher = self._refresher
        if refresher is not None:
            refresher.join(timeout)

    def close(self) -> None:
        """Wait for a background refresh and close the HTTP client if we created it."""
        self.wait_for_refresh(DEFAULT_TIMEOUT)
        if self._owns_client:
            self._client.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


class AsyncJWKSCache(_CacheCore):
    """JWKS cache for asyncio code; see the module docstring.

    Bound to the event loop it is first used on (its lock and background task).
    """

    def __init__(
        self,
        url: str,
        *,
        policy: CachePolicy | None = None,
        client: httpx.AsyncClient | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        clock: Clock = time.monotonic,
        allow_insecure_http: bool = False,
    ) -> None:
        super().__init__(url, policy or CachePolicy(), clock, allow_insecure_http)
        self._owns_client = client is None
        self._client = client or httpx.AsyncClient(timeout=timeout, follow_redirects=False)
        self._fetch_lock = asyncio.Lock()
        self._refresher: asyncio.Task[None] | None = None

    async def get_key(self, kid: str) -> VerificationKey | None:
        """The published key ``kid``, or ``None``; the async twin of ``JWKSCache.get_key``."""
        snapshot = self._snapshot
        if self._clock() < snapshot.refresh_at:  # the hot path: fresh keys, nothing due
            key = snapshot.keys.get(kid)
            if key is not None:
                return key
        key, refetch, refresh = self._lookup(kid)
        if refresh:
            self._refresh_in_background()
        if not refetch:
            return key
        await self._refetch()
        return self._after_refetch(kid)

    async def refresh(self) -> None:
        """Fetch now unless a fetch ran within ``refetch_interval`` (or is running)."""
        await self._refetch()

    async def _refetch(self) -> None:
        generation = self._generation
        async with self._fetch_lock:
            if self._generation != generation or not self._may_fetch(self._clock()):
                return
            headers = self._begin_fetch()
            try:
                async with self._client.stream("GET", self.url, headers=headers) as response:
                    body = await aread_capped(response.aiter_bytes(), MAX_JWKS_BYTES)
            except (httpx.HTTPError, ResponseTooLarge) as error:
                self._fetch_failed(error)
                return
            self._end_fetch(response.status_code, response.headers, body)

    def _refresh_in_background(self) -> None:
        if self._refresher is not None and not self._refresher.done():
            return
        self._refresher = asyncio.get_running_loop().create_task(
            self._refetch(), name="authd-verifier-jwks"
        )

    async def wait_for_refresh(self) -> None:
        """Wait for a running background refresh (useful in tests and at shutdown)."""
        if self._refresher is not None:
            await asyncio.shield(self._refresher)

    async def aclose(self) -> None:
        """Cancel a background refresh and close the HTTP client if we created it."""
        if self._refresher is not None:
            self._refresher.cancel()
            try:
                await self._refresher
            except asyncio.CancelledError:
                pass
        if self._owns_client:
            await self._client.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()
