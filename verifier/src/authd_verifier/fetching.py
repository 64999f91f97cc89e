"""What the JWKS cache and the revocation feed share about fetching from authd.

Both documents decide what this service believes — which signatures, which
revocations — so where they come from and how much of them is read matter:

- :func:`check_url` allows only HTTPS, or plain HTTP to the loopback interface
  (a local authd in development and tests), or plain HTTP the operator opted
  into with ``allow_insecure_http``;
- :func:`read_capped` / :func:`aread_capped` read a streamed body and stop at a
  size cap, so an oversized answer is refused after ``limit`` bytes rather than
  buffered whole first.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import Final
from urllib.parse import urlsplit

_LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "::1", "localhost"})


def check_url(url: str, allow_insecure_http: bool, what: str) -> None:
    """Raise ``ValueError`` unless ``url`` may be fetched (``what`` names it in the message)."""
    parts = urlsplit(url)
    if parts.scheme == "https" or (
        parts.scheme == "http" and (allow_insecure_http or parts.hostname in _LOOPBACK_HOSTS)
    ):
        return
    raise ValueError(f"the {what} URL must use https (or set allow_insecure_http=True)")


class ResponseTooLarge(ValueError):
    """A response body went past its size cap; the rest of it was not read."""


def read_capped(chunks: Iterator[bytes], limit: int) -> bytes:
    """Join ``chunks``, raising :class:`ResponseTooLarge` once they exceed ``limit`` bytes."""
    body = bytearray()
    for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise ResponseTooLarge(f"response larger than {limit} bytes")
    return bytes(body)


async def aread_capped(chunks: AsyncIterator[bytes], limit: int) -> bytes:
    """The async twin of :func:`read_capped`."""
    body = bytearray()
    async for chunk in chunks:
        body += chunk
        if len(body) > limit:
            raise ResponseTooLarge(f"response larger than {limit} bytes")
    return bytes(body)
