//! Groups and roles in tokens (issue 16) over real HTTP: an API declares roles, granted to
//! users and to groups; the user's access tokens for that API carry them as `roles`, computed
//! at every issuance (a refresh sees a change), never another API's and never for a client
//! alone; the `groups` scope releases `groups`; tessera-guard's `RequireRole` decides routes.

use crate::common::*;
use serde_json::{Value, json};
use tessera_server::service::admin::{self, NewClient, RoleHolder};

const REDIRECT: &str = "https://app.example/cb";
const DOCS: &str = "https://docs.example";

async fn docs_api(s: &TestServer) {
    let now = tessera_server::Clock::now(&*s.clock);
    let roles = vec![admin::parse_api_role("editor=Can edit").unwrap(), admin::parse_api_role("viewer=Can view").unwrap()];
    admin::create_api_with_roles(&*s.svc.store, DOCS, "Docs", vec![admin::parse_api_scope("docs.read=Read your documents").unwrap()], roles, now)
        .await
        .unwrap();
}

/// Tokens for alice through a confidential client with `scope`: (access token claims, the
/// token response).
async fn tokens(s: &TestServer, id: &str, secret: &str, scope: &str) -> Value {
    let url = s.authorize_url(id, REDIRECT, scope, "st", None);
    let back = Browser::new(&s.url).authorize_and_allow(&url).await;
    let code = query(&back).remove("code").unwrap_or_else(|| panic!("{back}"));
    let (status, body, _) = token_basic(&s.url, id, secret, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", REDIRECT)]).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn claims_of(jwt: &str) -> Value {
    let part = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&base64::Engine::decode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, part).unwrap()).unwrap()
}

#[tokio::test]
async fn roles_follow_grants_at_every_issuance_and_stay_with_their_api() {
    let s = TestServer::start().await;
    let store = &*s.svc.store;
    docs_api(&s).await;
    let now = tessera_server::Clock::now(&*s.clock);
    admin::create_group(store, "editors", Some("People who edit"), now).await.unwrap();
    admin::add_group_member(store, "editors", USER).await.unwrap();
    admin::grant_role(store, DOCS, "editor", &RoleHolder::Group("editors".into())).await.unwrap();
    let c = s
        .client(NewClient {
            name: "Docs Web".into(),
            redirect_uris: vec![REDIRECT.into()],
            scope: "docs.read notes.read".into(),
            grant_types: vec!["authorization_code".into(), "refresh_token".into()],
            ..Default::default()
        })
        .await;
    let (id, secret) = (c.client.client_id.clone(), c.client_secret.clone().unwrap());
    let t = tokens(&s, &id, &secret, "docs.read").await;
    let at = verify_access_token(&s.url, t["access_token"].as_str().unwrap(), DOCS).await;
    assert_eq!(at["roles"], json!(["editor"]));
    let introspected = post(&s.url, "/introspect", Some((&id, &secret)), &[("token", t["access_token"].as_str().unwrap())]).await.1;
    assert_eq!(introspected["roles"], json!(["editor"]), "introspection reports the roles: {introspected}");

    // A change is seen by the next issuance: the refreshed token carries the new roles.
    admin::grant_role(store, DOCS, "viewer", &RoleHolder::User(USER.into())).await.unwrap();
    let refresh = |rt: String| {
        let (url, id, secret) = (s.url.clone(), id.clone(), secret.clone());
        async move { token_basic(&url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", &rt)]).await.1 }
    };
    let t2 = refresh(t["refresh_token"].as_str().unwrap().to_string()).await;
    assert_eq!(claims_of(t2["access_token"].as_str().unwrap())["roles"], json!(["editor", "viewer"]));
    admin::remove_group_member(store, "editors", USER).await.unwrap();
    admin::revoke_role(store, DOCS, "viewer", &RoleHolder::User(USER.into())).await.unwrap();
    let t3 = refresh(t2["refresh_token"].as_str().unwrap().to_string()).await;
    let claims = claims_of(t3["access_token"].as_str().unwrap());
    assert!(claims.get("roles").is_none(), "no roles left, no claim: {claims}");

    // Another API's token carries none of the Docs API's roles.
    admin::add_group_member(store, "editors", USER).await.unwrap();
    let notes = tokens(&s, &id, &secret, "notes.read").await;
    let claims = verify_access_token(&s.url, notes["access_token"].as_str().unwrap(), API).await;
    assert!(claims.get("roles").is_none(), "{claims}");

    // A client acting for itself has no user and no roles.
    let svc = s.client(NewClient { name: "Job".into(), scope: "docs.read".into(), grant_types: vec!["client_credentials".into()], ..Default::default() }).await;
    let (status, body, _) = token_basic(&s.url, &svc.client.client_id, svc.client_secret.as_deref().unwrap(), &[("grant_type", "client_credentials")]).await;
    assert_eq!(status, 200);
    assert!(claims_of(body["access_token"].as_str().unwrap()).get("roles").is_none());

    // Deleting the group takes its grant along.
    admin::delete_group(store, "editors").await.unwrap();
    admin::create_group(store, "editors", None, now).await.unwrap();
    admin::add_group_member(store, "editors", USER).await.unwrap();
    let t4 = tokens(&s, &id, &secret, "docs.read").await;
    assert!(claims_of(t4["access_token"].as_str().unwrap()).get("roles").is_none(), "a group made again holds nothing");
}

/// The admin rules: roles must be declared by the API, holders must exist, names are tokens.
#[tokio::test]
async fn role_and_group_administration_is_checked() {
    let s = TestServer::start().await;
    let store = &*s.svc.store;
    docs_api(&s).await;
    let now = tessera_server::Clock::now(&*s.clock);
    let e = |r: Result<bool, admin::AdminError>| r.unwrap_err().to_string();
    assert!(e(admin::grant_role(store, DOCS, "owner", &RoleHolder::User(USER.into())).await).contains("declares no role owner"));
    assert!(e(admin::grant_role(store, API, "editor", &RoleHolder::User(USER.into())).await).contains("declares no role"));
    assert!(e(admin::grant_role(store, "https://none.example", "editor", &RoleHolder::User(USER.into())).await).contains("no API"));
    assert!(e(admin::grant_role(store, DOCS, "editor", &RoleHolder::User("nobody".into())).await).contains("no user"));
    assert!(e(admin::grant_role(store, DOCS, "editor", &RoleHolder::Group("nobody".into())).await).contains("no group"));
    assert!(admin::grant_role(store, DOCS, "editor", &RoleHolder::User(USER.into())).await.unwrap());
    assert!(!admin::grant_role(store, DOCS, "editor", &RoleHolder::User(USER.into())).await.unwrap(), "twice: no change");
    for bad in ["", "has space", "ünïcode", &"x".repeat(65)] {
        assert!(admin::create_group(store, bad, None, now).await.is_err(), "{bad:?}");
        assert!(admin::parse_api_role(&format!("{bad}=Role")).is_err(), "{bad:?}");
    }
    admin::create_group(store, "ops", None, now).await.unwrap();
    assert!(admin::create_group(store, "ops", None, now).await.unwrap_err().to_string().contains("already exists"));
    assert!(admin::add_group_member(store, "ops", USER).await.unwrap());
    assert!(!admin::add_group_member(store, "ops", USER).await.unwrap());
    assert!(admin::add_group_member(store, "ops", "nobody").await.is_err());
    assert!(admin::add_group_member(store, "nope", USER).await.is_err());
    assert_eq!(admin::group_members(store, "ops").await.unwrap(), [USER]);
    let dup = vec![admin::parse_api_role("a=A").unwrap(), admin::parse_api_role("a=B").unwrap()];
    let scope = vec![admin::parse_api_scope("x.read=X").unwrap()];
    assert!(admin::create_api_with_roles(store, "https://x.example", "X", scope, dup, now).await.unwrap_err().to_string().contains("twice"));
}

/// The `groups` scope: `groups` in the ID token and at UserInfo only when granted.
#[tokio::test]
async fn the_groups_scope_releases_the_groups_claim() {
    let s = TestServer::start().await;
    let store = &*s.svc.store;
    let now = tessera_server::Clock::now(&*s.clock);
    admin::create_group(store, "staff", None, now).await.unwrap();
    admin::add_group_member(store, "staff", USER).await.unwrap();
    let c = s.client(NewClient { name: "Web".into(), redirect_uris: vec![REDIRECT.into()], scope: "openid profile groups".into(), ..Default::default() }).await;
    let (id, secret) = (c.client.client_id.clone(), c.client_secret.clone().unwrap());
    for (scope, groups) in [("openid groups", Some(json!(["staff"]))), ("openid profile", None)] {
        let t = tokens(&s, &id, &secret, scope).await;
        assert_eq!(claims_of(t["id_token"].as_str().unwrap()).get("groups").cloned(), groups, "ID token for {scope}");
        let info: Value = reqwest::Client::new()
            .get(format!("{}/userinfo", s.url))
            .bearer_auth(t["access_token"].as_str().unwrap())
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(info.get("groups").cloned(), groups, "UserInfo for {scope}: {info}");
    }
    let meta: Value = reqwest::get(format!("{}/.well-known/openid-configuration", s.url)).await.unwrap().json().await.unwrap();
    assert!(meta["claims_supported"].as_array().unwrap().contains(&json!("groups")), "{meta}");
}

/// tessera-guard's `RequireRole` in front of a real route, with Tessera's own tokens.
#[tokio::test]
async fn require_role_admits_editors_only() {
    use axum::handler::Handler;
    use axum::routing::get;
    let s = TestServer::start().await;
    docs_api(&s).await;
    let c = s.client(NewClient { name: "Docs Web".into(), redirect_uris: vec![REDIRECT.into()], scope: "docs.read".into(), ..Default::default() }).await;
    let (id, secret) = (c.client.client_id.clone(), c.client_secret.clone().unwrap());
    let guard = tessera_guard::Guard::new(tessera_guard::GuardConfig::new(&s.url, DOCS)).unwrap();
    let edit = (|| async { "edited" }).layer(tessera_guard::RequireRole("editor"));
    let app = axum::Router::new().route("/edit", get(edit)).layer(guard.layer());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let call = |token: String| {
        let base = base.clone();
        async move { reqwest::Client::new().get(format!("{base}/edit")).bearer_auth(token).send().await.unwrap().status().as_u16() }
    };
    let before = tokens(&s, &id, &secret, "docs.read").await;
    assert_eq!(call(before["access_token"].as_str().unwrap().to_string()).await, 403, "not an editor yet");
    admin::grant_role(&*s.svc.store, DOCS, "editor", &RoleHolder::User(USER.into())).await.unwrap();
    let after = tokens(&s, &id, &secret, "docs.read").await;
    assert_eq!(call(after["access_token"].as_str().unwrap().to_string()).await, 200);
}
