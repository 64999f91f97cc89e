"""TOTP and recovery-code helpers as pure functions."""

from __future__ import annotations

import pyotp

from service.mfa import recovery, totp


def test_the_current_and_adjacent_steps_match_and_others_do_not() -> None:
    """A code of step s-1, s or s+1 matches its own step; s+2 and s-2 do not."""
    secret = totp.new_secret()
    now = 1_700_000_015.0
    step = totp.step_at(now)
    generator = pyotp.TOTP(secret)
    for delta in (-1, 0, 1):
        assert totp.matching_step(secret, generator.generate_otp(step + delta), now) == step + delta
    for delta in (-2, 2):
        code = generator.generate_otp(step + delta)
        if code not in {generator.generate_otp(step + d) for d in (-1, 0, 1)}:
            assert totp.matching_step(secret, code, now) is None


def test_malformed_codes_never_match() -> None:
    """Anything but six ASCII digits is refused before any HMAC."""
    secret = totp.new_secret()
    for code in ("", "12345", "1234567", "12 456", "١٢٣٤٥٦", "abcdef"):
        assert totp.matching_step(secret, code, 1_700_000_000.0) is None


def test_the_uri_is_an_otpauth_totp_uri_with_the_issuer() -> None:
    """The provisioning URI names the account and issuer and carries the secret."""
    secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
    uri = totp.provisioning_uri(secret, "a@example.com", "auth.example.com")
    assert uri.startswith("otpauth://totp/auth.example.com:a%40example.com?")
    assert f"secret={secret}" in uri and "issuer=auth.example.com" in uri


def test_recovery_codes_are_ten_distinct_80_bit_codes() -> None:
    """Ten codes of four groups of four base32 characters, all different."""
    codes = recovery.new_codes()
    assert len(codes) == 10 and len(set(codes)) == 10
    assert all(recovery.normalise(code) is not None for code in codes)


def test_recovery_input_is_forgiving_but_strict_about_content() -> None:
    """Case, spaces and dashes do not matter; other characters make it no code."""
    assert recovery.normalise(" ABCD-efgh ijkl-MNOP ") == "abcdefghijklmnop"
    assert recovery.normalise("abcd-efgh-ijkl-mno1") is None
    assert recovery.normalise("abcd") is None


def test_a_recovery_digest_is_bound_to_its_user() -> None:
    """The same code digests differently for two users."""
    assert recovery.digest("usr_a", "abcdefghijklmnop") != recovery.digest("usr_b",
                                                                           "abcdefghijklmnop")
