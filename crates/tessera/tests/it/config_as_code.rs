//! Configuration as code (issue 16) in-process: the plan of a file, applied twice (the second
//! plans nothing), drift made through the admin API shown in the next plan, `--prune` deleting
//! only what an apply created, one transaction (all or nothing), and `export` then apply on a
//! fresh database reproducing the state. The binary's `tessera apply`/`export`/`serve --apply`
//! are in `ci::cli`.
use crate::common::*;
use serde_json::json;
use tessera_server::service::admin::NewClient;
use tessera_server::service::config::{self, Desired};

const FILE: &str = r#"
[[api]]
identifier = "https://wiki.example"
name = "Wiki"
scopes = [{ name = "wiki.read", description = "Read the wiki" }, { name = "wiki.write", description = "Edit the wiki" }]
roles = [{ name = "editor", description = "Can edit" }]
grants = [{ role = "editor", group = "editors" }, { role = "editor", user = "alice" }]

[[group]]
name = "editors"
description = "People who edit"
members = ["alice", "dana"]

[[client]]
client_id = "wiki-web"
name = "Wiki"
redirect_uris = ["https://wiki.example/cb"]
scope = "openid wiki.read wiki.write"
secret_env = "WIKI_WEB_SECRET"

[[client]]
client_id = "wiki-cli"
name = "Wiki CLI"
public = true
grant_types = ["urn:ietf:params:oauth:grant-type:device_code", "refresh_token"]
scope = "wiki.read"

[[user]]
username = "dana"
email = "dana@example.com"
admin = true
"#;

const SECRET: &str = "a-client-secret-of-at-least-32-characters";

/// The file with its references resolved as `tessera apply` resolves them.
fn desired(text: &str) -> Desired {
    let mut d: Desired = toml::from_str(text).unwrap();
    for c in &mut d.clients {
        if c.secret_env.is_some() {
            c.secret = Some(SECRET.into());
        }
    }
    for u in &mut d.users {
        u.password = Some(PASSWORD.into());
    }
    d
}

async fn plan_and_apply(s: &TestServer, d: &Desired, prune: bool) -> Vec<String> {
    let plan = config::plan(&*s.svc.store, d, prune, &s.svc.config.argon2, "test", s.svc.now()).await.unwrap();
    config::apply(&*s.svc.store, &plan).await.unwrap();
    plan.lines
}

#[tokio::test]
async fn apply_is_idempotent_shows_drift_and_prunes_only_its_own() {
    let s = TestServer::start().await;
    let d = desired(FILE);
    let first = plan_and_apply(&s, &d, false).await;
    assert!(first.contains(&"+ create user dana".to_string()) && first.contains(&"+ create client wiki-web".to_string()), "{first:?}");
    assert!(first.contains(&"+ grant role editor of https://wiki.example to user alice".to_string()), "{first:?}");
    // What it made works: the secret from the reference authenticates, roles reach tokens.
    let dana = s.svc.store.find_user_by_username("dana").await.unwrap().unwrap();
    assert!(dana.is_admin);
    assert_eq!(s.svc.store.find_user_roles(&dana.id, "https://wiki.example").await.unwrap(), ["editor"]);
    let c = s.svc.store.find_client("wiki-web").await.unwrap().unwrap();
    assert_eq!(c.secret_hash.as_deref(), Some(tessera_server::secret::hash(SECRET).as_str()));
    // Again: nothing to do, and no audit event for nothing.
    let again = config::plan(&*s.svc.store, &d, false, &s.svc.config.argon2, "test", s.svc.now()).await.unwrap();
    assert!(again.is_empty() && again.changes.is_empty(), "{:?}", again.lines);

    // Drift through the admin API: the next plan shows it and puts it back.
    let ops =
        s.client(NewClient { name: "ops".into(), scope: "tessera.admin".into(), grant_types: vec!["client_credentials".into()], ..Default::default() }).await;
    let (_, t, _) =
        token_basic(&s.url, &ops.client.client_id, ops.client_secret.as_deref().unwrap(), &[("grant_type", "client_credentials"), ("scope", "tessera.admin")])
            .await;
    let token = t["access_token"].as_str().unwrap();
    let http = reqwest::Client::new();
    let got = http.get(format!("{}/admin/v1/clients/wiki-web", s.url)).bearer_auth(token).send().await.unwrap();
    let etag = got.headers()["etag"].to_str().unwrap().to_string();
    let res = http
        .patch(format!("{}/admin/v1/clients/wiki-web", s.url))
        .bearer_auth(token)
        .header("if-match", etag)
        .json(&json!({"redirect_uris": ["https://elsewhere.example/cb"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = http.delete(format!("{}/admin/v1/groups/editors/members/alice", s.url)).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 204);
    let drift = plan_and_apply(&s, &d, false).await;
    assert_eq!(drift, ["+ add alice to group editors", "~ update client wiki-web: redirect_uris"]);
    assert_eq!(s.svc.store.find_client("wiki-web").await.unwrap().unwrap().redirect_uris, ["https://wiki.example/cb"]);

    // Without the CLI client in the file: left without --prune, deleted with it; a client made
    // otherwise (ops) is never pruned, nor a user.
    let smaller = desired(
        &FILE
            .replace("[[client]]\nclient_id = \"wiki-cli\"", "[[client]]\nclient_id = \"wiki-tool\"")
            .replace("[[user]]\nusername = \"dana\"\nemail = \"dana@example.com\"\nadmin = true\n", ""),
    );
    let plan = config::plan(&*s.svc.store, &smaller, false, &s.svc.config.argon2, "test", s.svc.now()).await.unwrap();
    assert!(plan.left.iter().any(|l| l.starts_with("client wiki-cli")), "{:?}", plan.left);
    assert!(plan.left.iter().any(|l| l.starts_with("user dana")), "{:?}", plan.left);
    let pruned = plan_and_apply(&s, &smaller, true).await;
    assert!(pruned.contains(&"- delete client wiki-cli".to_string()) && pruned.contains(&"+ create client wiki-tool".to_string()), "{pruned:?}");
    assert!(s.svc.store.find_client("wiki-cli").await.unwrap().is_none());
    assert!(s.svc.store.find_client(&ops.client.client_id).await.unwrap().is_some(), "not made by apply: never pruned");
    assert!(s.svc.store.find_user_by_username("dana").await.unwrap().is_some(), "users are never deleted by apply");
    let audit = s
        .svc
        .store
        .find_audit_events(&tessera_storage::AuditQuery { kind: Some("admin.config_applied".into()), limit: 10, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(audit.len(), 3, "one event per apply that changed something");
}

#[tokio::test]
async fn a_plan_is_applied_whole_or_not_at_all() {
    let s = TestServer::start().await;
    let d = desired(FILE);
    let plan = config::plan(&*s.svc.store, &d, false, &s.svc.config.argon2, "test", s.svc.now()).await.unwrap();
    // Someone registers wiki-web between the plan and the apply: nothing of the plan is made.
    s.client(NewClient {
        client_id: Some("wiki-web".into()),
        name: "Squatter".into(),
        scope: "openid".into(),
        grant_types: vec!["client_credentials".into()],
        ..Default::default()
    })
    .await;
    assert!(config::apply(&*s.svc.store, &plan).await.is_err());
    assert!(s.svc.store.find_group("editors").await.unwrap().is_none());
    assert!(s.svc.store.find_user_by_username("dana").await.unwrap().is_none());
    assert!(s.svc.store.list_apis().await.unwrap().iter().all(|a| a.identifier != "https://wiki.example"));
    // Bad files are refused with the object and the reason, before anything is planned.
    for (text, why) in [
        (FILE.replace("members = [\"alice\", \"dana\"]", "members = [\"nobody\"]"), "no user nobody"),
        (FILE.replace("{ role = \"editor\", user = \"alice\" }", "{ role = \"owner\", user = \"alice\" }"), "does not declare"),
        (FILE.replace("https://wiki.example/cb", "https://wiki.example/cb#x"), "client wiki-web"),
        (format!("{FILE}\n[[group]]\nname = \"editors\"\n"), "declared twice"),
    ] {
        let err = config::plan(&*s.svc.store, &desired(&text), false, &s.svc.config.argon2, "test", s.svc.now()).await.unwrap_err().to_string();
        assert!(err.contains(why), "{why}: {err}");
    }
    assert!(toml::from_str::<Desired>("[[client]]\nclient_id = \"x\"\nname = \"x\"\nsecret = \"inline\"\n").is_err(), "a secret in the file is refused");
}

#[tokio::test]
async fn export_then_apply_on_a_fresh_database_reproduces_the_state() {
    let s = TestServer::start().await;
    plan_and_apply(&s, &desired(FILE), false).await;
    let exported = config::export(&*s.svc.store).await.unwrap();
    let text = toml::to_string_pretty(&exported).unwrap();
    assert!(!text.contains(SECRET) && !text.contains("argon2"), "no secrets in an export");
    let fresh = TestServer::start().await;
    let mut again: Desired = toml::from_str(&text).unwrap();
    for u in &mut again.users {
        u.password = Some(PASSWORD.into());
    }
    plan_and_apply(&fresh, &again, false).await;
    let mut reproduced = config::export(&*fresh.svc.store).await.unwrap();
    // The same state (user ids differ; the export names users by username).
    reproduced.users.iter_mut().zip(&exported.users).for_each(|(a, b)| assert_eq!(a.username, b.username));
    assert_eq!(toml::to_string_pretty(&reproduced).unwrap(), text);
    assert!(config::plan(&*fresh.svc.store, &again, false, &fresh.svc.config.argon2, "test", fresh.svc.now()).await.unwrap().is_empty());
}
