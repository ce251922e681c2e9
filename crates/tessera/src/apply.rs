//! `tessera apply FILE`, `tessera export` and `tessera serve --apply FILE` (configuration as
//! code, issue 16): the file is read here, its secret and password references resolved (an
//! environment variable or a file; never a value in the file), and the plan made, printed and
//! applied by `tessera_server::service::config`. The format is `docs/configuration.md`.

use anyhow::{Context, bail};
use std::path::Path;
use tessera_server::service::config::{self, Desired, Plan};
use tessera_storage::Store;

/// Read and check a configuration file, its references resolved.
pub fn read(path: &Path, policy: &tessera_server::service::admin::PasswordPolicy) -> anyhow::Result<Desired> {
    use tessera_server::service::admin::Factors;
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut d: Desired = toml::from_str(&text).with_context(|| format!("{} is not a valid Tessera configuration", path.display()))?;
    for c in &mut d.clients {
        c.secret = reference(&format!("client {}: secret", c.client_id), c.secret_env.as_deref(), c.secret_file.as_deref())?;
        if let Some(s) = &c.secret {
            if s.len() < 32 {
                bail!("client {}: the secret must be at least 32 characters", c.client_id);
            }
        }
    }
    for u in &mut d.users {
        u.password = reference(&format!("user {}: password", u.username), u.password_env.as_deref(), u.password_file.as_deref())?;
        // A first password: the user the plan creates with it has no second factor.
        if let Some(pw) = &u.password {
            policy.check(pw, Factors::PasswordOnly).map_err(|e| anyhow::anyhow!("user {}: {e}", u.username))?;
        }
    }
    Ok(d)
}

/// A secret named by an environment variable or a file (its first line); one of them at most.
fn reference(what: &str, env: Option<&str>, file: Option<&str>) -> anyhow::Result<Option<String>> {
    let value = match (env, file) {
        (Some(_), Some(_)) => bail!("{what}: give an environment variable or a file, not both"),
        (Some(var), None) => std::env::var(var).with_context(|| format!("{what}: the environment variable {var} is not set"))?,
        (None, Some(f)) => std::fs::read_to_string(f).with_context(|| format!("{what}: reading {f}"))?.lines().next().unwrap_or("").to_string(),
        (None, None) => return Ok(None),
    };
    if value.trim().is_empty() {
        bail!("{what} is empty");
    }
    Ok(Some(value.trim().to_string()))
}

fn print_plan(plan: &Plan, file: &Path) {
    if plan.is_empty() {
        println!("No changes: the database matches {}.", file.display());
    } else {
        for l in &plan.lines {
            println!("{l}");
        }
        println!("{}", plan.summary());
    }
    for l in &plan.left {
        println!("  left: {l}");
    }
}

/// Plan `file` against `store` and, unless `dry_run`, apply it in one transaction.
pub async fn run(
    store: &dyn Store,
    file: &Path,
    passwords: &crate::settings::Passwords,
    dry_run: bool,
    prune: bool,
    actor: &str,
    json: bool,
) -> anyhow::Result<()> {
    let desired = read(file, &passwords.policy)?;
    let now = tessera_server::Clock::now(&tessera_server::SystemClock);
    let plan = config::plan(store, &desired, prune, &passwords.argon2, actor, now).await?;
    if json {
        let v = serde_json::json!({ "changes": plan.lines, "left": plan.left, "applied": !dry_run && !plan.is_empty(),
            "generated_secrets": if dry_run { vec![] } else { plan.generated_secrets.iter().map(|(id, s)| serde_json::json!({ "client_id": id, "client_secret": s })).collect::<Vec<_>>() } });
        if !dry_run {
            config::apply(store, &plan).await?;
        }
        println!("{}", serde_json::to_string_pretty(&v).unwrap_or_default());
        return Ok(());
    }
    print_plan(&plan, file);
    if dry_run || plan.is_empty() {
        if dry_run && !plan.is_empty() {
            println!("Dry run: nothing was changed.");
        }
        return Ok(());
    }
    config::apply(store, &plan).await?;
    println!("Applied.");
    for (id, s) in &plan.generated_secrets {
        println!("client {id}: client_secret {s}\n  (generated: shown only this once; name a secret_env or secret_file to manage it)");
    }
    Ok(())
}

/// `tessera serve --apply FILE`: reconcile before serving (an error stops the start).
pub async fn at_start(store: &dyn Store, file: &Path, passwords: &crate::settings::Passwords) -> anyhow::Result<()> {
    let desired = read(file, &passwords.policy)?;
    let now = tessera_server::Clock::now(&tessera_server::SystemClock);
    let plan = config::plan(store, &desired, false, &passwords.argon2, &format!("serve:{}", file.display()), now).await?;
    for l in &plan.lines {
        tracing::info!(change = %l, "apply");
    }
    for l in &plan.left {
        tracing::info!(left = %l, "apply");
    }
    config::apply(store, &plan).await?;
    for (id, _) in &plan.generated_secrets {
        tracing::warn!(client_id = %id, "a confidential client was created without a secret reference; run tessera client rotate-secret to get one");
    }
    tracing::info!(file = %file.display(), changes = plan.lines.len(), "configuration applied");
    Ok(())
}

/// `tessera export`: today's state as a configuration file (secrets omitted).
pub async fn export(store: &dyn Store, output: Option<&Path>) -> anyhow::Result<()> {
    let d = config::export(store).await?;
    let text = format!(
        "# Tessera configuration, exported by `tessera export` (secrets omitted: add secret_env or\n# secret_file to confidential clients, password_env or password_file to users).\n\n{}",
        toml::to_string_pretty(&d).context("writing TOML")?
    );
    match output {
        Some(p) => std::fs::write(p, text).with_context(|| format!("writing {}", p.display()))?,
        None => print!("{text}"),
    }
    Ok(())
}
