//! tessera-guard's integration tests, in one binary: against an issuer stand-in over HTTP
//! ([`guard`]) and property-based on generated tokens ([`prop_token`]). Hermetic: everything
//! runs in the process on 127.0.0.1.
//!
//! The helpers outside `#[test]` functions unwrap like the tests do: clippy.toml's
//! allow-*-in-tests covers only test functions and `#[cfg(test)]` modules, hence the one allow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod guard;
mod prop_token;
