"""Password rules and the Argon2id hasher (service/sessions/passwords.py), without a server."""

from __future__ import annotations

import re
import threading
from collections.abc import AsyncIterator
from types import FrameType
from typing import Any

import pytest
from argon2 import Type

from service.config import Settings
from service.errors import InvalidRequest
from service.sessions.errors import WeakPassword
from service.sessions.passwords import (
    MIN_PASSWORD_CHARS,
    PasswordHasher,
    check_new_password,
    normalise_password,
)

# The smallest bound the settings accept, so the boundary is cheap to reach.
MAX_BYTES = Settings.from_env({"AUTHD_PASSWORD_MAX_BYTES": "64"}).password_max_bytes
# Deliberately not the defaults, so a hash can only carry them if they came from here.
COST_ENV = {
    "AUTHD_ARGON2_MEMORY_KIB": "9216",
    "AUTHD_ARGON2_TIME_COST": "3",
    "AUTHD_ARGON2_PARALLELISM": "2",
}
HEADER = "$argon2id$v=19$m=9216,t=3,p=2$"
PASSWORD = "correct horse battery staple"


def _fullwidth(ascii_text: str) -> str:
    """The fullwidth forms (U+FF01..U+FF5E) of printable ASCII."""
    return "".join(chr(ord(ch) + 0xFEE0) for ch in ascii_text)


def _hasher(settings: Settings) -> PasswordHasher:
    """Built the way service/sessions/wiring.py builds it."""
    return PasswordHasher(memory_kib=settings.argon2_memory_kib,
                          time_cost=settings.argon2_time_cost,
                          parallelism=settings.argon2_parallelism, threads=1)


@pytest.fixture
async def hasher() -> AsyncIterator[PasswordHasher]:
    made = _hasher(Settings.from_env(COST_ENV))
    yield made
    made.close()


def test_the_byte_bound_is_the_setting() -> None:
    """AUTHD_PASSWORD_MAX_BYTES is read into the bound these tests use."""
    assert MAX_BYTES == 64


def test_multibyte_password_exactly_at_the_byte_bound_is_accepted() -> None:
    """Thirty-two two-byte characters are exactly 64 UTF-8 bytes and pass."""
    password = "é" * 32
    assert len(password.encode()) == MAX_BYTES
    assert normalise_password(password, MAX_BYTES) == password


def test_multibyte_password_one_byte_over_the_bound_is_refused() -> None:
    """Sixteen four-byte emoji plus one ASCII letter are 65 bytes but 17 characters,
    and are refused."""
    password = "\N{GRINNING FACE}" * 16 + "a"
    assert len(password) == 17 and len(password.encode()) == MAX_BYTES + 1
    with pytest.raises(InvalidRequest, match="at most 64 bytes"):
        normalise_password(password, MAX_BYTES)


def test_three_byte_characters_count_three_bytes_each() -> None:
    """Twenty-two euro signs (66 bytes, 22 characters) are over a 64-byte bound."""
    with pytest.raises(InvalidRequest):
        normalise_password("€" * 22, MAX_BYTES)


def test_the_bound_applies_to_the_bytes_received_before_normalisation() -> None:
    """A decomposed input over the bound is refused even though its NFKC form fits."""
    decomposed = "e\u0301" * 22  # 66 bytes as sent, 44 once composed
    with pytest.raises(InvalidRequest):
        normalise_password(decomposed, MAX_BYTES)


def test_the_over_long_error_does_not_repeat_the_password() -> None:
    """The refusal names the bound, never the password."""
    password = "s3cret-" * 20
    with pytest.raises(InvalidRequest) as caught:
        normalise_password(password, MAX_BYTES)
    assert "s3cret" not in str(caught.value)


def test_passwords_are_nfkc_normalised() -> None:
    """Fullwidth letters become their ASCII forms, so both spellings are one password."""
    assert check_new_password(_fullwidth("password1"), MAX_BYTES) == "password1"


def test_an_empty_new_password_is_refused() -> None:
    """An empty password is refused as weak."""
    with pytest.raises(WeakPassword):
        check_new_password("", MAX_BYTES)


def test_a_new_password_one_character_short_is_refused() -> None:
    """Seven characters are one short of the minimum."""
    with pytest.raises(WeakPassword):
        check_new_password("x" * (MIN_PASSWORD_CHARS - 1), MAX_BYTES)


def test_a_new_password_of_the_minimum_length_is_accepted() -> None:
    """Exactly the minimum number of characters passes."""
    assert check_new_password("x" * MIN_PASSWORD_CHARS, MAX_BYTES) == "x" * MIN_PASSWORD_CHARS


def test_a_new_password_with_a_control_character_is_refused() -> None:
    """A NUL inside an otherwise acceptable password is refused."""
    with pytest.raises(WeakPassword):
        check_new_password("password\x00123", MAX_BYTES)


def test_weak_password_is_a_client_error() -> None:
    """WeakPassword is an InvalidRequest (a 400), not a server error."""
    with pytest.raises(InvalidRequest):
        check_new_password("short", MAX_BYTES)


async def test_the_hash_records_the_configured_argon2id_parameters(
        hasher: PasswordHasher) -> None:
    """The hash is Argon2id v19 with the memory, time and parallelism of the settings."""
    hashed = await hasher.hash(PASSWORD)
    assert hashed.startswith(HEADER)


async def test_the_default_settings_give_the_documented_parameters() -> None:
    """With no AUTHD_ARGON2_* set the hash records m=19456, t=2, p=1."""
    made = _hasher(Settings.from_env({}))
    try:
        assert (await made.hash(PASSWORD)).startswith("$argon2id$v=19$m=19456,t=2,p=1$")
    finally:
        made.close()


async def test_two_hashes_of_one_password_differ(hasher: PasswordHasher) -> None:
    """Each hash has its own salt."""
    assert await hasher.hash(PASSWORD) != await hasher.hash(PASSWORD)


async def test_the_right_password_verifies(hasher: PasswordHasher) -> None:
    """verify of the hashed password is True."""
    assert await hasher.verify(await hasher.hash(PASSWORD), PASSWORD) is True


async def test_a_wrong_password_does_not_verify(hasher: PasswordHasher) -> None:
    """verify of a different password is False, not an exception."""
    assert await hasher.verify(await hasher.hash(PASSWORD), PASSWORD + "!") is False


async def test_a_malformed_hash_does_not_verify(hasher: PasswordHasher) -> None:
    """verify against something that is not an Argon2 hash is False."""
    assert await hasher.verify("not-a-hash", PASSWORD) is False


def test_a_password_with_a_lone_surrogate_is_refused_before_hashing() -> None:
    """A lone surrogate (JSON can carry ``\\ud800``) is malformed input: a 400, not a 500."""
    with pytest.raises(InvalidRequest) as caught:
        normalise_password("abc\ud800def", MAX_BYTES)
    assert "\ud800" not in caught.value.description


async def test_a_hash_with_the_current_parameters_needs_no_rehash(
        hasher: PasswordHasher) -> None:
    """A hash made with the configured parameters is current."""
    assert hasher.needs_rehash(await hasher.hash(PASSWORD)) is False


@pytest.mark.parametrize("variable,value", [
    ("AUTHD_ARGON2_MEMORY_KIB", "12288"),
    ("AUTHD_ARGON2_TIME_COST", "4"),
    ("AUTHD_ARGON2_PARALLELISM", "1"),
])
async def test_a_hash_needs_rehash_when_a_parameter_changes(
        hasher: PasswordHasher, variable: str, value: str) -> None:
    """A hash made before one Argon2 setting changed needs a rehash under the new one."""
    old = await hasher.hash(PASSWORD)
    changed = _hasher(Settings.from_env({**COST_ENV, variable: value}))
    try:
        assert changed.needs_rehash(old) is True
    finally:
        changed.close()


def test_a_malformed_hash_needs_rehash(hasher: PasswordHasher) -> None:
    """Something that is not an Argon2 hash is treated as needing a rehash."""
    assert hasher.needs_rehash("not-a-hash") is True


async def test_the_dummy_verification_returns_false(hasher: PasswordHasher) -> None:
    """verify_dummy is False whatever the password."""
    assert await hasher.verify_dummy(PASSWORD) is False


async def test_the_dummy_verification_runs_a_real_argon2id_verification() -> None:
    """verify_dummy makes argon2's own verify_secret call, in the hashing pool, against an
    Argon2id hash with the configured parameters and the given password."""
    calls: list[tuple[str, bytes, bytes, Any]] = []

    def watch(frame: FrameType, event: str, arg: object) -> None:
        if event == "call" and frame.f_code.co_name == "verify_secret" \
                and "argon2" in frame.f_code.co_filename:
            f_locals = frame.f_locals
            calls.append((threading.current_thread().name, f_locals["hash"],
                          f_locals["secret"], f_locals["type"]))

    made = _hasher(Settings.from_env(COST_ENV))  # its pool thread starts on first use
    threading.setprofile(watch)
    try:
        assert await made.verify_dummy("guess-" + PASSWORD) is False
    finally:
        threading.setprofile(None)
        made.close()
    assert len(calls) == 1
    thread, hashed, secret, kind = calls[0]
    assert thread.startswith("authd-argon2")
    assert re.match(rb"^\$argon2id\$v=19\$m=9216,t=3,p=2\$", hashed)
    assert secret == ("guess-" + PASSWORD).encode() and kind is Type.ID
