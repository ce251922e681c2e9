//! `tessera serve`: open and migrate the store, load or generate keys, listen. Background
//! tasks reload signing keys (every [`KEY_RELOAD_INTERVAL`]) and delete expired rows.

use crate::cli::ServeArgs;
use crate::settings;
use crate::store;
use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tessera_server::{Config, SystemClock, Tessera};

/// How often keys are re-read from the store: a key added through another instance or the CLI
/// is in this instance's JWKS within this bound.
pub const KEY_RELOAD_INTERVAL: Duration = Duration::from_secs(3);

pub async fn run(
    database: Option<String>,
    args: ServeArgs,
    kek: settings::KekSources,
    allow_private_logout_uris: bool,
    passwords: settings::Passwords,
    mail: &crate::admin::MailSettings,
) -> anyhow::Result<()> {
    let s = settings::resolve_with(database, &args, kek, allow_private_logout_uris)?;
    let mailer = settings::mailer(mail.smtp_url.as_deref(), mail.from.as_deref())?;
    if s.self_registration {
        settings::check_mail_needed("self-registration (--self-registration / TESSERA_SELF_REGISTRATION)", mailer.as_deref())?;
    }
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into());
    // The request id is added to every line logged while a request is served.
    match s.log_format {
        settings::LogFormat::Text => {
            let format = tracing_subscriber::fmt::format().with_ansi(false);
            tracing_subscriber::fmt()
                .with_ansi(false)
                .event_format(crate::logging::WithRequestId { inner: format, json: false })
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init()
        }
        // One JSON object per line.
        settings::LogFormat::Json => {
            let format = tracing_subscriber::fmt::format().json().with_current_span(false).with_span_list(false);
            tracing_subscriber::fmt()
                .event_format(crate::logging::WithRequestId { inner: format, json: true })
                .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                .with_env_filter(filter)
                .with_writer(std::io::stderr)
                .init()
        }
    }
    let listener = tokio::net::TcpListener::bind(s.listen).await.with_context(|| format!("listen (--listen / TESSERA_LISTEN): cannot bind {}", s.listen))?;
    let addr = listener.local_addr()?;
    let issuer = match s.issuer {
        Some(i) => i,
        None => settings::check_issuer(&settings::default_issuer(addr)).context("set --issuer: the listen address is not a loopback address")?,
    };
    let store = store::open_server_store(&s.database_url, s.database_pool_size).await?;
    let kek = store::key_encryption(&s.kek, &s.database_url, &*store).await?;
    if let Some(file) = &args.apply {
        crate::apply::at_start(&*store, file, &passwords).await.with_context(|| format!("--apply {}", file.display()))?;
    }
    let config = Config {
        key_encryption: Some(kek),
        allow_private_logout_uris: s.allow_private_logout_uris,
        dpop_nonces: s.dpop_nonces,
        trusted_proxies: s.trusted_proxies.clone(),
        password_policy: passwords.policy,
        argon2: passwords.argon2,
        branding: settings::branding(&args)?,
        mailer: mailer.clone(),
        self_registration: s.self_registration,
        ..Config::new(&issuer)
    };
    let svc = Tessera::new(store, Arc::new(SystemClock), config).await.context("loading signing keys")?;

    // Keys added by another process (e.g. a rotation) are picked up without a restart.
    let reload = svc.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(KEY_RELOAD_INTERVAL).await;
            if let Err(e) = reload.keys.reload(&*reload.store).await {
                tracing::warn!(error = %e, "reloading signing keys failed");
            }
        }
    });

    // Expired codes, tokens, sessions and device codes go in bounded batches (every instance
    // does this; concurrent deletes of the same rows are harmless).
    let cleanup = svc.clone();
    let retention_secs = i64::from(s.audit_retention_days) * 86_400;
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(store::CLEANUP_INTERVAL).await;
            store::cleanup_round(&*cleanup.store, cleanup.now()).await;
            if retention_secs > 0 {
                store::audit_retention_round(&*cleanup.store, cleanup.now() - retention_secs).await;
            }
        }
    });

    // Scheduled rotation (OIDC Core §10.1.1): a due key gets a successor that is published an
    // hour before it signs; keys whose tokens have all expired are retired.
    let rotation_days = i64::from(args.key_rotation_days.unwrap_or(90));
    let rotation = svc.clone();
    tokio::spawn(async move {
        loop {
            let now = rotation.now();
            if rotation_days > 0 {
                if let Err(e) = tessera_server::keys::rotate_if_due(&*rotation.store, rotation.keys.kek(), now, rotation_days * 86_400, 3_600).await {
                    tracing::warn!(error = %e, "scheduled key rotation failed");
                }
            }
            if let Err(e) = tessera_server::keys::retire(&*rotation.store, now, tessera_server::service::oidc::MAX_SIGNED_TOKEN_LIFETIME_SECS).await {
                tracing::warn!(error = %e, "retiring old keys failed");
            }
            tokio::time::sleep(std::time::Duration::from_secs(3_600)).await;
        }
    });

    println!("Tessera is listening on http://{addr}");
    println!("  issuer:   {issuer}");
    println!("  database: {}", store::redact(&s.database_url));
    println!("  metadata: {issuer}/.well-known/oauth-authorization-server");
    match &mailer {
        Some(m) => println!("  mail:     {} (from {}){}", m.smtp(), m.from_address(), if s.self_registration { ", self-registration on" } else { "" }),
        None => println!("  mail:     none (no password reset or verification links; set --smtp-url and --email-from)"),
    }
    println!();
    println!("Register an API, a user and a first client (in another terminal):");
    println!("  tessera api create --identifier https://notes.example --name Notes --scope \"notes.read=Read your notes\"");
    println!("  echo 'a long password' | tessera user create --username alice --password-stdin");
    println!("  tessera client create --name \"My App\" --redirect-uri http://127.0.0.1:3000/callback --scope notes.read");
    use std::io::Write;
    let _ = std::io::stdout().flush();
    tracing::info!(%addr, %issuer, "listening");

    tracing::info!(header_read_timeout = ?s.limits.header_read_timeout, idle_timeout = ?s.limits.idle_timeout, max_connections = s.limits.max_connections, "connection limits");
    let svc_for_drain = svc.clone();
    // Prometheus /metrics on a listener of its own, when asked for.
    let router = match s.metrics_listen {
        Some(addr) => {
            let metrics = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("metrics listen (--metrics-listen): cannot bind {addr}"))?;
            let bound = metrics.local_addr()?;
            println!("  metrics:  http://{bound}/metrics");
            tracing::info!(%bound, "metrics listening");
            let (app, limits) = (tessera_http::metrics_router(svc.clone()), s.limits);
            tokio::spawn(async move {
                if let Err(e) = tessera_http::serve(metrics, app, limits, shutdown()).await {
                    tracing::error!(error = %e, "metrics listener failed");
                }
            });
            tessera_http::router_with(svc, tessera_http::REQUEST_TIMEOUT, false)
        }
        None => tessera_http::router(svc),
    };
    // Bounded head reads, idle keep-alive and connection count; TCP_NODELAY. SIGTERM: readiness
    // fails at once and requests are still served for the shutdown delay (a load balancer
    // moves traffic away meanwhile), then the listener closes and requests in flight finish
    // within the drain timeout.
    let delay = s.shutdown_delay;
    let draining = svc_for_drain;
    let stop = async move {
        shutdown().await;
        draining.start_draining();
        tracing::info!(delay_secs = delay.as_secs(), "shutting down: readiness fails now; the listener closes after the delay");
        tokio::time::sleep(delay).await;
    };
    let served = tessera_http::serve(listener, router, s.limits, stop).await.context("server error");
    tracing::info!("stopped");
    served
}

/// Ctrl-C or SIGTERM: what ends `serve` and `demo` (a drain, not an abort).
pub(crate) async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
