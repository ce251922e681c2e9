//! `tessera`: the authorization server and its admin CLI.
//!
//! Layout: [`cli`] defines the commands and flags (a public interface operators script against:
//! extend, never rename); [`settings`] resolves flags > env > config file > defaults for
//! `serve`; [`admin`] runs the admin commands against the store; [`serve`] starts the server;
//! [`store`] opens the store a database URL names (SQLite or PostgreSQL).
#![forbid(unsafe_code)]

mod admin;
mod apply;
mod cli;
mod demo;
mod logging;
mod serve;
mod settings;
mod store;

use clap::Parser;

#[tokio::main]
async fn main() {
    let cli = cli::Cli::parse();
    let passwords = || settings::passwords(&cli.passwords);
    let mail = admin::MailSettings { smtp_url: cli.smtp_url.clone(), from: cli.email_from.clone() };
    let result = match cli.command {
        cli::Command::Serve(args) => match passwords() {
            Ok(p) => serve::run(cli.database.clone(), args, settings::KekSources::from_env(&cli.keys_at_rest), cli.allow_private_logout_uris, p, &mail).await,
            Err(e) => Err(e),
        },
        cli::Command::Demo(args) => demo::run(args).await,
        cli::Command::Migrate => admin::migrate(cli.database.as_deref()).await,
        cli::Command::Client(c) => admin::client(cli.database.as_deref(), cli.json, cli.allow_private_logout_uris, c).await,
        cli::Command::User(c) => match passwords() {
            Ok(p) => admin::user(cli.database.as_deref(), cli.json, &p, &mail, c).await,
            Err(e) => Err(e),
        },
        cli::Command::Api(c) => admin::api(cli.database.as_deref(), cli.json, c).await,
        cli::Command::Group(c) => admin::group(cli.database.as_deref(), cli.json, c).await,
        cli::Command::Audit(c) => admin::audit(cli.database.as_deref(), cli.json, c).await,
        cli::Command::Apply { ref file, dry_run, prune } => match passwords() {
            Ok(p) => admin::apply(cli.database.as_deref(), cli.json, &p, file, dry_run, prune).await,
            Err(e) => Err(e),
        },
        cli::Command::Export { output } => admin::export(cli.database.as_deref(), output.as_deref()).await,
        cli::Command::Keys(c) => admin::keys(cli.database.as_deref(), cli.json, &settings::KekSources::from_env(&cli.keys_at_rest), c).await,
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
