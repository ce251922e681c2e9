//! Commands and flags. These names are a public interface: extend, never rename.

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

#[derive(Parser, Debug)]
#[command(name = "tessera", version, about = "Tessera: an OAuth 2.0 authorization server")]
pub struct Cli {
    /// Database URL: sqlite://PATH (default sqlite://tessera-data/tessera.db) or
    /// postgres://USER:PASSWORD@HOST:PORT/DATABASE (several instances behind a load balancer).
    #[arg(long, global = true, env = "TESSERA_DATABASE_URL")]
    pub database: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
    // Keys at rest and back-channel logout targets (issue 13, findings 4 and 11): global, as
    // `keys rotate`, `keys rewrap` and `client create` need them as well as `serve`.
    #[command(flatten)]
    pub keys_at_rest: KeysAtRestArgs,
    /// Allow back-channel logout URIs in private, loopback and link-local address ranges
    /// (development and tests; refused by default at registration and at delivery).
    #[arg(long, global = true, env = "TESSERA_ALLOW_PRIVATE_LOGOUT_URIS", value_parser = clap::builder::BoolishValueParser::new())]
    pub allow_private_logout_uris: bool,
    // How new passwords are checked and hashed: global, as `user create`, `user set-password`
    // and `apply` set passwords as well as `serve`.
    #[command(flatten)]
    pub passwords: PasswordArgs,
    // Account mail (issue 15): global, as `user invite` mails as well as `serve`.
    /// Where Tessera's mail goes (password reset, verification and invitation links, notices):
    /// smtp://[USER:PASSWORD@]HOST[:PORT] (STARTTLS required; plain SMTP on a loopback host) or
    /// smtps://[USER:PASSWORD@]HOST[:PORT] (TLS); ?tls=required|opportunistic|none overrides.
    /// See docs/email.md. Unset: no mail, and what needs it is off.
    #[arg(long, global = true, env = "TESSERA_SMTP_URL", hide_env_values = true, value_name = "URL")]
    pub smtp_url: Option<String>,
    /// The sender of Tessera's mail, e.g. "Tessera <id@example.com>" (needed with --smtp-url).
    #[arg(long, global = true, env = "TESSERA_EMAIL_FROM", value_name = "ADDRESS")]
    pub email_from: Option<String>,
    #[command(subcommand)]
    pub command: Command,
}

// Parsed once per process: the size of the `serve` variant costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand, Debug)]
pub enum Command {
    /// Start the authorization server.
    Serve(ServeArgs),
    /// Start the whole story locally: Tessera, the Notes API and the Notes Client, registered.
    Demo(DemoArgs),
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage clients (the applications that ask for access).
    #[command(subcommand)]
    Client(ClientCmd),
    /// Manage users (resource owners).
    #[command(subcommand)]
    User(UserCmd),
    /// Manage APIs (resource servers), their scopes and their roles.
    #[command(subcommand)]
    Api(ApiCmd),
    /// Manage groups of users (the `groups` claim; roles granted to a group).
    #[command(subcommand)]
    Group(GroupCmd),
    /// Read the audit log: sign-ins, consents, revocations, reuse detected, admin changes.
    #[command(subcommand)]
    Audit(AuditCmd),
    /// Manage signing keys (rotation).
    #[command(subcommand)]
    Keys(KeysCmd),
    /// Make the database match a configuration file (TOML: APIs, groups, clients, users):
    /// prints the plan, then applies it in one transaction. See docs/configuration.md.
    Apply {
        /// The configuration file.
        file: PathBuf,
        /// Print the plan only.
        #[arg(long)]
        dry_run: bool,
        /// Also delete what an earlier apply created and the file no longer declares.
        #[arg(long)]
        prune: bool,
    },
    /// Write today's APIs, groups, clients and users as a configuration file (secrets omitted).
    Export {
        /// Write here instead of standard output.
        #[arg(long, short)]
        output: Option<PathBuf>,
    },
}

/// The rules a new password must meet (NIST SP 800-63B) and the Argon2id parameters it is
/// hashed with.
#[derive(Args, Debug, Default, Clone)]
pub struct PasswordArgs {
    /// New passwords (set by `serve`'s admin API, console and account page, `user create`,
    /// `user set-password`, `apply`) must have at least this many characters, 8 to 64
    /// (NIST SP 800-63B §5.1.1.2; default 8).
    #[arg(long, global = true, env = "TESSERA_PASSWORD_MIN_LENGTH")]
    pub password_min_length: Option<usize>,
    /// A list of breached passwords refused as new passwords: one per line, a SHA-1 digest in
    /// hex (optionally `:COUNT`, as the Pwned Passwords files) or the password itself.
    #[arg(long, global = true, env = "TESSERA_BREACHED_PASSWORDS")]
    pub breached_passwords: Option<PathBuf>,
    /// New passwords of accounts without a second factor (and of new users) must have at least
    /// this many characters, 8 to 64 and not less than --password-min-length (NIST SP
    /// 800-63B-4 §3.1.1.2 asks 15 of a password that is the only factor; default: off).
    #[arg(long, global = true, env = "TESSERA_PASSWORD_MIN_LENGTH_SINGLE_FACTOR")]
    pub password_min_length_single_factor: Option<usize>,
    /// Argon2id memory per password hash, KiB (default 19456, OWASP's; 7168 to 4194304, with
    /// at least OWASP's iterations for it). Hashes made with other parameters are made again at
    /// the user's next sign-in.
    #[arg(long, global = true, env = "TESSERA_ARGON2_MEMORY_KIB", value_name = "KIB")]
    pub argon2_memory_kib: Option<u32>,
    /// Argon2id passes (default 2; 1 to 64; OWASP: m=47104 t=1, m=19456 t=2, m=12288 t=3,
    /// m=9216 t=4, m=7168 t=5).
    #[arg(long, global = true, env = "TESSERA_ARGON2_ITERATIONS")]
    pub argon2_iterations: Option<u32>,
    /// Argon2id lanes (default 1; 1 to 16).
    #[arg(long, global = true, env = "TESSERA_ARGON2_PARALLELISM")]
    pub argon2_parallelism: Option<u32>,
}

/// Where the key-encryption key (KEK) that seals signing keys comes from. The KEK itself is
/// given only in the environment (`TESSERA_KEY_ENCRYPTION_KEY`, base64) or in a file, never as
/// a flag. Default: the file `key-encryption-key` beside the SQLite database (generated 0600 on
/// first start), or `tessera-data/key-encryption-key` for PostgreSQL.
#[derive(Args, Debug, Default, Clone)]
pub struct KeysAtRestArgs {
    /// File holding the key-encryption key (base64 of 32 random bytes).
    #[arg(long, global = true, env = "TESSERA_KEY_ENCRYPTION_KEY_FILE")]
    pub key_encryption_key_file: Option<PathBuf>,
    /// File holding the previous key-encryption key, during a KEK rotation: keys sealed under it
    /// are sealed again under the current one (on start, or by `tessera keys rewrap`).
    #[arg(long, global = true, env = "TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS_FILE")]
    pub key_encryption_key_previous_file: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
pub enum KeysCmd {
    /// List signing keys: kid, algorithm, and when each signs.
    List,
    /// Start a rotation: a new key is published now and signs after --publish-delay seconds;
    /// the old key stays published until its tokens have expired.
    Rotate {
        /// ES256, RS256 or EdDSA (default: all three).
        #[arg(long)]
        alg: Option<String>,
        /// Seconds between publication and first use (default 3600; relying parties cache JWKS).
        #[arg(long, default_value_t = 3600)]
        publish_delay: i64,
    },
    /// Seal every signing key again under the current key-encryption key (a KEK rotation; give
    /// the old one as TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS or --key-encryption-key-previous-file).
    /// Keys stored in plain PKCS#8 by an older version are sealed too. Kids and JWKS are unchanged.
    Rewrap,
}

/// Standard profile claims (OpenID Connect Core §5.1) for `user create` and `user update`.
#[derive(Args, Debug, Default, Clone)]
pub struct ProfileArgs {
    #[arg(long)]
    pub given_name: Option<String>,
    #[arg(long)]
    pub family_name: Option<String>,
    #[arg(long)]
    pub middle_name: Option<String>,
    #[arg(long)]
    pub nickname: Option<String>,
    #[arg(long)]
    pub preferred_username: Option<String>,
    /// Profile page URL.
    #[arg(long)]
    pub profile: Option<String>,
    #[arg(long)]
    pub picture: Option<String>,
    #[arg(long)]
    pub website: Option<String>,
    #[arg(long)]
    pub email_verified: Option<bool>,
    #[arg(long)]
    pub gender: Option<String>,
    /// YYYY-MM-DD.
    #[arg(long)]
    pub birthdate: Option<String>,
    /// e.g. Europe/Paris.
    #[arg(long)]
    pub zoneinfo: Option<String>,
    /// e.g. fr-FR.
    #[arg(long)]
    pub locale: Option<String>,
    /// E.164, e.g. +33612345678.
    #[arg(long)]
    pub phone_number: Option<String>,
    #[arg(long)]
    pub phone_number_verified: Option<bool>,
    #[arg(long)]
    pub street_address: Option<String>,
    #[arg(long)]
    pub locality: Option<String>,
    #[arg(long)]
    pub region: Option<String>,
    #[arg(long)]
    pub postal_code: Option<String>,
    #[arg(long)]
    pub country: Option<String>,
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Apply this configuration file (as `tessera apply FILE`, without pruning) at every start,
    /// before serving.
    #[arg(long, env = "TESSERA_APPLY")]
    pub apply: Option<PathBuf>,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "TESSERA_LISTEN")]
    pub listen: Option<String>,
    /// Issuer URL (default http://LISTEN-ADDRESS).
    #[arg(long, env = "TESSERA_ISSUER")]
    pub issuer: Option<String>,
    /// TOML file with `listen`, `issuer`, `database_url`, `database_pool_size`, `trusted_proxies`,
    /// `header_read_timeout`, `idle_timeout`, `max_connections`; flags and env vars take precedence.
    #[arg(long, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    /// PostgreSQL connections this instance may open (default 16); ignored for SQLite.
    #[arg(long, env = "TESSERA_DATABASE_POOL_SIZE")]
    pub database_pool_size: Option<u32>,
    /// Rotate signing keys automatically after this many days (default 90; 0 turns it off).
    #[arg(long, env = "TESSERA_KEY_ROTATION_DAYS")]
    pub key_rotation_days: Option<u32>,

    // Connection limits (`tessera_http::serve`; issue 13 finding 5, Slowloris).
    /// Seconds a client has to send a complete request head, counted from the accept (or from
    /// the head's first byte on a keep-alive connection); then the connection is closed (default 10).
    #[arg(long, env = "TESSERA_HEADER_READ_TIMEOUT", value_name = "SECONDS")]
    pub header_read_timeout: Option<u64>,
    /// Seconds a keep-alive connection may stay idle (no request in flight, no traffic) before it
    /// is closed (default 75; keep it above your load balancer's idle timeout).
    #[arg(long, env = "TESSERA_IDLE_TIMEOUT", value_name = "SECONDS")]
    pub idle_timeout: Option<u64>,
    /// Connections served at once; more wait in the listen backlog until one closes (default:
    /// the open-file limit less 64, between 16 and 8192).
    #[arg(long, env = "TESSERA_MAX_CONNECTIONS")]
    pub max_connections: Option<usize>,
    /// Proxies (load balancers) trusted to name the client in X-Forwarded-For / Forwarded, as
    /// IP addresses or CIDR networks (e.g. 10.0.0.0/8), space- or comma-separated; used for
    /// per-address throttling. Default: none (the TCP peer is the client).
    #[arg(long, env = "TESSERA_TRUSTED_PROXIES", num_args = 1.., value_delimiter = ',')]
    pub trusted_proxies: Option<Vec<String>>,
    /// DPoP (RFC 9449 §8): proofs at the token endpoint and UserInfo must carry a nonce this
    /// server issued (sent in the DPoP-Nonce header), so that proofs cannot be made ahead of time.
    #[arg(long, env = "TESSERA_DPOP_NONCES", value_parser = clap::builder::BoolishValueParser::new())]
    pub dpop_nonces: bool,
    /// Anyone may create an account at /register: it is made, enabled and its address verified
    /// when the link mailed to the address is opened (needs --smtp-url and --email-from). Off by
    /// default.
    #[arg(long, env = "TESSERA_SELF_REGISTRATION", value_parser = clap::builder::BoolishValueParser::new())]
    pub self_registration: bool,
    /// Days audit events are kept (default 90; 0 keeps them forever).
    #[arg(long, env = "TESSERA_AUDIT_RETENTION_DAYS", value_name = "DAYS")]
    pub audit_retention_days: Option<u32>,
    /// Serve Prometheus /metrics (and the health checks) on this address only, e.g.
    /// 127.0.0.1:9090, instead of on the main listener.
    #[arg(long, env = "TESSERA_METRICS_LISTEN", value_name = "ADDRESS")]
    pub metrics_listen: Option<String>,
    /// On SIGTERM, keep serving this many seconds while /health/ready answers 503 (so that a load
    /// balancer moves traffic away), then stop accepting and finish the requests in flight
    /// (default 0).
    #[arg(long, env = "TESSERA_SHUTDOWN_DELAY", value_name = "SECONDS")]
    pub shutdown_delay: Option<u64>,
    /// Log lines as `text` (default) or `json` (one object per line, with the request id).
    #[arg(long, env = "TESSERA_LOG_FORMAT", value_name = "FORMAT")]
    pub log_format: Option<String>,
    /// The product name on the sign-in, consent and account pages (default Tessera).
    #[arg(long, env = "TESSERA_BRAND_NAME", value_name = "NAME")]
    pub brand_name: Option<String>,
    /// A logo shown above the pages: an https URL, or a path on this server.
    #[arg(long, env = "TESSERA_BRAND_LOGO_URL", value_name = "URL")]
    pub brand_logo_url: Option<String>,
    /// The accent colour of buttons and links, #rrggbb.
    #[arg(long, env = "TESSERA_BRAND_ACCENT", value_name = "COLOUR")]
    pub brand_accent: Option<String>,
    /// A CSS file served after the built-in stylesheet.
    #[arg(long, env = "TESSERA_BRAND_CSS", value_name = "FILE")]
    pub brand_css: Option<PathBuf>,
    /// A folder of page templates (MiniJinja) that replace the built-in ones: login.html,
    /// consent.html, error.html, message.html, device.html, logout.html (docs/branding.md).
    #[arg(long, env = "TESSERA_TEMPLATE_DIR", value_name = "DIR")]
    pub template_dir: Option<PathBuf>,
}

/// `tessera demo`: three servers on 127.0.0.1 and the data folder they share.
#[derive(Args, Debug)]
pub struct DemoArgs {
    /// Folder for the demo's data; reused (registrations included) on the next run.
    #[arg(long, default_value = "tessera-demo")]
    pub dir: PathBuf,
    /// Use a new temporary folder instead, deleted on exit.
    #[arg(long)]
    pub temp: bool,
    /// The authorization server's port.
    #[arg(long, default_value_t = 8080)]
    pub port: u16,
    /// The Notes API's port.
    #[arg(long, default_value_t = 8081)]
    pub api_port: u16,
    /// The Notes Client's port (its redirect URI is http://127.0.0.1:PORT/callback).
    #[arg(long, default_value_t = 8082)]
    pub client_port: u16,
    /// The Notes SPA's port: the browser app (its redirect URI is http://127.0.0.1:PORT/callback).
    #[arg(long, default_value_t = 8083)]
    pub spa_port: u16,
}

#[derive(Subcommand, Debug)]
pub enum ClientCmd {
    /// Register a client. Prints client_id and, for confidential clients only, client_secret (once).
    Create {
        #[arg(long)]
        name: String,
        /// Allowed redirect URI, matched exactly (repeatable).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Space-separated scopes the client may request.
        #[arg(long, default_value = "")]
        scope: String,
        /// Grant type by its registered name (repeatable; default authorization_code and refresh_token).
        #[arg(long = "grant-type")]
        grant_types: Vec<String>,
        /// A public client (cannot keep a secret; must use PKCE).
        #[arg(long)]
        public: bool,
        /// client_secret_basic (default), client_secret_post, or none.
        #[arg(long = "token-auth-method")]
        token_auth_method: Option<String>,
        /// Where the user may be sent after logout, matched exactly (repeatable).
        #[arg(long = "post-logout-redirect-uri")]
        post_logout_redirect_uris: Vec<String>,
        /// OpenID Connect Back-Channel Logout: logout tokens are POSTed here.
        #[arg(long = "backchannel-logout-uri")]
        backchannel_logout_uri: Option<String>,
        /// ID token signing algorithm: RS256 (default), ES256 or EdDSA.
        #[arg(long = "id-token-signed-response-alg")]
        id_token_signed_response_alg: Option<String>,
        /// A browser origin (scheme://host[:port]) allowed at the token, revocation and UserInfo
        /// endpoints beyond the redirect URIs' origins (repeatable; CORS).
        #[arg(long = "allowed-origin")]
        allowed_origins: Vec<String>,
        /// Every token request must carry a DPoP proof (RFC 9449): no bearer tokens.
        #[arg(long)]
        require_dpop: bool,
        /// Users must sign in with a second factor (a TOTP app or a passkey) before this client
        /// gets a code (RFC 8176 `amr` then carries `mfa`).
        #[arg(long)]
        require_mfa: bool,
        /// A file with the client's public keys (a JWK Set or one JWK): they sign its assertions
        /// for the urn:ietf:params:oauth:grant-type:jwt-bearer grant (RFC 7523).
        #[arg(long, value_name = "FILE")]
        jwks: Option<std::path::PathBuf>,
    },
    /// Change a client's registration; options not given stay as they are, a repeatable option
    /// given replaces its whole list.
    Update {
        client_id: String,
        #[arg(long)]
        name: Option<String>,
        /// Allowed redirect URI, matched exactly (repeatable; replaces the list).
        #[arg(long = "redirect-uri")]
        redirect_uris: Vec<String>,
        /// Space-separated scopes the client may request.
        #[arg(long)]
        scope: Option<String>,
        /// Browser origin allowed beyond the redirect URIs' (repeatable; replaces the list).
        #[arg(long = "allowed-origin")]
        allowed_origins: Vec<String>,
        /// Remove every allowed origin beyond the redirect URIs' origins.
        #[arg(long, conflicts_with = "allowed_origins")]
        clear_allowed_origins: bool,
        /// true: every token request must carry a DPoP proof; false: bearer tokens allowed.
        #[arg(long, value_name = "BOOL")]
        require_dpop: Option<bool>,
        /// Users must sign in with a second factor before this client gets a code.
        #[arg(long, conflicts_with = "no_require_mfa")]
        require_mfa: bool,
        /// A password alone is enough again.
        #[arg(long)]
        no_require_mfa: bool,
        /// A file with the client's public keys (a JWK Set or one JWK; replaces them).
        #[arg(long, value_name = "FILE")]
        jwks: Option<std::path::PathBuf>,
        /// Remove the client's registered keys.
        #[arg(long, conflicts_with = "jwks")]
        clear_jwks: bool,
    },
    List,
    Show {
        client_id: String,
    },
    Delete {
        client_id: String,
    },
    /// Replace the client's secret; prints the new one (once).
    RotateSecret {
        client_id: String,
    },
}

#[derive(Subcommand, Debug)]
pub enum UserCmd {
    /// Create a user; the password is read from standard input.
    Create {
        #[arg(long)]
        username: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        name: Option<String>,
        /// Read the password from standard input (required: passwords never go on the command line).
        #[arg(long, required = true)]
        password_stdin: bool,
        #[command(flatten)]
        profile: ProfileArgs,
    },
    /// Invite someone: a user with this address and no password yet, and a mail with a link
    /// (valid 7 days) to choose one; choosing it verifies the address. Needs --smtp-url and
    /// --email-from, and the issuer the link starts with.
    Invite {
        #[arg(long)]
        email: String,
        #[arg(long)]
        name: Option<String>,
        /// Default: the email address.
        #[arg(long)]
        username: Option<String>,
        /// The server's issuer URL, which the link starts with (as `serve --issuer`).
        #[arg(long, env = "TESSERA_ISSUER")]
        issuer: Option<String>,
    },
    /// Change a user's email, name or profile claims.
    Update {
        username: String,
        #[arg(long)]
        email: Option<String>,
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        profile: ProfileArgs,
        /// Disable the account: no sign-in; its sessions, refresh tokens and codes end now.
        #[arg(long, conflicts_with = "enable")]
        disable: bool,
        /// Enable a disabled account again.
        #[arg(long)]
        enable: bool,
        /// Make the user an administrator: their tokens for the admin API (urn:tessera:admin)
        /// act with their authority.
        #[arg(long, conflicts_with = "no_admin")]
        admin: bool,
        /// No longer an administrator.
        #[arg(long)]
        no_admin: bool,
        /// Every sign-in of the user needs a second factor (a user without one sets it up at
        /// their next sign-in).
        #[arg(long, conflicts_with = "no_require_mfa")]
        require_mfa: bool,
        /// A password alone is enough again (unless a client requires more).
        #[arg(long)]
        no_require_mfa: bool,
    },
    /// Remove every second factor and recovery code of the user (a lost phone or security
    /// key): they sign in with their password and set up a new one.
    ResetMfa {
        username: String,
    },
    List,
    Delete {
        username: String,
    },
    SetPassword {
        username: String,
        #[arg(long, required = true)]
        password_stdin: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum ApiCmd {
    /// Register a resource server; its identifier becomes the access token audience.
    Create {
        #[arg(long)]
        identifier: String,
        #[arg(long)]
        name: String,
        /// NAME=Description shown on the consent page (repeatable).
        #[arg(long = "scope")]
        scopes: Vec<String>,
        /// NAME=Description of a role the API declares (repeatable); its access tokens carry the
        /// roles granted to the user, directly or through a group, as `roles`.
        #[arg(long = "role")]
        roles: Vec<String>,
    },
    List,
    Delete {
        identifier: String,
    },
    /// Grant a role of an API to a user or a group (tokens issued from now on carry it).
    GrantRole {
        identifier: String,
        role: String,
        #[command(flatten)]
        holder: RoleHolderArgs,
    },
    /// Take a role of an API back from a user or a group.
    RevokeRole {
        identifier: String,
        role: String,
        #[command(flatten)]
        holder: RoleHolderArgs,
    },
    /// The roles an API declares and to whom each is granted.
    Roles {
        identifier: String,
    },
}

/// Who a role is granted to: exactly one of `--user` and `--group`.
#[derive(Args, Debug)]
#[group(required = true, multiple = false)]
pub struct RoleHolderArgs {
    /// A user, by username.
    #[arg(long)]
    pub user: Option<String>,
    /// A group, by name.
    #[arg(long)]
    pub group: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum AuditCmd {
    /// Events, newest first (a page; `--before ID` continues below the last one shown).
    List {
        #[command(flatten)]
        filter: AuditFilterArgs,
        /// Events per page (1 to 1000).
        #[arg(long, default_value_t = 50)]
        limit: i64,
        /// Only events with an id below this one (the next page).
        #[arg(long)]
        before: Option<i64>,
    },
    /// Every matching event as JSON lines, oldest first (for a log pipeline or an archive).
    Export {
        #[command(flatten)]
        filter: AuditFilterArgs,
    },
}

#[derive(Args, Debug)]
pub struct AuditFilterArgs {
    /// At or after this time: Unix seconds, or RFC 3339 (2026-12-01T00:00:00Z).
    #[arg(long)]
    pub since: Option<String>,
    /// Before this time: Unix seconds, or RFC 3339.
    #[arg(long)]
    pub until: Option<String>,
    /// Events of this kind (sign_in, sign_in_failed, consent_granted, token_revoked, refresh_reuse, admin.client_created, …).
    #[arg(long = "type")]
    pub kind: Option<String>,
    /// Events concerning this user (by username).
    #[arg(long)]
    pub user: Option<String>,
    /// Events concerning this client (by client_id).
    #[arg(long)]
    pub client: Option<String>,
}

#[derive(Subcommand, Debug)]
pub enum GroupCmd {
    /// Create a group.
    Create {
        name: String,
        #[arg(long)]
        description: Option<String>,
    },
    List,
    /// A group and its members.
    Show {
        name: String,
    },
    /// Delete a group, its memberships and the roles granted to it.
    Delete {
        name: String,
    },
    AddMember {
        group: String,
        username: String,
    },
    RemoveMember {
        group: String,
        username: String,
    },
}
