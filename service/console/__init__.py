"""The operator console (DESIGN §7a, docs/console.md): server-rendered pages over the
same domain services as the admin API, for users with the ``admin`` role signed in
with password and TOTP in a server-side session."""
