//! `serve` settings: flags > environment > `--config` TOML file > defaults. A wrong value stops
//! start-up with a message naming the setting.

use crate::cli::{KeysAtRestArgs, ServeArgs};
use anyhow::{Context, bail};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;
use tessera_http::ServeLimits;
use tessera_server::net::Cidr;

/// Days audit events are kept by default.
pub const DEFAULT_AUDIT_RETENTION_DAYS: u32 = 90;
pub const DEFAULT_DATABASE: &str = "sqlite://tessera-data/tessera.db";
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_POOL_SIZE: u32 = 16;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    issuer: Option<String>,
    database_url: Option<String>,
    database_pool_size: Option<u32>,
    // Connection limits (issue 13 finding 5).
    header_read_timeout: Option<u64>,
    idle_timeout: Option<u64>,
    max_connections: Option<usize>,
    trusted_proxies: Option<Vec<String>>,
    // Keys at rest and back-channel logout targets (issue 13, findings 4 and 11).
    key_encryption_key_file: Option<PathBuf>,
    key_encryption_key_previous_file: Option<PathBuf>,
    allow_private_logout_uris: Option<bool>,
    // DPoP (issue 17).
    dpop_nonces: Option<bool>,
    // Account mail (issue 15).
    self_registration: Option<bool>,
    // The audit log and the signals (issue 16).
    audit_retention_days: Option<u32>,
    metrics_listen: Option<String>,
    log_format: Option<String>,
    shutdown_delay: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    pub listen: SocketAddr,
    /// `None`: derived from the bound address (so `--listen 127.0.0.1:0` works).
    pub issuer: Option<String>,
    pub database_url: String,
    /// PostgreSQL connections per instance.
    pub database_pool_size: u32,
    /// Head-read, idle and connection-count bounds of the listener.
    pub limits: ServeLimits,
    /// Proxies whose forwarding headers name the client (issue 13, finding 6).
    pub trusted_proxies: Vec<Cidr>,
    // Keys at rest and back-channel logout targets (issue 13, findings 4 and 11).
    pub kek: KekSources,
    pub allow_private_logout_uris: bool,
    /// RFC 9449 §8 server nonces in DPoP proofs.
    pub dpop_nonces: bool,
    /// Accounts may be made at /register (verified by mail).
    pub self_registration: bool,
    /// Days audit events are kept; 0: forever.
    pub audit_retention_days: u32,
    /// Where `/metrics` is served when not on the main listener.
    pub metrics_listen: Option<SocketAddr>,
    pub log_format: LogFormat,
    /// On SIGTERM, how long to keep serving with readiness failing before the drain.
    pub shutdown_delay: std::time::Duration,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

// Keys at rest (issue 13, finding 4).

/// Where the key-encryption key comes from: the environment (`TESSERA_KEY_ENCRYPTION_KEY`,
/// base64) or a file (`--key-encryption-key-file` / `TESSERA_KEY_ENCRYPTION_KEY_FILE` / TOML
/// `key_encryption_key_file`), and the previous one during a rotation; all unset: the default
/// file (`crate::store::key_encryption`). Its `Debug` never shows a key.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct KekSources {
    pub key: Option<String>,
    pub file: Option<PathBuf>,
    pub previous: Option<String>,
    pub previous_file: Option<PathBuf>,
}

impl std::fmt::Debug for KekSources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shown = |k: &Option<String>| k.as_ref().map(|_| "<redacted>");
        f.debug_struct("KekSources")
            .field("key", &shown(&self.key))
            .field("file", &self.file)
            .field("previous", &shown(&self.previous))
            .field("previous_file", &self.previous_file)
            .finish()
    }
}

impl KekSources {
    /// The flags (or their environment variables) and the two environment-only values.
    pub fn from_env(args: &KeysAtRestArgs) -> Self {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        Self {
            key: var("TESSERA_KEY_ENCRYPTION_KEY"),
            file: args.key_encryption_key_file.clone(),
            previous: var("TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS"),
            previous_file: args.key_encryption_key_previous_file.clone(),
        }
    }
}

#[cfg_attr(not(test), allow(dead_code))]
pub fn resolve(database: Option<String>, args: &ServeArgs) -> anyhow::Result<Settings> {
    resolve_with(database, args, KekSources::default(), false)
}

/// [`resolve`] with the global settings of keys at rest and back-channel logout (flags and
/// environment; the TOML file fills what they leave unset).
pub fn resolve_with(database: Option<String>, args: &ServeArgs, kek: KekSources, allow_private_logout_uris: bool) -> anyhow::Result<Settings> {
    let file: FileSettings = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path).with_context(|| format!("--config: cannot read {}", path.display()))?;
            toml::from_str(&text).with_context(|| format!("--config: {} is not valid", path.display()))?
        }
        None => FileSettings::default(),
    };
    let limits = resolve_limits(args, &file)?;
    let listen_s = args.listen.clone().or(file.listen).unwrap_or_else(|| DEFAULT_LISTEN.into());
    let listen: SocketAddr =
        listen_s.parse().with_context(|| format!("listen (--listen / TESSERA_LISTEN): {listen_s:?} is not an address like 127.0.0.1:8080"))?;
    let issuer = match args.issuer.clone().or(file.issuer) {
        Some(i) => Some(check_issuer(&i)?),
        None => None,
    };
    let database_url = database.or(file.database_url).unwrap_or_else(|| DEFAULT_DATABASE.into());
    check_database(&database_url)?;
    let database_pool_size = args.database_pool_size.or(file.database_pool_size).unwrap_or(DEFAULT_POOL_SIZE);
    if !(1..=1000).contains(&database_pool_size) {
        bail!("database pool size (--database-pool-size / TESSERA_DATABASE_POOL_SIZE): {database_pool_size} is not between 1 and 1000");
    }
    let kek = KekSources { file: kek.file.or(file.key_encryption_key_file), previous_file: kek.previous_file.or(file.key_encryption_key_previous_file), ..kek };
    if kek.key.is_some() && kek.file.is_some() {
        bail!(
            "key-encryption key: set TESSERA_KEY_ENCRYPTION_KEY or a file (--key-encryption-key-file / TESSERA_KEY_ENCRYPTION_KEY_FILE / key_encryption_key_file), not both"
        );
    }
    if kek.previous.is_some() && kek.previous_file.is_some() {
        bail!(
            "previous key-encryption key: set TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS or a file (--key-encryption-key-previous-file / TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS_FILE), not both"
        );
    }
    let allow_private_logout_uris = allow_private_logout_uris || file.allow_private_logout_uris.unwrap_or(false);
    let trusted_proxies = parse_trusted_proxies(args.trusted_proxies.as_deref().or(file.trusted_proxies.as_deref()).unwrap_or_default())?;
    let dpop_nonces = args.dpop_nonces || file.dpop_nonces.unwrap_or(false);
    let self_registration = args.self_registration || file.self_registration.unwrap_or(false);
    let audit_retention_days = args.audit_retention_days.or(file.audit_retention_days).unwrap_or(DEFAULT_AUDIT_RETENTION_DAYS);
    if audit_retention_days > 36_500 {
        bail!("audit retention (--audit-retention-days / TESSERA_AUDIT_RETENTION_DAYS): {audit_retention_days} is more than 100 years; 0 keeps events forever");
    }
    let metrics_listen = match args.metrics_listen.clone().or(file.metrics_listen) {
        Some(m) => Some(
            m.parse::<SocketAddr>()
                .with_context(|| format!("metrics listen (--metrics-listen / TESSERA_METRICS_LISTEN): {m:?} is not an address like 127.0.0.1:9090"))?,
        ),
        None => None,
    };
    if metrics_listen.is_some_and(|m| m == listen && listen.port() != 0) {
        bail!("metrics listen (--metrics-listen / TESSERA_METRICS_LISTEN): {listen} is the main listen address; leave it unset to serve /metrics there");
    }
    let log_format = match args.log_format.clone().or(file.log_format).as_deref() {
        None | Some("text") => LogFormat::Text,
        Some("json") => LogFormat::Json,
        Some(other) => bail!("log format (--log-format / TESSERA_LOG_FORMAT): {other:?} is not text or json"),
    };
    let shutdown_delay = args.shutdown_delay.or(file.shutdown_delay).unwrap_or(0);
    if shutdown_delay > 600 {
        bail!("shutdown delay (--shutdown-delay / TESSERA_SHUTDOWN_DELAY): {shutdown_delay} seconds is more than 10 minutes");
    }
    Ok(Settings {
        shutdown_delay: std::time::Duration::from_secs(shutdown_delay),
        metrics_listen,
        log_format,
        listen,
        issuer,
        database_url,
        database_pool_size,
        limits,
        trusted_proxies,
        kek,
        allow_private_logout_uris,
        dpop_nonces,
        self_registration,
        audit_retention_days,
    })
}

/// Connection limits (issue 13 finding 5): each from its flag, env var or TOML key, else
/// [`ServeLimits::default`].
fn resolve_limits(args: &ServeArgs, file: &FileSettings) -> anyhow::Result<ServeLimits> {
    let d = ServeLimits::default();
    let secs = |v: Option<u64>, default: Duration, name: &str| -> anyhow::Result<Duration> {
        match v {
            None => Ok(default),
            Some(s) if (1..=3600).contains(&s) => Ok(Duration::from_secs(s)),
            Some(s) => bail!("{name}: {s} is not between 1 and 3600 seconds"),
        }
    };
    let header_read_timeout = secs(
        args.header_read_timeout.or(file.header_read_timeout),
        d.header_read_timeout,
        "header read timeout (--header-read-timeout / TESSERA_HEADER_READ_TIMEOUT)",
    )?;
    let idle_timeout = secs(args.idle_timeout.or(file.idle_timeout), d.idle_timeout, "idle timeout (--idle-timeout / TESSERA_IDLE_TIMEOUT)")?;
    let max_connections = args.max_connections.or(file.max_connections).unwrap_or(d.max_connections);
    if !(1..=1_000_000).contains(&max_connections) {
        bail!("max connections (--max-connections / TESSERA_MAX_CONNECTIONS): {max_connections} is not between 1 and 1000000");
    }
    Ok(ServeLimits { header_read_timeout, idle_timeout, max_connections, ..d })
}

/// `--trusted-proxies` / `TESSERA_TRUSTED_PROXIES` / `trusted_proxies`: addresses or CIDR
/// networks, each entry possibly several separated by spaces or commas (an environment variable
/// is one string).
fn parse_trusted_proxies(entries: &[String]) -> anyhow::Result<Vec<Cidr>> {
    entries
        .iter()
        .flat_map(|e| e.split([',', ' ', '\t']))
        .filter(|e| !e.is_empty())
        .map(|e| e.parse::<Cidr>().map_err(|m| anyhow::anyhow!("trusted proxies (--trusted-proxies / TESSERA_TRUSTED_PROXIES): {m}")))
        .collect()
}

/// The issuer of a server started without `--issuer`: `http://localhost:PORT` when it listens on
/// 127.0.0.1 (browsers treat localhost as a secure context, and WebAuthn needs a domain name for
/// passkeys, never an IP address), else `http://ADDRESS`.
pub fn default_issuer(addr: std::net::SocketAddr) -> String {
    if addr.ip() == std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST) { format!("http://localhost:{}", addr.port()) } else { format!("http://{addr}") }
}

/// RFC 8414 §2: the issuer is a URL "that uses the https scheme and has no query or fragment
/// components". Plain http is accepted only for loopback hosts (development).
pub fn check_issuer(i: &str) -> anyhow::Result<String> {
    let url = url::Url::parse(i).with_context(|| format!("issuer (--issuer / TESSERA_ISSUER): {i:?} is not a URL"))?;
    if url.query().is_some() || url.fragment().is_some() {
        bail!("issuer (--issuer / TESSERA_ISSUER): {i:?} must not have a query or fragment (RFC 8414 section 2)");
    }
    let loopback = matches!(url.host_str(), Some("127.0.0.1") | Some("[::1]") | Some("localhost"));
    match url.scheme() {
        "https" => {}
        "http" if loopback => {}
        _ => bail!("issuer (--issuer / TESSERA_ISSUER): {i:?} must use https (http is allowed only on loopback hosts)"),
    }
    Ok(i.trim_end_matches('/').to_string())
}

pub fn check_database(url: &str) -> anyhow::Result<()> {
    if url.starts_with("sqlite:") {
        return Ok(());
    }
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        return Ok(());
    }
    bail!(
        "database (--database / TESSERA_DATABASE_URL): {:?} is not a database URL; use sqlite://PATH or postgres://USER@HOST/DATABASE",
        crate::store::redact(url)
    )
}

/// The branding of `--brand-name`, `--brand-logo-url`, `--brand-accent` and `--brand-css`.
pub fn branding(args: &crate::cli::ServeArgs) -> anyhow::Result<tessera_server::service::Branding> {
    use anyhow::Context;
    let mut b = tessera_server::service::Branding::default();
    if let Some(n) = &args.brand_name {
        let n = n.trim();
        if n.is_empty() || n.chars().count() > 64 || n.chars().any(char::is_control) {
            bail!("--brand-name / TESSERA_BRAND_NAME: 1 to 64 printable characters");
        }
        b.product_name = n.to_string();
    }
    if let Some(u) = &args.brand_logo_url {
        let ok = u.starts_with('/') && !u.starts_with("//") || url::Url::parse(u).is_ok_and(|p| p.scheme() == "https" && p.host().is_some());
        if !ok || u.len() > 2048 || u.contains(['"', '<', '>', ' ']) {
            bail!("--brand-logo-url / TESSERA_BRAND_LOGO_URL: {u:?} must be an https URL or a path on this server (/…)");
        }
        b.logo_url = Some(u.clone());
    }
    if let Some(a) = &args.brand_accent {
        let hex = a.strip_prefix('#').unwrap_or("");
        if !(hex.len() == 6 && hex.bytes().all(|c| c.is_ascii_hexdigit())) {
            bail!("--brand-accent / TESSERA_BRAND_ACCENT: {a:?} must be a colour like #3552c9");
        }
        b.accent = Some(a.to_ascii_lowercase());
    }
    if let Some(path) = &args.brand_css {
        let css = std::fs::read_to_string(path).with_context(|| format!("--brand-css: reading {}", path.display()))?;
        if css.len() > 256 * 1024 {
            bail!("--brand-css: {} is larger than 256 KiB", path.display());
        }
        b.css = Some(css);
    }
    if let Some(dir) = &args.template_dir {
        // Every file is checked now: a typo stops the start, not a sign-in.
        tessera_http::overrides::load(dir).map_err(anyhow::Error::msg)?;
        b.template_dir = Some(dir.clone());
    }
    Ok(b)
}

/// How new passwords are checked and hashed, from the global flags: the rules
/// (`--password-min-length`, `--password-min-length-single-factor`, `--breached-passwords`) and
/// the Argon2id parameters (`--argon2-*`). `serve`, `user create`, `user set-password` and
/// `apply` use them.
#[derive(Debug, Clone)]
pub struct Passwords {
    pub policy: tessera_server::service::admin::PasswordPolicy,
    pub argon2: tessera_server::service::authn::Argon2Params,
}

/// The global flags' [`Passwords`].
pub fn passwords(a: &crate::cli::PasswordArgs) -> anyhow::Result<Passwords> {
    let policy = password_policy(a.password_min_length, a.password_min_length_single_factor, a.breached_passwords.as_deref())?;
    let argon2 = argon2_params(a.argon2_memory_kib, a.argon2_iterations, a.argon2_parallelism)?;
    Ok(Passwords { policy, argon2 })
}

/// The password rules of `--password-min-length`, `--password-min-length-single-factor` and
/// `--breached-passwords` (NIST SP 800-63B §5.1.1.2), the list read once here.
pub fn password_policy(
    min_length: Option<usize>,
    single_factor: Option<usize>,
    breached: Option<&std::path::Path>,
) -> anyhow::Result<tessera_server::service::admin::PasswordPolicy> {
    use anyhow::Context;
    let mut p = tessera_server::service::admin::PasswordPolicy::default();
    if let Some(n) = min_length {
        if !(8..=64).contains(&n) {
            anyhow::bail!("--password-min-length must be 8 to 64");
        }
        p.min_length = n;
    }
    if let Some(n) = single_factor {
        if !(8..=64).contains(&n) {
            anyhow::bail!("--password-min-length-single-factor must be 8 to 64 (NIST SP 800-63B-4 asks 15)");
        }
        if n < p.min_length {
            anyhow::bail!("--password-min-length-single-factor ({n}) must not be less than --password-min-length ({})", p.min_length);
        }
        p.min_length_single_factor = Some(n);
    }
    if let Some(path) = breached {
        let text = std::fs::read_to_string(path).with_context(|| format!("--breached-passwords: reading {}", path.display()))?;
        p.breached = Some(std::sync::Arc::new(tessera_server::service::admin::PasswordPolicy::parse_breached(&text)));
    }
    Ok(p)
}

/// The Argon2id parameters of `--argon2-memory-kib`, `--argon2-iterations` and
/// `--argon2-parallelism`, each defaulting to OWASP's recommendation (19456 KiB, 2, 1), checked
/// against OWASP's minimums ([`tessera_server::service::authn::Argon2Params::new`]).
pub fn argon2_params(
    memory_kib: Option<u32>,
    iterations: Option<u32>,
    parallelism: Option<u32>,
) -> anyhow::Result<tessera_server::service::authn::Argon2Params> {
    use tessera_server::service::authn::Argon2Params;
    let d = Argon2Params::default();
    Ok(Argon2Params::new(memory_kib.unwrap_or(d.memory_kib()), iterations.unwrap_or(d.iterations()), parallelism.unwrap_or(d.parallelism()))?)
}

/// The mailer of `--smtp-url` and `--email-from` (issue 15): both, or neither (no mail). Made
/// inside the runtime; nothing connects until the first mail.
pub fn mailer(smtp_url: Option<&str>, from: Option<&str>) -> anyhow::Result<Option<std::sync::Arc<tessera_server::mail::Mailer>>> {
    let set = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    match (set(smtp_url), set(from)) {
        (None, None) => Ok(None),
        (Some(_), None) => bail!("--smtp-url needs --email-from (TESSERA_EMAIL_FROM): the sender of Tessera's mail, e.g. \"Tessera <id@example.com>\""),
        (None, Some(_)) => bail!("--email-from needs --smtp-url (TESSERA_SMTP_URL): where the mail goes"),
        (Some(url), Some(from)) => Ok(Some(std::sync::Arc::new(tessera_server::mail::Mailer::new(&url, &from)?))),
    }
}

/// What needs mail says so at start-up when there is none.
pub fn check_mail_needed(what: &str, mailer: Option<&tessera_server::mail::Mailer>) -> anyhow::Result<()> {
    if mailer.is_none() {
        bail!("{what} sends mail: set --smtp-url (TESSERA_SMTP_URL) and --email-from (TESSERA_EMAIL_FROM); see docs/email.md");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn args(listen: Option<&str>, issuer: Option<&str>, config: Option<std::path::PathBuf>) -> ServeArgs {
        ServeArgs { listen: listen.map(Into::into), issuer: issuer.map(Into::into), config, ..Default::default() }
    }

    #[test]
    fn defaults() {
        let s = resolve(None, &args(None, None, None)).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(s.issuer, None);
        assert_eq!(s.database_url, DEFAULT_DATABASE);
        assert_eq!(s.database_pool_size, DEFAULT_POOL_SIZE);
        assert_eq!(s.limits, ServeLimits::default());
    }

    #[test]
    fn connection_limits() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "header_read_timeout = 5\nidle_timeout = 120\nmax_connections = 300").unwrap();
        let s = resolve(None, &args(None, None, Some(f.path().into()))).unwrap();
        assert_eq!((s.limits.header_read_timeout, s.limits.idle_timeout, s.limits.max_connections), (Duration::from_secs(5), Duration::from_secs(120), 300));
        let a = ServeArgs { header_read_timeout: Some(2), max_connections: Some(7), ..args(None, None, Some(f.path().into())) };
        let s = resolve(None, &a).unwrap();
        assert_eq!(
            (s.limits.header_read_timeout, s.limits.idle_timeout, s.limits.max_connections),
            (Duration::from_secs(2), Duration::from_secs(120), 7),
            "flags win over the file"
        );
        let e = resolve(None, &ServeArgs { idle_timeout: Some(0), ..Default::default() }).unwrap_err().to_string();
        assert!(e.contains("--idle-timeout"), "{e}");
        let e = resolve(None, &ServeArgs { header_read_timeout: Some(0), ..Default::default() }).unwrap_err().to_string();
        assert!(e.contains("--header-read-timeout"), "{e}");
        let e = resolve(None, &ServeArgs { max_connections: Some(0), ..Default::default() }).unwrap_err().to_string();
        assert!(e.contains("--max-connections"), "{e}");
    }

    #[test]
    fn postgres_and_pool_size() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "database_url = \"postgres://tessera@db.internal/tessera\"\ndatabase_pool_size = 32").unwrap();
        let s = resolve(None, &args(None, None, Some(f.path().into()))).unwrap();
        assert_eq!((s.database_url.as_str(), s.database_pool_size), ("postgres://tessera@db.internal/tessera", 32));
        let a = ServeArgs { database_pool_size: Some(4), ..args(None, None, Some(f.path().into())) };
        assert_eq!(resolve(Some("postgresql://h/db".into()), &a).unwrap().database_pool_size, 4, "the flag wins over the file");
        let a = ServeArgs { database_pool_size: Some(0), ..Default::default() };
        let e = resolve(None, &a).unwrap_err().to_string();
        assert!(e.contains("--database-pool-size"), "{e}");
    }

    #[test]
    fn flags_override_file() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "listen = \"127.0.0.1:9000\"\nissuer = \"https://id.example\"\ndatabase_url = \"sqlite://x.db\"").unwrap();
        let s = resolve(None, &args(None, None, Some(f.path().into()))).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:9000");
        assert_eq!(s.issuer.as_deref(), Some("https://id.example"));
        assert_eq!(s.database_url, "sqlite://x.db");
        let s = resolve(Some("sqlite://y.db".into()), &args(Some("127.0.0.1:9001"), None, Some(f.path().into()))).unwrap();
        assert_eq!(s.listen.to_string(), "127.0.0.1:9001");
        assert_eq!(s.database_url, "sqlite://y.db");
    }

    /// Keys at rest: the file comes from the flag or the TOML file; a key and a file together
    /// are refused; a key never shows in `Debug`.
    #[test]
    fn key_encryption_sources() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "key_encryption_key_file = \"/etc/tessera/kek\"\nallow_private_logout_uris = true").unwrap();
        let a = args(None, None, Some(f.path().into()));
        let s = resolve_with(None, &a, KekSources::default(), false).unwrap();
        assert_eq!(s.kek.file.as_deref(), Some(std::path::Path::new("/etc/tessera/kek")));
        assert!(s.allow_private_logout_uris);
        let flag = KekSources { file: Some("/run/kek".into()), ..Default::default() };
        assert_eq!(resolve_with(None, &a, flag, false).unwrap().kek.file.as_deref(), Some(std::path::Path::new("/run/kek")), "the flag wins");
        let both = KekSources { key: Some("c2VjcmV0".into()), ..Default::default() };
        let e = resolve_with(None, &a, both.clone(), false).unwrap_err().to_string();
        assert!(e.contains("TESSERA_KEY_ENCRYPTION_KEY") && e.contains("not both"), "{e}");
        assert!(!format!("{both:?}").contains("c2VjcmV0"));
        assert!(!resolve(None, &args(None, None, None)).unwrap().allow_private_logout_uris);
    }

    /// Issue 15: both mail settings or neither; self-registration from the flag or the file.
    #[tokio::test]
    async fn mail_settings() {
        assert!(mailer(None, None).unwrap().is_none());
        assert!(mailer(Some(" "), Some("")).unwrap().is_none(), "empty environment variables count as unset");
        let e = mailer(Some("smtp://127.0.0.1:2525"), None).unwrap_err().to_string();
        assert!(e.contains("--email-from"), "{e}");
        let e = mailer(None, Some("id@example.com")).unwrap_err().to_string();
        assert!(e.contains("--smtp-url"), "{e}");
        let e = mailer(Some("http://x"), Some("id@example.com")).unwrap_err().to_string();
        assert!(e.contains("--smtp-url"), "{e}");
        assert!(mailer(Some("smtp://127.0.0.1:2525"), Some("Tessera <id@example.com>")).unwrap().is_some());
        let e = check_mail_needed("self-registration (--self-registration)", None).unwrap_err().to_string();
        assert!(e.contains("--smtp-url") && e.contains("--email-from"), "{e}");
        assert!(!resolve(None, &args(None, None, None)).unwrap().self_registration, "off by default");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "self_registration = true").unwrap();
        assert!(resolve(None, &args(None, None, Some(f.path().into()))).unwrap().self_registration);
    }

    #[test]
    fn errors_name_the_setting() {
        let e = resolve(None, &args(Some("nonsense"), None, None)).unwrap_err().to_string();
        assert!(e.contains("--listen"), "{e}");
        let e = resolve(None, &args(None, Some("http://id.example"), None)).unwrap_err().to_string();
        assert!(e.contains("--issuer") && e.contains("https"), "{e}");
        let e = resolve(None, &args(None, Some("https://id.example/?x=1"), None)).unwrap_err().to_string();
        assert!(e.contains("query"), "{e}");
        let e = resolve(Some("mysql://x".into()), &args(None, None, None)).unwrap_err().to_string();
        assert!(e.contains("TESSERA_DATABASE_URL"), "{e}");
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "lisen = \"x\"").unwrap();
        let e = format!("{:#}", resolve(None, &args(None, None, Some(f.path().into()))).unwrap_err());
        assert!(e.contains("lisen"), "{e}");
        let a = ServeArgs { trusted_proxies: Some(vec!["10.0.0.0/33".into()]), ..Default::default() };
        let e = resolve(None, &a).unwrap_err().to_string();
        assert!(e.contains("--trusted-proxies") && e.contains("prefix"), "{e}");
    }

    /// Issue 13, finding 6: trusted proxies from the flag (repeated or comma-separated, as the
    /// environment variable gives them) or the file; none by default.
    #[test]
    fn trusted_proxies() {
        assert!(resolve(None, &args(None, None, None)).unwrap().trusted_proxies.is_empty());
        let a = ServeArgs { trusted_proxies: Some(vec!["10.0.0.0/8".into(), "192.0.2.1, 2001:db8::/32".into()]), ..Default::default() };
        let got: Vec<String> = resolve(None, &a).unwrap().trusted_proxies.iter().map(|c| c.to_string()).collect();
        assert_eq!(got, ["10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32"]);
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "trusted_proxies = [\"172.16.0.0/12\"]").unwrap();
        let s = resolve(None, &args(None, None, Some(f.path().into()))).unwrap();
        assert_eq!(s.trusted_proxies, vec!["172.16.0.0/12".parse::<Cidr>().unwrap()]);
        let a = ServeArgs { trusted_proxies: Some(vec!["127.0.0.1".into()]), ..args(None, None, Some(f.path().into())) };
        assert_eq!(resolve(None, &a).unwrap().trusted_proxies, vec!["127.0.0.1/32".parse::<Cidr>().unwrap()], "the flag wins over the file");
    }

    /// The password settings: defaults, and each wrong value refused with the setting named
    /// (clap reads the environment variables into the same fields).
    #[test]
    fn password_settings() {
        use crate::cli::PasswordArgs;
        let p = passwords(&PasswordArgs::default()).unwrap();
        assert_eq!(p.argon2, tessera_server::service::authn::Argon2Params::default());
        assert_eq!((p.argon2.memory_kib(), p.argon2.iterations(), p.argon2.parallelism()), (19_456, 2, 1));
        assert_eq!((p.policy.min_length, p.policy.min_length_single_factor), (8, None));
        let p = passwords(&PasswordArgs {
            argon2_memory_kib: Some(47_104),
            argon2_iterations: Some(1),
            password_min_length_single_factor: Some(15),
            ..Default::default()
        })
        .unwrap();
        assert_eq!((p.argon2.memory_kib(), p.argon2.iterations(), p.policy.min_length_single_factor), (47_104, 1, Some(15)));
        for (a, needle) in [
            (PasswordArgs { argon2_memory_kib: Some(4_096), ..Default::default() }, "--argon2-memory-kib must be 7168 to 4194304"),
            (PasswordArgs { argon2_memory_kib: Some(8 * 1024 * 1024), ..Default::default() }, "--argon2-memory-kib"),
            (PasswordArgs { argon2_iterations: Some(1), ..Default::default() }, "--argon2-iterations 1 is too few for --argon2-memory-kib 19456"),
            (PasswordArgs { argon2_iterations: Some(0), ..Default::default() }, "--argon2-iterations must be 1 to 64"),
            (PasswordArgs { argon2_parallelism: Some(0), ..Default::default() }, "--argon2-parallelism must be 1 to 16"),
            (PasswordArgs { password_min_length_single_factor: Some(7), ..Default::default() }, "--password-min-length-single-factor must be 8 to 64"),
            (
                PasswordArgs { password_min_length: Some(20), password_min_length_single_factor: Some(15), ..Default::default() },
                "--password-min-length-single-factor (15) must not be less than --password-min-length (20)",
            ),
        ] {
            let e = passwords(&a).unwrap_err().to_string();
            assert!(e.contains(needle), "{a:?}: {e}");
        }
    }
}
