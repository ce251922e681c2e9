//! Tessera's integration tests, in one binary (one link of the workspace, one process whose
//! fixtures are made once): real HTTP against a real Tessera on 127.0.0.1:0, one module per
//! area, shared fixtures in [`common`].
//!
//! Two tiers. The hermetic tier (plain `cargo test`) needs nothing outside the process: SQLite
//! in a temporary directory, in-process servers. The CI tier (`--features tessera/ci-tier`, which
//! `./scripts/test` always passes) adds the tests that need PostgreSQL (127.0.0.1:5432, or
//! `TESSERA_TEST_POSTGRES_URL`), headless Chromium with chromedriver, or spawn the `tessera`
//! binary. A CI-tier test is compiled only with the feature: never skipped at run time, it fails
//! when what it needs is missing.
//!
//! The fixtures and helpers outside `#[test]` functions unwrap like the tests do: clippy.toml's
//! allow-*-in-tests covers only test functions and `#[cfg(test)]` modules, hence the one allow.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

mod account;
mod admin_api;
mod audit;
mod code_flow;
mod config_as_code;
mod console;
mod cors;
mod dpop;
mod email;
mod health;
mod hostile_input;
mod interop_lifecycle;
mod interop_oauth2;
mod interop_openidconnect;
mod jwt_bearer;
mod lifecycle;
mod metrics;
mod notes_demo;
mod oidc;
mod pages;
mod passwords;
mod roles;
mod security;
mod tidy;
mod two_step;

/// The CI tier's own modules (first by name, so libtest starts these long tests first).
#[cfg(feature = "ci-tier")]
mod ci;
