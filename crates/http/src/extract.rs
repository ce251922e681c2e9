//! Extractors: what the handlers read from a request, read once here.
//!
//! - [`TokenForm`]: a client's form at the token, introspection, revocation and device
//!   authorization endpoints (RFC 6749 §3.2), with the client authentication it presents
//!   ([`TokenForm::credentials`], RFC 6749 §2.3.1); refusals are RFC 6749 §5.2 JSON.
//! - [`PageForm`], [`PageQuery`]: a browser's form body or query; refusals are pages.
//! - [`CsrfForm`], [`PendingForm`]: a form posted from one of our pages, its session found by
//!   the cookie and its CSRF token checked ([`check_csrf`], the one check); `PendingForm` also
//!   finds the pending authorization request the form continues.
//! - [`SessionCookie`], [`ClientAddress`]: the session cookie, and the client's throttling
//!   bucket behind trusted proxies; [`Device`]: where a sign-in comes from (the `User-Agent`
//!   and that address), kept with the session it starts.

use crate::error::{JsonError, oauth_page, page, service_page};
use crate::{AppState, MAX_BODY_BYTES, cookies};
use axum::extract::{ConnectInfo, FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use std::convert::Infallible;
use std::net::SocketAddr;
use tessera_protocol::OAuthError;
use tessera_protocol::client::PresentedCredentials;
use tessera_protocol::params::Params;
use tessera_server::secret;
use tessera_server::service::authn::SignInDevice;
use tessera_server::service::authorize::PendingAuthorization;
use tessera_storage::SessionRecord;

/// Read a form body: `application/x-www-form-urlencoded` (RFC 6749 Appendix B), at most
/// [`MAX_BODY_BYTES`], parsed by the RFC 6749 §3.1 rules (no repeated parameters).
pub(crate) async fn read_form(req: Request) -> Result<(Parts, Params), OAuthError> {
    let (parts, body) = req.into_parts();
    let ct = parts.headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mime = ct.split(';').next().unwrap_or("").trim();
    if !mime.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
        return Err(OAuthError::invalid_request("the body must be application/x-www-form-urlencoded"));
    }
    let bytes = axum::body::to_bytes(body, MAX_BODY_BYTES).await.map_err(|_| OAuthError::invalid_request("the request body is too large"))?;
    Ok((parts, Params::parse(&bytes)?))
}

/// A client's request to the token endpoint (RFC 6749 §3.2: "MUST use the HTTP POST method"
/// with a form body), or to introspection, revocation or device authorization: the parsed
/// body and the `Authorization` header.
pub struct TokenForm {
    authorization: Option<HeaderValue>,
    pub params: Params,
}

impl TokenForm {
    /// RFC 6749 §2.3.1: the client authentication the request presents (a Basic header, a
    /// secret in the body, or a `client_id` alone), borrowed from the request.
    pub fn credentials(&self) -> Result<PresentedCredentials<'_>, OAuthError> {
        let authorization = match &self.authorization {
            None => None,
            Some(v) => Some(v.to_str().map_err(|_| OAuthError::invalid_client("malformed Authorization header"))?),
        };
        PresentedCredentials::parse(authorization, &self.params)
    }
}

impl<S: Send + Sync> FromRequest<S> for TokenForm {
    type Rejection = JsonError;

    async fn from_request(req: Request, _: &S) -> Result<Self, JsonError> {
        let (mut parts, params) = read_form(req).await?;
        Ok(Self { authorization: parts.headers.remove(header::AUTHORIZATION), params })
    }
}

/// A form a browser posts; a body that is not one is an error page.
pub struct PageForm(pub Params);

impl<S: Send + Sync> FromRequest<S> for PageForm {
    type Rejection = Response;

    async fn from_request(req: Request, _: &S) -> Result<Self, Response> {
        read_form(req).await.map(|(_, p)| Self(p)).map_err(|e| oauth_page(&e))
    }
}

/// A page's query parameters (RFC 6749 §3.1 rules); a query that breaks them is an error page.
pub struct PageQuery(pub Params);

impl<S: Send + Sync> FromRequestParts<S> for PageQuery {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Response> {
        Params::parse(parts.uri.query().unwrap_or("").as_bytes()).map(Self).map_err(|e| oauth_page(&e))
    }
}

/// The browser session cookie's value, if the request has exactly one ([`cookies::read`]).
pub struct SessionCookie(pub Option<String>);

impl FromRequestParts<AppState> for SessionCookie {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, svc: &AppState) -> Result<Self, Infallible> {
        Ok(Self(cookies::read(&parts.headers, svc.config.secure_cookies())))
    }
}

/// Every HTML form carries the session's CSRF token: a form whose `csrf` is not the session's
/// is refused (403, "the form has expired").
pub fn check_csrf(session: &SessionRecord, params: &Params) -> Result<(), Response> {
    if params.get("csrf").is_some_and(|t| secret::matches_plain(t, &session.csrf_token)) { Ok(()) } else { Err(csrf_failed()) }
}

fn csrf_failed() -> Response {
    page(StatusCode::FORBIDDEN, &crate::i18n::t("form-expired"), &crate::i18n::t("form-expired-message"), Some("invalid_request"))
}

/// A form posted from one of our pages: its session (none: the form has expired) and its CSRF
/// token checked.
pub struct CsrfForm {
    pub session: SessionRecord,
    pub params: Params,
}

impl FromRequest<AppState> for CsrfForm {
    type Rejection = Response;

    async fn from_request(req: Request, svc: &AppState) -> Result<Self, Response> {
        let (parts, params) = read_form(req).await.map_err(|e| oauth_page(&e))?;
        let cookie = cookies::read(&parts.headers, svc.config.secure_cookies());
        let session = match svc.find_session(cookie.as_deref()).await {
            Ok(Some(s)) => s,
            Ok(None) => return Err(csrf_failed()),
            Err(e) => return Err(service_page(&e)),
        };
        check_csrf(&session, &params)?;
        Ok(Self { session, params })
    }
}

/// A form that continues a pending authorization request (sign-in, consent): its session and
/// the request it owns (either missing: the request has expired), and its CSRF token checked.
pub struct PendingForm {
    pub session: SessionRecord,
    pub pending: PendingAuthorization,
    pub params: Params,
}

impl FromRequest<AppState> for PendingForm {
    type Rejection = Response;

    async fn from_request(req: Request, svc: &AppState) -> Result<Self, Response> {
        let (parts, params) = read_form(req).await.map_err(|e| oauth_page(&e))?;
        let cookie = cookies::read(&parts.headers, svc.config.secure_cookies());
        let (session, pending) = session_and_pending(svc, cookie.as_deref(), &params).await?;
        check_csrf(&session, &params)?;
        Ok(Self { session, pending, params })
    }
}

/// The session named by the cookie and the pending request (`request=ID`) it owns.
pub async fn session_and_pending(svc: &AppState, cookie: Option<&str>, params: &Params) -> Result<(SessionRecord, PendingAuthorization), Response> {
    let session = match svc.find_session(cookie).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(expired()),
        Err(e) => return Err(service_page(&e)),
    };
    let Some(id) = params.get("request") else { return Err(expired()) };
    match svc.find_pending(id, &session).await {
        Ok(Some(p)) => {
            // OIDC Core §3.1.2.1 ui_locales: the request's languages before the browser's.
            crate::i18n::prefer(p.oidc.as_ref().and_then(|o| o.ui_locales.as_deref()));
            Ok((session, p))
        }
        Ok(None) => Err(expired()),
        Err(e) => Err(service_page(&e)),
    }
}

fn expired() -> Response {
    page(StatusCode::BAD_REQUEST, &crate::i18n::t("request-expired"), &crate::i18n::t("request-expired-message"), Some("invalid_request"))
}

/// The client's throttling bucket (issue 13, finding 6): the TCP peer's address or, when the
/// peer is one of `--trusted-proxies`, the right-most address of `X-Forwarded-For` (or, without
/// one, of RFC 7239 `Forwarded`) that is not itself a trusted proxy; IPv6 by /64
/// ([`tessera_server::net::bucket`]). A header that cannot be read leaves the peer.
pub struct ClientAddress(pub String);

impl FromRequestParts<AppState> for ClientAddress {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, svc: &AppState) -> Result<Self, Infallible> {
        Ok(Self(client_address(svc, parts)))
    }
}

/// Where a sign-in comes from: the `User-Agent` header (cut to 512 characters by
/// [`SignInDevice::new`]) and the [`ClientAddress`], for the session it starts (the account
/// page's "Where you are signed in").
pub struct Device(pub SignInDevice);

impl FromRequestParts<AppState> for Device {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, svc: &AppState) -> Result<Self, Infallible> {
        let ua = parts.headers.get(header::USER_AGENT).map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
        Ok(Self(SignInDevice::new(ua.as_deref(), &client_address(svc, parts))))
    }
}

fn client_address(svc: &AppState, parts: &Parts) -> String {
    use tessera_server::net;
    let Some(peer) = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip()) else { return "unknown".into() };
    let trusted = &svc.config.trusted_proxies;
    if trusted.is_empty() {
        return net::bucket(peer);
    }
    let headers: &HeaderMap = &parts.headers;
    // Repeated fields are one comma-separated list (RFC 9110 §5.3).
    let chain = |name: header::HeaderName, parse: fn(&str) -> Vec<Option<std::net::IpAddr>>| -> Option<Vec<Option<std::net::IpAddr>>> {
        let mut hops = Vec::new();
        let mut any = false;
        for v in headers.get_all(name) {
            any = true;
            match v.to_str() {
                Ok(s) => hops.extend(parse(s)),
                Err(_) => hops.push(None),
            }
        }
        any.then_some(hops)
    };
    let hops = chain(header::HeaderName::from_static("x-forwarded-for"), net::x_forwarded_for)
        .or_else(|| chain(header::FORWARDED, net::forwarded_for))
        .unwrap_or_default();
    net::bucket(net::client_ip(peer, &hops, trusted))
}
