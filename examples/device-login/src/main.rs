//! `device-login --issuer URL --client-id ID [--scope "..."]`: sign in on another device and
//! print the token response as JSON on stdout; the instructions go to stderr. Exits 1 with the
//! RFC error (`access_denied`, `expired_token`, …) when the sign-in fails.

use clap::Parser;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(name = "device-login", about = "Sign in from a terminal with the OAuth 2.0 device authorization grant (RFC 8628)")]
struct Args {
    /// The authorization server's issuer identifier, e.g. https://auth.example.
    #[arg(long, env = "DEVICE_LOGIN_ISSUER")]
    issuer: String,
    /// The public client registered for the device grant.
    #[arg(long, env = "DEVICE_LOGIN_CLIENT_ID")]
    client_id: String,
    /// Space-separated scopes to ask for (Tessera requires at least one).
    #[arg(long)]
    scope: Option<String>,
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    match device_login::run(&args.issuer, &args.client_id, args.scope.as_deref(), std::io::stderr()).await {
        Ok(tokens) => match serde_json::to_string_pretty(&tokens) {
            Ok(json) => {
                println!("{json}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("device-login: {e}");
                ExitCode::FAILURE
            }
        },
        Err(e) => {
            eprintln!("device-login: {e}");
            ExitCode::FAILURE
        }
    }
}
