//! The successful token response, RFC 6749 §5.1, and the access token claims of RFC 9068 §2.2.

use serde::{Deserialize, Serialize};

/// RFC 6749 §5.1 response body.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct TokenResponse {
    pub access_token: String,
    /// RFC 6750: always "Bearer".
    pub token_type: String,
    pub expires_in: i64,
    pub scope: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    /// OIDC Core §3.1.3.3: the ID token, when the scope has `openid`.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id_token: Option<String>,
}

impl TokenResponse {
    /// An access token alone (no refresh or ID token: RFC 6749 §4.4.3, RFC 7523), `DPoP` when
    /// bound to a `sender` key (RFC 9449 §5).
    pub fn access_only(access_token: String, scope: &crate::scope::Scopes, sender: Option<&str>) -> Self {
        Self {
            access_token,
            token_type: crate::dpop::token_type(sender).into(),
            expires_in: ACCESS_TOKEN_LIFETIME_SECS,
            scope: scope.to_string(),
            refresh_token: None,
            id_token: None,
        }
    }
}

/// RFC 9068 §2.2: the claims of a JWT access token.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct AccessTokenClaims {
    pub iss: String,
    pub sub: String,
    /// One audience as a string, several as an array (RFC 7519 §4.1.3).
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    /// OIDC Core §5.5: claims the client asked UserInfo to release individually (the `claims`
    /// request's `userinfo` member). Carried in the token, the only state UserInfo is given;
    /// absent unless requested.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub userinfo_claims: Vec<String>,
    /// RFC 9449 §6.1: the DPoP key the token is bound to (`cnf.jkt`); absent for bearer tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
    /// The roles of the token's API (its audience) the user holds, directly or through a
    /// group; absent when none (and for tokens without a user).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// RFC 7800 §3.1 confirmation claim, with RFC 9449 §6.1's `jkt` member.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    pub jkt: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn from_vec(mut v: Vec<String>) -> Self {
        if v.len() == 1 { Self::One(v.remove(0)) } else { Self::Many(v) }
    }
    pub fn contains(&self, a: &str) -> bool {
        match self {
            Self::One(s) => s == a,
            Self::Many(v) => v.iter().any(|s| s == a),
        }
    }
}

/// Access token lifetime in seconds (RFC 9700 §2.2 recommends short-lived access tokens).
pub const ACCESS_TOKEN_LIFETIME_SECS: i64 = 600;
