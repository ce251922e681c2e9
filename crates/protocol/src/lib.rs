//! Tessera's protocol core: OAuth 2.0 rules as pure functions over typed values.
//!
//! Layout:
//! - [`error`]: the one [`ErrorCode`] enum of RFC 6749 / RFC 6750 codes and [`OAuthError`].
//! - [`params`]: `application/x-www-form-urlencoded` parsing with the RFC 6749 §3.1 rules
//!   (no repeated parameters, no empty values, bounded size).
//! - [`scope`], [`pkce`], [`redirect`]: the validation rules of RFC 6749 §3.3, RFC 7636 and
//!   RFC 6749 §3.1.2 / RFC 9700 §4.1.3.
//! - [`client`]: the registered-client view the rules need, and client authentication
//!   (RFC 6749 §2.3).
//! - [`cors`]: origins and the per-endpoint CORS decision (Fetch standard).
//! - [`authorize`]: the authorization request (RFC 6749 §4.1.1) in its two validation stages.
//! - [`catalog`]: the scope catalog and the access token's audience (RFC 8707).
//! - [`grant`]: one module per grant type at the token endpoint, each with its pure decision
//!   (`decide`) over what the store holds.
//! - [`dpop`]: what a verified DPoP proof binds (RFC 9449 §5, §10).
//! - [`metadata`]: the RFC 8414 authorization server metadata document.
//!
//! Architecture invariant: this crate does no I/O and reads no clock; callers pass `now`.
#![forbid(unsafe_code)]

pub mod authorize;
pub mod catalog;
pub mod client;
pub mod cors;
pub mod dpop;
pub mod error;
pub mod grant;
pub mod introspect;
pub mod metadata;
pub mod oidc;
pub mod params;
pub mod pkce;
pub mod redirect;
pub mod scope;
pub mod token;

pub use error::{ErrorCode, OAuthError};
