//! Parsers of untrusted input, over HTTP: what the property-based tests found (issue 13,
//! "Tests and proof"), and RFC 9700 rules about what the authorization endpoint must not serve.

use crate::common::*;
use tessera_server::service::admin::NewClient;

/// RFC 6749 §2.3.1: the Basic password is the client secret, form-urlencoded, whole. The
/// property `client::proptests::rfc6749_2_3_1_secret_is_not_truncated_at_ampersand` found that
/// everything from a raw `&` on was dropped, so `SECRET&anything` authenticated as `SECRET`.
#[tokio::test]
async fn regression_basic_secret_cut_at_ampersand_rfc6749_2_3_1() {
    let s = TestServer::start().await;
    let c = s
        .client(NewClient { name: "Batch Job".into(), scope: "notes.read".into(), grant_types: vec!["client_credentials".into()], ..Default::default() })
        .await;
    let (id, secret) = (c.client.client_id, c.client_secret.unwrap());
    let form = [("grant_type", "client_credentials"), ("scope", "notes.read")];
    let (status, body, _) = token_basic(&s.url, &id, &format!("{secret}&x"), &form).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body}");
    let (status, body, _) = token_basic(&s.url, &format!("{id}&x"), &secret, &form).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body}");
    let (status, body, _) = token_basic(&s.url, &id, &secret, &form).await;
    assert_eq!(status, 200, "{body}");
}

/// RFC 9700 §2.6: "CORS MUST NOT be supported at the Authorization Endpoint": neither a
/// cross-origin GET nor a preflight gets an `Access-Control-Allow-Origin`.
#[tokio::test]
async fn rfc9700_2_6_no_cors_at_the_authorization_endpoint() {
    let s = TestServer::start().await;
    let (id, _) = s.confidential_client("https://app.example/cb").await;
    let url = s.authorize_url(&id, "https://app.example/cb", "notes.read", "st", None);
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let res = http.get(&url).header("Origin", "https://evil.example").send().await.unwrap();
    assert!(res.status().is_success() || res.status().is_redirection(), "{}", res.status());
    assert!(res.headers().get("access-control-allow-origin").is_none());
    let res = http
        .request(reqwest::Method::OPTIONS, &url)
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "GET")
        .send()
        .await
        .unwrap();
    assert!(res.headers().get("access-control-allow-origin").is_none());
    assert!(res.headers().get("access-control-allow-methods").is_none());
}

/// Discovery and the JWKS are public and readable from any origin (`Access-Control-Allow-Origin:
/// *`, never with credentials), so that an app in the browser can find the endpoints and check
/// ID token signatures; introspection (a resource server's) and the HTML pages never answer CORS.
#[tokio::test]
async fn discovery_and_jwks_are_readable_from_any_origin_nothing_else_is() {
    let s = TestServer::start().await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for path in ["/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/jwks.json"] {
        let res = http.get(format!("{}{path}", s.url)).header("Origin", "https://spa.example").send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}");
        assert_eq!(res.headers()["access-control-allow-origin"], "*", "{path}");
        assert!(res.headers().get("access-control-allow-credentials").is_none(), "{path}");
    }
    for (method, path) in [("GET", "/login"), ("GET", "/device"), ("GET", "/logout"), ("POST", "/introspect"), ("GET", "/")] {
        let res = http.request(method.parse().unwrap(), format!("{}{path}", s.url)).header("Origin", "https://spa.example").send().await.unwrap();
        assert!(res.headers().get("access-control-allow-origin").is_none(), "{method} {path}");
    }
}

/// RFC 9700 §4.2.4: the pages of the authorization flow send `Referrer-Policy: no-referrer`, so
/// a code or state in their URL does not leak to another site.
#[tokio::test]
async fn rfc9700_4_2_4_authorization_pages_suppress_the_referer() {
    let s = TestServer::start().await;
    let (id, _) = s.confidential_client("https://app.example/cb").await;
    let b = Browser::new(&s.url);
    let res = b.get(&s.authorize_url(&id, "https://app.example/cb", "notes.read", "st", None)).await;
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
    let res = b.get(&location(&res)).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["referrer-policy"], "no-referrer");
}
