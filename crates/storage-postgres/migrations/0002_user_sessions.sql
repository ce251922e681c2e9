-- A user's sessions and refresh tokens by user: a new password or a deletion ends them
-- (RFC 9700 §4.14.2) without scanning either table. As storage-sqlite migration 0004.
CREATE INDEX sessions_user ON sessions (user_id);
CREATE INDEX refresh_tokens_user ON refresh_tokens (user_id);
