"""Web origins (RFC 6454): the one way authd spells and compares them.

An origin is ``scheme://host[:port]``, serialized as a browser sends it in ``Origin``:
scheme and host lower-case, the scheme's default port left out. The allow list
(``AUTHD_CORS_ORIGINS``), the issuer's own origin and a request's ``Origin`` or
``Referer`` all go through :func:`serialize_origin`, so ``https://App.example.com:443``
and ``https://app.example.com`` are the same origin and nothing else is.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}
# A DNS name or IPv4 address (letters, digits, dots, hyphens; underscores, which
# browsers accept), or an IPv6 literal's inside: nothing a log line could trip on.
_HOST = re.compile(r"[a-z0-9._-]+|[0-9a-f:.]+")


def serialize_origin(url: str, *, whole_url: bool = False) -> str:
    """The origin of ``url``; ValueError when ``url`` is not an http(s) origin.

    With ``whole_url`` (a ``Referer``), a path, query and fragment may follow and are
    dropped; without it (a configured origin, an ``Origin`` header) anything after the
    port is refused, so an allow-list entry cannot silently mean less than it says.
    """
    if not url.isascii():
        raise ValueError("an origin is ASCII (write an internationalised host in punycode)")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.netloc:
        raise ValueError("expected an origin such as https://app.example.com")
    if "@" in parts.netloc:
        raise ValueError("an origin has no user name or password")
    if not whole_url and (parts.path or parts.query or parts.fragment or url.endswith(("?", "#"))):
        raise ValueError("an origin is scheme://host[:port], with no path, query or fragment")
    host = (parts.hostname or "").lower()
    if not _HOST.fullmatch(host):
        raise ValueError("an origin needs a host name or address")
    try:
        port = parts.port
    except ValueError:
        raise ValueError("the port is not a number from 0 to 65535") from None
    if ":" in host:
        host = f"[{host}]"
    if port is None or port == _DEFAULT_PORTS[scheme]:
        return f"{scheme}://{host}"
    return f"{scheme}://{host}:{port}"


def origin_or_none(url: str, *, whole_url: bool = False) -> str | None:
    """:func:`serialize_origin`, or None for anything that is not an http(s) origin."""
    try:
        return serialize_origin(url, whole_url=whole_url)
    except ValueError:
        return None
