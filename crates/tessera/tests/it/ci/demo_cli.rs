//! `tessera demo`, the real binary: one command starts the authorization server, the Notes API
//! and the Notes Client, prints the URL and the demo user's credentials, and the seed's flow
//! works with them; a second run on the same folder reuses every registration.
use crate::common::{Browser, hidden, location};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_tessera");

struct Demo {
    child: Child,
    out: String,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Demo {
    /// The value after `label` on a line of the banner.
    fn field(&self, label: &str) -> String {
        let line = self.out.lines().find(|l| l.trim_start().starts_with(label)).unwrap_or_else(|| panic!("no {label:?} in:\n{}", self.out));
        line.trim_start()[label.len()..].split_whitespace().next().unwrap().to_string()
    }

    fn client_id(&self) -> String {
        let start = self.out.find("(client_id ").unwrap_or_else(|| panic!("no client_id in:\n{}", self.out)) + "(client_id ".len();
        self.out[start..].split(')').next().unwrap().to_string()
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Start `tessera demo` and read its banner (bounded).
fn start(dir: &Path, ports: [u16; 4]) -> Demo {
    let mut child = Command::new(BIN)
        .args(["demo", "--dir"])
        .arg(dir)
        .args([
            "--port",
            &ports[0].to_string(),
            "--api-port",
            &ports[1].to_string(),
            "--client-port",
            &ports[2].to_string(),
            "--spa-port",
            &ports[3].to_string(),
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            if tx.send(line.unwrap_or_default()).is_err() {
                break;
            }
        }
    });
    let mut out = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) => {
                out.push_str(&line);
                out.push('\n');
                if line.starts_with("Ctrl-C stops all four.") {
                    break;
                }
            }
            Err(_) => panic!("tessera demo did not print its banner in time; got:\n{out}"),
        }
    }
    Demo { child, out }
}

/// Connect the Notes Client as the printed user; returns the home page after the callback.
async fn walk_the_flow(client_url: &str, as_url: &str, user: &str, password: &str) -> String {
    let app = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let home = app.get(client_url).send().await.unwrap().text().await.unwrap();
    assert!(home.contains("Connect your Notes account"), "{home}");
    let csrf = hidden(&home, "csrf").unwrap();
    let res = app
        .post(format!("{client_url}/connect"))
        .form(&[("csrf", csrf.as_str()), ("scope", "notes.read"), ("scope", "notes.write"), ("scope", "notes.delete")])
        .send()
        .await
        .unwrap();
    let authorize = location(&res);
    let tessera = Browser::new(as_url);
    let (_, login) = tessera.open_login(&authorize).await;
    let res = tessera.sign_in(&login, user, password).await;
    assert_eq!(res.status(), 303, "the printed credentials sign in");
    let res = tessera.get(&location(&res)).await;
    let callback = if res.status() == 303 {
        location(&res)
    } else {
        let consent = res.text().await.unwrap();
        for s in ["Read your notes", "Create and edit your notes", "Delete your notes"] {
            assert!(consent.contains(s), "consent lists {s:?}");
        }
        tessera.decide(&consent, "allow").await
    };
    assert!(callback.starts_with(&format!("{client_url}/callback?")), "{callback}");
    let res = app.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 303);
    app.get(client_url).send().await.unwrap().text().await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_starts_everything_and_is_idempotent() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("tessera-demo");
    let ports = [free_port(), free_port(), free_port(), free_port()];
    let (client_url, as_url) = (format!("http://127.0.0.1:{}", ports[2]), format!("http://localhost:{}", ports[0]));

    let first = start(&dir, ports);
    assert!(first.out.starts_with(&format!("Tessera demo is running. Open {client_url}\n")), "{}", first.out);
    let (user, password, client_id) = (first.field("username:"), first.field("password:"), first.client_id());
    assert_eq!(user, "demo");
    assert!(password.len() >= 15);
    let meta: serde_json::Value = reqwest::get(format!("{as_url}/.well-known/oauth-authorization-server")).await.unwrap().json().await.unwrap();
    assert_eq!(meta["issuer"], as_url.as_str());
    // The fourth server: the browser app, configured for this Tessera and API.
    let spa_url = format!("http://127.0.0.1:{}", ports[3]);
    assert!(first.out.contains(&format!("Notes SPA             {spa_url}")), "{}", first.out);
    let spa: serde_json::Value = reqwest::get(format!("{spa_url}/config.json")).await.unwrap().json().await.unwrap();
    assert_eq!((spa["issuer"].as_str(), spa["redirect_uri"].as_str()), (Some(as_url.as_str()), Some(format!("{spa_url}/callback").as_str())));
    let spa_client = spa["client_id"].as_str().unwrap().to_string();
    let api: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{}/", ports[1])).await.unwrap().json().await.unwrap();
    assert_eq!(api["resource"], "https://notes.example");
    let home = walk_the_flow(&client_url, &as_url, &user, &password).await;
    assert!(home.contains("Welcome to your notes") && home.contains("Try a refusal"), "{home}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("demo.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "demo.json (the client secret) is private");
    }
    drop(first);

    let second = start(&dir, ports);
    assert_eq!(second.field("password:"), password, "same user and password");
    assert_eq!(second.client_id(), client_id, "same client (its secret was kept in demo.json)");
    let spa: serde_json::Value = reqwest::get(format!("http://127.0.0.1:{}/config.json", ports[3])).await.unwrap().json().await.unwrap();
    assert_eq!(spa["client_id"].as_str(), Some(spa_client.as_str()), "same SPA client");
    let home = walk_the_flow(&client_url, &as_url, &user, &password).await;
    assert_eq!(home.matches("class=\"note-title\"").count(), 2, "welcome notes are not seeded twice");
}
