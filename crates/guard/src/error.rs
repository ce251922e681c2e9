//! Why a request was refused, and its RFC 6750 §3 response: the one place guard errors become
//! HTTP.
//!
//! RFC 6750 §3.1: `invalid_request` → 400, `invalid_token` → 401, `insufficient_scope` → 403
//! with "the scope necessary to access the protected resource"; "If the request lacks any
//! authentication information … the resource server SHOULD NOT include an error code".

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Why a token is not accepted. The text is fixed, ASCII and safe to show to the client
/// (RFC 6750 §3: `error_description` is %x20-21 / %x23-5B / %x5D-7E).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    Malformed,
    Algorithm,
    Type,
    Critical,
    UnknownKey,
    Signature,
    Issuer,
    Audience,
    Expired,
    NotYetValid,
    Claims,
}

impl Reason {
    pub fn description(self) -> &'static str {
        match self {
            Self::Malformed => "the access token is not a well-formed JWT",
            Self::Algorithm => "the access token's signing algorithm is not accepted",
            Self::Type => "the token is not an access token (typ must be at+jwt)",
            Self::Critical => "the access token has critical header parameters that are not understood",
            Self::UnknownKey => "the access token was signed with an unknown key",
            Self::Signature => "the access token's signature is invalid",
            Self::Issuer => "the access token was issued by another issuer",
            Self::Audience => "the access token is not meant for this API",
            Self::Expired => "the access token expired",
            Self::NotYetValid => "the access token is not valid yet",
            Self::Claims => "the access token lacks required claims",
        }
    }
}

/// A refused request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GuardError {
    /// No bearer credentials: 401 with a bare `Bearer` challenge.
    #[error("no access token")]
    Missing,
    /// 400 `invalid_request`.
    #[error("invalid request: {0}")]
    InvalidRequest(&'static str),
    /// 401 `invalid_token`.
    #[error("invalid token: {}", .0.description())]
    InvalidToken(Reason),
    /// 403 `insufficient_scope`; the scopes the resource needs.
    #[error("insufficient scope: needs {0}")]
    InsufficientScope(String),
    /// 403 `insufficient_scope` (RFC 6750 §3.1: "higher privileges than provided by the access
    /// token"): the user does not hold the role the resource needs.
    #[error("missing role: needs {0}")]
    MissingRole(String),
    /// The issuer's keys could not be fetched and none are cached: 503.
    #[error("the issuer's signing keys are unavailable")]
    KeysUnavailable,
    /// A route asked for the principal without the guard layer in front: 500 (fails closed).
    #[error("tessera-guard is not installed in front of this route")]
    NotInstalled,
    /// RFC 9449 §7.1: 401 `invalid_dpop_proof` with the `DPoP` challenge.
    #[error("invalid DPoP proof: {0}")]
    InvalidDpopProof(String),
    /// RFC 9449 §7.1: 401 `invalid_token` with the `DPoP` challenge (a token presented with the
    /// DPoP scheme, or a bound token presented as Bearer).
    #[error("invalid DPoP token: {0}")]
    InvalidDpopToken(&'static str),
    /// The resource needs a DPoP-bound token: 401 with a bare `DPoP` challenge.
    #[error("a DPoP-bound access token is required")]
    DpopRequired,
}

impl GuardError {
    /// The RFC 6750 `error` code, if any.
    pub fn code(&self) -> Option<&'static str> {
        match self {
            Self::InvalidRequest(_) => Some("invalid_request"),
            Self::InvalidToken(_) => Some("invalid_token"),
            Self::InsufficientScope(_) | Self::MissingRole(_) => Some("insufficient_scope"),
            Self::InvalidDpopProof(_) => Some("invalid_dpop_proof"),
            Self::InvalidDpopToken(_) => Some("invalid_token"),
            Self::Missing | Self::KeysUnavailable | Self::NotInstalled | Self::DpopRequired => None,
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            Self::Missing | Self::InvalidToken(_) | Self::InvalidDpopProof(_) | Self::InvalidDpopToken(_) | Self::DpopRequired => StatusCode::UNAUTHORIZED,
            Self::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            Self::InsufficientScope(_) | Self::MissingRole(_) => StatusCode::FORBIDDEN,
            Self::KeysUnavailable => StatusCode::SERVICE_UNAVAILABLE,
            Self::NotInstalled => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn description(&self) -> &str {
        match self {
            Self::Missing => "an access token is required",
            Self::InvalidRequest(d) => d,
            Self::InvalidToken(r) => r.description(),
            Self::InsufficientScope(_) => "the access token does not grant the scope this request needs",
            Self::MissingRole(_) => "the user does not hold the role this request needs",
            Self::KeysUnavailable => "the authorization server's keys are unavailable; try again later",
            Self::NotInstalled => "internal error",
            Self::InvalidDpopProof(d) => d,
            Self::InvalidDpopToken(d) => d,
            Self::DpopRequired => "this resource needs a DPoP-bound access token (RFC 9449)",
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 §3).
    pub fn challenge(&self) -> Option<String> {
        self.challenge_naming(None)
    }

    /// [`GuardError::challenge`], naming the protected resource's metadata in every 401's
    /// challenge (RFC 9728 §5.1 `resource_metadata`) when `resource_metadata` is given.
    pub fn challenge_naming(&self, resource_metadata: Option<&str>) -> Option<String> {
        let challenge = self.bare_challenge()?;
        match resource_metadata {
            Some(url) if self.status() == StatusCode::UNAUTHORIZED => {
                let param = format!("resource_metadata=\"{}\"", sanitize(url));
                Some(if challenge == "Bearer" { format!("Bearer {param}") } else { format!("{challenge}, {param}") })
            }
            _ => Some(challenge),
        }
    }

    fn bare_challenge(&self) -> Option<String> {
        match self {
            Self::Missing => Some("Bearer".to_string()),
            Self::InsufficientScope(scope) => {
                Some(format!("Bearer error=\"insufficient_scope\", error_description=\"{}\", scope=\"{}\"", self.description(), sanitize(scope)))
            }
            Self::InvalidRequest(_) | Self::InvalidToken(_) | Self::MissingRole(_) => {
                Some(format!("Bearer error=\"{}\", error_description=\"{}\"", self.code().unwrap_or_default(), sanitize(self.description())))
            }
            Self::InvalidDpopProof(_) | Self::InvalidDpopToken(_) => Some(format!(
                "DPoP error=\"{}\", error_description=\"{}\", algs=\"{}\"",
                self.code().unwrap_or_default(),
                sanitize(self.description()),
                tessera_dpop::SUPPORTED_ALGS.join(" ")
            )),
            Self::DpopRequired => Some(format!("DPoP algs=\"{}\"", tessera_dpop::SUPPORTED_ALGS.join(" "))),
            Self::KeysUnavailable | Self::NotInstalled => None,
        }
    }
}

/// Keep only the characters RFC 6750 §3 allows inside a quoted attribute.
fn sanitize(s: &str) -> String {
    s.chars().filter(|c| matches!(*c as u32, 0x20..=0x21 | 0x23..=0x5B | 0x5D..=0x7E)).collect()
}

impl IntoResponse for GuardError {
    fn into_response(self) -> Response {
        self.into_response_naming(None)
    }
}

impl GuardError {
    /// The response, its 401 challenge naming `resource_metadata` (RFC 9728 §5.1) when given.
    pub fn into_response_naming(self, resource_metadata: Option<&str>) -> Response {
        if self == Self::NotInstalled {
            tracing::error!("a route needs tessera_guard::Principal but Guard::layer() is not in front of it");
        }
        let body = match (self.code(), &self) {
            (Some(code), Self::InsufficientScope(scope)) => {
                serde_json::json!({"error": code, "error_description": self.description(), "scope": scope})
            }
            (Some(code), Self::MissingRole(role)) => serde_json::json!({"error": code, "error_description": self.description(), "role": role}),
            (Some(code), _) => serde_json::json!({"error": code, "error_description": self.description()}),
            (None, _) => serde_json::json!({"error_description": self.description()}),
        };
        let mut res = (self.status(), axum::Json(body)).into_response();
        let h = res.headers_mut();
        if let Some(c) = self.challenge_naming(resource_metadata).and_then(|c| HeaderValue::from_str(&c).ok()) {
            h.insert(header::WWW_AUTHENTICATE, c);
        }
        if self == Self::KeysUnavailable {
            h.insert(header::RETRY_AFTER, HeaderValue::from_static("10"));
        }
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        res
    }
}
