//! Finding 11: back-channel logout deliveries ran inside the user's logout request, and any
//! address could be registered as a back-channel logout URI. Deliveries now run off the request
//! path with bounded, retried attempts (Back-Channel Logout 1.0 §2.5), and URIs in private,
//! loopback, link-local (cloud metadata included) and other non-public ranges are refused at
//! registration (§2.2) and, after DNS resolution, at delivery — unless a setting allows them.

use crate::common::*;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tessera_storage::ClientRecord;

const CB: &str = "http://127.0.0.1:9/cb";

/// What the relying party's back-channel endpoint saw: one entry per request, with its body.
type Seen = Arc<Mutex<Vec<(Instant, String)>>>;

/// A back-channel logout endpoint on 127.0.0.1 that answers the n-th request (from 0) with
/// `respond(n)`: a status, after an optional stall.
async fn endpoint(respond: impl Fn(usize) -> (u16, Duration) + Send + Sync + 'static) -> (u16, Seen) {
    let seen: Seen = Arc::default();
    let sink = seen.clone();
    let respond = Arc::new(respond);
    let app = axum::Router::new().route(
        "/bcl",
        axum::routing::post(move |body: String| {
            let (sink, respond) = (sink.clone(), respond.clone());
            async move {
                let n = {
                    let mut s = sink.lock().unwrap();
                    s.push((Instant::now(), body));
                    s.len() - 1
                };
                let (status, stall) = respond(n);
                tokio::time::sleep(stall).await;
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, seen)
}

/// Register a confidential OpenID client whose back-channel logout URI is `bcl`, directly in the
/// store (as a registration made before the address rules, or a name that now resolves
/// elsewhere, would be).
async fn client_with_bcl(s: &TestServer, bcl: &str) -> String {
    let id = format!("bcl-{}", rand::random::<u32>());
    let record = ClientRecord {
        client_id: id.clone(),
        name: "BCL".into(),
        secret_hash: None,
        redirect_uris: vec![CB.into()],
        scope: tessera_protocol::scope::Scopes::parse("openid").unwrap(),
        grant_types: vec![tessera_protocol::client::GrantType::AuthorizationCode],
        token_endpoint_auth_method: tessera_protocol::client::AuthMethod::None,
        created_at: tessera_server::Clock::now(&*s.clock),
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: Some(bcl.into()),
        id_token_signed_response_alg: None,
        subject_type: "public".into(),
        allowed_origins: vec![],
        require_dpop: false,
        jwks: None,
        require_mfa: false,
    };
    s.svc.store.create_client(&record).await.unwrap();
    id
}

/// Sign in through `client_id` (so the session has a client to tell), then log out; returns how
/// long the logout request took.
async fn sign_in_and_log_out(s: &TestServer, client_id: &str) -> Duration {
    let b = Browser::new(&s.url);
    let (_, challenge) = pkce_pair();
    let back = b.authorize_and_allow(&s.authorize_url(client_id, CB, "openid", "st", Some(&challenge))).await;
    assert!(back.starts_with(CB) && query(&back).contains_key("code"), "{back}");
    let html = b.get(&format!("{}/logout", s.url)).await.text().await.unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    let started = Instant::now();
    let res = b.post_form("/logout", &[("confirm", "yes"), ("csrf", &csrf)]).await;
    let took = started.elapsed();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("You are signed out"));
    took
}

async fn wait_for(seen: &Seen, n: usize, within: Duration) -> Vec<(Instant, String)> {
    let started = Instant::now();
    loop {
        let got = seen.lock().unwrap().clone();
        if got.len() >= n || started.elapsed() > within {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// §2.5: a relying party whose endpoint stalls does not hold up the user's logout: the response
/// comes at once and the logout token is still delivered afterwards.
#[tokio::test]
async fn regression_logout_does_not_wait_for_backchannel_bcl_2_5() {
    let (port, seen) = endpoint(|_| (200, Duration::from_secs(30))).await;
    let s = TestServer::start_with(|c| c.allow_private_logout_uris = true).await;
    let id = client_with_bcl(&s, &format!("http://127.0.0.1:{port}/bcl")).await;
    let took = sign_in_and_log_out(&s, &id).await;
    assert!(took < Duration::from_millis(800), "the logout response waited {took:?} for a stalled back-channel endpoint");
    let got = wait_for(&seen, 1, Duration::from_secs(5)).await;
    assert!(!got.is_empty(), "the logout token was never delivered");
    assert!(got[0].1.starts_with("logout_token="), "{:?}", got[0].1);
}

/// §2.5: a failing endpoint (a 503, then a stall past the attempt's bound) is tried again, with
/// back-off, until it takes the logout token.
#[tokio::test]
async fn regression_backchannel_failing_endpoint_retried_bcl_2_5() {
    let (port, seen) = endpoint(|n| match n {
        0 => (503, Duration::ZERO),
        1 => (200, Duration::from_secs(30)),
        _ => (200, Duration::ZERO),
    })
    .await;
    let s = TestServer::start_with(|c| c.allow_private_logout_uris = true).await;
    let id = client_with_bcl(&s, &format!("http://127.0.0.1:{port}/bcl")).await;
    sign_in_and_log_out(&s, &id).await;
    let got = wait_for(&seen, 3, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 3, "three attempts (503, timeout, success)");
    assert!(got.iter().all(|(_, b)| b == &got[0].1), "the same logout token each time");
    assert!(got[1].0 > got[0].0 && got[2].0 > got[1].0);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(seen.lock().unwrap().len(), 3, "no attempt after the one that succeeded");
}

/// A name that resolves to a loopback address (`localhost`) is refused at delivery, after DNS
/// resolution, when private addresses are not allowed: nothing reaches the endpoint.
#[tokio::test]
async fn regression_backchannel_hostname_resolving_to_loopback_refused_bcl_2_5() {
    let (port, seen) = endpoint(|_| (200, Duration::ZERO)).await;
    let s = TestServer::start().await;
    let id = client_with_bcl(&s, &format!("http://localhost:{port}/bcl")).await;
    let id_literal = client_with_bcl(&s, &format!("http://127.0.0.1:{port}/bcl")).await;
    sign_in_and_log_out(&s, &id).await;
    sign_in_and_log_out(&s, &id_literal).await;
    let got = wait_for(&seen, 1, Duration::from_secs(4)).await;
    assert!(got.is_empty(), "a logout token was delivered to a loopback address: {got:?}");
}

#[cfg(feature = "ci-tier")]
const BIN: &str = env!("CARGO_BIN_EXE_tessera");

/// §2.2 registration: back-channel logout URIs in private (RFC 1918, fc00::/7), loopback,
/// link-local (169.254.0.0/16 with the cloud metadata address, fe80::/10) and other non-public
/// ranges are refused by `tessera client create` unless `--allow-private-logout-uris` is given.
/// CI tier: runs `tessera client create`.
#[cfg(feature = "ci-tier")]
#[tokio::test]
async fn regression_backchannel_uri_private_ranges_refused_bcl_2_2() {
    let dir = tempfile::tempdir().unwrap();
    let create = |uri: &str, allow: bool| {
        let mut cmd = std::process::Command::new(BIN);
        cmd.args(["client", "create", "--name", "RP", "--redirect-uri", CB, "--backchannel-logout-uri", uri])
            .current_dir(dir.path())
            .env_remove("TESSERA_DATABASE_URL")
            .env_remove("TESSERA_ALLOW_PRIVATE_LOGOUT_URIS");
        if allow {
            cmd.arg("--allow-private-logout-uris");
        }
        let out = cmd.output().unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stderr).to_string())
    };
    // http is refused off loopback anyway (§2.2 via the redirect URI rules): the address rule
    // is what refuses https and loopback.
    for uri in ["http://169.254.169.254/latest/meta-data/", "http://10.0.0.1/bcl"] {
        assert!(!create(uri, false).0, "{uri} registered");
    }
    let refused = [
        "https://169.254.169.254/latest/meta-data/",
        "https://10.0.0.1/bcl",
        "https://172.16.5.4/bcl",
        "https://192.168.1.1/bcl",
        "https://100.64.0.1/bcl",
        "https://0.0.0.0/bcl",
        "https://[fd00::1]/bcl",
        "https://[fe80::1]/bcl",
        "https://[::ffff:10.0.0.1]/bcl",
        "https://[::ffff:169.254.169.254]/bcl",
        "http://127.0.0.1:8080/bcl",
        "http://[::1]/bcl",
        "http://localhost/bcl",
    ];
    let mut accepted = Vec::new();
    for uri in refused {
        let (ok, err) = create(uri, false);
        if ok {
            accepted.push(uri);
        } else {
            assert!(err.contains("--backchannel-logout-uri") && err.contains("--allow-private-logout-uris"), "{uri}: {err}");
        }
    }
    assert!(accepted.is_empty(), "registered without the setting: {accepted:?}");
    let (ok, err) = create("https://rp.example/bcl", false);
    assert!(ok, "a public name is accepted: {err}");
    let (ok, err) = create("https://10.0.0.1/bcl", true);
    assert!(ok, "allowed by the setting: {err}");
}
