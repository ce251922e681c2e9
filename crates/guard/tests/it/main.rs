//! tessera-guard's integration tests, in one binary: against an issuer stand-in over HTTP
//! ([`guard`]) and property-based on generated tokens ([`prop_token`]). Hermetic: everything
//! runs in the process on 127.0.0.1.

mod guard;
mod prop_token;
