"""The CSRF rule for cookie-authenticated requests, and the origin spelling it uses."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from service.errors import CrossSiteRequest
from service.http.csrf import request_origin, require_allowed_page
from service.http.origins import origin_or_none, serialize_origin

ALLOWED = frozenset({"https://auth.example.com", "https://app.example.com"})
JSON = ("content-type", "application/json")


def request(*headers: tuple[str, str]) -> Request:
    return Request({"type": "http", "method": "POST", "path": "/v1/refresh",
                    "headers": [(k.encode(), v.encode()) for k, v in headers]})


def refusal(*headers: tuple[str, str]) -> str:
    with pytest.raises(CrossSiteRequest) as caught:
        require_allowed_page(request(*headers), ALLOWED)
    assert caught.value.status == 403
    return caught.value.description


@pytest.mark.parametrize("origin", ["https://auth.example.com", "https://app.example.com"])
def test_json_from_the_issuer_or_an_allowed_origin_passes(origin: str) -> None:
    """The issuer's own pages and allow-listed ones may use the cookie."""
    require_allowed_page(request(JSON, ("origin", origin)), ALLOWED)


def test_json_with_only_an_allowed_referer_passes() -> None:
    """Without ``Origin``, the origin of ``Referer`` decides."""
    require_allowed_page(
        request(JSON, ("referer", "https://app.example.com/account?tab=1#x")), ALLOWED)


def test_an_unknown_origin_is_refused() -> None:
    """A page on another origin, a sibling subdomain included, may not use the cookie."""
    assert "origin" in refusal(JSON, ("origin", "https://evil.example.com"))


def test_origin_wins_over_an_allowed_referer() -> None:
    """A present ``Origin`` is what counts, whatever the ``Referer`` claims."""
    refusal(JSON, ("origin", "https://evil.example.com"),
            ("referer", "https://app.example.com/"))


def test_origin_null_is_refused() -> None:
    """``Origin: null`` (sandboxed frame, data: page) matches no allowed origin."""
    refusal(JSON, ("origin", "null"), ("referer", "https://app.example.com/"))


def test_a_request_with_neither_origin_nor_referer_is_refused() -> None:
    """No header says which page sent it, so it is not taken on trust."""
    assert "Origin" in refusal(JSON)


def test_a_referer_that_is_no_web_url_is_refused() -> None:
    """A ``Referer`` with no http(s) origin matches nothing."""
    refusal(JSON, ("referer", "about:blank"))


@pytest.mark.parametrize("content_type", [
    "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain", None,
])
def test_a_body_an_html_form_can_send_is_refused(content_type: str | None) -> None:
    """Form, multipart, text/plain and no body are what any page can send with the
    cookie without a preflight; each is refused, even from an allowed origin."""
    headers = [("origin", "https://app.example.com")]
    if content_type is not None:
        headers.append(("content-type", content_type))
    assert "application/json" in refusal(*headers)


def test_request_origin_is_none_without_either_header() -> None:
    """Neither header: no claimed origin."""
    assert request_origin(request(JSON)) is None


@pytest.mark.parametrize(("text", "origin"), [
    ("https://App.Example.COM", "https://app.example.com"),
    ("https://app.example.com:443", "https://app.example.com"),
    ("http://app.example.com:80", "http://app.example.com"),
    ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
    ("http://[::1]:3000", "http://[::1]:3000"),
])
def test_origins_are_serialized_as_browsers_send_them(text: str, origin: str) -> None:
    """Lower-case scheme and host, the default port dropped (RFC 6454 §6.2)."""
    assert serialize_origin(text) == origin


def test_a_whole_url_gives_its_origin() -> None:
    """A ``Referer``'s path, query and fragment are dropped."""
    assert serialize_origin("https://app.example.com/a/b?c#d", whole_url=True) == \
        "https://app.example.com"


@pytest.mark.parametrize("text", ["null", "file:///etc/passwd", "https://", "https://a.b/path",
                                  "https://u:p@a.b", "https://a.b:x", "https://a\"<x>.com",
                                  "https://a b.com"])
def test_what_is_no_origin_gives_none(text: str) -> None:
    """Opaque origins, other schemes, paths, user info, bad ports and hosts with
    characters no host name has are no origin."""
    assert origin_or_none(text) is None
