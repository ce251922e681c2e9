//! `notes-client`: run the example third-party app on its own.

use anyhow::Context;
use clap::Parser;

#[derive(Parser, Debug)]
#[command(name = "notes-client", about = "Example third-party app: connects to a user's Notes with OAuth 2.0")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8082")]
    listen: String,
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    issuer: String,
    #[arg(long, env = "NOTES_CLIENT_ID")]
    client_id: String,
    /// The client secret (prefer the environment variable).
    #[arg(long, env = "NOTES_CLIENT_SECRET", hide_env_values = true)]
    client_secret: String,
    /// Default: http://LISTEN/callback.
    #[arg(long)]
    redirect_uri: Option<String>,
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    api: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())).init();
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("cannot bind {}", args.listen))?;
    let addr = listener.local_addr()?;
    let redirect = args.redirect_uri.unwrap_or_else(|| format!("http://{addr}/callback"));
    let config = notes_client::ClientConfig::new(&args.issuer, &args.client_id, &args.client_secret, &redirect, &args.api);
    let app = notes_client::NotesClient::new(config).await?;
    println!("Notes Client on http://{addr}");
    notes_client::serve(listener, app, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
