//! The processes under test: Tessera (`tessera serve`), the peer (`node bench/peer/server.mjs`)
//! and the tessera-guard resource server (this binary's `resource-server` command). Each is a
//! child process on 127.0.0.1, killed when its handle is dropped.

use anyhow::{Context, bail};
use serde_json::Value;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Server {
    pub name: &'static str,
    child: Child,
    pub pid: u32,
    pub url: String,
    pub addr: SocketAddr,
    /// From spawn to the first successful answer of `ready_path`.
    pub ready: Duration,
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Server {
    /// SIGTERM (graceful), then SIGKILL if it has not exited within 5 s.
    pub fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        let _ = Command::new("kill").arg("-TERM").arg(self.pid.to_string()).status();
        let t = Instant::now();
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    pub fn exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }
}

/// Spawn `cmd`, wait for a stdout line starting with `marker` followed by the URL, then for
/// `ready_path` to answer 200. Stdout is drained afterwards; stderr goes to `log`.
fn spawn(name: &'static str, mut cmd: Command, marker: &str, ready_path: &str, log: &Path) -> anyhow::Result<Server> {
    let stderr = std::fs::File::create(log).with_context(|| format!("create {}", log.display()))?;
    let start = Instant::now();
    let mut child = cmd.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(stderr).spawn().with_context(|| format!("start {name}: {cmd:?}"))?;
    let pid = child.id();
    let stdout = child.stdout.take().context("stdout")?;
    let (tx, rx) = std::sync::mpsc::channel();
    let marker = marker.to_string();
    std::thread::spawn(move || {
        let mut sent = false;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if !sent {
                if let Some(rest) = line.find(&marker).map(|i| &line[i + marker.len()..]) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                    sent = true;
                }
            }
        }
    });
    let mut server = Server { name, child, pid, url: String::new(), addr: SocketAddr::from(([127, 0, 0, 1], 0)), ready: Duration::ZERO };
    let url = match rx.recv_timeout(Duration::from_secs(120)) {
        Ok(u) => u,
        Err(_) => {
            let tail = std::fs::read_to_string(log).unwrap_or_default();
            bail!(
                "{name} did not start (see {}):\n{}",
                log.display(),
                tail.lines().rev().take(20).collect::<Vec<_>>().into_iter().rev().collect::<Vec<_>>().join("\n")
            );
        }
    };
    let addr: SocketAddr = url.trim_start_matches("http://").trim_end_matches('/').parse().with_context(|| format!("{name} printed {url:?}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if get_status(addr, ready_path).ok() == Some(200) {
            break;
        }
        if Instant::now() > deadline || server.exited() {
            bail!("{name} never answered GET {ready_path} (see {})", log.display());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    server.ready = start.elapsed();
    server.url = url.trim_end_matches('/').to_string();
    server.addr = addr;
    Ok(server)
}

/// One blocking `GET` on a new connection; the status code.
pub fn get_status(addr: SocketAddr, path: &str) -> anyhow::Result<u16> {
    let mut s = std::net::TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    s.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(s, "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n")?;
    let mut buf = [0u8; 16];
    s.read_exact(&mut buf[..12])?;
    let line = std::str::from_utf8(&buf[..12])?;
    Ok(line.get(9..12).unwrap_or("").parse()?)
}

pub fn start_tessera(bin: &Path, database: &str, log: &Path) -> anyhow::Result<Server> {
    // The issuer named explicitly on 127.0.0.1 (the default would be http://localhost:PORT):
    // the load generator, the DPoP proofs' `htu` and the resource server all use this address.
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let (listen, issuer) = (format!("127.0.0.1:{port}"), format!("http://127.0.0.1:{port}"));
    let mut cmd = Command::new(bin);
    cmd.args(["--database", database, "serve", "--listen", &listen, "--issuer", &issuer, "--key-rotation-days", "0"]);
    spawn("tessera", cmd, "Tessera is listening on ", "/healthz", log)
}

pub fn start_peer(root: &Path, config: &Value, log: &Path) -> anyhow::Result<Server> {
    let mut cmd = Command::new("node");
    cmd.arg(root.join("bench/peer/server.mjs"))
        .env("OIDC_PROVIDER", peer_dir(root).join("node_modules/oidc-provider/lib/index.js"))
        .env("BENCH_PEER", config.to_string())
        .env("NODE_ENV", "production");
    spawn("oidc-provider", cmd, "listening on ", "/.well-known/openid-configuration", log)
}

pub fn start_resource_server(issuer: &str, audience: &str, scope: &str, log: &Path) -> anyhow::Result<Server> {
    let mut cmd = Command::new(std::env::current_exe()?);
    cmd.args(["resource-server", "--issuer", issuer, "--audience", audience, "--scope", scope]);
    spawn("resource server", cmd, "listening on ", "/healthz", log)
}

/// Where the harness installs the peer (ignored by git).
pub fn peer_dir(root: &Path) -> PathBuf {
    root.join("bench/.peer")
}

/// `npm install --prefix bench/.peer oidc-provider@9`, once.
pub fn install_peer(root: &Path) -> anyhow::Result<String> {
    let dir = peer_dir(root);
    let pkg = dir.join("node_modules/oidc-provider/package.json");
    if !pkg.exists() {
        eprintln!("==> npm install --prefix {} oidc-provider@9", dir.display());
        std::fs::create_dir_all(&dir)?;
        let st = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--loglevel=error", "--prefix"])
            .arg(&dir)
            .arg("oidc-provider@9")
            .stdout(Stdio::null())
            .status()
            .context("npm (Node.js) is needed for the peer; or pass --no-peer")?;
        if !st.success() {
            bail!("npm install oidc-provider@9 failed");
        }
    }
    let v: Value = serde_json::from_str(&std::fs::read_to_string(&pkg)?)?;
    Ok(v["version"].as_str().unwrap_or("?").to_string())
}

/// Run `tessera --database DB --json ARGS…` (an admin command); its JSON output.
pub fn tessera_cli(bin: &Path, database: &str, args: &[&str], stdin: Option<&str>) -> anyhow::Result<Value> {
    let mut child = Command::new(bin)
        .args(["--database", database, "--json"])
        .args(args)
        .stdin(if stdin.is_some() { Stdio::piped() } else { Stdio::null() })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| format!("run {}", bin.display()))?;
    if let (Some(input), Some(mut w)) = (stdin, child.stdin.take()) {
        w.write_all(input.as_bytes())?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("tessera {}: {}", args.join(" "), String::from_utf8_lossy(&out.stderr));
    }
    serde_json::from_slice(&out.stdout).with_context(|| format!("tessera {}: not JSON: {}", args.join(" "), String::from_utf8_lossy(&out.stdout)))
}

/// A fresh PostgreSQL database on the local server (trust auth), dropped by [`drop_pg`].
pub fn create_pg() -> anyhow::Result<(String, String)> {
    let name = format!("tessera_bench_{}_{}", std::process::id(), rand::random::<u32>());
    psql(&format!("CREATE DATABASE {name}"))?;
    Ok((format!("postgres://postgres@127.0.0.1:5432/{name}"), name))
}

pub fn drop_pg(name: &str) {
    if let Err(e) = psql(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")) {
        eprintln!("warning: {e:#}");
    }
}

fn psql(sql: &str) -> anyhow::Result<()> {
    let out = Command::new("psql")
        .args(["-h", "127.0.0.1", "-p", "5432", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-c", sql])
        .output()
        .context("psql is needed for --postgres")?;
    if !out.status.success() {
        bail!("psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}
