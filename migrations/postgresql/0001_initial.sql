-- authd schema, PostgreSQL dialect. Times are Unix seconds (double precision) so that
-- one query set serves both dialects; digests are SHA-256 bytes; details are JSON text.

CREATE TABLE clients (
    id          text PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    scopes      text NOT NULL DEFAULT '',
    audience    text NOT NULL,
    token_ttl   double precision NOT NULL,
    status      text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled')),
    created_at  double precision NOT NULL,
    updated_at  double precision NOT NULL
);

CREATE TABLE api_keys (
    id            text PRIMARY KEY,
    client_id     text NOT NULL REFERENCES clients (id),
    digest        bytea NOT NULL UNIQUE,
    display       text NOT NULL,
    scopes        text NOT NULL DEFAULT '',
    rate_count    integer,
    rate_window   double precision,
    status        text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'revoked')),
    expires_at    double precision,
    last_used_at  double precision,
    replaces      text REFERENCES api_keys (id),
    created_at    double precision NOT NULL,
    revoked_at    double precision
);
CREATE INDEX api_keys_client_idx ON api_keys (client_id);

CREATE TABLE users (
    id                  text PRIMARY KEY,
    email               text NOT NULL UNIQUE,
    password_hash       text NOT NULL,
    status              text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'disabled', 'locked')),
    failed_logins       integer NOT NULL DEFAULT 0,
    locked_until        double precision,
    created_at          double precision NOT NULL,
    updated_at          double precision NOT NULL
);

CREATE TABLE refresh_families (
    id           text PRIMARY KEY,
    user_id      text NOT NULL REFERENCES users (id),
    client_id    text,
    scopes       text NOT NULL DEFAULT '',
    created_at   double precision NOT NULL,
    expires_at   double precision NOT NULL,
    revoked_at   double precision,
    revoke_reason text
);
CREATE INDEX refresh_families_user_idx ON refresh_families (user_id);

CREATE TABLE refresh_tokens (
    digest            bytea PRIMARY KEY,
    family_id         text NOT NULL REFERENCES refresh_families (id),
    generation        integer NOT NULL,
    issued_at         double precision NOT NULL,
    spent_at          double precision,
    successor_digest  bytea,
    successor_sealed  bytea,
    UNIQUE (family_id, generation)
);

CREATE TABLE signing_keys (
    kid             text PRIMARY KEY,
    alg             text NOT NULL,
    state           text NOT NULL CHECK (state IN ('next', 'active', 'retired', 'revoked', 'gone')),
    public_jwk      text NOT NULL,
    private_sealed  bytea,
    created_at      double precision NOT NULL,
    activated_at    double precision,
    retired_at      double precision,
    revoked_at      double precision,
    erased_at       double precision
);
-- Exactly one key signs at a time; the database enforces it, not the code alone.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (state) WHERE state = 'active';

CREATE TABLE revocations (
    seq         bigserial PRIMARY KEY,
    kind        text NOT NULL CHECK (kind IN ('jti', 'sid', 'sub')),
    value       text NOT NULL,
    not_before  double precision,
    created_at  double precision NOT NULL,
    expires_at  double precision NOT NULL
);
CREATE INDEX revocations_lookup_idx ON revocations (kind, value);
CREATE INDEX revocations_expiry_idx ON revocations (expires_at);

CREATE TABLE audit_events (
    id       bigserial PRIMARY KEY,
    at       double precision NOT NULL,
    action   text NOT NULL,
    actor    text,
    subject  text,
    ip       text,
    outcome  text NOT NULL,
    details  text NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_events_at_idx ON audit_events (at);
CREATE INDEX audit_events_action_idx ON audit_events (action, at);
