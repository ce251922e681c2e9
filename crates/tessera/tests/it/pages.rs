//! The pages people see (issue 15): their language — OpenID Connect `ui_locales` first, then
//! `Accept-Language`, else English, with German complete — and the operator's branding
//! (product name, logo, accent colour, CSS), over real HTTP.
use crate::common::*;
use tessera_server::service::Branding;
use tessera_server::service::admin::NewClient;

const CB: &str = "https://app.example/cb";

async fn page_with(b: &Browser, path: &str, accept_language: Option<&str>) -> (u16, String) {
    let mut req = b.http.get(format!("{}{path}", b.base));
    if let Some(l) = accept_language {
        req = req.header("Accept-Language", l);
    }
    let res = req.send().await.unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

#[tokio::test]
async fn ui_locales_then_accept_language_choose_the_language() {
    let s = TestServer::start().await;
    let c = s.client(NewClient { name: "Notes".into(), redirect_uris: vec![CB.into()], scope: "openid notes.read".into(), ..Default::default() }).await;
    let (id, secret) = (c.client.client_id, c.client_secret.unwrap());
    // ui_locales=de: the sign-in and consent pages in German, whatever the browser prefers.
    let b = Browser::new(&s.url);
    let (_, challenge) = pkce_pair();
    let url = format!("{}&ui_locales=de", s.authorize_url(&id, CB, "openid notes.read", "st", Some(&challenge)));
    let login = location(&b.get(&url).await);
    let (_, html) = page_with(&b, &login, Some("en-US,en;q=0.9")).await;
    assert!(
        html.contains("<html lang=\"de\">") && html.contains("Benutzername") && html.contains("um mit <strong id=\"client-name\">Notes</strong> fortzufahren"),
        "{html}"
    );
    let res = b.sign_in(&html, USER, "wrong password").await;
    let wrong = res.text().await.unwrap();
    assert!(wrong.contains("Benutzername oder Passwort ist falsch."), "refusals too: {wrong}");
    let res = b.sign_in(&wrong, USER, PASSWORD).await;
    let (_, consent) = page_with(&b, &location(&res), None).await;
    assert!(consent.contains("möchte auf Ihr Konto zugreifen") && consent.contains(">Erlauben<"), "{consent}");
    let back = b.decide(&consent, "allow").await;
    assert!(query(&back).contains_key("code"), "the German form works: {back}");
    let _ = secret;

    // Without ui_locales: Accept-Language, by weight; unknown languages fall back to English.
    let fresh = Browser::new(&s.url);
    let (_, html) = page_with(&fresh, "/account/signin", Some("fr-FR, de;q=0.8, en;q=0.5")).await;
    assert!(html.contains("lang=\"de\"") && html.contains("Ihr Konto"), "{html}");
    let (_, html) = page_with(&fresh, "/account/signin", Some("fr-FR")).await;
    assert!(html.contains("lang=\"en\"") && html.contains("Your account"), "{html}");
    let (_, html) = page_with(&fresh, "/account/signin", Some(&"x".repeat(3000))).await;
    assert!(html.contains("lang=\"en\""), "a hostile header is ignored");
    // Error pages follow the language too.
    let (status, html) = page_with(&fresh, "/consent?request=nope", Some("de")).await;
    assert!(status == 400 && html.contains("Diese Anmeldeanfrage ist abgelaufen"), "{status} {html}");
    // Discovery lists the languages.
    let meta: serde_json::Value = reqwest::get(format!("{}/.well-known/openid-configuration", s.url)).await.unwrap().json().await.unwrap();
    assert_eq!(meta["ui_locales_supported"], serde_json::json!(["en", "de"]));
}

#[tokio::test]
async fn branding_names_colours_and_styles_the_pages() {
    let s = TestServer::start_with(|c| {
        c.branding = Branding {
            product_name: "Acme ID".into(),
            logo_url: Some("https://cdn.acme.example/logo.svg".into()),
            accent: Some("#aa3300".into()),
            css: Some(".card { border: 2px solid #aa3300; }".into()),
            template_dir: None,
        }
    })
    .await;
    let b = Browser::new(&s.url);
    let res = b.get("/account/signin").await;
    let csp = res.headers()["content-security-policy"].to_str().unwrap().to_string();
    let html = res.text().await.unwrap();
    assert!(html.contains("— Acme ID</title>") && html.contains("id=\"brand-name\">Acme ID<") && !html.contains("Tessera"), "{html}");
    assert!(html.contains("src=\"https://cdn.acme.example/logo.svg\"") && html.contains("/static/brand.css"), "{html}");
    assert!(csp.contains("img-src 'self' https://cdn.acme.example") && csp.contains("frame-ancestors 'none'"), "{csp}");
    let css = b.get("/static/brand.css").await.text().await.unwrap();
    assert!(css.contains("--accent: #aa3300") && css.contains("border: 2px solid #aa3300"), "{css}");
    // Unbranded: the defaults, and a CSP without other image origins.
    let plain = TestServer::start().await;
    let res = Browser::new(&plain.url).get("/account/signin").await;
    assert!(!res.headers()["content-security-policy"].to_str().unwrap().contains("cdn"));
    assert!(res.text().await.unwrap().contains("id=\"brand-name\">Tessera<"));
    assert!(Browser::new(&plain.url).get("/static/brand.css").await.text().await.unwrap().is_empty());
}

/// `--template-dir`: an operator's own sign-in page (MiniJinja, auto-escaped, with the built-in
/// page's variables and the catalog's messages) replaces the built-in one and still signs in;
/// pages without a file stay built in; a file that is no page, or does not parse, is refused
/// with its name.
#[tokio::test]
async fn template_overrides_replace_pages_and_fall_back() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("login.html"),
        r#"<!doctype html><html lang="{{ lang() }}"><title>{{ product() }}</title>
<h1 id="custom">Welcome to {{ product() }}: {{ t("login-title") }} for {{ client_name }}</h1>
{% if error %}<p id="error">{{ error }}</p>{% endif %}
<form method="post" action="/login"><input type="hidden" name="csrf" value="{{ csrf }}"><input type="hidden" name="request" value="{{ request_id }}">
<input name="username" value="{{ username }}"><input name="password" type="password"><button>Go</button></form>"#,
    )
    .unwrap();
    let s = TestServer::start_with(|c| {
        c.branding.product_name = "Acme ID".into();
        c.branding.template_dir = Some(dir.path().to_path_buf());
    })
    .await;
    let c = s.client(NewClient { name: "<b>Notes</b>".into(), redirect_uris: vec![CB.into()], scope: "notes.read".into(), ..Default::default() }).await;
    let b = Browser::new(&s.url);
    let (_, challenge) = pkce_pair();
    let login = location(&b.get(&s.authorize_url(&c.client.client_id, CB, "notes.read", "st", Some(&challenge))).await);
    let (_, html) = page_with(&b, &login, Some("de")).await;
    assert!(html.contains("id=\"custom\">Welcome to Acme ID: Anmelden for &lt;b&gt;Notes&lt;&#x2f;b&gt;"), "the override, escaped, in German: {html}");
    let res = b.sign_in(&html, USER, "wrong").await;
    assert!(res.text().await.unwrap().contains("id=\"error\">Incorrect username or password."), "the override shows refusals");
    let res = b.sign_in(&html, USER, PASSWORD).await;
    assert!(location(&res).starts_with("/consent"), "and signs in");
    let (_, consent) = page_with(&b, &location(&res), None).await;
    assert!(consent.contains("id=\"allow\""), "consent.html has no override: the built-in page");

    for (file, text, says) in [("notes.html", "x", "not a page that can be overridden"), ("consent.html", "{% if %}", "consent.html")] {
        let bad = tempfile::tempdir().unwrap();
        std::fs::write(bad.path().join(file), text).unwrap();
        let e = tessera_http::overrides::load(bad.path()).unwrap_err();
        assert!(e.contains(says), "{e}");
    }
    assert!(tessera_http::overrides::load(std::path::Path::new("/nonexistent-dir")).is_err());
}
