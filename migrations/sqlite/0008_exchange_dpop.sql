-- Service to service (issue 17): RFC 8693 token exchange and RFC 9449 DPoP.

-- The audiences a client may obtain by token exchange (space separated; none by
-- default, so a client exchanges nothing until an operator allows it).
ALTER TABLE clients ADD COLUMN exchange_audiences text NOT NULL DEFAULT '';

-- A client that must present a DPoP proof at the token endpoints.
ALTER TABLE clients ADD COLUMN dpop_required INTEGER NOT NULL DEFAULT 0;

-- The RFC 7638 thumbprint of the key a refresh family was started with: its refresh
-- tokens are then usable only with a DPoP proof by that key (RFC 9449 §5).
ALTER TABLE refresh_families ADD COLUMN dpop_jkt text;
