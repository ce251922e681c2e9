//! The storage conformance suite (feature `conformance`): written once, run against every
//! backend by one line, [`conformance_tests!`](crate::conformance_tests), which generates one
//! `#[tokio::test]` per check, grouped in one module per contract. Each test opens a fresh
//! database through the backend's [`Factory`]; the race checks spread their racers over two
//! handles on that database ([`Factory::second`]: another process's, or another instance's,
//! connections). Each check panics with a message naming the contract it found broken.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::*;
use std::sync::Arc;
use tessera_protocol::client::{AuthMethod, GrantType};
use tessera_protocol::scope::Scopes;

/// How a backend opens stores for the suite.
#[allow(async_fn_in_trait)]
pub trait Factory: Sized {
    /// A fresh, empty database and a store on it. The factory owns the database (a temporary
    /// folder, a test database) for as long as it lives.
    async fn open() -> Self;
    /// The store [`Factory::open`] opened.
    fn store(&self) -> Arc<dyn Store>;
    /// A second handle on the same database, with connections of its own (the same store where
    /// the database cannot be shared, e.g. SQLite in memory).
    async fn second(&self) -> Arc<dyn Store>;
}

/// The handles a check runs on: `a`, and `b` on the same database.
pub struct Handles {
    pub a: Arc<dyn Store>,
    pub b: Arc<dyn Store>,
}

impl Handles {
    /// Open a fresh database through `F`, with both handles.
    pub async fn open<F: Factory>() -> (F, Self) {
        let f = F::open().await;
        let (a, b) = (f.store(), f.second().await);
        (f, Self { a, b })
    }
    /// The handle racer `i` uses: the two alternately.
    pub fn pick(&self, i: usize) -> Arc<dyn Store> {
        if i.is_multiple_of(2) { self.a.clone() } else { self.b.clone() }
    }
}

/// The suite for the backend whose [`Factory`] is `$factory`: one test per check, one module
/// per contract. `$factory` is a path from the crate root (e.g. `crate::tests::MyFactory`),
/// as the tests sit in modules of their own. Needs `tokio` (with its `macros` and `rt` features) in the caller's
/// dev-dependencies.
#[macro_export]
macro_rules! conformance_tests {
    ($factory:ty) => {
        $crate::conformance_tests!(@contract $factory, clients: clients);
        $crate::conformance_tests!(@contract $factory, users: users, new_password_ends_access, deleted_user_leaves_nothing, disabled_user_loses_access; races: concurrent_user_deletions);
        $crate::conformance_tests!(@contract $factory, accounts: require_mfa_and_email_verification, rehash_is_compare_and_swap, factors_belong_to_their_user, deleted_user_takes_factors_and_tokens; races: totp_steps_are_single_use, recovery_codes_are_single_use, user_tokens_are_single_use);
        $crate::conformance_tests!(@contract $factory, apis: apis);
        $crate::conformance_tests!(@contract $factory, keys: ; races: keys, key_reseal_is_compare_and_swap);
        $crate::conformance_tests!(@contract $factory, sessions: sessions_and_pending, session_clients, user_sessions, session_devices_and_last_use);
        $crate::conformance_tests!(@contract $factory, consents: consents, consent_removal);
        $crate::conformance_tests!(@contract $factory, codes: ; races: codes_are_single_use, code_redemption_is_atomic);
        $crate::conformance_tests!(@contract $factory, refresh_tokens: revoked_family_stays_revoked; races: refresh_rotation, refresh_grace, rotation_is_atomic);
        $crate::conformance_tests!(@contract $factory, revocations: revocation);
        $crate::conformance_tests!(@contract $factory, device_codes: ; races: device_codes, device_redemption_is_atomic);
        $crate::conformance_tests!(@contract $factory, throttles: throttles; races: throttles_are_atomic);
        $crate::conformance_tests!(@contract $factory, dpop: dpop_nonces, dpop_bindings_round_trip; races: dpop_proofs_are_single_use);
        $crate::conformance_tests!(@contract $factory, assertions: ; races: assertions_are_single_use);
        $crate::conformance_tests!(@contract $factory, groups: groups_and_members, deleting_a_group_takes_its_members_and_roles);
        $crate::conformance_tests!(@contract $factory, roles: roles_held_directly_and_through_groups, deletions_take_role_grants_along);
        $crate::conformance_tests!(@contract $factory, audit: audit, audit_queries);
        $crate::conformance_tests!(@contract $factory, config: config_changes_apply_together, config_changes_all_or_none);
        $crate::conformance_tests!(@contract $factory, maintenance: expiry_cleanup, ping_answers);
    };
    (@contract $factory:ty, $contract:ident: $($check:ident),* $(; races: $($race:ident),*)?) => {
        mod $contract {
            #[allow(unused_imports)]
            use super::*;
            $(
                #[::tokio::test]
                async fn $check() {
                    let (_db, h) = $crate::conformance::Handles::open::<$factory>().await;
                    $crate::conformance::$check(&*h.a).await;
                }
            )*
            $($(
                #[::tokio::test]
                async fn $race() {
                    let (_db, h) = $crate::conformance::Handles::open::<$factory>().await;
                    $crate::conformance::$race(&h).await;
                }
            )*)?
        }
    };
}

fn scopes(s: &str) -> Scopes {
    Scopes::parse(s).unwrap()
}

pub fn client(id: &str) -> ClientRecord {
    ClientRecord {
        client_id: id.into(),
        name: "App".into(),
        secret_hash: Some("ab".repeat(32)),
        redirect_uris: vec!["https://app.example/cb".into(), "https://app.example/cb2".into()],
        scope: scopes("notes.read notes.write"),
        grant_types: vec![GrantType::AuthorizationCode, GrantType::RefreshToken],
        token_endpoint_auth_method: AuthMethod::ClientSecretBasic,
        created_at: 100,
        post_logout_redirect_uris: vec!["https://app.example/bye".into()],
        backchannel_logout_uri: Some("https://app.example/bcl".into()),
        id_token_signed_response_alg: Some("ES256".into()),
        subject_type: "public".into(),
        allowed_origins: vec!["https://spa.example".into()],
        require_dpop: false,
        require_mfa: false,
        jwks: None,
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
    // An update replaces the registration but keeps the id, the secret and the creation time.
    let mut changed = ClientRecord {
        name: "Renamed".into(),
        redirect_uris: vec!["https://new.example/cb".into()],
        scope: scopes("notes.read"),
        allowed_origins: vec!["https://a.example".into(), "http://localhost:3000".into()],
        require_dpop: true,
        jwks: Some(serde_json::json!({"keys": [{"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}]})),
        secret_hash: None,
        created_at: 999,
        ..c.clone()
    };
    assert!(s.update_client(&changed).await.unwrap());
    changed.secret_hash = Some("cd".repeat(32));
    changed.created_at = c.created_at;
    assert_eq!(s.find_client("c-1").await.unwrap(), Some(changed.clone()));
    assert!(!s.update_client(&ClientRecord { client_id: "nope".into(), ..changed }).await.unwrap());
    s.create_client(&client("c-2")).await.unwrap();
    assert_eq!(s.list_clients().await.unwrap().len(), 2);
    assert!(s.delete_client("c-2").await.unwrap());
    assert!(!s.delete_client("c-2").await.unwrap(), "delete of a missing client returns false");
    assert_eq!(s.find_client("c-2").await.unwrap(), None);
}

pub async fn users(s: &dyn Store) {
    let mut profile = serde_json::Map::new();
    profile.insert("given_name".into(), serde_json::json!("Alice"));
    profile.insert("address".into(), serde_json::json!({"country": "NZ"}));
    let u = UserRecord {
        id: "u-1".into(),
        username: "alice".into(),
        email: Some("a@x.example".into()),
        name: Some("Alice".into()),
        password_hash: "$argon2id$x".into(),
        created_at: 1,
        profile,
        updated_at: 1,
        disabled_at: None,
        is_admin: false,
        require_mfa: false,
        email_verified: false,
    };
    s.create_user(&u).await.unwrap();
    let dup = UserRecord { id: "u-2".into(), ..u.clone() };
    assert!(matches!(s.create_user(&dup).await, Err(StoreError::Conflict(_))), "usernames are unique");
    assert_eq!(s.find_user_by_username("alice").await.unwrap(), Some(u.clone()));
    assert_eq!(s.find_user("u-1").await.unwrap(), Some(u.clone()));
    assert!(s.update_user_password("alice", "$argon2id$y", None, 2).await.unwrap());
    assert_eq!(s.find_user("u-1").await.unwrap().unwrap().password_hash, "$argon2id$y");
    let mut changed = s.find_user("u-1").await.unwrap().unwrap();
    changed.email = Some("new@x.example".into());
    changed.profile.insert("family_name".into(), serde_json::json!("Doe"));
    changed.updated_at = 9;
    assert!(s.update_user(&changed).await.unwrap());
    assert_eq!(s.find_user("u-1").await.unwrap().unwrap(), changed, "update_user stores email, name, profile");
    assert_eq!(s.list_users().await.unwrap().len(), 1);
    // By email, any ASCII case: everyone with the address, oldest first; nobody for another.
    let bob = UserRecord { id: "u-3".into(), username: "bob".into(), email: Some("New@X.example".into()), created_at: 5, ..u.clone() };
    s.create_user(&bob).await.unwrap();
    let found: Vec<String> = s.find_users_by_email("NEW@x.EXAMPLE").await.unwrap().into_iter().map(|u| u.id).collect();
    assert_eq!(found, ["u-1", "u-3"], "find_users_by_email: every user with the address, oldest first");
    assert!(s.find_users_by_email("a@x.example").await.unwrap().is_empty(), "find_users_by_email: an old address finds nobody");
    assert!(s.delete_user("bob").await.unwrap());
    assert!(s.delete_user("alice").await.unwrap());
    assert_eq!(s.find_user_by_username("alice").await.unwrap(), None);
}

pub async fn apis(s: &dyn Store) {
    let a = ApiRecord {
        identifier: "https://notes.example".into(),
        name: "Notes".into(),
        scopes: vec![ApiScope { name: "notes.read".into(), description: "Read your notes".into() }],
        created_at: 1,
        secret_hash: None,
        roles: vec![ApiRole { name: "editor".into(), description: "Can edit".into() }],
    };
    s.create_api(&a).await.unwrap();
    assert!(matches!(s.create_api(&a).await, Err(StoreError::Conflict(_))));
    assert_eq!(s.list_apis().await.unwrap(), vec![a.clone()]);
    assert!(s.update_api_secret("https://notes.example", "ab").await.unwrap());
    assert_eq!(s.list_apis().await.unwrap()[0].secret_hash.as_deref(), Some("ab"));
    assert!(!s.update_api_secret("https://none.example", "ab").await.unwrap());
    assert!(s.delete_api("https://notes.example").await.unwrap());
    assert!(s.list_apis().await.unwrap().is_empty());
}

pub async fn keys(h: &Handles) {
    let s = &*h.a;
    let k1 = KeyRecord { kid: "k1".into(), alg: "ES256".into(), private_der: vec![1, 2, 3], created_at: 1, use_after: 1 };
    let k2 = KeyRecord { kid: "k2".into(), alg: "RS256".into(), private_der: vec![4], created_at: 2, use_after: 60 };
    s.create_signing_key(&k2).await.unwrap();
    s.create_signing_key(&k1).await.unwrap();
    assert!(matches!(s.create_signing_key(&k1).await, Err(StoreError::Conflict(_))));
    assert_eq!(s.list_signing_keys().await.unwrap(), vec![k1.clone(), k2.clone()], "keys are listed oldest first");
    assert!(s.delete_signing_key("k1").await.unwrap());
    assert_eq!(s.list_signing_keys().await.unwrap(), vec![k2.clone()]);

    // Conditional creation: k2 (RS256) signs from 60 on and was created at 2.
    let key = |kid: &str, alg: &str, at: i64| KeyRecord { kid: kid.into(), alg: alg.into(), private_der: vec![9], created_at: at, use_after: at };
    assert!(s.create_signing_key_unless(&key("r1", "RS256", 10), ExistingKey::SignsAt(10)).await.unwrap(), "k2 does not sign yet at 10");
    assert!(!s.create_signing_key_unless(&key("r2", "RS256", 70), ExistingKey::SignsAt(70)).await.unwrap(), "k2 and r1 sign at 70");
    assert!(s.create_signing_key_unless(&key("e1", "EdDSA", 70), ExistingKey::SignsAt(70)).await.unwrap(), "another algorithm is not a reason");
    assert!(!s.create_signing_key_unless(&key("r3", "RS256", 80), ExistingKey::CreatedSince(5)).await.unwrap(), "r1 was created at 10");
    assert!(s.create_signing_key_unless(&key("r4", "RS256", 90), ExistingKey::CreatedSince(11)).await.unwrap());
    let kids: Vec<String> = s.list_signing_keys().await.unwrap().into_iter().map(|k| k.kid).collect();
    assert_eq!(kids, ["k2", "r1", "e1", "r4"]);
    // Many at once (several connections where the backend has them): exactly one is stored.
    // Races show only sometimes, so several rounds, each for an algorithm of its own.
    for round in 0..6 {
        let alg = format!("RACE{round}");
        let racers = (0..12).map(|i| {
            let (alg, s) = (alg.clone(), h.pick(i));
            async move { s.create_signing_key_unless(&key(&format!("race-{round}-{i}"), &alg, 100), ExistingKey::SignsAt(100)).await.unwrap() }
        });
        let stored = futures_util::future::join_all(racers).await;
        assert_eq!(stored.iter().filter(|&&b| b).count(), 1, "one key per algorithm, whoever wins");
    }
    for k in s.list_signing_keys().await.unwrap() {
        s.delete_signing_key(&k.kid).await.unwrap();
    }
    s.create_signing_key(&k2).await.unwrap();
}

pub async fn sessions_and_pending(s: &dyn Store) {
    let sess = SessionRecord {
        id_hash: "h1".into(),
        sid: "sid-1".into(),
        user_id: Some("u-1".into()),
        amr: Some("pwd".into()),
        csrf_token: "t".into(),
        auth_time: Some(5),
        created_at: 5,
        expires_at: 100,
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0".into()),
        address: Some("192.0.2.7".into()),
        last_used_at: 5,
    };
    s.create_session(&sess).await.unwrap();
    assert_eq!(s.find_session("h1", 50).await.unwrap(), Some(sess.clone()));
    assert_eq!(s.find_session_by_sid("sid-1", 50).await.unwrap(), Some(sess.clone()));
    assert_eq!(s.find_session_by_sid("sid-1", 100).await.unwrap(), None);
    assert_eq!(s.find_session("h1", 100).await.unwrap(), None, "expired sessions are not found");
    s.delete_session("h1").await.unwrap();
    assert_eq!(s.find_session("h1", 50).await.unwrap(), None);
    let p = PendingRequestRecord { id: "p1".into(), session_hash: "h1".into(), data: "{}".into(), expires_at: 100 };
    s.create_pending_request(&p).await.unwrap();
    assert_eq!(s.find_pending_request("p1", 99).await.unwrap(), Some(p));
    assert_eq!(s.find_pending_request("p1", 100).await.unwrap(), None);
    s.delete_pending_request("p1").await.unwrap();
    assert_eq!(s.find_pending_request("p1", 0).await.unwrap(), None);

    // Sign-in: the anonymous session gives way to a new one, and its pending request follows.
    let anon = SessionRecord {
        id_hash: "anon".into(),
        sid: "sid-a".into(),
        user_id: None,
        amr: None,
        csrf_token: "c".into(),
        auth_time: None,
        created_at: 5,
        expires_at: 100,
        user_agent: None,
        address: None,
        last_used_at: 5,
    };
    s.create_session(&anon).await.unwrap();
    s.create_pending_request(&PendingRequestRecord { id: "p2".into(), session_hash: "anon".into(), data: "{\"v\":1}".into(), expires_at: 50 }).await.unwrap();
    let other = PendingRequestRecord { id: "p3".into(), session_hash: "anon".into(), data: "{}".into(), expires_at: 50 };
    s.create_pending_request(&other).await.unwrap();
    let signed_in = SessionRecord {
        id_hash: "fresh".into(),
        sid: "sid-f".into(),
        user_id: Some("u-1".into()),
        amr: Some("pwd".into()),
        csrf_token: "c2".into(),
        auth_time: Some(7),
        created_at: 7,
        expires_at: 200,
        // The sign-in's device, through the one-statement change on PostgreSQL too.
        user_agent: Some("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) Version/17.5 Safari/605.1.15".into()),
        address: Some("2001:db8:1:2::".into()),
        last_used_at: 7,
    };
    let moved = PendingRequestRecord { id: "p2".into(), session_hash: "fresh".into(), data: "{\"v\":2}".into(), expires_at: 60 };
    s.replace_session("anon", &signed_in, &moved).await.unwrap();
    assert_eq!(s.find_session("anon", 6).await.unwrap(), None, "the old session is gone");
    assert_eq!(s.find_session("fresh", 8).await.unwrap(), Some(signed_in.clone()));
    assert_eq!(s.find_pending_request("p2", 8).await.unwrap(), Some(moved.clone()), "the pending request is rebound and updated");
    assert_eq!(s.find_pending_request("p3", 8).await.unwrap(), Some(other), "other pending requests are untouched");
    // A pending request that expired or was removed meanwhile is stored again.
    s.delete_pending_request("p2").await.unwrap();
    let again = SessionRecord { id_hash: "fresh2".into(), sid: "sid-g".into(), ..signed_in.clone() };
    s.replace_session("fresh", &again, &moved).await.unwrap();
    assert_eq!(s.find_pending_request("p2", 8).await.unwrap(), Some(moved));
    assert_eq!(s.find_session("fresh", 8).await.unwrap(), None);
    // A new session id that exists already is a conflict, and nothing changes.
    let taken = SessionRecord { id_hash: "taken".into(), sid: "sid-t".into(), ..anon.clone() };
    s.create_session(&taken).await.unwrap();
    assert!(
        s.replace_session("fresh2", &taken, &PendingRequestRecord { id: "p4".into(), session_hash: "taken".into(), data: "{}".into(), expires_at: 60 })
            .await
            .is_err()
    );
    assert_eq!(s.find_session("fresh2", 8).await.unwrap(), Some(again), "the old session stays");
    assert_eq!(s.find_session("taken", 8).await.unwrap(), Some(taken));
    assert_eq!(s.find_pending_request("p4", 8).await.unwrap(), None, "a failed replacement stores nothing");
}

pub async fn consents(s: &dyn Store) {
    assert_eq!(s.find_consent("u", "c").await.unwrap(), None);
    s.update_consent("u", "c", &scopes("a"), 1).await.unwrap();
    s.update_consent("u", "c", &scopes("a b"), 2).await.unwrap();
    assert_eq!(s.find_consent("u", "c").await.unwrap(), Some(scopes("a b")), "update replaces the stored scopes");
    assert_eq!(s.find_consent("u", "other").await.unwrap(), None, "consent is per client");
}

/// [`ConsentStore::list_consents`] newest first; [`ConsentStore::delete_consent`] takes the
/// unredeemed codes of that user and client along (not others'); the grant families to revoke.
pub async fn consent_removal(s: &dyn Store) {
    s.update_consent("u-1", "c-1", &scopes("notes.read"), 1).await.unwrap();
    s.update_consent("u-1", "c-2", &scopes("a"), 2).await.unwrap();
    s.update_consent("u-2", "c-1", &scopes("a"), 3).await.unwrap();
    let listed = s.list_consents("u-1").await.unwrap();
    assert_eq!(listed.iter().map(|c| (c.client_id.as_str(), c.updated_at)).collect::<Vec<_>>(), [("c-2", 2), ("c-1", 1)]);
    assert_eq!(listed[1].scope, scopes("notes.read"));
    // u-1 with c-1: a live refresh token, a revoked one, an unredeemed code, a used code.
    s.create_refresh_token(&refresh("cr-live", "fam-live")).await.unwrap();
    s.create_refresh_token(&RefreshTokenRecord { revoked_at: Some(1), ..refresh("cr-dead", "fam-dead") }).await.unwrap();
    s.create_code(&CodeRecord { user_id: "u-1".into(), expires_at: 1_000, ..code("cc-open") }).await.unwrap();
    s.create_code(&CodeRecord { user_id: "u-1".into(), used_at: Some(3), expires_at: 1_000, ..code("cc-used") }).await.unwrap();
    s.create_code(&CodeRecord { user_id: "u-2".into(), expires_at: 1_000, ..code("cc-other") }).await.unwrap();
    let mut families = s.list_grant_families("u-1", "c-1").await.unwrap();
    families.sort();
    assert_eq!(families, ["fam-live", "g-cc-open", "g-cc-used"], "live refresh tokens' and codes' grants, not revoked ones");
    assert!(s.delete_consent("u-1", "c-1").await.unwrap());
    assert!(!s.delete_consent("u-1", "c-1").await.unwrap(), "a second removal finds none");
    assert_eq!(s.find_consent("u-1", "c-1").await.unwrap(), None);
    assert_eq!(s.find_code("cc-open").await.unwrap(), None, "the unredeemed code went with the consent");
    assert!(s.find_code("cc-used").await.unwrap().is_some(), "a used code stays (replay detection)");
    assert!(s.find_code("cc-other").await.unwrap().is_some(), "another user's code stays");
    assert_eq!(s.find_consent("u-2", "c-1").await.unwrap(), Some(scopes("a")), "another user's consent stays");
    assert_eq!(s.find_consent("u-1", "c-2").await.unwrap(), Some(scopes("a")), "another client's consent stays");
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
        scope: scopes("notes.read"),
        audience: vec!["https://notes.example".into()],
        auth_time: 10,
        expires_at: 70,
        used_at: None,
        dpop_jkt: None,
        oidc: Some(OidcContext { nonce: Some("n".into()), ..Default::default() }),
    }
}

/// Of 20 concurrent takes of one code exactly one wins.
pub async fn codes_are_single_use(h: &Handles) {
    let s = h.a.clone();
    let c = code("code-1");
    s.create_code(&c).await.unwrap();
    let takes = (0..20).map(|i| {
        let s = h.pick(i);
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
        scope: scopes("notes.read"),
        audience: vec![],
        auth_time: 1,
        created_at: 1,
        expires_at: 1_000,
        family_expires_at: 5_000,
        used_at: None,
        revoked_at: None,
        oidc: None,
        dpop_jkt: None,
    }
}

pub async fn refresh_rotation(h: &Handles) {
    let s = h.a.clone();
    s.create_refresh_token(&refresh("r1", "f1")).await.unwrap();
    s.create_refresh_token(&refresh("r2", "f1")).await.unwrap();
    s.create_refresh_token(&refresh("other", "f2")).await.unwrap();
    assert_eq!(s.find_refresh_token("r1").await.unwrap(), Some(refresh("r1", "f1")));
    assert_eq!(s.find_refresh_token("nope").await.unwrap(), None);
    let takes = (0..20).map(|i| {
        let s = h.pick(i);
        async move { s.take_refresh_token("r1", 5, 0).await.unwrap() }
    });
    let results = futures_util::future::join_all(takes).await;
    assert_eq!(results.iter().filter(|r| matches!(r, Taken::Taken(_))).count(), 1, "exactly one rotation wins");
    assert!(
        matches!(s.take_refresh_token("r1", 5, 0).await.unwrap(), Taken::AlreadyUsed(_)),
        "no grace: a used token is not taken again, even in the same second"
    );
    assert!(matches!(s.take_refresh_token("r2", 2_000, 0).await.unwrap(), Taken::AlreadyUsed(_)), "an expired token is not taken");
    s.create_refresh_token(&refresh("r3", "f1")).await.unwrap();
    assert_eq!(s.revoke_family("f1", 6).await.unwrap(), 2, "revoke counts live tokens of the family");
    match s.take_refresh_token("r3", 7, 0).await.unwrap() {
        Taken::AlreadyUsed(r) => assert_eq!(r.revoked_at, Some(6)),
        other => panic!("a revoked token must not be taken: {other:?}"),
    }
    assert!(matches!(s.take_refresh_token("other", 7, 0).await.unwrap(), Taken::Taken(_)), "other families are untouched");
    assert_eq!(s.take_refresh_token("nope", 7, 0).await.unwrap(), Taken::NotFound);
    assert!(s.is_revoked("any-jti", Some("f1")).await.unwrap(), "a revoked family's access tokens are revoked");
    assert!(!s.is_revoked("any-jti", Some("f2")).await.unwrap());
    let mut absolute = refresh("r4", "f3");
    absolute.family_expires_at = 10;
    s.create_refresh_token(&absolute).await.unwrap();
    assert!(matches!(s.take_refresh_token("r4", 10, 0).await.unwrap(), Taken::AlreadyUsed(_)), "the family's absolute lifetime bounds every token");
}

pub async fn audit(s: &dyn Store) {
    s.create_audit_event("code_replay", "client c-1", 1).await.unwrap();
    assert_eq!(s.list_audit_events("code_replay").await.unwrap(), vec!["client c-1".to_string()]);
}

/// [`AuditStore::find_audit_events`]: filters by time, kind, user and client, newest first, in
/// pages; [`AuditStore::delete_audit_events_before`]: the retention, in batches.
pub async fn audit_queries(s: &dyn Store) {
    for (i, (kind, user, client)) in
        [("sign_in", Some("u-1"), None), ("consent_granted", Some("u-1"), Some("c-1")), ("sign_in", Some("u-2"), None), ("token_revoked", None, Some("c-1"))]
            .into_iter()
            .enumerate()
    {
        let e = NewAuditEvent { kind, actor: if i == 0 { "cli:root" } else { "" }, user_id: user, client_id: client, detail: &format!("event {i}") };
        s.record_audit_event(&e, 10 + i as i64 * 10).await.unwrap();
    }
    let find =
        |q: AuditQuery| async move { s.find_audit_events(&AuditQuery { limit: 100, ..q }).await.unwrap().into_iter().map(|e| e.detail).collect::<Vec<_>>() };
    assert_eq!(find(AuditQuery::default()).await, ["event 3", "event 2", "event 1", "event 0"], "newest first");
    assert_eq!(find(AuditQuery { kind: Some("sign_in".into()), ..Default::default() }).await, ["event 2", "event 0"]);
    assert_eq!(find(AuditQuery { user_id: Some("u-1".into()), ..Default::default() }).await, ["event 1", "event 0"]);
    assert_eq!(find(AuditQuery { client_id: Some("c-1".into()), ..Default::default() }).await, ["event 3", "event 1"]);
    assert_eq!(find(AuditQuery { since: Some(20), until: Some(40), ..Default::default() }).await, ["event 2", "event 1"], "since inclusive, until exclusive");
    let first = s.find_audit_events(&AuditQuery { limit: 2, ..Default::default() }).await.unwrap();
    assert_eq!(first.len(), 2);
    assert_eq!((first[0].kind.as_str(), first[0].client_id.as_deref(), first[0].user_id.as_deref()), ("token_revoked", Some("c-1"), None));
    let next = s.find_audit_events(&AuditQuery { limit: 2, before_id: Some(first[1].id), ..Default::default() }).await.unwrap();
    assert_eq!(next.iter().map(|e| e.detail.as_str()).collect::<Vec<_>>(), ["event 1", "event 0"]);
    assert_eq!(next[1].actor, "cli:root");
    assert_eq!(s.delete_audit_events_before(30, 1).await.unwrap(), 1, "one batch of one");
    assert_eq!(s.delete_audit_events_before(30, 100).await.unwrap(), 1);
    assert_eq!(find(AuditQuery::default()).await, ["event 3", "event 2"]);
}

pub async fn session_clients(s: &dyn Store) {
    s.add_session_client("sid-9", "c-1", 1).await.unwrap();
    s.add_session_client("sid-9", "c-2", 2).await.unwrap();
    s.add_session_client("sid-9", "c-1", 3).await.unwrap();
    let mut got = s.list_session_clients("sid-9").await.unwrap();
    got.sort();
    assert_eq!(got, vec!["c-1".to_string(), "c-2".to_string()], "each client once");
    assert!(s.list_session_clients("other").await.unwrap().is_empty());
}

pub async fn revocation(s: &dyn Store) {
    assert!(!s.is_revoked("j1", None).await.unwrap());
    s.create_revoked_token("j1", 100).await.unwrap();
    s.create_revoked_token("j1", 100).await.unwrap();
    assert!(s.is_revoked("j1", None).await.unwrap(), "revoking twice is fine");
    assert!(!s.is_revoked("j2", Some("no-family")).await.unwrap());
}

/// With a grace window, a token used moments ago can be taken again (lost response); after
/// the window it cannot.
pub async fn refresh_grace(h: &Handles) {
    let s = h.a.clone();
    s.create_refresh_token(&refresh("g1", "fg")).await.unwrap();
    assert!(matches!(s.take_refresh_token("g1", 100, 5).await.unwrap(), Taken::Taken(_)));
    match s.take_refresh_token("g1", 103, 5).await.unwrap() {
        Taken::Taken(t) => assert_eq!(t.used_at, Some(100), "the first use time is kept"),
        other => panic!("inside the grace window the token is taken again: {other:?}"),
    }
    assert!(matches!(s.take_refresh_token("g1", 106, 5).await.unwrap(), Taken::AlreadyUsed(_)), "after the window it is reuse");
}

/// A token stored in a family after the family was revoked (a code replay racing the
/// redemption that issues it) is born revoked, and no token of a revoked family is taken.
pub async fn revoked_family_stays_revoked(s: &dyn Store) {
    assert_eq!(s.revoke_family("late-f", 10).await.unwrap(), 0);
    s.create_refresh_token(&refresh("late-rt", "late-f")).await.unwrap();
    match s.take_refresh_token("late-rt", 20, 0).await.unwrap() {
        Taken::AlreadyUsed(t) => assert_eq!(t.revoked_at, Some(10), "born revoked, at the family's revocation time"),
        other => panic!("a token of a revoked family must not be taken: {other:?}"),
    }
    s.create_refresh_token(&refresh("fresh-rt", "fresh-f")).await.unwrap();
    assert_eq!(s.find_refresh_token("fresh-rt").await.unwrap().unwrap().revoked_at, None, "other families are born live");
}

/// A rotation stores the successor only when it takes the token, and of concurrent rotations
/// exactly one does both.
pub async fn rotation_is_atomic(h: &Handles) {
    let s = h.a.clone();
    s.create_refresh_token(&refresh("rot-1", "rot-f")).await.unwrap();
    assert!(matches!(s.rotate_refresh_token("rot-1", 5, 0, Some(&refresh("rot-2", "rot-f"))).await.unwrap(), Taken::Taken(_)));
    assert!(s.find_refresh_token("rot-2").await.unwrap().is_some(), "the successor is stored with the take");
    assert!(matches!(s.rotate_refresh_token("rot-1", 6, 0, Some(&refresh("rot-x", "rot-f"))).await.unwrap(), Taken::AlreadyUsed(_)));
    assert_eq!(s.find_refresh_token("rot-x").await.unwrap(), None, "no successor without the take");
    assert_eq!(s.rotate_refresh_token("missing", 6, 0, Some(&refresh("rot-y", "rot-f"))).await.unwrap(), Taken::NotFound);
    assert_eq!(s.find_refresh_token("rot-y").await.unwrap(), None);
    let rotations = (0..20).map(|i| {
        let s = h.pick(i);
        async move { s.rotate_refresh_token("rot-2", 7, 0, Some(&refresh(&format!("rot-3-{i}"), "rot-f"))).await.unwrap() }
    });
    let results = futures_util::future::join_all(rotations).await;
    assert_eq!(results.iter().filter(|r| matches!(r, Taken::Taken(_))).count(), 1, "exactly one rotation wins");
    let mut stored = Vec::new();
    for i in 0..20 {
        if s.find_refresh_token(&format!("rot-3-{i}")).await.unwrap().is_some() {
            stored.push(format!("rot-3-{i}"));
        }
    }
    assert_eq!(stored.len(), 1, "exactly one successor is stored");
    assert!(matches!(s.rotate_refresh_token(&stored[0], 8, 0, None).await.unwrap(), Taken::Taken(_)), "without a successor it is a plain take");
}

/// Redeeming a code stores the grant's first refresh token only when it takes the code, and of
/// concurrent redemptions exactly one does both.
pub async fn code_redemption_is_atomic(h: &Handles) {
    let s = h.a.clone();
    s.create_code(&code("red-1")).await.unwrap();
    assert_eq!(s.find_code("red-1").await.unwrap(), Some(code("red-1")));
    assert_eq!(s.find_code("red-missing").await.unwrap(), None);
    let redemptions = (0..20).map(|i| {
        let s = h.pick(i);
        async move { s.take_code_issuing("red-1", 20, Some(&refresh(&format!("red-rt-{i}"), "g-red-1"))).await.unwrap() }
    });
    let results = futures_util::future::join_all(redemptions).await;
    assert_eq!(results.iter().filter(|r| matches!(r, Taken::Taken(c) if c == &code("red-1"))).count(), 1, "exactly one redemption wins");
    let mut stored = 0;
    for i in 0..20 {
        stored += usize::from(s.find_refresh_token(&format!("red-rt-{i}")).await.unwrap().is_some());
    }
    assert_eq!(stored, 1, "exactly one first refresh token is stored");
    assert!(s.find_code("red-1").await.unwrap().unwrap().used_at.is_some(), "find shows the code used");
    assert_eq!(s.take_code_issuing("red-missing", 20, Some(&refresh("red-rt-x", "g"))).await.unwrap(), Taken::NotFound);
    assert_eq!(s.find_refresh_token("red-rt-x").await.unwrap(), None);
}

/// Redeeming a device code stores the grant's first refresh token only when it takes the code.
pub async fn device_redemption_is_atomic(h: &Handles) {
    let s = h.a.clone();
    s.create_device_code(&device("red-d1", "QWRTZPLK")).await.unwrap();
    assert!(
        matches!(s.take_device_code_issuing("red-d1", 30, Some(&refresh("red-drt-0", "dfam"))).await.unwrap(), Taken::AlreadyUsed(_)),
        "a pending code is not taken"
    );
    assert_eq!(s.find_refresh_token("red-drt-0").await.unwrap(), None, "nor is anything stored");
    assert!(s.decide_device_code("QWRTZPLK", true, "u-1", 15, None, 21).await.unwrap());
    match s.take_device_code_issuing("red-d1", 30, Some(&refresh("red-drt-1", "dfam"))).await.unwrap() {
        Taken::Taken(d) => assert_eq!((d.status, d.user_id.as_deref()), (DeviceCodeStatus::Approved, Some("u-1"))),
        other => panic!("an approved device code is taken: {other:?}"),
    }
    assert!(s.find_refresh_token("red-drt-1").await.unwrap().is_some(), "its first refresh token is stored with it");
    assert!(matches!(s.take_device_code_issuing("red-d1", 31, Some(&refresh("red-drt-2", "dfam"))).await.unwrap(), Taken::AlreadyUsed(_)));
    assert_eq!(s.find_refresh_token("red-drt-2").await.unwrap(), None);
    assert!(matches!(s.take_device_code_issuing("red-d1", 32, None).await.unwrap(), Taken::AlreadyUsed(_)), "without a refresh token it is a plain take");
}

pub fn device(hash: &str, user_code: &str) -> DeviceCodeRecord {
    DeviceCodeRecord {
        device_code_hash: hash.into(),
        user_code: user_code.into(),
        client_id: "c-1".into(),
        scope: scopes("notes.read"),
        audience: vec![],
        expires_at: 1_000,
        interval: 5,
        last_polled_at: None,
        status: DeviceCodeStatus::Pending,
        user_id: None,
        auth_time: None,
        oidc: None,
    }
}

pub async fn device_codes(h: &Handles) {
    let s = h.a.clone();
    let d = device("d1", "BCDFGHJK");
    s.create_device_code(&d).await.unwrap();
    assert!(matches!(s.create_device_code(&device("d2", "BCDFGHJK")).await, Err(StoreError::Conflict(_))), "user codes are unique");
    assert_eq!(s.find_device_code("d1").await.unwrap(), Some(d.clone()));
    assert_eq!(s.find_device_code_by_user_code("BCDFGHJK", 10).await.unwrap(), Some(d.clone()));
    assert_eq!(s.find_device_code_by_user_code("BCDFGHJK", 1_000).await.unwrap(), None, "expired user codes are not found");
    assert!(matches!(s.take_device_code("d1", 10).await.unwrap(), Taken::AlreadyUsed(_)), "a pending code cannot be taken");
    s.update_device_poll("d1", 20, 10).await.unwrap();
    let polled = s.find_device_code("d1").await.unwrap().unwrap();
    assert_eq!((polled.last_polled_at, polled.interval), (Some(20), 10));
    assert!(s.decide_device_code("BCDFGHJK", true, "u-1", 15, Some(&OidcContext::default()), 21).await.unwrap());
    assert!(!s.decide_device_code("BCDFGHJK", false, "u-2", 15, None, 22).await.unwrap(), "a decision is final");
    let takes = (0..10).map(|i| {
        let s = h.pick(i);
        async move { s.take_device_code("d1", 30).await.unwrap() }
    });
    let results = futures_util::future::join_all(takes).await;
    let won: Vec<_> = results.iter().filter_map(|r| if let Taken::Taken(d) = r { Some(d) } else { None }).collect();
    assert_eq!(won.len(), 1, "exactly one poll gets the tokens");
    assert_eq!(won[0].user_id.as_deref(), Some("u-1"));
    s.create_device_code(&device("d3", "MNPQRSTV")).await.unwrap();
    assert!(s.decide_device_code("MNPQRSTV", false, "u-1", 15, None, 21).await.unwrap());
    match s.take_device_code("d3", 30).await.unwrap() {
        Taken::AlreadyUsed(d) => assert_eq!(d.status, DeviceCodeStatus::Denied),
        other => panic!("a denied code is not taken: {other:?}"),
    }
    assert_eq!(s.take_device_code("nope", 30).await.unwrap(), Taken::NotFound);
}

/// A reachable database answers the readiness check.
pub async fn ping_answers(s: &dyn Store) {
    s.ping().await.unwrap();
    s.ping().await.unwrap();
}

pub async fn expiry_cleanup(s: &dyn Store) {
    let mut c = code("old-code");
    c.expires_at = 10;
    s.create_code(&c).await.unwrap();
    let mut r = refresh("old-rt", "old-f");
    r.family_expires_at = 10;
    s.create_refresh_token(&r).await.unwrap();
    s.create_revoked_token("old-jti", 10).await.unwrap();
    let mut live = refresh("live-rt", "live-f");
    live.family_expires_at = 1_000_000;
    s.create_refresh_token(&live).await.unwrap();
    let now = 100_000;
    let mut total = 0;
    loop {
        let n = s.delete_expired(now, 1).await.unwrap();
        total += n;
        if n == 0 {
            break;
        }
    }
    assert!(total >= 3, "expired rows are deleted in bounded batches ({total})");
    assert_eq!(s.take_code("old-code", now).await.unwrap(), Taken::NotFound);
    assert_eq!(s.find_refresh_token("old-rt").await.unwrap(), None);
    assert!(!s.is_revoked("old-jti", None).await.unwrap());
    assert!(s.find_refresh_token("live-rt").await.unwrap().is_some(), "live rows stay");
}

// Ending a user's access (RFC 9700 §4.14.2): `update_user_password` and `delete_user`.

fn user(id: &str, username: &str) -> UserRecord {
    UserRecord {
        id: id.into(),
        username: username.into(),
        email: None,
        name: None,
        password_hash: "$argon2id$old".into(),
        created_at: 1,
        profile: Default::default(),
        updated_at: 1,
        disabled_at: None,
        is_admin: false,
        require_mfa: false,
        email_verified: false,
    }
}

fn session(id_hash: &str, user_id: &str) -> SessionRecord {
    SessionRecord {
        id_hash: id_hash.into(),
        sid: format!("sid-{id_hash}"),
        user_id: Some(user_id.into()),
        amr: Some("pwd".into()),
        csrf_token: "t".into(),
        auth_time: Some(5),
        created_at: 5,
        expires_at: 1_000,
        user_agent: None,
        address: None,
        last_used_at: 5,
    }
}

/// A session's device (its `User-Agent`, the client's address) round-trips, in lists too, and
/// [`SessionStore::update_session_last_used`] writes a use only when the last one recorded is
/// more than a minute old.
pub async fn session_devices_and_last_use(s: &dyn Store) {
    let ua = format!("Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36 {}", "é".repeat(100));
    let sess = SessionRecord { user_agent: Some(ua.clone()), address: Some("198.51.100.9".into()), last_used_at: 100, ..session("sd-1", "u-d") };
    s.create_session(&sess).await.unwrap();
    assert_eq!(s.find_session("sd-1", 10).await.unwrap(), Some(sess.clone()), "the device round-trips");
    assert_eq!(s.list_user_sessions("u-d", 10).await.unwrap(), vec![sess.clone()]);
    assert_eq!(s.find_session_by_sid("sid-sd-1", 10).await.unwrap().unwrap().user_agent.as_deref(), Some(ua.as_str()));
    let last_used = |t| async move { s.find_session("sd-1", t).await.unwrap().unwrap().last_used_at };
    assert!(!s.update_session_last_used("sd-1", 130).await.unwrap(), "used 30 s ago: not written");
    assert!(!s.update_session_last_used("sd-1", 160).await.unwrap(), "a minute exactly: not written");
    assert_eq!(last_used(160).await, 100);
    assert!(s.update_session_last_used("sd-1", 161).await.unwrap(), "more than a minute: written");
    assert_eq!(last_used(161).await, 161);
    assert!(!s.update_session_last_used("sd-1", 200).await.unwrap());
    assert!(s.update_session_last_used("sd-1", 500).await.unwrap());
    assert_eq!(last_used(500).await, 500);
    let found = s.find_session("sd-1", 500).await.unwrap().unwrap();
    assert_eq!(SessionRecord { last_used_at: 100, ..found }, sess, "nothing else changes");
    assert!(!s.update_session_last_used("nope", 10_000).await.unwrap(), "no such session");
    // An anonymous session has no device.
    let anon = SessionRecord { user_id: None, amr: None, auth_time: None, ..session("sd-anon", "x") };
    s.create_session(&anon).await.unwrap();
    assert_eq!(s.find_session("sd-anon", 10).await.unwrap().map(|a| (a.user_agent, a.address)), Some((None, None)));
}

/// [`SessionStore::list_user_sessions`] (live ones, newest first) and
/// [`SessionStore::delete_user_sessions`] (with their pending requests; others' stay).
pub async fn user_sessions(s: &dyn Store) {
    s.create_session(&SessionRecord { created_at: 5, ..session("us-1", "u-1") }).await.unwrap();
    s.create_session(&SessionRecord { created_at: 7, ..session("us-2", "u-1") }).await.unwrap();
    s.create_session(&SessionRecord { expires_at: 9, ..session("us-old", "u-1") }).await.unwrap();
    s.create_session(&session("us-3", "u-2")).await.unwrap();
    s.create_pending_request(&pending("up-1", "us-1")).await.unwrap();
    let listed = s.list_user_sessions("u-1", 10).await.unwrap();
    assert_eq!(listed.iter().map(|x| x.id_hash.as_str()).collect::<Vec<_>>(), ["us-2", "us-1"], "live only, newest first");
    s.delete_user_sessions("u-1").await.unwrap();
    assert!(s.list_user_sessions("u-1", 10).await.unwrap().is_empty());
    assert_eq!(s.find_pending_request("up-1", 10).await.unwrap(), None, "their pending requests go");
    assert!(s.find_session("us-3", 10).await.unwrap().is_some(), "another user's session stays");
}

fn pending(id: &str, session_hash: &str) -> PendingRequestRecord {
    PendingRequestRecord { id: id.into(), session_hash: session_hash.into(), data: "{}".into(), expires_at: 1_000 }
}

/// A user's sessions, a pending request, a client list, a live and a used refresh token, an
/// unredeemed and a used code, an approved device code and a consent; `tag` keeps the keys apart.
async fn user_with_everything(s: &dyn Store, tag: &str, id: &str, user_code: &str) {
    s.create_user(&user(id, &format!("user-{tag}"))).await.unwrap();
    for n in 1..=2 {
        s.create_session(&session(&format!("{tag}-s{n}"), id)).await.unwrap();
        s.create_pending_request(&pending(&format!("{tag}-p{n}"), &format!("{tag}-s{n}"))).await.unwrap();
        s.add_session_client(&format!("sid-{tag}-s{n}"), "c-1", 5).await.unwrap();
    }
    for (hash, used) in [(format!("{tag}-r-live"), None), (format!("{tag}-r-used"), Some(3))] {
        s.create_refresh_token(&RefreshTokenRecord { user_id: id.into(), used_at: used, ..refresh(&hash, &format!("{tag}-f")) }).await.unwrap();
    }
    for (hash, used) in [(format!("{tag}-c-live"), None), (format!("{tag}-c-used"), Some(3))] {
        s.create_code(&CodeRecord { user_id: id.into(), used_at: used, expires_at: 1_000, ..code(&hash) }).await.unwrap();
    }
    s.create_device_code(&device(&format!("{tag}-d"), user_code)).await.unwrap();
    assert!(s.decide_device_code(user_code, true, id, 5, None, 6).await.unwrap());
    s.update_consent(id, "c-1", &scopes("notes.read"), 5).await.unwrap();
}

/// Nothing of `tag`'s user was touched (another user's reset or deletion leaves it alone).
async fn untouched(s: &dyn Store, tag: &str, id: &str) {
    assert!(s.find_user(id).await.unwrap().is_some(), "{tag}: the other user stays");
    for n in 1..=2 {
        assert!(s.find_session(&format!("{tag}-s{n}"), 10).await.unwrap().is_some(), "{tag}: another user's sessions stay");
        assert!(s.find_pending_request(&format!("{tag}-p{n}"), 10).await.unwrap().is_some());
        assert_eq!(s.list_session_clients(&format!("sid-{tag}-s{n}")).await.unwrap(), vec!["c-1".to_string()]);
    }
    assert_eq!(s.find_refresh_token(&format!("{tag}-r-live")).await.unwrap().unwrap().revoked_at, None, "{tag}: another user's refresh tokens stay live");
    assert!(s.find_code(&format!("{tag}-c-live")).await.unwrap().is_some());
    assert_eq!(s.find_device_code(&format!("{tag}-d")).await.unwrap().unwrap().status, DeviceCodeStatus::Approved);
    assert!(s.find_consent(id, "c-1").await.unwrap().is_some());
}

/// A new password revokes the user's refresh tokens, drops their unredeemed codes and approved
/// device codes, and ends every session but the one kept; consents stay.
pub async fn new_password_ends_access(s: &dyn Store) {
    user_with_everything(s, "pw", "u-pw", "PWPWPWPW").await;
    user_with_everything(s, "pwx", "u-pwx", "PWXPWXPW").await;
    assert!(s.update_user_password("user-pw", "$argon2id$new", Some("pw-s1"), 50).await.unwrap());
    assert_eq!(s.find_user("u-pw").await.unwrap().unwrap().password_hash, "$argon2id$new");
    assert!(s.find_session("pw-s1", 10).await.unwrap().is_some(), "the session kept stays");
    assert!(s.find_pending_request("pw-p1", 10).await.unwrap().is_some(), "with its pending request");
    assert_eq!(s.find_session("pw-s2", 10).await.unwrap(), None, "other sessions end");
    assert_eq!(s.find_pending_request("pw-p2", 10).await.unwrap(), None, "with their pending requests");
    assert!(s.list_session_clients("sid-pw-s2").await.unwrap().is_empty(), "and client lists");
    let live = s.find_refresh_token("pw-r-live").await.unwrap().unwrap();
    assert_eq!(live.revoked_at, Some(50), "refresh tokens are revoked");
    assert!(
        matches!(s.rotate_refresh_token("pw-r-live", 60, 0, Some(&refresh("pw-r-next", "pw-f"))).await.unwrap(), Taken::AlreadyUsed(_)),
        "a revoked token does not rotate"
    );
    assert_eq!(s.find_refresh_token("pw-r-next").await.unwrap(), None);
    assert_eq!(s.find_refresh_token("pw-r-used").await.unwrap().unwrap().revoked_at, Some(50));
    assert_eq!(s.find_code("pw-c-live").await.unwrap(), None, "unredeemed codes go");
    assert!(s.find_code("pw-c-used").await.unwrap().is_some(), "used codes stay (replay detection)");
    assert_eq!(s.find_device_code("pw-d").await.unwrap(), None, "approved device codes go");
    assert!(s.find_consent("u-pw", "c-1").await.unwrap().is_some(), "consent stays");
    untouched(s, "pwx", "u-pwx").await;
    // Without a session to keep, every session ends.
    s.create_session(&session("pw-s3", "u-pw")).await.unwrap();
    assert!(s.update_user_password("user-pw", "$argon2id$newer", None, 70).await.unwrap());
    assert_eq!(s.find_session("pw-s1", 10).await.unwrap(), None);
    assert_eq!(s.find_session("pw-s3", 10).await.unwrap(), None);
    assert_eq!(s.find_refresh_token("pw-r-live").await.unwrap().unwrap().revoked_at, Some(50), "the first revocation time stays");
    assert!(!s.update_user_password("nobody", "$argon2id$x", None, 70).await.unwrap(), "no such user");
    untouched(s, "pwx", "u-pwx").await;
}

/// Deleting a user deletes their sessions (and those sessions' pending requests and client
/// lists), refresh tokens, codes, device codes and consents; nobody else's.
pub async fn deleted_user_leaves_nothing(s: &dyn Store) {
    user_with_everything(s, "del", "u-del", "DLDLDLDL").await;
    user_with_everything(s, "delx", "u-delx", "DLXDLXDL").await;
    assert!(s.delete_user("user-del").await.unwrap());
    assert_eq!(s.find_user("u-del").await.unwrap(), None);
    for n in 1..=2 {
        assert_eq!(s.find_session(&format!("del-s{n}"), 10).await.unwrap(), None, "sessions end");
        assert_eq!(s.find_pending_request(&format!("del-p{n}"), 10).await.unwrap(), None, "pending requests go");
        assert!(s.list_session_clients(&format!("sid-del-s{n}")).await.unwrap().is_empty(), "client lists go");
    }
    for t in ["del-r-live", "del-r-used"] {
        assert_eq!(s.find_refresh_token(t).await.unwrap(), None, "refresh tokens go");
    }
    assert_eq!(s.take_refresh_token("del-r-live", 10, 0).await.unwrap(), Taken::NotFound);
    for c in ["del-c-live", "del-c-used"] {
        assert_eq!(s.find_code(c).await.unwrap(), None, "codes go");
    }
    assert_eq!(s.find_device_code("del-d").await.unwrap(), None, "device codes go");
    assert_eq!(s.find_consent("u-del", "c-1").await.unwrap(), None, "consents go");
    assert!(!s.delete_user("user-del").await.unwrap(), "a second deletion finds nobody");
    untouched(s, "delx", "u-delx").await;
}

// Accounts (issue 15): second factors, recovery codes, users' one-time tokens.

fn factor(id: &str, user_id: &str, credential: Option<&str>) -> FactorRecord {
    FactorRecord {
        id: id.into(),
        user_id: user_id.into(),
        kind: if credential.is_some() { FactorKind::Passkey } else { FactorKind::Totp },
        name: format!("{id} name"),
        secret: vec![1, 2, 3, 0, 255],
        credential_id: credential.map(str::to_string),
        last_step: None,
        created_at: 10,
        last_used_at: None,
    }
}

fn user_token(hash: &str, purpose: &str, user_id: &str, expires_at: i64) -> UserTokenRecord {
    UserTokenRecord { token_hash: hash.into(), purpose: purpose.into(), user_id: user_id.into(), data: "{\"x\":1}".into(), created_at: 1, expires_at }
}

/// `require_mfa` set and cleared; `email_verified` only for the address the link went to, and
/// cleared when the address changes.
pub async fn require_mfa_and_email_verification(s: &dyn Store) {
    let mut u = UserRecord { email: Some("a@x.example".into()), ..user("u-acc", "acc") };
    s.create_user(&u).await.unwrap();
    s.create_user(&user("u-acc2", "acc2")).await.unwrap();
    assert!(s.update_user_require_mfa("u-acc", true).await.unwrap());
    assert!(s.find_user("u-acc").await.unwrap().unwrap().require_mfa);
    assert!(!s.find_user("u-acc2").await.unwrap().unwrap().require_mfa, "only that user");
    assert!(!s.update_user_require_mfa("nobody", true).await.unwrap());
    assert!(!s.update_user_email_verified("u-acc", "old@x.example").await.unwrap(), "another address: not verified");
    assert!(!s.find_user("u-acc").await.unwrap().unwrap().email_verified);
    assert!(s.update_user_email_verified("u-acc", "a@x.example").await.unwrap());
    assert!(s.find_user("u-acc").await.unwrap().unwrap().email_verified);
    u.name = Some("Renamed".into());
    assert!(s.update_user(&u).await.unwrap());
    assert!(s.find_user("u-acc").await.unwrap().unwrap().email_verified, "the same address stays verified");
    u.email = Some("b@x.example".into());
    assert!(s.update_user(&u).await.unwrap());
    let got = s.find_user("u-acc").await.unwrap().unwrap();
    assert!(!got.email_verified, "a new address is not verified");
    assert!(got.require_mfa, "update_user leaves require_mfa alone");
    let mut c = client("c-mfa");
    c.require_mfa = true;
    s.create_client(&c).await.unwrap();
    assert!(s.find_client("c-mfa").await.unwrap().unwrap().require_mfa);
    c.require_mfa = false;
    assert!(s.update_client(&c).await.unwrap());
    assert!(!s.find_client("c-mfa").await.unwrap().unwrap().require_mfa);
}

/// A rehash replaces the hash only while it is the one the sign-in checked, and ends nothing.
pub async fn rehash_is_compare_and_swap(s: &dyn Store) {
    s.create_user(&user("u-rh", "rh")).await.unwrap();
    s.create_session(&session("rh-s", "u-rh")).await.unwrap();
    assert!(!s.update_user_password_hash("u-rh", "$argon2id$other", "$argon2id$new").await.unwrap());
    assert!(s.update_user_password_hash("u-rh", "$argon2id$old", "$argon2id$new").await.unwrap());
    assert_eq!(s.find_user("u-rh").await.unwrap().unwrap().password_hash, "$argon2id$new");
    assert!(s.find_session("rh-s", 10).await.unwrap().is_some(), "a rehash ends no session");
}

/// Factors are listed, found by credential and deleted per user; credential ids are unique.
pub async fn factors_belong_to_their_user(s: &dyn Store) {
    s.create_factor(&factor("f-1", "u-a", None)).await.unwrap();
    s.create_factor(&factor("f-2", "u-a", Some("cred-1"))).await.unwrap();
    s.create_factor(&factor("f-3", "u-b", None)).await.unwrap();
    assert!(matches!(s.create_factor(&factor("f-4", "u-b", Some("cred-1"))).await, Err(StoreError::Conflict(_))), "credential ids are unique");
    let listed = s.list_factors("u-a").await.unwrap();
    assert_eq!(listed.iter().map(|f| f.id.as_str()).collect::<Vec<_>>(), ["f-1", "f-2"]);
    assert_eq!(listed[1], factor("f-2", "u-a", Some("cred-1")), "stored as created");
    assert_eq!(s.find_factor_by_credential("cred-1").await.unwrap().map(|f| f.user_id), Some("u-a".to_string()));
    assert_eq!(s.find_factor_by_credential("cred-x").await.unwrap(), None);
    assert!(!s.delete_factor("u-b", "f-1").await.unwrap(), "not another user's factor");
    assert!(s.delete_factor("u-a", "f-1").await.unwrap());
    assert_eq!(s.list_factors("u-a").await.unwrap().len(), 1);
    // A passkey's counter: compare and swap.
    assert!(!s.update_factor_secret("f-2", b"stale", b"next", 20).await.unwrap());
    assert!(s.update_factor_secret("f-2", &[1, 2, 3, 0, 255], b"next", 20).await.unwrap());
    let f = s.find_factor_by_credential("cred-1").await.unwrap().unwrap();
    assert_eq!((f.secret.as_slice(), f.last_used_at), (&b"next"[..], Some(20)));
    // Recovery codes are replaced as a set; reset-mfa takes factors and codes.
    s.replace_recovery_codes("u-a", &["h1".into(), "h2".into()], 5).await.unwrap();
    s.replace_recovery_codes("u-a", &["h3".into(), "h4".into(), "h5".into()], 6).await.unwrap();
    assert_eq!(s.count_recovery_codes("u-a").await.unwrap(), 3);
    assert!(!s.take_recovery_code("u-a", "h1", 7).await.unwrap(), "the old set is gone");
    assert!(!s.take_recovery_code("u-b", "h3", 7).await.unwrap(), "not another user's code");
    s.replace_recovery_codes("u-b", &["hb".into()], 6).await.unwrap();
    assert_eq!(s.delete_factors("u-a").await.unwrap(), 1);
    assert!(s.list_factors("u-a").await.unwrap().is_empty());
    assert_eq!(s.count_recovery_codes("u-a").await.unwrap(), 0);
    assert_eq!(s.list_factors("u-b").await.unwrap().len(), 1, "another user keeps theirs");
    assert_eq!(s.count_recovery_codes("u-b").await.unwrap(), 1);
}

/// A user's deletion takes their factors, recovery codes and one-time tokens along.
pub async fn deleted_user_takes_factors_and_tokens(s: &dyn Store) {
    s.create_user(&user("u-df", "df")).await.unwrap();
    s.create_factor(&factor("df-f", "u-df", Some("df-cred"))).await.unwrap();
    s.replace_recovery_codes("u-df", &["df-h".into()], 1).await.unwrap();
    s.create_user_token(&user_token("df-t", "reset", "u-df", 100)).await.unwrap();
    assert!(s.delete_user("df").await.unwrap());
    assert!(s.list_factors("u-df").await.unwrap().is_empty());
    assert_eq!(s.find_factor_by_credential("df-cred").await.unwrap(), None);
    assert_eq!(s.count_recovery_codes("u-df").await.unwrap(), 0);
    assert_eq!(s.find_user_token("df-t", "reset", 10).await.unwrap(), None);
}

/// RFC 6238 §5.2: of 20 concurrent presentations of one time step exactly one is accepted;
/// an earlier step is refused after a later one.
pub async fn totp_steps_are_single_use(h: &Handles) {
    h.a.create_factor(&factor("f-t", "u-t", None)).await.unwrap();
    let tries = (0..20).map(|i| {
        let s = h.pick(i);
        async move { s.update_factor_step("f-t", 1000, 30).await.unwrap() }
    });
    let won = futures_util::future::join_all(tries).await.into_iter().filter(|w| *w).count();
    assert_eq!(won, 1, "one step, one acceptance");
    assert!(!h.a.update_factor_step("f-t", 999, 31).await.unwrap(), "an earlier step after a later one");
    assert!(h.a.update_factor_step("f-t", 1001, 32).await.unwrap(), "the next step");
    let f = &h.a.list_factors("u-t").await.unwrap()[0];
    assert_eq!((f.last_step, f.last_used_at), (Some(1001), Some(32)));
    assert!(!h.a.update_factor_step("missing", 5, 1).await.unwrap());
}

/// Of 20 concurrent uses of one recovery code exactly one succeeds.
pub async fn recovery_codes_are_single_use(h: &Handles) {
    h.a.replace_recovery_codes("u-r", &["rc-1".into(), "rc-2".into()], 1).await.unwrap();
    let tries = (0..20).map(|i| {
        let s = h.pick(i);
        async move { s.take_recovery_code("u-r", "rc-1", 2).await.unwrap() }
    });
    let won = futures_util::future::join_all(tries).await.into_iter().filter(|w| *w).count();
    assert_eq!(won, 1);
    assert_eq!(h.a.count_recovery_codes("u-r").await.unwrap(), 1);
}

/// Of 20 concurrent takes of one token exactly one gets it; a token is taken only for its
/// purpose and while unexpired; deleting a user's tokens of one purpose leaves the others.
pub async fn user_tokens_are_single_use(h: &Handles) {
    let t = user_token("tok-1", "reset", "u-k", 100);
    h.a.create_user_token(&t).await.unwrap();
    assert_eq!(h.a.find_user_token("tok-1", "reset", 50).await.unwrap(), Some(t.clone()));
    assert_eq!(h.a.find_user_token("tok-1", "invite", 50).await.unwrap(), None, "another purpose");
    assert_eq!(h.a.take_user_token("tok-1", "invite", 50).await.unwrap(), None, "not taken for another purpose");
    let takes = (0..20).map(|i| {
        let s = h.pick(i);
        async move { s.take_user_token("tok-1", "reset", 50).await.unwrap() }
    });
    let won: Vec<_> = futures_util::future::join_all(takes).await.into_iter().flatten().collect();
    assert_eq!(won, vec![t], "exactly one take, with the record");
    h.a.create_user_token(&user_token("tok-2", "reset", "u-k", 100)).await.unwrap();
    assert_eq!(h.a.take_user_token("tok-2", "reset", 100).await.unwrap(), None, "expired at its expires_at");
    h.a.create_user_token(&user_token("tok-3", "reset", "u-k", 200)).await.unwrap();
    h.a.create_user_token(&user_token("tok-4", "verify_email", "u-k", 200)).await.unwrap();
    assert_eq!(h.a.delete_user_tokens("u-k", "reset").await.unwrap(), 2);
    assert!(h.a.find_user_token("tok-4", "verify_email", 10).await.unwrap().is_some(), "another purpose stays");
}

// Groups and roles.

fn group(name: &str) -> GroupRecord {
    GroupRecord { name: name.into(), description: format!("The {name}"), created_at: 5 }
}

fn api_with_roles(identifier: &str, scope: &str) -> ApiRecord {
    ApiRecord {
        identifier: identifier.into(),
        name: "API".into(),
        scopes: vec![ApiScope { name: scope.into(), description: "Read".into() }],
        created_at: 1,
        secret_hash: None,
        roles: vec![ApiRole { name: "editor".into(), description: "Can edit".into() }, ApiRole { name: "viewer".into(), description: "Can view".into() }],
    }
}

fn grant(api: &str, role: &str, assignee: Assignee) -> RoleAssignment {
    RoleAssignment { api: api.into(), role: role.into(), assignee }
}

/// [`GroupStore`]: names are unique; a membership needs both the group and the user, and is
/// recorded once.
pub async fn groups_and_members(s: &dyn Store) {
    s.create_user(&user("u-1", "ann")).await.unwrap();
    s.create_user(&user("u-2", "ben")).await.unwrap();
    s.create_group(&group("editors")).await.unwrap();
    assert!(matches!(s.create_group(&group("editors")).await, Err(StoreError::Conflict(_))), "a taken name is a Conflict");
    s.create_group(&group("admins")).await.unwrap();
    assert_eq!(s.find_group("editors").await.unwrap(), Some(group("editors")));
    assert_eq!(s.find_group("nope").await.unwrap(), None);
    assert_eq!(s.list_groups().await.unwrap().iter().map(|g| g.name.as_str()).collect::<Vec<_>>(), ["admins", "editors"]);
    assert!(s.create_group_member("editors", "u-1").await.unwrap());
    assert!(!s.create_group_member("editors", "u-1").await.unwrap(), "already a member");
    assert!(!s.create_group_member("nope", "u-1").await.unwrap(), "no such group");
    assert!(!s.create_group_member("editors", "u-nobody").await.unwrap(), "no such user");
    assert!(s.create_group_member("editors", "u-2").await.unwrap());
    assert!(s.create_group_member("admins", "u-1").await.unwrap());
    assert_eq!(s.list_group_members("editors").await.unwrap(), ["u-1", "u-2"]);
    assert_eq!(s.list_user_groups("u-1").await.unwrap(), ["admins", "editors"]);
    assert!(s.delete_group_member("editors", "u-2").await.unwrap());
    assert!(!s.delete_group_member("editors", "u-2").await.unwrap());
    assert!(s.list_user_groups("u-2").await.unwrap().is_empty());
    // Deleting a user ends their memberships.
    assert!(s.delete_user("ann").await.unwrap());
    assert!(s.list_group_members("editors").await.unwrap().is_empty());
    assert!(s.list_group_members("admins").await.unwrap().is_empty());
}

/// [`GroupStore::delete_group`]: a group made again under the same name starts empty.
pub async fn deleting_a_group_takes_its_members_and_roles(s: &dyn Store) {
    s.create_user(&user("u-1", "ann")).await.unwrap();
    s.create_api(&api_with_roles("https://docs.example", "docs.read")).await.unwrap();
    s.create_group(&group("editors")).await.unwrap();
    assert!(s.create_group_member("editors", "u-1").await.unwrap());
    assert!(s.create_role_assignment(&grant("https://docs.example", "editor", Assignee::Group("editors".into()))).await.unwrap());
    assert_eq!(s.find_user_roles("u-1", "https://docs.example").await.unwrap(), ["editor"]);
    assert!(s.delete_group("editors").await.unwrap());
    assert!(!s.delete_group("editors").await.unwrap());
    s.create_group(&group("editors")).await.unwrap();
    assert!(s.list_group_members("editors").await.unwrap().is_empty(), "memberships went with the group");
    assert!(s.list_role_assignments("https://docs.example").await.unwrap().is_empty(), "role grants went with the group");
    assert!(s.find_user_roles("u-1", "https://docs.example").await.unwrap().is_empty());
}

/// [`RoleStore`]: a user holds an API's roles granted to them and to their groups, each once,
/// and only that API's.
pub async fn roles_held_directly_and_through_groups(s: &dyn Store) {
    s.create_user(&user("u-1", "ann")).await.unwrap();
    s.create_user(&user("u-2", "ben")).await.unwrap();
    s.create_api(&api_with_roles("https://docs.example", "docs.read")).await.unwrap();
    s.create_api(&api_with_roles("https://mail.example", "mail.read")).await.unwrap();
    s.create_group(&group("editors")).await.unwrap();
    assert!(s.create_group_member("editors", "u-1").await.unwrap());
    let docs = "https://docs.example";
    assert!(s.create_role_assignment(&grant(docs, "editor", Assignee::Group("editors".into()))).await.unwrap());
    assert!(s.create_role_assignment(&grant(docs, "editor", Assignee::User("u-1".into()))).await.unwrap());
    assert!(s.create_role_assignment(&grant(docs, "viewer", Assignee::User("u-2".into()))).await.unwrap());
    assert!(s.create_role_assignment(&grant("https://mail.example", "viewer", Assignee::User("u-1".into()))).await.unwrap());
    assert!(!s.create_role_assignment(&grant(docs, "editor", Assignee::User("u-1".into()))).await.unwrap(), "granted once");
    assert!(!s.create_role_assignment(&grant(docs, "editor", Assignee::User("u-nobody".into()))).await.unwrap(), "no such user");
    assert!(!s.create_role_assignment(&grant(docs, "editor", Assignee::Group("nope".into()))).await.unwrap(), "no such group");
    assert!(!s.create_role_assignment(&grant("https://none.example", "editor", Assignee::User("u-1".into()))).await.unwrap(), "no such API");
    assert_eq!(s.find_user_roles("u-1", docs).await.unwrap(), ["editor"], "directly and through a group, once");
    assert_eq!(s.find_user_roles("u-2", docs).await.unwrap(), ["viewer"]);
    assert_eq!(s.find_user_roles("u-1", "https://mail.example").await.unwrap(), ["viewer"], "each API its own roles");
    assert_eq!(s.list_role_assignments(docs).await.unwrap().len(), 3);
    assert!(s.delete_role_assignment(&grant(docs, "editor", Assignee::User("u-1".into()))).await.unwrap());
    assert_eq!(s.find_user_roles("u-1", docs).await.unwrap(), ["editor"], "still through the group");
    assert!(s.delete_group_member("editors", "u-1").await.unwrap());
    assert!(s.find_user_roles("u-1", docs).await.unwrap().is_empty());
}

/// Deleting a user or an API takes their role grants along: made again, they hold nothing.
pub async fn deletions_take_role_grants_along(s: &dyn Store) {
    let docs = "https://docs.example";
    s.create_user(&user("u-1", "ann")).await.unwrap();
    s.create_api(&api_with_roles(docs, "docs.read")).await.unwrap();
    assert!(s.create_role_assignment(&grant(docs, "editor", Assignee::User("u-1".into()))).await.unwrap());
    assert!(s.delete_user("ann").await.unwrap());
    s.create_user(&user("u-1", "ann")).await.unwrap();
    assert!(s.find_user_roles("u-1", docs).await.unwrap().is_empty(), "a user's grants went with them");
    assert!(s.create_role_assignment(&grant(docs, "editor", Assignee::User("u-1".into()))).await.unwrap());
    assert!(s.delete_api(docs).await.unwrap());
    s.create_api(&api_with_roles(docs, "docs.read")).await.unwrap();
    assert!(s.find_user_roles("u-1", docs).await.unwrap().is_empty(), "an API's grants went with it");
    assert!(s.list_role_assignments(docs).await.unwrap().is_empty());
}

/// [`UserStore::update_user_disabled`]: disabling ends the user's sessions, refresh tokens
/// and unredeemed codes in one transaction; enabling ends nothing; other users are untouched.
pub async fn disabled_user_loses_access(s: &dyn Store) {
    user_with_everything(s, "dis", "u-dis", "DSDSDSDS").await;
    user_with_everything(s, "disx", "u-disx", "DSXDSXDS").await;
    assert!(s.update_user_disabled("u-dis", true, 50).await.unwrap());
    assert_eq!(s.find_user("u-dis").await.unwrap().unwrap().disabled_at, Some(50));
    for n in 1..=2 {
        assert_eq!(s.find_session(&format!("dis-s{n}"), 10).await.unwrap(), None, "sessions end");
    }
    assert!(s.find_refresh_token("dis-r-live").await.unwrap().unwrap().revoked_at.is_some(), "refresh tokens are revoked");
    assert_eq!(s.find_code("dis-c-live").await.unwrap(), None, "unredeemed codes go");
    untouched(s, "disx", "u-disx").await;
    assert!(s.update_user_disabled("u-dis", false, 60).await.unwrap());
    assert_eq!(s.find_user("u-dis").await.unwrap().unwrap().disabled_at, None, "enabled again");
    assert!(!s.update_user_disabled("nobody", true, 60).await.unwrap());
    assert!(s.update_user_admin("u-dis", true).await.unwrap());
    assert!(s.find_user("u-dis").await.unwrap().unwrap().is_admin);
    assert!(!s.find_user("u-disx").await.unwrap().unwrap().is_admin, "only that user");
    assert!(s.update_user_admin("u-dis", false).await.unwrap());
    assert!(!s.find_user("u-dis").await.unwrap().unwrap().is_admin);
    assert!(!s.update_user_admin("nobody", true).await.unwrap());
}

/// Of concurrent deletions of one user exactly one deletes it.
pub async fn concurrent_user_deletions(h: &Handles) {
    let s = h.a.clone();
    user_with_everything(&*s, "race", "u-race", "RCRCRCRC").await;
    let deletions = (0..16).map(|i| {
        let s = h.pick(i);
        async move {
            // Password changes race the deletions too: each either lands before it or finds nobody.
            if i % 4 == 0 {
                s.update_user_password("user-race", "$argon2id$race", None, 80).await.unwrap();
            }
            s.delete_user("user-race").await.unwrap()
        }
    });
    let results = futures_util::future::join_all(deletions).await;
    assert_eq!(results.iter().filter(|d| **d).count(), 1, "exactly one deletion wins");
    assert_eq!(s.find_user("u-race").await.unwrap(), None);
    assert_eq!(s.find_session("race-s1", 10).await.unwrap(), None);
    assert_eq!(s.find_refresh_token("race-r-live").await.unwrap(), None);
}

// --- Throttling of guesses (issue 13, findings 1 and 6) ---

fn throttle_keys(list: &[(&str, ThrottleRule)]) -> Vec<(String, ThrottleRule)> {
    list.iter().map(|(k, r)| (k.to_string(), *r)).collect()
}

fn allowed(delay_if_wrong: i64) -> ThrottleAttempt {
    ThrottleAttempt::Allowed { delay_if_wrong }
}

fn refused(key: &str, retry_after: i64) -> ThrottleAttempt {
    ThrottleAttempt::Refused { key: key.into(), retry_after }
}

/// A burst, then doubling delays up to the cap; refusals count nothing; a success resets or
/// refunds; an attempt over several keys is allowed only when all allow it, and counts on all.
pub async fn throttles(s: &dyn Store) {
    let rule = ThrottleRule { burst: 3, max_delay: 8, reset_after: 100 };
    let user = throttle_keys(&[("user:a", rule)]);
    let t = 1_000;
    assert_eq!(s.take_throttle_attempt(&user, t).await.unwrap(), allowed(0));
    assert_eq!(s.take_throttle_attempt(&user, t).await.unwrap(), allowed(0));
    assert_eq!(s.take_throttle_attempt(&user, t).await.unwrap(), allowed(1), "the burst's last attempt closes the key for 1 s if wrong");
    assert_eq!(s.take_throttle_attempt(&user, t).await.unwrap(), refused("user:a", 1));
    assert_eq!(s.take_throttle_attempt(&user, t).await.unwrap(), refused("user:a", 1), "a refusal counts nothing");
    assert_eq!(s.take_throttle_attempt(&user, t + 1).await.unwrap(), allowed(2));
    assert_eq!(s.take_throttle_attempt(&user, t + 2).await.unwrap(), refused("user:a", 1));
    assert_eq!(s.take_throttle_attempt(&user, t + 3).await.unwrap(), allowed(4));
    assert_eq!(s.take_throttle_attempt(&user, t + 7).await.unwrap(), allowed(8));
    assert_eq!(s.take_throttle_attempt(&user, t + 15).await.unwrap(), allowed(8), "capped at max_delay");
    assert_eq!(s.take_throttle_attempt(&user, t + 20).await.unwrap(), refused("user:a", 3));
    s.update_throttle_success(&["user:a".into()], &[]).await.unwrap();
    assert_eq!(s.take_throttle_attempt(&user, t + 20).await.unwrap(), allowed(0), "a success resets the key");

    // A refund gives back exactly one attempt.
    let addr = throttle_keys(&[("addr:x", rule)]);
    for expect in [0, 0, 1] {
        assert_eq!(s.take_throttle_attempt(&addr, t).await.unwrap(), allowed(expect));
    }
    s.update_throttle_success(&[], &["addr:x".into()]).await.unwrap();
    assert_eq!(s.take_throttle_attempt(&addr, t).await.unwrap(), allowed(1), "refunded: the third attempt again");
    assert_eq!(s.take_throttle_attempt(&addr, t).await.unwrap(), refused("addr:x", 1));

    // Several keys: all must allow; a refused attempt counts on none.
    let both = throttle_keys(&[("user:b", rule), ("addr:x", rule)]);
    assert_eq!(s.take_throttle_attempt(&both, t).await.unwrap(), refused("addr:x", 1));
    assert_eq!(s.take_throttle_attempt(&both, t + 1).await.unwrap(), allowed(2), "the address's delay grows; user:b's first attempt");
    assert_eq!(s.take_throttle_attempt(&throttle_keys(&[("user:b", rule)]), t + 1).await.unwrap(), allowed(0), "user:b counted once");

    // Quiet for reset_after past the delay: the key starts over.
    assert_eq!(s.take_throttle_attempt(&addr, t + 1 + 2 + 100).await.unwrap(), allowed(0));
    // Unknown keys start fresh; old rows go with the clean-up and start fresh too.
    assert_eq!(s.take_throttle_attempt(&throttle_keys(&[("user:never", rule)]), t).await.unwrap(), allowed(0));
    while s.delete_expired(t + 200_000, 100).await.unwrap() > 0 {}
    assert_eq!(s.take_throttle_attempt(&addr, t + 200_000).await.unwrap(), allowed(0));
    s.update_throttle_success(&["user:missing".into()], &["addr:missing".into()]).await.unwrap();
}

/// Concurrent attempts (on PostgreSQL, on the pool's separate connections: separate
/// instances' view): never more allowed than the rule admits, per key and over two keys.
pub async fn throttles_are_atomic(h: &Handles) {
    let rule = ThrottleRule { burst: 3, max_delay: 900, reset_after: 900 };
    let attempts = (0..30).map(|i| {
        let s = h.pick(i);
        async move { s.take_throttle_attempt(&throttle_keys(&[("user:race", rule)]), 5_000).await.unwrap() }
    });
    let results = futures_util::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| matches!(r, ThrottleAttempt::Allowed { .. })).count(), 3, "exactly the burst is allowed: {results:?}");
    assert!(results.iter().all(|r| !matches!(r, ThrottleAttempt::Refused { retry_after, .. } if *retry_after != 1)));
    // Thirty users from one address: the address's burst bounds them all.
    let addr = ThrottleRule { burst: 5, max_delay: 60, reset_after: 900 };
    let attempts = (0..30).map(|i| {
        let s = h.pick(i);
        async move { s.take_throttle_attempt(&throttle_keys(&[(&format!("user:r{i}"), rule), ("addr:race", addr)]), 5_000).await.unwrap() }
    });
    let results = futures_util::future::join_all(attempts).await;
    assert_eq!(results.iter().filter(|r| matches!(r, ThrottleAttempt::Allowed { .. })).count(), 5, "exactly the address's burst: {results:?}");
}

// DPoP (RFC 9449).

/// [`DpopStore::create_dpop_proof`]: of concurrent records of one proof on two handles exactly
/// one is first (§11.1: a replayed proof is refused on every instance); an entry that expired
/// counts as absent; other proofs are independent.
pub async fn dpop_proofs_are_single_use(h: &Handles) {
    let records = (0..20).map(|i| {
        let s = h.pick(i);
        async move { s.create_dpop_proof("proof-1", 100, 10).await.unwrap() }
    });
    let results = futures_util::future::join_all(records).await;
    assert_eq!(results.iter().filter(|first| **first).count(), 1, "exactly one record of a proof is the first: {results:?}");
    assert!(!h.b.create_dpop_proof("proof-1", 100, 99).await.unwrap(), "a replay before expiry is refused");
    assert!(h.a.create_dpop_proof("proof-2", 100, 10).await.unwrap(), "another proof is new");
    assert!(h.b.create_dpop_proof("proof-1", 200, 100).await.unwrap(), "an expired entry counts as absent");
    assert!(!h.a.create_dpop_proof("proof-1", 300, 150).await.unwrap(), "and is recorded again, until its new expiry");
}

/// [`AssertionStore::take_assertion`] (RFC 7523 §3 item 7): of concurrent redemptions of one
/// assertion on two handles exactly one wins; an expired entry counts as absent; other
/// assertions are independent.
pub async fn assertions_are_single_use(h: &Handles) {
    let takes = (0..20).map(|i| {
        let s = h.pick(i);
        async move { s.take_assertion("jwt-1", 100, 10).await.unwrap() }
    });
    let results = futures_util::future::join_all(takes).await;
    assert_eq!(results.iter().filter(|won| **won).count(), 1, "exactly one redemption of an assertion wins: {results:?}");
    assert!(!h.b.take_assertion("jwt-1", 100, 99).await.unwrap(), "a replay before expiry is refused");
    assert!(h.a.take_assertion("jwt-2", 100, 10).await.unwrap(), "another assertion is new");
    assert!(h.b.take_assertion("jwt-1", 200, 100).await.unwrap(), "an expired entry counts as absent");
}

/// [`DpopStore::create_dpop_nonce`] / [`DpopStore::find_dpop_nonce`]: a nonce is valid until its
/// expiry, only when issued; issuing it twice is harmless.
pub async fn dpop_nonces(s: &dyn Store) {
    assert!(!s.find_dpop_nonce("n-1", 10).await.unwrap(), "a nonce never issued is not valid");
    s.create_dpop_nonce("n-1", 100).await.unwrap();
    s.create_dpop_nonce("n-1", 100).await.unwrap();
    assert!(s.find_dpop_nonce("n-1", 99).await.unwrap());
    assert!(!s.find_dpop_nonce("n-1", 100).await.unwrap(), "a nonce is not valid at its expiry");
    assert!(!s.find_dpop_nonce("n-2", 10).await.unwrap());
}

/// A code's `dpop_jkt` (§10) and a refresh token's (§5) are stored and returned by finds, takes
/// and rotations.
pub async fn dpop_bindings_round_trip(s: &dyn Store) {
    let mut c = code("bound-code");
    c.dpop_jkt = Some("jkt-of-the-key".into());
    s.create_code(&c).await.unwrap();
    assert_eq!(s.take_code("bound-code", 20).await.unwrap(), Taken::Taken(c));
    let mut r = refresh("bound-r1", "bf");
    r.dpop_jkt = Some("jkt-of-the-key".into());
    s.create_refresh_token(&r).await.unwrap();
    assert_eq!(s.find_refresh_token("bound-r1").await.unwrap(), Some(r.clone()));
    match s.take_refresh_token("bound-r1", 5, 0).await.unwrap() {
        Taken::Taken(got) => assert_eq!(got.dpop_jkt.as_deref(), Some("jkt-of-the-key")),
        other => panic!("a live bound refresh token must be taken: {other:?}"),
    }
}

// Signing keys at rest (issue 13, finding 4).

/// [`KeyStore::update_signing_key_der`] replaces a key's stored bytes only while they are the
/// expected ones; concurrent re-seals of one key: exactly one wins.
pub async fn key_reseal_is_compare_and_swap(h: &Handles) {
    let s = &*h.a;
    let k = KeyRecord { kid: "reseal-1".into(), alg: "ES256".into(), private_der: vec![0x30, 1, 2], created_at: 500, use_after: 500 };
    s.create_signing_key(&k).await.unwrap();
    assert!(!s.update_signing_key_der("reseal-1", &[9, 9], &[7]).await.unwrap(), "not the stored bytes");
    assert!(!s.update_signing_key_der("no-such-kid", &k.private_der, &[7]).await.unwrap(), "no such key");
    assert!(s.update_signing_key_der("reseal-1", &k.private_der, &[7, 7]).await.unwrap());
    let stored = s.list_signing_keys().await.unwrap().into_iter().find(|r| r.kid == "reseal-1").unwrap();
    assert_eq!(stored, KeyRecord { private_der: vec![7, 7], ..k.clone() }, "only the key bytes change");
    assert!(!s.update_signing_key_der("reseal-1", &k.private_der, &[8]).await.unwrap(), "already replaced");
    for round in 0..5u8 {
        let current = s.list_signing_keys().await.unwrap().into_iter().find(|r| r.kid == "reseal-1").unwrap().private_der;
        let racers = (0..10u8).map(|i| {
            let (store, current) = (h.pick(usize::from(i)), current.clone());
            async move { store.update_signing_key_der("reseal-1", &current, &[round, i, 0xff]).await.unwrap() }
        });
        let won = futures_util::future::join_all(racers).await.into_iter().filter(|w| *w).count();
        assert_eq!(won, 1, "round {round}: one re-seal wins");
    }
    assert!(s.delete_signing_key("reseal-1").await.unwrap());
}

/// [`ConfigStore::apply_config`]: every kind of change, applied in order; the objects an apply
/// created are listed for `--prune`.
pub async fn config_changes_apply_together(s: &dyn Store) {
    let mut a = api_with_roles("https://docs.example", "docs.read");
    let mut c = client("cfg-client");
    let mut g = group("editors");
    let u = user("u-1", "ann");
    let grant = RoleAssignment { api: a.identifier.clone(), role: "editor".into(), assignee: Assignee::Group("editors".into()) };
    let mark = |kind: &str, key: &str| ConfigChange::MarkApplied { kind: kind.into(), key: key.into() };
    s.apply_config(&[
        ConfigChange::CreateApi(a.clone()),
        ConfigChange::CreateClient(c.clone()),
        ConfigChange::CreateUser(u.clone()),
        ConfigChange::SetAdmin { user_id: "u-1".into(), is_admin: true },
        ConfigChange::CreateGroup(g.clone()),
        ConfigChange::AddMember { group: "editors".into(), user_id: "u-1".into() },
        ConfigChange::GrantRole(grant.clone()),
        mark("api", &a.identifier),
        mark("client", "cfg-client"),
        mark("group", "editors"),
        ConfigChange::Audit { kind: "config_applied".into(), actor: "cli:test".into(), detail: "{}".into(), at: 7 },
    ])
    .await
    .unwrap();
    assert_eq!(s.find_client("cfg-client").await.unwrap(), Some(c.clone()));
    assert!(s.find_user("u-1").await.unwrap().unwrap().is_admin);
    assert_eq!(s.find_user_roles("u-1", &a.identifier).await.unwrap(), ["editor"]);
    assert_eq!(
        s.list_applied().await.unwrap(),
        [("api".to_string(), a.identifier.clone()), ("client".into(), "cfg-client".into()), ("group".into(), "editors".into())]
    );
    let audit = s.find_audit_events(&AuditQuery { kind: Some("config_applied".into()), limit: 5, ..Default::default() }).await.unwrap();
    assert_eq!(audit[0].actor, "cli:test");
    // Updates keep what they do not name: the API's grants, the client's secret.
    a.name = "Docs v2".into();
    a.scopes.push(ApiScope { name: "docs.write".into(), description: "Write docs".into() });
    c.name = "Renamed".into();
    c.redirect_uris = vec!["https://app.example/new".into()];
    g.description = "People who edit".into();
    let mut u2 = u.clone();
    u2.email = Some("ann@new.example".into());
    s.apply_config(&[
        ConfigChange::UpdateApi(a.clone()),
        ConfigChange::UpdateClient(c.clone()),
        ConfigChange::UpdateClientSecret { client_id: "cfg-client".into(), secret_hash: "cd".repeat(32) },
        ConfigChange::UpdateGroup(g.clone()),
        ConfigChange::UpdateUser(u2),
        ConfigChange::RemoveMember { group: "editors".into(), user_id: "u-1".into() },
    ])
    .await
    .unwrap();
    let stored = s.list_apis().await.unwrap().into_iter().find(|x| x.identifier == a.identifier).unwrap();
    assert_eq!((stored.name.as_str(), stored.scopes.len()), ("Docs v2", 2));
    assert_eq!(s.list_role_assignments(&a.identifier).await.unwrap(), std::slice::from_ref(&grant));
    let sc = s.find_client("cfg-client").await.unwrap().unwrap();
    assert_eq!(
        (sc.name.as_str(), sc.redirect_uris.clone(), sc.secret_hash.clone()),
        ("Renamed", vec!["https://app.example/new".to_string()], Some("cd".repeat(32)))
    );
    assert_eq!(s.find_group("editors").await.unwrap().unwrap().description, "People who edit");
    assert_eq!(s.find_user("u-1").await.unwrap().unwrap().email.as_deref(), Some("ann@new.example"));
    assert!(s.list_group_members("editors").await.unwrap().is_empty());
    // Deletions take what goes with them.
    s.apply_config(&[
        ConfigChange::GrantRole(RoleAssignment { assignee: Assignee::User("u-1".into()), ..grant.clone() }),
        ConfigChange::RevokeRole(grant),
        ConfigChange::DeleteGroup("editors".into()),
        ConfigChange::DeleteApi(a.identifier.clone()),
        ConfigChange::DeleteClient("cfg-client".into()),
        ConfigChange::UnmarkApplied { kind: "api".into(), key: a.identifier.clone() },
    ])
    .await
    .unwrap();
    assert!(s.find_group("editors").await.unwrap().is_none() && s.find_client("cfg-client").await.unwrap().is_none());
    assert!(s.list_apis().await.unwrap().iter().all(|x| x.identifier != a.identifier));
    assert!(s.list_role_assignments(&a.identifier).await.unwrap().is_empty(), "the API's grants went with it");
    assert_eq!(s.list_applied().await.unwrap().len(), 2);
}

/// [`ConfigStore::apply_config`] is one transaction: a change that fails (a taken client id)
/// leaves none of the changes before it.
pub async fn config_changes_all_or_none(s: &dyn Store) {
    s.create_client(&client("taken")).await.unwrap();
    let result = s
        .apply_config(&[
            ConfigChange::CreateGroup(group("first")),
            ConfigChange::MarkApplied { kind: "group".into(), key: "first".into() },
            ConfigChange::CreateClient(client("taken")),
        ])
        .await;
    assert!(matches!(result, Err(StoreError::Conflict(_))), "{result:?}");
    assert!(s.find_group("first").await.unwrap().is_none(), "rolled back");
    assert!(s.list_applied().await.unwrap().is_empty());
}
