-- A disabled user (issue 16): when an administrator disabled the account (NULL: enabled). A
-- disabled user cannot sign in, and their sessions, refresh tokens and unredeemed codes end
-- when they are disabled.
ALTER TABLE users ADD COLUMN disabled_at INTEGER;
