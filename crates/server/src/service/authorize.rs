//! The authorization endpoint (RFC 6749 §4.1.1–4.1.2): validate the request, make sure the user
//! is signed in and has consented, and issue a single-use code bound to the client, redirect URI
//! and PKCE challenge.
//!
//! Consent is remembered per user and client. A request whose scopes are all granted skips the
//! consent page; a request for more asks only for the new scopes (incremental authorization).
//! OpenID Connect requests (scope `openid`) add `prompt`, `max_age`, `nonce`, `login_hint`,
//! `id_token_hint` and `claims` (OIDC Core §3.1.2.1); whether a page is needed is decided by
//! `tessera_protocol::oidc::decide_interaction` for every request.

use super::{ServiceError, Tessera};
use crate::secret;
use serde::{Deserialize, Serialize};
use tessera_protocol::authorize::{self as rules, AuthorizeParams, RedirectTarget};
pub use tessera_protocol::catalog::ScopeCatalog;
use tessera_protocol::client::{AuthMethod, ClientPolicy};
use tessera_protocol::grant::authorization_code::CODE_LIFETIME_SECS;
use tessera_protocol::oidc::{self, Interaction, OidcRequest, ResponseMode, SessionState};
use tessera_protocol::scope::Scopes;
use tessera_protocol::{ErrorCode, OAuthError};
use tessera_storage::{ClientRecord, CodeRecord, PendingRequestRecord, SessionRecord};

/// How long a user has to sign in and consent (and how long an anonymous session lives).
pub const PENDING_LIFETIME_SECS: i64 = 600;

/// What the browser should see next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthorizeOutcome {
    /// RFC 6749 §4.1.2.1: shown to the user, never redirected.
    ErrorPage(OAuthError),
    /// Back to the client's redirect URI, with a code or an error.
    RedirectToClient(String),
    /// OAuth 2.0 Form Post Response Mode: the same parameters, POSTed by the browser.
    PostToClient { action: String, fields: Vec<(String, String)> },
    /// The user must sign in first.
    Login(String),
    /// The user must consent to new scopes.
    Consent(String),
    /// The user answered a device's request (RFC 8628 §3.3): show the result, the device polls.
    DeviceDone { approved: bool },
}

/// A validated request waiting for sign-in or consent (stored between pages).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct PendingAuthorization {
    pub id: String,
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub state: Option<String>,
    pub scope: String,
    pub code_challenge: Option<String>,
    pub audience: Vec<String>,
    /// RFC 9449 §10: the DPoP key (thumbprint) the code will be bound to.
    #[serde(default)]
    pub dpop_jkt: Option<String>,
    /// Set when this request comes from a device (RFC 8628): consent is then always asked and
    /// the answer goes to the device code, not to a redirect URI.
    #[serde(default)]
    pub device_user_code: Option<String>,
    /// OpenID Connect parameters, when the scope has `openid`.
    #[serde(default)]
    pub oidc: Option<OidcRequest>,
    #[serde(default)]
    pub response_mode: ResponseMode,
    /// Sign-in is required even with a session (prompt=login, max_age, id_token_hint).
    #[serde(default)]
    pub force_login: bool,
    /// The consent page is shown even when everything was granted (prompt=consent).
    #[serde(default)]
    pub force_consent: bool,
    /// The user signed in (entered their password) during this request: OIDC `acr` "1".
    #[serde(default)]
    pub signed_in_here: bool,
    /// The only user this request may be answered for: the `sub` of its `id_token_hint`
    /// (OIDC Core §3.1.2.1) or of a `sub` claim request with a value (§3.1.2.2, §5.5.1).
    #[serde(default)]
    pub required_subject: Option<String>,
    /// The client requires a second factor, or the request asks for one (`acr_values`).
    #[serde(default)]
    pub require_mfa: bool,
}

impl PendingAuthorization {
    fn target(&self) -> RedirectTarget {
        RedirectTarget { redirect_uri: self.redirect_uri.clone(), redirect_uri_given: self.redirect_uri_given, state: self.state.clone() }
    }
    pub fn scopes(&self) -> Scopes {
        Scopes::parse(&self.scope).unwrap_or_default()
    }
}

/// The page data for consent.
#[derive(Debug, Clone)]
pub struct ConsentView {
    pub request_id: String,
    pub client_name: String,
    pub username: String,
    /// (scope, description) the user is asked for now.
    pub new_scopes: Vec<(String, String)>,
    /// Descriptions of scopes the user granted this client before.
    pub granted: Vec<String>,
    /// The user code shown on the device, for a device request.
    pub device_user_code: Option<String>,
}

/// The consent page's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

/// The rules' view of a stored client.
pub fn client_policy(c: &ClientRecord) -> ClientPolicy {
    ClientPolicy {
        client_id: c.client_id.clone(),
        name: c.name.clone(),
        redirect_uris: c.redirect_uris.clone(),
        scopes: c.scope.clone(),
        grant_types: c.grant_types.clone(),
        auth_method: c.token_endpoint_auth_method,
        require_dpop: c.require_dpop,
        origins: tessera_protocol::cors::effective_origins(&c.redirect_uris, &c.allowed_origins),
    }
}

impl Tessera {
    pub async fn scope_catalog(&self) -> Result<ScopeCatalog, ServiceError> {
        let mut catalog = ScopeCatalog::with_oidc_scopes();
        for api in self.store.list_apis().await? {
            if !api.roles.is_empty() {
                catalog.add_roles(&api.identifier);
            }
            catalog.add_api(&api.identifier, api.secret_hash, api.scopes.into_iter().map(|s| (s.name, s.description)));
        }
        // The built-in admin API, last: no registered API can take its scopes.
        catalog.add_api(super::admin_api::ADMIN_API, None, super::admin_api::ADMIN_SCOPES.iter().map(|(n, d)| (n.to_string(), d.to_string())));
        Ok(catalog)
    }

    /// RFC 6749 §4.1.1: handle an authorization request from a browser with this session (if
    /// any). A session is created only when the browser must come back (sign-in or consent); its
    /// cookie value is returned beside the outcome.
    pub async fn authorize(&self, params: &AuthorizeParams, session: Option<&SessionRecord>) -> Result<(AuthorizeOutcome, Option<String>), ServiceError> {
        let outcome = match self.authorize_outcome(params, session).await? {
            Ok(done) => return Ok((done, None)),
            Err(pending) => pending,
        };
        let (pending, interaction) = outcome;
        let (record, cookie) = match session {
            // An anonymous session lives only as long as a pending request (RFC 6819 §4.4.1.11);
            // one with less than half of that left gives way to a new one, so that a sign-in
            // started now has time to finish.
            Some(s) if s.user_id.is_some() || s.expires_at - self.now() >= PENDING_LIFETIME_SECS / 2 => (s.clone(), None),
            _ => {
                let s = self.create_session(None).await?;
                (s.record, s.new_cookie)
            }
        };
        self.save_pending(&pending, &record).await?;
        let next = if interaction == Interaction::Consent { AuthorizeOutcome::Consent(pending.id) } else { AuthorizeOutcome::Login(pending.id) };
        Ok((next, cookie))
    }

    /// `Ok(outcome)` when the request is answered now; `Err((pending, Login | Consent))` when
    /// the browser must sign in or consent first.
    async fn authorize_outcome(
        &self,
        params: &AuthorizeParams,
        session: Option<&SessionRecord>,
    ) -> Result<Result<AuthorizeOutcome, (PendingAuthorization, Interaction)>, ServiceError> {
        // Stage 1: client and redirect URI. Errors are pages.
        let client_id = match rules::client_id(params) {
            Ok(c) => c,
            Err(e) => return Ok(Ok(AuthorizeOutcome::ErrorPage(e))),
        };
        // Clients and the catalog come from the caches the token endpoint uses (≤ CACHE_TTL
        // stale): a client deleted through the CLI is refused here within that bound.
        let Some(client) = self.cached_client(client_id).await? else {
            return Ok(Ok(AuthorizeOutcome::ErrorPage(OAuthError::invalid_request("unknown client_id"))));
        };
        let policy = client_policy(&client);
        let target = match rules::identify_client(params, &policy) {
            Ok(t) => t,
            Err(e) => return Ok(Ok(AuthorizeOutcome::ErrorPage(e))),
        };
        // Stage 2: the rest. Errors go back to the client, in the response mode it asked for.
        let mode = match oidc::parse_response_mode(params) {
            Ok(m) => m,
            Err(e) => return self.to_client(&target, ResponseMode::Query, error_fields(&e)).map(Ok),
        };
        let fail = |e: OAuthError| self.to_client(&target, mode, error_fields(&e)).map(Ok);
        let catalog = self.cached_catalog().await?;
        let req = match rules::validate(params, &policy, target.clone(), |s| catalog.contains(s)) {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        let audience = match catalog.audience_for(&req.scopes, req.resource.as_deref()) {
            Ok(a) => a,
            Err(e) => return fail(e),
        };
        let oidc_req = if req.scopes.contains("openid") {
            match OidcRequest::parse(params) {
                Ok(o) => Some(o),
                Err(e) => return fail(e),
            }
        } else {
            None
        };
        // OIDC Core §3.1.2.1 id_token_hint and §3.1.2.2 / §5.5.1 a `sub` claim request with a
        // value: the one user this request may be answered for, whether or not anyone is signed
        // in yet. Checked again by every step that issues a code.
        let hint_subject = match oidc_req.as_ref().and_then(|o| o.id_token_hint.as_deref()) {
            Some(hint) => match self.id_token_hint_subject(hint) {
                Some(sub) => Some(sub),
                None => return fail(OAuthError::invalid_request("id_token_hint is not an ID token issued here")),
            },
            None => None,
        };
        let required_subject = match (hint_subject, oidc_req.as_ref().and_then(|o| o.sub_value.clone())) {
            (Some(a), Some(b)) if a != b => return fail(OAuthError::invalid_request("id_token_hint and the sub claim request name different users")),
            (a, b) => a.or(b),
        };
        let require_mfa = client.require_mfa || oidc_req.as_ref().is_some_and(|o| o.requires_mfa());
        let pending = PendingAuthorization {
            id: self.random.token(),
            client_id: client.client_id.clone(),
            redirect_uri: req.target.redirect_uri.clone(),
            redirect_uri_given: req.target.redirect_uri_given,
            state: req.target.state.clone(),
            scope: req.scopes.to_string(),
            code_challenge: req.code_challenge.as_ref().map(|c| c.as_str().to_string()),
            dpop_jkt: req.dpop_jkt.clone(),
            audience,
            device_user_code: None,
            oidc: oidc_req,
            response_mode: mode,
            force_login: false,
            force_consent: false,
            signed_in_here: false,
            required_subject,
            require_mfa,
        };
        let signed_in = session.and_then(|s| s.user_id.as_deref().map(|u| (s, u)));
        // RFC 8252 §8.6 and RFC 6749 §10.2: a public client's identity cannot be assured (anyone
        // can send its client_id and a registered redirect URI), so remembered consent alone
        // never answers it: the user sees the consent page every time (prompt=none gets
        // consent_required), as Google and others do for native and browser apps.
        let consent_needed = match signed_in {
            Some(_) if policy.auth_method == AuthMethod::None => true,
            Some((_, user_id)) => !req.scopes.is_subset(&self.granted_scopes(user_id, &client.client_id).await?),
            None => true,
        };
        let hint_mismatch = match (&pending.required_subject, signed_in) {
            (Some(sub), Some((_, user_id))) => sub != user_id,
            _ => false,
        };
        let state = SessionState {
            signed_in: signed_in.is_some(),
            auth_time: session.and_then(|s| s.auth_time),
            hint_mismatch,
            mfa: session.is_some_and(super::mfa::session_has_mfa),
            client_requires_mfa: client.require_mfa,
        };
        let rules_req = pending.oidc.clone().unwrap_or_default();
        let interaction = oidc::decide_interaction(&rules_req, state, consent_needed, self.now());
        match (interaction, signed_in) {
            (Interaction::IssueCode, Some((s, _))) => self.issue_code(&pending, s).await.map(Ok),
            (Interaction::Fail(code), _) => fail(OAuthError::new(code, "user interaction is required")),
            (Interaction::Consent, _) => {
                let forced = pending.oidc.as_ref().is_some_and(|o| o.prompt.consent);
                Ok(Err((PendingAuthorization { force_consent: forced, ..pending }, Interaction::Consent)))
            }
            _ => {
                let forced = pending.oidc.as_ref().is_some_and(|o| o.prompt.consent);
                // Signed in, and only a second factor is missing: the sign-in page asks just
                // that (step-up); anything else (prompt=login, max_age, another user) asks for
                // the password again.
                let only_mfa_missing = signed_in.is_some()
                    && oidc::decide_interaction(&rules_req, SessionState { mfa: true, ..state }, consent_needed, self.now()) != Interaction::Login;
                Ok(Err((PendingAuthorization { force_login: signed_in.is_some() && !only_mfa_missing, force_consent: forced, ..pending }, Interaction::Login)))
            }
        }
    }

    /// Send the response to the client (RFC 6749 §4.1.2): `fields`, then `state` and `iss`
    /// (RFC 9207 §2), by redirect or by form post.
    fn to_client(&self, target: &RedirectTarget, mode: ResponseMode, mut fields: Vec<(String, String)>) -> Result<AuthorizeOutcome, ServiceError> {
        if let Some(s) = &target.state {
            fields.push(("state".into(), s.clone()));
        }
        fields.push(("iss".into(), self.config.issuer.clone()));
        Ok(match mode {
            ResponseMode::Query => {
                let pairs: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
                AuthorizeOutcome::RedirectToClient(tessera_protocol::redirect::with_query(&target.redirect_uri, &pairs)?)
            }
            ResponseMode::FormPost => AuthorizeOutcome::PostToClient { action: target.redirect_uri.clone(), fields },
        })
    }

    pub(crate) async fn save_pending(&self, p: &PendingAuthorization, session: &SessionRecord) -> Result<(), ServiceError> {
        self.store.create_pending_request(&self.pending_record(p, session)?).await?;
        Ok(())
    }

    /// The stored form of a pending request, bound to `session`.
    pub(crate) fn pending_record(&self, p: &PendingAuthorization, session: &SessionRecord) -> Result<PendingRequestRecord, ServiceError> {
        let data = serde_json::to_string(p).map_err(|e| OAuthError::server_error(e.to_string()))?;
        Ok(PendingRequestRecord { id: p.id.clone(), session_hash: session.id_hash.clone(), data, expires_at: self.now() + PENDING_LIFETIME_SECS })
    }

    /// The pending request `id`, if it exists and belongs to this browser session.
    pub async fn find_pending(&self, id: &str, session: &SessionRecord) -> Result<Option<PendingAuthorization>, ServiceError> {
        if id.len() > 64 {
            return Ok(None);
        }
        let Some(rec) = self.store.find_pending_request(id, self.now()).await? else { return Ok(None) };
        if !secret::matches_plain(&rec.session_hash, &session.id_hash) {
            return Ok(None);
        }
        Ok(serde_json::from_str(&rec.data).ok())
    }

    async fn granted_scopes(&self, user_id: &str, client_id: &str) -> Result<Scopes, ServiceError> {
        Ok(self.store.find_consent(user_id, client_id).await?.unwrap_or_default())
    }

    /// OIDC Core §3.1.2.1–3.1.2.3: whether this session may answer the pending request: `None`
    /// when it may, or what the browser gets instead. Every step that can issue a code (the
    /// consent page, its answer, and code issuance itself) asks this, so a request that needs a
    /// fresh sign-in (`prompt=login`, `max_age`, `acr_values`, an `id_token_hint` or `sub`
    /// request for another user) cannot be answered by posting the consent form directly.
    fn unmet_authentication(&self, p: &PendingAuthorization, session: &SessionRecord) -> Result<Option<AuthorizeOutcome>, ServiceError> {
        let Some(user_id) = session.user_id.as_deref() else { return Ok(Some(AuthorizeOutcome::Login(p.id.clone()))) };
        // Cleared only by a sign-in during this request (POST /login).
        if p.force_login {
            return Ok(Some(AuthorizeOutcome::Login(p.id.clone())));
        }
        // A second factor, when the client or the request requires one (the user's own
        // requirement is enforced at sign-in): never answered from a session without it.
        if p.require_mfa && !super::mfa::session_has_mfa(session) {
            return Ok(Some(AuthorizeOutcome::Login(p.id.clone())));
        }
        if p.required_subject.as_deref().is_some_and(|s| s != user_id) {
            if !p.signed_in_here {
                return Ok(Some(AuthorizeOutcome::Login(p.id.clone())));
            }
            // The user signed in during this request, as someone else. §3.1.2.2: "MUST NOT
            // reply with an ID Token or Access Token for a different user".
            let e = OAuthError::new(ErrorCode::LoginRequired, "the request names a different user than the one who signed in");
            return Ok(Some(self.to_client(&p.target(), p.response_mode, error_fields(&e))?));
        }
        Ok(None)
    }

    /// Decide what the consent step shows for this pending request: the page, or (when every
    /// scope was granted before) the redirect with a code.
    pub async fn consent_step(&self, p: &PendingAuthorization, session: &SessionRecord) -> Result<Result<ConsentView, AuthorizeOutcome>, ServiceError> {
        if let Some(outcome) = self.unmet_authentication(p, session)? {
            if matches!(outcome, AuthorizeOutcome::RedirectToClient(_) | AuthorizeOutcome::PostToClient { .. }) {
                self.store.delete_pending_request(&p.id).await?;
            }
            return Ok(Err(outcome));
        }
        let Some(user_id) = &session.user_id else {
            return Ok(Err(AuthorizeOutcome::Login(p.id.clone())));
        };
        // From the client cache, as at /authorize: a deleted client is refused within its bound.
        let Some(client) = self.cached_client(&p.client_id).await? else {
            return Ok(Err(AuthorizeOutcome::ErrorPage(OAuthError::invalid_request("the client no longer exists"))));
        };
        let Some(user) = self.active_user(user_id).await? else {
            // The session outlived its user (a sign-in raced `user delete`): the request waits
            // for a sign-in, forced, or the sign-in page would send this session straight back
            // here.
            self.store.delete_pending_request(&p.id).await?;
            self.save_pending(&PendingAuthorization { force_login: true, ..p.clone() }, session).await?;
            return Ok(Err(AuthorizeOutcome::Login(p.id.clone())));
        };
        // A device's request always asks (RFC 8628 §5.4: the user must see what they approve),
        // and so does prompt=consent (OIDC Core §3.1.2.1), and so does a public client
        // (RFC 8252 §8.6: remembered consent alone does not answer a client whose identity
        // cannot be assured).
        let public = client_policy(&client).auth_method == AuthMethod::None;
        let ask_all = p.device_user_code.is_some() || p.force_consent || public;
        let granted = if ask_all { Scopes::default() } else { self.granted_scopes(user_id, &client.client_id).await? };
        let new = p.scopes().difference(&granted);
        if new.is_empty() {
            self.store.delete_pending_request(&p.id).await?;
            return Ok(Err(self.issue_code(p, session).await?));
        }
        let catalog = self.scope_catalog().await?;
        let describe = |s: &str| catalog.description(s).unwrap_or(s).to_string();
        Ok(Ok(ConsentView {
            request_id: p.id.clone(),
            client_name: client.name.clone(),
            username: user.name.unwrap_or(user.username),
            new_scopes: new.iter().map(|s| (s.to_string(), describe(s))).collect(),
            granted: p.scopes().difference(&new).iter().map(describe).collect(),
            device_user_code: p.device_user_code.as_deref().map(tessera_protocol::grant::device_code::display_user_code),
        }))
    }

    /// The user answered the consent page.
    pub async fn decide(&self, p: &PendingAuthorization, session: &SessionRecord, decision: Decision) -> Result<AuthorizeOutcome, ServiceError> {
        if let Some(outcome) = self.unmet_authentication(p, session)? {
            if matches!(outcome, AuthorizeOutcome::RedirectToClient(_) | AuthorizeOutcome::PostToClient { .. }) {
                self.store.delete_pending_request(&p.id).await?;
            }
            return Ok(outcome);
        }
        let (Some(user_id), Some(auth_time)) = (&session.user_id, session.auth_time) else {
            return Ok(AuthorizeOutcome::Login(p.id.clone()));
        };
        self.store.delete_pending_request(&p.id).await?;
        if let Some(user_code) = &p.device_user_code {
            let approved = decision == Decision::Allow;
            let ctx = p.scopes().contains("openid").then(|| super::oidc::session_context(session, p.signed_in_here));
            if approved && ctx.is_some() {
                self.store.add_session_client(&session.sid, &p.client_id, self.now()).await?;
            }
            let recorded = self.store.decide_device_code(user_code, approved, user_id, auth_time, ctx.as_ref(), self.now()).await?;
            if !recorded {
                return Ok(AuthorizeOutcome::ErrorPage(OAuthError::invalid_request("the device request has expired or was already answered")));
            }
            return Ok(AuthorizeOutcome::DeviceDone { approved });
        }
        match decision {
            // RFC 6749 §4.1.2.1 access_denied: "The resource owner or authorization server denied the request."
            Decision::Deny => {
                self.to_client(&p.target(), p.response_mode, error_fields(&OAuthError::new(ErrorCode::AccessDenied, "the user denied the request")))
            }
            Decision::Allow => {
                let granted = self.granted_scopes(user_id, &p.client_id).await?;
                let added = p.scopes().difference(&granted);
                self.store.update_consent(user_id, &p.client_id, &granted.union(&p.scopes()), self.now()).await?;
                if !added.is_empty() {
                    self.audit("consent_granted", Some(user_id), Some(&p.client_id), &serde_json::json!({ "scope": added.to_string() }).to_string()).await?;
                }
                if granted.is_empty() {
                    self.notify_first_grant(user_id, &p.client_id, &added.to_string()).await;
                }
                self.issue_code(p, session).await
            }
        }
    }

    /// RFC 6749 §4.1.2: issue a short-lived, single-use code and redirect with `code`, `state`, `iss`.
    /// The OpenID Connect context (nonce, session, requested claims) travels with the code, and
    /// the client is remembered in the session for logout. A session whose user no longer exists
    /// gets the sign-in page instead (RFC 9700 §4.14.2).
    async fn issue_code(&self, p: &PendingAuthorization, session: &SessionRecord) -> Result<AuthorizeOutcome, ServiceError> {
        // The callers checked already; checked again here, where the code is made, so that no
        // path added later can skip the request's authentication requirements.
        if let Some(outcome) = self.unmet_authentication(p, session)? {
            return Ok(outcome);
        }
        let (Some(user_id), Some(auth_time)) = (&session.user_id, session.auth_time) else {
            return Ok(AuthorizeOutcome::Login(p.id.clone()));
        };
        // Deleting a user ends their sessions; this catches a sign-in that raced the deletion.
        // The request waits for a sign-in (forced: the session still names the deleted user).
        if self.active_user(user_id).await?.is_none() {
            self.save_pending(&PendingAuthorization { force_login: true, ..p.clone() }, session).await?;
            return Ok(AuthorizeOutcome::Login(p.id.clone()));
        }
        let oidc_ctx = match &p.oidc {
            Some(o) => {
                self.store.add_session_client(&session.sid, &p.client_id, self.now()).await?;
                Some(super::oidc::request_context(o, session, p.signed_in_here))
            }
            None => None,
        };
        let code = self.random.token();
        let rec = CodeRecord {
            code_hash: secret::hash(&code),
            grant_id: self.random.id(),
            client_id: p.client_id.clone(),
            user_id: user_id.to_string(),
            redirect_uri: p.redirect_uri.clone(),
            redirect_uri_given: p.redirect_uri_given,
            code_challenge: p.code_challenge.clone(),
            scope: p.scopes(),
            audience: p.audience.clone(),
            auth_time,
            expires_at: self.now() + CODE_LIFETIME_SECS,
            used_at: None,
            oidc: oidc_ctx,
            dpop_jkt: p.dpop_jkt.clone(),
        };
        self.store.create_code(&rec).await?;
        self.to_client(&p.target(), p.response_mode, vec![("code".into(), code)])
    }
}

/// RFC 6749 §4.1.2.1 error parameters.
fn error_fields(e: &OAuthError) -> Vec<(String, String)> {
    let mut f = vec![("error".to_string(), e.code.as_str().to_string())];
    if !e.description.is_empty() {
        f.push(("error_description".into(), e.description.clone()));
    }
    f
}
