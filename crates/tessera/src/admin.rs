//! The admin commands: they work directly on the store, also while the server runs (SQLite WAL,
//! or the PostgreSQL database every instance shares); servers see changes within their cache
//! bound (`tessera_server::service::CACHE_TTL`).

use crate::cli::{ApiCmd, ClientCmd, UserCmd};
use crate::settings::DEFAULT_DATABASE;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::io::Read;
use tessera_server::service::admin::{self, NewClient, NewUser};
use tessera_server::{Clock, SystemClock};
use tessera_storage::{ApiRecord, ClientRecord, Store, UserRecord};
use std::sync::Arc;

async fn open(database: Option<&str>) -> anyhow::Result<Arc<dyn Store>> {
    crate::store::open_store(database.unwrap_or(DEFAULT_DATABASE), crate::store::ADMIN_POOL_SIZE).await
}

fn now() -> i64 {
    SystemClock.now()
}

fn print(json_out: bool, v: &Value, human: impl FnOnce() -> String) {
    if json_out {
        println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    } else {
        println!("{}", human());
    }
}

fn client_json(c: &ClientRecord) -> Value {
    json!({
        "client_id": c.client_id,
        "name": c.name,
        "redirect_uris": c.redirect_uris,
        "scope": c.scope,
        "grant_types": c.grant_types,
        "token_endpoint_auth_method": c.token_endpoint_auth_method,
        "public": c.secret_hash.is_none(),
        "created_at": c.created_at,
    })
}

fn client_text(c: &ClientRecord) -> String {
    format!(
        "client_id: {}\nname: {}\nredirect_uris: {}\nscope: {}\ngrant_types: {}\ntoken_endpoint_auth_method: {}",
        c.client_id,
        c.name,
        c.redirect_uris.join(" "),
        c.scope,
        c.grant_types.join(" "),
        c.token_endpoint_auth_method
    )
}

fn user_json(u: &UserRecord) -> Value {
    json!({ "id": u.id, "username": u.username, "email": u.email, "name": u.name, "created_at": u.created_at })
}

fn api_json(a: &ApiRecord) -> Value {
    json!({ "identifier": a.identifier, "name": a.name, "scopes": a.scopes, "created_at": a.created_at })
}

fn read_password() -> anyhow::Result<String> {
    let mut s = String::new();
    std::io::stdin().take(4096).read_to_string(&mut s).context("reading the password from standard input")?;
    let pw = s.lines().next().unwrap_or("").to_string();
    if pw.is_empty() {
        bail!("no password on standard input");
    }
    Ok(pw)
}

pub async fn migrate(database: Option<&str>) -> anyhow::Result<()> {
    open(database).await?;
    println!("database is up to date");
    Ok(())
}

pub async fn client(database: Option<&str>, j: bool, cmd: ClientCmd) -> anyhow::Result<()> {
    let store = open(database).await?;
    match cmd {
        ClientCmd::Create { name, redirect_uris, scope, grant_types, public, token_auth_method } => {
            let created = admin::create_client(&*store, NewClient { name, redirect_uris, scope, grant_types, public, token_endpoint_auth_method: token_auth_method }, now()).await?;
            let mut v = client_json(&created.client);
            if let Some(s) = &created.client_secret {
                v["client_secret"] = json!(s);
            }
            print(j, &v, || {
                let mut t = client_text(&created.client);
                if let Some(s) = &created.client_secret {
                    t.push_str(&format!("\nclient_secret: {s}\n\nThe secret is shown only this once: store it now."));
                }
                t
            });
        }
        ClientCmd::List => {
            let list = store.list_clients().await?;
            print(j, &Value::Array(list.iter().map(client_json).collect()), || {
                if list.is_empty() {
                    return "no clients".into();
                }
                list.iter().map(|c| format!("{}  {}  ({})", c.client_id, c.name, c.token_endpoint_auth_method)).collect::<Vec<_>>().join("\n")
            });
        }
        ClientCmd::Show { client_id } => {
            let c = store.find_client(&client_id).await?.with_context(|| format!("no client {client_id}"))?;
            print(j, &client_json(&c), || client_text(&c));
        }
        ClientCmd::Delete { client_id } => {
            if !store.delete_client(&client_id).await? {
                bail!("no client {client_id}");
            }
            print(j, &json!({ "deleted": client_id }), || format!("deleted client {client_id}"));
        }
        ClientCmd::RotateSecret { client_id } => {
            let s = admin::rotate_client_secret(&*store, &client_id).await?;
            print(j, &json!({ "client_id": client_id, "client_secret": s }), || format!("client_id: {client_id}\nclient_secret: {s}\n\nThe old secret no longer works. The new one is shown only this once."));
        }
    }
    Ok(())
}

pub async fn user(database: Option<&str>, j: bool, cmd: UserCmd) -> anyhow::Result<()> {
    let store = open(database).await?;
    match cmd {
        UserCmd::Create { username, email, name, password_stdin: _ } => {
            let pw = read_password()?;
            let u = admin::create_user(&*store, NewUser { username, email, name }, &pw, now()).await?;
            print(j, &user_json(&u), || format!("created user {} (id {})", u.username, u.id));
        }
        UserCmd::List => {
            let list = store.list_users().await?;
            print(j, &Value::Array(list.iter().map(user_json).collect()), || {
                if list.is_empty() {
                    return "no users".into();
                }
                list.iter().map(|u| format!("{}  {}  {}", u.id, u.username, u.email.as_deref().unwrap_or(""))).collect::<Vec<_>>().join("\n")
            });
        }
        UserCmd::Delete { username } => {
            if !store.delete_user(&username).await? {
                bail!("no user {username}");
            }
            print(j, &json!({ "deleted": username }), || format!("deleted user {username}"));
        }
        UserCmd::SetPassword { username, password_stdin: _ } => {
            let pw = read_password()?;
            admin::set_password(&*store, &username, &pw).await?;
            print(j, &json!({ "username": username, "password": "updated" }), || format!("password updated for {username}"));
        }
    }
    Ok(())
}

pub async fn api(database: Option<&str>, j: bool, cmd: ApiCmd) -> anyhow::Result<()> {
    let store = open(database).await?;
    match cmd {
        ApiCmd::Create { identifier, name, scopes } => {
            let parsed = scopes.iter().map(|s| admin::parse_api_scope(s)).collect::<Result<Vec<_>, _>>()?;
            let a = admin::create_api(&*store, &identifier, &name, parsed, now()).await?;
            print(j, &api_json(&a), || format!("created API {} ({}) with scopes: {}", a.identifier, a.name, a.scopes.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(" ")));
        }
        ApiCmd::List => {
            let list = store.list_apis().await?;
            print(j, &Value::Array(list.iter().map(api_json).collect()), || {
                if list.is_empty() {
                    return "no APIs".into();
                }
                list.iter()
                    .map(|a| format!("{}  {}\n{}", a.identifier, a.name, a.scopes.iter().map(|s| format!("  {}  {}", s.name, s.description)).collect::<Vec<_>>().join("\n")))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ApiCmd::Delete { identifier } => {
            if !store.delete_api(&identifier).await? {
                bail!("no API {identifier}");
            }
            print(j, &json!({ "deleted": identifier }), || format!("deleted API {identifier}"));
        }
    }
    Ok(())
}
