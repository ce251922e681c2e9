-- The audit log (issue 16): who did it (`actor`: a user id, `cli:NAME`, or empty for the server
-- itself), which user and client it concerns; queried by time, kind, user and client, newest
-- first, and deleted after the retention period.
ALTER TABLE audit_events ADD COLUMN actor TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN user_id TEXT NOT NULL DEFAULT '';
ALTER TABLE audit_events ADD COLUMN client_id TEXT NOT NULL DEFAULT '';
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_user ON audit_events (user_id, id);
CREATE INDEX audit_events_client ON audit_events (client_id, id);
