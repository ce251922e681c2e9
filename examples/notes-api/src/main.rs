//! `notes-api`: run the example resource server on its own.

use anyhow::Context;
use clap::Parser;
use tessera_guard::{Guard, GuardConfig};

#[derive(Parser, Debug)]
#[command(name = "notes-api", about = "Example resource server: each user's notes, guarded by tessera-guard")]
struct Args {
    #[arg(long, default_value = "127.0.0.1:8081")]
    listen: String,
    /// The authorization server's issuer identifier.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    issuer: String,
    /// This API's identifier, as registered with `tessera api create --identifier`.
    #[arg(long, default_value = "https://notes.example")]
    audience: String,
    #[arg(long, default_value = "sqlite://notes-data/notes.db")]
    database: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt().with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into())).init();
    let args = Args::parse();
    let guard = Guard::new(GuardConfig::new(&args.issuer, &args.audience))?;
    if let Err(e) = guard.refresh().await {
        tracing::warn!(error = %e, "the issuer's keys are not available yet; they will be fetched on the first request");
    }
    let db = notes_api::Db::open(&args.database).await.with_context(|| format!("opening {}", args.database))?;
    let listener = tokio::net::TcpListener::bind(&args.listen).await.with_context(|| format!("cannot bind {}", args.listen))?;
    println!("Notes API on http://{} (issuer {}, audience {})", listener.local_addr()?, args.issuer, args.audience);
    notes_api::serve(listener, guard, db, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}
