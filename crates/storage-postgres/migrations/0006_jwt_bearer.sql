-- The JWT bearer grant (RFC 7523 §2.1): a client's public keys (a JWK Set, RFC 7517 §5), which
-- sign its assertions. NULL: the client has none. Assertions' `jti`s are single use and kept in
-- `dpop_proofs` (by a hash that names the grant) until the assertion expires.
ALTER TABLE clients ADD COLUMN jwks TEXT;
