//! The admin commands: they work directly on the store, also while the server runs (SQLite WAL,
//! or the PostgreSQL database every instance shares); servers see changes within their cache
//! bound (`tessera_server::service::CACHE_TTL`).

use crate::cli::{ApiCmd, AuditCmd, AuditFilterArgs, ClientCmd, GroupCmd, KeysCmd, ProfileArgs, RoleHolderArgs, UserCmd};
use crate::settings::DEFAULT_DATABASE;
use anyhow::{Context, bail};
use serde_json::{Value, json};
use std::io::Read;
use std::sync::Arc;
use tessera_jose::Alg;
use tessera_server::service::admin::{self, NewClient, NewUser};
use tessera_server::{Clock, SystemClock};
use tessera_storage::{ApiRecord, ClientRecord, Store, UserRecord};

/// `--smtp-url` and `--email-from` as given (the mailer is made only by what sends mail).
#[derive(Debug, Clone, Default)]
pub struct MailSettings {
    pub smtp_url: Option<String>,
    pub from: Option<String>,
}

async fn open(database: Option<&str>) -> anyhow::Result<Arc<dyn Store>> {
    crate::store::open_store(database.unwrap_or(DEFAULT_DATABASE), crate::store::ADMIN_POOL_SIZE).await
}

fn now() -> i64 {
    SystemClock.now()
}

/// Who runs the CLI, as the audit log names the actor of its changes: `cli:` and the login name.
fn cli_actor() -> String {
    let name = std::env::var("SUDO_USER").or_else(|_| std::env::var("USER")).or_else(|_| std::env::var("LOGNAME")).unwrap_or_else(|_| "unknown".into());
    format!("cli:{}", name.chars().filter(|c| c.is_ascii_graphic()).take(64).collect::<String>())
}

/// The CLI's changes through the service layer, each recorded in the audit log as `cli:LOGIN`.
fn acting<'a>(store: &'a dyn Store, actor: &'a str) -> admin::Acting<'a> {
    admin::Acting { store, actor, now: now() }
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
        "scope": c.scope.to_string(),
        "grant_types": c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>(),
        "token_endpoint_auth_method": c.token_endpoint_auth_method.as_str(),
        "public": c.secret_hash.is_none(),
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "backchannel_logout_uri": c.backchannel_logout_uri,
        "id_token_signed_response_alg": c.id_token_signed_response_alg.as_deref().unwrap_or("RS256"),
        "allowed_origins": c.allowed_origins,
        "effective_allowed_origins": tessera_protocol::cors::effective_origins(&c.redirect_uris, &c.allowed_origins),
        "require_dpop": c.require_dpop,
        "require_mfa": c.require_mfa,
        "jwks": c.jwks,
        "created_at": c.created_at,
    })
}

fn client_text(c: &ClientRecord) -> String {
    format!(
        "client_id: {}\nname: {}\nredirect_uris: {}\nscope: {}\ngrant_types: {}\ntoken_endpoint_auth_method: {}\nallowed_origins: {}\nrequire_dpop: {}\nrequire_mfa: {}\nkeys: {}",
        c.client_id,
        c.name,
        c.redirect_uris.join(" "),
        c.scope,
        c.grant_types.iter().map(|g| g.as_str()).collect::<Vec<_>>().join(" "),
        c.token_endpoint_auth_method,
        tessera_protocol::cors::effective_origins(&c.redirect_uris, &c.allowed_origins).join(" "),
        c.require_dpop,
        c.require_mfa,
        match c.jwks.as_ref().and_then(|s| s["keys"].as_array()) {
            Some(keys) => keys.iter().map(|k| tessera_dpop::thumbprint(k).unwrap_or_else(|_| "?".into())).collect::<Vec<_>>().join(" "),
            None => "none".into(),
        }
    )
}

/// The text of a `--jwks` file (the checks are `admin::client_jwks`').
fn read_key_file(path: &std::path::Path) -> anyhow::Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("--jwks: cannot read {}", path.display()))
}

fn user_json(u: &UserRecord) -> Value {
    json!({
        "id": u.id,
        "username": u.username,
        "email": u.email,
        "name": u.name,
        "profile": u.profile,
        "created_at": u.created_at,
        "updated_at": u.updated_at,
        "disabled": u.disabled_at.is_some(),
        "disabled_at": u.disabled_at,
        "admin": u.is_admin,
        "require_mfa": u.require_mfa,
        "email_verified": u.email_verified,
    })
}

/// The profile flags that were given, as standard claims (address members grouped).
fn profile_map(p: &ProfileArgs) -> serde_json::Map<String, Value> {
    let mut m = serde_json::Map::new();
    let strings = [
        ("given_name", &p.given_name),
        ("family_name", &p.family_name),
        ("middle_name", &p.middle_name),
        ("nickname", &p.nickname),
        ("preferred_username", &p.preferred_username),
        ("profile", &p.profile),
        ("picture", &p.picture),
        ("website", &p.website),
        ("gender", &p.gender),
        ("birthdate", &p.birthdate),
        ("zoneinfo", &p.zoneinfo),
        ("locale", &p.locale),
        ("phone_number", &p.phone_number),
    ];
    for (k, v) in strings {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    for (k, v) in [("email_verified", p.email_verified), ("phone_number_verified", p.phone_number_verified)] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    let mut address = serde_json::Map::new();
    for (k, v) in
        [("street_address", &p.street_address), ("locality", &p.locality), ("region", &p.region), ("postal_code", &p.postal_code), ("country", &p.country)]
    {
        if let Some(v) = v {
            address.insert(k.into(), json!(v));
        }
    }
    if !address.is_empty() {
        m.insert("address".into(), Value::Object(address));
    }
    m
}

pub async fn keys(database: Option<&str>, j: bool, kek: &crate::settings::KekSources, cmd: KeysCmd) -> anyhow::Result<()> {
    let store = open(database).await?;
    let database_url = database.unwrap_or(DEFAULT_DATABASE);
    let now = now();
    match cmd {
        KeysCmd::List => {
            let list = store.list_signing_keys().await?;
            let rows: Vec<Value> = list
                .iter()
                .map(|k| {
                    let newer_signing = list.iter().any(|n| n.alg == k.alg && n.use_after > k.use_after && n.use_after <= now);
                    let status = if k.use_after > now {
                        "published, not yet signing"
                    } else if newer_signing {
                        "retiring"
                    } else {
                        "signing"
                    };
                    json!({ "kid": k.kid, "alg": k.alg, "created_at": k.created_at, "use_after": k.use_after, "status": status })
                })
                .collect();
            print(j, &Value::Array(rows.clone()), || {
                rows.iter()
                    .map(|r| format!("{}  {}  {}", r["kid"].as_str().unwrap_or(""), r["alg"].as_str().unwrap_or(""), r["status"].as_str().unwrap_or("")))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        KeysCmd::Rotate { alg, publish_delay } => {
            if publish_delay < 0 {
                bail!("--publish-delay must not be negative");
            }
            let algs: Vec<Alg> = match alg {
                Some(a) => vec![a.parse().map_err(|_| anyhow::anyhow!("--alg must be ES256, RS256 or EdDSA"))?],
                None => Alg::ALL.to_vec(),
            };
            let kek = crate::store::key_encryption(kek, database_url, &*store).await?;
            let actor = cli_actor();
            let rotated = admin::Acting { store: &*store, actor: &actor, now }.rotate_keys(&kek, &algs, publish_delay).await?;
            let created: Vec<Value> = rotated.iter().map(|(kid, a)| json!({ "kid": kid, "alg": a.as_str(), "use_after": now + publish_delay })).collect();
            print(j, &Value::Array(created.clone()), || {
                created
                    .iter()
                    .map(|c| format!("new {} key {} signs from {}", c["alg"].as_str().unwrap_or(""), c["kid"].as_str().unwrap_or(""), c["use_after"]))
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        // A KEK rotation (issue 13, finding 4): every key sealed again under the current KEK.
        KeysCmd::Rewrap => {
            let kek = crate::store::key_encryption(kek, database_url, &*store).await?;
            let resealed = tessera_server::keys::reseal(&*store, &kek).await?;
            let v = json!({ "resealed": resealed, "key_encryption_key": kek.current().id() });
            print(j, &v, || {
                format!(
                    "{} signing key(s) sealed again under key-encryption key {}; start every server with this key-encryption key",
                    resealed.len(),
                    kek.current().id()
                )
            });
        }
    }
    Ok(())
}

fn api_json(a: &ApiRecord) -> Value {
    json!({ "identifier": a.identifier, "name": a.name, "scopes": a.scopes, "roles": a.roles, "created_at": a.created_at })
}

fn holder(h: RoleHolderArgs) -> admin::RoleHolder {
    match (h.user, h.group) {
        (Some(u), _) => admin::RoleHolder::User(u),
        (None, Some(g)) => admin::RoleHolder::Group(g),
        // clap requires exactly one.
        (None, None) => admin::RoleHolder::User(String::new()),
    }
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

pub async fn client(database: Option<&str>, j: bool, allow_private_logout_uris: bool, cmd: ClientCmd) -> anyhow::Result<()> {
    let store = open(database).await?;
    match cmd {
        ClientCmd::Create {
            name,
            redirect_uris,
            scope,
            grant_types,
            public,
            token_auth_method,
            post_logout_redirect_uris,
            backchannel_logout_uri,
            id_token_signed_response_alg,
            allowed_origins,
            require_dpop,
            require_mfa,
            jwks,
        } => {
            let jwks = jwks.map(|f| read_key_file(&f)).transpose()?;
            let req = NewClient {
                name,
                redirect_uris,
                scope,
                grant_types,
                public,
                token_endpoint_auth_method: token_auth_method,
                post_logout_redirect_uris,
                backchannel_logout_uri,
                id_token_signed_response_alg,
                allow_private_logout_uris,
                allowed_origins,
                require_dpop,
                require_mfa,
                jwks,
                client_id: None,
            };
            let created = acting(&*store, &cli_actor()).create_client(req).await?;
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
        ClientCmd::Update {
            client_id,
            name,
            redirect_uris,
            scope,
            allowed_origins,
            clear_allowed_origins,
            require_dpop,
            require_mfa,
            no_require_mfa,
            jwks,
            clear_jwks,
        } => {
            let jwks = match (jwks, clear_jwks) {
                (Some(f), _) => Some(Some(read_key_file(&f)?)),
                (None, true) => Some(None),
                (None, false) => None,
            };
            let changes = admin::ClientChanges {
                name,
                redirect_uris: (!redirect_uris.is_empty()).then_some(redirect_uris),
                scope,
                allowed_origins: if clear_allowed_origins { Some(vec![]) } else { (!allowed_origins.is_empty()).then_some(allowed_origins) },
                require_dpop,
                require_mfa: (require_mfa || no_require_mfa).then_some(require_mfa),
                jwks,
            };
            let updated = acting(&*store, &cli_actor()).update_client(&client_id, changes).await?;
            print(j, &client_json(&updated), || client_text(&updated));
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
            acting(&*store, &cli_actor()).delete_client(&client_id).await?;
            print(j, &json!({ "deleted": client_id }), || format!("deleted client {client_id}"));
        }
        ClientCmd::RotateSecret { client_id } => {
            let s = acting(&*store, &cli_actor()).rotate_client_secret(&client_id).await?;
            print(j, &json!({ "client_id": client_id, "client_secret": s }), || {
                format!("client_id: {client_id}\nclient_secret: {s}\n\nThe old secret no longer works. The new one is shown only this once.")
            });
        }
    }
    Ok(())
}

pub async fn user(database: Option<&str>, j: bool, passwords: &crate::settings::Passwords, mail: &MailSettings, cmd: UserCmd) -> anyhow::Result<()> {
    if let UserCmd::Invite { email, name, username, issuer } = cmd {
        return invite(database, j, mail, email, name, username, issuer).await;
    }
    let store = open(database).await?;
    match cmd {
        UserCmd::Create { username, email, name, password_stdin: _, profile } => {
            let pw = read_password()?;
            // A new user has no second factor yet.
            let hash = admin::hash_new_password(&passwords.policy, &passwords.argon2, pw, admin::Factors::PasswordOnly).await?;
            let u = acting(&*store, &cli_actor()).create_user(NewUser { username, email, name, profile: profile_map(&profile) }, hash).await?;
            print(j, &user_json(&u), || format!("created user {} (id {})", u.username, u.id));
        }
        // Sent before the store is opened (above): the mail settings are checked first.
        UserCmd::Invite { .. } => bail!("user invite: not handled here"),
        UserCmd::Update { username, email, name, profile, disable, enable, admin: make_admin, no_admin, require_mfa, no_require_mfa } => {
            let actor = cli_actor();
            let act = acting(&*store, &actor);
            let mut u = act.update_user(&username, email, name, profile_map(&profile)).await?;
            if disable || enable {
                u = act.set_disabled(&username, disable).await?;
            }
            if make_admin || no_admin {
                u = act.set_admin(&username, make_admin).await?;
            }
            if require_mfa || no_require_mfa {
                u = act.set_require_mfa(&username, require_mfa).await?;
            }
            print(j, &user_json(&u), || format!("updated user {}", u.username));
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
        UserCmd::ResetMfa { username } => {
            let n = acting(&*store, &cli_actor()).reset_mfa(&username).await?;
            print(j, &json!({ "username": username, "factors_removed": n }), || {
                format!("removed {n} second factor(s) and every recovery code of {username}; they sign in with their password and set up a new one")
            });
        }
        UserCmd::Delete { username } => {
            acting(&*store, &cli_actor()).delete_user(&username).await?;
            print(j, &json!({ "deleted": username }), || format!("deleted user {username}"));
        }
        UserCmd::SetPassword { username, password_stdin: _ } => {
            let pw = read_password()?;
            let user = store.find_user_by_username(&username).await?.with_context(|| format!("no user {username}"))?;
            let factors = admin::Factors::of(&*store, &user.id).await?;
            let hash = admin::hash_new_password(&passwords.policy, &passwords.argon2, pw, factors).await?;
            acting(&*store, &cli_actor()).set_password_hash(&username, &hash).await?;
            print(j, &json!({ "username": username, "password": "updated" }), || format!("password updated for {username}"));
        }
    }
    Ok(())
}

/// `tessera user invite`: the CLI sends the mail itself, with the server's settings (it runs
/// beside the server, on the same database).
async fn invite(
    database: Option<&str>,
    j: bool,
    mail: &MailSettings,
    email: String,
    name: Option<String>,
    username: Option<String>,
    issuer: Option<String>,
) -> anyhow::Result<()> {
    let mailer = crate::settings::mailer(mail.smtp_url.as_deref(), mail.from.as_deref())?;
    crate::settings::check_mail_needed("user invite", mailer.as_deref())?;
    let Some(mailer) = mailer else { bail!("user invite sends mail: set --smtp-url and --email-from") };
    let Some(issuer) = issuer.filter(|i| !i.trim().is_empty()) else {
        bail!("user invite: the link starts with the server's issuer URL: set --issuer (TESSERA_ISSUER), as for serve")
    };
    let issuer = crate::settings::check_issuer(&issuer)?;
    let store = open(database).await?;
    let actor = cli_actor();
    let req = NewUser { username: username.unwrap_or_else(|| email.clone()), email: Some(email.clone()), name, ..Default::default() };
    let invited = acting(&*store, &actor).invite(&mailer, &issuer, &tessera_server::secret::OsRandom, req).await?;
    let u = &invited.user;
    let mut v = user_json(u);
    v["invitation"] = json!({ "email": email, "mailed_via": mailer.smtp(), "expires_at": invited.link_expires_at });
    print(j, &v, || {
        format!(
            "invited {email}: created user {} (id {}) without a password, and mailed a link to choose one (valid 7 days, until {})",
            u.username,
            u.id,
            rfc3339(invited.link_expires_at)
        )
    });
    Ok(())
}

pub async fn api(database: Option<&str>, j: bool, cmd: ApiCmd) -> anyhow::Result<()> {
    let store = open(database).await?;
    match cmd {
        ApiCmd::Create { identifier, name, scopes, roles } => {
            let parsed = scopes.iter().map(|s| admin::parse_api_scope(s)).collect::<Result<Vec<_>, _>>()?;
            let roles = roles.iter().map(|r| admin::parse_api_role(r)).collect::<Result<Vec<_>, _>>()?;
            let a = acting(&*store, &cli_actor()).create_api(&identifier, &name, parsed, roles).await?;
            print(j, &api_json(&a), || {
                let mut t = format!(
                    "created API {} ({}) with scopes: {}",
                    a.identifier,
                    a.name,
                    a.scopes.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(" ")
                );
                if !a.roles.is_empty() {
                    t.push_str(&format!("\nroles: {}", a.roles.iter().map(|r| r.name.as_str()).collect::<Vec<_>>().join(" ")));
                }
                t
            });
        }
        ApiCmd::GrantRole { identifier, role, holder: h } => {
            let h = holder(h);
            let new = acting(&*store, &cli_actor()).grant_role(&identifier, &role, &h).await?;
            print(j, &json!({ "api": identifier, "role": role, "granted": true, "changed": new }), || {
                if new { format!("granted {role} of {identifier} to {h}") } else { format!("{h} already holds {role} of {identifier}") }
            });
        }
        ApiCmd::RevokeRole { identifier, role, holder: h } => {
            let h = holder(h);
            let removed = acting(&*store, &cli_actor()).revoke_role(&identifier, &role, &h).await?;
            print(j, &json!({ "api": identifier, "role": role, "granted": false, "changed": removed }), || {
                if removed { format!("revoked {role} of {identifier} from {h}") } else { format!("{h} did not hold {role} of {identifier}") }
            });
        }
        ApiCmd::Roles { identifier } => {
            let a = store.list_apis().await?.into_iter().find(|a| a.identifier == identifier).with_context(|| format!("no API {identifier}"))?;
            let mut grants = Vec::new();
            for g in store.list_role_assignments(&identifier).await? {
                let holder = match &g.assignee {
                    tessera_storage::Assignee::User(id) => {
                        json!({ "user": store.find_user(id).await?.map(|u| u.username).unwrap_or_else(|| id.clone()) })
                    }
                    tessera_storage::Assignee::Group(name) => json!({ "group": name }),
                };
                grants.push(json!({ "role": g.role, "holder": holder }));
            }
            let v = json!({ "api": identifier, "roles": a.roles, "grants": grants });
            print(j, &v, || {
                let mut lines: Vec<String> = a.roles.iter().map(|r| format!("{}  {}", r.name, r.description)).collect();
                for g in &grants {
                    let (kind, who) = g["holder"]
                        .as_object()
                        .and_then(|o| o.iter().next())
                        .map(|(k, v)| (k.clone(), v.as_str().unwrap_or("").to_string()))
                        .unwrap_or_default();
                    lines.push(format!("  {} → {kind} {who}", g["role"].as_str().unwrap_or("")));
                }
                if lines.is_empty() { format!("API {identifier} declares no roles") } else { lines.join("\n") }
            });
        }
        ApiCmd::List => {
            let list = store.list_apis().await?;
            print(j, &Value::Array(list.iter().map(api_json).collect()), || {
                if list.is_empty() {
                    return "no APIs".into();
                }
                list.iter()
                    .map(|a| {
                        format!(
                            "{}  {}\n{}",
                            a.identifier,
                            a.name,
                            a.scopes.iter().map(|s| format!("  {}  {}", s.name, s.description)).collect::<Vec<_>>().join("\n")
                        )
                    })
                    .collect::<Vec<_>>()
                    .join("\n")
            });
        }
        ApiCmd::Delete { identifier } => {
            acting(&*store, &cli_actor()).delete_api(&identifier).await?;
            print(j, &json!({ "deleted": identifier }), || format!("deleted API {identifier}"));
        }
    }
    Ok(())
}

pub async fn group(database: Option<&str>, j: bool, cmd: GroupCmd) -> anyhow::Result<()> {
    let store = open(database).await?;
    match cmd {
        GroupCmd::Create { name, description } => {
            let g = acting(&*store, &cli_actor()).create_group(&name, description.as_deref()).await?;
            print(j, &json!({ "name": g.name, "description": g.description, "created_at": g.created_at }), || format!("created group {}", g.name));
        }
        GroupCmd::List => {
            let list = store.list_groups().await?;
            let v = Value::Array(list.iter().map(|g| json!({ "name": g.name, "description": g.description, "created_at": g.created_at })).collect());
            print(j, &v, || {
                if list.is_empty() { "no groups".into() } else { list.iter().map(|g| format!("{}  {}", g.name, g.description)).collect::<Vec<_>>().join("\n") }
            });
        }
        GroupCmd::Show { name } => {
            let g = store.find_group(&name).await?.with_context(|| format!("no group {name}"))?;
            let members = admin::group_members(&*store, &name).await?;
            print(j, &json!({ "name": g.name, "description": g.description, "members": members, "created_at": g.created_at }), || {
                format!("name: {}\ndescription: {}\nmembers: {}", g.name, g.description, members.join(" "))
            });
        }
        GroupCmd::Delete { name } => {
            acting(&*store, &cli_actor()).delete_group(&name).await?;
            print(j, &json!({ "deleted": name }), || format!("deleted group {name}"));
        }
        GroupCmd::AddMember { group, username } => {
            let new = acting(&*store, &cli_actor()).add_group_member(&group, &username).await?;
            print(j, &json!({ "group": group, "username": username, "member": true, "changed": new }), || {
                if new { format!("added {username} to {group}") } else { format!("{username} already is a member of {group}") }
            });
        }
        GroupCmd::RemoveMember { group, username } => {
            let removed = acting(&*store, &cli_actor()).remove_group_member(&group, &username).await?;
            print(j, &json!({ "group": group, "username": username, "member": false, "changed": removed }), || {
                if removed { format!("removed {username} from {group}") } else { format!("{username} was not a member of {group}") }
            });
        }
    }
    Ok(())
}

/// `--since` / `--until`: Unix seconds or RFC 3339.
fn parse_time(flag: &str, v: &str) -> anyhow::Result<i64> {
    if let Ok(secs) = v.trim().parse::<i64>() {
        return Ok(secs);
    }
    let t = time::OffsetDateTime::parse(v.trim(), &time::format_description::well_known::Rfc3339)
        .with_context(|| format!("{flag}: {v:?} is neither Unix seconds nor an RFC 3339 time like 2026-12-01T00:00:00Z"))?;
    Ok(t.unix_timestamp())
}

fn rfc3339(at: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(at)
        .ok()
        .and_then(|t| t.format(&time::format_description::well_known::Rfc3339).ok())
        .unwrap_or_else(|| at.to_string())
}

fn audit_json(e: &tessera_storage::AuditEvent) -> Value {
    json!({
        "id": e.id,
        "at": e.at,
        "time": rfc3339(e.at),
        "type": e.kind,
        "actor": e.actor,
        "user_id": e.user_id,
        "client_id": e.client_id,
        "detail": serde_json::from_str::<Value>(&e.detail).unwrap_or_else(|_| Value::String(e.detail.clone())),
    })
}

async fn audit_query(store: &dyn Store, f: AuditFilterArgs) -> anyhow::Result<tessera_storage::AuditQuery> {
    let user_id = match &f.user {
        Some(u) => Some(store.find_user_by_username(u).await?.map(|u| u.id).with_context(|| format!("--user: no user {u}"))?),
        None => None,
    };
    Ok(tessera_storage::AuditQuery {
        since: f.since.as_deref().map(|v| parse_time("--since", v)).transpose()?,
        until: f.until.as_deref().map(|v| parse_time("--until", v)).transpose()?,
        kind: f.kind,
        user_id,
        client_id: f.client,
        before_id: None,
        limit: 50,
    })
}

pub async fn audit(database: Option<&str>, j: bool, cmd: AuditCmd) -> anyhow::Result<()> {
    let store = open(database).await?;
    match cmd {
        AuditCmd::List { filter, limit, before } => {
            if !(1..=1000).contains(&limit) {
                bail!("--limit must be between 1 and 1000");
            }
            let q = tessera_storage::AuditQuery { limit, before_id: before, ..audit_query(&*store, filter).await? };
            let events = store.find_audit_events(&q).await?;
            let next = if events.len() as i64 == limit { events.last().map(|e| e.id) } else { None };
            print(j, &json!({ "events": events.iter().map(audit_json).collect::<Vec<_>>(), "next_before": next }), || {
                if events.is_empty() {
                    return "no audit events".into();
                }
                let mut lines: Vec<String> = events
                    .iter()
                    .map(|e| {
                        let mut l = format!("{:>6}  {}  {}", e.id, rfc3339(e.at), e.kind);
                        if !e.actor.is_empty() {
                            l.push_str(&format!("  by {}", e.actor));
                        }
                        if let Some(u) = &e.user_id {
                            l.push_str(&format!("  user {u}"));
                        }
                        if let Some(c) = &e.client_id {
                            l.push_str(&format!("  client {c}"));
                        }
                        l.push_str(&format!("  {}", e.detail));
                        l
                    })
                    .collect();
                if let Some(n) = next {
                    lines.push(format!("(more: --before {n})"));
                }
                lines.join("\n")
            });
        }
        AuditCmd::Export { filter } => {
            // Newest first in pages, then written oldest first: one JSON object per line.
            let base = audit_query(&*store, filter).await?;
            let mut all = Vec::new();
            let mut before = None;
            loop {
                let page = store.find_audit_events(&tessera_storage::AuditQuery { limit: 1000, before_id: before, ..base.clone() }).await?;
                let n = page.len();
                before = page.last().map(|e| e.id);
                all.extend(page);
                if n < 1000 {
                    break;
                }
            }
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            for e in all.iter().rev() {
                writeln!(out, "{}", audit_json(e))?;
            }
        }
    }
    Ok(())
}

/// `tessera apply FILE` (configuration as code).
pub async fn apply(
    database: Option<&str>,
    j: bool,
    passwords: &crate::settings::Passwords,
    file: &std::path::Path,
    dry_run: bool,
    prune: bool,
) -> anyhow::Result<()> {
    let store = open(database).await?;
    crate::apply::run(&*store, file, passwords, dry_run, prune, &cli_actor(), j).await
}

/// `tessera export`.
pub async fn export(database: Option<&str>, output: Option<&std::path::Path>) -> anyhow::Result<()> {
    let store = open(database).await?;
    crate::apply::export(&*store, output).await
}
