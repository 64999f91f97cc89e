-- Sessions: find sealed successors to erase once the reuse grace window has passed
-- (a family's tokens are already indexed by UNIQUE (family_id, generation)).
CREATE INDEX refresh_tokens_sealed_idx ON refresh_tokens (spent_at) WHERE successor_sealed IS NOT NULL;
