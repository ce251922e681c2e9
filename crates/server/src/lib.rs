//! Tessera's server: services that orchestrate the grants over the store ([`service`]). The HTTP
//! layer in front of them is the `tessera-http` crate; this crate knows no HTTP types (it does
//! not depend on axum, tower, hyper or askama).
//!
//! Layout:
//! - [`service`]: plain typed values in and out. One module per concern and one per grant
//!   under `service::grants`.
//! - [`keys`]: the signing key ring (load or generate, JWKS).
//! - [`clock`]: the injected clock; only the binary uses the system clock.
//! - [`metrics`]: the signals operators watch, rendered for Prometheus.
//! - [`net`]: client addresses behind trusted proxies, and their throttling buckets.
//! - [`mail`]: outgoing mail over SMTP (`--smtp-url`, `--email-from`).
#![forbid(unsafe_code)]

pub mod cache;
pub mod clock;
pub mod keys;
pub mod mail;
pub mod metrics;
pub mod net;
pub mod secret;
pub mod service;

pub use clock::{Clock, ManualClock, SystemClock};
pub use service::{Config, Tessera};
