//! CORS (Fetch standard) for browser apps, over real HTTP: the token, revocation and UserInfo
//! endpoints answer a client's registered origins (its redirect URIs' and `--allowed-origin`)
//! with exactly that origin, refuse other origins with no CORS headers and without consuming
//! anything; preflights answer origins some client registered; introspection and pages never
//! answer CORS; discovery and the JWKS answer `*`.

use crate::common::*;
use reqwest::header::HeaderMap;
use serde_json::Value;
use tessera_server::service::admin::NewClient;

const APP: &str = "https://spa.example";
const REDIRECT: &str = "https://spa.example/callback";

fn acao(h: &HeaderMap) -> Option<&str> {
    h.get("access-control-allow-origin").map(|v| v.to_str().unwrap())
}

async fn token_from(s: &TestServer, origin: Option<&str>, form: &[(&str, &str)]) -> (u16, Value, HeaderMap) {
    let mut req = reqwest::Client::new().post(format!("{}/token", s.url)).form(form);
    if let Some(o) = origin {
        req = req.header("Origin", o);
    }
    let res = req.send().await.unwrap();
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    (status, res.json().await.unwrap(), headers)
}

async fn preflight(s: &TestServer, path: &str, origin: &str) -> (u16, HeaderMap) {
    let res = reqwest::Client::new()
        .request(reqwest::Method::OPTIONS, format!("{}{path}", s.url))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type, dpop")
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.headers().clone())
}

#[tokio::test]
async fn a_public_client_is_answered_at_its_origin_and_another_origin_is_refused_without_consuming_the_code() {
    let s = TestServer::start().await;
    let client = s.public_client(REDIRECT).await;
    let (verifier, challenge) = pkce_pair();
    let back = Browser::new(&s.url).authorize_and_allow(&s.authorize_url(&client, REDIRECT, "notes.read", "st", Some(&challenge))).await;
    let code = query(&back).remove("code").unwrap();
    let form =
        [("grant_type", "authorization_code"), ("code", code.as_str()), ("redirect_uri", REDIRECT), ("client_id", &client), ("code_verifier", &verifier)];

    let (status, body, h) = token_from(&s, Some("https://evil.example"), &form).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "{body}");
    assert!(body["error_description"].as_str().unwrap().contains("not registered"), "{body}");
    assert_eq!(acao(&h), None, "an unregistered origin is never reflected");

    let (status, body, h) = token_from(&s, Some(APP), &form).await;
    assert_eq!(status, 200, "the refusal consumed nothing: {body}");
    assert_eq!(acao(&h), Some(APP));
    assert_eq!(h.get("access-control-expose-headers").unwrap(), "DPoP-Nonce, WWW-Authenticate");
    assert!(h.get("access-control-allow-credentials").is_none());
    let rt = body["refresh_token"].as_str().unwrap();

    // An error for the client's own origin is readable by the app.
    let (status, body, h) = token_from(&s, Some(APP), &[("grant_type", "refresh_token"), ("refresh_token", "nope"), ("client_id", &client)]).await;
    assert_eq!((status, body["error"].as_str(), acao(&h)), (400, Some("invalid_grant"), Some(APP)));

    // Revocation: the same rules.
    let res = reqwest::Client::new()
        .post(format!("{}/revoke", s.url))
        .header("Origin", "https://evil.example")
        .form(&[("token", rt), ("client_id", client.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!((res.status().as_u16(), acao(res.headers())), (400, None));
    let res = reqwest::Client::new()
        .post(format!("{}/revoke", s.url))
        .header("Origin", APP)
        .form(&[("token", rt), ("client_id", client.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!((res.status().as_u16(), acao(res.headers())), (200, Some(APP)));
}

#[tokio::test]
async fn preflights_answer_registered_origins_only() {
    let s = TestServer::start().await;
    s.public_client(REDIRECT).await;
    for path in ["/token", "/revoke", "/userinfo"] {
        let (status, h) = preflight(&s, path, APP).await;
        assert_eq!((status, acao(&h)), (204, Some(APP)), "{path}");
        let allowed = h.get("access-control-allow-headers").unwrap().to_str().unwrap().to_ascii_lowercase();
        assert!(allowed.contains("dpop") && allowed.contains("authorization") && allowed.contains("content-type"), "{path}: {allowed}");
        assert!(h.get("access-control-allow-methods").unwrap().to_str().unwrap().contains("POST"));
        let (status, h) = preflight(&s, path, "https://evil.example").await;
        assert_eq!((status, acao(&h)), (403, None), "{path}");
        let (_, h) = preflight(&s, path, "null").await;
        assert_eq!(acao(&h), None, "{path}: the opaque origin");
    }
}

#[tokio::test]
async fn an_origin_added_with_allowed_origin_is_answered_and_a_server_side_client_is_unaffected() {
    let s = TestServer::start().await;
    let c = s
        .client(NewClient {
            name: "Service".into(),
            scope: "notes.read".into(),
            grant_types: vec!["client_credentials".into()],
            allowed_origins: vec!["http://localhost:3000".into()],
            ..Default::default()
        })
        .await;
    let (id, secret) = (c.client.client_id, c.client_secret.unwrap());
    let send = |origin: Option<&'static str>| {
        let (url, id, secret) = (s.url.clone(), id.clone(), secret.clone());
        async move {
            let mut req = reqwest::Client::new().post(format!("{url}/token")).basic_auth(id, Some(secret)).form(&[("grant_type", "client_credentials")]);
            if let Some(o) = origin {
                req = req.header("Origin", o);
            }
            let res = req.send().await.unwrap();
            (res.status().as_u16(), acao(res.headers()).map(str::to_string))
        }
    };
    assert_eq!(send(Some("http://localhost:3000")).await, (200, Some("http://localhost:3000".into())));
    assert_eq!(send(Some("http://localhost:3001")).await, (400, None));
    assert_eq!(send(None).await, (200, None), "no Origin (a server): no CORS, no refusal");
    // Registration refuses what is not an origin.
    let bad = tessera_server::service::admin::create_client(
        &*s.svc.store,
        NewClient {
            name: "Bad".into(),
            scope: "notes.read".into(),
            grant_types: vec!["client_credentials".into()],
            allowed_origins: vec!["https://app.example/path".into()],
            ..Default::default()
        },
        0,
    )
    .await;
    assert!(bad.is_err_and(|e| e.to_string().contains("--allowed-origin")));
}

#[tokio::test]
async fn introspection_and_pages_never_answer_cors_and_discovery_answers_any_origin() {
    let s = TestServer::start().await;
    s.public_client(REDIRECT).await;
    let (id, secret) = s.confidential_client("https://rs.example/cb").await;
    let res = reqwest::Client::new()
        .post(format!("{}/introspect", s.url))
        .header("Origin", APP)
        .basic_auth(&id, Some(&secret))
        .form(&[("token", "x")])
        .send()
        .await
        .unwrap();
    assert_eq!((res.status().as_u16(), acao(res.headers())), (200, None));
    let (status, h) = preflight(&s, "/introspect", APP).await;
    assert!(acao(&h).is_none(), "introspection preflight: {status}");
    let res = reqwest::Client::new().get(format!("{}/login", s.url)).header("Origin", APP).send().await.unwrap();
    assert_eq!(acao(res.headers()), None);
    let res =
        reqwest::Client::new().get(format!("{}/.well-known/openid-configuration", s.url)).header("Origin", "https://anyone.example").send().await.unwrap();
    assert_eq!(acao(res.headers()), Some("*"));
}
