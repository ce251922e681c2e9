//! The authorization request, RFC 6749 §4.1.1 with RFC 7636 §4.3 and RFC 9700.
//!
//! Validation runs in two stages because the outcome of an error differs:
//! 1. [`identify_client`]: `client_id` and `redirect_uri`. RFC 6749 §4.1.2.1: "If the request
//!    fails due to a missing, invalid, or mismatching redirection URI, or if the client
//!    identifier is missing or invalid, the authorization server SHOULD inform the resource owner
//!    of the error and MUST NOT automatically redirect the user-agent to the invalid redirection
//!    URI." Errors here are shown as a page.
//! 2. [`validate`]: everything else. Errors here are redirected to the (now trusted) redirect URI.

use crate::client::{ClientPolicy, GrantType};
use crate::error::{ErrorCode, OAuthError};
use crate::params::Params;
use crate::pkce::CodeChallenge;
use crate::redirect;
use crate::scope::Scopes;

/// The parameters of an authorization request (RFC 6749 §4.1.1, RFC 7636 §4.3, RFC 8707 §2,
/// RFC 9449 §10, OIDC Core §3.1.2.1), read once from the query or form. Holding them raw keeps
/// the two validation stages apart: which parameter fails decides whether the error is a page
/// or a redirect, so nothing is judged here.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorizeParams {
    pub client_id: Option<String>,
    pub redirect_uri: Option<String>,
    pub state: Option<String>,
    pub response_type: Option<String>,
    pub response_mode: Option<String>,
    pub scope: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub resource: Option<String>,
    pub dpop_jkt: Option<String>,
    /// OIDC Core §6: request objects, refused when present.
    pub request: bool,
    pub request_uri: bool,
    pub nonce: Option<String>,
    pub prompt: Option<String>,
    pub max_age: Option<String>,
    pub claims: Option<String>,
    pub acr_values: Option<String>,
    pub login_hint: Option<String>,
    /// OIDC Core §3.1.2.1 `ui_locales`: the languages of the pages, best first.
    pub ui_locales: Option<String>,
    pub id_token_hint: Option<String>,
}

impl From<&Params> for AuthorizeParams {
    fn from(p: &Params) -> Self {
        let get = |name: &str| p.get(name).map(str::to_string);
        Self {
            client_id: get("client_id"),
            redirect_uri: get("redirect_uri"),
            state: get("state"),
            response_type: get("response_type"),
            response_mode: get("response_mode"),
            scope: get("scope"),
            code_challenge: get("code_challenge"),
            code_challenge_method: get("code_challenge_method"),
            resource: get("resource"),
            dpop_jkt: get("dpop_jkt"),
            request: p.has("request"),
            request_uri: p.has("request_uri"),
            nonce: get("nonce"),
            prompt: get("prompt"),
            max_age: get("max_age"),
            claims: get("claims"),
            acr_values: get("acr_values"),
            login_hint: get("login_hint"),
            ui_locales: get("ui_locales"),
            id_token_hint: get("id_token_hint"),
        }
    }
}

impl AuthorizeParams {
    /// Parse a query string or form body (RFC 6749 §3.1: unique, non-empty parameters).
    pub fn parse(input: &[u8]) -> Result<Self, OAuthError> {
        Params::parse(input).map(|p| Self::from(&p))
    }
}

/// Stage 1 result: the redirect URI that errors may now be sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RedirectTarget {
    pub redirect_uri: String,
    /// Whether the request carried `redirect_uri` (RFC 6749 §4.1.3 then requires it at the token endpoint).
    pub redirect_uri_given: bool,
    pub state: Option<String>,
}

/// The `client_id` of a request, for looking the client up (stage 1, first half).
pub fn client_id(params: &AuthorizeParams) -> Result<&str, OAuthError> {
    params.client_id.as_deref().ok_or_else(|| OAuthError::invalid_request("missing parameter client_id"))
}

/// Stage 1: check `redirect_uri` against the registered client.
///
/// RFC 6749 §3.1.2.3: "If multiple redirection URIs have been registered ... the client MUST
/// include a redirection URI with the authorization request"; RFC 9700 §4.1.3: exact matching.
pub fn identify_client(params: &AuthorizeParams, client: &ClientPolicy) -> Result<RedirectTarget, OAuthError> {
    let state = params.state.clone();
    match params.redirect_uri.as_deref() {
        Some(requested) => match redirect::match_registered(requested, &client.redirect_uris) {
            Some(r) => Ok(RedirectTarget { redirect_uri: r, redirect_uri_given: true, state }),
            None => Err(OAuthError::invalid_request("redirect_uri is not registered for this client")),
        },
        None => match client.redirect_uris.as_slice() {
            [only] => Ok(RedirectTarget { redirect_uri: only.clone(), redirect_uri_given: false, state }),
            [] => Err(OAuthError::invalid_request("this client has no registered redirect_uri")),
            _ => Err(OAuthError::invalid_request("missing parameter redirect_uri (the client has several registered)")),
        },
    }
}

/// A fully validated authorization request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationRequest {
    pub client_id: String,
    pub target: RedirectTarget,
    pub scopes: Scopes,
    pub code_challenge: Option<CodeChallenge>,
    /// RFC 8707 resource indicator, if the client named one.
    pub resource: Option<String>,
    /// RFC 9449 §10: the thumbprint of the DPoP key the code is bound to.
    pub dpop_jkt: Option<String>,
}

/// Stage 2: validate the rest. `known_scope` tells whether a scope exists on this server.
pub fn validate(
    params: &AuthorizeParams,
    client: &ClientPolicy,
    target: RedirectTarget,
    known_scope: impl Fn(&str) -> bool,
) -> Result<AuthorizationRequest, OAuthError> {
    // RFC 6749 §4.1.1: response_type REQUIRED, value MUST be "code". OAuth 2.1 removes implicit.
    match params.response_type.as_deref() {
        Some("code") => {}
        Some(_) => return Err(OAuthError::new(ErrorCode::UnsupportedResponseType, "only response_type=code is supported")),
        None => return Err(OAuthError::invalid_request("missing parameter response_type")),
    }
    // RFC 6749 §4.1.2.1 unauthorized_client: the client may not use this method.
    if !client.may_use(GrantType::AuthorizationCode) {
        return Err(OAuthError::new(ErrorCode::UnauthorizedClient, "this client may not use the authorization code grant"));
    }
    // OpenID Connect request objects are not supported; refuse rather than ignore them
    // (OIDC Core §3.1.2.6 request_not_supported / request_uri_not_supported).
    if params.request {
        return Err(OAuthError::new(ErrorCode::RequestNotSupported, "request objects are not supported"));
    }
    if params.request_uri {
        return Err(OAuthError::new(ErrorCode::RequestUriNotSupported, "request_uri is not supported"));
    }
    // RFC 6749 §3.3: Tessera has no default scope; a request without one fails.
    let scopes = Scopes::parse(params.scope.as_deref().unwrap_or(""))?;
    if scopes.is_empty() {
        return Err(OAuthError::invalid_scope("missing parameter scope"));
    }
    if let Some(unknown) = scopes.iter().find(|s| !known_scope(s)) {
        return Err(OAuthError::invalid_scope(format!("unknown scope {unknown}")));
    }
    if !scopes.is_subset(&client.scopes) {
        let extra = scopes.difference(&client.scopes);
        return Err(OAuthError::invalid_scope(format!("this client may not request: {extra}")));
    }
    // RFC 7636 §4.4.1 and OAuth 2.1 §4.1.1: public clients MUST use PKCE.
    let code_challenge = match params.code_challenge.as_deref() {
        Some(c) => Some(CodeChallenge::parse(c, params.code_challenge_method.as_deref())?),
        None if params.code_challenge_method.is_some() => {
            return Err(OAuthError::invalid_request("code_challenge_method without code_challenge"));
        }
        None if client.is_public() => {
            return Err(OAuthError::invalid_request("public clients must send a PKCE code_challenge (S256)"));
        }
        None => None,
    };
    let resource = params.resource.clone();
    let dpop_jkt = params.dpop_jkt.as_deref().map(crate::dpop::parse_jkt).transpose()?;
    Ok(AuthorizationRequest { client_id: client.client_id.clone(), target, scopes, code_challenge, resource, dpop_jkt })
}

/// RFC 6749 §4.1.2 and RFC 9207 §2: the success redirect with `code`, `state` and `iss`.
pub fn success_redirect(target: &RedirectTarget, code: &str, issuer: &str) -> Result<String, OAuthError> {
    let mut p: Vec<(&str, &str)> = vec![("code", code)];
    if let Some(s) = &target.state {
        p.push(("state", s));
    }
    p.push(("iss", issuer));
    redirect::with_query(&target.redirect_uri, &p)
}

/// RFC 6749 §4.1.2.1 and RFC 9207 §2: the error redirect with `error`, `error_description`,
/// `state` and `iss`.
pub fn error_redirect(target: &RedirectTarget, err: &OAuthError, issuer: &str) -> Result<String, OAuthError> {
    let mut p: Vec<(&str, &str)> = vec![("error", err.code.as_str())];
    if !err.description.is_empty() {
        p.push(("error_description", &err.description));
    }
    if let Some(s) = &target.state {
        p.push(("state", s));
    }
    p.push(("iss", issuer));
    redirect::with_query(&target.redirect_uri, &p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::AuthMethod;

    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn client(public: bool) -> ClientPolicy {
        ClientPolicy {
            client_id: "c1".into(),
            name: "App".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            scopes: Scopes::parse("notes.read notes.write").unwrap(),
            grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
            auth_method: if public { AuthMethod::None } else { AuthMethod::ClientSecretBasic },
            require_dpop: false,
            origins: vec![],
        }
    }

    /// Runs both stages; Err(("page"|"redirect", code)).
    fn check(query: &str, public: bool) -> Result<AuthorizationRequest, (&'static str, ErrorCode)> {
        let p = AuthorizeParams::parse(query.as_bytes()).map_err(|e| ("page", e.code))?;
        let c = client(public);
        client_id(&p).map_err(|e| ("page", e.code))?;
        let target = identify_client(&p, &c).map_err(|e| ("page", e.code))?;
        validate(&p, &c, target, |s| s.starts_with("notes.")).map_err(|e| ("redirect", e.code))
    }

    fn ok_query() -> String {
        format!(
            "response_type=code&client_id=c1&redirect_uri=https%3A%2F%2Fapp.example%2Fcb&scope=notes.read&state=xyz&code_challenge={CHALLENGE}&code_challenge_method=S256"
        )
    }

    #[test]
    fn rfc6749_4_1_1_valid_request() {
        let r = check(&ok_query(), true).unwrap();
        assert_eq!(r.scopes.to_string(), "notes.read");
        assert_eq!(r.target.state.as_deref(), Some("xyz"));
        assert!(r.target.redirect_uri_given);
    }

    /// RFC 6749 §4.1.2.1: redirect URI and client errors are never redirected.
    #[test]
    fn rfc6749_4_1_2_1_client_and_redirect_errors_are_pages() {
        let q = ok_query();
        assert_eq!(
            check(&q.replace("redirect_uri=https%3A%2F%2Fapp.example%2Fcb", "redirect_uri=https%3A%2F%2Fevil.example%2Fcb"), true),
            Err(("page", ErrorCode::InvalidRequest))
        );
        assert_eq!(check(&q.replace("client_id=c1&", ""), true), Err(("page", ErrorCode::InvalidRequest)));
        // Repeated parameters are caught before anything can be trusted.
        assert_eq!(check(&format!("{q}&redirect_uri=https%3A%2F%2Fapp.example%2Fcb"), true), Err(("page", ErrorCode::InvalidRequest)));
    }

    /// RFC 6749 §3.1.2.3: with a single registered URI, redirect_uri may be omitted.
    #[test]
    fn rfc6749_3_1_2_3_single_registered_uri_may_be_omitted() {
        let r = check(&ok_query().replace("redirect_uri=https%3A%2F%2Fapp.example%2Fcb&", ""), true).unwrap();
        assert!(!r.target.redirect_uri_given);
        let mut c = client(true);
        c.redirect_uris.push("https://app.example/cb2".into());
        let p = AuthorizeParams::parse(b"client_id=c1").unwrap();
        assert!(identify_client(&p, &c).is_err());
    }

    /// RFC 6749 §4.1.2.1: unsupported_response_type, redirected. OAuth 2.1: no implicit grant.
    #[test]
    fn rfc6749_4_1_2_1_response_type() {
        assert_eq!(check(&ok_query().replace("response_type=code", "response_type=token"), true), Err(("redirect", ErrorCode::UnsupportedResponseType)));
        assert_eq!(check(&ok_query().replace("response_type=code&", ""), true), Err(("redirect", ErrorCode::InvalidRequest)));
    }

    /// RFC 6749 §3.3: scope required here, must be known, and within the client's registration.
    #[test]
    fn rfc6749_3_3_scope_rules() {
        assert_eq!(check(&ok_query().replace("scope=notes.read", "scope=admin"), true), Err(("redirect", ErrorCode::InvalidScope)));
        assert_eq!(check(&ok_query().replace("scope=notes.read", "scope=notes.delete"), true), Err(("redirect", ErrorCode::InvalidScope)));
        assert_eq!(check(&ok_query().replace("scope=notes.read&", ""), true), Err(("redirect", ErrorCode::InvalidScope)));
    }

    /// RFC 7636 §4.4.1 / OAuth 2.1 §4.1.1: public clients must send PKCE; confidential may.
    #[test]
    fn rfc7636_4_4_1_pkce_required_for_public_clients() {
        let no_pkce = ok_query().replace(&format!("&code_challenge={CHALLENGE}&code_challenge_method=S256"), "");
        assert_eq!(check(&no_pkce, true), Err(("redirect", ErrorCode::InvalidRequest)));
        assert!(check(&no_pkce, false).unwrap().code_challenge.is_none());
        assert_eq!(check(&ok_query().replace("S256", "plain"), false), Err(("redirect", ErrorCode::InvalidRequest)));
    }

    /// RFC 6749 §4.1.2 + RFC 9207 §2: code, state and iss in the success redirect.
    #[test]
    fn rfc9207_2_iss_in_responses() {
        let r = check(&ok_query(), true).unwrap();
        let url = success_redirect(&r.target, "abc", "https://as.example").unwrap();
        assert_eq!(url, "https://app.example/cb?code=abc&state=xyz&iss=https%3A%2F%2Fas.example");
        let url = error_redirect(&r.target, &OAuthError::new(ErrorCode::AccessDenied, "denied"), "https://as.example").unwrap();
        assert_eq!(url, "https://app.example/cb?error=access_denied&error_description=denied&state=xyz&iss=https%3A%2F%2Fas.example");
    }

    #[test]
    fn unauthorized_client_without_code_grant() {
        let p = AuthorizeParams::parse(ok_query().as_bytes()).unwrap();
        let mut c = client(true);
        c.grant_types = vec![GrantType::ClientCredentials];
        let t = identify_client(&p, &c).unwrap();
        assert_eq!(validate(&p, &c, t, |_| true).unwrap_err().code, ErrorCode::UnauthorizedClient);
    }
}
