//! The token endpoint (RFC 6749 §3.2): authenticate the client (§2.3), parse the grant, and hand
//! it to its module in [`super::grants`]. No grant-specific branches live here beyond dispatch:
//! a grant has its tokens made ([`Tessera::prepare_tokens`]), then stores the refresh token with
//! its own atomic consume (its storage contract's `take_…_issuing` / `rotate_…`), and answers
//! with [`Issued::response`] only when that consume succeeded.

use super::{ServiceError, Tessera};
use crate::secret;
use std::sync::Arc;
use tessera_protocol::client::{AuthMethod, ClientPolicy, GrantType, PresentedCredentials};
use tessera_protocol::dpop;
use tessera_protocol::grant::TokenRequest;
use tessera_protocol::scope::Scopes;
use tessera_protocol::token::{ACCESS_TOKEN_LIFETIME_SECS, AccessTokenClaims, Audience, Confirmation, TokenResponse};
use tessera_protocol::{ErrorCode, OAuthError};
use tessera_storage::{OidcContext, RefreshTokenRecord};

/// What a refresh token continues: its family and the original authentication time.
pub struct Lineage<'a> {
    pub family_id: String,
    pub auth_time: i64,
    /// Absolute end of the family (RFC 9700 §4.14.2: bounded lifetime).
    pub family_expires_at: i64,
    /// OpenID Connect context carried from the authorization request.
    pub oidc: Option<OidcContext>,
    /// The first tokens of a grant (code redemption): the ID token carries the `nonce`.
    pub with_nonce: bool,
    /// The key of the request's verified DPoP proof (RFC 9449 §5): the tokens are bound to it.
    pub sender: Option<&'a str>,
}

/// What an access token may carry beyond the grant's claims.
#[derive(Debug, Default)]
pub struct Extra<'a> {
    /// The claims requested individually for UserInfo (OIDC Core §5.5).
    pub userinfo_claims: Vec<String>,
    /// RFC 9449 §6.1: the DPoP key (thumbprint) the token is bound to, `cnf.jkt`.
    pub sender: Option<&'a str>,
    /// The user's roles of the token's API ([`Tessera::user_roles`]).
    pub roles: Vec<String>,
}

/// The `jti` of an access token issued within a grant: `FAMILY.RANDOM`, so that revoking the
/// grant (a replayed code, a reused refresh token) also revokes its access tokens at
/// introspection without a write per token. Tokens outside a grant (client credentials) have a
/// plain random `jti`.
pub fn grant_jti(family_id: &str) -> String {
    format!("{family_id}.{}", secret::random_id())
}

/// The grant (family) of an access token's `jti`, if it has one.
pub fn family_of_jti(jti: &str) -> Option<&str> {
    jti.split_once('.').map(|(f, _)| f)
}

impl Tessera {
    /// RFC 6749 §3.2: handle a token request of an authenticated client
    /// ([`Tessera::authenticate_client`] comes first: a request that fails client
    /// authentication is `invalid_client` whatever its grant parameters say).
    ///
    /// `sender`: the thumbprint (RFC 7638) of the key of the request's verified DPoP proof
    /// (RFC 9449 §5), if it carried one; the tokens are then bound to that key.
    pub async fn token(&self, client: &ClientPolicy, req: TokenRequest, sender: Option<&str>) -> Result<TokenResponse, ServiceError> {
        if !client.may_use(req.grant_type()) {
            return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "this client may not use this grant type").into());
        }
        tessera_protocol::dpop::check_required(client.require_dpop, sender)?;
        match req {
            TokenRequest::AuthorizationCode(r) => super::grants::authorization_code::redeem(self, client, &r, sender).await,
            TokenRequest::RefreshToken(r) => super::grants::refresh_token::refresh(self, client, &r, sender).await,
            TokenRequest::ClientCredentials(r) => super::grants::client_credentials::grant(self, client, &r, sender).await,
            TokenRequest::DeviceCode(r) => super::grants::device_code::poll(self, client, &r, sender).await,
            TokenRequest::JwtBearer(r) => super::grants::jwt_bearer::grant(self, client, &r, sender).await,
        }
    }

    /// RFC 6749 §2.3: authenticate with the method the client registered, and only that one.
    /// Secrets are compared as SHA-256 hashes in constant time.
    ///
    /// A Basic `Authorization` header that authenticated is remembered with the client record
    /// it was checked against, and counts only while that record is still the cached one: the
    /// same header again skips decoding and hashing, and a rotated secret or a deleted client
    /// takes effect within the client cache's bound ([`super::CACHE_TTL`]) as before. The
    /// body's own checks (one method only; a body `client_id` must match) run every time.
    pub async fn authenticate_client(&self, creds: &PresentedCredentials<'_>) -> Result<Arc<ClientPolicy>, ServiceError> {
        if let Some(policy) = self.remembered_client(creds).await? {
            return Ok(policy);
        }
        let policy = self.authenticate_client_uncached(creds).await?;
        if let (PresentedCredentials::Basic(basic), AuthMethod::ClientSecretBasic) = (creds, policy.auth_method) {
            self.authenticated_headers.insert(basic.header().to_string(), policy.clone());
        }
        Ok(policy)
    }

    /// The client a remembered Basic header authenticated (see [`Tessera::authenticate_client`]),
    /// with the body's rules checked; `None` when the header is not remembered (or no longer
    /// matches the cached client record).
    pub(crate) async fn remembered_client(&self, creds: &PresentedCredentials<'_>) -> Result<Option<Arc<ClientPolicy>>, ServiceError> {
        let PresentedCredentials::Basic(basic) = creds else { return Ok(None) };
        let Some(p) = self.authenticated_headers.get(basic.header()) else { return Ok(None) };
        if !self.cached_client_and_policy(&p.client_id).await?.is_some_and(|(_, current)| Arc::ptr_eq(&current, &p)) {
            return Ok(None);
        }
        basic.check_body(&p.client_id)?;
        Ok(Some(p))
    }

    async fn authenticate_client_uncached(&self, creds: &PresentedCredentials<'_>) -> Result<Arc<ClientPolicy>, ServiceError> {
        let creds = creds.decode()?;
        let failed = || OAuthError::invalid_client("client authentication failed");
        let Some((client, policy)) = self.cached_client_and_policy(&creds.client_id).await? else {
            // Spend the same work as a real comparison.
            let _ = secret::matches("x", &secret::hash("y"));
            return Err(failed().into());
        };
        if creds.method != policy.auth_method {
            return Err(OAuthError::invalid_client(format!("this client must authenticate with {}", policy.auth_method)).into());
        }
        match (policy.auth_method, &creds.secret, &client.secret_hash) {
            (AuthMethod::None, None, _) => Ok(policy),
            (_, Some(s), Some(h)) if secret::matches(&s.0, h) => Ok(policy),
            _ => Err(failed().into()),
        }
    }

    /// Sign an access token (RFC 9068 §2.2); `sub` is the user, or the client itself when no
    /// user is involved (§2.2: "the value of sub SHOULD correspond to an identifier the
    /// authorization server uses to indicate the client application").
    pub fn sign_access_token(
        &self,
        client_id: &str,
        sub: &str,
        scope: &Scopes,
        audience: &[String],
        jti: String,
        extra: Extra<'_>,
    ) -> Result<String, ServiceError> {
        let now = self.now();
        let aud = if audience.is_empty() { vec![self.config.issuer.clone()] } else { audience.to_vec() };
        let claims = AccessTokenClaims {
            iss: self.config.issuer.clone(),
            sub: sub.to_string(),
            aud: Audience::from_vec(aud),
            exp: now + ACCESS_TOKEN_LIFETIME_SECS,
            iat: now,
            jti,
            client_id: client_id.to_string(),
            scope: scope.to_string(),
            userinfo_claims: extra.userinfo_claims,
            cnf: extra.sender.map(|jkt| Confirmation { jkt: jkt.to_string() }),
            roles: extra.roles,
        };
        // RFC 9068 §2.1: "typ" header "at+jwt".
        let keys = self.keys.current();
        let key = keys.signer(tessera_jose::Alg::ES256, now).ok_or_else(|| OAuthError::server_error("no ES256 signing key"))?;
        Ok(key.sign_jwt("at+jwt", &claims).map_err(|e| OAuthError::server_error(e.to_string()))?)
    }

    /// The roles of the audience's APIs that the user holds, directly or through a group, sorted:
    /// what the user's access tokens carry as `roles`. APIs that declare no role cost no query
    /// (the scope catalog knows which do).
    pub async fn user_roles(&self, user_id: &str, audience: &[String]) -> Result<Vec<String>, ServiceError> {
        let catalog = self.cached_catalog().await?;
        let mut roles = Vec::new();
        for api in audience.iter().filter(|a| catalog.declares_roles(a)) {
            roles.extend(self.store.find_user_roles(user_id, api).await?);
        }
        roles.sort();
        roles.dedup();
        Ok(roles)
    }

    /// Make an access token (RFC 9068) for `scope` and, when the client may refresh, a refresh
    /// token for `refresh_scope` in the given family — without storing anything. RFC 6749 §6: a
    /// new refresh token's scope "MUST be identical to that of the refresh token included by the
    /// client in the request", even when the access token's scope was narrowed.
    ///
    /// Every read the tokens need happens here, so the grant's consume (which stores
    /// [`Issued::refresh_record`] in its transaction) is the last store call: losing the
    /// database mid-request never leaves a consumed code or token without what it was exchanged
    /// for (the client's retry works instead of looking like a replay).
    pub async fn prepare_tokens(
        &self,
        client: &ClientPolicy,
        user_id: &str,
        scope: &Scopes,
        refresh_scope: &Scopes,
        audience: &[String],
        lineage: Lineage<'_>,
    ) -> Result<Issued, ServiceError> {
        let sender = lineage.sender;
        let now = self.now();
        let is_oidc = scope.contains("openid");
        let ctx = lineage.oidc.as_ref();
        let userinfo_claims = match (is_oidc, ctx) {
            (true, Some(c)) => c.claims_userinfo.clone(),
            _ => Vec::new(),
        };
        let roles = self.user_roles(user_id, audience).await?;
        let access_token =
            self.sign_access_token(&client.client_id, user_id, scope, audience, grant_jti(&lineage.family_id), Extra { userinfo_claims, sender, roles })?;
        let id_token = match (is_oidc, ctx) {
            (true, Some(ctx)) => Some(self.id_token(&client.client_id, user_id, scope, lineage.auth_time, ctx, &access_token, lineage.with_nonce).await?),
            (true, None) => Some(self.id_token(&client.client_id, user_id, scope, lineage.auth_time, &Default::default(), &access_token, false).await?),
            _ => None,
        };
        // OIDC Core §11: for OpenID Connect requests, offline_access governs refresh tokens;
        // plain OAuth requests follow the client's registered grant types.
        let offline_ok = !refresh_scope.contains("openid") || refresh_scope.contains("offline_access");
        let refresh = if client.may_use(GrantType::RefreshToken) && offline_ok && lineage.family_expires_at > now {
            let token = self.random.token();
            let record = RefreshTokenRecord {
                token_hash: secret::hash(&token),
                family_id: lineage.family_id,
                client_id: client.client_id.clone(),
                user_id: user_id.to_string(),
                scope: refresh_scope.clone(),
                audience: audience.to_vec(),
                auth_time: lineage.auth_time,
                created_at: now,
                expires_at: (now + self.config.refresh_token_idle_lifetime).min(lineage.family_expires_at),
                family_expires_at: lineage.family_expires_at,
                used_at: None,
                revoked_at: None,
                oidc: lineage.oidc,
                dpop_jkt: dpop::refresh_binding(client.is_public(), sender),
            };
            Some((token, record))
        } else {
            None
        };
        let (refresh_token, refresh) = refresh.unzip();
        let response = TokenResponse {
            access_token,
            token_type: dpop::token_type(sender).into(),
            expires_in: ACCESS_TOKEN_LIFETIME_SECS,
            scope: scope.to_string(),
            refresh_token,
            id_token,
        };
        Ok(Issued { response, refresh })
    }
}

/// Tokens made for a grant ([`Tessera::prepare_tokens`]), not yet handed out: the refresh token
/// is stored by the grant's consume, in its transaction.
#[derive(Debug)]
pub struct Issued {
    response: TokenResponse,
    refresh: Option<RefreshTokenRecord>,
}

impl Issued {
    /// The refresh token to store with the consume, if one is issued.
    pub fn refresh_record(&self) -> Option<&RefreshTokenRecord> {
        self.refresh.as_ref()
    }
    /// The response (RFC 6749 §5.1), once the consume that stored [`Issued::refresh_record`]
    /// succeeded.
    pub fn response(self) -> TokenResponse {
        self.response
    }
}
