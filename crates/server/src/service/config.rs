//! Configuration as code (issue 16): `tessera apply FILE`, `tessera serve --apply FILE` and
//! `tessera export`. A [`Desired`] state (the file: APIs with scopes, roles and role grants,
//! groups with members, clients, optionally users) is compared with the database into a
//! [`Plan`] of typed changes ([`ConfigChange`]), which is printed and then applied in one
//! transaction (`ConfigStore::apply_config`). Applying the same file again plans nothing.
//! `--prune` deletes objects an earlier apply created that the file no longer declares (never
//! objects made otherwise, and never users: accounts are deleted by a person, `tessera user
//! delete`). Secrets are never in the file: a client's secret is named by an environment
//! variable or a file (`secret_env`, `secret_file`), resolved by the caller into
//! [`DesiredClient::secret`]; without one, a confidential client gets a generated secret at
//! creation, printed once. The format is `docs/configuration.md`.

use crate::secret;
use crate::service::admin::{self, AdminError, NewClient, NewUser};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use tessera_storage::{ApiRecord, ApiRole, ApiScope, Assignee, ClientRecord, ConfigChange, GroupRecord, RoleAssignment, Store, UserRecord};

/// A whole configuration file.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Desired {
    #[serde(default, rename = "api", skip_serializing_if = "Vec::is_empty")]
    pub apis: Vec<DesiredApi>,
    #[serde(default, rename = "group", skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<DesiredGroup>,
    #[serde(default, rename = "client", skip_serializing_if = "Vec::is_empty")]
    pub clients: Vec<DesiredClient>,
    #[serde(default, rename = "user", skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<DesiredUser>,
}

/// A name and what it means (a scope's consent text, a role's description).
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Described {
    pub name: String,
    pub description: String,
}

/// A role granted to a user (by username) or a group.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredGrant {
    pub role: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredApi {
    pub identifier: String,
    pub name: String,
    pub scopes: Vec<Described>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<Described>,
    /// When given, the API's role grants are exactly these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grants: Option<Vec<DesiredGrant>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredGroup {
    pub name: String,
    #[serde(default)]
    pub description: String,
    /// When given, the group's members (usernames) are exactly these.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub members: Option<Vec<String>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredClient {
    pub client_id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub scope: String,
    /// Default `authorization_code` and `refresh_token`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub public: bool,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub require_dpop: bool,
    /// Users must sign in with a second factor for this client.
    #[serde(default)]
    pub require_mfa: bool,
    /// The environment variable holding the client's secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_env: Option<String>,
    /// The file holding the client's secret (its first line).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret_file: Option<String>,
    /// The secret itself, resolved by the caller from `secret_env` or `secret_file`: never read
    /// from the file or written to it.
    #[serde(skip)]
    pub secret: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct DesiredUser {
    pub username: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default)]
    pub admin: bool,
    /// The environment variable holding the first password (used only when the user is created).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_env: Option<String>,
    /// The file holding the first password.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password_file: Option<String>,
    /// The first password, resolved by the caller from the reference and checked by its
    /// policy; hashed only when the user is created. None: a random password nobody knows
    /// (the user sets one with `tessera user set-password`).
    #[serde(skip)]
    pub password: Option<String>,
}

/// What an apply will do: the changes, and a line for a person per change.
#[derive(Debug, Default)]
pub struct Plan {
    pub changes: Vec<ConfigChange>,
    pub lines: Vec<String>,
    /// Applied objects the file no longer declares, left in place (without `--prune`).
    pub left: Vec<String>,
    /// Secrets generated for new confidential clients without a secret reference: (client id,
    /// secret), shown once.
    pub generated_secrets: Vec<(String, String)>,
    counts: [usize; 3],
}

impl Plan {
    fn create(&mut self, line: String, change: ConfigChange) {
        self.counts[0] += 1;
        self.lines.push(format!("+ {line}"));
        self.changes.push(change);
    }
    fn update(&mut self, line: String, change: ConfigChange) {
        self.counts[1] += 1;
        self.lines.push(format!("~ {line}"));
        self.changes.push(change);
    }
    fn delete(&mut self, line: String, change: ConfigChange) {
        self.counts[2] += 1;
        self.lines.push(format!("- {line}"));
        self.changes.push(change);
    }
    fn mark(&mut self, kind: &str, key: &str) {
        self.changes.push(ConfigChange::MarkApplied { kind: kind.into(), key: key.into() });
    }

    /// Nothing to change.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// `Plan: 2 to create, 1 to update, 0 to delete.`
    pub fn summary(&self) -> String {
        let [c, u, d] = self.counts;
        format!("Plan: {c} to create, {u} to update, {d} to delete.")
    }
}

fn invalid(s: impl Into<String>) -> AdminError {
    AdminError::Invalid(s.into())
}

fn parse_described(what: &str, list: &[Described], parse: fn(&str) -> Result<ApiScope, AdminError>) -> Result<Vec<ApiScope>, AdminError> {
    list.iter().map(|d| parse(&format!("{}={}", d.name, d.description)).map_err(|e| invalid(format!("{what}: {e}")))).collect()
}

fn roles_of(what: &str, list: &[Described]) -> Result<Vec<ApiRole>, AdminError> {
    list.iter().map(|d| admin::parse_api_role(&format!("{}={}", d.name, d.description)).map_err(|e| invalid(format!("{what}: {e}")))).collect()
}

fn duplicates<'a>(what: &str, keys: impl Iterator<Item = &'a str>) -> Result<(), AdminError> {
    let mut seen = BTreeSet::new();
    for k in keys {
        if !seen.insert(k) {
            return Err(invalid(format!("{what} {k} is declared twice")));
        }
    }
    Ok(())
}

/// Compare `desired` with the database: the plan that makes the database match it. With
/// `prune`, objects an earlier apply created and the file no longer declares are deleted.
/// A user the plan creates gets their first password hashed under `argon2`. `actor` and `now`
/// go into the apply's audit event.
pub async fn plan(
    store: &dyn Store,
    desired: &Desired,
    prune: bool,
    argon2: &crate::service::authn::Argon2Params,
    actor: &str,
    now: i64,
) -> Result<Plan, AdminError> {
    duplicates("api", desired.apis.iter().map(|a| a.identifier.as_str()))?;
    duplicates("group", desired.groups.iter().map(|g| g.name.as_str()))?;
    duplicates("client", desired.clients.iter().map(|c| c.client_id.as_str()))?;
    duplicates("user", desired.users.iter().map(|u| u.username.as_str()))?;
    let mut p = Plan::default();
    let applied: BTreeSet<(String, String)> = store.list_applied().await?.into_iter().collect();

    // Users first (memberships and grants name them): created or updated, never deleted.
    let existing_users = store.list_users().await?;
    let mut user_ids: BTreeMap<String, String> = existing_users.iter().map(|u| (u.username.clone(), u.id.clone())).collect();
    for du in &desired.users {
        match existing_users.iter().find(|u| u.username == du.username) {
            None => {
                // Argon2id only here, for a user the plan creates (not at every start).
                let password = du.password.clone().unwrap_or_else(secret::random_token);
                let argon2 = *argon2;
                let hash = match crate::service::authn::on_hashing_thread(move || argon2.hash(&password)).await {
                    Ok(Ok(h)) => h,
                    Ok(Err(e)) => return Err(invalid(format!("user {}: {e}", du.username))),
                    Err(_) => return Err(AdminError::Busy),
                };
                let new = NewUser { username: du.username.clone(), email: du.email.clone(), name: du.name.clone(), profile: Default::default() };
                let mut u = admin::new_user_record(new, hash, now).map_err(|e| invalid(format!("user {}: {e}", du.username)))?;
                u.is_admin = du.admin;
                user_ids.insert(u.username.clone(), u.id.clone());
                let id = u.id.clone();
                p.create(format!("create user {}", du.username), ConfigChange::CreateUser(u));
                if du.admin {
                    p.changes.push(ConfigChange::SetAdmin { user_id: id.clone(), is_admin: true });
                }
                p.mark("user", &du.username);
            }
            Some(cur) => {
                let mut changed = Vec::new();
                let mut u: UserRecord = cur.clone();
                if du.email != cur.email {
                    if let Some(e) = &du.email {
                        if !e.contains('@') || e.len() > 254 {
                            return Err(invalid(format!("user {}: email is not an email address", du.username)));
                        }
                    }
                    u.email = du.email.clone();
                    changed.push("email");
                }
                if du.name != cur.name {
                    u.name = du.name.clone();
                    changed.push("name");
                }
                if !changed.is_empty() {
                    u.updated_at = now;
                    p.update(format!("update user {}: {}", du.username, changed.join(", ")), ConfigChange::UpdateUser(u));
                }
                if du.admin != cur.is_admin {
                    p.update(
                        format!("update user {}: admin = {}", du.username, du.admin),
                        ConfigChange::SetAdmin { user_id: cur.id.clone(), is_admin: du.admin },
                    );
                }
            }
        }
    }
    for (kind, key) in &applied {
        if kind == "user" && !desired.users.iter().any(|u| &u.username == key) {
            p.left.push(format!("user {key} (users are never deleted by apply: tessera user delete)"));
        }
    }
    let user_id =
        |username: &str| user_ids.get(username).cloned().ok_or_else(|| invalid(format!("no user {username} (neither in the database nor in the file)")));
    // And back, for the plan's lines (an id no longer a user's shows as itself).
    let usernames: BTreeMap<&str, &str> = user_ids.iter().map(|(name, id)| (id.as_str(), name.as_str())).collect();
    let username = |id: &str| usernames.get(id).map_or_else(|| id.to_string(), |n| n.to_string());

    // APIs.
    let existing_apis = store.list_apis().await?;
    for da in &desired.apis {
        let what = format!("api {}", da.identifier);
        let scopes = parse_described(&what, &da.scopes, admin::parse_api_scope)?;
        let roles = roles_of(&what, &da.roles)?;
        let url = url::Url::parse(&da.identifier).map_err(|_| invalid(format!("{what}: the identifier must be an absolute URI")))?;
        if url.fragment().is_some() || da.name.trim().is_empty() || scopes.is_empty() {
            return Err(invalid(format!("{what}: an absolute URI without a fragment, a name and at least one scope are required")));
        }
        duplicates(&format!("{what}: scope"), scopes.iter().map(|s| s.name.as_str()))?;
        duplicates(&format!("{what}: role"), roles.iter().map(|r| r.name.as_str()))?;
        for s in &scopes {
            let elsewhere = desired.apis.iter().any(|o| o.identifier != da.identifier && o.scopes.iter().any(|x| x.name == s.name))
                || existing_apis.iter().any(|o| {
                    o.identifier != da.identifier && !desired.apis.iter().any(|d| d.identifier == o.identifier) && o.scopes.iter().any(|x| x.name == s.name)
                });
            if elsewhere {
                return Err(invalid(format!("{what}: scope {} is defined by another API", s.name)));
            }
        }
        let record = ApiRecord { identifier: da.identifier.clone(), name: da.name.trim().to_string(), scopes, created_at: now, secret_hash: None, roles };
        match existing_apis.iter().find(|a| a.identifier == da.identifier) {
            None => {
                p.create(format!("create {what}"), ConfigChange::CreateApi(record));
                p.mark("api", &da.identifier);
            }
            Some(cur) => {
                let mut changed = Vec::new();
                if cur.name != record.name {
                    changed.push("name");
                }
                if cur.scopes != record.scopes {
                    changed.push("scopes");
                }
                if cur.roles != record.roles {
                    changed.push("roles");
                }
                if !changed.is_empty() {
                    p.update(format!("update {what}: {}", changed.join(", ")), ConfigChange::UpdateApi(ApiRecord { created_at: cur.created_at, ..record }));
                }
            }
        }
    }

    // Groups.
    let existing_groups = store.list_groups().await?;
    for dg in &desired.groups {
        if !admin::is_name(&dg.name) || dg.description.len() > 300 {
            return Err(invalid(format!("group {}: a name of 1 to 64 letters, digits and . _ : -, a description of at most 300 characters", dg.name)));
        }
        let record = GroupRecord { name: dg.name.clone(), description: dg.description.trim().to_string(), created_at: now };
        let current_members: BTreeSet<String> = match existing_groups.iter().find(|g| g.name == dg.name) {
            None => {
                p.create(format!("create group {}", dg.name), ConfigChange::CreateGroup(record));
                p.mark("group", &dg.name);
                BTreeSet::new()
            }
            Some(cur) => {
                if cur.description != record.description {
                    p.update(format!("update group {}: description", dg.name), ConfigChange::UpdateGroup(record));
                }
                store.list_group_members(&dg.name).await?.into_iter().collect()
            }
        };
        if let Some(members) = &dg.members {
            let wanted: BTreeSet<String> = members.iter().map(|m| user_id(m)).collect::<Result<_, _>>()?;
            for id in wanted.difference(&current_members) {
                let name = username(id);
                p.create(format!("add {name} to group {}", dg.name), ConfigChange::AddMember { group: dg.name.clone(), user_id: id.clone() });
            }
            for id in current_members.difference(&wanted) {
                let name = username(id);
                p.delete(format!("remove {name} from group {}", dg.name), ConfigChange::RemoveMember { group: dg.name.clone(), user_id: id.clone() });
            }
        }
    }

    // Role grants, once APIs and groups exist.
    for da in &desired.apis {
        let Some(grants) = &da.grants else { continue };
        let mut wanted = BTreeSet::new();
        for g in grants {
            if !da.roles.iter().any(|r| r.name == g.role) {
                return Err(invalid(format!("api {}: grant of role {}, which it does not declare", da.identifier, g.role)));
            }
            let assignee = match (&g.user, &g.group) {
                (Some(u), None) => Assignee::User(user_id(u)?),
                (None, Some(gr)) if desired.groups.iter().any(|d| &d.name == gr) || existing_groups.iter().any(|e| &e.name == gr) => {
                    Assignee::Group(gr.clone())
                }
                (None, Some(gr)) => return Err(invalid(format!("api {}: no group {gr}", da.identifier))),
                _ => return Err(invalid(format!("api {}: a grant names a user or a group", da.identifier))),
            };
            wanted.insert((g.role.clone(), assignee.parts().0.to_string(), assignee.parts().1.to_string()));
        }
        let current: BTreeSet<(String, String, String)> = if existing_apis.iter().any(|a| a.identifier == da.identifier) {
            store
                .list_role_assignments(&da.identifier)
                .await?
                .into_iter()
                .map(|r| (r.role.clone(), r.assignee.parts().0.to_string(), r.assignee.parts().1.to_string()))
                .collect()
        } else {
            BTreeSet::new()
        };
        let assignment = |(role, kind, who): &(String, String, String)| RoleAssignment {
            api: da.identifier.clone(),
            role: role.clone(),
            assignee: if kind == "group" { Assignee::Group(who.clone()) } else { Assignee::User(who.clone()) },
        };
        let shown = |(role, kind, who): &(String, String, String)| {
            let who = if kind == "user" { username(who) } else { who.clone() };
            format!("role {role} of {} to {kind} {who}", da.identifier)
        };
        for g in wanted.difference(&current) {
            p.create(format!("grant {}", shown(g)), ConfigChange::GrantRole(assignment(g)));
        }
        for g in current.difference(&wanted) {
            p.delete(format!("revoke {}", shown(g)), ConfigChange::RevokeRole(assignment(g)));
        }
    }

    // Clients.
    let existing_clients = store.list_clients().await?;
    for dc in &desired.clients {
        let what = format!("client {}", dc.client_id);
        let req = NewClient {
            client_id: Some(dc.client_id.clone()),
            name: dc.name.clone(),
            redirect_uris: dc.redirect_uris.clone(),
            scope: dc.scope.clone(),
            grant_types: dc.grant_types.clone(),
            public: dc.public,
            allowed_origins: dc.allowed_origins.clone(),
            require_dpop: dc.require_dpop,
            require_mfa: dc.require_mfa,
            ..Default::default()
        };
        let built = admin::new_client_record(req, now).map_err(|e| invalid(format!("{what}: {e}")))?;
        let wanted_hash = dc.secret.as_deref().map(secret::hash);
        if dc.public && dc.secret.is_some() {
            return Err(invalid(format!("{what}: a public client has no secret")));
        }
        match existing_clients.iter().find(|c| c.client_id == dc.client_id) {
            None => {
                let mut record = built.client;
                match (&wanted_hash, built.client_secret) {
                    (Some(h), _) => record.secret_hash = Some(h.clone()),
                    (None, Some(generated)) => p.generated_secrets.push((dc.client_id.clone(), generated)),
                    (None, None) => {}
                }
                p.create(format!("create {what}"), ConfigChange::CreateClient(record));
                p.mark("client", &dc.client_id);
            }
            Some(cur) => {
                if cur.secret_hash.is_none() != dc.public {
                    return Err(invalid(format!("{what}: a client cannot change between public and confidential; delete it first")));
                }
                let b = &built.client;
                let mut changed = Vec::new();
                let mut checks = |name: &'static str, differs: bool| {
                    if differs {
                        changed.push(name);
                    }
                };
                checks("name", cur.name != b.name);
                checks("redirect_uris", cur.redirect_uris != b.redirect_uris);
                checks("scope", cur.scope != b.scope);
                checks("grant_types", cur.grant_types != b.grant_types);
                checks("allowed_origins", cur.allowed_origins != b.allowed_origins);
                checks("require_dpop", cur.require_dpop != b.require_dpop);
                checks("require_mfa", cur.require_mfa != b.require_mfa);
                if !changed.is_empty() {
                    let record = ClientRecord {
                        name: b.name.clone(),
                        redirect_uris: b.redirect_uris.clone(),
                        scope: b.scope.clone(),
                        grant_types: b.grant_types.clone(),
                        allowed_origins: b.allowed_origins.clone(),
                        require_dpop: b.require_dpop,
                        require_mfa: b.require_mfa,
                        ..cur.clone()
                    };
                    p.update(format!("update {what}: {}", changed.join(", ")), ConfigChange::UpdateClient(record));
                }
                if let Some(h) = wanted_hash {
                    if cur.secret_hash.as_deref() != Some(h.as_str()) {
                        p.update(format!("update {what}: secret"), ConfigChange::UpdateClientSecret { client_id: dc.client_id.clone(), secret_hash: h });
                    }
                }
            }
        }
    }

    // What earlier applies created and the file no longer declares.
    for (kind, key) in &applied {
        let gone = match kind.as_str() {
            "api" => !desired.apis.iter().any(|a| &a.identifier == key),
            "group" => !desired.groups.iter().any(|g| &g.name == key),
            "client" => !desired.clients.iter().any(|c| &c.client_id == key),
            _ => false,
        };
        if !gone {
            continue;
        }
        let exists = match kind.as_str() {
            "api" => existing_apis.iter().any(|a| &a.identifier == key),
            "group" => existing_groups.iter().any(|g| &g.name == key),
            _ => existing_clients.iter().any(|c| &c.client_id == key),
        };
        if !exists {
            // Deleted by hand meanwhile: only the record goes.
            p.changes.push(ConfigChange::UnmarkApplied { kind: kind.clone(), key: key.clone() });
            continue;
        }
        if !prune {
            p.left.push(format!("{kind} {key} (no longer in the file; --prune deletes it)"));
            continue;
        }
        let change = match kind.as_str() {
            "api" => ConfigChange::DeleteApi(key.clone()),
            "group" => ConfigChange::DeleteGroup(key.clone()),
            _ => ConfigChange::DeleteClient(key.clone()),
        };
        p.delete(format!("delete {kind} {key}"), change);
        p.changes.push(ConfigChange::UnmarkApplied { kind: kind.clone(), key: key.clone() });
    }
    if !p.is_empty() {
        let detail = serde_json::json!({ "changes": p.lines, "prune": prune }).to_string();
        p.changes.push(ConfigChange::Audit { kind: "admin.config_applied".into(), actor: actor.into(), detail, at: now });
    }
    Ok(p)
}

/// Carry out `plan` in one transaction (nothing when it is empty).
pub async fn apply(store: &dyn Store, plan: &Plan) -> Result<(), AdminError> {
    if plan.changes.is_empty() {
        return Ok(());
    }
    store.apply_config(&plan.changes).await.map_err(|e| match e {
        tessera_storage::StoreError::Conflict(m) => AdminError::Conflict { field: "name", message: format!("changed meanwhile, nothing applied: {m}") },
        other => other.into(),
    })
}

/// Today's state in the file's format, secrets omitted (and no secret references: a
/// confidential client applied elsewhere from this gets a new secret unless one is added).
pub async fn export(store: &dyn Store) -> Result<Desired, AdminError> {
    let users = store.list_users().await?;
    let name_of = |id: &str| users.iter().find(|u| u.id == id).map(|u| u.username.clone());
    let mut apis = Vec::new();
    for a in store.list_apis().await? {
        if a.identifier == crate::service::admin_api::ADMIN_API {
            continue;
        }
        let mut grants = Vec::new();
        for r in store.list_role_assignments(&a.identifier).await? {
            match &r.assignee {
                Assignee::User(id) => grants.push(DesiredGrant { role: r.role.clone(), user: name_of(id), group: None }),
                Assignee::Group(g) => grants.push(DesiredGrant { role: r.role.clone(), user: None, group: Some(g.clone()) }),
            }
        }
        grants.sort();
        apis.push(DesiredApi {
            identifier: a.identifier,
            name: a.name,
            scopes: a.scopes.into_iter().map(|s| Described { name: s.name, description: s.description }).collect(),
            roles: a.roles.into_iter().map(|r| Described { name: r.name, description: r.description }).collect(),
            grants: Some(grants),
        });
    }
    let mut groups = Vec::new();
    for g in store.list_groups().await? {
        let mut members: Vec<String> = store.list_group_members(&g.name).await?.iter().filter_map(|id| name_of(id)).collect();
        members.sort();
        groups.push(DesiredGroup { name: g.name, description: g.description, members: Some(members) });
    }
    let clients = store
        .list_clients()
        .await?
        .into_iter()
        .map(|c| DesiredClient {
            public: c.secret_hash.is_none(),
            client_id: c.client_id,
            name: c.name,
            redirect_uris: c.redirect_uris,
            scope: c.scope.to_string(),
            grant_types: c.grant_types.iter().map(|g| g.as_str().to_string()).collect(),
            allowed_origins: c.allowed_origins,
            require_dpop: c.require_dpop,
            require_mfa: c.require_mfa,
            secret_env: None,
            secret_file: None,
            secret: None,
        })
        .collect();
    let mut users: Vec<DesiredUser> = users
        .iter()
        .map(|u| DesiredUser {
            username: u.username.clone(),
            email: u.email.clone(),
            name: u.name.clone(),
            admin: u.is_admin,
            password_env: None,
            password_file: None,
            password: None,
        })
        .collect();
    users.sort_by(|a, b| a.username.cmp(&b.username));
    Ok(Desired { apis, groups, clients, users })
}
