//! `tessera-bench resource-server`: an axum API with tessera-guard in front of one route, as a
//! resource server would deploy it (keys found through the issuer's metadata and cached).

use axum::Router;
use axum::handler::Handler;
use axum::routing::get;
use tessera_guard::{Guard, GuardConfig, Principal, RequireScope};

async fn resource(p: Principal) -> String {
    format!("{{\"sub\":\"{}\",\"client_id\":\"{}\"}}", p.subject, p.client_id)
}

pub async fn serve(issuer: &str, audience: &str, scope: &'static str) -> anyhow::Result<()> {
    let guard = Guard::new(GuardConfig::new(issuer, audience))?;
    let app = Router::new().route("/resource", get(resource.layer(RequireScope(scope)))).layer(guard.layer()).route("/healthz", get(|| async { "ok" }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    println!("listening on http://{}", listener.local_addr()?);
    use std::io::Write;
    std::io::stdout().flush()?;
    axum::serve(listener, app).await?;
    Ok(())
}
