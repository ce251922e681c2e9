//! Several instances behind one load balancer: two real `tessera serve` processes on different
//! ports share one fresh PostgreSQL database, and every piece of state one of them creates is
//! honoured by the other. Fails (never skips) when PostgreSQL cannot be reached.
use crate::common::cluster::{Cluster, REDIRECT, http, now, post};
use crate::common::{Browser, PASSWORD, USER, location, pkce_pair, query};
use serde_json::Value;
use std::process::Command;
use std::time::{Duration, Instant};
use tessera_storage::prelude::*;

/// Longest a key added through one instance may take to appear in another's JWKS: the key
/// reload interval of `serve` (3 s) plus slack for a loaded machine.
const KEY_BOUND: Duration = Duration::from_secs(8);

async fn jwks_kids(http: &reqwest::Client, base: &str) -> Vec<String> {
    let jwks: Value = http.get(format!("{base}/jwks.json")).send().await.unwrap().json().await.unwrap();
    jwks["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_string()).collect()
}

fn kid_of(jwt: &str) -> String {
    jsonwebtoken::decode_header(jwt).unwrap().kid.unwrap()
}

/// Follow same-site redirects from `loc` until the one back to the client; panics if a page
/// (a sign-in or consent form) is shown instead.
async fn follow_to_client(browser: &Browser, mut loc: String, what: &str) -> String {
    for _ in 0..5 {
        if loc.starts_with(REDIRECT) {
            return loc;
        }
        let res = browser.get(&loc).await;
        assert_eq!(res.status(), 303, "{what}: expected a redirect from {loc}, got a page: {}", res.text().await.unwrap_or_default());
        loc = location(&res);
    }
    panic!("{what}: too many redirects, last {loc}");
}

/// A code issued by A is redeemed at B; a browser session and a consent given at A hold at B;
/// a token revoked at A is inactive at B; a key added through A is in B's JWKS; the same
/// refresh token sent to A and B at once succeeds exactly once.
#[tokio::test]
async fn two_instances_share_one_database() {
    let c = Cluster::create().await;
    let a = c.serve("a");
    let b = c.serve("b");
    let http = http();

    // Sign in and consent at A; the code goes to B.
    let (verifier, challenge) = pkce_pair();
    let browser_a = Browser::new(&a.url);
    let back = browser_a.authorize_and_allow(&c.authorize_url(&a.url, "s1", &challenge)).await;
    let code = query(&back)["code"].clone();
    let tokens = c.redeem(&http, &b.url, &code, &verifier).await;
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let kid = kid_of(&access);
    assert!(jwks_kids(&http, &a.url).await.contains(&kid) && jwks_kids(&http, &b.url).await.contains(&kid), "both instances publish the signing key");
    assert!(c.active(&http, &a.url, &access).await, "A recognises B's access token");

    // The browser session started at A is known at B (cookies name no port): straight back
    // to the client, no sign-in, no consent.
    let (_, challenge) = pkce_pair();
    let same_browser = Browser { http: browser_a.http.clone(), base: b.url.clone() };
    let res = same_browser.get(&c.authorize_url(&b.url, "s2", &challenge)).await;
    assert_eq!(res.status(), 303);
    let back = follow_to_client(&same_browser, location(&res), "session from A at B").await;
    assert_eq!(query(&back)["state"], "s2");

    // Consent given at A is remembered at B: a new browser signs in at B and is not asked.
    let (verifier2, challenge2) = pkce_pair();
    let browser_b = Browser::new(&b.url);
    let (_, html) = browser_b.open_login(&c.authorize_url(&b.url, "s3", &challenge2)).await;
    let res = browser_b.sign_in(&html, USER, PASSWORD).await;
    assert_eq!(res.status(), 303, "sign-in at B");
    let back = follow_to_client(&browser_b, location(&res), "consent given at A, asked at B").await;
    let tokens2 = c.redeem(&http, &a.url, &query(&back)["code"], &verifier2).await;

    // A token revoked at A is inactive at B at once (revocations are read from the store).
    assert!(c.active(&http, &b.url, &access).await);
    let (status, _, _) = post(&http, &format!("{}/revoke", a.url), &c.client_id, &c.secret, &[("token", &access)]).await;
    assert_eq!(status, 200);
    assert!(!c.active(&http, &b.url, &access).await, "an access token revoked at A is inactive at B");
    let (status, _, _) = post(&http, &format!("{}/revoke", a.url), &c.client_id, &c.secret, &[("token", &refresh), ("token_type_hint", "refresh_token")]).await;
    assert_eq!(status, 200);
    assert!(!c.active(&http, &b.url, &refresh).await, "a refresh token revoked at A is inactive at B");
    let (status, body, _) = c.token(&http, &b.url, &[("grant_type", "refresh_token"), ("refresh_token", &refresh)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "a refresh token revoked at A is refused at B");
    assert!(c.active(&http, &b.url, tokens2["access_token"].as_str().unwrap()).await, "other grants are untouched");

    // A key rotation (`tessera keys rotate` on the shared database: published now, signing
    // after its publish delay) is in both instances' JWKS within the reload bound, and once it
    // signs, a token one instance signs with it is accepted by the other.
    let out = Command::new(crate::common::cluster::BIN)
        .args(["keys", "rotate", "--alg", "ES256", "--publish-delay", "6", "--json", "--database", &c.db.url])
        .env_remove("TESSERA_DATABASE_URL")
        .env_remove("TESSERA_KEY_ENCRYPTION_KEY_FILE")
        .env("TESSERA_KEY_ENCRYPTION_KEY", crate::common::cluster::KEK)
        .output()
        .unwrap();
    assert!(out.status.success(), "keys rotate: {}", String::from_utf8_lossy(&out.stderr));
    let rotated: Value = serde_json::from_slice(&out.stdout).unwrap();
    let new_kid = rotated[0]["kid"].as_str().unwrap().to_string();
    let signs_from = rotated[0]["use_after"].as_i64().unwrap();
    let started = Instant::now();
    let mut seen = [false, false];
    while seen != [true, true] {
        assert!(started.elapsed() < KEY_BOUND, "the new key is not in every JWKS after {KEY_BOUND:?} (A: {}, B: {})", seen[0], seen[1]);
        tokio::time::sleep(Duration::from_millis(100)).await;
        for (i, base) in [&a.url, &b.url].into_iter().enumerate() {
            seen[i] = seen[i] || jwks_kids(&http, base).await.contains(&new_kid);
        }
    }
    eprintln!("new key in both JWKS after {:?}", started.elapsed());
    while now() < signs_from + 1 {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, body, _) = c.token(&http, &b.url, &[("grant_type", "client_credentials"), ("scope", "notes.read")]).await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap();
    assert_eq!(kid_of(token), new_kid, "B signs with the rotated key once its publish delay has passed");
    assert!(c.active(&http, &a.url, token).await, "A accepts a token B signed with the rotated key");

    // The same refresh token sent to A and B at once: exactly one rotation succeeds.
    for round in 0..5 {
        let (verifier, challenge) = pkce_pair();
        let res = browser_b.get(&c.authorize_url(&b.url, "s4", &challenge)).await;
        let back = follow_to_client(&browser_b, location(&res), "signed-in browser").await;
        let tokens = c.redeem(&http, &b.url, &query(&back)["code"], &verifier).await;
        let rt = tokens["refresh_token"].as_str().unwrap();
        let form = [("grant_type", "refresh_token"), ("refresh_token", rt)];
        let (ra, rb) = tokio::join!(c.token(&http, &a.url, &form), c.token(&http, &b.url, &form));
        let ok = [&ra, &rb].iter().filter(|r| r.0 == 200).count();
        assert_eq!(ok, 1, "round {round}: exactly one of A and B rotates the token: A {} {}, B {} {}", ra.0, ra.1, rb.0, rb.1);
        let loser = if ra.0 == 200 { &rb } else { &ra };
        assert_eq!((loser.0, loser.1["error"].as_str()), (400, Some("invalid_grant")), "round {round}");
    }

    let (mut a, mut b) = (a, b);
    assert!(a.is_running() && b.is_running(), "both instances still run");
    for i in [&a, &b] {
        assert!(!i.log().contains("panicked"), "instance {} logged a panic:\n{}", i.name, i.log());
    }
}

/// RFC 6749 §4.1.2 across instances: 50 parallel redemptions of one code, spread over two
/// instances, succeed exactly once; the replays revoke what the one success issued.
#[tokio::test]
async fn fifty_parallel_redemptions_of_one_code() {
    let c = Cluster::create().await;
    let a = c.serve("a");
    let b = c.serve("b");
    let http = http();
    let (code, verifier) = c.code_at(&a.url).await;

    let tasks: Vec<_> = (0..50)
        .map(|i| {
            let url = format!("{}/token", if i % 2 == 0 { &a.url } else { &b.url });
            let (http, id, secret, code, verifier) = (http.clone(), c.client_id.clone(), c.secret.clone(), code.clone(), verifier.clone());
            tokio::spawn(async move {
                post(
                    &http,
                    &url,
                    &id,
                    &secret,
                    &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT), ("code_verifier", &verifier)],
                )
                .await
            })
        })
        .collect();
    let mut results = Vec::new();
    for t in tasks {
        results.push(t.await.unwrap());
    }
    let won: Vec<_> = results.iter().filter(|r| r.0 == 200).collect();
    assert_eq!(won.len(), 1, "exactly one redemption succeeds: {:?}", results.iter().map(|r| r.0).collect::<Vec<_>>());
    for r in results.iter().filter(|r| r.0 != 200) {
        assert_eq!((r.0, r.1["error"].as_str()), (400, Some("invalid_grant")), "every other redemption is invalid_grant: {}", r.1);
    }

    // The replays revoked the grant: its refresh token and access token are dead everywhere.
    let issued = &won[0].1;
    let access = issued["access_token"].as_str().unwrap();
    let refresh = issued["refresh_token"].as_str().unwrap();
    for base in [&a.url, &b.url] {
        assert!(!c.active(&http, base, access).await, "the access token of a replayed code is revoked");
        assert!(!c.active(&http, base, refresh).await, "the refresh token of a replayed code is revoked");
        let (status, body, _) = c.token(&http, base, &[("grant_type", "refresh_token"), ("refresh_token", refresh)]).await;
        assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")));
    }
    assert!(!c.store.list_audit_events("code_replay").await.unwrap().is_empty(), "the replay is recorded");
}
