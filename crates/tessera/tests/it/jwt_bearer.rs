//! The JWT bearer grant (RFC 7523 §2.1) over real HTTP: a confidential client signs an
//! assertion with a key it registered (`--jwks`) and gets an access token for a user who
//! consented to it — once per assertion, never beyond the consent, never for another client.

use crate::common::*;
use serde_json::{Value, json};
use tessera_dpop::testing::ProofSigner;
use tessera_server::service::admin::{self, NewClient};

const REDIRECT: &str = "https://app.example/cb";
const GRANT: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";

struct Service {
    id: String,
    secret: String,
    key: ProofSigner,
}

/// A confidential client of the code grant and the JWT bearer grant, with one ES256 key.
async fn service(s: &TestServer) -> Service {
    let key = ProofSigner::es256();
    let mut jwk = key.jwk();
    jwk["kid"] = json!("k1");
    let c = s
        .client(NewClient {
            name: "Mail Sync".into(),
            redirect_uris: vec![REDIRECT.into()],
            scope: "notes.read notes.write".into(),
            grant_types: vec!["authorization_code".into(), GRANT.into()],
            jwks: Some(json!({ "keys": [jwk] }).to_string()),
            ..Default::default()
        })
        .await;
    Service { id: c.client.client_id, secret: c.client_secret.unwrap(), key }
}

fn now(s: &TestServer) -> i64 {
    tessera_server::Clock::now(&*s.clock)
}

async fn user_id(s: &TestServer, username: &str) -> String {
    s.svc.store.find_user_by_username(username).await.unwrap().unwrap().id
}

/// The claims of a good assertion by `c` for `sub`.
fn claims(s: &TestServer, c: &Service, sub: &str) -> Value {
    json!({"iss": c.id, "sub": sub, "aud": format!("{}/token", s.url), "iat": now(s), "exp": now(s) + 300, "jti": rand::random::<u64>().to_string()})
}

fn sign(c: &Service, claims: &Value) -> String {
    c.key.sign_raw(&json!({"alg": "ES256", "kid": "k1", "typ": "JWT"}), claims)
}

/// Alice grants the client `scope` on the consent page (the code is left unused).
async fn consent(s: &TestServer, c: &Service, scope: &str) {
    let url = s.authorize_url(&c.id, REDIRECT, scope, "st", None);
    let back = Browser::new(&s.url).authorize_and_allow(&url).await;
    assert!(query(&back).contains_key("code"), "{back}");
}

async fn exchange(s: &TestServer, c: &Service, assertion: &str, scope: Option<&str>) -> (u16, Value) {
    let mut form = vec![("grant_type", GRANT), ("assertion", assertion)];
    if let Some(sc) = scope {
        form.push(("scope", sc));
    }
    let (status, body, _) = token_basic(&s.url, &c.id, &c.secret, &form).await;
    (status, body)
}

fn error_of(r: &(u16, Value)) -> (u16, &str) {
    (r.0, r.1["error"].as_str().unwrap_or(""))
}

#[tokio::test]
async fn rfc7523_2_1_an_assertion_for_a_consenting_user_buys_one_access_token() {
    let s = TestServer::start().await;
    let c = service(&s).await;
    consent(&s, &c, "notes.read").await;
    let alice = user_id(&s, USER).await;
    let (status, body) = exchange(&s, &c, &sign(&c, &claims(&s, &c, &alice)), None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert_eq!(body["scope"], "notes.read", "what alice consented to, no more");
    assert!(body.get("refresh_token").is_none() && body.get("id_token").is_none(), "{body}");
    let at = verify_access_token(&s.url, body["access_token"].as_str().unwrap(), API).await;
    assert_eq!((at["sub"].as_str(), at["client_id"].as_str()), (Some(alice.as_str()), Some(c.id.as_str())));
    // The metadata names the grant (RFC 8414 §2 grant_types_supported).
    let meta: Value = reqwest::get(format!("{}/.well-known/oauth-authorization-server", s.url)).await.unwrap().json().await.unwrap();
    assert!(meta["grant_types_supported"].as_array().unwrap().contains(&json!(GRANT)), "{meta}");
    // The aud may also be the issuer identifier (RFC 7523 §3 item 3).
    let mut by_issuer = claims(&s, &c, &alice);
    by_issuer["aud"] = json!([s.url]);
    assert_eq!(exchange(&s, &c, &sign(&c, &by_issuer), None).await.0, 200);
}

/// §3 item 7: each `jti` is accepted once — replayed, or sent 20 times at once, one wins.
#[tokio::test]
async fn rfc7523_3_7_an_assertion_is_single_use_even_in_parallel() {
    let s = TestServer::start().await;
    let c = service(&s).await;
    consent(&s, &c, "notes.read").await;
    let alice = user_id(&s, USER).await;
    let assertion = sign(&c, &claims(&s, &c, &alice));
    assert_eq!(exchange(&s, &c, &assertion, None).await.0, 200);
    let replay = exchange(&s, &c, &assertion, None).await;
    assert_eq!(error_of(&replay), (400, "invalid_grant"), "{replay:?}");
    assert!(replay.1["error_description"].as_str().unwrap().contains("already used"));

    let racing = sign(&c, &claims(&s, &c, &alice));
    let (url, id, secret) = (s.url.clone(), c.id.clone(), c.secret.clone());
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (url, id, secret, racing) = (url.clone(), id.clone(), secret.clone(), racing.clone());
        racers.spawn(async move {
            let (status, body, _) = token_basic(&url, &id, &secret, &[("grant_type", GRANT), ("assertion", &racing)]).await;
            (status, body)
        });
    }
    let results: Vec<(u16, Value)> = racers.join_all().await;
    let won = results.iter().filter(|r| r.0 == 200).count();
    assert_eq!(won, 1, "exactly one of 20 concurrent redemptions wins: {results:?}");
    assert!(results.iter().all(|r| r.0 == 200 || error_of(r) == (400, "invalid_grant")), "{results:?}");
    let events = s.svc.store.list_audit_events("assertion_replay").await.unwrap();
    assert_eq!(events.len(), 20, "every replay is audited: {events:?}");
}

/// Another client can neither use an assertion nor sign one in this client's name; a refused
/// attempt consumes nothing.
#[tokio::test]
async fn rfc7523_3_another_client_cannot_use_or_forge_an_assertion() {
    let s = TestServer::start().await;
    let (a, b) = (service(&s).await, service(&s).await);
    consent(&s, &a, "notes.read").await;
    let alice = user_id(&s, USER).await;
    let assertion = sign(&a, &claims(&s, &a, &alice));
    // B presents A's assertion: its signature does not verify with B's keys.
    let stolen = exchange(&s, &b, &assertion, None).await;
    assert_eq!(error_of(&stolen), (400, "invalid_grant"), "{stolen:?}");
    // B signs with its own key in A's name: iss is not the authenticated client.
    let forged = exchange(&s, &b, &sign(&b, &claims(&s, &a, &alice)), None).await;
    assert_eq!(error_of(&forged), (400, "invalid_grant"), "{forged:?}");
    assert!(forged.1["error_description"].as_str().unwrap().contains("iss"), "{forged:?}");
    // B signs for itself: alice never consented to B.
    let unconsented = exchange(&s, &b, &sign(&b, &claims(&s, &b, &alice)), None).await;
    assert_eq!(error_of(&unconsented), (400, "invalid_grant"), "{unconsented:?}");
    // A's assertion is still good: nothing above consumed it.
    assert_eq!(exchange(&s, &a, &assertion, None).await.0, 200);
    // Without client authentication nothing happens (RFC 6749 §3.2.1).
    let (status, body, _) = token_form(&s.url, &[("grant_type", GRANT), ("assertion", &sign(&a, &claims(&s, &a, &alice))), ("client_id", &a.id)]).await;
    assert_eq!((status, body["error"].as_str()), (401, Some("invalid_client")), "{body}");
}

/// Nothing is released that the user never consented to (the review's finding of a parameter
/// that did), and only users of this server are subjects.
#[tokio::test]
async fn scopes_are_bounded_by_the_users_consent() {
    let s = TestServer::start().await;
    let c = service(&s).await;
    consent(&s, &c, "notes.read").await;
    let alice = user_id(&s, USER).await;
    let more = exchange(&s, &c, &sign(&c, &claims(&s, &c, &alice)), Some("notes.read notes.write")).await;
    assert_eq!(error_of(&more), (400, "invalid_scope"), "notes.write is registered but not consented: {more:?}");
    let unregistered = exchange(&s, &c, &sign(&c, &claims(&s, &c, &alice)), Some("notes.delete")).await;
    assert_eq!(error_of(&unregistered), (400, "invalid_scope"), "{unregistered:?}");
    let narrower = exchange(&s, &c, &sign(&c, &claims(&s, &c, &alice)), Some("notes.read")).await;
    assert_eq!((narrower.0, narrower.1["scope"].as_str()), (200, Some("notes.read")));
    // A user who exists but never consented, and one who does not exist.
    create_user(&*s.svc.store, admin::NewUser { username: "bob".into(), ..Default::default() }, now(&s)).await;
    let bob = user_id(&s, "bob").await;
    assert_eq!(error_of(&exchange(&s, &c, &sign(&c, &claims(&s, &c, &bob)), None).await), (400, "invalid_grant"));
    assert_eq!(error_of(&exchange(&s, &c, &sign(&c, &claims(&s, &c, "no-such-user")), None).await), (400, "invalid_grant"));
    // Deleting the user ends what the assertion could get (RFC 9700 §4.14.2).
    admin::delete_user(&*s.svc.store, USER).await.unwrap();
    assert_eq!(error_of(&exchange(&s, &c, &sign(&c, &claims(&s, &c, &alice)), None).await), (400, "invalid_grant"));
}

/// RFC 7523 §3's rules over HTTP, and hostile assertions: each is `invalid_grant` (or the
/// form's `invalid_request`), never a 500.
#[tokio::test]
async fn rfc7523_3_bad_assertions_are_refused() {
    let s = TestServer::start().await;
    let c = service(&s).await;
    consent(&s, &c, "notes.read").await;
    let alice = user_id(&s, USER).await;
    let changed = |f: &dyn Fn(&mut Value)| {
        let mut v = claims(&s, &c, &alice);
        f(&mut v);
        sign(&c, &v)
    };
    let cases: Vec<(&str, String)> = vec![
        ("expired", changed(&|v| v["exp"] = json!(now(&s) - 120))),
        ("aud elsewhere", changed(&|v| v["aud"] = json!("https://other.example/token"))),
        ("no jti", changed(&|v| drop(v.as_object_mut().unwrap().remove("jti")))),
        ("lives a day", changed(&|v| v["exp"] = json!(now(&s) + 86_400))),
        ("not yet valid", changed(&|v| v["nbf"] = json!(now(&s) + 600))),
        ("no sub", changed(&|v| drop(v.as_object_mut().unwrap().remove("sub")))),
        ("alg none", format!("{}.{}.", b64(&json!({"alg": "none"})), b64(&claims(&s, &c, &alice)))),
        ("HS256", c.key.sign_raw(&json!({"alg": "HS256"}), &claims(&s, &c, &alice))),
        ("unknown kid", c.key.sign_raw(&json!({"alg": "ES256", "kid": "k2"}), &claims(&s, &c, &alice))),
        ("another key", ProofSigner::es256().sign_raw(&json!({"alg": "ES256", "kid": "k1"}), &claims(&s, &c, &alice))),
        ("junk", "x".into()),
        ("four parts", "a.b.c.d".into()),
        ("claims not JSON", format!("{}.{}.AAAA", b64(&json!({"alg": "ES256"})), "bm90IGpzb24")),
    ];
    for (what, assertion) in &cases {
        let r = exchange(&s, &c, assertion, None).await;
        assert_eq!(error_of(&r), (400, "invalid_grant"), "{what}: {r:?}");
    }
    let oversized = exchange(&s, &c, &"e".repeat(5000), None).await;
    assert_eq!(error_of(&oversized), (400, "invalid_request"), "{oversized:?}");
    let (status, body, _) = token_basic(&s.url, &c.id, &c.secret, &[("grant_type", GRANT)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_request")), "assertion is required: {body}");
    // After all that, a good assertion still works.
    assert_eq!(exchange(&s, &c, &sign(&c, &claims(&s, &c, &alice)), None).await.0, 200);
}

fn b64(v: &Value) -> String {
    base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, v.to_string())
}

/// Registration: the grant needs keys, a confidential client and public keys only; a client
/// not registered for the grant is `unauthorized_client`; a DPoP proof binds the token.
#[tokio::test]
async fn registration_rules_and_sender_binding() {
    let s = TestServer::start().await;
    let store = &*s.svc.store;
    let base = || NewClient { name: "S".into(), scope: "notes.read".into(), grant_types: vec![GRANT.into()], ..Default::default() };
    let err = |r: Result<admin::CreatedClient, admin::AdminError>| r.unwrap_err().to_string();
    assert!(err(admin::create_client(store, base(), now(&s)).await).contains("--jwks is required"));
    let key = ProofSigner::es256().jwk().to_string();
    assert!(err(admin::create_client(store, NewClient { public: true, jwks: Some(key.clone()), ..base() }, now(&s)).await).contains("public"));
    let mut private = ProofSigner::es256().jwk();
    private["d"] = json!("c2VjcmV0");
    assert!(err(admin::create_client(store, NewClient { jwks: Some(private.to_string()), ..base() }, now(&s)).await).contains("private"));
    assert!(
        err(admin::create_client(store, NewClient { jwks: Some(json!({"kty": "oct", "k": "c2VjcmV0"}).to_string()), ..base() }, now(&s)).await)
            .contains("key 1")
    );
    assert!(err(admin::create_client(store, NewClient { jwks: Some("{not json".into()), ..base() }, now(&s)).await).contains("not JSON"));
    let many = json!({ "keys": (0..11).map(|_| ProofSigner::ed25519().jwk()).collect::<Vec<_>>() });
    assert!(err(admin::create_client(store, NewClient { jwks: Some(many.to_string()), ..base() }, now(&s)).await).contains("1 to 10"));

    // A client with keys but not the grant.
    let c = service(&s).await;
    let other = s
        .client(NewClient { name: "Web".into(), redirect_uris: vec![REDIRECT.into()], scope: "notes.read".into(), jwks: Some(key), ..Default::default() })
        .await;
    let (status, body, _) =
        token_basic(&s.url, &other.client.client_id, other.client_secret.as_deref().unwrap(), &[("grant_type", GRANT), ("assertion", "x.y.z")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("unauthorized_client")), "{body}");

    // RFC 9449 §5: with a DPoP proof the token is bound to its key.
    consent(&s, &c, "notes.read").await;
    let alice = user_id(&s, USER).await;
    let dpop_key = ProofSigner::es256();
    let proof = dpop_key.sign("POST", &format!("{}/token", s.url), now(&s), "p-1", None, None);
    let res = reqwest::Client::new()
        .post(format!("{}/token", s.url))
        .basic_auth(&c.id, Some(&c.secret))
        .header("DPoP", proof)
        .form(&[("grant_type", GRANT), ("assertion", &sign(&c, &claims(&s, &c, &alice)))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["token_type"], "DPoP");
    let at = verify_access_token(&s.url, body["access_token"].as_str().unwrap(), API).await;
    assert_eq!(at["cnf"]["jkt"].as_str(), Some(dpop_key.thumbprint().as_str()));
}
