-- Accounts people trust (issue 15): second factors (TOTP apps, passkeys) with recovery codes,
-- users' one-time tokens (reset, invitation and verification links, passkey challenges, a
-- sign-in's second step), and who must use a second factor.
ALTER TABLE users ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN email_verified INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clients ADD COLUMN require_mfa INTEGER NOT NULL DEFAULT 0;
CREATE TABLE user_factors (
    id TEXT PRIMARY KEY NOT NULL,
    user_id TEXT NOT NULL,
    kind TEXT NOT NULL,            -- 'totp' | 'passkey'
    name TEXT NOT NULL,
    secret BLOB NOT NULL,          -- TOTP: the seed sealed under the KEK; passkey: the credential
    credential_id TEXT UNIQUE,     -- passkeys: the WebAuthn credential id, base64url
    last_step INTEGER,             -- TOTP: the last time step accepted (RFC 6238 §5.2)
    created_at INTEGER NOT NULL,
    last_used_at INTEGER
);
CREATE INDEX user_factors_user ON user_factors (user_id);
CREATE TABLE recovery_codes (
    user_id TEXT NOT NULL,
    code_hash TEXT NOT NULL,       -- SHA-256
    created_at INTEGER NOT NULL,
    used_at INTEGER,
    PRIMARY KEY (user_id, code_hash)
);
CREATE TABLE user_tokens (
    token_hash TEXT PRIMARY KEY NOT NULL,  -- SHA-256 of the value
    purpose TEXT NOT NULL,
    user_id TEXT NOT NULL,
    data TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX user_tokens_user ON user_tokens (user_id, purpose);
CREATE INDEX user_tokens_expiry ON user_tokens (expires_at);
