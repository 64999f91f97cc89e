"""MFA: TOTP second factors (RFC 6238), single-use recovery codes, and the ticket that
joins a correct password to the second factor at login (issue 9)."""
