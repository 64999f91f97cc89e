-- The change cursor (issue 14): see migrations/postgresql/0006_changes.sql.
-- AUTOINCREMENT: an id is never reused after the purge deletes the newest rows.
CREATE TABLE changes (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    topic       TEXT NOT NULL,
    payload     TEXT NOT NULL,
    created_at  REAL NOT NULL
);

CREATE INDEX changes_created_at ON changes (created_at);
