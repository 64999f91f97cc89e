-- Algorithm agility (issue 16): RS256, ES256 and EdDSA signing keys side by side.
-- Each key already records its algorithm (signing_keys.alg); the key set now records
-- the algorithm its *new* keys are made in. `authd migrate` writes it from
-- AUTHD_SIGNING_ALG when that is set (every deploy runs migrate before its replicas
-- start); serving replicas only read it, so replicas still running with an older
-- setting follow the key set instead of fighting it (docs/signing-algorithms.md).
CREATE TABLE signing_target (
    id      integer PRIMARY KEY CHECK (id = 1),
    alg     text NOT NULL CHECK (alg IN ('RS256', 'ES256', 'EdDSA')),
    set_at  REAL NOT NULL
);
