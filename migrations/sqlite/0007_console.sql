-- The operator console (issue 18): see migrations/postgresql/0007_console.sql.
-- Roles a user holds; 'admin' makes the user an operator who may sign in to /console.
CREATE TABLE user_roles (
    user_id     text NOT NULL REFERENCES users (id),
    role        text NOT NULL CHECK (role IN ('admin')),
    granted_at  REAL NOT NULL,
    granted_by  text,
    PRIMARY KEY (user_id, role)
);

-- Server-side console sessions. The browser holds only the opaque id; the row is keyed
-- by its SHA-256 digest, so a database reader cannot take over a session.
-- stage: 'totp' (password checked, code pending), 'enrol' (admin without MFA, must
-- enrol first), 'active' (signed in). flash_sealed: a new API key between the POST that
-- made it and the one page that shows it, sealed under the KEK; cleared when shown.
CREATE TABLE console_sessions (
    digest        BLOB PRIMARY KEY,
    user_id       text NOT NULL REFERENCES users (id),
    stage         text NOT NULL CHECK (stage IN ('totp', 'enrol', 'active')),
    created_at    REAL NOT NULL,
    last_seen_at  REAL NOT NULL,
    fresh_mfa_at  REAL,
    ended_at      REAL,
    flash_sealed  BLOB
);
CREATE INDEX console_sessions_user_idx ON console_sessions (user_id);
CREATE INDEX console_sessions_created_idx ON console_sessions (created_at);
