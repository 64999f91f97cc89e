"""Request bodies are read strictly, and every malformed one is a clear 4xx."""

from __future__ import annotations

import json

import pytest

from service.errors import InvalidRequest
from service.http.requests import whole_number
from tests.http.app import client

PROBLEM = "application/problem+json"


async def test_a_json_object_is_read() -> None:
    """A well-formed JSON object reaches the handler as a dict."""
    async with client() as http:
        response = await http.post("/json", json={"email": "a@example.com"})
    assert response.status_code == 200
    assert response.json() == {"email": "a@example.com"}


@pytest.mark.parametrize(
    "body",
    [b"{", b"not json", b"\xff\xfe\x00", b"", b"[1, 2]", b'"text"', b"[" * 1500,
     b'{"name": "a\\ud800b"}', b'{"n": {"deep": ["\\uDFFF"]}}'],
    ids=["truncated", "garbage", "bad-utf8", "empty", "array", "string", "deep-nesting",
         "lone-surrogate", "nested-lone-low-surrogate"],
)
async def test_a_malformed_json_body_is_400_problem(body: bytes) -> None:
    """Anything but one JSON object is a 400 problem, never a 500."""
    async with client() as http:
        response = await http.post("/json", content=body,
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM
    assert response.json()["status"] == 400


async def test_an_escaped_surrogate_pair_is_ordinary_text() -> None:
    """``\\ud83d\\ude00`` is one character (an emoji), accepted as such."""
    async with client() as http:
        response = await http.post("/json", content=b'{"name": "\\ud83d\\ude00"}',
                                   headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    assert response.json() == {"name": "\U0001f600"}


async def test_json_with_the_wrong_content_type_is_415() -> None:
    """A JSON endpoint refuses a form body with 415 rather than misparsing it."""
    async with client() as http:
        response = await http.post("/json", data={"a": "b"})
    assert response.status_code == 415
    assert response.headers["content-type"] == PROBLEM


async def test_a_charset_parameter_is_accepted() -> None:
    """``application/json; charset=utf-8`` is still JSON."""
    async with client() as http:
        response = await http.post("/json", content=b'{"a": 1}',
                                   headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 200


async def test_a_form_is_read() -> None:
    """A url-encoded form reaches the handler as a dict of strings."""
    async with client() as http:
        response = await http.post("/form", data={"grant_type": "client_credentials", "x": ""})
    assert response.json() == {"grant_type": "client_credentials", "x": ""}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b"a=1&a=2", "application/x-www-form-urlencoded"),
        (b"a=%ff", "application/x-www-form-urlencoded"),
        (b"\xff=1", "application/x-www-form-urlencoded"),
        (b"novalue", "application/x-www-form-urlencoded"),
        (b'{"a": 1}', "application/json"),
        (b"a=1", "text/plain"),
    ],
    ids=["repeated", "bad-percent", "bad-utf8", "no-equals", "json", "text"],
)
async def test_a_malformed_form_is_400(body: bytes, content_type: str) -> None:
    """RFC 6749 §3.2: repeated parameters, bad encodings and other types are refused."""
    async with client() as http:
        response = await http.post("/form", content=body, headers={"Content-Type": content_type})
    assert response.status_code == 400
    assert response.headers["content-type"] == PROBLEM


async def test_a_form_error_on_an_oauth_path_is_rfc6749_json() -> None:
    """Under /oauth/ the same error is ``{"error", "error_description"}`` (RFC 6749 §5.2)."""
    async with client() as http:
        response = await http.post("/oauth/form", content=b"a=1&a=2",
                                   headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/json"
    body = json.loads(response.content)
    assert body["error"] == "invalid_request"
    assert "more than once" in body["error_description"]
    assert response.headers["cache-control"] == "no-store"


@pytest.mark.parametrize("text", ["²", "٣", "-1", "1_0", " 5", "", "0", "201", "1e2"])
def test_a_whole_number_outside_ascii_digits_or_the_range_is_a_400(text: str) -> None:
    """Only ASCII digits in range pass: "²".isdigit() is true, but int("²") raises."""
    with pytest.raises(InvalidRequest, match="limit must be a whole number from 1 to 200"):
        whole_number("limit", text, 1, 200)


def test_a_whole_number_in_range_is_returned() -> None:
    assert whole_number("limit", "200", 1, 200) == 200
    assert whole_number("after_id", 7, 0, 10) == 7


def _parse_qsl_strict(body: bytes) -> dict[str, str] | None:
    """The reference: what ``parse_qsl`` (strict, UTF-8 strict, blanks kept) accepts,
    each name once; None where it refuses."""
    from urllib.parse import parse_qsl

    try:
        text = body.decode("utf-8")
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=bool(text),
                          errors="strict")
    except (UnicodeDecodeError, ValueError):
        return None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            return None
        form[name] = value
    return form


def test_the_form_parser_answers_as_parse_qsl_strict_does() -> None:
    """The one-pass parser accepts and refuses exactly what parse_qsl's strict mode
    does, on 50,000 random bodies built from the characters that matter (separators,
    escapes good and bad, plus signs, raw UTF-8 and invalid bytes), remembered
    fields included."""
    import random

    from service.errors import InvalidRequest
    from service.http.requests import parse_form

    parts = [b"a", b"scope", b"grant_type", b"=", b"&", b"%", b"+", b"2", b"F", b"%3A",
             b"%C3%A9", b"%ff", b"\xc3\xa9", b"\xff", b";", b"%2", b" ", b"%20"]
    rng = random.Random(20261204)
    for _ in range(50_000):
        body = b"".join(rng.choice(parts) for _ in range(rng.randint(0, 10)))
        try:
            parsed: dict[str, str] | None = parse_form(body)
        except InvalidRequest:
            parsed = None
        assert parsed == _parse_qsl_strict(body), body
