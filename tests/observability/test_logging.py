"""Log lines are structured, and no secret survives the redaction step."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator

import pytest
import structlog
import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState

from service.observability.logging import (
    REDACTED,
    REQUEST_ID,
    configure,
    redact,
    scrub,
    write_access_line,
)

API_KEY = "ak_live_" + "Ab3" * 10
REFRESH = "rt_" + "Qx-_9" * 8 + "abc"
JWT = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.c2lnbmF0dXJlLXBhcnQ"
PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBg\n-----END PRIVATE KEY-----"


@pytest.mark.parametrize("secret", [API_KEY, REFRESH, JWT, PEM, "Bearer " + JWT,
                                    "Basic Y2xpZW50OnNlY3JldA==", "ApiKey " + API_KEY])
def test_scrub_cuts_a_secret_shaped_substring(secret: str) -> None:
    """A credential inside any string is cut out, whatever field carries it."""
    cleaned = scrub(f"failed for {secret} at noon")
    assert secret not in cleaned
    assert REDACTED in cleaned
    assert cleaned.startswith("failed for ")


def test_scrub_walks_nested_containers() -> None:
    """Secrets are found inside dicts, lists and tuples at any depth."""
    cleaned = scrub({"outer": [{"note": f"key {API_KEY}"}, ("x", REFRESH)]})
    assert API_KEY not in str(cleaned)
    assert REFRESH not in str(cleaned)


def test_scrub_leaves_ordinary_text_alone() -> None:
    """Words, ids and numbers that are not credentials pass unchanged."""
    text = "client c_123 rotated key kid-2024-01 after 15 m"
    assert scrub(text) == text
    assert scrub(42) == 42


@pytest.mark.parametrize(
    "key",
    ["password", "new_password", "client_secret", "refresh_token", "access_token",
     "api_key", "X-API-Key", "authorization", "cookie", "kek", "private_jwk"],
)
def test_redact_replaces_a_credential_named_field(key: str) -> None:
    """A field named like a credential is redacted whatever its value looks like."""
    assert redact(None, "info", {key: "hunter2", "event": "x"})[key] == REDACTED


@pytest.mark.parametrize("key", ["token_type", "grant_type", "token_type_hint"])
def test_redact_keeps_safe_fields_that_sound_secret(key: str) -> None:
    """Protocol vocabulary such as grant_type is not a secret and stays readable."""
    assert redact(None, "info", {key: "refresh_token"})[key] == "refresh_token"


def test_redact_keeps_an_empty_credential_field_visible() -> None:
    """A missing credential stays visible as missing: that is what an operator debugs."""
    assert redact(None, "info", {"password": None})["password"] is None


def test_redact_scrubs_the_event_and_nested_fields() -> None:
    """The message itself and nested fields go through the shape check."""
    event = redact(None, "info", {"event": f"got {API_KEY}", "ctx": {"password": "pw1"}})
    assert API_KEY not in event["event"]
    assert event["ctx"] == {"password": REDACTED}


@pytest.fixture
def json_logging(capsys: pytest.CaptureFixture[str]) -> Iterator[None]:
    """JSON logging into the captured stderr, restored afterwards.

    Each test calls configure() itself: it binds sys.stderr as it is at that moment,
    and pytest swaps that stream between a fixture's set-up and the test."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    yield
    root.handlers[:], level = saved
    root.setLevel(level)
    structlog.reset_defaults()


def test_json_format_writes_one_json_object_per_line(
    json_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """With AUTHD_LOG_FORMAT=json every line is a JSON object with level and time."""
    configure("json", "info")
    structlog.get_logger("authd.test").info("hello", answer=42)
    [line] = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert record["event"] == "hello"
    assert record["answer"] == 42
    assert record["level"] == "info"
    assert "timestamp" in record


def test_stdlib_records_pass_the_same_redaction(
    json_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """uvicorn's and asyncpg's stdlib records are JSON and redacted too."""
    configure("json", "info")
    logging.getLogger("uvicorn.error").warning("bad header %s", "Bearer " + JWT)
    [line] = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert JWT not in line
    assert record["logger"] == "uvicorn.error"


def test_uvicorn_neither_writes_nor_prepares_its_access_line(
    json_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """authd writes its own access line. uvicorn decides per connection whether to log
    access from ``hasHandlers()`` and, when true, formats every request's address and
    quoted path before the disabled logger drops them: after configure() its protocol
    holds access logging off, and nothing reaches stderr from that logger."""
    # As `authd serve` runs: uvicorn's Config (which sets up uvicorn's loggers) first,
    # then the app factory's configure().
    config = uvicorn.Config(app=_no_app, access_log=False, log_config=None)
    configure("json", "info")
    loop = asyncio.new_event_loop()
    try:
        protocol = HttpToolsProtocol(config=config, server_state=ServerState(), app_state={},
                                     _loop=loop)
    finally:
        loop.close()
    assert protocol.access_log is False
    logging.getLogger("uvicorn.access").info('%s - "%s %s"', "127.0.0.1", "GET", "/x")
    assert capsys.readouterr().err == ""


async def _no_app(scope: object, receive: object, send: object) -> None:
    raise AssertionError("not called")


def test_an_exception_message_is_redacted(
    json_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """A traceback whose message holds a refresh token is logged without it."""
    configure("json", "info")
    try:
        raise ValueError(f"cannot parse {REFRESH}")
    except ValueError:
        structlog.get_logger("authd.test").exception("failed")
    output = capsys.readouterr().err
    assert REFRESH not in output
    assert "ValueError" in output


TICKET = "mt_" + "Tk-_7" * 8 + "xyz"
RECOVERY = "k7pq-2mzx-a3bc-w4de"
OTPAUTH = "otpauth://totp/authd:alice?secret=JBSWY3DPEHPK3PXP&issuer=authd"


@pytest.mark.parametrize(
    "value",
    [ValueError(f"bad key {API_KEY}"), API_KEY.encode(), {API_KEY}, frozenset({REFRESH}),
     ("x", API_KEY)],
    ids=["exception", "bytes", "set", "frozenset", "tuple"],
)
def test_scrub_checks_values_that_are_not_strings(value: object) -> None:
    """An exception, bytes or a set holding a key is printed through its repr: the
    key is cut out of that text."""
    cleaned = scrub(value)
    assert API_KEY not in str(cleaned)
    assert REFRESH not in str(cleaned)
    assert REDACTED in str(cleaned)


def test_scrub_keeps_plain_values_as_they_are() -> None:
    """Numbers, booleans and None are not turned into text."""
    assert [scrub(v) for v in (7, 1.5, True, None)] == [7, 1.5, True, None]


@pytest.mark.parametrize(
    "text",
    [f"key={API_KEY}_suffix", f"q=%3D{API_KEY}", f"q=%3d{API_KEY}&x=1", f"x_{API_KEY}",
     f"cb?token%3D{REFRESH}", f"t=%3D{JWT}"],
    ids=["followed-by-underscore", "percent-escaped", "lowercase-escape", "after-underscore",
         "escaped-refresh-token", "escaped-jwt"],
)
def test_scrub_finds_a_key_glued_to_other_characters(text: str) -> None:
    """A credential next to ``_`` or a percent-escape is still cut out."""
    cleaned = scrub(text)
    assert API_KEY not in cleaned
    assert REFRESH not in cleaned
    assert JWT not in cleaned


@pytest.mark.parametrize(
    "secret", [TICKET, OTPAUTH, RECOVERY, RECOVERY.upper()],
    ids=["mfa-ticket", "otpauth-uri", "recovery-code", "recovery-code-upper"],
)
def test_scrub_cuts_mfa_secrets_under_any_key(secret: str) -> None:
    """MFA tickets, TOTP enrolment URIs and recovery codes are cut out of any field."""
    event = redact(None, "info", {"event": "mfa", "note": f"user typed {secret} here"})
    assert secret not in event["note"]
    assert "JBSWY3DPEHPK3PXP" not in event["note"]
    assert event["note"].startswith("user typed ")


def test_scrub_leaves_uuids_and_timestamps_alone() -> None:
    """Dashed ids and times are not mistaken for recovery codes."""
    for text in ("2024-05-01T12:00:00.123456Z", "0b3f5c2a-7d1e-4c2b-9a8f-1e2d3c4b5a69",
                 "kid-2024-01-rotated-early"):
        assert scrub(text) == text


@pytest.mark.parametrize("key", ["mfa_ticket", "ticket", "otpauth_uri"])
def test_redact_replaces_mfa_named_fields(key: str) -> None:
    """A field named like an MFA ticket or TOTP URI is redacted whatever it holds."""
    assert redact(None, "info", {key: "short"})[key] == REDACTED


@pytest.mark.parametrize(
    ("url", "masked"),
    [("postgresql://app:s3cr-et@db:5432/authd", "postgresql://app:****@db:5432/authd"),
     ("redis://:s3cr-et@cache:6379/0", "redis://:****@cache:6379/0"),
     ("postgresql://app:s3cr@et@db/authd", "postgresql://app:****@db/authd")],
)
def test_a_password_in_a_url_is_masked(url: str, masked: str) -> None:
    """``user:password@`` in a logged URL keeps the user and host, loses the password."""
    assert scrub(f"cannot connect to {url} now") == f"cannot connect to {masked} now"


def test_a_url_without_a_password_is_unchanged() -> None:
    text = "GET https://auth.example.com:8443/v1/keys and postgresql://app@db/authd"
    assert scrub(text) == text


def test_stdlib_record_bookkeeping_is_left_alone() -> None:
    """structlog's ``_record`` must stay the LogRecord its formatter expects."""
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    assert redact(None, "info", {"_record": record, "event": "m"})["_record"] is record


def test_the_access_line_is_what_the_processor_chain_would_write(
    json_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """The access line is rendered in one step (it is written for every request): the
    same members, values and redaction as structlog's chain writes for the same call,
    the request id included (redacted when a client sent a secret as its id), the
    timestamp aside (taken a moment apart)."""
    configure("json", "info")
    # A secret-shaped id, one of authd's own, a client's with punctuation, letters and
    # digits that hold a shape's marker (the line skips scrubbing those), none.
    for request_id in ("ak_live_" + "A" * 30, "4c6904b6b697914a000000000000c30f",
                       "req-42:frontend.v2_x", "eyJhbGciOiJSUzI1NiJ9", "BearerAbc1234567890",
                       "Basic" + "Y2xpZW50OnNlY3JldA", None):
        token = REQUEST_ID.set(request_id)
        try:
            write_access_line("POST", "/v1/token", 200, 0.28)
            structlog.get_logger("authd.access").info(
                "request", method="POST", route="/v1/token", status=200, duration_ms=0.28)
        finally:
            REQUEST_ID.reset(token)
        fast, chain = capsys.readouterr().err.splitlines()
        fast_record, chain_record = json.loads(fast), json.loads(chain)
        assert fast_record.pop("timestamp").endswith("Z")
        chain_record.pop("timestamp")
        assert fast_record == chain_record
        assert list(fast_record) == list(chain_record)
        if request_id is None:
            assert "request_id" not in fast_record
        elif request_id.startswith("ak_live_"):
            assert fast_record["request_id"] == REDACTED
        else:
            assert fast_record["request_id"] == request_id


def test_the_access_line_head_is_made_once_per_route_and_status(
    json_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """The remembered part of the line belongs to its method, route and status: lines
    of different statuses and routes written one after the other keep their own."""
    configure("json", "info")
    for method, route, status in [("POST", "/v1/token", 200), ("POST", "/v1/token", 429),
                                  ("GET", "/healthz", 200), ("POST", "/v1/token", 200)]:
        write_access_line(method, route, status, 1.5)
    records = [json.loads(line) for line in capsys.readouterr().err.splitlines()]
    assert [(r["method"], r["route"], r["status"]) for r in records] == [
        ("POST", "/v1/token", 200), ("POST", "/v1/token", 429), ("GET", "/healthz", 200),
        ("POST", "/v1/token", 200)]


def test_the_access_line_follows_the_level(
    json_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    """Above info, no access line is written."""
    configure("json", "warning")
    write_access_line("GET", "/healthz", 200, 0.1)
    assert capsys.readouterr().err == ""
