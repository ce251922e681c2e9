//! OpenID Connect endpoints: UserInfo (OIDC Core §5.3, RFC 6750 errors) and logout
//! (RP-Initiated Logout 1.0, with Back-Channel Logout 1.0 deliveries).

use crate::authorize::{csrf_failed, csrf_ok, query_params, see_other};
use crate::error::{oauth_page, service_page};
use crate::pages::{LogoutPage, MessagePage, render};
use crate::token::{no_store_json, read_form};
use crate::{AppState, cookies};
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_protocol::params::Params;
use tessera_server::service::oidc::UserinfoError;

/// RFC 6750 §2.1: `Authorization: Bearer TOKEN`. Ok(None) when absent; Err when malformed.
fn bearer(headers: &axum::http::HeaderMap) -> Result<Option<String>, ()> {
    let Some(v) = headers.get(header::AUTHORIZATION) else { return Ok(None) };
    let v = v.to_str().map_err(|_| ())?;
    let (scheme, token) = v.split_once(' ').ok_or(())?;
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() || token.contains(' ') {
        return Err(());
    }
    Ok(Some(token.trim().to_string()))
}

fn bearer_error(status: StatusCode, challenge: &str) -> Response {
    let mut res = status.into_response();
    if let Ok(v) = HeaderValue::from_str(challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// GET or POST /userinfo.
pub async fn userinfo(State(svc): State<AppState>, req: Request) -> Response {
    let token = match bearer(req.headers()) {
        Ok(t) => t,
        // RFC 6750 §3.1 invalid_request: malformed header.
        Err(()) => return bearer_error(StatusCode::BAD_REQUEST, "Bearer error=\"invalid_request\", error_description=\"malformed Authorization header\""),
    };
    match svc.userinfo(token.as_deref()).await {
        Ok(claims) => no_store_json(&claims),
        // RFC 6750 §3.1: no error code when the request had no authentication.
        Err(UserinfoError::NoToken) => bearer_error(StatusCode::UNAUTHORIZED, "Bearer realm=\"tessera\""),
        Err(UserinfoError::InvalidToken(d)) => bearer_error(StatusCode::UNAUTHORIZED, &format!("Bearer error=\"invalid_token\", error_description=\"{d}\"")),
        Err(UserinfoError::InsufficientScope) => bearer_error(StatusCode::FORBIDDEN, "Bearer error=\"insufficient_scope\", scope=\"openid\""),
        Err(UserinfoError::Store(e)) => crate::error::service_json(&e),
    }
}

async fn logout_params(req: Request) -> Result<(axum::http::HeaderMap, Params), Response> {
    if req.method() == axum::http::Method::POST {
        read_form(req).await.map_err(|e| oauth_page(&e))
    } else {
        let p = query_params(req.uri())?;
        Ok((req.headers().clone(), p))
    }
}

/// GET/POST /logout — RP-Initiated Logout 1.0 §2. The request is checked, then the user is
/// asked to confirm (a logout link alone must not sign anyone out: CSRF).
pub async fn logout(State(svc): State<AppState>, req: Request) -> Response {
    let (headers, params) = match logout_params(req).await {
        Ok(x) => x,
        Err(r) => return r,
    };
    let redirect =
        match svc.check_logout_request(params.get("client_id"), params.get("id_token_hint"), params.get("post_logout_redirect_uri"), params.get("state")).await
        {
            Ok(r) => r,
            Err(e) => return service_page(&e),
        };
    let cookie = cookies::read(&headers, svc.config.secure_cookies());
    let session = match svc.find_session(cookie.as_deref()).await {
        Ok(s) => s,
        Err(e) => return service_page(&e),
    };
    // The confirmation form posts back here with `confirm`.
    if params.get("confirm") == Some("yes") {
        let Some(session) = session else { return signed_out(redirect) };
        if !csrf_ok(&session, &params) {
            return csrf_failed();
        }
        if let Err(e) = svc.logout(&session).await {
            return service_page(&e);
        }
        let mut res = signed_out(redirect);
        if let Some(c) = cookies::set("", svc.config.secure_cookies(), 0) {
            res.headers_mut().append(header::SET_COOKIE, c);
        }
        return res;
    }
    let Some(session) = session.filter(|s| s.user_id.is_some()) else { return signed_out(redirect) };
    let keep = |k: &str| params.get(k).unwrap_or("").to_string();
    let html = render(&LogoutPage {
        csrf: &session.csrf_token,
        client_id: &keep("client_id"),
        id_token_hint: &keep("id_token_hint"),
        post_logout_redirect_uri: &keep("post_logout_redirect_uri"),
        state: &keep("state"),
    });
    let mut res = html.into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

fn signed_out(redirect: Option<String>) -> Response {
    match redirect {
        Some(url) => see_other(&url),
        None => {
            let mut res = render(&MessagePage { title: "You are signed out", message: "You have signed out of Tessera." }).into_response();
            res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            res
        }
    }
}

/// Property-based tests of the UserInfo endpoint's RFC 6750 §2.1 header parser.
#[cfg(test)]
mod proptests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;
    use axum::http::HeaderMap;
    use proptest::prelude::*;

    fn headers(value: &[u8]) -> Option<HeaderMap> {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_bytes(value).ok()?);
        Some(h)
    }

    proptest! {
        /// RFC 6750 §2.1: any Authorization value is parsed without a panic; a token, when one
        /// is read, is non-empty, holds no space and came from the header.
        #[test]
        fn rfc6750_2_1_arbitrary_header_never_panics(value in prop_oneof![any::<Vec<u8>>(), "(?i:bearer)?[ \t]{0,3}[ -~]{0,60}".prop_map(String::into_bytes)]) {
            let Some(h) = headers(&value) else { return Ok(()) };
            if let Ok(Some(t)) = bearer(&h) {
                prop_assert!(!t.is_empty() && !t.contains(' '));
                prop_assert!(String::from_utf8_lossy(&value).contains(&t));
            }
        }

        /// RFC 6750 §2.1: `Bearer` in any case and a b64token: the token is read back exactly;
        /// another scheme or a token with a space is malformed.
        #[test]
        fn rfc6750_2_1_b64token_round_trips(token in "[A-Za-z0-9._~+/-]{1,200}={0,2}", scheme in "(?i:bearer)", other in "[A-Za-z]{1,8}", tail in "[A-Za-z0-9]{1,8}") {
            prop_assert_eq!(bearer(&headers(format!("{scheme} {token}").as_bytes()).unwrap()), Ok(Some(token.clone())));
            prop_assert_eq!(bearer(&headers(format!("{scheme} {token} {tail}").as_bytes()).unwrap()), Err(()));
            prop_assume!(!other.eq_ignore_ascii_case("bearer"));
            prop_assert_eq!(bearer(&headers(format!("{other} {token}").as_bytes()).unwrap()), Err(()));
        }
    }
}
