//! The CI tier (feature `ci-tier`): tests that need PostgreSQL (`postgres_cluster`,
//! `postgres_restart`), headless Chromium with chromedriver (`browser`, `account_browser`, `console_browser`, `device_browser`,
//! `oidc_browser`, `demo_browser`), or run the `tessera` binary (`cli`, `demo_cli`, `email_cli`, `signals` —
//! which also needs Debian's `promtool` — and the PostgreSQL ones). Other modules' CI-tier tests are marked `#[cfg(feature = "ci-tier")]` where
//! they stand.

mod account_browser;
mod account_mail_browser;
mod browser;
mod cli;
mod console_browser;
mod demo_browser;
mod demo_cli;
mod device_browser;
mod email_cli;
mod interop_oauth4webapi;
mod oidc_browser;
mod postgres_cluster;
mod postgres_restart;
mod rolling_restart;
mod signals;
mod spa_browser;
mod two_step_browser;
