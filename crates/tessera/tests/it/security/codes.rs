//! Authorization codes and redirects (issue 13, findings 15 and 16): only the client a code was
//! issued to can end its grant by replaying it (RFC 6749 §4.1.2, §10.5), and a post-logout
//! redirect goes to the registered URI exactly (RP-Initiated Logout 1.0 §3).

use crate::common::*;
use serde_json::Value;
use tessera_server::service::admin::NewClient;

const CB: &str = "http://127.0.0.1:9/cb";
const BYE: &str = "http://127.0.0.1:9/loggedout.html";

fn code_of(redirect: &str) -> String {
    assert!(redirect.starts_with(CB), "expected a redirect to the client, got {redirect}");
    query(redirect).get("code").cloned().unwrap_or_else(|| panic!("no code in {redirect}"))
}

async fn redeem(s: &TestServer, client_id: &str, code: &str, verifier: &str) -> (u16, Value) {
    let (st, body, _) = token_form(
        &s.url,
        &[("grant_type", "authorization_code"), ("code", code), ("redirect_uri", CB), ("code_verifier", verifier), ("client_id", client_id)],
    )
    .await;
    (st, body)
}

async fn refresh(s: &TestServer, client_id: &str, rt: &str) -> (u16, Value) {
    let (st, body, _) = token_form(&s.url, &[("grant_type", "refresh_token"), ("refresh_token", rt), ("client_id", client_id)]).await;
    (st, body)
}

/// Finding 15: a used code presented by another (public) client is refused without touching the
/// grant; presented again by the client it was issued to, it revokes the grant. RFC 6749 §4.1.2
/// ("SHOULD revoke … all tokens previously issued based on that authorization code"), §10.5.
#[tokio::test]
async fn regression_replay_by_another_client_keeps_the_grant_rfc6749_4_1_2() {
    let s = TestServer::start().await;
    let a = s.public_client(CB).await;
    let other = s.public_client(CB).await;
    let b = Browser::new(&s.url);
    let (verifier, challenge) = pkce_pair();
    let code = code_of(&b.authorize_and_allow(&s.authorize_url(&a, CB, "notes.read", "s", Some(&challenge))).await);
    let (st, tokens) = redeem(&s, &a, &code, &verifier).await;
    assert_eq!(st, 200, "{tokens}");
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();

    // Another client presents the used code, even with the right verifier and redirect URI.
    let (st, body) = redeem(&s, &other, &code, &verifier).await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let (st, body) = refresh(&s, &a, &rt).await;
    assert_eq!(st, 200, "the grant survives another client's replay: {body}");
    let rt = body["refresh_token"].as_str().unwrap().to_string();
    assert!(s.svc.store.list_audit_events("code_replay").await.unwrap().is_empty(), "no replay of the grant was recorded");

    // The client it was issued to presents it again: the grant ends.
    let (st, body) = redeem(&s, &a, &code, &verifier).await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    let (st, body) = refresh(&s, &a, &rt).await;
    assert_eq!((st, body["error"].as_str()), (400, Some("invalid_grant")), "the replay by its own client revokes the grant: {body}");
}

/// Finding 16: a post-logout redirect without `state` is the registered URI, character for
/// character (no trailing `?`); with `state`, the URI and `?state=`. RP-Initiated Logout 1.0 §3
/// (the URI "MUST have been previously registered"; exact match).
#[tokio::test]
async fn regression_post_logout_redirect_is_the_registered_uri_rp_initiated_logout_3() {
    let s = TestServer::start().await;
    let c = s
        .client(NewClient {
            name: "App".into(),
            redirect_uris: vec![CB.into()],
            scope: "openid".into(),
            post_logout_redirect_uris: vec![BYE.into()],
            ..Default::default()
        })
        .await;
    let id = c.client.client_id;
    let enc = |v: &str| form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>();
    let logout = format!("{}/logout?client_id={id}&post_logout_redirect_uri={}", s.url, enc(BYE));

    // No session: straight back.
    let res = Browser::new(&s.url).get(&logout).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), BYE);
    let res = Browser::new(&s.url).get(&format!("{logout}&state=xyz")).await;
    assert_eq!(location(&res), format!("{BYE}?state=xyz"));

    // A signed-in user confirms first.
    let b = Browser::new(&s.url);
    let (_, challenge) = pkce_pair();
    code_of(&b.authorize_and_allow(&s.authorize_url(&id, CB, "openid", "s", Some(&challenge))).await);
    let res = b.get(&logout).await;
    assert_eq!(res.status(), 200, "the confirmation page");
    let html = res.text().await.unwrap();
    let res =
        b.post_form("/logout", &[("confirm", "yes"), ("csrf", &hidden(&html, "csrf").unwrap()), ("client_id", &id), ("post_logout_redirect_uri", BYE)]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(location(&res), BYE);
}
