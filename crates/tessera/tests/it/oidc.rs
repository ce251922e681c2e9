//! OpenID Connect over real HTTP: discovery, ID token claims, UserInfo, prompt/max_age,
//! offline_access, form_post, logout and key rotation. Each test names the section it checks.
use crate::common::*;
use serde_json::Value;
use tessera_server::service::admin::NewClient;

const CB: &str = "http://127.0.0.1:9/callback";
const OIDC_SCOPES: &str = "openid profile email address phone offline_access notes.read";

async fn oidc_client(s: &TestServer, alg: Option<&str>) -> (String, String) {
    let c = s
        .client(NewClient {
            name: "Sign-in App".into(),
            redirect_uris: vec![CB.into()],
            scope: OIDC_SCOPES.into(),
            post_logout_redirect_uris: vec!["http://127.0.0.1:9/bye".into()],
            id_token_signed_response_alg: alg.map(Into::into),
            ..Default::default()
        })
        .await;
    (c.client.client_id, c.client_secret.unwrap())
}

fn url_with(s: &TestServer, id: &str, scope: &str, extra: &[(&str, &str)]) -> String {
    let mut u = s.authorize_url(id, CB, scope, "st", None);
    for (k, v) in extra {
        u.push('&');
        u.push_str(&form_urlencoded::Serializer::new(String::new()).append_pair(k, v).finish());
    }
    u
}

/// Verify a JWT against the JWKS with the given algorithm; returns (header, claims).
async fn verify(s: &TestServer, jwt: &str, alg: jsonwebtoken::Algorithm, aud: &str) -> (jsonwebtoken::Header, Value) {
    let jwks: jsonwebtoken::jwk::JwkSet = reqwest::get(format!("{}/jwks.json", s.url)).await.unwrap().json().await.unwrap();
    let header = jsonwebtoken::decode_header(jwt).unwrap();
    assert_eq!(header.alg, alg);
    let key = jsonwebtoken::DecodingKey::from_jwk(jwks.find(header.kid.as_deref().unwrap()).unwrap()).unwrap();
    let mut v = jsonwebtoken::Validation::new(alg);
    v.set_audience(&[aud]);
    v.set_issuer(&[&s.url]);
    let claims = jsonwebtoken::decode::<Value>(jwt, &key, &v).unwrap().claims;
    (header, claims)
}

async fn code_and_tokens(s: &TestServer, b: &Browser, id: &str, secret: &str, scope: &str, extra: &[(&str, &str)]) -> Value {
    let back = b.journey_as(&url_with(s, id, scope, extra), USER).await;
    let (status, body, _) =
        token_basic(&s.url, id, secret, &[("grant_type", "authorization_code"), ("code", &query(&back)["code"]), ("redirect_uri", CB)]).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// OpenID Connect Discovery 1.0 §3 / §4: the document is served at both well-known paths,
/// identical, and names what is supported.
#[tokio::test]
async fn discovery_4_consistent_documents() {
    let s = TestServer::start().await;
    let a: Value = reqwest::get(format!("{}/.well-known/openid-configuration", s.url)).await.unwrap().json().await.unwrap();
    let b: Value = reqwest::get(format!("{}/.well-known/oauth-authorization-server", s.url)).await.unwrap().json().await.unwrap();
    assert_eq!(a, b);
    assert_eq!(a["issuer"], s.url);
    assert_eq!(a["userinfo_endpoint"], format!("{}/userinfo", s.url));
    assert_eq!(a["end_session_endpoint"], format!("{}/logout", s.url));
    assert_eq!(a["id_token_signing_alg_values_supported"][0], "RS256");
    for scope in ["openid", "profile", "email", "address", "phone", "offline_access"] {
        assert!(a["scopes_supported"].as_array().unwrap().iter().any(|x| x == scope), "{scope}");
    }
}

/// OIDC Core §2 and §3.1.3.6–3.1.3.7: the ID token's claims, RS256 by default.
#[tokio::test]
async fn core_3_1_3_7_id_token_claims() {
    let s = TestServer::start().await;
    let (id, secret) = oidc_client(&s, None).await;
    let b = Browser::new(&s.url);
    let body = code_and_tokens(&s, &b, &id, &secret, "openid profile email", &[("nonce", "n-0S6_WzA2Mj")]).await;
    let (header, c) = verify(&s, body["id_token"].as_str().unwrap(), jsonwebtoken::Algorithm::RS256, &id).await;
    assert_eq!(header.typ.as_deref(), Some("JWT"));
    let user = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap();
    assert_eq!(c["sub"], user.id);
    assert_eq!(c["aud"], id);
    assert_eq!(c["azp"], id);
    assert_eq!(c["nonce"], "n-0S6_WzA2Mj");
    assert_eq!(c["amr"], serde_json::json!(["pwd"]));
    assert!(c["auth_time"].as_i64().unwrap() <= c["iat"].as_i64().unwrap());
    assert!(c["sid"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(c["at_hash"], tessera_protocol::oidc::at_hash(body["access_token"].as_str().unwrap(), "RS256"));
    assert!(c.get("email").is_none(), "§5.4: with an access token, scope claims come from UserInfo");
    // No offline_access: no refresh token for an OpenID Connect request (§11).
    assert!(body.get("refresh_token").is_none());
}

/// Per-client algorithms: ES256 and EdDSA ID tokens verify against the JWKS.
#[tokio::test]
async fn registration_id_token_signed_response_alg() {
    let s = TestServer::start().await;
    for (alg, ja) in [("ES256", jsonwebtoken::Algorithm::ES256), ("EdDSA", jsonwebtoken::Algorithm::EdDSA)] {
        let (id, secret) = oidc_client(&s, Some(alg)).await;
        let body = code_and_tokens(&s, &Browser::new(&s.url), &id, &secret, "openid", &[]).await;
        let (_, c) = verify(&s, body["id_token"].as_str().unwrap(), ja, &id).await;
        assert_eq!(c["at_hash"], tessera_protocol::oidc::at_hash(body["access_token"].as_str().unwrap(), alg));
    }
}

/// OIDC Core §5.3 and §5.4: UserInfo releases the claims of the granted scopes, RFC 6750 errors.
#[tokio::test]
async fn core_5_3_userinfo() {
    let s = TestServer::start().await;
    let mut changes = serde_json::Map::new();
    changes.insert("given_name".into(), "Alice".into());
    changes.insert("phone_number".into(), "+64 21 000 000".into());
    changes.insert("address".into(), serde_json::json!({"locality": "Wellington", "country": "NZ"}));
    tessera_server::service::admin::update_user(&*s.svc.store, USER, None, None, changes, 1).await.unwrap();
    let (id, secret) = oidc_client(&s, None).await;
    let b = Browser::new(&s.url);
    let body = code_and_tokens(&s, &b, &id, &secret, "openid email profile", &[]).await;
    let at = body["access_token"].as_str().unwrap();
    let http = reqwest::Client::new();
    let res = http.get(format!("{}/userinfo", s.url)).bearer_auth(at).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let info: Value = res.json().await.unwrap();
    let user = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap();
    assert_eq!(info["sub"], user.id);
    assert_eq!(info["email"], "alice@example.com");
    assert_eq!(info["name"], "Alice Doe");
    assert_eq!(info["given_name"], "Alice");
    assert!(info.get("phone_number").is_none() && info.get("address").is_none(), "phone and address were not granted");
    // POST works too.
    let res = http.post(format!("{}/userinfo", s.url)).bearer_auth(at).send().await.unwrap();
    assert_eq!(res.status(), 200);
    // RFC 6750 §3.1 errors.
    let res = http.get(format!("{}/userinfo", s.url)).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer realm=\"tessera\"");
    let res = http.get(format!("{}/userinfo", s.url)).bearer_auth("garbage").send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    let res = http.get(format!("{}/userinfo", s.url)).header("authorization", "Basic abc").send().await.unwrap();
    assert_eq!(res.status(), 400);
    // A token without openid: insufficient_scope.
    let (nid, nsecret) = s.confidential_client(CB).await;
    let back = b.journey_as(&s.authorize_url(&nid, CB, "notes.read", "x", None), USER).await;
    let (_, plain, _) =
        token_basic(&s.url, &nid, &nsecret, &[("grant_type", "authorization_code"), ("code", &query(&back)["code"]), ("redirect_uri", CB)]).await;
    let res = http.get(format!("{}/userinfo", s.url)).bearer_auth(plain["access_token"].as_str().unwrap()).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.headers()["www-authenticate"].to_str().unwrap().contains("insufficient_scope"));
}

/// OIDC Core §5.5: the `claims` parameter asks for individual claims per target, within what the
/// granted scopes cover (§5.4; security review finding 2): `id_token` members appear in the ID
/// token, UserInfo answers for the scopes (also with access tokens from a refresh), and a claim
/// no granted scope covers is released nowhere.
#[tokio::test]
async fn core_5_5_claims_parameter() {
    let s = TestServer::start().await;
    let mut changes = serde_json::Map::new();
    changes.insert("phone_number".into(), "+64 21 000 000".into());
    tessera_server::service::admin::update_user(&*s.svc.store, USER, None, None, changes, 1).await.unwrap();
    let (id, secret) = oidc_client(&s, None).await;
    let claims = r#"{"id_token":{"email":{"essential":true},"name":null},"userinfo":{"phone_number":null,"email_verified":null}}"#;
    let body = code_and_tokens(&s, &Browser::new(&s.url), &id, &secret, "openid email phone offline_access", &[("claims", claims)]).await;
    let (_, c) = verify(&s, body["id_token"].as_str().unwrap(), jsonwebtoken::Algorithm::RS256, &id).await;
    assert_eq!(c["email"], "alice@example.com", "requested for the ID token, covered by the email scope");
    assert!(c.get("name").is_none(), "requested for the ID token, but profile was not granted");
    assert!(c.get("phone_number").is_none(), "requested for UserInfo only");
    let http = reqwest::Client::new();
    let userinfo = |at: String| {
        let http = http.clone();
        let url = format!("{}/userinfo", s.url);
        async move { http.get(url).bearer_auth(at).send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let info = userinfo(body["access_token"].as_str().unwrap().to_string()).await;
    assert_eq!(info["phone_number"], "+64 21 000 000");
    assert_eq!(info["email_verified"], false);
    assert_eq!(info["email"], "alice@example.com", "the email scope was granted");
    assert!(info.get("name").is_none(), "profile was not granted");
    let (status, r, _) =
        token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", body["refresh_token"].as_str().unwrap())]).await;
    assert_eq!(status, 200, "{r}");
    let info = userinfo(r["access_token"].as_str().unwrap().to_string()).await;
    assert_eq!(info["phone_number"], "+64 21 000 000", "the grant lives on");
    // openid alone, asking for the same claims: nothing beyond sub.
    let plain = code_and_tokens(&s, &Browser::new(&s.url), &id, &secret, "openid", &[("claims", claims)]).await;
    let info = userinfo(plain["access_token"].as_str().unwrap().to_string()).await;
    assert!(info.get("phone_number").is_none() && info.get("email").is_none(), "{info}");
}

/// OIDC Core §2 `acr` and §3.1.2.1 `acr_values`: "1" when the user signed in during the
/// request, "0" when an existing session answered it; asking for "1" makes the user sign in
/// again (prompt=none: login_required).
#[tokio::test]
async fn core_2_acr_and_3_1_2_1_acr_values() {
    let s = TestServer::start().await;
    let (id, secret) = oidc_client(&s, None).await;
    let b = Browser::new(&s.url);
    let acr = |body: Value| {
        let id = id.clone();
        let s = &s;
        async move { verify(s, body["id_token"].as_str().unwrap(), jsonwebtoken::Algorithm::RS256, &id).await.1["acr"].clone() }
    };
    assert_eq!(acr(code_and_tokens(&s, &b, &id, &secret, "openid", &[]).await).await, "1", "signed in during the request");
    assert_eq!(acr(code_and_tokens(&s, &b, &id, &secret, "openid", &[]).await).await, "0", "single sign-on from the session");
    let res = b.get(&url_with(&s, &id, "openid", &[("acr_values", "1"), ("prompt", "none")])).await;
    assert_eq!(query(&location(&res))["error"], "login_required");
    let res = b.get(&url_with(&s, &id, "openid", &[("acr_values", "1")])).await;
    assert!(location(&res).starts_with("/login"), "acr 1 asked: sign in again");
    assert_eq!(acr(code_and_tokens(&s, &b, &id, &secret, "openid", &[("acr_values", "1")]).await).await, "1");
    assert_eq!(acr(code_and_tokens(&s, &b, &id, &secret, "openid", &[("acr_values", "0 1")]).await).await, "0", "0 acceptable: no sign-in");
    let d: Value = reqwest::get(format!("{}/.well-known/openid-configuration", s.url)).await.unwrap().json().await.unwrap();
    assert_eq!(d["acr_values_supported"], serde_json::json!(["0", "1", "http://schemas.openid.net/pape/policies/2007/06/multi-factor"]));
    assert!(d["claims_supported"].as_array().unwrap().iter().any(|c| c == "acr"));
}

/// OIDC Core §3.1.2.1 prompt=none: no page, an error redirect instead.
#[tokio::test]
async fn core_3_1_2_1_prompt_none() {
    let s = TestServer::start().await;
    let (id, _) = oidc_client(&s, None).await;
    let b = Browser::new(&s.url);
    let res = b.get(&url_with(&s, &id, "openid", &[("prompt", "none")])).await;
    assert_eq!(res.status(), 303);
    let q = query(&location(&res));
    assert_eq!((q["error"].as_str(), q["state"].as_str()), ("login_required", "st"));
    b.authorize_and_allow(&url_with(&s, &id, "openid", &[])).await;
    let res = b.get(&url_with(&s, &id, "openid email", &[("prompt", "none")])).await;
    assert_eq!(query(&location(&res))["error"], "consent_required");
    let res = b.get(&url_with(&s, &id, "openid", &[("prompt", "none")])).await;
    assert!(query(&location(&res)).contains_key("code"), "signed in and consented: a code, silently");
    let res = b.get(&url_with(&s, &id, "openid", &[("prompt", "none login")])).await;
    assert_eq!(query(&location(&res))["error"], "invalid_request");
}

/// OIDC Core §3.1.2.1 prompt=login and max_age: the sign-in page again; auth_time moves.
#[tokio::test]
async fn core_3_1_2_1_prompt_login_and_max_age() {
    let s = TestServer::start().await;
    let (id, secret) = oidc_client(&s, None).await;
    let b = Browser::new(&s.url);
    let first = code_and_tokens(&s, &b, &id, &secret, "openid", &[]).await;
    let (_, c1) = verify(&s, first["id_token"].as_str().unwrap(), jsonwebtoken::Algorithm::RS256, &id).await;
    s.clock.advance(120);
    let res = b.get(&url_with(&s, &id, "openid", &[("max_age", "60")])).await;
    assert!(location(&res).starts_with("/login"), "older than max_age: sign in again");
    let res = b.get(&url_with(&s, &id, "openid", &[("max_age", "600")])).await;
    assert!(query(&location(&res)).contains_key("code"), "recent enough");
    let res = b.get(&url_with(&s, &id, "openid", &[("prompt", "login"), ("login_hint", "alice")])).await;
    let login = location(&res);
    assert!(login.starts_with("/login"));
    let html = b.get(&login).await.text().await.unwrap();
    assert!(html.contains("value=\"alice\""), "login_hint prefills the username");
    let res = b.sign_in(&html, USER, PASSWORD).await;
    let res = b.get(&location(&res)).await;
    let back = location(&res);
    let (_, body, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "authorization_code"), ("code", &query(&back)["code"]), ("redirect_uri", CB)]).await;
    let (_, c2) = verify(&s, body["id_token"].as_str().unwrap(), jsonwebtoken::Algorithm::RS256, &id).await;
    assert!(c2["auth_time"].as_i64().unwrap() >= c1["auth_time"].as_i64().unwrap() + 120, "auth_time is the new sign-in");
}

/// OIDC Core §11: offline_access governs the refresh token; refreshed ID tokens keep sub,
/// auth_time and carry no nonce (§12.2).
#[tokio::test]
async fn core_11_offline_access_and_12_2_refresh() {
    let s = TestServer::start().await;
    let (id, secret) = oidc_client(&s, None).await;
    let body = code_and_tokens(&s, &Browser::new(&s.url), &id, &secret, "openid offline_access", &[("nonce", "abc")]).await;
    let rt = body["refresh_token"].as_str().expect("offline_access gives a refresh token");
    let (_, first) = verify(&s, body["id_token"].as_str().unwrap(), jsonwebtoken::Algorithm::RS256, &id).await;
    let (status, r, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", rt)]).await;
    assert_eq!(status, 200);
    let (_, c) = verify(&s, r["id_token"].as_str().unwrap(), jsonwebtoken::Algorithm::RS256, &id).await;
    assert_eq!(c["sub"], first["sub"]);
    assert_eq!(c["auth_time"], first["auth_time"]);
    assert!(c.get("nonce").is_none());
}

/// OAuth 2.0 Form Post Response Mode §2: a self-submitting form to the redirect URI.
#[tokio::test]
async fn form_post_response_mode() {
    let s = TestServer::start().await;
    let (id, _) = oidc_client(&s, None).await;
    let b = Browser::new(&s.url);
    b.authorize_and_allow(&url_with(&s, &id, "openid", &[])).await;
    let res = b.get(&url_with(&s, &id, "openid", &[("response_mode", "form_post")])).await;
    assert_eq!(res.status(), 200);
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("action=\"{CB}\"")), "{html}");
    assert!(html.contains("name=\"code\""));
    assert!(html.contains("name=\"state\" value=\"st\""));
    let nonce = csp.split("'nonce-").nth(1).unwrap().split('\'').next().unwrap();
    assert!(html.contains(&format!("nonce=\"{nonce}\"")), "the script runs under the CSP nonce");
    let res = b.get(&url_with(&s, &id, "openid", &[("response_mode", "fragment")])).await;
    assert_eq!(query(&location(&res))["error"], "invalid_request");
}

/// RP-Initiated Logout 1.0 §2–3: confirmation, exact post_logout_redirect_uri, state echoed.
#[tokio::test]
async fn rp_initiated_logout_2_3() {
    let s = TestServer::start().await;
    let (id, secret) = oidc_client(&s, None).await;
    let b = Browser::new(&s.url);
    let body = code_and_tokens(&s, &b, &id, &secret, "openid", &[]).await;
    let hint = body["id_token"].as_str().unwrap();
    // Unregistered post-logout URI: an error page, no redirect.
    let res = b.get(&format!("{}/logout?client_id={id}&post_logout_redirect_uri=https%3A%2F%2Fevil.example", s.url)).await;
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    // A GET alone does not sign out: it asks.
    let res = b.get(&format!("{}/logout?id_token_hint={hint}&post_logout_redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fbye&state=s1", s.url)).await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("Sign out?"));
    let res = b.post_form("/logout", &[("confirm", "yes"), ("csrf", "forged"), ("id_token_hint", hint)]).await;
    assert_eq!(res.status(), 403, "the confirmation is CSRF-protected");
    let csrf = hidden(&html, "csrf").unwrap();
    let res = b
        .post_form(
            "/logout",
            &[("confirm", "yes"), ("csrf", &csrf), ("id_token_hint", hint), ("post_logout_redirect_uri", "http://127.0.0.1:9/bye"), ("state", "s1")],
        )
        .await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), "http://127.0.0.1:9/bye?state=s1");
    // Signed out: the next authorization needs sign-in.
    let res = b.get(&url_with(&s, &id, "openid", &[])).await;
    assert!(location(&res).starts_with("/login"));
}

/// Back-Channel Logout 1.0 §2.4–2.5: a logout token is POSTed to the client's registered URI.
#[tokio::test]
async fn backchannel_logout_2_5() {
    use std::sync::{Arc, Mutex};
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let sink = got.clone();
    let app = axum::Router::new().route(
        "/bcl",
        axum::routing::post(move |body: String| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push(body);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let bcl = format!("http://{}/bcl", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    // The relying party listens on 127.0.0.1: loopback allowed by the setting.
    let s = TestServer::start_with(|c| c.allow_private_logout_uris = true).await;
    let c = s
        .client(NewClient {
            name: "BCL".into(),
            redirect_uris: vec![CB.into()],
            scope: "openid".into(),
            backchannel_logout_uri: Some(bcl),
            allow_private_logout_uris: true,
            ..Default::default()
        })
        .await;
    let (id, secret) = (c.client.client_id, c.client_secret.unwrap());
    let b = Browser::new(&s.url);
    let body = code_and_tokens(&s, &b, &id, &secret, "openid", &[]).await;
    let (_, idt) = verify(&s, body["id_token"].as_str().unwrap(), jsonwebtoken::Algorithm::RS256, &id).await;
    let html = b.get(&format!("{}/logout", s.url)).await.text().await.unwrap();
    let res = b.post_form("/logout", &[("confirm", "yes"), ("csrf", &hidden(&html, "csrf").unwrap())]).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("You are signed out"));
    // Delivered off the request path: wait for it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while got.lock().unwrap().is_empty() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let bodies = got.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "one logout token for the one client");
    let token = bodies[0].strip_prefix("logout_token=").unwrap();
    let (header, lt) = verify(&s, token, jsonwebtoken::Algorithm::RS256, &id).await;
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    assert_eq!(lt["sid"], idt["sid"]);
    assert_eq!(lt["sub"], idt["sub"]);
    assert!(lt["events"].get("http://schemas.openid.net/event/backchannel-logout").is_some());
    assert!(lt.get("nonce").is_none(), "§2.4: a logout token MUST NOT contain a nonce");
}

/// OIDC Core §10.1.1 rotation: a rotated key is published before it signs; tokens signed
/// before the rotation still verify after it.
#[tokio::test]
async fn core_10_1_1_key_rotation() {
    let s = TestServer::start().await;
    let (id, secret) = oidc_client(&s, None).await;
    let b = Browser::new(&s.url);
    let before = code_and_tokens(&s, &b, &id, &secret, "openid", &[]).await;
    let old_kid = jsonwebtoken::decode_header(before["id_token"].as_str().unwrap()).unwrap().kid.unwrap();
    let now = tessera_server::Clock::now(&*s.clock);
    let new_kid = tessera_server::keys::rotate(&*s.svc.store, s.svc.keys.kek(), tessera_jose::Alg::RS256, now, 600).await.unwrap();
    s.svc.keys.reload(&*s.svc.store).await.unwrap();
    let jwks = reqwest::get(format!("{}/jwks.json", s.url)).await.unwrap().text().await.unwrap();
    assert!(jwks.contains(&new_kid), "published at once");
    let during = code_and_tokens(&s, &b, &id, &secret, "openid", &[]).await;
    assert_eq!(jsonwebtoken::decode_header(during["id_token"].as_str().unwrap()).unwrap().kid.unwrap(), old_kid, "not used before its time");
    s.clock.advance(601);
    let after = code_and_tokens(&s, &b, &id, &secret, "openid", &[]).await;
    assert_eq!(jsonwebtoken::decode_header(after["id_token"].as_str().unwrap()).unwrap().kid.unwrap(), new_kid);
    // The old token still verifies against the published keys (it has not expired).
    let (_, claims) = verify(&s, before["id_token"].as_str().unwrap(), jsonwebtoken::Algorithm::RS256, &id).await;
    assert_eq!(claims["aud"], id);
}
