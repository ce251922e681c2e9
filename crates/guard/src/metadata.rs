//! OAuth 2.0 Protected Resource Metadata (RFC 9728): the document that tells a client which
//! authorization server issues tokens for this API, and the `resource_metadata` parameter of
//! the 401 challenge that points to it (§5.1), so a client can start from the API alone.
//!
//! The resource identifier is the guard's audience (RFC 8707 §2, RFC 9728 §1.2: an https URL
//! without fragment). The document is served at the well-known URI made by inserting
//! `/.well-known/oauth-protected-resource` between the identifier's host and its path (§3.1),
//! and its `resource` is the identifier exactly (§3.3: a client MUST check it).

use crate::Guard;
use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use serde::Serialize;

/// RFC 9728 §3.1: the well-known path suffix.
pub const WELL_KNOWN: &str = "/.well-known/oauth-protected-resource";

/// What the API says about itself beyond what the guard knows (opt-in:
/// [`crate::GuardConfig::with_resource_metadata`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourceMetadata {
    /// RFC 9728 §2 `scopes_supported`: the scopes the API's routes require.
    pub scopes_supported: Vec<String>,
    /// RFC 9728 §2 `resource_name`: a human-readable name.
    pub resource_name: Option<String>,
}

/// The metadata document (RFC 9728 §2), as served.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Document {
    pub resource: String,
    pub authorization_servers: Vec<String>,
    /// Only the `Authorization` header (RFC 6750 §2.1): the guard refuses the body and query.
    pub bearer_methods_supported: Vec<&'static str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub scopes_supported: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resource_name: Option<String>,
    /// RFC 9728 §2: the algorithms the guard accepts in DPoP proofs (RFC 9449).
    pub dpop_signing_alg_values_supported: Vec<&'static str>,
    /// RFC 9728 §2: whether every request needs a DPoP-bound token ([`crate::GuardConfig::require_dpop`]).
    pub dpop_bound_access_tokens_required: bool,
}

/// Where the metadata of `resource` lives: (path to serve, absolute URL), per RFC 9728 §3.1;
/// `None` when `resource` is not an absolute http(s) URL without query or fragment.
pub fn location(resource: &str) -> Option<(String, String)> {
    let u = url::Url::parse(resource).ok()?;
    if !matches!(u.scheme(), "https" | "http") || u.query().is_some() || u.fragment().is_some() || u.host_str().is_none() {
        return None;
    }
    // "any terminating slash" is removed before the suffix goes in (§3.1).
    let path = u.path().trim_end_matches('/');
    let served = format!("{WELL_KNOWN}{path}");
    let origin = u.origin().ascii_serialization();
    Some((served.clone(), format!("{origin}{served}")))
}

impl Guard {
    /// The RFC 9728 document, when [`crate::GuardConfig::with_resource_metadata`] is set.
    pub fn resource_metadata(&self) -> Option<Document> {
        let c = self.config();
        let m = c.resource_metadata.as_ref()?;
        Some(Document {
            resource: c.audience.clone(),
            authorization_servers: vec![c.issuer.clone()],
            bearer_methods_supported: vec!["header"],
            scopes_supported: m.scopes_supported.clone(),
            resource_name: m.resource_name.clone(),
            dpop_signing_alg_values_supported: tessera_dpop::SUPPORTED_ALGS.to_vec(),
            dpop_bound_access_tokens_required: c.require_dpop,
        })
    }

    /// The URL a 401 challenge names in `resource_metadata` (RFC 9728 §5.1), when metadata is on.
    pub fn resource_metadata_url(&self) -> Option<&str> {
        self.inner.metadata_location.as_ref().map(|(_, url)| url.as_str())
    }

    /// A router serving the document at its well-known path (empty when metadata is off):
    /// merge it into the API's router, outside [`Guard::layer`] (the metadata is public).
    pub fn metadata_router<S: Clone + Send + Sync + 'static>(&self) -> Router<S> {
        let (Some(doc), Some((path, _))) = (self.resource_metadata(), &self.inner.metadata_location) else {
            return Router::new();
        };
        let body = serde_json::to_string(&doc).unwrap_or_default();
        Router::new().route(
            path,
            get(move || {
                let body = body.clone();
                async move {
                    (
                        [
                            (header::CONTENT_TYPE, HeaderValue::from_static("application/json")),
                            (header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300")),
                        ],
                        body,
                    )
                        .into_response()
                }
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 9728 §3.1: the suffix goes between the host and the path; a terminating slash goes.
    #[test]
    fn rfc9728_3_1_well_known_location() {
        let at = location;
        assert_eq!(
            at("https://notes.example"),
            Some(("/.well-known/oauth-protected-resource".into(), "https://notes.example/.well-known/oauth-protected-resource".into()))
        );
        assert_eq!(
            at("https://api.example/notes/"),
            Some(("/.well-known/oauth-protected-resource/notes".into(), "https://api.example/.well-known/oauth-protected-resource/notes".into()))
        );
        assert_eq!(
            at("http://127.0.0.1:8081/v1"),
            Some(("/.well-known/oauth-protected-resource/v1".into(), "http://127.0.0.1:8081/.well-known/oauth-protected-resource/v1".into()))
        );
        for bad in ["notes-api", "urn:example:notes", "https://api.example/?x=1", "https://api.example/#f", "ftp://api.example"] {
            assert_eq!(at(bad), None, "{bad}");
        }
    }
}
