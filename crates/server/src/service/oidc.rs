//! OpenID Connect on top of the grants: ID tokens (OIDC Core §2, §3.1.3.6), the UserInfo
//! endpoint (§5.3), `id_token_hint`, and logout (RP-Initiated Logout 1.0, Back-Channel Logout
//! 1.0). Authentication facts (who, when, how) come from the browser session; this module only
//! reports them to clients.

use super::token::family_of_jti;
use super::{ServiceError, Tessera};
use serde_json::{Map, Value, json};
use tessera_jose::Alg;
use tessera_protocol::OAuthError;
use tessera_protocol::oidc::{ACR_MFA, ACR_PASSWORD, ACR_SSO, OidcRequest, at_hash, release_claims, release_requested_claims};
use tessera_protocol::scope::Scopes;
use tessera_storage::{ClientRecord, SessionRecord, UserRecord};

/// ID token lifetime, seconds.
pub const ID_TOKEN_LIFETIME_SECS: i64 = 3600;
/// The longest any token signed by a key lives: keys are retired only after this.
pub const MAX_SIGNED_TOKEN_LIFETIME_SECS: i64 = ID_TOKEN_LIFETIME_SECS;

/// What an OpenID Connect request carries from the authorization to the token endpoint (stored
/// with the code, the refresh token and the device code); the store keeps it typed.
pub use tessera_storage::OidcContext;

/// The context of a request answered in session `s`; `signed_in_here`: the user signed in
/// during this request. OIDC Core §2 `acr`: [`ACR_MFA`] when the session's sign-in used a
/// second factor, else [`ACR_PASSWORD`] for a sign-in during this request, else [`ACR_SSO`];
/// `amr` (RFC 8176) as the session recorded it.
pub fn request_context(o: &OidcRequest, s: &SessionRecord, signed_in_here: bool) -> OidcContext {
    let acr = if super::mfa::session_has_mfa(s) {
        ACR_MFA
    } else if signed_in_here {
        ACR_PASSWORD
    } else {
        ACR_SSO
    };
    OidcContext {
        nonce: o.nonce.clone(),
        sid: Some(s.sid.clone()),
        amr: s.amr.as_deref().unwrap_or("pwd").split(' ').map(str::to_string).collect(),
        claims_id_token: o.claims_id_token.clone(),
        claims_userinfo: o.claims_userinfo.clone(),
        acr: Some(acr.to_string()),
    }
}

/// The context for a device's request approved in this session.
pub fn session_context(s: &SessionRecord, signed_in_here: bool) -> OidcContext {
    request_context(&OidcRequest::default(), s, signed_in_here)
}

/// Every claim the user has (OIDC Core §5.1), keyed by claim name.
pub fn user_claims(u: &UserRecord) -> Map<String, Value> {
    let mut m = u.profile.clone();
    if let Some(n) = &u.name {
        m.insert("name".into(), json!(n));
    }
    if let Some(e) = &u.email {
        m.insert("email".into(), json!(e));
        // True only through a verification link (issue 15), whatever a profile claims.
        m.insert("email_verified".into(), json!(u.email_verified));
    }
    m.entry("preferred_username").or_insert(json!(u.username));
    if u.updated_at > 0 {
        m.insert("updated_at".into(), json!(u.updated_at));
    }
    m
}

/// Why a UserInfo request failed (RFC 6750 §3.1, RFC 9449 §7.1).
#[derive(Debug)]
pub enum UserinfoError {
    /// No token at all: a bare `WWW-Authenticate: Bearer`.
    NoToken,
    InvalidToken(&'static str),
    /// The token lacks `openid`.
    InsufficientScope,
    /// RFC 9449 §7.1: the DPoP proof is missing or invalid (`invalid_dpop_proof`), or lacks the
    /// server's nonce (`use_dpop_nonce`): the OAuth error, answered with the `DPoP` scheme.
    Proof(OAuthError),
    /// CORS: the request's origin is not registered for the token's client.
    Origin,
    Store(ServiceError),
}

/// The access token a UserInfo request presents, and how (RFC 6750 §2.1, RFC 9449 §7.1).
#[derive(Debug, Clone, Copy)]
pub enum PresentedToken<'a> {
    None,
    Bearer(&'a str),
    /// `Authorization: DPoP` with the request's `DPoP` headers (method and URL in the proof).
    Dpop(&'a str, super::dpop::PresentedProof<'a>),
}

impl From<ServiceError> for UserinfoError {
    fn from(e: ServiceError) -> Self {
        Self::Store(e)
    }
}

impl From<tessera_storage::StoreError> for UserinfoError {
    fn from(e: tessera_storage::StoreError) -> Self {
        Self::Store(e.into())
    }
}

/// Logout outcome for the browser.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LogoutOutcome {
    /// Redirect to the registered post-logout URI (with `state`).
    Redirect(String),
    /// Show "you are signed out".
    Done,
}

impl Tessera {
    /// The claims of an ID token we issued (signature checked; expiry ignored, as OIDC Core
    /// §3.1.2.1 allows for `id_token_hint`), or `None` when it is not ours or not an ID token.
    ///
    /// Everything Tessera signs is a JWT with the same keys, so the signature alone does not
    /// say "ID token": access tokens (`typ: at+jwt`, RFC 9068 §2.1) and logout tokens
    /// (`typ: logout+jwt`) are refused by their `typ`, and an ID token must carry what §2
    /// requires of one (`sub`, `aud`, `iat`, `exp`) and no access-token claims.
    fn verified_id_token(&self, hint: &str) -> Option<Map<String, Value>> {
        let keys = self.keys.current();
        let v = tessera_jose::verify_compact(hint, |kid| keys.find(kid)).ok()?;
        if v.header.get("typ").and_then(Value::as_str) != Some("JWT") {
            return None;
        }
        let Value::Object(claims) = v.claims else { return None };
        let issued_here = claims.get("iss").and_then(Value::as_str) == Some(self.config.issuer.as_str());
        let shaped =
            ["sub", "aud", "iat", "exp"].iter().all(|c| claims.contains_key(*c)) && !["scope", "client_id", "events"].iter().any(|c| claims.contains_key(*c));
        (issued_here && shaped).then_some(claims)
    }

    /// The `sub` of an ID token we issued, for `id_token_hint` (OIDC Core §3.1.2.1).
    pub fn id_token_hint_subject(&self, hint: &str) -> Option<String> {
        self.verified_id_token(hint)?.get("sub").and_then(Value::as_str).map(str::to_string)
    }

    /// The client an ID token was issued to (its `aud`), for logout without `client_id`.
    fn id_token_hint_client(&self, hint: &str) -> Option<String> {
        let claims = self.verified_id_token(hint)?;
        match claims.get("aud") {
            Some(Value::String(a)) => Some(a.clone()),
            Some(Value::Array(a)) => a.first().and_then(Value::as_str).map(str::to_string),
            _ => None,
        }
    }

    /// The algorithm a client's ID tokens are signed with (RS256 unless it registered another).
    pub fn id_token_alg(client: &ClientRecord) -> Alg {
        client.id_token_signed_response_alg.as_deref().and_then(|a| a.parse().ok()).unwrap_or(Alg::RS256)
    }

    /// OIDC Core §2 and §3.1.3.6: an ID token for `client`, carrying the claims requested for
    /// it (§5.5) that the granted `scope` covers.
    #[allow(clippy::too_many_arguments)]
    pub async fn id_token(
        &self,
        client_id: &str,
        user_id: &str,
        scope: &Scopes,
        auth_time: i64,
        ctx: &OidcContext,
        access_token: &str,
        with_nonce: bool,
    ) -> Result<String, ServiceError> {
        let now = self.now();
        let client = self.cached_client(client_id).await?.ok_or_else(|| OAuthError::invalid_client("unknown client"))?;
        let user = self.store.find_user(user_id).await?.ok_or_else(|| OAuthError::invalid_grant("the user no longer exists"))?;
        let alg = Self::id_token_alg(&client);
        let available = self.claims_of(&user, scope).await?;
        let mut claims = release_requested_claims(scope, &ctx.claims_id_token, &available);
        // The `groups` scope puts the user's groups in the ID token as well as at UserInfo: what
        // apps that map groups to permissions (Grafana, Argo CD…) read at sign-in.
        if let Some(groups) = available.get("groups") {
            claims.insert("groups".into(), groups.clone());
        }
        claims.insert("iss".into(), json!(self.config.issuer));
        claims.insert("sub".into(), json!(user.id));
        claims.insert("aud".into(), json!(client_id));
        claims.insert("azp".into(), json!(client_id));
        claims.insert("exp".into(), json!(now + ID_TOKEN_LIFETIME_SECS));
        claims.insert("iat".into(), json!(now));
        claims.insert("auth_time".into(), json!(auth_time));
        claims.insert("at_hash".into(), json!(at_hash(access_token, alg.as_str())));
        if let Some(acr) = &ctx.acr {
            claims.insert("acr".into(), json!(acr));
        }
        if !ctx.amr.is_empty() {
            claims.insert("amr".into(), json!(ctx.amr));
        }
        if let Some(sid) = &ctx.sid {
            claims.insert("sid".into(), json!(sid));
        }
        if with_nonce {
            if let Some(n) = &ctx.nonce {
                claims.insert("nonce".into(), json!(n));
            }
        }
        let keys = self.keys.current();
        let key = keys.signer(alg, now).ok_or_else(|| OAuthError::server_error("no signing key for the ID token algorithm"))?;
        Ok(key.sign_jwt("JWT", &Value::Object(claims)).map_err(|e| OAuthError::server_error(e.to_string()))?)
    }

    /// Every claim of the user's that `scope` may release: [`user_claims`], and `groups` (the
    /// names of the user's groups) when the scope has `groups`.
    async fn claims_of(&self, user: &UserRecord, scope: &Scopes) -> Result<Map<String, Value>, ServiceError> {
        let mut claims = user_claims(user);
        if scope.contains("groups") {
            claims.insert("groups".into(), json!(self.store.list_user_groups(&user.id).await?));
        }
        Ok(claims)
    }

    /// OIDC Core §5.3: the claims the access token's scopes (and the `claims` request) allow.
    /// `origin`: the browser origin the request came from (its parsed `Origin`), which must be
    /// one the token's client registered.
    pub async fn userinfo(&self, presented: PresentedToken<'_>, origin: Option<&str>) -> Result<Value, UserinfoError> {
        let (token, proof) = match presented {
            PresentedToken::None => return Err(UserinfoError::NoToken),
            PresentedToken::Bearer(t) => (t, None),
            PresentedToken::Dpop(t, p) => (t, Some(p)),
        };
        let now = self.now();
        let keys = self.keys.current();
        let v = tessera_jose::verify_compact(token, |kid| keys.find(kid)).map_err(|_| UserinfoError::InvalidToken("the access token is not valid"))?;
        let c = &v.claims;
        if v.header.get("typ").and_then(Value::as_str) != Some("at+jwt") || c.get("iss").and_then(Value::as_str) != Some(self.config.issuer.as_str()) {
            return Err(UserinfoError::InvalidToken("the access token is not valid"));
        }
        if c.get("exp").and_then(Value::as_i64).is_none_or(|e| e <= now) {
            return Err(UserinfoError::InvalidToken("the access token has expired"));
        }
        let jti = c.get("jti").and_then(Value::as_str).unwrap_or("");
        if self.store.is_revoked(jti, family_of_jti(jti)).await? {
            return Err(UserinfoError::InvalidToken("the access token was revoked"));
        }
        if let Some(o) = origin {
            let client_id = c.get("client_id").and_then(Value::as_str);
            if client_id.is_none() || !self.cors_allows(client_id, o).await? {
                return Err(UserinfoError::Origin);
            }
        }
        // RFC 9449 §7.1: a bound token only with the DPoP scheme and a proof of its key (whose
        // `ath` is this token's); an unbound one only as Bearer.
        let bound = c.get("cnf").and_then(|c| c.get("jkt")).and_then(Value::as_str);
        match (bound, proof) {
            (None, None) => {}
            (Some(_), None) => {
                return Err(UserinfoError::InvalidToken("this access token is bound to a DPoP key: present it with the DPoP scheme and a proof"));
            }
            (None, Some(_)) => return Err(UserinfoError::InvalidToken("this access token is not DPoP-bound: present it as Bearer")),
            (Some(jkt), Some(p)) => {
                let p = super::dpop::PresentedProof { access_token: Some(token), ..p };
                let key = match self.verify_dpop(&p).await {
                    Ok(k) => k,
                    Err(ServiceError::OAuth(e)) => return Err(UserinfoError::Proof(e)),
                    Err(e) => return Err(e.into()),
                };
                match key {
                    Some(k) if k == jkt => {}
                    Some(_) => {
                        return Err(UserinfoError::Proof(tessera_protocol::dpop::invalid_proof(
                            "the DPoP proof is not made with the key the token is bound to",
                        )));
                    }
                    None => return Err(UserinfoError::Proof(tessera_protocol::dpop::invalid_proof("a DPoP proof is required with the DPoP scheme"))),
                }
            }
        }
        let scopes = Scopes::parse(c.get("scope").and_then(Value::as_str).unwrap_or("")).unwrap_or_default();
        if !scopes.contains("openid") {
            return Err(UserinfoError::InsufficientScope);
        }
        let sub = c.get("sub").and_then(Value::as_str).unwrap_or("");
        let user = self.active_user(sub).await?.ok_or(UserinfoError::InvalidToken("the user no longer exists"))?;
        // Claims follow the granted scopes (§5.4). Claims the `claims` request asked UserInfo for
        // (§5.5) are released only when a granted scope covers them, and every claim a scope
        // covers is already here: the user consented to scopes, not to individual requests.
        let mut out = release_claims(&scopes, &self.claims_of(&user, &scopes).await?);
        out.insert("sub".into(), json!(user.id));
        Ok(Value::Object(out))
    }

    /// RP-Initiated Logout 1.0 §2–§3: check the request before asking the user. Returns the
    /// validated post-logout redirect (with `state`), if any.
    /// A database outage is a [`ServiceError::Store`] (503 with `Retry-After`), not a 500.
    pub async fn check_logout_request(
        &self,
        client_id: Option<&str>,
        id_token_hint: Option<&str>,
        post_logout_redirect_uri: Option<&str>,
        state: Option<&str>,
    ) -> Result<Option<String>, ServiceError> {
        let hinted = match id_token_hint {
            Some(h) => Some(self.id_token_hint_client(h).ok_or_else(|| OAuthError::invalid_request("id_token_hint is not an ID token issued here"))?),
            None => None,
        };
        if let (Some(a), Some(b)) = (client_id, hinted.as_deref()) {
            if a != b {
                return Err(OAuthError::invalid_request("client_id does not match the id_token_hint").into());
            }
        }
        let Some(uri) = post_logout_redirect_uri else { return Ok(None) };
        let client_id =
            client_id.map(str::to_string).or(hinted).ok_or_else(|| OAuthError::invalid_request("post_logout_redirect_uri needs client_id or id_token_hint"))?;
        let client = self.store.find_client(&client_id).await?.ok_or_else(|| OAuthError::invalid_request("unknown client_id"))?;
        // §3: "MUST NOT perform post-logout redirection ... to a URI that has not been registered"; exact match.
        if !client.post_logout_redirect_uris.iter().any(|u| u == uri) {
            return Err(OAuthError::invalid_request("post_logout_redirect_uri is not registered for this client").into());
        }
        let mut pairs = Vec::new();
        if let Some(s) = state {
            pairs.push(("state", s));
        }
        Ok(Some(tessera_protocol::redirect::with_query(uri, &pairs)?))
    }

    /// End the browser session and tell every client that got tokens in it (Back-Channel
    /// Logout 1.0 §2.5). Deliveries run in tasks of their own, with retries
    /// ([`super::backchannel`]): the user's logout never waits for a relying party.
    pub async fn logout(&self, session: &SessionRecord) -> Result<(), ServiceError> {
        let clients = self.store.list_session_clients(&session.sid).await?;
        self.store.delete_session(&session.id_hash).await?;
        let Some(user_id) = &session.user_id else { return Ok(()) };
        for client_id in clients {
            let Some(client) = self.store.find_client(&client_id).await? else { continue };
            let Some(uri) = client.backchannel_logout_uri.clone() else { continue };
            match self.logout_token(&client, user_id, &session.sid) {
                Ok(token) => super::backchannel::spawn_delivery(uri, token, self.config.allow_private_logout_uris),
                Err(e) => tracing::warn!(error = %e, client_id = %client.client_id, "could not sign a logout token"),
            }
        }
        Ok(())
    }

    /// Back-Channel Logout 1.0 §2.4: the logout token.
    fn logout_token(&self, client: &ClientRecord, user_id: &str, sid: &str) -> Result<String, ServiceError> {
        let now = self.now();
        let alg = Self::id_token_alg(client);
        let claims = json!({
            "iss": self.config.issuer,
            "sub": user_id,
            "aud": client.client_id,
            "iat": now,
            "exp": now + 120,
            "jti": self.random.id(),
            "sid": sid,
            "events": { "http://schemas.openid.net/event/backchannel-logout": {} },
        });
        let keys = self.keys.current();
        let key = keys.signer(alg, now).ok_or_else(|| OAuthError::server_error("no signing key"))?;
        Ok(key.sign_jwt("logout+jwt", &claims).map_err(|e| OAuthError::server_error(e.to_string()))?)
    }
}
