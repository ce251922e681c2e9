//! Tessera's server: services that orchestrate the grants over the store ([`service`]) and the
//! thin HTTP layer in front of them ([`http`]).
//!
//! Layout:
//! - [`service`]: plain typed values in and out; no HTTP types. One module per concern and one
//!   per grant under `service::grants`.
//! - [`http`]: axum router, handlers, pages, cookies, CSRF, and the one OAuth-error → response
//!   mapping (`http::error`).
//! - [`keys`]: the signing key ring (load or generate, JWKS).
//! - [`clock`]: the injected clock; only the binary uses the system clock.
//! - [`serve`]: the accept loop with bounded connections (head, idle, count) every server uses.
//! - [`net`]: client addresses behind trusted proxies, and their throttling buckets.
#![forbid(unsafe_code)]

pub mod cache;
pub mod clock;
pub mod http;
pub mod keys;
pub mod net;
pub mod secret;
pub mod serve;
pub mod service;

pub use clock::{Clock, ManualClock, SystemClock};
pub use http::router;
pub use serve::{ServeLimits, serve};
pub use service::{Config, Tessera};
