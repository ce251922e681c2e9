//! Token introspection (RFC 7662) and revocation (RFC 7009).
//!
//! Introspection answers `active: false` — and nothing else — for expired, revoked, foreign or
//! garbage tokens, and for the tokens of a user who was deleted. A caller sees only tokens meant for it: a client its own tokens, an API the
//! access tokens whose audience it is.

use super::token::family_of_jti;
use super::{ServiceError, Tessera};
use crate::secret;
use serde_json::{Value, json};
use std::sync::Arc;
use tessera_protocol::client::{AuthMethod, ClientPolicy, PresentedCredentials};
use tessera_protocol::introspect::{TokenQuery, TokenTypeHint};
use tessera_protocol::{ErrorCode, OAuthError};
use tessera_storage::RefreshTokenRecord;

/// Who asks: a client, or a resource server with its own credentials.
#[derive(Debug)]
pub enum Caller {
    Client(Arc<ClientPolicy>),
    Api(String),
}

/// A token we issued, recognised and checked for expiry and revocation.
enum Known {
    Access(Arc<VerifiedToken>),
    Refresh(Box<RefreshTokenRecord>),
}

/// An access token whose signature was verified, as the introspection cache keeps it.
pub struct VerifiedToken {
    /// The whole token (the cache finds it by its signature).
    token: Box<str>,
    /// The signing key (the token counts only while the key is published).
    kid: Arc<str>,
    claims: Value,
    /// The RFC 7662 §2.2 answer for a caller that may see it, serialized once per token.
    active_json: Arc<str>,
}

impl VerifiedToken {
    /// The token's claims.
    pub fn claims(&self) -> &Value {
        &self.claims
    }
}

/// An introspection answer (RFC 7662 §2.2), serialized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IntrospectionJson(pub Arc<str>);

impl IntrospectionJson {
    fn inactive() -> Self {
        Self(Arc::from(r#"{"active":false}"#))
    }
    fn of(v: &Value) -> Result<Self, ServiceError> {
        Ok(Self(Arc::from(serde_json::to_string(v).map_err(|e| OAuthError::server_error(e.to_string()))?)))
    }
}

impl Tessera {
    /// RFC 7662 §2.1: "the endpoint MUST also require some form of authorization". Confidential
    /// clients, or APIs with a secret (HTTP Basic with the API identifier as the user name).
    pub async fn authenticate_introspection_caller(&self, presented: &PresentedCredentials<'_>) -> Result<Caller, ServiceError> {
        // Only confidential clients' Basic headers are remembered (never an API's).
        if let Some(client) = self.remembered_client(presented).await? {
            return Ok(Caller::Client(client));
        }
        let creds = presented.decode()?;
        if creds.client_id.contains("://") {
            let catalog = self.cached_catalog().await?;
            return match (catalog.api_secret(&creds.client_id), &creds.secret) {
                (Some(Some(hash)), Some(s)) if secret::matches(&s.0, hash) => Ok(Caller::Api(creds.client_id)),
                _ => Err(OAuthError::invalid_client("client authentication failed").into()),
            };
        }
        let client = self.authenticate_client(presented).await?;
        if client.auth_method == AuthMethod::None {
            return Err(OAuthError::invalid_client("introspection needs an authenticated (confidential) client").into());
        }
        Ok(Caller::Client(client))
    }

    /// The claims of an access token signed by one of our published keys (`typ` at+jwt). The
    /// signature is checked once per token (ECDSA verification is most of an introspection's
    /// cost); later calls find it by its signature segment and compare the whole token, as long
    /// as its key is still published. (Hashing the ~90-byte signature instead of a SHA-256 of
    /// the whole token: a tenth of the work. A forged token that reuses a known signature finds
    /// the entry, differs from its token, and goes to verification like any other.)
    /// Expiry, issuer and revocation are the caller's checks, on every call.
    /// One of this server's access tokens that is live now: verified ([`Self::verified_access_token`]),
    /// issued here, not expired, with a `jti` that is not revoked (by itself or its grant).
    pub(crate) async fn live_access_token(&self, token: &str) -> Result<Option<Arc<VerifiedToken>>, ServiceError> {
        let Some(t) = self.verified_access_token(token) else { return Ok(None) };
        let c = &t.claims;
        let live =
            c.get("exp").and_then(Value::as_i64).is_some_and(|e| e > self.now()) && c.get("iss").and_then(Value::as_str) == Some(self.config.issuer.as_str());
        let jti = c.get("jti").and_then(Value::as_str).unwrap_or("");
        if !live || jti.is_empty() || self.store.is_revoked(jti, family_of_jti(jti)).await? {
            return Ok(None);
        }
        Ok(Some(t))
    }

    pub(crate) fn verified_access_token(&self, token: &str) -> Option<Arc<VerifiedToken>> {
        let keys = self.keys.current();
        let signature = token.rsplit('.').next().unwrap_or(token);
        if let Some(t) = self.verified_tokens.get(signature) {
            if *t.token == *token && keys.find(&t.kid).is_some() {
                return Some(t);
            }
        }
        let v = tessera_jose::verify_compact(token, |kid| keys.find(kid)).ok()?;
        if v.header.get("typ").and_then(Value::as_str) != Some("at+jwt") {
            return None;
        }
        let kid: Arc<str> = v.header.get("kid").and_then(Value::as_str)?.into();
        // RFC 9449 §6.2: a bound token introspects as `token_type` DPoP with its `cnf`.
        let bound = v.claims.get("cnf").and_then(|c| c.get("jkt")).is_some();
        let mut out = json!({ "active": true, "token_type": tessera_protocol::dpop::token_type(bound.then_some("")) });
        for k in ["scope", "client_id", "sub", "aud", "iss", "exp", "iat", "jti", "cnf", "roles"] {
            if let Some(c) = v.claims.get(k) {
                out[k] = c.clone();
            }
        }
        let active_json = Arc::from(serde_json::to_string(&out).ok()?);
        let t = Arc::new(VerifiedToken { token: token.into(), kid, claims: v.claims, active_json });
        self.verified_tokens.insert(signature.into(), t.clone());
        Some(t)
    }

    /// Find what `token` is, if it is one of ours and live.
    async fn recognise(&self, q: &TokenQuery) -> Result<Option<Known>, ServiceError> {
        let now = self.now();
        if q.token.len() > 8192 {
            return Ok(None);
        }
        let as_access = async {
            let Some(token) = self.live_access_token(&q.token).await? else {
                return Ok::<_, ServiceError>(None);
            };
            let claims = &token.claims;
            let jti = claims.get("jti").and_then(Value::as_str).unwrap_or("");
            // RFC 9700 §4.14.2: a deleted user's tokens are inactive. A grant's tokens (`jti`
            // FAMILY.RANDOM) have the user as `sub`; client credentials tokens have no user.
            if family_of_jti(jti).is_some() && !self.user_exists_cached(claims.get("sub").and_then(Value::as_str).unwrap_or("")).await? {
                return Ok(None);
            }
            Ok(Some(Known::Access(token)))
        };
        let as_refresh = async {
            if q.token.len() > 128 {
                return Ok::<_, ServiceError>(None);
            }
            let t = self.store.find_refresh_token(&secret::hash(&q.token)).await?;
            Ok(t.filter(|t| t.used_at.is_none() && t.revoked_at.is_none() && t.expires_at > now && t.family_expires_at > now)
                .map(|t| Known::Refresh(Box::new(t))))
        };
        // The hint orders the search (RFC 7662 §2.1); every supported type is tried.
        if q.hint == Some(TokenTypeHint::RefreshToken) {
            if let Some(k) = as_refresh.await? {
                return Ok(Some(k));
            }
            as_access.await
        } else {
            if let Some(k) = as_access.await? {
                return Ok(Some(k));
            }
            as_refresh.await
        }
    }

    /// RFC 7662 §2.2 response.
    pub async fn introspect(&self, caller: &Caller, q: &TokenQuery) -> Result<IntrospectionJson, ServiceError> {
        let inactive = IntrospectionJson::inactive();
        Ok(match self.recognise(q).await? {
            Some(Known::Access(t)) => {
                let c = &t.claims;
                let visible = match caller {
                    Caller::Client(client) => c.get("client_id").and_then(Value::as_str) == Some(client.client_id.as_str()),
                    Caller::Api(id) => match c.get("aud") {
                        Some(Value::String(a)) => a == id,
                        Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(id.as_str())),
                        _ => false,
                    },
                };
                if !visible {
                    return Ok(inactive);
                }
                IntrospectionJson(t.active_json.clone())
            }
            Some(Known::Refresh(t)) => match caller {
                Caller::Client(client) if client.client_id == t.client_id => IntrospectionJson::of(&json!({
                    "active": true,
                    "token_type": "refresh_token",
                    "scope": t.scope.to_string(),
                    "client_id": t.client_id,
                    "sub": t.user_id,
                    "iss": self.config.issuer,
                    "exp": t.expires_at,
                    "iat": t.created_at,
                }))?,
                _ => inactive,
            },
            None => inactive,
        })
    }

    /// RFC 7009 §2.1: revoke a token the client holds. Unknown, expired and already revoked tokens
    /// answer success (§2.2); another client's token is refused. `client` is authenticated
    /// ([`Tessera::authenticate_client`]) before the request is read.
    pub async fn revoke(&self, client: &ClientPolicy, q: &TokenQuery) -> Result<(), ServiceError> {
        let now = self.now();
        let foreign = || OAuthError::new(ErrorCode::UnauthorizedClient, "the token was issued to another client");
        match self.recognise(q).await? {
            Some(Known::Refresh(t)) => {
                if t.client_id != client.client_id {
                    return Err(foreign().into());
                }
                // RFC 7009 §2.1: revoking a refresh token revokes the grant it belongs to.
                self.store.revoke_family(&t.family_id, now).await?;
                self.audit("token_revoked", Some(&t.user_id), Some(&client.client_id), r#"{"token_type":"refresh_token"}"#).await?;
            }
            Some(Known::Access(t)) => {
                let c = &t.claims;
                if c.get("client_id").and_then(Value::as_str) != Some(client.client_id.as_str()) {
                    return Err(foreign().into());
                }
                let jti = c.get("jti").and_then(Value::as_str).unwrap_or("");
                let exp = c.get("exp").and_then(Value::as_i64).unwrap_or(now);
                self.store.create_revoked_token(jti, exp).await?;
                let user = c.get("sub").and_then(Value::as_str).filter(|s| *s != client.client_id);
                self.audit("token_revoked", user, Some(&client.client_id), r#"{"token_type":"access_token"}"#).await?;
            }
            None => {}
        }
        Ok(())
    }
}
