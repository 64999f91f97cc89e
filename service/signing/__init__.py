"""Signing keys: the KEK, the key ring and its rotation, the JWKS, the token issuer."""
