//! tessera-guard against a real issuer stand-in over HTTP (RFC 8414 metadata and a JWKS on
//! 127.0.0.1:0 whose keys the test rotates): one test per failure of RFC 9068 §4 and RFC 6750.
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::Router;
use axum::body::Body;
use axum::handler::Handler;
use axum::http::{Request, StatusCode, header};
use axum::routing::get;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicI64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tessera_guard::error::Reason;
use tessera_guard::{Clock, Guard, GuardConfig, GuardError, Principal, RequireScope};
use tower::ServiceExt;

const AUD: &str = "https://notes.example";
const NOW: i64 = 1_800_000_000;

struct FixedClock(AtomicI64);
impl Clock for FixedClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// An ES256 signing key with its public JWK.
struct Key {
    kid: String,
    enc: EncodingKey,
    jwk: Jwk,
}

impl Key {
    fn new(kid: &str) -> Self {
        let der = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap().to_pkcs8v1().unwrap().as_ref().to_vec();
        let enc = EncodingKey::from_ec_der(&der);
        let mut jwk = Jwk::from_encoding_key(&enc, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some(kid.to_string());
        Self { kid: kid.to_string(), enc, jwk }
    }

    fn sign_with(&self, header: Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.enc).unwrap()
    }

    /// An access token as Tessera issues it (RFC 9068 §2).
    fn sign(&self, claims: &Value) -> String {
        self.sign_with(at_header(&self.kid), claims)
    }
}

fn at_header(kid: &str) -> Header {
    let mut h = Header::new(Algorithm::ES256);
    h.typ = Some("at+jwt".into());
    h.kid = Some(kid.into());
    h
}

/// An issuer stand-in: metadata + JWKS, counting JWKS fetches; keys replaceable.
struct Issuer {
    url: String,
    keys: Arc<Mutex<Vec<Jwk>>>,
    fetches: Arc<AtomicUsize>,
}

impl Issuer {
    async fn start(keys: Vec<Jwk>) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let keys = Arc::new(Mutex::new(keys));
        let fetches = Arc::new(AtomicUsize::new(0));
        let (k, f, u) = (keys.clone(), fetches.clone(), url.clone());
        let app = Router::new()
            .route(
                "/.well-known/oauth-authorization-server",
                get(move || async move { axum::Json(json!({"issuer": u, "jwks_uri": format!("{u}/jwks.json")})) }),
            )
            .route(
                "/jwks.json",
                get(move || async move {
                    f.fetch_add(1, Ordering::SeqCst);
                    let set = JwkSet { keys: k.lock().unwrap().clone() };
                    axum::Json(set)
                }),
            );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { url, keys, fetches }
    }
    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }
}

fn claims(iss: &str) -> Value {
    json!({"iss": iss, "sub": "user-1", "aud": AUD, "exp": NOW + 600, "iat": NOW, "jti": "j1", "client_id": "app-1", "scope": "notes.read notes.write"})
}

fn config(iss: &Issuer) -> GuardConfig {
    GuardConfig::new(&iss.url, AUD).with_clock(Arc::new(FixedClock(AtomicI64::new(NOW)))).with_min_refetch_interval(Duration::from_secs(60))
}

async fn setup() -> (Issuer, Key, Guard) {
    let key = Key::new("k1");
    let iss = Issuer::start(vec![key.jwk.clone()]).await;
    let guard = Guard::new(config(&iss)).unwrap();
    (iss, key, guard)
}

/// One check: `claims` edited by `edit`, signed by the issuer's key, expected outcome.
async fn check(edit: impl FnOnce(&mut Value), want: Result<(), Reason>) {
    let (iss, key, guard) = setup().await;
    let mut c = claims(&iss.url);
    edit(&mut c);
    let got = guard.verify(&key.sign(&c)).await;
    match want {
        Ok(()) => assert!(got.is_ok(), "expected acceptance of {c}, got {got:?}"),
        Err(r) => assert_eq!(got, Err(GuardError::InvalidToken(r)), "{c}"),
    }
}

#[tokio::test]
async fn valid_token_gives_the_principal() {
    let (iss, key, guard) = setup().await;
    let p = guard.verify(&key.sign(&claims(&iss.url))).await.unwrap();
    assert_eq!(
        p,
        Principal {
            subject: "user-1".into(),
            client_id: "app-1".into(),
            scopes: vec!["notes.read".into(), "notes.write".into()],
            expires_at: NOW + 600,
            token_id: Some("j1".into()),
            dpop_jkt: None,
            roles: vec![],
        }
    );
}

/// Tessera's `roles` claim: exposed on the principal, demanded per route by `RequireRole`
/// (403 `insufficient_scope` naming the role); a claim that is not an array of strings grants
/// no role.
#[tokio::test]
async fn roles_per_route() {
    let (iss, key, guard) = setup().await;
    let app = Router::new()
        .route("/edit", get(notes.layer(tessera_guard::RequireRole("editor"))))
        .route("/who", get(|p: Principal| async move { p.roles.join(",") }))
        .layer(guard.layer());
    let with = |roles: Value| {
        let mut c = claims(&iss.url);
        c["roles"] = roles;
        format!("Bearer {}", key.sign(&c))
    };
    let editor = with(json!(["editor", "viewer"]));
    assert_eq!(call(&app, "GET", "/edit", Some(&editor)).await.0, StatusCode::OK);
    assert_eq!(call(&app, "GET", "/who", Some(&editor)).await.2, json!("editor,viewer"));
    for (roles, what) in [(json!(["viewer"]), "another role"), (json!("editor"), "a string, not an array"), (json!([7, {"r": "editor"}]), "no strings")] {
        let (status, www, body) = call(&app, "GET", "/edit", Some(&with(roles))).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}");
        assert!(www.unwrap().starts_with("Bearer error=\"insufficient_scope\""), "{what}");
        assert_eq!(body["role"], "editor", "{what}");
    }
    let plain = format!("Bearer {}", key.sign(&claims(&iss.url)));
    assert_eq!(call(&app, "GET", "/edit", Some(&plain)).await.0, StatusCode::FORBIDDEN, "no roles claim");
    assert_eq!(call(&app, "GET", "/who", Some(&plain)).await.2, json!(""));
    assert_eq!(guard.stats().insufficient_scope, 4, "role refusals are counted with scope refusals");
}

/// RFC 7519 §4.1.4 with the configured leeway (30 s).
#[tokio::test]
async fn expired() {
    check(|c| c["exp"] = json!(NOW - 31), Err(Reason::Expired)).await;
    check(|c| c["exp"] = json!(NOW - 30), Err(Reason::Expired)).await;
    check(|c| c["exp"] = json!(NOW - 29), Ok(())).await;
    check(|c| c["exp"] = json!("soon"), Err(Reason::Claims)).await;
}

/// RFC 7519 §4.1.5 (`nbf`) and an `iat` in the future, with leeway.
#[tokio::test]
async fn not_yet_valid() {
    check(|c| c["nbf"] = json!(NOW + 31), Err(Reason::NotYetValid)).await;
    check(|c| c["nbf"] = json!(NOW + 30), Ok(())).await;
    check(|c| c["iat"] = json!(NOW + 120), Err(Reason::NotYetValid)).await;
}

/// RFC 9068 §4: aud must contain this API's identifier.
#[tokio::test]
async fn wrong_aud() {
    check(|c| c["aud"] = json!("https://other.example"), Err(Reason::Audience)).await;
    check(|c| c["aud"] = json!(["https://other.example"]), Err(Reason::Audience)).await;
    check(|c| c["aud"] = json!(["https://other.example", AUD]), Ok(())).await;
    check(|c| c.as_object_mut().unwrap().remove("aud").map(|_| ()).unwrap(), Err(Reason::Claims)).await;
}

/// RFC 9068 §4: iss must match exactly.
#[tokio::test]
async fn wrong_iss() {
    check(|c| c["iss"] = json!("https://evil.example"), Err(Reason::Issuer)).await;
    check(|c| c["iss"] = json!(format!("{}/", c["iss"].as_str().unwrap())), Err(Reason::Issuer)).await;
}

#[tokio::test]
async fn missing_required_claims() {
    for claim in ["sub", "client_id", "exp", "iss"] {
        check(|c| drop(c.as_object_mut().unwrap().remove(claim)), Err(Reason::Claims)).await;
    }
}

/// A token signed by another key under the issuer's kid, and a tampered payload.
#[tokio::test]
async fn bad_signature() {
    let (iss, key, guard) = setup().await;
    let impostor = Key::new("k1");
    assert_eq!(guard.verify(&impostor.sign(&claims(&iss.url))).await, Err(GuardError::InvalidToken(Reason::Signature)));
    let good = key.sign(&claims(&iss.url));
    let mut other = claims(&iss.url);
    other["sub"] = json!("admin");
    let parts: Vec<&str> = good.split('.').collect();
    let forged = format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(other.to_string()), parts[2]);
    assert_eq!(guard.verify(&forged).await, Err(GuardError::InvalidToken(Reason::Signature)));
    assert_eq!(guard.verify(&format!("{}.{}.", parts[0], parts[1])).await, Err(GuardError::InvalidToken(Reason::Signature)));
}

fn unsigned(header: Value, claims: &Value) -> String {
    format!("{}.{}", URL_SAFE_NO_PAD.encode(header.to_string()), URL_SAFE_NO_PAD.encode(claims.to_string()))
}

/// RFC 8725 §3.1: `alg: none` is refused, with or without a signature part.
#[tokio::test]
async fn alg_none() {
    let (iss, _key, guard) = setup().await;
    for alg in ["none", "None", "NONE"] {
        let t = unsigned(json!({"alg": alg, "typ": "at+jwt", "kid": "k1"}), &claims(&iss.url));
        assert_eq!(guard.verify(&format!("{t}.")).await, Err(GuardError::InvalidToken(Reason::Algorithm)), "{alg}");
        assert_eq!(guard.verify(&format!("{t}.c2ln")).await, Err(GuardError::InvalidToken(Reason::Algorithm)), "{alg}");
    }
    assert_eq!(iss.fetches(), 0, "no key fetch for a token refused on its header");
}

/// RFC 8725 §2.1: an HS256 "signature" made with the issuer's public key as the HMAC secret is
/// refused, even when HS256 is (wrongly) configured as allowed.
#[tokio::test]
async fn hmac_with_public_key_confusion() {
    let (iss, key, _) = setup().await;
    let guard = Guard::new(config(&iss).with_algorithms(&[Algorithm::ES256, Algorithm::HS256])).unwrap();
    assert!(!guard.config().algorithms.contains(&Algorithm::HS256), "HMAC is removed from the allow-list");
    assert!(Guard::new(config(&iss).with_algorithms(&[Algorithm::HS256])).is_err(), "an HMAC-only allow-list is a configuration error");
    let public_forms = [serde_json::to_vec(&key.jwk).unwrap(), serde_json::to_string(&JwkSet { keys: vec![key.jwk.clone()] }).unwrap().into_bytes()];
    for secret in public_forms {
        let mut h = Header::new(Algorithm::HS256);
        h.typ = Some("at+jwt".into());
        h.kid = Some("k1".into());
        let forged = jsonwebtoken::encode(&h, &claims(&iss.url), &EncodingKey::from_secret(&secret)).unwrap();
        assert_eq!(guard.verify(&forged).await, Err(GuardError::InvalidToken(Reason::Algorithm)));
    }
    // An `oct` key published in the JWKS is never used either.
    let oct: Jwk = serde_json::from_value(json!({"kty": "oct", "kid": "sym", "k": URL_SAFE_NO_PAD.encode(b"shared secret")})).unwrap();
    guard.set_keys(&JwkSet { keys: vec![key.jwk.clone(), oct] });
    let mut h = Header::new(Algorithm::HS256);
    h.typ = Some("at+jwt".into());
    h.kid = Some("sym".into());
    let forged = jsonwebtoken::encode(&h, &claims(&iss.url), &EncodingKey::from_secret(b"shared secret")).unwrap();
    assert_eq!(guard.verify(&forged).await, Err(GuardError::InvalidToken(Reason::Algorithm)));
}

/// A kid naming an ES256 key cannot be used with another algorithm of the allow-list.
#[tokio::test]
async fn algorithm_must_match_the_key() {
    let (iss, _key, guard) = setup().await;
    let t = unsigned(json!({"alg": "ES384", "typ": "at+jwt", "kid": "k1"}), &claims(&iss.url));
    assert_eq!(guard.verify(&format!("{t}.AAAA")).await, Err(GuardError::InvalidToken(Reason::Algorithm)));
}

/// RFC 9068 §4: typ must be at+jwt (an ID token or a plain JWT is refused); RFC 7515 §4.1.11.
#[tokio::test]
async fn wrong_typ_and_crit() {
    let (iss, key, guard) = setup().await;
    for typ in [None, Some("JWT"), Some("jwt"), Some("id_token+jwt")] {
        let mut h = at_header("k1");
        h.typ = typ.map(str::to_string);
        assert_eq!(guard.verify(&key.sign_with(h, &claims(&iss.url))).await, Err(GuardError::InvalidToken(Reason::Type)), "{typ:?}");
    }
    let mut h = at_header("k1");
    h.typ = Some("application/AT+JWT".into());
    assert!(guard.verify(&key.sign_with(h, &claims(&iss.url))).await.is_ok());
    let mut h = at_header("k1");
    h.crit = Some(vec!["exp".into()]);
    assert_eq!(guard.verify(&key.sign_with(h, &claims(&iss.url))).await, Err(GuardError::InvalidToken(Reason::Critical)));
}

#[tokio::test]
async fn malformed_tokens() {
    let (_iss, _key, guard) = setup().await;
    for t in ["", "abc", "a.b", "a.b.c.d", "!!.b.c", "e30.e30.e30"] {
        let got = guard.verify(t).await;
        assert!(matches!(got, Err(GuardError::InvalidToken(Reason::Malformed | Reason::Algorithm))), "{t}: {got:?}");
    }
}

/// An unknown kid triggers one refetch; within the interval another unknown kid triggers none
/// (a flood cannot hammer the issuer), and both are refused.
#[tokio::test]
async fn unknown_kid_refetches_once_then_refuses() {
    let (iss, key, guard) = setup().await;
    guard.verify(&key.sign(&claims(&iss.url))).await.unwrap();
    assert_eq!(iss.fetches(), 1, "first request loads the keys");
    let stranger = Key::new("k-unknown");
    assert_eq!(guard.verify(&stranger.sign(&claims(&iss.url))).await, Err(GuardError::InvalidToken(Reason::UnknownKey)));
    assert_eq!(iss.fetches(), 2, "one refetch for the unknown kid");
    let mut flood = Vec::new();
    for i in 0..50 {
        let k = Key::new(&format!("flood-{i}"));
        let g = guard.clone();
        let t = k.sign(&claims(&iss.url));
        flood.push(tokio::spawn(async move { g.verify(&t).await }));
    }
    for f in flood {
        assert_eq!(f.await.unwrap(), Err(GuardError::InvalidToken(Reason::UnknownKey)));
    }
    assert_eq!(iss.fetches(), 2, "no refetch within the minimum interval");
    assert_eq!(guard.stats().key_fetches, 2);
}

/// Keys rotated at the issuer are picked up without a restart: a token under a new kid causes
/// one refetch and is accepted; concurrent requests share that fetch.
#[tokio::test]
async fn rotated_key_is_picked_up() {
    let (iss, key, _) = setup().await;
    let guard = Guard::new(config(&iss).with_min_refetch_interval(Duration::from_millis(0))).unwrap();
    guard.verify(&key.sign(&claims(&iss.url))).await.unwrap();
    let next = Key::new("k2");
    iss.keys.lock().unwrap().push(next.jwk.clone());
    let t = next.sign(&claims(&iss.url));
    let mut all = Vec::new();
    for _ in 0..10 {
        let (g, t) = (guard.clone(), t.clone());
        all.push(tokio::spawn(async move { g.verify(&t).await }));
    }
    for r in all {
        r.await.unwrap().unwrap();
    }
    assert_eq!(iss.fetches(), 2, "one load, then one shared refetch (single flight)");
    guard.verify(&key.sign(&claims(&iss.url))).await.unwrap();
}

/// Once cached, validation makes no network call, however many requests.
#[tokio::test]
async fn no_network_on_the_hot_path() {
    let (iss, key, guard) = setup().await;
    guard.refresh().await.unwrap();
    let t = key.sign(&claims(&iss.url));
    for _ in 0..200 {
        guard.verify(&t).await.unwrap();
    }
    assert_eq!(iss.fetches(), 1);
    assert_eq!(guard.stats().accepted, 200);
}

/// Stale keys are refreshed in the background: a key removed at the issuer stops verifying.
#[tokio::test]
async fn removed_key_disappears_after_background_refresh() {
    let (iss, key, _) = setup().await;
    let guard = Guard::new(config(&iss).with_min_refetch_interval(Duration::ZERO).with_max_key_age(Duration::ZERO)).unwrap();
    let t = key.sign(&claims(&iss.url));
    guard.verify(&t).await.unwrap();
    iss.keys.lock().unwrap().clear();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        match guard.verify(&t).await {
            Err(GuardError::InvalidToken(Reason::UnknownKey)) => break,
            Ok(_) => assert!(std::time::Instant::now() < deadline, "the removed key was never dropped"),
            other => panic!("{other:?}"),
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// RFC 8414 §3.3: metadata naming another issuer is not trusted; an unreachable issuer with
/// nothing cached answers 503, not 401.
#[tokio::test]
async fn discovery_failures() {
    let (iss, key, _) = setup().await;
    let liar = Guard::new(GuardConfig::new(&format!("{}/", iss.url), AUD)).unwrap();
    assert!(liar.refresh().await.is_err(), "metadata issuer without the slash is another issuer");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let dead = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let guard = Guard::new(GuardConfig::new(&dead, AUD)).unwrap();
    assert_eq!(guard.verify(&key.sign(&claims(&dead))).await, Err(GuardError::KeysUnavailable));
    assert_eq!(GuardError::KeysUnavailable.into_response_status(), StatusCode::SERVICE_UNAVAILABLE);
}

/// Finding 14 (issue 13): RFC 8414 §2, the issuer "uses the https scheme". Over plain http on a
/// network, whoever is on the path serves the keys and mints accepted tokens; so http is
/// refused off loopback unless the operator says otherwise, for the issuer, a configured
/// `jwks_uri`, and one the metadata names.
#[tokio::test]
async fn regression_guard_refuses_http_issuer_off_loopback_rfc8414_2() {
    for issuer in ["http://id.example", "http://10.0.0.5:8080", "http://[2001:db8::1]", "http://127.0.0.1.example"] {
        let e = Guard::new(GuardConfig::new(issuer, AUD)).err().unwrap_or_else(|| panic!("{issuer} accepted"));
        let msg = e.to_string();
        assert!(matches!(e, tessera_guard::ConfigError::InsecureIssuer(_)) && msg.contains("https") && msg.contains("allow_insecure_http"), "{issuer}: {msg}");
        assert!(Guard::new(GuardConfig::new(issuer, AUD).allow_insecure_http(true)).is_ok(), "{issuer} explicitly allowed");
    }
    for issuer in ["https://id.example", "http://127.0.0.1:8080", "http://127.8.9.10", "http://[::1]:9000", "http://localhost:8080/tenant"] {
        assert!(Guard::new(GuardConfig::new(issuer, AUD)).is_ok(), "{issuer}");
    }
    let Err(e) = Guard::new(GuardConfig::new("https://id.example", AUD).with_jwks_uri("http://id.example/jwks.json")) else {
        panic!("http jwks_uri off loopback accepted")
    };
    assert!(matches!(e, tessera_guard::ConfigError::InsecureJwksUri(_)), "{e}");

    // A loopback issuer whose metadata sends the keys' fetch to plain http elsewhere.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let u = url.clone();
    let app = Router::new().route(
        "/.well-known/oauth-authorization-server",
        get(move || async move { axum::Json(json!({"issuer": u, "jwks_uri": "http://192.0.2.1/jwks.json"})) }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let guard = Guard::new(GuardConfig::new(&url, AUD)).unwrap();
    let started = std::time::Instant::now();
    let e = guard.refresh().await.unwrap_err();
    assert!(matches!(e, tessera_guard::keys::FetchError::Insecure { .. }), "{e}");
    assert!(started.elapsed() < Duration::from_secs(2), "refused without trying the insecure URL");
}

trait Status {
    fn into_response_status(self) -> StatusCode;
}
impl Status for GuardError {
    fn into_response_status(self) -> StatusCode {
        axum::response::IntoResponse::into_response(self).status()
    }
}

// ---- over HTTP: RFC 6750 §3 responses through the layers ----

async fn notes(p: Principal) -> String {
    format!("notes of {} via {}", p.subject, p.client_id)
}

fn app(guard: &Guard) -> Router {
    Router::new()
        .route(
            "/notes",
            get(notes.layer(RequireScope("notes.read"))).post(notes.layer(RequireScope("notes.write"))).delete(notes.layer(RequireScope("notes.delete"))),
        )
        .route("/admin", get(notes).route_layer(guard.require("notes.admin")))
        .layer(guard.layer())
}

async fn call(app: &Router, method: &str, uri: &str, auth: Option<&str>) -> (StatusCode, Option<String>, Value) {
    let mut req = Request::builder().method(method).uri(uri);
    if let Some(a) = auth {
        req = req.header(header::AUTHORIZATION, a);
    }
    let res = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = res.status();
    let www = res.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_string());
    let body = axum::body::to_bytes(res.into_body(), 1 << 16).await.unwrap();
    let body = serde_json::from_slice(&body).unwrap_or(Value::String(String::from_utf8_lossy(&body).into_owned()));
    (status, www, body)
}

#[tokio::test]
async fn scopes_per_route_and_the_principal_extractor() {
    let (iss, key, guard) = setup().await;
    let app = app(&guard);
    let bearer = format!("Bearer {}", key.sign(&claims(&iss.url)));
    let (s, _, body) = call(&app, "GET", "/notes", Some(&bearer)).await;
    assert_eq!((s, body), (StatusCode::OK, json!("notes of user-1 via app-1")));
    assert_eq!(call(&app, "POST", "/notes", Some(&bearer)).await.0, StatusCode::OK);
}

/// RFC 6750 §3.1 insufficient_scope: 403 naming the scope needed.
#[tokio::test]
async fn missing_scope() {
    let (iss, key, guard) = setup().await;
    let app = app(&guard);
    let bearer = format!("Bearer {}", key.sign(&claims(&iss.url)));
    let (s, www, body) = call(&app, "DELETE", "/notes", Some(&bearer)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    let www = www.unwrap();
    assert!(www.starts_with("Bearer error=\"insufficient_scope\""), "{www}");
    assert!(www.contains("scope=\"notes.delete\""), "{www}");
    assert_eq!(body["error"], "insufficient_scope");
    assert_eq!(body["scope"], "notes.delete");
    let (s, www, _) = call(&app, "GET", "/admin", Some(&bearer)).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(www.unwrap().contains("scope=\"notes.admin\""));
    assert_eq!(guard.stats().insufficient_scope, 2);
}

/// RFC 6750 §3.1 invalid_request: 400 for malformed credentials and the query placement; no
/// credentials at all: 401 with a bare challenge.
#[tokio::test]
async fn malformed_header() {
    let (iss, key, guard) = setup().await;
    let app = app(&guard);
    for bad in ["Bearer", "Bearer ", "Bearer a b", "Bearer \"x\""] {
        let (s, www, body) = call(&app, "GET", "/notes", Some(bad)).await;
        assert_eq!(s, StatusCode::BAD_REQUEST, "{bad}");
        assert!(www.unwrap().starts_with("Bearer error=\"invalid_request\""));
        assert_eq!(body["error"], "invalid_request");
    }
    let t = key.sign(&claims(&iss.url));
    let (s, _, _) = call(&app, "GET", &format!("/notes?access_token={t}"), None).await;
    assert_eq!(s, StatusCode::BAD_REQUEST, "RFC 6750 §2.3 placement refused");
    let (s, www, body) = call(&app, "GET", "/notes", None).await;
    assert_eq!((s, www.as_deref()), (StatusCode::UNAUTHORIZED, Some("Bearer")));
    assert!(body.get("error").is_none(), "no error code without credentials: {body}");
    let (s, www, _) = call(&app, "GET", "/notes", Some("Basic dXNlcjpwYXNz")).await;
    assert_eq!((s, www.as_deref()), (StatusCode::UNAUTHORIZED, Some("Bearer")));
}

/// RFC 6750 §3.1 invalid_token: 401 with the error in WWW-Authenticate.
#[tokio::test]
async fn bad_token_is_401_invalid_token() {
    let (iss, key, guard) = setup().await;
    let app = app(&guard);
    let mut c = claims(&iss.url);
    c["exp"] = json!(NOW - 3600);
    let (s, www, body) = call(&app, "GET", "/notes", Some(&format!("Bearer {}", key.sign(&c)))).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    assert_eq!(www.unwrap(), "Bearer error=\"invalid_token\", error_description=\"the access token expired\"");
    assert_eq!(body["error"], "invalid_token");
    let st = guard.stats();
    assert_eq!((st.invalid_token, st.expired), (1, 1));
}

/// The extractor and RequireScope fail closed without the guard layer.
#[tokio::test]
async fn not_installed_fails_closed() {
    let app = Router::new().route("/a", get(notes)).route("/b", get((|| async { "open" }).layer(RequireScope("notes.read"))));
    assert_eq!(call(&app, "GET", "/a", None).await.0, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(call(&app, "GET", "/b", None).await.0, StatusCode::INTERNAL_SERVER_ERROR);
}

/// A token verified once is remembered, but its expiry is checked on every request, and it is
/// forgotten when the keys change.
#[tokio::test]
async fn verified_tokens_are_rechecked_in_time_and_forgotten_with_their_key() {
    let key = Key::new("k1");
    let iss = Issuer::start(vec![key.jwk.clone()]).await;
    let clock = Arc::new(FixedClock(AtomicI64::new(NOW)));
    let guard = Guard::new(GuardConfig::new(&iss.url, AUD).with_clock(clock.clone())).unwrap();
    let t = key.sign(&claims(&iss.url));
    guard.verify(&t).await.unwrap();
    guard.verify(&t).await.unwrap();
    clock.0.store(NOW + 600 + 30, Ordering::SeqCst);
    assert_eq!(guard.verify(&t).await, Err(GuardError::InvalidToken(Reason::Expired)), "a remembered token still expires");
    clock.0.store(NOW, Ordering::SeqCst);
    guard.verify(&t).await.unwrap();
    // Without the cache, the same rules hold.
    let plain = Guard::new(GuardConfig::new(&iss.url, AUD).with_clock(clock.clone()).with_verified_cache_capacity(0)).unwrap();
    plain.verify(&t).await.unwrap();
    plain.verify(&t).await.unwrap();
    let other = Key::new("k2");
    *iss.keys.lock().unwrap() = vec![other.jwk.clone()];
    guard.refresh().await.unwrap();
    assert_eq!(guard.verify(&t).await, Err(GuardError::InvalidToken(Reason::UnknownKey)), "a remembered token dies with its key");
}

// ---- RFC 9728: Protected Resource Metadata ----

fn with_metadata(iss: &Issuer, audience: &str) -> Guard {
    let m = tessera_guard::ResourceMetadata { scopes_supported: vec!["notes.read".into(), "notes.write".into()], resource_name: Some("Notes".into()) };
    let c = GuardConfig { audience: audience.into(), ..config(iss) }.with_resource_metadata(m);
    Guard::new(c).unwrap()
}

/// RFC 9728 §3.1–3.3: the document is at the well-known URI made from the resource identifier
/// (the suffix between host and path), its `resource` is that identifier exactly, and it names
/// the authorization server, the header method and the scopes. Public: no token needed.
#[tokio::test]
async fn rfc9728_3_metadata_document_at_its_well_known_uri() {
    let key = Key::new("k1");
    let iss = Issuer::start(vec![key.jwk.clone()]).await;
    for (audience, path) in [(AUD, "/.well-known/oauth-protected-resource"), ("https://api.example/notes", "/.well-known/oauth-protected-resource/notes")] {
        let guard = with_metadata(&iss, audience);
        let app = app(&guard).merge(guard.metadata_router());
        let (s, www, body) = call(&app, "GET", path, None).await;
        assert_eq!((s, www), (StatusCode::OK, None), "{path}");
        assert_eq!(body["resource"], audience, "§3.3: the identifier the URI was made from");
        assert_eq!(body["authorization_servers"], json!([iss.url]));
        assert_eq!(body["bearer_methods_supported"], json!(["header"]));
        assert_eq!(body["scopes_supported"], json!(["notes.read", "notes.write"]));
        assert_eq!(body["resource_name"], "Notes");
        assert_eq!(body["dpop_bound_access_tokens_required"], false);
        assert!(body["dpop_signing_alg_values_supported"].as_array().unwrap().contains(&json!("ES256")));
        assert_eq!(call(&app, "GET", "/.well-known/oauth-protected-resource/other", None).await.0, StatusCode::NOT_FOUND);
    }
}

/// RFC 9728 §5.1: every 401 names the metadata in `resource_metadata`, the bare challenge and
/// `invalid_token` alike; 400 and 403 keep their RFC 6750 challenges; without metadata
/// configured the challenge is unchanged.
#[tokio::test]
async fn rfc9728_5_1_resource_metadata_in_the_401_challenge() {
    let key = Key::new("k1");
    let iss = Issuer::start(vec![key.jwk.clone()]).await;
    let guard = with_metadata(&iss, "https://api.example/notes");
    let url = "https://api.example/.well-known/oauth-protected-resource/notes";
    assert_eq!(guard.resource_metadata_url(), Some(url));
    let app = app(&guard);
    let (s, www, _) = call(&app, "GET", "/notes", None).await;
    assert_eq!((s, www.as_deref()), (StatusCode::UNAUTHORIZED, Some(format!("Bearer resource_metadata=\"{url}\"").as_str())));
    let (s, www, _) = call(&app, "GET", "/notes", Some("Bearer not.a.jwt")).await;
    assert_eq!(s, StatusCode::UNAUTHORIZED);
    let www = www.unwrap();
    assert!(www.starts_with("Bearer error=\"invalid_token\"") && www.ends_with(&format!(", resource_metadata=\"{url}\"")), "{www}");
    let mut c = claims(&iss.url);
    c["aud"] = json!("https://api.example/notes");
    let (s, www, _) = call(&app, "DELETE", "/notes", Some(&format!("Bearer {}", key.sign(&c)))).await;
    assert_eq!(s, StatusCode::FORBIDDEN);
    assert!(!www.unwrap().contains("resource_metadata"), "403 insufficient_scope is RFC 6750's");

    let plain = Guard::new(config(&iss)).unwrap();
    assert_eq!(plain.resource_metadata_url(), None);
    let plain_app = self::app(&plain).merge(plain.metadata_router());
    assert_eq!(call(&plain_app, "GET", "/notes", None).await.1.as_deref(), Some("Bearer"), "no metadata configured: unchanged");
    assert_eq!(call(&plain_app, "GET", "/.well-known/oauth-protected-resource", None).await.0, StatusCode::NOT_FOUND);
}

/// RFC 9728 §1.2: a resource identifier is an http(s) URL; metadata for any other audience is a
/// configuration error, not a document at a guessed address.
#[tokio::test]
async fn rfc9728_1_2_metadata_needs_a_url_identifier() {
    let iss = Issuer::start(vec![]).await;
    for audience in ["notes-api", "urn:example:notes", "https://api.example/?v=1"] {
        let c = GuardConfig { audience: audience.into(), ..config(&iss) }.with_resource_metadata(Default::default());
        assert!(matches!(Guard::new(c), Err(tessera_guard::ConfigError::ResourceIdentifier(_))), "{audience}");
    }
}

/// DPoP-bound tokens (RFC 9449 §7): accepted only with a proof of their key for this request.
mod dpop {
    use super::*;
    use tessera_dpop::testing::ProofSigner;
    use tessera_guard::RequireDpop;

    const BASE: &str = "https://api.example";

    fn bound_claims(iss: &str, jkt: &str) -> Value {
        let mut c = claims(iss);
        c["cnf"] = json!({"jkt": jkt});
        c
    }

    async fn guard(require: bool) -> (Issuer, Key, Guard) {
        let key = Key::new("k1");
        let iss = Issuer::start(vec![key.jwk.clone()]).await;
        let guard = Guard::new(config(&iss).with_public_base_url(BASE).require_dpop(require)).unwrap();
        (iss, key, guard)
    }

    fn router(guard: &Guard) -> Router {
        Router::new().route("/notes", get(notes.layer(RequireScope("notes.read"))).delete(notes.layer(RequireDpop))).layer(guard.layer())
    }

    async fn send(app: &Router, method: &str, auth: &str, proofs: &[String]) -> (StatusCode, String) {
        let mut req = Request::builder().method(method).uri("/notes?page=2").header(header::AUTHORIZATION, auth);
        for p in proofs {
            req = req.header("DPoP", p);
        }
        let res = app.clone().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
        let www = res.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
        (res.status(), www)
    }

    #[tokio::test]
    async fn rfc9449_7_a_bound_token_with_a_proof_for_this_request_is_accepted_once() {
        let (iss, key, guard) = guard(false).await;
        let dpop = ProofSigner::es256();
        let token = key.sign(&bound_claims(&iss.url, &dpop.thumbprint()));
        let app = router(&guard);
        let auth = format!("DPoP {token}");
        let proof = dpop.sign("GET", &format!("{BASE}/notes"), NOW, "p-1", Some(&token), None);
        assert_eq!(send(&app, "GET", &auth, std::slice::from_ref(&proof)).await.0, StatusCode::OK, "htu without the query");
        let (status, www) = send(&app, "GET", &auth, &[proof]).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(www.starts_with("DPoP error=\"invalid_dpop_proof\"") && www.contains("already used"), "{www}");
    }

    #[tokio::test]
    async fn rfc9449_7_each_refusal_answers_the_dpop_challenge() {
        let (iss, key, guard) = guard(false).await;
        let dpop = ProofSigner::es256();
        let token = key.sign(&bound_claims(&iss.url, &dpop.thumbprint()));
        let app = router(&guard);
        let auth = format!("DPoP {token}");
        let url = format!("{BASE}/notes");
        let cases: Vec<(&str, String, Vec<String>, &str)> = vec![
            ("no proof", auth.clone(), vec![], "invalid_dpop_proof"),
            (
                "two proofs",
                auth.clone(),
                vec![dpop.sign("GET", &url, NOW, "a", Some(&token), None), dpop.sign("GET", &url, NOW, "b", Some(&token), None)],
                "invalid_dpop_proof",
            ),
            ("wrong method", auth.clone(), vec![dpop.sign("POST", &url, NOW, "c", Some(&token), None)], "invalid_dpop_proof"),
            ("wrong URL", auth.clone(), vec![dpop.sign("GET", "https://api.example/other", NOW, "d", Some(&token), None)], "invalid_dpop_proof"),
            ("wrong ath", auth.clone(), vec![dpop.sign("GET", &url, NOW, "e", Some("another token"), None)], "invalid_dpop_proof"),
            ("stale iat", auth.clone(), vec![dpop.sign("GET", &url, NOW - 61, "f", Some(&token), None)], "invalid_dpop_proof"),
            ("another key", auth.clone(), vec![ProofSigner::es256().sign("GET", &url, NOW, "g", Some(&token), None)], "invalid_dpop_proof"),
            ("bound token as Bearer", format!("Bearer {token}"), vec![], "invalid_token"),
        ];
        for (what, authorization, proofs, code) in cases {
            let (status, www) = send(&app, "GET", &authorization, &proofs).await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{what}");
            assert!(www.starts_with(&format!("DPoP error=\"{code}\"")), "{what}: {www}");
            assert!(www.contains("algs=\"ES256"), "{what}: {www}");
        }
        // An unbound token with the DPoP scheme.
        let bearer_token = key.sign(&claims(&iss.url));
        let (status, www) = send(&app, "GET", &format!("DPoP {bearer_token}"), &[dpop.sign("GET", &url, NOW, "h", Some(&bearer_token), None)]).await;
        assert_eq!((status, www.starts_with("DPoP error=\"invalid_token\"")), (StatusCode::UNAUTHORIZED, true), "{www}");
        // Bearer tokens keep working, except where the route requires DPoP.
        assert_eq!(send(&app, "GET", &format!("Bearer {bearer_token}"), &[]).await.0, StatusCode::OK);
        let (status, www) = send(&app, "DELETE", &format!("Bearer {bearer_token}"), &[]).await;
        assert_eq!((status, www.starts_with("DPoP algs=")), (StatusCode::UNAUTHORIZED, true), "RequireDpop: {www}");
        let del = dpop.sign("DELETE", &url, NOW, "i", Some(&token), None);
        assert_eq!(send(&app, "DELETE", &auth, &[del]).await.0, StatusCode::OK, "RequireDpop with a bound token");
    }

    #[tokio::test]
    async fn a_guard_that_requires_dpop_refuses_bearer_tokens() {
        let (iss, key, guard) = guard(true).await;
        let app = router(&guard);
        let (status, www) = send(&app, "GET", &format!("Bearer {}", key.sign(&claims(&iss.url))), &[]).await;
        assert_eq!((status, www.starts_with("DPoP algs=")), (StatusCode::UNAUTHORIZED, true), "{www}");
    }
}
