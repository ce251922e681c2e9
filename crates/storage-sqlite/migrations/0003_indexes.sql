-- Indexes for the remaining lookups: audit events by kind, and the expiry cleanup of session
-- clients and revoked families (as in the PostgreSQL schema).
CREATE INDEX audit_events_kind ON audit_events (kind, id);
CREATE INDEX session_clients_at ON session_clients (at);
CREATE INDEX revoked_families_expires ON revoked_families (expires_at);
