//! `tessera-bench`: Tessera and a peer (`oidc-provider` v9) side by side on this machine.
//!
//! `cargo run --release -p tessera-bench -- [--duration SECS] [--connections N]
//! [--repetitions R] [--postgres] [--no-peer] [--scenarios a,b,…] [--json FILE] [--smoke]`
//!
//! It builds the `tessera` binary (release; debug with `--smoke`), starts it on 127.0.0.1 over a
//! fresh SQLite file (or a fresh PostgreSQL database with `--postgres`), registers an API, two
//! clients and a user through the CLI, restarts it (start-up on an existing database is
//! measured), installs and starts the peer with the same client ids and secrets, then runs each
//! scenario against each server in turn — alternating which goes first, `R` times — from this
//! process's own load generator (a fixed set of keep-alive connections, a bounded duration and
//! operation count). It prints a markdown table of medians: operations/s, p50/p99/max latency,
//! errors, server CPU seconds per 1,000 operations, peak RSS, and Tessera/peer throughput.
//!
//! `--smoke` (CI): debug build, 4 connections, 1 s per scenario, no warm-up, one repetition;
//! exits non-zero on any error, never on a figure.

mod http;
mod load;
mod procfs;
mod resource;
mod servers;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use load::{Kind, RunResult, RunSpec, Scenario, Target};
use serde_json::{Value, json};
use servers::Server;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

const RESOURCE: &str = "https://bench.example";
const SCOPE: &str = "bench.read";
const REDIRECT_URI: &str = "http://127.0.0.1:9/callback";
const USERNAME: &str = "alice";
const PASSWORD: &str = "correct horse battery staple";

#[derive(Parser, Debug)]
#[command(name = "tessera-bench", about = "Tessera and oidc-provider side by side: throughput, latency, CPU and memory per scenario")]
struct Args {
    #[command(subcommand)]
    cmd: Option<Cmd>,
    /// Measured seconds per run (default 10; 1 with --smoke).
    #[arg(long)]
    duration: Option<f64>,
    /// Unrecorded seconds before each run (default 2; 0 with --smoke).
    #[arg(long)]
    warmup: Option<f64>,
    /// Concurrent keep-alive connections (default 32; 4 with --smoke).
    #[arg(long)]
    connections: Option<usize>,
    /// Runs per scenario and server; medians are reported (default 3; 1 with --smoke).
    #[arg(long)]
    repetitions: Option<usize>,
    /// Tessera on a fresh PostgreSQL database at 127.0.0.1:5432 (user postgres) instead of SQLite.
    #[arg(long)]
    postgres: bool,
    /// Do not install or run the peer.
    #[arg(long)]
    no_peer: bool,
    /// Comma-separated subset of: client_credentials, introspection, refresh, refresh_dpop, guard_dpop, code_flow,
    /// password_sign_in, jwks, metadata, guard (default: all).
    #[arg(long, value_delimiter = ',')]
    scenarios: Vec<String>,
    /// CI mode: a debug build, short runs, non-zero exit on any error.
    #[arg(long)]
    smoke: bool,
    /// Also write every run and the medians as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Use this tessera binary instead of building one.
    #[arg(long)]
    tessera_bin: Option<PathBuf>,
    /// Load-generator threads (default 2). With one, a core sat idle ~15% of the time (perf:
    /// the generator's thread waiting behind a server thread on the other core), which capped
    /// the light scenarios; two let the generator use whatever the servers leave.
    #[arg(long, default_value_t = 2)]
    client_threads: usize,
    /// Hard bound on recorded operations per run.
    #[arg(long, default_value_t = 5_000_000)]
    max_ops: u64,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// (internal) The tessera-guard resource server the `guard` scenario calls.
    ResourceServer {
        #[arg(long)]
        issuer: String,
        #[arg(long)]
        audience: String,
        #[arg(long)]
        scope: String,
    },
}

fn main() {
    let args = Args::parse();
    let result = match args.cmd {
        Some(Cmd::ResourceServer { ref issuer, ref audience, ref scope }) => {
            let scope: &'static str = Box::leak(scope.clone().into_boxed_str());
            tokio::runtime::Runtime::new().map_err(anyhow::Error::from).and_then(|rt| rt.block_on(resource::serve(issuer, audience, scope)))
        }
        None => bench(&args),
    };
    if let Err(e) = result {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}

/// Per-run settings and what the report needs about the setup.
struct Setup {
    spec: RunSpec,
    repetitions: usize,
    scenarios: Vec<Scenario>,
}

fn bench(args: &Args) -> anyhow::Result<()> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent().context("workspace root")?.to_path_buf();
    let setup = Setup {
        spec: RunSpec {
            connections: args.connections.unwrap_or(if args.smoke { 4 } else { 32 }).max(1),
            warmup: Duration::from_secs_f64(args.warmup.unwrap_or(if args.smoke { 0.0 } else { 2.0 })),
            duration: Duration::from_secs_f64(args.duration.unwrap_or(if args.smoke { 1.0 } else { 10.0 }).max(0.1)),
            max_ops: args.max_ops,
        },
        repetitions: args.repetitions.unwrap_or(if args.smoke { 1 } else { 3 }).max(1),
        scenarios: if args.scenarios.is_empty() {
            Scenario::ALL.to_vec()
        } else {
            args.scenarios.iter().map(|s| Scenario::parse(s.trim())).collect::<Result<_, _>>()?
        },
    };
    let (cores, cpu) = procfs::machine();
    let bin = match &args.tessera_bin {
        Some(b) => b.clone(),
        None => build_tessera(&root, !args.smoke)?,
    };
    let tmp = tempfile::Builder::new().prefix("tessera-bench-").tempdir()?;
    let pg = if args.postgres { Some(servers::create_pg()?) } else { None };
    let database = match &pg {
        Some((url, _)) => url.clone(),
        None => format!("sqlite://{}/tessera.db", tmp.path().display()),
    };
    let result = run_all(args, &setup, &root, &bin, &database, tmp.path(), cores, &cpu);
    if let Some((_, name)) = &pg {
        // The servers are stopped by now (dropped inside run_all).
        servers::drop_pg(name);
    }
    result
}

fn build_tessera(root: &Path, release: bool) -> anyhow::Result<PathBuf> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = std::process::Command::new(cargo);
    cmd.current_dir(root).args(["build", "-p", "tessera"]);
    if release {
        cmd.arg("--release");
    }
    eprintln!("==> cargo build{} -p tessera", if release { " --release" } else { "" });
    if !cmd.status().context("cargo")?.success() {
        bail!("building tessera failed");
    }
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| root.join("target"));
    let target = if target.is_relative() { root.join(target) } else { target };
    Ok(target.join(if release { "release" } else { "debug" }).join("tessera"))
}

struct Registered {
    cc_id: String,
    cc_secret: String,
    web_id: String,
    web_secret: String,
}

/// Registers the API, the clients and one user per connection (`USERNAME-0` …): sign-in
/// throttling admits only a few concurrent attempts per account (each is counted before its
/// password is checked), and one person does not sign in from 32 connections at once.
fn register(bin: &Path, db: &str, users: usize) -> anyhow::Result<Registered> {
    servers::tessera_cli(bin, db, &["api", "create", "--identifier", RESOURCE, "--name", "Bench API", "--scope", &format!("{SCOPE}=Read bench data")], None)?;
    let cc = servers::tessera_cli(bin, db, &["client", "create", "--name", "bench-cc", "--scope", SCOPE, "--grant-type", "client_credentials"], None)?;
    let web = servers::tessera_cli(bin, db, &["client", "create", "--name", "bench-web", "--redirect-uri", REDIRECT_URI, "--scope", SCOPE], None)?;
    for i in 0..users {
        servers::tessera_cli(bin, db, &["user", "create", "--username", &format!("{USERNAME}-{i}"), "--password-stdin"], Some(&format!("{PASSWORD}\n")))?;
    }
    let s = |v: &Value, k: &str| v[k].as_str().map(str::to_string).with_context(|| format!("client create printed no {k}"));
    Ok(Registered { cc_id: s(&cc, "client_id")?, cc_secret: s(&cc, "client_secret")?, web_id: s(&web, "client_id")?, web_secret: s(&web, "client_secret")? })
}

fn target(kind: Kind, server: &Server, reg: &Registered, resource_server: Option<std::net::SocketAddr>) -> Target {
    Target {
        kind,
        name: server.name,
        addr: server.addr,
        issuer: server.url.clone(),
        cc_auth: http::basic(&reg.cc_id, &reg.cc_secret),
        web_id: reg.web_id.clone(),
        web_auth: http::basic(&reg.web_id, &reg.web_secret),
        redirect_uri: REDIRECT_URI.into(),
        resource: RESOURCE.into(),
        scope: SCOPE.into(),
        username: USERNAME.into(),
        password: PASSWORD.into(),
        resource_server,
    }
}

/// Idle resident memory after a short settle.
fn idle_rss_mb(pid: u32) -> f64 {
    std::thread::sleep(Duration::from_millis(500));
    procfs::rss_kb(pid).unwrap_or(0) as f64 / 1024.0
}

/// Argon2id's own cost with the server's parameters (argon2's defaults): every core hashing at
/// once, as the server's hashing threads do under sign-in load (one core alone runs faster: the
/// hashes share memory bandwidth), each into memory allocated once. Returns the time per
/// verification per core, so `cores / cost` is the machine's hashing limit.
fn argon2_verify_cost(per_core: usize, cores: usize) -> anyhow::Result<Duration> {
    use argon2::{Argon2, Block, Params};
    let salt: [u8; 16] = rand::random();
    let hash = |blocks: &mut [Block]| {
        let mut out = [0u8; 32];
        Argon2::default().hash_password_into_with_memory(PASSWORD.as_bytes(), &salt, &mut out, blocks).map_err(|e| anyhow::anyhow!("{e}"))
    };
    let started = std::sync::Barrier::new(cores + 1);
    let elapsed = std::thread::scope(|scope| -> anyhow::Result<Duration> {
        let workers: Vec<_> = (0..cores)
            .map(|_| {
                scope.spawn(|| -> anyhow::Result<()> {
                    let mut blocks = vec![Block::default(); Params::default().block_count()];
                    hash(&mut blocks)?; // first touch of the memory, not timed
                    started.wait();
                    for _ in 0..per_core {
                        hash(&mut blocks)?;
                    }
                    Ok(())
                })
            })
            .collect();
        started.wait();
        let t = Instant::now();
        for w in workers {
            w.join().map_err(|_| anyhow::anyhow!("argon2 thread panicked"))??;
        }
        Ok(t.elapsed())
    })?;
    Ok(elapsed / per_core.max(1) as u32)
}

struct Startup {
    cold_ms: f64,
    ready_ms: f64,
    idle_mb: f64,
}

#[allow(clippy::too_many_arguments)]
fn run_all(args: &Args, setup: &Setup, root: &Path, bin: &Path, database: &str, dir: &Path, cores: usize, cpu: &str) -> anyhow::Result<()> {
    let rt = if args.client_threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()?
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(args.client_threads).enable_all().build()?
    };
    eprintln!("==> tessera: first start on a new database ({})", if args.postgres { "PostgreSQL" } else { "SQLite" });
    let first = servers::start_tessera(bin, database, &dir.join("tessera-first.log"))?;
    let cold_ms = first.ready.as_secs_f64() * 1000.0;
    let reg = register(bin, database, setup.spec.connections)?;
    drop(first);
    let tessera = servers::start_tessera(bin, database, &dir.join("tessera.log"))?;
    let tessera_startup = Startup { cold_ms, ready_ms: tessera.ready.as_secs_f64() * 1000.0, idle_mb: idle_rss_mb(tessera.pid) };
    eprintln!("    ready in {:.0} ms on the existing database, idle RSS {:.1} MB", tessera_startup.ready_ms, tessera_startup.idle_mb);

    let (peer, peer_version, peer_startup) = if args.no_peer {
        (None, None, None)
    } else {
        let version = servers::install_peer(root)?;
        eprintln!("==> oidc-provider {version} on node");
        let config = json!({
            "clients": [
                { "client_id": reg.cc_id, "client_secret": reg.cc_secret, "grant_types": ["client_credentials"], "redirect_uris": [] },
                { "client_id": reg.web_id, "client_secret": reg.web_secret, "grant_types": ["authorization_code", "refresh_token"], "redirect_uris": [REDIRECT_URI] },
            ],
            "resource": RESOURCE, "scope": SCOPE, "account": USERNAME,
        });
        let p = servers::start_peer(root, &config, &dir.join("peer.log"))?;
        let st = Startup { cold_ms: p.ready.as_secs_f64() * 1000.0, ready_ms: p.ready.as_secs_f64() * 1000.0, idle_mb: idle_rss_mb(p.pid) };
        (Some(p), Some(version), Some(st))
    };

    let guard = if setup.scenarios.iter().any(|s| s.at_resource_server()) {
        Some(servers::start_resource_server(&tessera.url, RESOURCE, SCOPE, &dir.join("resource.log"))?)
    } else {
        None
    };
    let t_target = Arc::new(target(Kind::Tessera, &tessera, &reg, guard.as_ref().map(|g| g.addr)));
    let p_target = peer.as_ref().map(|p| Arc::new(target(Kind::Peer, p, &reg, None)));

    let argon2_per_core = if args.smoke { 1 } else { 30 };
    // The hashing limit measured right before and right after each sign-in run (this VM's speed
    // drifts by ±20 % over minutes, so a limit measured minutes away misstates the fraction).
    let mut sign_in_limits: Vec<(f64, Duration)> = Vec::new();

    let mut results: HashMap<(Scenario, Kind), Vec<RunResult>> = HashMap::new();
    let mut failures = Vec::new();
    for rep in 0..setup.repetitions {
        for &s in &setup.scenarios {
            let mut order: Vec<(&Arc<Target>, u32)> =
                vec![(&t_target, if s.at_resource_server() { guard.as_ref().map(|g| g.pid).unwrap_or(tessera.pid) } else { tessera.pid })];
            if let (Some(pt), Some(p)) = (&p_target, &peer) {
                if pt.supports(s) {
                    order.push((pt, p.pid));
                }
            }
            if rep % 2 == 1 {
                order.reverse();
            }
            for (t, pid) in order {
                if !t.supports(s) {
                    continue;
                }
                let hashing = s == Scenario::PasswordSignIn && t.kind == Kind::Tessera;
                let before = if hashing { Some(argon2_verify_cost(argon2_per_core, cores)?) } else { None };
                let r = rt.block_on(load::run(s, t.clone(), &setup.spec, pid)).with_context(|| format!("{} against {}", s.name(), t.name))?;
                if let Some(before) = before {
                    // The faster of the two, so the limit is never understated.
                    sign_in_limits.push((r.rate(), before.min(argon2_verify_cost(argon2_per_core, cores)?)));
                }
                eprintln!(
                    "    [{}/{}] {:<18} {:<14} {:>9.0} ops/s  p50 {:>7.2} ms  p99 {:>7.2} ms  max {:>7.1} ms  errors {}",
                    rep + 1,
                    setup.repetitions,
                    s.name(),
                    t.name,
                    r.rate(),
                    r.pct_ms(50.0),
                    r.pct_ms(99.0),
                    r.max_ms(),
                    r.errors
                );
                if let Some(e) = &r.first_error {
                    eprintln!("      first error: {e}");
                }
                if r.errors > 0 || r.ops == 0 {
                    failures.push(format!(
                        "{} against {}: {} errors, {} operations; first error: {}",
                        s.name(),
                        t.name,
                        r.errors,
                        r.ops,
                        r.first_error.as_deref().unwrap_or("-")
                    ));
                }
                results.entry((s, t.kind)).or_default().push(r);
            }
        }
    }
    let peak_hwm = |pid: u32| procfs::hwm_kb(pid).unwrap_or(0) as f64 / 1024.0;
    let report = Report {
        cores,
        cpu,
        args,
        setup,
        database: if args.postgres { "PostgreSQL (fresh database, 127.0.0.1:5432)" } else { "SQLite (WAL, fresh file)" },
        tessera: &tessera_startup,
        tessera_hwm: peak_hwm(tessera.pid),
        peer: peer_startup.as_ref(),
        peer_hwm: peer.as_ref().map(|p| peak_hwm(p.pid)),
        peer_version: peer_version.as_deref(),
        // The fastest of the measurements around the sign-in runs: never understated.
        argon2: sign_in_limits.iter().map(|&(_, d)| d).min(),
        sign_in_limits: &sign_in_limits,
        results: &results,
    };
    println!("{}", report.markdown());
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report.json())?).with_context(|| format!("write {}", path.display()))?;
        eprintln!("==> wrote {}", path.display());
    }
    drop(guard);
    drop(peer);
    drop(tessera);
    if args.smoke && !failures.is_empty() {
        bail!("smoke run had errors:\n{}", failures.join("\n"));
    }
    Ok(())
}

fn median(mut v: Vec<f64>) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let n = v.len();
    if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2.0 }
}

struct Summary {
    rate: f64,
    p50: f64,
    p99: f64,
    max: f64,
    errors: u64,
    ops: u64,
    cpu_1k: f64,
    gen_cpu_1k: f64,
    rss_mb: f64,
}

fn summarize(runs: &[RunResult]) -> Summary {
    let m = |f: &dyn Fn(&RunResult) -> f64| median(runs.iter().map(f).collect());
    Summary {
        rate: m(&|r| r.rate()),
        p50: m(&|r| r.pct_ms(50.0)),
        p99: m(&|r| r.pct_ms(99.0)),
        max: m(&|r| r.max_ms()),
        errors: runs.iter().map(|r| r.errors).sum(),
        ops: runs.iter().map(|r| r.ops).sum(),
        cpu_1k: m(&|r| r.cpu_per_1k()),
        gen_cpu_1k: m(&|r| r.generator_cpu_per_1k()),
        rss_mb: m(&|r| r.peak_rss_kb as f64 / 1024.0),
    }
}

struct Report<'a> {
    cores: usize,
    cpu: &'a str,
    args: &'a Args,
    setup: &'a Setup,
    database: &'a str,
    tessera: &'a Startup,
    tessera_hwm: f64,
    peer: Option<&'a Startup>,
    peer_hwm: Option<f64>,
    peer_version: Option<&'a str>,
    argon2: Option<Duration>,
    /// Each Tessera sign-in run's rate and the Argon2id cost measured around it.
    sign_in_limits: &'a [(f64, Duration)],
    results: &'a HashMap<(Scenario, Kind), Vec<RunResult>>,
}

/// Tessera/peer throughput: the median over repetitions of the ratio of each repetition's two
/// runs, which ran back to back (this VM's speed drifts over minutes; adjacent runs share it).
fn paired_ratio(t: &[RunResult], p: &[RunResult]) -> Option<f64> {
    let ratios: Vec<f64> = t.iter().zip(p).filter(|(_, p)| p.rate() > 0.0).map(|(t, p)| t.rate() / p.rate()).collect();
    if ratios.is_empty() { None } else { Some(median(ratios)) }
}

/// Sign-in rate as a fraction of the hashing limit, per run (limit measured around that run).
fn sign_in_fractions(cores: usize, limits: &[(f64, Duration)]) -> Vec<f64> {
    limits.iter().map(|&(rate, cost)| rate * cost.as_secs_f64() / cores as f64).collect()
}

fn fmt_ms(v: f64) -> String {
    if v < 10.0 {
        format!("{v:.2}")
    } else if v < 100.0 {
        format!("{v:.1}")
    } else {
        format!("{v:.0}")
    }
}

impl Report<'_> {
    fn markdown(&self) -> String {
        let mut out = String::new();
        let s = &self.setup.spec;
        out.push_str(&format!(
            "\n## Tessera vs oidc-provider — {} cores, {}\n\nTessera on {}, {} build; peer: {}; load: {} connections, {} s measured after {} s warm-up, {} repetition(s), medians; one load-generator process on the same machine ({} thread(s)).\n\n",
            self.cores,
            self.cpu,
            self.database,
            if self.args.smoke { "debug" } else { "release" },
            match self.peer_version {
                Some(v) => format!("oidc-provider {v} on node {}, in-memory adapter", node_version()),
                None => "not run".into(),
            },
            s.connections,
            s.duration.as_secs_f64(),
            s.warmup.as_secs_f64(),
            self.setup.repetitions,
            self.args.client_threads,
        ));
        out.push_str("| scenario | server | ops/s | p50 ms | p99 ms | max ms | errors | server CPU s / 1k ops | generator CPU s / 1k ops | peak RSS MB | Tessera / peer (median of back-to-back pairs) |\n");
        out.push_str("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n");
        for &sc in &self.setup.scenarios {
            let (t_runs, p_runs) = (self.results.get(&(sc, Kind::Tessera)), self.results.get(&(sc, Kind::Peer)));
            let (t, p) = (t_runs.map(|r| summarize(r)), p_runs.map(|r| summarize(r)));
            let ratio = match t_runs.zip(p_runs).and_then(|(t, p)| paired_ratio(t, p)) {
                Some(r) => format!("{r:.1}×"),
                None => "—".into(),
            };
            for (name, sum, ratio) in [("Tessera", &t, ratio.as_str()), ("oidc-provider", &p, "")] {
                match sum {
                    Some(x) => out.push_str(&format!(
                        "| {} | {name} | {:.0} | {} | {} | {} | {} | {:.3} | {:.3} | {:.1} | {ratio} |\n",
                        sc.name(),
                        x.rate,
                        fmt_ms(x.p50),
                        fmt_ms(x.p99),
                        fmt_ms(x.max),
                        x.errors,
                        x.cpu_1k,
                        x.gen_cpu_1k,
                        x.rss_mb
                    )),
                    None if name == "oidc-provider" && self.peer.is_some() => {
                        out.push_str(&format!("| {} | {name} | — | — | — | — | — | — | — | — | |\n", sc.name()))
                    }
                    None => {}
                }
            }
        }
        out.push_str("\n| process | first start (new database) ms | start-up to ready (existing database) ms | idle RSS MB | peak RSS MB (whole run) |\n|---|---:|---:|---:|---:|\n");
        out.push_str(&format!(
            "| Tessera | {:.0} | {:.0} | {:.1} | {:.1} |\n",
            self.tessera.cold_ms, self.tessera.ready_ms, self.tessera.idle_mb, self.tessera_hwm
        ));
        if let (Some(p), Some(hwm)) = (self.peer, self.peer_hwm) {
            out.push_str(&format!("| oidc-provider | {:.0} | — | {:.1} | {:.1} |\n", p.cold_ms, p.idle_mb, hwm));
        }
        if let (Some(cost), Some(runs)) = (self.argon2, self.results.get(&(Scenario::PasswordSignIn, Kind::Tessera))) {
            let limit = self.cores as f64 / cost.as_secs_f64();
            let got = summarize(runs).rate;
            let per_run = sign_in_fractions(self.cores, self.sign_in_limits);
            let list = per_run.iter().map(|f| format!("{:.0}%", 100.0 * f)).collect::<Vec<_>>().join(", ");
            out.push_str(&format!(
                "\nArgon2id (m=19456 KiB, t=2, p=1): {:.1} ms per verification with every core hashing (the fastest measurement of the run) → at most {:.0} sign-ins/s on {} cores; measured {:.0}/s = {:.0}% of that limit. Against the limit measured just before and after each sign-in run (the faster of the two): {} (median {:.0}%).\n",
                cost.as_secs_f64() * 1000.0,
                limit,
                self.cores,
                got,
                100.0 * got / limit,
                list,
                100.0 * median(per_run.clone()),
            ));
        }
        out.push_str("\nOperations:\n");
        for &sc in &self.setup.scenarios {
            out.push_str(&format!("- `{}`: {}\n", sc.name(), sc.describe()));
        }
        out
    }

    fn json(&self) -> Value {
        let mut runs = Vec::new();
        let mut medians = Vec::new();
        for &sc in &self.setup.scenarios {
            for kind in [Kind::Tessera, Kind::Peer] {
                let Some(rs) = self.results.get(&(sc, kind)) else { continue };
                let server = if kind == Kind::Tessera { "tessera" } else { "oidc-provider" };
                for (i, r) in rs.iter().enumerate() {
                    runs.push(json!({
                        "scenario": sc.name(), "server": server, "repetition": i + 1, "ops": r.ops, "errors": r.errors, "seconds": r.secs,
                        "ops_per_sec": r.rate(), "p50_ms": r.pct_ms(50.0), "p99_ms": r.pct_ms(99.0), "max_ms": r.max_ms(),
                        "server_cpu_secs": r.cpu_secs, "cpu_secs_per_1k": r.cpu_per_1k(),
                        "generator_cpu_secs": r.generator_cpu_secs, "generator_cpu_secs_per_1k": r.generator_cpu_per_1k(), "peak_rss_mb": r.peak_rss_kb as f64 / 1024.0,
                        "first_error": r.first_error,
                    }));
                }
                let m = summarize(rs);
                medians.push(json!({
                    "scenario": sc.name(), "server": server, "ops_per_sec": m.rate, "p50_ms": m.p50, "p99_ms": m.p99, "max_ms": m.max,
                    "errors": m.errors, "ops": m.ops, "cpu_secs_per_1k": m.cpu_1k, "generator_cpu_secs_per_1k": m.gen_cpu_1k, "peak_rss_mb": m.rss_mb,
                }));
            }
        }
        json!({
            "machine": { "cores": self.cores, "cpu": self.cpu },
            "settings": {
                "connections": self.setup.spec.connections, "duration_secs": self.setup.spec.duration.as_secs_f64(),
                "warmup_secs": self.setup.spec.warmup.as_secs_f64(), "repetitions": self.setup.repetitions,
                "database": self.database, "smoke": self.args.smoke, "client_threads": self.args.client_threads,
            },
            "tessera": { "first_start_ms": self.tessera.cold_ms, "ready_ms": self.tessera.ready_ms, "idle_rss_mb": self.tessera.idle_mb, "peak_rss_mb": self.tessera_hwm },
            "peer": self.peer.map(|p| json!({ "version": self.peer_version, "ready_ms": p.ready_ms, "idle_rss_mb": p.idle_mb, "peak_rss_mb": self.peer_hwm })),
            "argon2_verify_ms": self.argon2.map(|d| d.as_secs_f64() * 1000.0),
            "sign_in_runs": self.sign_in_limits.iter().map(|&(rate, cost)| json!({
                "ops_per_sec": rate, "argon2_verify_ms": cost.as_secs_f64() * 1000.0, "limit_per_sec": self.cores as f64 / cost.as_secs_f64(),
            })).collect::<Vec<_>>(),
            "ratios": self.setup.scenarios.iter().filter_map(|&sc| {
                let r = paired_ratio(self.results.get(&(sc, Kind::Tessera))?, self.results.get(&(sc, Kind::Peer))?)?;
                Some(json!({ "scenario": sc.name(), "tessera_over_peer": r }))
            }).collect::<Vec<_>>(),
            "medians": medians,
            "runs": runs,
        })
    }
}

fn node_version() -> String {
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|| "?".into())
}
