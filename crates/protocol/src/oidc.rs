//! OpenID Connect Core 1.0 rules, pure: the authentication request parameters (§3.1.2.1), the
//! interaction decision for `prompt` and `max_age`, standard claims per scope (§5.4) and the
//! `claims` request parameter (§5.5), `at_hash` (§3.1.3.6), and ID token claims (§2).

use crate::authorize::AuthorizeParams;
use crate::error::{ErrorCode, OAuthError};
use crate::scope::Scopes;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256, Sha512};

/// The scopes OpenID Connect defines (§5.4, §11), with what the consent page says for each.
pub const OIDC_SCOPES: &[(&str, &str)] = &[
    ("openid", "Sign you in and know who you are"),
    ("profile", "See your name and basic profile"),
    ("email", "See your email address"),
    ("address", "See your postal address"),
    ("phone", "See your phone number"),
    ("offline_access", "Stay connected while you are away (offline access)"),
    // Not OIDC Core's: the user's groups, as most apps map permissions (a `groups` claim).
    ("groups", "See the groups you belong to"),
];

/// OIDC Core §5.4: the claims each scope releases.
pub fn claims_of_scope(scope: &str) -> &'static [&'static str] {
    match scope {
        "profile" => &[
            "name",
            "family_name",
            "given_name",
            "middle_name",
            "nickname",
            "preferred_username",
            "profile",
            "picture",
            "website",
            "gender",
            "birthdate",
            "zoneinfo",
            "locale",
            "updated_at",
        ],
        "email" => &["email", "email_verified"],
        "address" => &["address"],
        "phone" => &["phone_number", "phone_number_verified"],
        "groups" => &["groups"],
        _ => &[],
    }
}

/// OIDC Core §2 `acr` values Tessera issues: "0" when the ID token comes from an existing
/// browser session (single sign-on, no authentication during the request: ISO/IEC 29115
/// level 0, as §2 suggests for "a long-lived browser cookie"), "1" when the user entered their
/// password during this authorization request.
pub const ACR_SSO: &str = "0";
pub const ACR_PASSWORD: &str = "1";
/// The session's sign-in used a second factor (RFC 8176 `amr` has `mfa`): the OpenID Provider
/// Authentication Policy Extension's multi-factor policy URI, which relying parties commonly
/// ask for in `acr_values`. Issued whenever the session's sign-in was multi-factor.
pub const ACR_MFA: &str = "http://schemas.openid.net/pape/policies/2007/06/multi-factor";
/// The languages of Tessera's pages (Discovery §3 `ui_locales_supported`; the catalogs in
/// tessera-http's `locales/`, which a test there keeps equal to this list).
pub const UI_LOCALES_SUPPORTED: &[&str] = &["en", "de"];
/// For discovery's `acr_values_supported`.
pub const ACR_VALUES_SUPPORTED: &[&str] = &[ACR_SSO, ACR_PASSWORD, ACR_MFA];

/// Every standard claim Tessera can release (for discovery's `claims_supported`).
pub fn claims_supported() -> Vec<&'static str> {
    let mut v = vec!["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "azp", "at_hash", "sid"];
    for s in ["profile", "email", "address", "phone", "groups"] {
        v.extend_from_slice(claims_of_scope(s));
    }
    v
}

/// OIDC Core §3.1.2.1 `prompt` values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
    pub select_account: bool,
}

/// OIDC Core §3.1.2.1 `response_mode` (OAuth 2.0 Multiple Response Type Encoding Practices
/// §2.1 and Form Post Response Mode §2).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum ResponseMode {
    #[default]
    Query,
    FormPost,
}

/// The OpenID Connect parts of an authorization request.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OidcRequest {
    pub nonce: Option<String>,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// §3.1.2.1 `ui_locales` (space-separated BCP 47 tags, best first; at most 256 characters kept).
    #[serde(default)]
    pub ui_locales: Option<String>,
    pub id_token_hint: Option<String>,
    /// §5.5 `claims`: the `id_token` and `userinfo` members.
    pub claims_id_token: Vec<String>,
    pub claims_userinfo: Vec<String>,
    /// The acceptable `acr` values, in order of preference: the `acr_values` parameter
    /// (§3.1.2.1) or the `values`/`value` of an `acr` claim request (§5.5.1.1).
    #[serde(default)]
    pub acr_values: Vec<String>,
    /// §3.1.2.2 / §5.5.1: the `value` of a `sub` claim request. "If the sub (subject) Claim is
    /// requested with a specific value for the ID Token, the Authorization Server MUST only send
    /// a positive response if the End-User identified by that sub value has an active session
    /// with the Authorization Server or has been Authenticated as a result of the request."
    #[serde(default)]
    pub sub_value: Option<String>,
}

impl OidcRequest {
    /// Whether the acceptable `acr` values rule out single sign-on from an existing session:
    /// the client asked for [`ACR_PASSWORD`] and not for [`ACR_SSO`]. Values Tessera does not
    /// know are ignored (`acr_values` is a voluntary request, §3.1.2.1).
    pub fn needs_fresh_authentication(&self) -> bool {
        let known = self.known_acr_values();
        !known.is_empty() && !known.contains(&ACR_SSO) && known.contains(&ACR_PASSWORD)
    }

    /// Whether the acceptable `acr` values ask for a multi-factor sign-in and nothing less:
    /// [`ACR_MFA`] alone among the values Tessera knows.
    pub fn requires_mfa(&self) -> bool {
        let known = self.known_acr_values();
        !known.is_empty() && known.iter().all(|v| *v == ACR_MFA)
    }

    fn known_acr_values(&self) -> Vec<&str> {
        self.acr_values.iter().map(String::as_str).filter(|v| ACR_VALUES_SUPPORTED.contains(v)).collect()
    }
}

/// Parse `response_mode` (valid for any authorization request).
pub fn parse_response_mode(params: &AuthorizeParams) -> Result<ResponseMode, OAuthError> {
    match params.response_mode.as_deref() {
        None | Some("query") => Ok(ResponseMode::Query),
        Some("form_post") => Ok(ResponseMode::FormPost),
        Some(_) => Err(OAuthError::invalid_request("unsupported response_mode; use query or form_post")),
    }
}

impl OidcRequest {
    /// OIDC Core §3.1.2.1–3.1.2.2: parse and validate. Only meaningful when `scope` has `openid`.
    pub fn parse(params: &AuthorizeParams) -> Result<Self, OAuthError> {
        let mut prompt = Prompt::default();
        if let Some(p) = params.prompt.as_deref() {
            for v in p.split(' ').filter(|v| !v.is_empty()) {
                match v {
                    "none" => prompt.none = true,
                    "login" => prompt.login = true,
                    "consent" => prompt.consent = true,
                    "select_account" => prompt.select_account = true,
                    _ => return Err(OAuthError::invalid_request(format!("unknown prompt value {}", v.chars().take(20).collect::<String>()))),
                }
            }
            // §3.1.2.1: "If this parameter contains none with any other value, an error is returned."
            if prompt.none && (prompt.login || prompt.consent || prompt.select_account) {
                return Err(OAuthError::invalid_request("prompt=none cannot be combined with other values"));
            }
        }
        let max_age = match params.max_age.as_deref() {
            Some(m) => Some(m.parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| OAuthError::invalid_request("max_age must be a non-negative integer"))?),
            None => None,
        };
        let claims = match params.claims.as_deref() {
            Some(c) => parse_claims_request(c)?,
            None => ClaimsRequest::default(),
        };
        let mut acr_values: Vec<String> =
            params.acr_values.as_deref().unwrap_or("").split(' ').filter(|v| !v.is_empty()).take(16).map(|v| v.chars().take(64).collect()).collect();
        acr_values.extend(claims.acr_values);
        Ok(Self {
            nonce: params.nonce.clone(),
            prompt,
            max_age,
            login_hint: params.login_hint.clone(),
            ui_locales: params.ui_locales.as_deref().map(|u| u.chars().take(256).collect()),
            id_token_hint: params.id_token_hint.clone(),
            claims_id_token: claims.id_token,
            claims_userinfo: claims.userinfo,
            acr_values,
            sub_value: claims.sub_value,
        })
    }
}

/// A parsed §5.5 `claims` request.
#[derive(Debug, Default)]
struct ClaimsRequest {
    id_token: Vec<String>,
    userinfo: Vec<String>,
    /// The acceptable values of an `acr` claim request (§5.5.1.1, either target).
    acr_values: Vec<String>,
    /// The `value` of a `sub` claim request (§5.5.1, either target).
    sub_value: Option<String>,
}

/// §5.5: `{"userinfo": {"claim": null | {...}}, "id_token": {...}}` → the claim names per
/// target, and the acceptable values of an `acr` claim request.
fn parse_claims_request(s: &str) -> Result<ClaimsRequest, OAuthError> {
    let bad = || OAuthError::invalid_request("claims is not a valid claims request (OpenID Connect Core section 5.5)");
    let v: Value = serde_json::from_str(s).map_err(|_| bad())?;
    let obj = v.as_object().ok_or_else(bad)?;
    let names = |k: &str| -> Result<Vec<String>, OAuthError> {
        match obj.get(k) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(Value::Object(m)) => Ok(m.keys().take(64).cloned().collect()),
            Some(_) => Err(bad()),
        }
    };
    // §5.5.1: "value" (one) or "values" (several, in order of preference).
    let mut acr = Vec::new();
    let mut sub_value: Option<String> = None;
    for target in ["id_token", "userinfo"] {
        match obj.get(target).and_then(|t| t.get("sub")).and_then(|spec| spec.get("value")) {
            None | Some(Value::Null) => {}
            Some(Value::String(v)) => {
                // Two different required subjects can never both be met.
                if sub_value.as_ref().is_some_and(|s| s != v) {
                    return Err(OAuthError::invalid_request("claims asks for two different sub values"));
                }
                sub_value = Some(v.clone());
            }
            // A `sub` value that is not a string can name no user: refused rather than ignored,
            // since ignoring it would answer for whoever is signed in.
            Some(_) => return Err(bad()),
        }
        if let Some(Value::Object(spec)) = obj.get(target).and_then(|t| t.get("acr")) {
            if let Some(Value::String(v)) = spec.get("value") {
                acr.push(v.clone());
            }
            if let Some(Value::Array(vs)) = spec.get("values") {
                acr.extend(vs.iter().filter_map(Value::as_str).take(16).map(str::to_string));
            }
        }
    }
    Ok(ClaimsRequest { id_token: names("id_token")?, userinfo: names("userinfo")?, acr_values: acr, sub_value })
}

/// What the user's browser must do before a code can be issued.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Interaction {
    IssueCode,
    Login,
    Consent,
    /// `prompt=none` and interaction would be needed: this error goes back to the client.
    Fail(ErrorCode),
}

/// The state of the browser's session as the rules need it.
#[derive(Debug, Clone, Copy)]
pub struct SessionState {
    pub signed_in: bool,
    pub auth_time: Option<i64>,
    /// The id_token_hint names a different user than the one signed in.
    pub hint_mismatch: bool,
    /// The session's sign-in used a second factor (RFC 8176 `mfa`).
    pub mfa: bool,
    /// The client requires a second factor of every sign-in it gets a code from.
    pub client_requires_mfa: bool,
}

/// OIDC Core §3.1.2.1 `prompt` and `max_age`, and §3.1.2.3 authentication, decided in one place.
pub fn decide_interaction(req: &OidcRequest, session: SessionState, consent_needed: bool, now: i64) -> Interaction {
    // max_age: "If the elapsed time is greater than this value, the OP MUST attempt to actively
    // re-authenticate the End-User."
    let too_old = match (req.max_age, session.auth_time) {
        (Some(m), Some(t)) => now - t > m || m == 0,
        (Some(_), None) => true,
        _ => false,
    };
    let must_login = !session.signed_in
        || too_old
        || session.hint_mismatch
        || req.needs_fresh_authentication()
        || ((req.requires_mfa() || session.client_requires_mfa) && !session.mfa);
    if req.prompt.none {
        // "The Authorization Server MUST NOT display any authentication or consent user
        // interface pages."
        if must_login {
            return Interaction::Fail(ErrorCode::LoginRequired);
        }
        if consent_needed {
            return Interaction::Fail(ErrorCode::ConsentRequired);
        }
        return Interaction::IssueCode;
    }
    if must_login || req.prompt.login || req.prompt.select_account {
        return Interaction::Login;
    }
    if consent_needed || req.prompt.consent {
        return Interaction::Consent;
    }
    Interaction::IssueCode
}

/// §3.1.3.6 `at_hash`: the left half of the hash of the access token, base64url. The hash is
/// the one of the ID token's `alg` (SHA-256 for RS256/ES256, SHA-512 for EdDSA/Ed25519).
pub fn at_hash(access_token: &str, alg: &str) -> String {
    let digest: Vec<u8> = if alg == "EdDSA" { Sha512::digest(access_token.as_bytes()).to_vec() } else { Sha256::digest(access_token.as_bytes()).to_vec() };
    URL_SAFE_NO_PAD.encode(&digest[..digest.len() / 2])
}

/// Whether the granted `scopes` cover the claim `name` (§5.4).
fn covered(scopes: &Scopes, name: &str) -> bool {
    scopes.iter().any(|s| claims_of_scope(s).contains(&name))
}

/// The user's claims for the granted scopes (§5.4), for UserInfo. `available` holds every claim
/// the user has (name, email, profile fields…); `sub` is added by the caller.
pub fn release_claims(scopes: &Scopes, available: &Map<String, Value>) -> Map<String, Value> {
    pick(scopes.iter().flat_map(claims_of_scope).copied(), available)
}

/// The individually requested claims (§5.5) that the granted scopes cover, for the ID token.
///
/// §5.5 lets a client ask for claims individually, but the user consented to scopes: the
/// consent page lists scopes, so a claim no granted scope covers was never consented to and is
/// not released, whatever the `claims` parameter says (§3.1.2.4: the Authorization Server
/// "obtains an authorization decision before releasing information to the Relying Party").
/// Requests only choose where covered claims go (e.g. `email` in the ID token as well).
pub fn release_requested_claims(scopes: &Scopes, requested: &[String], available: &Map<String, Value>) -> Map<String, Value> {
    pick(requested.iter().map(String::as_str).filter(|n| covered(scopes, n)), available)
}

fn pick<'a>(wanted: impl Iterator<Item = &'a str>, available: &Map<String, Value>) -> Map<String, Value> {
    let mut out = Map::new();
    for name in wanted {
        if let Some(v) = available.get(name) {
            if !v.is_null() {
                out.insert(name.to_string(), v.clone());
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn req(q: &str) -> Result<OidcRequest, OAuthError> {
        OidcRequest::parse(&AuthorizeParams::parse(q.as_bytes()).unwrap())
    }
    fn signed_in(auth_time: i64) -> SessionState {
        SessionState { signed_in: true, auth_time: Some(auth_time), hint_mismatch: false, mfa: false, client_requires_mfa: false }
    }
    const ANON: SessionState = SessionState { signed_in: false, auth_time: None, hint_mismatch: false, mfa: false, client_requires_mfa: false };

    /// §3.1.2.1: prompt=none with another value is invalid; unknown values are refused.
    #[test]
    fn oidc_3_1_2_1_prompt_parsing() {
        assert!(req("prompt=none+login").is_err());
        assert!(req("prompt=bogus").is_err());
        let r = req("prompt=login+consent").unwrap();
        assert!(r.prompt.login && r.prompt.consent && !r.prompt.none);
    }

    /// §3.1.2.1 prompt=none: never a page; login_required / consent_required instead.
    #[test]
    fn oidc_3_1_2_1_prompt_none() {
        let r = req("prompt=none").unwrap();
        assert_eq!(decide_interaction(&r, ANON, false, 100), Interaction::Fail(ErrorCode::LoginRequired));
        assert_eq!(decide_interaction(&r, signed_in(90), true, 100), Interaction::Fail(ErrorCode::ConsentRequired));
        assert_eq!(decide_interaction(&r, signed_in(90), false, 100), Interaction::IssueCode);
        let r = req("prompt=none&max_age=5").unwrap();
        assert_eq!(decide_interaction(&r, signed_in(90), false, 100), Interaction::Fail(ErrorCode::LoginRequired), "too old for max_age");
    }

    /// §3.1.2.1 prompt=login / select_account: re-authenticate even when signed in.
    #[test]
    fn oidc_3_1_2_1_prompt_login_and_select_account() {
        assert_eq!(decide_interaction(&req("prompt=login").unwrap(), signed_in(99), false, 100), Interaction::Login);
        assert_eq!(decide_interaction(&req("prompt=select_account").unwrap(), signed_in(99), false, 100), Interaction::Login);
    }

    /// §3.1.2.1 prompt=consent: ask even when consent was given before.
    #[test]
    fn oidc_3_1_2_1_prompt_consent() {
        assert_eq!(decide_interaction(&req("prompt=consent").unwrap(), signed_in(99), false, 100), Interaction::Consent);
        assert_eq!(decide_interaction(&req("").unwrap(), signed_in(99), false, 100), Interaction::IssueCode);
        assert_eq!(decide_interaction(&req("").unwrap(), signed_in(99), true, 100), Interaction::Consent);
    }

    /// §3.1.2.1 max_age: re-authentication when the last one is older; max_age=0 always.
    #[test]
    fn oidc_3_1_2_1_max_age() {
        assert_eq!(decide_interaction(&req("max_age=60").unwrap(), signed_in(50), false, 100), Interaction::IssueCode);
        assert_eq!(decide_interaction(&req("max_age=30").unwrap(), signed_in(50), false, 100), Interaction::Login);
        assert_eq!(decide_interaction(&req("max_age=0").unwrap(), signed_in(100), false, 100), Interaction::Login);
        assert!(req("max_age=-1").is_err());
        assert!(req("max_age=abc").is_err());
    }

    /// id_token_hint naming someone else: sign in again (or login_required with prompt=none).
    #[test]
    fn oidc_3_1_2_1_id_token_hint_mismatch() {
        let s = SessionState { hint_mismatch: true, ..signed_in(99) };
        assert_eq!(decide_interaction(&req("").unwrap(), s, false, 100), Interaction::Login);
        assert_eq!(decide_interaction(&req("prompt=none").unwrap(), s, false, 100), Interaction::Fail(ErrorCode::LoginRequired));
    }

    /// §5.5: the claims parameter names individual claims per target; bad JSON is refused.
    #[test]
    fn oidc_5_5_claims_parameter() {
        let r =
            req("claims=%7B%22id_token%22%3A%7B%22email%22%3Anull%7D%2C%22userinfo%22%3A%7B%22phone_number%22%3A%7B%22essential%22%3Atrue%7D%7D%7D").unwrap();
        assert_eq!(r.claims_id_token, vec!["email".to_string()]);
        assert_eq!(r.claims_userinfo, vec!["phone_number".to_string()]);
        assert!(req("claims=not-json").is_err());
        assert!(req("claims=%5B%5D").is_err());
    }

    /// §3.1.2.1 acr_values and §5.5.1.1 acr claim requests: asking for "1" (and not "0")
    /// means the user signs in again, or login_required with prompt=none; unknown values are
    /// voluntary and ignored.
    #[test]
    fn oidc_3_1_2_1_acr_values() {
        assert_eq!(decide_interaction(&req("acr_values=1").unwrap(), signed_in(99), false, 100), Interaction::Login);
        assert_eq!(decide_interaction(&req("acr_values=1&prompt=none").unwrap(), signed_in(99), false, 100), Interaction::Fail(ErrorCode::LoginRequired));
        assert_eq!(decide_interaction(&req("acr_values=1+0").unwrap(), signed_in(99), false, 100), Interaction::IssueCode, "0 is acceptable too");
        assert_eq!(decide_interaction(&req("acr_values=urn:example:mfa").unwrap(), signed_in(99), false, 100), Interaction::IssueCode, "unknown: voluntary");
        // The multi-factor policy: a session without a second factor signs in again (step-up),
        // one with it is answered by single sign-on; with "0" also acceptable, nothing more.
        let mfa = "acr_values=http%3A%2F%2Fschemas.openid.net%2Fpape%2Fpolicies%2F2007%2F06%2Fmulti-factor";
        assert_eq!(decide_interaction(&req(mfa).unwrap(), signed_in(99), false, 100), Interaction::Login);
        assert_eq!(decide_interaction(&req(&format!("{mfa}&prompt=none")).unwrap(), signed_in(99), false, 100), Interaction::Fail(ErrorCode::LoginRequired));
        let with_mfa = SessionState { mfa: true, ..signed_in(99) };
        assert_eq!(decide_interaction(&req(mfa).unwrap(), with_mfa, false, 100), Interaction::IssueCode);
        assert_eq!(decide_interaction(&req(&format!("{mfa}+0")).unwrap(), signed_in(99), false, 100), Interaction::IssueCode);
        // A client that requires a second factor, whatever the request asks.
        let strict = SessionState { client_requires_mfa: true, ..signed_in(99) };
        assert_eq!(decide_interaction(&req("").unwrap(), strict, false, 100), Interaction::Login);
        assert_eq!(decide_interaction(&req("").unwrap(), SessionState { mfa: true, ..strict }, false, 100), Interaction::IssueCode);
        // {"id_token":{"acr":{"essential":true,"values":["1"]}}}
        let r = req("claims=%7B%22id_token%22%3A%7B%22acr%22%3A%7B%22essential%22%3Atrue%2C%22values%22%3A%5B%221%22%5D%7D%7D%7D").unwrap();
        assert_eq!(r.acr_values, vec!["1".to_string()]);
        assert_eq!(decide_interaction(&r, signed_in(99), false, 100), Interaction::Login);
        // {"id_token":{"acr":{"value":"0"}}}
        let r = req("claims=%7B%22id_token%22%3A%7B%22acr%22%3A%7B%22value%22%3A%220%22%7D%7D%7D").unwrap();
        assert_eq!(decide_interaction(&r, signed_in(99), false, 100), Interaction::IssueCode);
    }

    /// §5.4: each scope releases its claims, and only those (plus individually requested ones).
    #[test]
    fn oidc_5_4_claims_per_scope() {
        let user =
            json!({"name": "Alice", "email": "a@x.example", "email_verified": true, "phone_number": "+1", "address": {"country": "NZ"}, "given_name": null});
        let user = user.as_object().unwrap().clone();
        let got = release_claims(&Scopes::parse("openid email").unwrap(), &user);
        assert_eq!(Value::Object(got), json!({"email": "a@x.example", "email_verified": true}));
        let got = release_claims(&Scopes::parse("openid profile").unwrap(), &user);
        assert_eq!(Value::Object(got), json!({"name": "Alice"}), "null claims are left out");
        let got = release_claims(&Scopes::parse("openid").unwrap(), &user);
        assert!(got.is_empty(), "openid alone releases only sub");
    }

    /// Review finding 2 (OIDC Core §3.1.2.4, §5.4, §5.5): a claim requested individually is
    /// released only when a granted scope covers it; the request only picks where it goes.
    #[test]
    fn regression_claims_parameter_releases_only_consented_claims_oidc_5_5() {
        let user = json!({"name": "Alice", "email": "a@x.example", "email_verified": true, "phone_number": "+1", "address": {"country": "NZ"}});
        let user = user.as_object().unwrap().clone();
        let asked: Vec<String> = ["email", "phone_number", "address", "name"].iter().map(|s| s.to_string()).collect();
        let got = release_requested_claims(&Scopes::parse("openid").unwrap(), &asked, &user);
        assert!(got.is_empty(), "openid alone covers none of them: {got:?}");
        let got = release_requested_claims(&Scopes::parse("openid email").unwrap(), &asked, &user);
        assert_eq!(Value::Object(got), json!({"email": "a@x.example"}), "email is covered by the email scope, the rest are not");
        let got = release_requested_claims(&Scopes::parse("openid email").unwrap(), &[], &user);
        assert!(got.is_empty(), "the ID token carries only what was requested");
    }

    /// Review finding 8 (OIDC Core §3.1.2.2, §5.5.1): a `sub` claim request with a value is
    /// kept (it is enforced against the session by the service); two different values, or a
    /// value that is not a string, are refused.
    #[test]
    fn regression_sub_claim_value_is_kept_oidc_5_5_1() {
        // {"id_token":{"sub":{"value":"u-1"}}}
        let r = req("claims=%7B%22id_token%22%3A%7B%22sub%22%3A%7B%22value%22%3A%22u-1%22%7D%7D%7D").unwrap();
        assert_eq!(r.sub_value.as_deref(), Some("u-1"));
        // {"id_token":{"sub":{"value":"u-1"}},"userinfo":{"sub":{"value":"u-2"}}}
        assert!(req("claims=%7B%22id_token%22%3A%7B%22sub%22%3A%7B%22value%22%3A%22u-1%22%7D%7D%2C%22userinfo%22%3A%7B%22sub%22%3A%7B%22value%22%3A%22u-2%22%7D%7D%7D").is_err());
        // {"id_token":{"sub":{"value":7}}}
        assert!(req("claims=%7B%22id_token%22%3A%7B%22sub%22%3A%7B%22value%22%3A7%7D%7D%7D").is_err());
        // {"id_token":{"sub":null}}: no value, no requirement.
        assert_eq!(req("claims=%7B%22id_token%22%3A%7B%22sub%22%3Anull%7D%7D").unwrap().sub_value, None);
    }

    /// §3.1.3.6 at_hash, checked against the example in OIDC Core Appendix A.3.
    #[test]
    fn oidc_3_1_3_6_at_hash() {
        assert_eq!(at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y", "RS256"), "77QmUPtjPfzWtF2AnpK9RQ");
        assert_eq!(at_hash("x", "EdDSA").len(), 43, "SHA-512 half = 32 bytes");
    }

    #[test]
    fn response_mode() {
        let p = |q: &str| parse_response_mode(&AuthorizeParams::parse(q.as_bytes()).unwrap());
        assert_eq!(p("").unwrap(), ResponseMode::Query);
        assert_eq!(p("response_mode=form_post").unwrap(), ResponseMode::FormPost);
        assert!(p("response_mode=fragment").is_err());
    }
}

/// Property-based tests of the OIDC Core §5.5 `claims` parameter on arbitrary input.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use std::collections::BTreeSet;

    fn with_claims(claims: &str) -> Result<OidcRequest, OAuthError> {
        let q = form_urlencoded::Serializer::new(String::new()).append_pair("claims", claims).finish();
        OidcRequest::parse(&AuthorizeParams::parse(q.as_bytes())?)
    }

    /// §5.5.1: each requested claim is `null` or an object with `essential`, `value` or
    /// `values`.
    fn claim_spec() -> impl Strategy<Value = Value> {
        prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(|e| json!({ "essential": e })),
            "[a-z0-9]{0,8}".prop_map(|v| json!({ "value": v })),
            proptest::collection::vec("[a-z0-9]{0,8}", 0..4).prop_map(|vs| json!({ "values": vs })),
        ]
    }

    /// Claim names: any text without U+FFFD (refused by the parameter parser).
    fn members() -> impl Strategy<Value = Map<String, Value>> {
        let name = prop_oneof![
            "[a-z_]{1,16}",
            proptest::collection::vec(any::<char>().prop_filter("no U+FFFD", |c| *c != '\u{fffd}'), 1..10).prop_map(|v| v.into_iter().collect::<String>())
        ];
        proptest::collection::btree_map(name, claim_spec(), 0..20).prop_map(|m| m.into_iter().collect())
    }

    /// The `id_token` and `userinfo` members, each present or not.
    type Targets = (Option<Map<String, Value>>, Option<Map<String, Value>>);

    fn claims_json() -> impl Strategy<Value = Targets> {
        (proptest::option::of(members()), proptest::option::of(members()))
    }

    fn to_json(id_token: &Option<Map<String, Value>>, userinfo: &Option<Map<String, Value>>) -> String {
        let mut o = Map::new();
        if let Some(m) = id_token {
            o.insert("id_token".into(), Value::Object(m.clone()));
        }
        if let Some(m) = userinfo {
            o.insert("userinfo".into(), Value::Object(m.clone()));
        }
        Value::Object(o).to_string()
    }

    fn names(m: &Option<Map<String, Value>>) -> BTreeSet<String> {
        m.iter().flat_map(|m| m.keys().cloned()).collect()
    }

    proptest! {
        /// OIDC Core §5.5: a valid claims request parses into the same claim names per target.
        #[test]
        fn oidc_5_5_valid_claims_request_round_trips((id_token, userinfo) in claims_json()) {
            let r = with_claims(&to_json(&id_token, &userinfo)).unwrap();
            prop_assert_eq!(r.claims_id_token.into_iter().collect::<BTreeSet<_>>(), names(&id_token));
            prop_assert_eq!(r.claims_userinfo.into_iter().collect::<BTreeSet<_>>(), names(&userinfo));
        }

        /// OIDC Core §5.5: "The claims parameter value is represented ... as a JSON object":
        /// any truncation of a valid request is not JSON and is refused with invalid_request.
        #[test]
        fn oidc_5_5_truncated_json_is_refused((id_token, userinfo) in claims_json(), at in any::<prop::sample::Index>()) {
            let full = to_json(&id_token, &userinfo);
            let cut: String = full.chars().take(at.index(full.chars().count())).collect();
            prop_assume!(!cut.is_empty());
            prop_assert_eq!(with_claims(&cut).unwrap_err().code, ErrorCode::InvalidRequest);
        }

        /// OIDC Core §5.5: a value that is JSON but not an object, or whose `id_token` or
        /// `userinfo` member is neither an object nor null, is refused.
        #[test]
        fn oidc_5_5_non_object_is_refused(v in prop_oneof![any::<i64>().prop_map(|n| json!(n)), any::<bool>().prop_map(|b| json!(b)), "[a-z]{0,8}".prop_map(|s| json!(s)), proptest::collection::vec(any::<u8>(), 0..4).prop_map(|v| json!(v))], target in prop_oneof![Just("id_token"), Just("userinfo")]) {
            let member = json!({ target: v }).to_string();
            prop_assert!(with_claims(&v.to_string()).is_err());
            prop_assert!(with_claims(&member).is_err());
        }

        /// OIDC Core §5.5: arbitrary text, and deeply nested JSON (beyond the parser's recursion
        /// limit), never panics or overflows the stack.
        #[test]
        fn oidc_5_5_arbitrary_claims_never_panic(s in prop_oneof![any::<String>(), "[{}\\[\\]\":, a-z0-9nul]{0,200}"], depth in 1usize..1300) {
            let _ = with_claims(&s);
            let _ = with_claims(&format!("{}{}", "[".repeat(depth), "]".repeat(depth)));
            let nested = format!("{{\"userinfo\":{}null{}}}", "{\"a\":".repeat(depth), "}".repeat(depth));
            let _ = with_claims(&nested);
        }
    }
}
