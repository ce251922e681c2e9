//! OpenID Connect endpoints: UserInfo (OIDC Core §5.3, RFC 6750 errors) and logout
//! (RP-Initiated Logout 1.0, with Back-Channel Logout 1.0 deliveries).

use crate::error::{PageError, service_json};
use crate::extract::{PageForm, PageQuery, SessionCookie, check_csrf};
use crate::pages::{LogoutPage, MessagePage};
use crate::response::{NoStore, see_other};
use crate::{AppState, cookies};
use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tessera_guard::bearer::{self, Presented};
use tessera_protocol::params::Params;
use tessera_server::service::dpop::PresentedProof;
use tessera_server::service::oidc::{PresentedToken, UserinfoError};

/// RFC 6750 §2.1: `Authorization: Bearer TOKEN`, read by the one bearer parser
/// ([`tessera_guard::bearer::authorization`]). Ok(None) when absent; Err when malformed —
/// including another scheme, which UserInfo answers 400 `invalid_request` (as it always has)
/// where a resource server answers a bare 401.
/// `Authorization: DPoP TOKEN` (RFC 9449 §7.1) is read by the same parser.
fn credentials(headers: &axum::http::HeaderMap) -> Result<PresentedToken<'_>, ()> {
    match bearer::authorization(headers) {
        Ok(Presented::Token(t)) => Ok(PresentedToken::Bearer(t)),
        Ok(Presented::Dpop(t)) => Ok(PresentedToken::Dpop(t, PresentedProof { headers: &[], method: "", url: "", access_token: None })),
        Ok(Presented::Absent) => Ok(PresentedToken::None),
        Ok(Presented::OtherScheme) | Err(_) => Err(()),
    }
}

/// The challenge of RFC 9449 §7.1 for a DPoP presentation: the error, and the algorithms.
fn dpop_challenge(error: &str, description: &str) -> String {
    format!("DPoP error=\"{error}\", error_description=\"{description}\", algs=\"{}\"", tessera_dpop::SUPPORTED_ALGS.join(" "))
}

fn bearer_error(status: StatusCode, challenge: &str) -> Response {
    let mut res = NoStore(status).into_response();
    if let Ok(v) = HeaderValue::from_str(challenge) {
        res.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    res
}

/// GET or POST /userinfo.
pub async fn userinfo(State(svc): State<AppState>, req: Request) -> Response {
    let headers = req.headers();
    let presented = match credentials(headers) {
        Ok(p) => p,
        // RFC 6750 §3.1 invalid_request: malformed header.
        Err(()) => return bearer_error(StatusCode::BAD_REQUEST, "Bearer error=\"invalid_request\", error_description=\"malformed Authorization header\""),
    };
    let proofs: Vec<&str> = match crate::token::dpop_headers(headers) {
        Ok(p) => p,
        Err(_) => return bearer_error(StatusCode::UNAUTHORIZED, &dpop_challenge("invalid_dpop_proof", "the DPoP header is not text")),
    };
    let url = format!("{}{}", svc.config.issuer, tessera_protocol::metadata::paths::USERINFO);
    let (dpop, presented) = match presented {
        PresentedToken::Dpop(t, _) => {
            (true, PresentedToken::Dpop(t, PresentedProof { headers: &proofs, method: req.method().as_str(), url: &url, access_token: Some(t) }))
        }
        other => (false, other),
    };
    let scheme = if dpop { "DPoP" } else { "Bearer" };
    let origin = crate::cors::origin(headers);
    let mut decision = crate::cors::decision(&svc, tessera_protocol::cors::CorsEndpoint::Userinfo, None, origin).await;
    let parsed = origin.map(|o| tessera_protocol::cors::parse_origin(o).unwrap_or_default());
    let response = match svc.userinfo(presented, parsed.as_deref()).await {
        Ok(claims) => NoStore(Json(claims)).into_response(),
        // RFC 6750 §3.1: no error code when the request had no authentication.
        Err(UserinfoError::NoToken) => bearer_error(StatusCode::UNAUTHORIZED, "Bearer realm=\"tessera\""),
        Err(UserinfoError::InvalidToken(d)) => bearer_error(StatusCode::UNAUTHORIZED, &format!("{scheme} error=\"invalid_token\", error_description=\"{d}\"")),
        Err(UserinfoError::InsufficientScope) => bearer_error(StatusCode::FORBIDDEN, &format!("{scheme} error=\"insufficient_scope\", scope=\"openid\"")),
        // RFC 9449 §7.1, §9: 401 with the DPoP challenge.
        Err(UserinfoError::Proof(e)) => bearer_error(StatusCode::UNAUTHORIZED, &dpop_challenge(e.code.as_str(), &e.description)),
        Err(UserinfoError::Origin) => {
            decision = tessera_protocol::cors::CorsDecision::Refuse;
            let d = crate::cors::refused(origin.unwrap_or(""));
            bearer_error(StatusCode::BAD_REQUEST, &format!("{scheme} error=\"invalid_request\", error_description=\"{}\"", d.description))
        }
        Err(UserinfoError::Store(e)) => service_json(&e),
    };
    let response = crate::cors::allow(response, &decision);
    if dpop { crate::token::with_nonce(&svc, response).await } else { response }
}

/// GET /logout — RP-Initiated Logout 1.0 §2 with the request in the query.
pub async fn logout_get(State(svc): State<AppState>, SessionCookie(cookie): SessionCookie, PageQuery(params): PageQuery) -> Result<Response, PageError> {
    logout(svc, cookie.as_deref(), params).await
}

/// POST /logout — the same as a form (and the confirmation form's answer).
pub async fn logout_post(State(svc): State<AppState>, SessionCookie(cookie): SessionCookie, PageForm(params): PageForm) -> Result<Response, PageError> {
    logout(svc, cookie.as_deref(), params).await
}

/// RP-Initiated Logout 1.0 §2. The request is checked, then the user is asked to confirm (a
/// logout link alone must not sign anyone out: CSRF).
async fn logout(svc: AppState, cookie: Option<&str>, params: Params) -> Result<Response, PageError> {
    let redirect =
        svc.check_logout_request(params.get("client_id"), params.get("id_token_hint"), params.get("post_logout_redirect_uri"), params.get("state")).await?;
    let session = svc.find_session(cookie).await?;
    // The confirmation form posts back here with `confirm`.
    if params.get("confirm") == Some("yes") {
        let Some(session) = session else { return Ok(signed_out(redirect)) };
        if let Err(r) = check_csrf(&session, &params) {
            return Ok(r);
        }
        svc.logout(&session).await?;
        let mut res = signed_out(redirect);
        if let Some(c) = cookies::set("", svc.config.secure_cookies(), 0) {
            res.headers_mut().append(header::SET_COOKIE, c);
        }
        return Ok(res);
    }
    let Some(session) = session.filter(|s| s.user_id.is_some()) else { return Ok(signed_out(redirect)) };
    let keep = |k: &str| params.get(k).unwrap_or("").to_string();
    Ok(NoStore(crate::overrides::render(&LogoutPage {
        csrf: &session.csrf_token,
        client_id: &keep("client_id"),
        id_token_hint: &keep("id_token_hint"),
        post_logout_redirect_uri: &keep("post_logout_redirect_uri"),
        state: &keep("state"),
    }))
    .into_response())
}

fn signed_out(redirect: Option<String>) -> Response {
    match redirect {
        Some(url) => see_other(&url),
        None => NoStore(crate::overrides::render(&MessagePage { title: "You are signed out", message: "You have signed out of Tessera." })).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The bearer token a request presents, if it presents one as Bearer.
    pub(super) fn bearer(h: &HeaderMap) -> Result<Option<&str>, ()> {
        match credentials(h)? {
            PresentedToken::Bearer(t) => Ok(Some(t)),
            PresentedToken::None => Ok(None),
            PresentedToken::Dpop(..) => Err(()),
        }
    }
    use axum::http::HeaderMap;

    /// RFC 6750 §2.1 at UserInfo, now through the one bearer parser (issue 14): where its own
    /// parser differed, the stricter reading that RFC 6750 §2.1 allows is kept — `1*SP`, so
    /// more than one space is one separator; a character outside b64token (a tab, a `;`)
    /// and a second `Authorization` header are malformed (400); another scheme stays 400 here.
    #[test]
    fn rfc6750_2_1_userinfo_reads_bearer_like_the_guard() {
        let read = |values: &[&str]| {
            let mut h = HeaderMap::new();
            for v in values {
                h.append(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
            }
            bearer(&h).map(|t| t.map(str::to_string))
        };
        assert_eq!(read(&[]), Ok(None));
        assert_eq!(read(&["bearer abc.def"]), Ok(Some("abc.def".into())));
        assert_eq!(read(&["Bearer  abc"]), Ok(Some("abc".into())), "1*SP");
        for bad in ["Bearer abc\t", "Bearer a;b", "Bearer a b", "Bearer ", "Basic abc"] {
            assert_eq!(read(&[bad]), Err(()), "{bad:?}");
        }
        assert_eq!(read(&["Bearer a", "Bearer b"]), Err(()), "one header only");
    }
}

/// Property-based tests of the UserInfo endpoint's RFC 6750 §2.1 header parser.
#[cfg(test)]
mod proptests {
    use super::*;

    use super::tests::bearer;
    use axum::http::HeaderMap;
    use proptest::prelude::*;

    fn headers(value: &[u8]) -> Option<HeaderMap> {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_bytes(value).ok()?);
        Some(h)
    }

    /// [`bearer`] on one header value, the token owned.
    fn read(value: &[u8]) -> Result<Option<String>, ()> {
        bearer(&headers(value).unwrap()).map(|t| t.map(str::to_string))
    }

    proptest! {
        /// RFC 6750 §2.1: any Authorization value is parsed without a panic; a token, when one
        /// is read, is non-empty, holds no space and came from the header.
        #[test]
        fn rfc6750_2_1_arbitrary_header_never_panics(value in prop_oneof![any::<Vec<u8>>(), "(?i:bearer)?[ \t]{0,3}[ -~]{0,60}".prop_map(String::into_bytes)]) {
            let Some(h) = headers(&value) else { return Ok(()) };
            if let Ok(Some(t)) = bearer(&h) {
                prop_assert!(!t.is_empty() && !t.contains(' '));
                prop_assert!(String::from_utf8_lossy(&value).contains(t));
            }
        }

        /// RFC 6750 §2.1: `Bearer` in any case and a b64token: the token is read back exactly;
        /// another scheme or a token with a space is malformed.
        #[test]
        fn rfc6750_2_1_b64token_round_trips(token in "[A-Za-z0-9._~+/-]{1,200}={0,2}", scheme in "(?i:bearer)", other in "[A-Za-z]{1,8}", tail in "[A-Za-z0-9]{1,8}") {
            prop_assert_eq!(read(format!("{scheme} {token}").as_bytes()), Ok(Some(token.clone())));
            prop_assert_eq!(read(format!("{scheme} {token} {tail}").as_bytes()), Err(()));
            prop_assume!(!other.eq_ignore_ascii_case("bearer"));
            prop_assert_eq!(read(format!("{other} {token}").as_bytes()), Err(()));
        }
    }
}
