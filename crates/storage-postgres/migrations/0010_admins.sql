-- Administrators (issue 16): users whose tokens for the admin API (urn:tessera:admin) act with
-- their authority (`tessera user update --admin`).
ALTER TABLE users ADD COLUMN is_admin BOOLEAN NOT NULL DEFAULT FALSE;
