//! Tidy: the invariants ARCHITECTURE.md states about the tree itself, checked (issue 14): every
//! module opens with a `//!` doc, the protocol core's dependency closure has no I/O crate, only
//! the HTTP crate (and the binary and examples that serve HTTP) knows axum, every crate has a
//! code-map heading, and the vendored sqlx-core patch is still needed.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().unwrap()
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// The workspace's own crates: (folder relative to the root, package name).
fn crates() -> Vec<(String, String)> {
    let root = root();
    let mut out = Vec::new();
    for parent in ["crates", "examples"] {
        for e in std::fs::read_dir(root.join(parent)).unwrap().flatten() {
            let manifest = e.path().join("Cargo.toml");
            if let Ok(text) = std::fs::read_to_string(&manifest) {
                out.push((format!("{parent}/{}", e.file_name().to_string_lossy()), package_name(&text)));
            }
        }
    }
    out.push(("bench".into(), package_name(&std::fs::read_to_string(root.join("bench/Cargo.toml")).unwrap())));
    out.sort();
    out
}

fn package_name(manifest: &str) -> String {
    manifest.lines().find_map(|l| l.trim().strip_prefix("name = ")).map(|n| n.trim_matches('"').to_string()).unwrap()
}

/// `cargo tree -e normal` of one package (to `depth`, or whole): the names of what it links into
/// a product build.
fn dependencies(package: &str, depth: Option<u32>) -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(root()).args(["tree", "--locked", "--offline", "-e", "normal", "--prefix", "none", "-f", "{p}", "-p", package]);
    if let Some(depth) = depth {
        cmd.args(["--depth", &depth.to_string()]);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "cargo tree -p {package}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().filter_map(|l| l.split_whitespace().next()).map(str::to_string).collect()
}

#[test]
fn every_module_opens_with_a_doc_comment() {
    let root = root();
    let mut files = Vec::new();
    for (dir, _) in crates() {
        rust_files(&root.join(dir).join("src"), &mut files);
    }
    assert!(files.len() > 50, "found the sources: {}", files.len());
    let missing: Vec<_> = files
        .iter()
        .filter(|f| {
            let text = std::fs::read_to_string(f).unwrap();
            !text.lines().find(|l| !l.trim().is_empty()).is_some_and(|l| l.starts_with("//!"))
        })
        .map(|f| f.strip_prefix(&root).unwrap().display().to_string())
        .collect();
    assert!(missing.is_empty(), "modules without a `//!` doc: {missing:?}");
}

#[test]
fn the_protocol_core_has_no_io_crate_in_its_closure() {
    let deps = dependencies("tessera-protocol", None);
    assert!(deps.iter().any(|d| d == "tessera-protocol"), "{deps:?}");
    const IO: &[&str] = &["tokio", "mio", "socket2", "hyper", "axum", "tower", "reqwest", "sqlx", "rusqlite", "libsqlite3-sys", "async-std"];
    let io: Vec<_> = deps.iter().filter(|d| IO.contains(&d.as_str())).collect();
    assert!(io.is_empty(), "tessera-protocol links I/O crates: {io:?}");
}

#[test]
fn only_the_http_layer_knows_http_frameworks() {
    // The service, the storage layer and its backends, the core and JOSE never link axum or the
    // page templates, nor name hyper, tower or tower-http themselves (reqwest, the back-channel
    // logout client, brings its own hyper and tower-http): a handler type in a service is a
    // compile error.
    for package in
        ["tessera-server", "tessera-storage", "tessera-storage-sqlite", "tessera-storage-postgres", "tessera-protocol", "tessera-jose", "tessera-dpop"]
    {
        let closure = dependencies(package, None);
        let http: Vec<_> = closure.iter().filter(|d| ["axum", "axum-core", "askama"].contains(&d.as_str())).collect();
        assert!(http.is_empty(), "{package} links {http:?}");
        let direct = dependencies(package, Some(1));
        let http: Vec<_> = direct.iter().filter(|d| ["hyper", "hyper-util", "tower", "tower-http"].contains(&d.as_str())).collect();
        assert!(http.is_empty(), "{package} depends on {http:?}");
    }
    assert!(dependencies("tessera-http", Some(1)).iter().any(|d| d == "axum"), "the HTTP crate is the one with axum");
}

#[test]
fn every_crate_has_a_code_map_heading() {
    let arch = std::fs::read_to_string(root().join("ARCHITECTURE.md")).unwrap();
    let headings: Vec<&str> = arch.lines().filter(|l| l.starts_with("### ")).collect();
    for (dir, name) in crates() {
        let path = if dir == "bench" { "`bench/`".to_string() } else { format!("`{dir}`") };
        assert!(headings.iter().any(|h| h.contains(&path)), "ARCHITECTURE.md has no code-map heading for {dir} ({name}): {headings:?}");
    }
}

/// The vendored sqlx-core (vendor/README.md) is the version the lock file resolves, its patch
/// is in place, and no newer sqlx-core the registry has fetched carries the fix upstream (when
/// one does, this fails: drop the copy).
#[test]
fn the_vendored_sqlx_core_patch_is_still_needed() {
    let root = root();
    let vendored = std::fs::read_to_string(root.join("vendor/sqlx-core/Cargo.toml")).unwrap();
    let version = vendored
        .lines()
        .skip_while(|l| l.trim() != "[package]")
        .find_map(|l| l.trim().strip_prefix("version = "))
        .map(|v| v.trim_matches('"').to_string())
        .unwrap();
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).unwrap();
    assert!(lock.contains(&format!("name = \"sqlx-core\"\nversion = \"{version}\"\n")), "Cargo.lock resolves the vendored sqlx-core {version}");
    assert!(!lock.contains("[[patch.unused]]"), "a [patch] in Cargo.toml is unused: the vendored copy no longer matches the sqlx release");
    let socket = std::fs::read_to_string(root.join("vendor/sqlx-core/src/net/socket/mod.rs")).unwrap();
    assert!(socket.contains("Tessera's patch") && socket.contains("set_nodelay(true)"), "the patch is in the vendored copy");

    // Any newer sqlx-core the machine's cargo registry holds (a bump fetches it): has upstream
    // put `set_nodelay` back into connect_tcp?
    let home = std::env::var("CARGO_HOME").map(PathBuf::from).unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cargo"));
    let parse = |v: &str| v.split(['.', '-']).take(3).map(|n| n.parse::<u64>().unwrap_or(0)).collect::<Vec<_>>();
    for index in std::fs::read_dir(home.join("registry/src")).into_iter().flatten().flatten() {
        for krate in std::fs::read_dir(index.path()).into_iter().flatten().flatten() {
            let name = krate.file_name().to_string_lossy().to_string();
            let Some(v) = name.strip_prefix("sqlx-core-") else { continue };
            if parse(v) <= parse(&version) {
                continue;
            }
            let upstream = std::fs::read_to_string(krate.path().join("src/net/socket/mod.rs")).unwrap_or_default();
            let connect = upstream.split("fn connect_tcp").nth(1).unwrap_or("");
            assert!(!connect.contains("set_nodelay(true)"), "sqlx-core {v} sets TCP_NODELAY itself: move to it and drop vendor/sqlx-core");
        }
    }
}
