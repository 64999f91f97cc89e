"""DPoP (RFC 9449): proofs at the token endpoints bind issued tokens to a client key."""
