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
    #[command(subcommand)]
    pub command: Command,
}

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
    /// Manage APIs (resource servers) and their scopes.
    #[command(subcommand)]
    Api(ApiCmd),
}

#[derive(Args, Debug, Default)]
pub struct ServeArgs {
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "TESSERA_LISTEN")]
    pub listen: Option<String>,
    /// Issuer URL (default http://LISTEN-ADDRESS).
    #[arg(long, env = "TESSERA_ISSUER")]
    pub issuer: Option<String>,
    /// TOML file with `listen`, `issuer`, `database_url`, `database_pool_size`; flags and env vars
    /// take precedence.
    #[arg(long, env = "TESSERA_CONFIG")]
    pub config: Option<PathBuf>,
    /// PostgreSQL connections this instance may open (default 16); ignored for SQLite.
    #[arg(long, env = "TESSERA_DATABASE_POOL_SIZE")]
    pub database_pool_size: Option<u32>,
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
    },
    List,
    Delete {
        identifier: String,
    },
}
