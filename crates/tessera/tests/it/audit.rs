//! The audit log (issue 16) over real HTTP: what users and clients do is recorded with whom it
//! concerns — sign-ins (and failures), consents granted, tokens revoked, refresh reuse — and
//! found again by time, kind, user and client, newest first.

use crate::common::*;
use serde_json::Value;
use tessera_storage::{AuditEvent, AuditQuery};

const REDIRECT: &str = "https://app.example/cb";

async fn events(s: &TestServer, q: AuditQuery) -> Vec<AuditEvent> {
    s.svc.store.find_audit_events(&AuditQuery { limit: 100, ..q }).await.unwrap()
}

#[tokio::test]
async fn sign_ins_consents_and_revocations_are_recorded_with_user_and_client() {
    let s = TestServer::start().await;
    let (id, secret) = s.confidential_client(REDIRECT).await;
    let alice = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap().id;

    // A failed sign-in, then a successful one and a consent.
    let b = Browser::new(&s.url);
    let url = s.authorize_url(&id, REDIRECT, "notes.read", "st", None);
    let (_, html) = b.open_login(&url).await;
    assert_eq!(b.sign_in(&html, USER, "wrong password").await.status(), 401, "the sign-in page again");
    let back = b.journey_as(&url, USER).await;
    let code = query(&back).remove("code").unwrap();
    let (_, t, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    let (status, _, _) = post(&s.url, "/revoke", Some((&id, &secret)), &[("token", t["access_token"].as_str().unwrap())]).await;
    assert_eq!(status, 200);

    let kinds: Vec<String> = events(&s, AuditQuery::default()).await.into_iter().map(|e| e.kind).collect();
    assert_eq!(kinds, ["token_revoked", "consent_granted", "sign_in", "sign_in_failed"], "newest first");
    let signed_in = &events(&s, AuditQuery { kind: Some("sign_in".into()), ..Default::default() }).await[0];
    assert_eq!(signed_in.user_id.as_deref(), Some(alice.as_str()));
    let detail: Value = serde_json::from_str(&signed_in.detail).unwrap();
    assert_eq!((detail["username"].as_str(), detail["address"].as_str()), (Some(USER), Some("127.0.0.1")));
    let by_client = events(&s, AuditQuery { client_id: Some(id.clone()), ..Default::default() }).await;
    assert_eq!(by_client.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["token_revoked", "consent_granted"]);
    assert!(by_client.iter().all(|e| e.user_id.as_deref() == Some(alice.as_str()) && e.actor.is_empty()), "{by_client:?}");
    let consent: Value = serde_json::from_str(&by_client[1].detail).unwrap();
    assert_eq!(consent["scope"], "notes.read");
    let by_user = events(&s, AuditQuery { user_id: Some(alice), ..Default::default() }).await;
    assert_eq!(by_user.len(), 3, "the failed sign-in names no user id: {by_user:?}");

    // A second authorization within the consent adds no consent event.
    let again = Browser::new(&s.url).journey_as(&url, USER).await;
    assert!(query(&again).contains_key("code"));
    assert_eq!(events(&s, AuditQuery { kind: Some("consent_granted".into()), ..Default::default() }).await.len(), 1);
    // Time filters: nothing before the start, everything after.
    let now = tessera_server::Clock::now(&*s.clock);
    assert!(events(&s, AuditQuery { until: Some(now - 3600), ..Default::default() }).await.is_empty());
    assert_eq!(events(&s, AuditQuery { since: Some(now - 3600), ..Default::default() }).await.len(), 5, "and the second sign-in");
}
