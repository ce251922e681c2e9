-- DPoP (RFC 9449). A code requested with `dpop_jkt` (§10) and a public client's refresh token
-- (§5) are bound to a key thumbprint (RFC 7638): redeeming them needs a proof with that key.
ALTER TABLE codes ADD COLUMN dpop_jkt TEXT;
-- A client may require DPoP for every token request; its browser origins beyond its redirect
-- URIs' (CORS at the token, revocation and UserInfo endpoints), a JSON list.
ALTER TABLE clients ADD COLUMN require_dpop BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE clients ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';
ALTER TABLE refresh_tokens ADD COLUMN dpop_jkt TEXT;
-- Proofs seen (§11.1 replay): SHA-256 of the key's thumbprint and the proof's `jti`, kept until
-- the proof's `iat` leaves the accepted window. Shared by every process on the database.
CREATE TABLE dpop_proofs (
    id TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX dpop_proofs_expires_at ON dpop_proofs (expires_at);
-- Server-provided nonces (§8), by SHA-256: any process accepts a nonce another one issued.
CREATE TABLE dpop_nonces (
    nonce_hash TEXT PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
