//! Responses every handler shares: the one no-store wrapper (RFC 6749 §5.1), JSON already
//! serialized, and the 303 redirect.

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// `T` with `Cache-Control: no-store` and `Pragma: no-cache`.
///
/// RFC 6749 §5.1: "The authorization server MUST include the HTTP "Cache-Control" response
/// header field [RFC2616] with a value of "no-store" in any response containing tokens,
/// credentials, or other sensitive information, as well as the "Pragma" response header field
/// [RFC2616] with a value of "no-cache"." Every token-endpoint answer and every page (they carry
/// CSRF tokens, codes in redirects, or errors about a user's request) goes through this one
/// wrapper.
pub struct NoStore<T>(pub T);

impl<T: IntoResponse> IntoResponse for NoStore<T> {
    fn into_response(self) -> Response {
        let mut res = self.0.into_response();
        let h = res.headers_mut();
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
        res
    }
}

/// A JSON body serialized beforehand (introspection answers are serialized once per token).
pub struct JsonText<'a>(pub &'a str);

impl IntoResponse for JsonText<'_> {
    fn into_response(self) -> Response {
        ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], Bytes::copy_from_slice(self.0.as_bytes())).into_response()
    }
}

/// A 303 See Other to `location` (RFC 9110 §15.4.4; RFC 9700 §4.11: a POSTed form is not sent
/// on to the client), never cached.
pub fn see_other(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => NoStore((StatusCode::SEE_OTHER, [(header::LOCATION, v)])).into_response(),
        Err(_) => crate::error::page(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", "The redirect could not be built.", None),
    }
}
