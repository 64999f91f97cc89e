-- MFA (TOTP + recovery codes + login tickets) and anomaly history (issue 9).

-- One TOTP credential per user. The secret is sealed under the KEK with the user id
-- as associated data; last_step is the RFC 6238 time step of the last accepted code,
-- raised atomically, so that each code is accepted once (RFC 6238 §5.2).
CREATE TABLE mfa_totp (
    user_id        text PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    secret_sealed  bytea NOT NULL,
    state          text NOT NULL CHECK (state IN ('pending', 'active')),
    last_step      bigint NOT NULL DEFAULT 0,
    created_at     double precision NOT NULL,
    activated_at   double precision
);

-- Single-use recovery codes: only a digest (SHA-256 of user id and code) is stored.
CREATE TABLE mfa_recovery_codes (
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    digest      bytea NOT NULL,
    created_at  double precision NOT NULL,
    used_at     double precision,
    PRIMARY KEY (user_id, digest)
);

-- The short-lived, single-use ticket between a correct password and the second factor.
CREATE TABLE mfa_tickets (
    digest      bytea PRIMARY KEY,
    user_id     text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  double precision NOT NULL,
    expires_at  double precision NOT NULL,
    used_at     double precision
);
CREATE INDEX mfa_tickets_expiry_idx ON mfa_tickets (expires_at);

-- How a refresh family's login was authenticated (RFC 8176 amr, space separated), so
-- that refreshed access tokens keep the amr/acr of the login.
ALTER TABLE refresh_families ADD COLUMN amr text NOT NULL DEFAULT 'pwd';

-- Completed logins, bounded per user by the code (the newest N are kept).
CREATE TABLE login_history (
    id       bigserial PRIMARY KEY,
    user_id  text NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    at       double precision NOT NULL,
    ip       text NOT NULL,
    network  text NOT NULL,
    device   text NOT NULL,
    amr      text NOT NULL,
    reasons  text NOT NULL DEFAULT ''
);
CREATE INDEX login_history_user_idx ON login_history (user_id, at);

-- Source networks (/24 or /48) each API key was used from, bounded per key.
CREATE TABLE apikey_networks (
    key_id      text NOT NULL REFERENCES api_keys (id) ON DELETE CASCADE,
    network     text NOT NULL,
    first_seen  double precision NOT NULL,
    last_seen   double precision NOT NULL,
    PRIMARY KEY (key_id, network)
);

-- Optional per-key source restriction: space-separated CIDRs, NULL = anywhere.
ALTER TABLE api_keys ADD COLUMN allowed_cidrs text;
