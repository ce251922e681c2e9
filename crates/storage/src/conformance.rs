//! The storage conformance suite: written once, run against every backend
//! (`cargo test -p tessera-storage-sqlite`, and the PostgreSQL backend when it lands).
//! Each function panics with a message naming the contract it found broken.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::*;
use std::sync::Arc;

/// Run every check against a fresh, empty store.
pub async fn run_all(store: Arc<dyn Store>) {
    clients(&*store).await;
    users(&*store).await;
    apis(&*store).await;
    keys(&*store).await;
    sessions_and_pending(&*store).await;
    consents(&*store).await;
    codes_are_single_use(store.clone()).await;
    refresh_rotation(store.clone()).await;
    login_failures(&*store).await;
    audit(&*store).await;
}

pub fn client(id: &str) -> ClientRecord {
    ClientRecord {
        client_id: id.into(),
        name: "App".into(),
        secret_hash: Some("ab".repeat(32)),
        redirect_uris: vec!["https://app.example/cb".into(), "https://app.example/cb2".into()],
        scope: "notes.read notes.write".into(),
        grant_types: vec!["authorization_code".into(), "refresh_token".into()],
        token_endpoint_auth_method: "client_secret_basic".into(),
        created_at: 100,
    }
}

pub async fn clients(s: &dyn Store) {
    let c = client("c-1");
    s.create_client(&c).await.unwrap();
    assert!(matches!(s.create_client(&c).await, Err(StoreError::Conflict(_))), "duplicate client_id must be a Conflict");
    assert_eq!(s.find_client("c-1").await.unwrap(), Some(c.clone()), "find returns what create stored");
    assert_eq!(s.find_client("nope").await.unwrap(), None);
    assert!(s.update_client_secret("c-1", &"cd".repeat(32)).await.unwrap());
    assert_eq!(s.find_client("c-1").await.unwrap().unwrap().secret_hash, Some("cd".repeat(32)));
    assert!(!s.update_client_secret("nope", "x").await.unwrap());
    s.create_client(&client("c-2")).await.unwrap();
    assert_eq!(s.list_clients().await.unwrap().len(), 2);
    assert!(s.delete_client("c-2").await.unwrap());
    assert!(!s.delete_client("c-2").await.unwrap(), "delete of a missing client returns false");
    assert_eq!(s.find_client("c-2").await.unwrap(), None);
}

pub async fn users(s: &dyn Store) {
    let u = UserRecord { id: "u-1".into(), username: "alice".into(), email: Some("a@x.example".into()), name: Some("Alice".into()), password_hash: "$argon2id$x".into(), created_at: 1 };
    s.create_user(&u).await.unwrap();
    let dup = UserRecord { id: "u-2".into(), ..u.clone() };
    assert!(matches!(s.create_user(&dup).await, Err(StoreError::Conflict(_))), "usernames are unique");
    assert_eq!(s.find_user_by_username("alice").await.unwrap(), Some(u.clone()));
    assert_eq!(s.find_user("u-1").await.unwrap(), Some(u.clone()));
    assert!(s.update_user_password("alice", "$argon2id$y").await.unwrap());
    assert_eq!(s.find_user("u-1").await.unwrap().unwrap().password_hash, "$argon2id$y");
    assert_eq!(s.list_users().await.unwrap().len(), 1);
    assert!(s.delete_user("alice").await.unwrap());
    assert_eq!(s.find_user_by_username("alice").await.unwrap(), None);
}

pub async fn apis(s: &dyn Store) {
    let a = ApiRecord {
        identifier: "https://notes.example".into(),
        name: "Notes".into(),
        scopes: vec![ApiScope { name: "notes.read".into(), description: "Read your notes".into() }],
        created_at: 1,
    };
    s.create_api(&a).await.unwrap();
    assert!(matches!(s.create_api(&a).await, Err(StoreError::Conflict(_))));
    assert_eq!(s.list_apis().await.unwrap(), vec![a]);
    assert!(s.delete_api("https://notes.example").await.unwrap());
    assert!(s.list_apis().await.unwrap().is_empty());
}

pub async fn keys(s: &dyn Store) {
    let k1 = KeyRecord { kid: "k1".into(), alg: "ES256".into(), private_der: vec![1, 2, 3], created_at: 1 };
    let k2 = KeyRecord { kid: "k2".into(), alg: "ES256".into(), private_der: vec![4], created_at: 2 };
    s.create_signing_key(&k2).await.unwrap();
    s.create_signing_key(&k1).await.unwrap();
    assert_eq!(s.list_signing_keys().await.unwrap(), vec![k1, k2], "keys are listed oldest first");
}

pub async fn sessions_and_pending(s: &dyn Store) {
    let sess = SessionRecord { id_hash: "h1".into(), user_id: Some("u-1".into()), csrf_token: "t".into(), auth_time: Some(5), created_at: 5, expires_at: 100 };
    s.create_session(&sess).await.unwrap();
    assert_eq!(s.find_session("h1", 50).await.unwrap(), Some(sess.clone()));
    assert_eq!(s.find_session("h1", 100).await.unwrap(), None, "expired sessions are not found");
    s.delete_session("h1").await.unwrap();
    assert_eq!(s.find_session("h1", 50).await.unwrap(), None);
    let p = PendingRequestRecord { id: "p1".into(), session_hash: "h1".into(), data: "{}".into(), expires_at: 100 };
    s.create_pending_request(&p).await.unwrap();
    assert_eq!(s.find_pending_request("p1", 99).await.unwrap(), Some(p));
    assert_eq!(s.find_pending_request("p1", 100).await.unwrap(), None);
    s.delete_pending_request("p1").await.unwrap();
    assert_eq!(s.find_pending_request("p1", 0).await.unwrap(), None);
}

pub async fn consents(s: &dyn Store) {
    assert_eq!(s.find_consent("u", "c").await.unwrap(), None);
    s.update_consent("u", "c", "a", 1).await.unwrap();
    s.update_consent("u", "c", "a b", 2).await.unwrap();
    assert_eq!(s.find_consent("u", "c").await.unwrap().as_deref(), Some("a b"), "update replaces the stored scopes");
    assert_eq!(s.find_consent("u", "other").await.unwrap(), None, "consent is per client");
}

pub fn code(hash: &str) -> CodeRecord {
    CodeRecord {
        code_hash: hash.into(),
        grant_id: format!("g-{hash}"),
        client_id: "c-1".into(),
        user_id: "u-1".into(),
        redirect_uri: "https://app.example/cb".into(),
        redirect_uri_given: true,
        code_challenge: Some("E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM".into()),
        scope: "notes.read".into(),
        audience: "[\"https://notes.example\"]".into(),
        auth_time: 10,
        expires_at: 70,
        used_at: None,
    }
}

/// Of 20 concurrent takes of one code exactly one wins.
pub async fn codes_are_single_use(s: Arc<dyn Store>) {
    let c = code("code-1");
    s.create_code(&c).await.unwrap();
    let takes = (0..20).map(|_| {
        let s = s.clone();
        async move { s.take_code("code-1", 20).await.unwrap() }
    });
    let results = futures_util::future::join_all(takes).await;
    let won: Vec<_> = results.iter().filter(|r| matches!(r, Taken::Taken(_))).collect();
    assert_eq!(won.len(), 1, "exactly one take of a code wins");
    assert_eq!(results.iter().filter(|r| matches!(r, Taken::AlreadyUsed(_))).count(), 19);
    if let Taken::Taken(got) = won[0] {
        assert_eq!(got, &c, "take returns the stored record");
    }
    assert_eq!(s.take_code("missing", 20).await.unwrap(), Taken::NotFound);
}

pub fn refresh(hash: &str, family: &str) -> RefreshTokenRecord {
    RefreshTokenRecord {
        token_hash: hash.into(),
        family_id: family.into(),
        client_id: "c-1".into(),
        user_id: "u-1".into(),
        scope: "notes.read".into(),
        audience: "[]".into(),
        auth_time: 1,
        created_at: 1,
        expires_at: 1_000,
        used_at: None,
        revoked_at: None,
    }
}

pub async fn refresh_rotation(s: Arc<dyn Store>) {
    s.create_refresh_token(&refresh("r1", "f1")).await.unwrap();
    s.create_refresh_token(&refresh("r2", "f1")).await.unwrap();
    s.create_refresh_token(&refresh("other", "f2")).await.unwrap();
    assert_eq!(s.find_refresh_token("r1").await.unwrap(), Some(refresh("r1", "f1")));
    assert_eq!(s.find_refresh_token("nope").await.unwrap(), None);
    let takes = (0..20).map(|_| {
        let s = s.clone();
        async move { s.take_refresh_token("r1", 5).await.unwrap() }
    });
    let results = futures_util::future::join_all(takes).await;
    assert_eq!(results.iter().filter(|r| matches!(r, Taken::Taken(_))).count(), 1, "exactly one rotation wins");
    assert!(matches!(s.take_refresh_token("r2", 2_000).await.unwrap(), Taken::AlreadyUsed(_)), "an expired token is not taken");
    s.create_refresh_token(&refresh("r3", "f1")).await.unwrap();
    assert_eq!(s.revoke_family("f1", 6).await.unwrap(), 2, "revoke counts live tokens of the family");
    match s.take_refresh_token("r3", 7).await.unwrap() {
        Taken::AlreadyUsed(r) => assert_eq!(r.revoked_at, Some(6)),
        other => panic!("a revoked token must not be taken: {other:?}"),
    }
    assert!(matches!(s.take_refresh_token("other", 7).await.unwrap(), Taken::Taken(_)), "other families are untouched");
    assert_eq!(s.take_refresh_token("nope", 7).await.unwrap(), Taken::NotFound);
}

pub async fn login_failures(s: &dyn Store) {
    for t in [10, 20, 30] {
        s.record_login_failure("user:alice", t).await.unwrap();
    }
    assert_eq!(s.count_login_failures("user:alice", 0).await.unwrap(), 3);
    assert_eq!(s.count_login_failures("user:alice", 15).await.unwrap(), 2, "only failures since the window start count");
    assert_eq!(s.count_login_failures("user:bob", 0).await.unwrap(), 0);
    s.clear_login_failures("user:alice").await.unwrap();
    assert_eq!(s.count_login_failures("user:alice", 0).await.unwrap(), 0);
}

pub async fn audit(s: &dyn Store) {
    s.create_audit_event("code_replay", "client c-1", 1).await.unwrap();
    assert_eq!(s.list_audit_events("code_replay").await.unwrap(), vec!["client c-1".to_string()]);
}
