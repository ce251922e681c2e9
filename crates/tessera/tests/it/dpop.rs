//! DPoP (RFC 9449) at Tessera's token endpoint, over real HTTP: tokens bound to the proof's key
//! (`token_type` DPoP, `cnf.jkt`), a public client's refresh token bound to it (§5), codes bound
//! with `dpop_jkt` (§10), proofs used once on the store (§11.1), server nonces (§8), clients that
//! require DPoP, and the metadata.

use crate::common::*;
use serde_json::Value;
use tessera_dpop::testing::ProofSigner;
use tessera_server::service::admin::NewClient;

const REDIRECT: &str = "https://app.example/cb";

/// POST /token with a raw form and these DPoP headers.
async fn token_with(base: &str, form: &[(&str, &str)], proofs: &[String]) -> (u16, Value, reqwest::header::HeaderMap) {
    let mut req = reqwest::Client::new().post(format!("{base}/token")).form(form);
    for p in proofs {
        req = req.header("DPoP", p);
    }
    let res = req.send().await.unwrap();
    let (status, headers) = (res.status().as_u16(), res.headers().clone());
    (status, res.json().await.unwrap(), headers)
}

fn proof(s: &TestServer, key: &ProofSigner, nonce: Option<&str>) -> String {
    key.sign("POST", &format!("{}/token", s.url), tessera_server::Clock::now(&*s.clock), &rand::random::<u64>().to_string(), None, nonce)
}

/// A code for the public client, through sign-in and consent; `extra` is added to the request.
async fn code(s: &TestServer, client_id: &str, challenge: &str, extra: &str) -> String {
    let url = format!("{}{extra}", s.authorize_url(client_id, REDIRECT, "notes.read", "st", Some(challenge)));
    let back = Browser::new(&s.url).authorize_and_allow(&url).await;
    query(&back).remove("code").unwrap_or_else(|| panic!("no code in {back}"))
}

/// A confidential client of the client credentials grant.
async fn service_client(s: &TestServer) -> (String, String) {
    let c =
        s.client(NewClient { name: "Service".into(), scope: "notes.read".into(), grant_types: vec!["client_credentials".into()], ..Default::default() }).await;
    (c.client.client_id, c.client_secret.unwrap())
}

fn jkt_of(s: &TestServer, access_token: &str) -> Option<String> {
    let _ = s;
    let claims = access_token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, claims).unwrap()).unwrap();
    claims["cnf"]["jkt"].as_str().map(str::to_string)
}

#[tokio::test]
async fn rfc9449_5_public_client_tokens_and_refresh_token_are_bound_to_the_proof_key() {
    let s = TestServer::start().await;
    let client = s.public_client(REDIRECT).await;
    let (verifier, challenge) = pkce_pair();
    let key = ProofSigner::es256();
    let c = code(&s, &client, &challenge, "").await;
    let form = [("grant_type", "authorization_code"), ("code", &c), ("redirect_uri", REDIRECT), ("client_id", &client), ("code_verifier", &verifier)];
    let (status, body, _) = token_with(&s.url, &form, &[proof(&s, &key, None)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    let at = body["access_token"].as_str().unwrap();
    assert_eq!(jkt_of(&s, at), Some(key.thumbprint()), "cnf.jkt is the proof key's RFC 7638 thumbprint");
    assert_eq!(verify_access_token(&s.url, at, API).await["cnf"]["jkt"], key.thumbprint().as_str());
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    let refresh = [("grant_type", "refresh_token"), ("refresh_token", rt.as_str()), ("client_id", &client)];

    // A stolen refresh token: without a proof, or with the thief's key, it is refused…
    let (status, body, _) = token_with(&s.url, &refresh, &[]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "{body}");
    let thief = ProofSigner::es256();
    let (status, body, _) = token_with(&s.url, &refresh, &[proof(&s, &thief, None)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "{body}");
    // … and not consumed: the owner's refresh still works, and stays bound.
    let (status, body, _) = token_with(&s.url, &refresh, &[proof(&s, &key, None)]).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "DPoP");
    assert_eq!(jkt_of(&s, body["access_token"].as_str().unwrap()), Some(key.thumbprint()));
    let next = body["refresh_token"].as_str().unwrap();
    let (status, body, _) = token_with(&s.url, &[("grant_type", "refresh_token"), ("refresh_token", next), ("client_id", &client)], &[]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "the rotated token is bound too: {body}");
}

#[tokio::test]
async fn rfc9449_11_1_a_proof_is_accepted_once() {
    let s = TestServer::start().await;
    let (id, secret) = service_client(&s).await;
    let key = ProofSigner::ed25519();
    let p = proof(&s, &key, None);
    let send = |p: String| {
        let url = s.url.clone();
        let (id, secret) = (id.clone(), secret.clone());
        async move {
            let res = reqwest::Client::new()
                .post(format!("{url}/token"))
                .basic_auth(id, Some(secret))
                .header("DPoP", p)
                .form(&[("grant_type", "client_credentials"), ("scope", "notes.read")])
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    // The same proof sent 20 times at once: one token.
    let mut racers = tokio::task::JoinSet::new();
    for _ in 0..20 {
        racers.spawn(send(p.clone()));
    }
    let results: Vec<(u16, Value)> = racers.join_all().await;
    assert_eq!(results.iter().filter(|(st, _)| *st == 200).count(), 1, "{results:?}");
    assert!(results.iter().filter(|(st, _)| *st != 200).all(|(st, b)| *st == 400 && b["error"] == "invalid_dpop_proof"), "{results:?}");
    let (_, ok) = results.iter().find(|(st, _)| *st == 200).unwrap();
    assert_eq!((ok["token_type"].as_str(), jkt_of(&s, ok["access_token"].as_str().unwrap())), (Some("DPoP"), Some(key.thumbprint())));
    // RFC 9449 §6.2: introspection tells a resource server the binding.
    let (_, info, _) = post(&s.url, "/introspect", Some((&id, &secret)), &[("token", ok["access_token"].as_str().unwrap())]).await;
    assert_eq!((info["active"].as_bool(), info["token_type"].as_str()), (Some(true), Some("DPoP")), "{info}");
    assert_eq!(info["cnf"]["jkt"], key.thumbprint().as_str());
    // Without a proof the same client still gets a bearer token (DPoP is not required of it).
    let (status, body, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "client_credentials"), ("scope", "notes.read")]).await;
    assert_eq!((status, body["token_type"].as_str()), (200, Some("Bearer")));
    assert_eq!(jkt_of(&s, body["access_token"].as_str().unwrap()), None);
    let (_, info, _) = post(&s.url, "/introspect", Some((&id, &secret)), &[("token", body["access_token"].as_str().unwrap())]).await;
    assert_eq!((info["token_type"].as_str(), info.get("cnf")), (Some("Bearer"), None), "{info}");
}

#[tokio::test]
async fn rfc9449_4_3_proofs_for_another_request_or_malformed_are_refused_without_a_500() {
    let s = TestServer::start().await;
    let (id, secret) = service_client(&s).await;
    let key = ProofSigner::es256();
    let now = tessera_server::Clock::now(&*s.clock);
    let token_url = format!("{}/token", s.url);
    let cases: Vec<(&str, Vec<String>)> = vec![
        ("wrong method", vec![key.sign("GET", &token_url, now, "a", None, None)]),
        ("another endpoint", vec![key.sign("POST", &format!("{}/userinfo", s.url), now, "b", None, None)]),
        ("too old", vec![key.sign("POST", &token_url, now - 301, "c", None, None)]),
        ("two DPoP headers", vec![proof(&s, &key, None), proof(&s, &key, None)]),
        ("garbage", vec!["not-a-jwt".into()]),
    ];
    for (what, proofs) in cases {
        let mut req = reqwest::Client::new().post(&token_url).basic_auth(&id, Some(&secret)).form(&[("grant_type", "client_credentials")]);
        for p in &proofs {
            req = req.header("DPoP", p);
        }
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let body: Value = res.json().await.unwrap();
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "{what}: {body}");
    }
}

#[tokio::test]
async fn rfc9449_10_a_code_requested_with_dpop_jkt_needs_that_key() {
    let s = TestServer::start().await;
    let client = s.public_client(REDIRECT).await;
    let (verifier, challenge) = pkce_pair();
    let key = ProofSigner::es256();
    let c = code(&s, &client, &challenge, &format!("&dpop_jkt={}", key.thumbprint())).await;
    let form = [("grant_type", "authorization_code"), ("code", &c), ("redirect_uri", REDIRECT), ("client_id", &client), ("code_verifier", &verifier)];
    let (status, body, _) = token_with(&s.url, &form, &[]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "no proof: {body}");
    let (status, body, _) = token_with(&s.url, &form, &[proof(&s, &ProofSigner::es256(), None)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "another key: {body}");
    let (status, body, _) = token_with(&s.url, &form, &[proof(&s, &key, None)]).await;
    assert_eq!(status, 200, "the code was not consumed by the refusals: {body}");
    assert_eq!(jkt_of(&s, body["access_token"].as_str().unwrap()), Some(key.thumbprint()));

    // A malformed dpop_jkt is the authorization request's error (after the redirect URI is
    // trusted: a redirect with invalid_request).
    let url = format!("{}&dpop_jkt=not-a-thumbprint", s.authorize_url(&client, REDIRECT, "notes.read", "st", Some(&challenge)));
    let res = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap().get(&url).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(query(&location(&res)).get("error").map(String::as_str), Some("invalid_request"));
}

#[tokio::test]
async fn rfc9449_8_server_nonces_are_required_when_on() {
    let s = TestServer::start_with(|c| c.dpop_nonces = true).await;
    let (id, secret) = service_client(&s).await;
    let key = ProofSigner::es256();
    let send = |p: String| {
        let (url, id, secret) = (s.url.clone(), id.clone(), secret.clone());
        async move {
            let res = reqwest::Client::new()
                .post(format!("{url}/token"))
                .basic_auth(id, Some(secret))
                .header("DPoP", p)
                .form(&[("grant_type", "client_credentials")])
                .send()
                .await
                .unwrap();
            let (status, headers) = (res.status().as_u16(), res.headers().clone());
            (status, res.json::<Value>().await.unwrap(), headers)
        }
    };
    let (status, body, headers) = send(proof(&s, &key, None)).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("use_dpop_nonce")), "{body}");
    let nonce = headers.get("dpop-nonce").expect("§8.1: the error names the nonce").to_str().unwrap().to_string();
    let (status, body, _) = send(proof(&s, &key, Some("a-nonce-never-issued"))).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("use_dpop_nonce")), "{body}");
    let (status, body, headers) = send(proof(&s, &key, Some(&nonce))).await;
    assert_eq!((status, body["token_type"].as_str()), (200, Some("DPoP")), "{body}");
    assert!(headers.contains_key("dpop-nonce"), "every answer names the nonce to use next");
    // Ten minutes later the nonce is stale.
    s.clock.advance(601);
    let (status, body, headers) = send(proof(&s, &key, Some(&nonce))).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("use_dpop_nonce")), "{body}");
    assert_ne!(headers.get("dpop-nonce").unwrap().to_str().unwrap(), nonce, "a fresh nonce");
}

#[tokio::test]
async fn a_client_registered_to_require_dpop_gets_no_bearer_token() {
    let s = TestServer::start().await;
    let c = s
        .client(NewClient {
            name: "Strict".into(),
            scope: "notes.read".into(),
            grant_types: vec!["client_credentials".into()],
            require_dpop: true,
            ..Default::default()
        })
        .await;
    let (id, secret) = (c.client.client_id, c.client_secret.unwrap());
    let (status, body, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "client_credentials")]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_dpop_proof")), "{body}");
    let res = reqwest::Client::new()
        .post(format!("{}/token", s.url))
        .basic_auth(&id, Some(&secret))
        .header("DPoP", proof(&s, &ProofSigner::rs256(), None))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["token_type"], "DPoP");
}

#[tokio::test]
async fn rfc9449_5_1_metadata_advertises_the_proof_algorithms() {
    let s = TestServer::start().await;
    let meta: Value = reqwest::get(format!("{}/.well-known/openid-configuration", s.url)).await.unwrap().json().await.unwrap();
    let algs: Vec<&str> = meta["dpop_signing_alg_values_supported"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(algs.contains(&"ES256") && algs.contains(&"EdDSA") && algs.contains(&"RS256"), "{algs:?}");
    assert!(!algs.iter().any(|a| a.starts_with("HS") || *a == "none"));
}

/// GET /userinfo with an Authorization header and DPoP headers; (status, WWW-Authenticate, body).
async fn userinfo(s: &TestServer, authorization: &str, proofs: &[String]) -> (u16, String, Value) {
    let mut req = reqwest::Client::new().get(format!("{}/userinfo", s.url)).header("Authorization", authorization);
    for p in proofs {
        req = req.header("DPoP", p);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let challenge = res.headers().get("www-authenticate").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default();
    (status, challenge, res.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn rfc9449_7_userinfo_takes_a_bound_token_only_with_a_proof_of_its_key() {
    let s = TestServer::start().await;
    let c = s
        .client(NewClient {
            name: "SPA".into(),
            redirect_uris: vec![REDIRECT.into()],
            scope: "openid profile notes.read".into(),
            public: true,
            ..Default::default()
        })
        .await;
    let client = c.client.client_id;
    let (verifier, challenge) = pkce_pair();
    let url = s.authorize_url(&client, REDIRECT, "openid profile", "st", Some(&challenge));
    let back = Browser::new(&s.url).authorize_and_allow(&url).await;
    let code = query(&back).remove("code").unwrap();
    let key = ProofSigner::es256();
    let form = [("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("client_id", &client), ("code_verifier", &verifier)];
    let (status, body, _) = token_with(&s.url, &form, &[proof(&s, &key, None)]).await;
    assert_eq!(status, 200, "{body}");
    let at = body["access_token"].as_str().unwrap();
    let now = tessera_server::Clock::now(&*s.clock);
    let ui = format!("{}/userinfo", s.url);

    // The proof of the token's key, with its ath: the claims.
    let good = key.sign("GET", &ui, now, "u-1", Some(at), None);
    let (status, _, claims) = userinfo(&s, &format!("DPoP {at}"), std::slice::from_ref(&good)).await;
    assert_eq!((status, claims["name"].as_str()), (200, Some("Alice Doe")), "{claims}");
    // A stolen token: as Bearer, without a proof, replaying the proof, another key, no ath.
    let cases: [(&str, String, Vec<String>, &str); 5] = [
        ("as Bearer", format!("Bearer {at}"), vec![], "Bearer error=\"invalid_token\""),
        ("no proof", format!("DPoP {at}"), vec![], "DPoP error=\"invalid_dpop_proof\""),
        ("replayed proof", format!("DPoP {at}"), vec![good], "DPoP error=\"invalid_dpop_proof\""),
        ("another key", format!("DPoP {at}"), vec![ProofSigner::es256().sign("GET", &ui, now, "u-2", Some(at), None)], "DPoP error=\"invalid_dpop_proof\""),
        ("no ath", format!("DPoP {at}"), vec![key.sign("GET", &ui, now, "u-3", None, None)], "DPoP error=\"invalid_dpop_proof\""),
    ];
    for (what, authorization, proofs, expected) in cases {
        let (status, challenge, _) = userinfo(&s, &authorization, &proofs).await;
        assert_eq!(status, 401, "{what}");
        assert!(challenge.starts_with(expected), "{what}: {challenge}");
    }
    // CORS: the token's client's origin is answered; another origin is refused.
    for (origin, expected) in [("https://app.example", Some("https://app.example")), ("https://evil.example", None)] {
        let res = reqwest::Client::new()
            .get(&ui)
            .header("Authorization", format!("DPoP {at}"))
            .header("DPoP", key.sign("GET", &ui, now, &format!("o-{origin}"), Some(at), None))
            .header("Origin", origin)
            .send()
            .await
            .unwrap();
        let got = res.headers().get("access-control-allow-origin").map(|v| v.to_str().unwrap().to_string());
        assert_eq!((res.status().as_u16() == 200, got.as_deref()), (expected.is_some(), expected), "{origin}");
    }
    let (_, challenge, _) = userinfo(&s, &format!("DPoP {at}"), &[]).await;
    assert!(challenge.contains("algs=\"ES256"), "RFC 9449 §7.1: the challenge names the algorithms: {challenge}");
}
