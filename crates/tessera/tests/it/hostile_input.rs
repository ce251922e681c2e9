//! Hostile input at every endpoint: malformed, missing, repeated and oversized parameters, wrong
//! content types and garbage bodies. Each answer is the RFC's error — JSON `invalid_request`
//! (RFC 6749 §5.2) at the token endpoint, an error page that never redirects at the
//! authorization endpoint (§4.1.2.1) — and never a 500, a panic or a hang.
use crate::common::*;
use std::time::Duration;

const CB: &str = "http://127.0.0.1:9/callback";

struct Case {
    name: &'static str,
    method: &'static str,
    path: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
    status: u16,
    /// Expected `error` in a JSON body, or a substring of an HTML page.
    expect: &'static str,
}

fn case(
    name: &'static str,
    method: &'static str,
    path: impl Into<String>,
    content_type: Option<&'static str>,
    body: impl Into<Vec<u8>>,
    status: u16,
    expect: &'static str,
) -> Case {
    Case { name, method, path: path.into(), content_type, body: body.into(), status, expect }
}

async fn check(s: &TestServer, cases: Vec<Case>, auth: Option<(&str, &str)>) {
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).timeout(Duration::from_secs(20)).build().unwrap();
    for c in cases {
        let mut req = http.request(c.method.parse().unwrap(), format!("{}{}", s.url, c.path));
        if let Some(ct) = c.content_type {
            req = req.header("content-type", ct);
        }
        if let Some((id, secret)) = auth {
            req = req.basic_auth(id, Some(secret));
        }
        let res = req.body(c.body).send().await.unwrap_or_else(|e| panic!("{}: no response: {e}", c.name));
        let status = res.status().as_u16();
        assert!(res.headers().get("location").is_none(), "{}: must not redirect", c.name);
        let is_json = res.headers().get("content-type").is_some_and(|v| v.to_str().unwrap().starts_with("application/json"));
        let text = res.text().await.unwrap();
        assert_eq!(status, c.status, "{}: status (body: {text})", c.name);
        if is_json {
            let v: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(v["error"], c.expect, "{}: {text}", c.name);
        } else {
            assert!(text.contains(c.expect), "{}: expected {:?} in {text}", c.name, c.expect);
        }
    }
}

/// RFC 6749 §4.1.2.1 and §3.1: the authorization endpoint.
#[tokio::test]
async fn authorize_endpoint() {
    let s = TestServer::start().await;
    let (id, _) = s.confidential_client(CB).await;
    let good = s.authorize_url(&id, CB, "notes.read", "st", None);
    let good_q = good.split_once('?').unwrap().1.to_string();
    let form = Some("application/x-www-form-urlencoded");
    check(
        &s,
        vec![
            case("no parameters", "GET", "/authorize", None, "", 400, "invalid_request"),
            case("repeated client_id", "GET", format!("/authorize?{good_q}&client_id={id}"), None, "", 400, "repeated"),
            case("repeated redirect_uri", "GET", format!("/authorize?{good_q}&redirect_uri=https%3A%2F%2Fevil.example"), None, "", 400, "repeated"),
            case("repeated state", "GET", format!("/authorize?{good_q}&state=2"), None, "", 400, "repeated"),
            case("oversized query", "GET", format!("/authorize?{good_q}&x={}", "a".repeat(20_000)), None, "", 400, "too large"),
            case("oversized value", "GET", format!("/authorize?{good_q}&x={}", "a".repeat(5_000)), None, "", 400, "too long"),
            case("bad percent-encoding", "GET", format!("/authorize?{good_q}&x=%ff%fe"), None, "", 400, "UTF-8"),
            case("garbage query", "GET", "/authorize?%%%&&&===", None, "", 400, "invalid_request"),
            case("NUL in client_id", "GET", "/authorize?client_id=%00&response_type=code", None, "", 400, "unknown client_id"),
            case("unregistered redirect", "GET", good.replace(&s.url, "").replace("127.0.0.1%3A9", "evil.example"), None, "", 400, "not registered"),
            case("javascript redirect", "GET", format!("/authorize?client_id={id}&redirect_uri=javascript%3Aalert(1)"), None, "", 400, "not registered"),
            case(
                "POST wrong content type",
                "POST",
                "/authorize",
                Some("application/json"),
                format!("{{\"client_id\":\"{id}\"}}"),
                400,
                "x-www-form-urlencoded",
            ),
            case("POST no content type", "POST", "/authorize", None, good_q.clone(), 400, "x-www-form-urlencoded"),
            case("POST oversized body", "POST", "/authorize", form, vec![b'a'; 200_000], 400, "too large"),
            case("POST binary garbage", "POST", "/authorize", form, vec![0xff, 0x00, 0xfe, 0x80], 400, "UTF-8"),
            case("PUT", "PUT", "/authorize", None, "", 405, "Method not allowed"),
        ],
        None,
    )
    .await;
}

/// The sign-in and consent pages.
#[tokio::test]
async fn login_and_consent_pages() {
    let s = TestServer::start().await;
    let form = Some("application/x-www-form-urlencoded");
    check(
        &s,
        vec![
            case("login without request", "GET", "/login", None, "", 400, "expired"),
            case("login unknown request", "GET", "/login?request=nope", None, "", 400, "expired"),
            case("login repeated request", "GET", "/login?request=a&request=b", None, "", 400, "repeated"),
            case("login POST no session", "POST", "/login", form, "request=a&csrf=b&username=alice&password=x", 400, "expired"),
            case("login POST json", "POST", "/login", Some("application/json"), "{}", 400, "x-www-form-urlencoded"),
            case("login POST garbage", "POST", "/login", form, vec![0xc3, 0x28], 400, "UTF-8"),
            case("login POST huge", "POST", "/login", form, vec![b'x'; 100_000], 400, "too large"),
            case("consent without request", "GET", "/consent", None, "", 400, "expired"),
            case("consent POST no session", "POST", "/consent", form, "request=a&csrf=b&decision=allow", 400, "expired"),
            case("consent POST repeated decision", "POST", "/consent", form, "decision=allow&decision=deny", 400, "repeated"),
            case("unknown path", "GET", "/nope/../../etc/passwd", None, "", 404, "Not found"),
        ],
        None,
    )
    .await;

    // With a real session: missing decision, unknown decision, missing credentials.
    let (id, _) = s.confidential_client(CB).await;
    let b = Browser::new(&s.url);
    let (_, html) = b.open_login(&s.authorize_url(&id, CB, "notes.read", "1", None)).await;
    let csrf = hidden(&html, "csrf").unwrap();
    let request = hidden(&html, "request").unwrap();
    let res = b.post_form("/login", &[("csrf", &csrf), ("request", &request)]).await;
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("Enter your username and password."));
    let long = "x".repeat(5000);
    let res = b.post_form("/login", &[("csrf", &csrf), ("request", &request), ("username", &long), ("password", "x")]).await;
    assert_eq!(res.status(), 400, "an over-long username is refused before any lookup");
    let res = b.sign_in(&html, USER, PASSWORD).await;
    let html = b.get(&location(&res)).await.text().await.unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    let request = hidden(&html, "request").unwrap();
    for decision in [None, Some("maybe")] {
        let mut f = vec![("csrf", csrf.as_str()), ("request", request.as_str())];
        if let Some(d) = decision {
            f.push(("decision", d));
        }
        let res = b.post_form("/consent", &f).await;
        assert_eq!(res.status(), 400);
        assert!(res.headers().get("location").is_none());
    }
    // The request is still answerable after the bad attempts.
    assert_eq!(b.decide(&html, "allow").await.split('?').next().unwrap(), CB);
}

/// RFC 6749 §5.2 at the token endpoint.
#[tokio::test]
async fn token_endpoint() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(CB).await;
    let form = Some("application/x-www-form-urlencoded");
    let long = "a".repeat(5_000);
    check(
        &s,
        vec![
            case("GET", "GET", "/token", None, "", 405, "invalid_request"),
            case("no content type", "POST", "/token", None, "grant_type=authorization_code&code=x", 400, "invalid_request"),
            case("json body", "POST", "/token", Some("application/json"), "{\"grant_type\":\"authorization_code\"}", 400, "invalid_request"),
            case("multipart body", "POST", "/token", Some("multipart/form-data; boundary=x"), "--x\r\n\r\n--x--", 400, "invalid_request"),
            case("oversized body", "POST", "/token", form, vec![b'a'; 1_000_000], 400, "invalid_request"),
            case("binary garbage", "POST", "/token", form, vec![0xde, 0xad, 0xbe, 0xef, 0xff], 400, "invalid_request"),
            case("repeated grant_type", "POST", "/token", form, "grant_type=authorization_code&grant_type=refresh_token&code=x", 400, "invalid_request"),
            case("repeated code", "POST", "/token", form, "grant_type=authorization_code&code=a&code=b", 400, "invalid_request"),
            case("missing grant_type", "POST", "/token", form, "code=x", 400, "invalid_request"),
            case("password grant", "POST", "/token", form, "grant_type=password&username=alice&password=x", 400, "unsupported_grant_type"),
            case("implicit", "POST", "/token", form, "grant_type=implicit", 400, "unsupported_grant_type"),
            case("unknown grant", "POST", "/token", form, "grant_type=urn%3Aevil", 400, "unsupported_grant_type"),
            case("missing code", "POST", "/token", form, "grant_type=authorization_code", 400, "invalid_request"),
            case("garbage code", "POST", "/token", form, "grant_type=authorization_code&code=%00%01", 400, "invalid_grant"),
            case("huge code", "POST", "/token", form, format!("grant_type=authorization_code&code={long}"), 400, "invalid_request"),
            case("garbage refresh", "POST", "/token", form, "grant_type=refresh_token&refresh_token=x", 400, "invalid_grant"),
            case("bad scope chars", "POST", "/token", form, "grant_type=refresh_token&refresh_token=x&scope=%22", 400, "invalid_scope"),
        ],
        Some((&id, &secret)),
    )
    .await;
    // Client authentication problems.
    check(
        &s,
        vec![
            case("no client", "POST", "/token", form, "grant_type=authorization_code&code=x", 401, "invalid_client"),
            case("unknown client id", "POST", "/token", form, "grant_type=authorization_code&code=x&client_id=nobody", 401, "invalid_client"),
            case(
                "two methods",
                "POST",
                "/token",
                form,
                format!("grant_type=authorization_code&code=x&client_id={id}&client_secret={secret}&client_id={id}"),
                400,
                "invalid_request",
            ),
        ],
        None,
    )
    .await;
    let http = reqwest::Client::new();
    for header in ["Basic", "Basic !!!!", "Bearer abc", "Basic Og==", "Digest x"] {
        let res = http
            .post(format!("{}/token", s.url))
            .header("authorization", header)
            .form(&[("grant_type", "authorization_code"), ("code", "x")])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 401, "{header}");
        assert!(res.headers().contains_key("www-authenticate"));
        assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "invalid_client");
    }
    // Basic plus a secret in the body: two methods.
    let res = http
        .post(format!("{}/token", s.url))
        .basic_auth(&id, Some(&secret))
        .form(&[("grant_type", "authorization_code"), ("code", "x"), ("client_secret", &secret)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<serde_json::Value>().await.unwrap()["error"], "invalid_request");
    // Non-ASCII bytes in the Authorization header.
    let res = http
        .post(format!("{}/token", s.url))
        .header("authorization", reqwest::header::HeaderValue::from_bytes(b"Basic \xff\xfe").unwrap())
        .form(&[("grant_type", "authorization_code")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

/// A body that never finishes is cut off by the server's request timeout, not waited on forever;
/// meanwhile other requests are served.
#[tokio::test]
async fn stalled_body_does_not_block_the_server() {
    use tokio::io::AsyncWriteExt;
    let s = TestServer::start().await;
    let addr = s.url.trim_start_matches("http://").to_string();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    stream
        .write_all(b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=")
        .await
        .unwrap();
    let res = reqwest::Client::new().get(format!("{}/.well-known/oauth-authorization-server", s.url)).timeout(Duration::from_secs(5)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    drop(stream);
}

/// Metadata and JWKS answer GET only.
#[tokio::test]
async fn discovery_endpoints() {
    let s = TestServer::start().await;
    let http = reqwest::Client::new();
    for path in ["/.well-known/oauth-authorization-server", "/jwks.json"] {
        let res = http.post(format!("{}{path}", s.url)).body("x").send().await.unwrap();
        assert_eq!(res.status(), 405, "{path}");
        let res = http.get(format!("{}{path}?x=%ff&x=1", s.url)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{path}: query is ignored");
    }
}
