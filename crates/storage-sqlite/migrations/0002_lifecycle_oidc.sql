-- Token lifecycle (revocation, device flow, idle/absolute refresh lifetimes) and OpenID Connect.
ALTER TABLE clients ADD COLUMN post_logout_redirect_uris TEXT NOT NULL DEFAULT '[]';
ALTER TABLE clients ADD COLUMN backchannel_logout_uri TEXT;
ALTER TABLE clients ADD COLUMN id_token_signed_response_alg TEXT;
ALTER TABLE clients ADD COLUMN subject_type TEXT NOT NULL DEFAULT 'public';
ALTER TABLE apis ADD COLUMN secret_hash TEXT;
ALTER TABLE users ADD COLUMN profile TEXT NOT NULL DEFAULT '{}';
ALTER TABLE users ADD COLUMN updated_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE signing_keys ADD COLUMN use_after INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN sid TEXT NOT NULL DEFAULT '';
ALTER TABLE sessions ADD COLUMN amr TEXT;
CREATE INDEX sessions_sid ON sessions (sid);
ALTER TABLE codes ADD COLUMN oidc TEXT;
ALTER TABLE refresh_tokens ADD COLUMN family_expires_at INTEGER NOT NULL DEFAULT 0;
ALTER TABLE refresh_tokens ADD COLUMN oidc TEXT;
CREATE INDEX refresh_tokens_family_expires ON refresh_tokens (family_expires_at);
CREATE INDEX login_failures_at ON login_failures (at);
CREATE TABLE session_clients (
    sid TEXT NOT NULL,
    client_id TEXT NOT NULL,
    at INTEGER NOT NULL,
    PRIMARY KEY (sid, client_id)
);
CREATE TABLE revoked_tokens (
    jti TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX revoked_tokens_expires ON revoked_tokens (expires_at);
CREATE TABLE revoked_families (
    family_id TEXT PRIMARY KEY,
    revoked_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE TABLE device_codes (
    device_code_hash TEXT PRIMARY KEY,
    user_code TEXT NOT NULL UNIQUE,
    client_id TEXT NOT NULL,
    scope TEXT NOT NULL,
    audience TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    interval INTEGER NOT NULL,
    last_polled_at INTEGER,
    status TEXT NOT NULL,
    user_id TEXT,
    auth_time INTEGER,
    oidc TEXT
);
CREATE INDEX device_codes_expires ON device_codes (expires_at);
