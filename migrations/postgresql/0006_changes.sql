-- The change cursor (issue 14): every invalidation published on the bus is also a row
-- here, so that each replica learns of it by polling `id > cursor` (the primary key
-- index) when Redis pub/sub is unavailable. Rows are purged after an hour.
CREATE TABLE changes (
    id          bigserial PRIMARY KEY,
    topic       text NOT NULL,
    payload     text NOT NULL,
    created_at  double precision NOT NULL
);

CREATE INDEX changes_created_at ON changes (created_at);
