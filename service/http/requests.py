"""Reading request bodies strictly: one content type, UTF-8, each parameter once.

RFC 6749 §3.2 requires that parameters are not repeated and that the token endpoint
takes ``application/x-www-form-urlencoded``; a JSON body there is a clear 400/415,
never a silent misparse.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any
from urllib.parse import unquote

from starlette.requests import Request

from service.errors import InvalidRequest, UnsupportedMediaType

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"


def media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";", 1)[0].strip().lower()


def parse_form(body: bytes) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, strictly (RFC 6749 §3.2): every
    ``&``-separated field is ``name=value`` (no empty field), UTF-8 after percent-
    decoding, each name once. What ``parse_qsl(strict_parsing=True, errors="strict",
    keep_blank_values=True)`` accepts, in one pass on the token hot path."""
    if not body:
        return {}
    form: dict[str, str] = {}
    try:
        for field in body.decode("utf-8").split("&"):
            name, equals, value = field.partition("=")
            if not equals:
                raise ValueError(field)
            if "%" in name or "+" in name:
                name = _decode(name)
            if "%" in value or "+" in value:
                value = (_decode_remembered(value) if name in _PLAIN_FIELDS
                         and len(value) <= _REMEMBERED_LENGTH else _decode(value))
            if name in form:
                raise InvalidRequest(f"parameter {name} appears more than once")
            form[name] = value
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the form body is not valid UTF-8 url-encoding") from None
    return form


def _decode(text: str) -> str:
    return unquote(text.replace("+", " "), errors="strict")


# Fields that never carry a secret and repeat from request to request (a client asks
# for the same scope every time): their decoded values are remembered, bounded.
# Credentials (client_secret, password, tokens, codes) are never kept.
_PLAIN_FIELDS = frozenset({"grant_type", "scope", "audience", "resource", "token_type_hint",
                           "requested_token_type", "subject_token_type",
                           "actor_token_type"})
_REMEMBERED_LENGTH = 256
_decode_remembered = lru_cache(maxsize=1024)(_decode)


def parse_json_object(body: bytes) -> dict[str, Any]:
    try:
        data = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise InvalidRequest("the body is not valid JSON") from None
    except RecursionError:
        # ``[[[[…`` a few thousand deep exhausts the parser's stack: a client error.
        raise InvalidRequest("the body nests too deeply") from None
    if not isinstance(data, dict):
        raise InvalidRequest("the body must be a JSON object")
    if b"\\u" in body and _holds_lone_surrogate(data):
        raise InvalidRequest("the body holds an unpaired UTF-16 surrogate escape")
    return data


def _holds_lone_surrogate(data: dict[str, Any]) -> bool:
    """JSON lets ``"\\ud800"`` decode to a string no UTF-8 encoder (the database
    driver, the password hasher) accepts; refusing it here answers 400, not 500."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


async def read_form(request: Request, *, required: bool = True) -> dict[str, str]:
    body = await request.body()
    if not body and not required:
        return {}
    if media_type(request) != FORM:
        raise InvalidRequest(f"the body must be {FORM}")
    return parse_form(body)


async def read_json(request: Request) -> dict[str, Any]:
    if media_type(request) != JSON:
        raise UnsupportedMediaType(f"the body must be {JSON}")
    return parse_json_object(await request.body())


def field(data: dict[str, Any], name: str, *, required: bool = True) -> str | None:
    """A string member of a JSON body, or a clear 400."""
    value = data.get(name)
    if value is None:
        if required:
            raise InvalidRequest(f"{name} is required")
        return None
    if not isinstance(value, str):
        raise InvalidRequest(f"{name} must be a string")
    return value


def whole_number(name: str, value: str | int, low: int, high: int) -> int:
    """``value`` (a query parameter's text, or an int) as an int in ``[low, high]``.

    Only ASCII digits count: ``str.isdigit`` is true for "²", which ``int`` refuses.
    """
    if isinstance(value, str):
        if not (value.isascii() and value.isdigit()):
            raise InvalidRequest(f"{name} must be a whole number from {low} to {high}")
        value = int(value)
    if not low <= value <= high:
        raise InvalidRequest(f"{name} must be a whole number from {low} to {high}")
    return value

