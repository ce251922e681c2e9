//! Signals over real HTTP (issue 16): `/metrics` counts requests per endpoint and status class,
//! token requests per grant and outcome, sign-ins, throttling and refresh reuse, with the
//! signing keys' age; every answer carries an `X-Request-Id`.

use crate::common::*;

async fn metrics(s: &TestServer) -> String {
    let res = reqwest::get(format!("{}/metrics", s.url)).await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/plain; version=0.0.4; charset=utf-8");
    res.text().await.unwrap()
}

/// The value of the series `name` exactly (labels included), or 0 when absent.
fn value(text: &str, series: &str) -> f64 {
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' '))).map(|v| v.parse().unwrap()).unwrap_or(0.0)
}

#[tokio::test]
async fn metrics_count_what_operators_watch() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client("https://app.example/cb").await;
    let svc = s
        .client(tessera_server::service::admin::NewClient {
            name: "Job".into(),
            scope: "notes.read".into(),
            grant_types: vec!["client_credentials".into()],
            ..Default::default()
        })
        .await;
    let (job, job_secret) = (svc.client.client_id.clone(), svc.client_secret.clone().unwrap());
    for _ in 0..3 {
        assert_eq!(token_basic(&s.url, &job, &job_secret, &[("grant_type", "client_credentials")]).await.0, 200);
    }
    assert_eq!(token_basic(&s.url, &job, "wrong", &[("grant_type", "client_credentials")]).await.0, 401);
    assert_eq!(
        token_basic(&s.url, &id, &secret, &[("grant_type", "authorization_code"), ("code", "nope"), ("redirect_uri", "https://app.example/cb")]).await.0,
        400
    );
    assert_eq!(token_basic(&s.url, &id, &secret, &[("grant_type", "password")]).await.0, 400);
    // A failed and a successful sign-in.
    let b = Browser::new(&s.url);
    let url = s.authorize_url(&id, "https://app.example/cb", "notes.read", "st", None);
    let (_, html) = b.open_login(&url).await;
    b.sign_in(&html, USER, "wrong").await;
    b.journey_as(&url, USER).await;
    assert_eq!(reqwest::get(format!("{}/no-such-page", s.url)).await.unwrap().status(), 404);

    let text = metrics(&s).await;
    let cc = "tessera_token_requests_total{grant_type=\"client_credentials\"";
    assert_eq!(value(&text, &format!("{cc},outcome=\"success\"}}")), 3.0, "{text}");
    assert_eq!(value(&text, &format!("{cc},outcome=\"invalid_client\"}}")), 1.0);
    assert_eq!(value(&text, "tessera_token_requests_total{grant_type=\"authorization_code\",outcome=\"invalid_grant\"}"), 1.0);
    assert_eq!(value(&text, "tessera_token_requests_total{grant_type=\"unknown\",outcome=\"unsupported_grant_type\"}"), 1.0);
    assert_eq!(value(&text, "tessera_http_request_duration_seconds_count{endpoint=\"token\",status=\"2xx\"}"), 3.0);
    assert_eq!(value(&text, "tessera_http_request_duration_seconds_count{endpoint=\"token\",status=\"4xx\"}"), 3.0);
    assert_eq!(value(&text, "tessera_http_request_duration_seconds_count{endpoint=\"other\",status=\"4xx\"}"), 1.0, "the 404");
    assert!(value(&text, "tessera_http_request_duration_seconds_count{endpoint=\"login\",status=\"3xx\"}") >= 1.0);
    assert_eq!(value(&text, "tessera_sign_ins_total{outcome=\"success\"}"), 1.0);
    assert_eq!(value(&text, "tessera_sign_ins_total{outcome=\"invalid_credentials\"}"), 1.0);
    assert_eq!(value(&text, "tessera_refresh_token_reuse_total"), 0.0);
    assert!(text.contains("tessera_signing_key_age_seconds{alg=\"ES256\"}"), "{text}");
    assert!(!text.contains(&secret) && !text.contains("no-such-page"), "no request data in labels");
}

#[tokio::test]
async fn refresh_reuse_and_throttling_are_counted() {
    let s = TestServer::start_with(|c| {
        c.sign_in_user_throttle = tessera_storage::ThrottleRule { burst: 1, max_delay: 60, reset_after: 900 };
    })
    .await;
    let (id, secret) = s.confidential_client("https://app.example/cb").await;
    let url = s.authorize_url(&id, "https://app.example/cb", "notes.read", "st", None);
    let back = Browser::new(&s.url).journey_as(&url, USER).await;
    let code = query(&back).remove("code").unwrap();
    let (_, t, _) =
        token_basic(&s.url, &id, &secret, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "https://app.example/cb")]).await;
    let rt = t["refresh_token"].as_str().unwrap();
    assert_eq!(token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await.0, 200);
    s.clock.advance(120);
    assert_eq!(token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await.0, 400, "reuse");
    // Two wrong passwords for one account: the second is refused by the username's back-off.
    let b = Browser::new(&s.url);
    for _ in 0..2 {
        let (_, html) = b.open_login(&url).await;
        b.sign_in(&html, USER, "wrong").await;
    }
    let text = metrics(&s).await;
    assert_eq!(value(&text, "tessera_refresh_token_reuse_total"), 1.0, "{text}");
    assert_eq!(value(&text, "tessera_sign_in_throttled_total{by=\"username\"}"), 1.0, "{text}");
    assert_eq!(value(&text, "tessera_sign_ins_total{outcome=\"throttled\"}"), 1.0);
}

/// Every answer carries an `X-Request-Id`: a new one per request, or the caller's when it is a
/// short plain token (never one that could forge a header or a log line).
#[tokio::test]
async fn every_answer_has_a_request_id() {
    let s = TestServer::start().await;
    let http = reqwest::Client::new();
    let id_of = |res: &reqwest::Response| res.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_string());
    let a = id_of(&http.get(format!("{}/jwks.json", s.url)).send().await.unwrap()).unwrap();
    let b = id_of(&http.post(format!("{}/token", s.url)).send().await.unwrap()).unwrap();
    assert_ne!(a, b);
    let c = id_of(&http.get(format!("{}/nowhere", s.url)).send().await.unwrap()).unwrap();
    assert!(!c.is_empty() && c != a);
    let kept = http.get(format!("{}/jwks.json", s.url)).header("x-request-id", "lb-1234.abc").send().await.unwrap();
    assert_eq!(id_of(&kept).as_deref(), Some("lb-1234.abc"));
    for hostile in ["has space", &"x".repeat(100), "a\"b"] {
        let res = http.get(format!("{}/jwks.json", s.url)).header("x-request-id", hostile).send().await.unwrap();
        let got = id_of(&res).unwrap();
        assert_ne!(got, hostile, "replaced");
        assert!(got.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'), "{got}");
    }
}
