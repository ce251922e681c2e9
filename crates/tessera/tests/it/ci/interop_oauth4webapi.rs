//! Interop with an independent DPoP client we did not write: the npm package `oauth4webapi` on
//! the machine's Node.js (installed by this test into the ignored `tests/interop/.node`), through
//! the code flow with PKCE and DPoP (`dpop_jkt` at the authorization endpoint), a server-nonce
//! round trip (RFC 9449 §8), UserInfo with DPoP and a refresh, against a running Tessera.

use crate::common::*;
use serde_json::Value;
use std::path::PathBuf;
use std::process::Stdio;
use tessera_server::service::admin::NewClient;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const REDIRECT: &str = "http://127.0.0.1:9/callback";

/// `npm install oauth4webapi@3` into the ignored folder, once per process.
fn installed() -> PathBuf {
    static DIR: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    DIR.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/.node");
        if !dir.join("node_modules/oauth4webapi/package.json").exists() {
            let st = std::process::Command::new("npm")
                .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
                .arg(&dir)
                .arg("oauth4webapi@3")
                .status()
                .expect("npm (Node.js) is needed for the oauth4webapi interop test");
            assert!(st.success(), "npm install oauth4webapi@3 failed");
        }
        dir
    })
    .clone()
}

#[tokio::test]
async fn oauth4webapi_code_flow_with_pkce_dpop_nonce_userinfo_and_refresh() {
    let dir = installed();
    let s = TestServer::start_with(|c| c.dpop_nonces = true).await;
    let c = s
        .client(NewClient {
            name: "oauth4webapi".into(),
            redirect_uris: vec![REDIRECT.into()],
            scope: "openid profile offline_access notes.read".into(),
            public: true,
            ..Default::default()
        })
        .await;
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/interop/oauth4webapi.mjs");
    let mut node = tokio::process::Command::new("node")
        .arg(&script)
        .args([&s.url, &c.client.client_id, REDIRECT])
        .env("OAUTH4WEBAPI", dir.join("node_modules/oauth4webapi/build/index.js"))
        .current_dir(&dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node");
    let mut out = BufReader::new(node.stdout.take().unwrap()).lines();
    let mut err = node.stderr.take().unwrap();
    let first = tokio::time::timeout(std::time::Duration::from_secs(30), out.next_line()).await.expect("the authorization URL in time").unwrap();
    let Some(first) = first else {
        let mut text = String::new();
        tokio::io::AsyncReadExt::read_to_string(&mut err, &mut text).await.unwrap();
        panic!("oauth4webapi stopped: {text}");
    };
    let step = |line: Option<String>| -> Value { serde_json::from_str(&line.expect("a line from the script")).unwrap() };
    let first = Some(first);
    let authorize = step(first)["authorize"].as_str().unwrap().to_string();
    let callback = Browser::new(&s.url).authorize_and_allow(&authorize).await;
    let mut stdin = node.stdin.take().unwrap();
    stdin.write_all(format!("{callback}\n").as_bytes()).await.unwrap();
    drop(stdin);
    let last = tokio::time::timeout(std::time::Duration::from_secs(30), out.next_line()).await.expect("the result in time").unwrap();
    let status = node.wait().await.unwrap();
    let mut text = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut err, &mut text).await.unwrap();
    assert!(status.success() && last.is_some(), "oauth4webapi failed: {text}");
    let r = step(last);
    // oauth4webapi lowercases token_type (RFC 6749 §7.1: case-insensitive).
    assert_eq!((r["token_type"].as_str(), r["refreshed_token_type"].as_str()), (Some("dpop"), Some("dpop")), "{r}");
    assert!(r["nonce_retries"].as_u64().unwrap() >= 1, "the client learned the server's nonce through use_dpop_nonce: {r}");
    assert_eq!(r["rotated"], true);
    assert_eq!(r["userinfo_name"], "Alice Doe", "UserInfo with DPoP");
    // The tokens are bound to the client's key, as a resource server sees them.
    for t in ["access_token", "refreshed_access_token"] {
        let claims = verify_access_token(&s.url, r[t].as_str().unwrap(), API).await;
        assert_eq!(claims["cnf"]["jkt"], r["jkt"], "{t}");
    }
}
