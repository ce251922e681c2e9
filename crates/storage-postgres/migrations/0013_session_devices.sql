-- Where a user is signed in (issue 15): each session's browser (its User-Agent at sign-in), the
-- client's address at sign-in, and when it was last used (written at most once a minute). As
-- storage-sqlite migration 0015.
ALTER TABLE sessions ADD COLUMN user_agent TEXT;
ALTER TABLE sessions ADD COLUMN address TEXT;
ALTER TABLE sessions ADD COLUMN last_used_at BIGINT NOT NULL DEFAULT 0;
UPDATE sessions SET last_used_at = created_at;
