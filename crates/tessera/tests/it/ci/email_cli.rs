//! Account mail from the `tessera` binary (issue 15): `tessera user invite` mails the link itself
//! over real SMTP (the test crate's sink) with the global `--smtp-url` and `--email-from`, beside a
//! running server on the same database; the link sets a password and sign-in works. What needs
//! mail refuses to start without it.
use crate::common::smtp::SmtpSink;
use crate::common::*;
use serde_json::Value;

/// Run the binary off the async workers (the sink answers on them meanwhile).
async fn tessera(args: Vec<String>) -> (bool, String, String) {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        run_tessera(None, &args, None)
    })
    .await
    .unwrap()
}

fn strings(a: &[&str]) -> Vec<String> {
    a.iter().map(|s| s.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tessera_user_invite_mails_a_link_that_sets_a_password() {
    let s = TestServer::start().await;
    let sink = SmtpSink::start().await;
    let smtp = sink.url();
    let invite = |email: &str, smtp: &str| {
        strings(&[
            "--database",
            &s.db_url,
            "--json",
            "--smtp-url",
            smtp,
            "--email-from",
            "Tessera <id@tessera.test>",
            "user",
            "invite",
            "--email",
            email,
            "--name",
            "Erin Example",
            "--issuer",
            &s.url,
        ])
    };
    let (ok, out, err) = tessera(invite("erin@example.com", &smtp)).await;
    assert!(ok, "{err}");
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"));
    assert_eq!(
        (v["username"].as_str(), v["email"].as_str(), &v["email_verified"]),
        (Some("erin@example.com"), Some("erin@example.com"), &Value::Bool(false)),
        "{v}"
    );
    assert_eq!(v["invitation"]["email"], "erin@example.com");
    assert!(v["invitation"]["expires_at"].as_i64().unwrap() > s.svc.now() + 6 * 86_400, "{v}");
    let mail = sink.nth("erin@example.com", "You are invited", 1).await;
    assert!(mail.text.is_some() && mail.html.is_some(), "both parts");
    assert!(mail.text().contains("erin@example.com") && mail.text().contains("7 days"), "{}", mail.text());
    let link = mail.link(&format!("{}/invite?token=", s.url));

    // Nothing signs in before the password is chosen; the link sets it, once.
    assert!(s.svc.sign_in("erin@example.com", "", "10.3.3.3").await.unwrap().is_err());
    let b = Browser::new(&s.url);
    let html = b.get(&link).await.text().await.unwrap();
    assert!(html.contains("Welcome"), "{html}");
    let (csrf, token) = (hidden(&html, "csrf").unwrap(), hidden(&html, "token").unwrap());
    let pw = "erin's chosen password";
    let res = b.post_form("/invite", &[("csrf", &csrf), ("token", &token), ("new_password", pw), ("confirm_password", pw)]).await;
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("Your account is ready"));
    assert_eq!(location(&b.get("/account").await), "/account/signin", "choosing the password signed nobody in");
    let res = b.post_form("/invite", &[("csrf", &csrf), ("token", &token), ("new_password", pw), ("confirm_password", pw)]).await;
    assert_eq!(res.status(), 400, "the invitation works once");
    let html = b.get("/account/signin").await.text().await.unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    let res = b.post_form("/account/signin", &[("csrf", &csrf), ("username", "erin@example.com"), ("password", pw)]).await;
    assert_eq!(res.status(), 303, "signs in with it");
    let erin = s.svc.store.find_user_by_username("erin@example.com").await.unwrap().unwrap();
    assert!(erin.email_verified, "the invitation proved the address");
    assert_eq!(erin.name.as_deref(), Some("Erin Example"));

    // Plain text output, and a chosen username.
    let mut args = invite("frank@example.com", &smtp);
    args.retain(|a| a != "--json");
    args.extend(strings(&["--username", "frank"]));
    let (ok, out, err) = tessera(args).await;
    assert!(ok, "{err}");
    assert!(out.contains("invited frank@example.com: created user frank"), "{out}");
    sink.nth("frank@example.com", "You are invited", 1).await;

    // Without mail settings: refused before anything is made.
    let mut args = invite("gina@example.com", &smtp);
    let at = args.iter().position(|a| a == "--smtp-url").unwrap();
    args.drain(at..at + 2);
    let (ok, _, err) = tessera(args).await;
    assert!(!ok);
    assert!(err.contains("--smtp-url") && err.contains("TESSERA_SMTP_URL"), "{err}");
    // An SMTP server that cannot be reached: an error, and no user left behind.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let (ok, _, err) = tessera(invite("gina@example.com", &format!("smtp://{closed}"))).await;
    assert!(!ok);
    assert!(err.contains("could not be sent") && err.contains("no user was created"), "{err}");
    assert!(s.svc.store.find_user_by_username("gina@example.com").await.unwrap().is_none());
    // Without an issuer the link cannot be made.
    let mut args = invite("gina@example.com", &smtp);
    let at = args.iter().position(|a| a == "--issuer").unwrap();
    args.drain(at..at + 2);
    let (ok, _, err) = tessera(args).await;
    assert!(!ok);
    assert!(err.contains("--issuer"), "{err}");
}

/// `serve --self-registration` (or `TESSERA_SELF_REGISTRATION=true`) without SMTP is a start-up
/// error naming what to set; half the mail settings are one too.
#[tokio::test]
async fn self_registration_without_smtp_is_a_start_up_error() {
    let dir = tempfile::tempdir().unwrap();
    let db = format!("sqlite://{}/t.db", dir.path().display());
    let (ok, _, err) = run_tessera(Some(dir.path()), &["--database", &db, "serve", "--listen", "127.0.0.1:0", "--self-registration"], None);
    assert!(!ok);
    assert!(err.contains("self-registration") && err.contains("--smtp-url") && err.contains("--email-from"), "{err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tessera"))
        .args(["--database", &db, "serve", "--listen", "127.0.0.1:0"])
        .env("TESSERA_SELF_REGISTRATION", "true")
        .env_remove("TESSERA_SMTP_URL")
        .env_remove("TESSERA_EMAIL_FROM")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("TESSERA_SELF_REGISTRATION"), "{}", String::from_utf8_lossy(&out.stderr));
    let (ok, _, err) = run_tessera(Some(dir.path()), &["--database", &db, "--smtp-url", "smtp://127.0.0.1:2525", "serve", "--listen", "127.0.0.1:0"], None);
    assert!(!ok);
    assert!(err.contains("--email-from"), "{err}");
    let (ok, _, err) = run_tessera(Some(dir.path()), &["--database", &db, "--smtp-url", "ftp://x", "--email-from", "id@x.example", "serve"], None);
    assert!(!ok);
    assert!(err.contains("--smtp-url"), "{err}");
}
