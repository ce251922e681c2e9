//! The seed's story in one process: a real Tessera (manual clock), the Notes API (tessera-guard
//! reading Tessera's clock, so a token really expires for it) and the Notes Client (its own
//! clock), each on 127.0.0.1:0; plus a scripted visitor of the Notes Client.
#![allow(dead_code)]

use super::{Browser, TestServer, USER, hidden, location};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use tessera_guard::{Guard, GuardConfig};
use tessera_server::ManualClock;

pub use super::API;

/// The API reads the authorization server's clock.
struct SharedClock(Arc<ManualClock>);
impl tessera_guard::Clock for SharedClock {
    fn now(&self) -> i64 {
        tessera_server::Clock::now(&*self.0)
    }
}

/// The client's own clock, moved by hand.
pub struct ClientClock(AtomicI64);
impl ClientClock {
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
}
impl notes_client::Clock for ClientClock {
    fn now(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

pub struct Stack {
    pub s: TestServer,
    pub api_url: String,
    pub client_url: String,
    pub guard: Guard,
    pub client: Arc<notes_client::NotesClient>,
    pub client_clock: Arc<ClientClock>,
    pub notes: notes_api::Db,
    pub alice_id: String,
}

impl Stack {
    /// All three servers; alice has two notes.
    pub async fn start() -> Self {
        let s = TestServer::start().await;
        let api_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let api_url = format!("http://{}", api_listener.local_addr().unwrap());
        let guard = Guard::new(GuardConfig::new(&s.url, API).with_clock(Arc::new(SharedClock(s.clock.clone())))).unwrap();
        let notes = notes_api::Db::open(&format!("sqlite://{}/notes.db", s.dir.path().display())).await.unwrap();
        let (g, n) = (guard.clone(), notes.clone());
        tokio::spawn(async move { notes_api::serve(api_listener, g, n, std::future::pending()).await.unwrap() });

        let client_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client_url = format!("http://{}", client_listener.local_addr().unwrap());
        let redirect = format!("{client_url}/callback");
        let (id, secret) = s.confidential_client(&redirect).await;
        let client_clock = Arc::new(ClientClock(AtomicI64::new(tessera_server::Clock::now(&*s.clock))));
        let config = notes_client::ClientConfig::new(&s.url, &id, &secret, &redirect, &api_url).with_clock(client_clock.clone());
        let client = notes_client::NotesClient::new(config).await.unwrap();
        let c = client.clone();
        tokio::spawn(async move { notes_client::serve(client_listener, c, std::future::pending()).await.unwrap() });

        let alice_id = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap().id;
        notes.create(&alice_id, "Groceries", "eggs, flour, lemons", 1).await.unwrap();
        notes.create(&alice_id, "Ideas", "a notes app that never sees passwords", 2).await.unwrap();
        Self { s, api_url, client_url, guard, client, client_clock, notes, alice_id }
    }

    /// Move the authorization server's (and so the API's) clock.
    pub fn advance_server_clock(&self, secs: i64) {
        self.s.clock.advance(secs);
    }

    /// The access tokens the client holds, across sessions.
    pub fn client_access_tokens(&self) -> Vec<String> {
        self.client.sessions.all().iter().filter_map(|s| s.tokens()).map(|t| t.access_token).collect()
    }
}

/// A person using the Notes Client in a scripted browser (cookies kept, redirects by hand).
pub struct Visitor {
    pub http: reqwest::Client,
    pub base: String,
}

impl Visitor {
    pub fn new(stack: &Stack) -> Self {
        let http = reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap();
        Self { http, base: stack.client_url.clone() }
    }

    fn abs(&self, u: &str) -> String {
        if u.starts_with('/') { format!("{}{u}", self.base) } else { u.to_string() }
    }

    pub async fn get(&self, u: &str) -> reqwest::Response {
        self.http.get(self.abs(u)).send().await.unwrap()
    }

    /// GET a page, following the app's own redirects; (status, html).
    pub async fn page(&self, u: &str) -> (u16, String) {
        let mut res = self.get(u).await;
        for _ in 0..5 {
            if res.status() != 303 {
                break;
            }
            let to = location(&res);
            res = self.get(&to).await;
        }
        (res.status().as_u16(), res.text().await.unwrap())
    }

    pub async fn post(&self, u: &str, form: &[(&str, &str)]) -> reqwest::Response {
        self.http.post(self.abs(u)).form(form).send().await.unwrap()
    }

    /// Submit a form of the app, then show the page it redirects to.
    pub async fn submit(&self, u: &str, form: &[(&str, &str)]) -> String {
        let res = self.post(u, form).await;
        assert_eq!(res.status(), 303, "the app answers a form with a redirect");
        let to = location(&res);
        self.page(&to).await.1
    }

    pub async fn csrf(&self) -> String {
        hidden(&self.page("/").await.1, "csrf").expect("a csrf field on the home page")
    }

    /// Press Connect with `scopes`; returns the authorization server's URL it sends us to.
    pub async fn start_connect(&self, scopes: &[&str]) -> String {
        let csrf = self.csrf().await;
        let mut form = vec![("csrf", csrf.as_str())];
        form.extend(scopes.iter().map(|s| ("scope", *s)));
        let res = self.post("/connect", &form).await;
        assert_eq!(res.status(), 303);
        location(&res)
    }

    /// The whole connection: Connect → sign in and allow at Tessera → back to the app. Returns
    /// the app's home page after the callback.
    pub async fn connect(&self, stack: &Stack, scopes: &[&str]) -> String {
        let authorize = self.start_connect(scopes).await;
        assert!(authorize.starts_with(&format!("{}/authorize?", stack.s.url)), "{authorize}");
        let callback = Browser::new(&stack.s.url).authorize_and_allow(&authorize).await;
        assert!(callback.starts_with(&format!("{}/callback?", stack.client_url)), "{callback}");
        let (status, html) = self.page(&callback).await;
        assert_eq!(status, 200, "{html}");
        html
    }
}

/// The titles of the notes shown on a page.
pub fn note_titles(html: &str) -> Vec<String> {
    html.split("<h3 class=\"note-title\">").skip(1).filter_map(|p| p.split("</h3>").next()).map(str::to_string).collect()
}

/// The flash message on a page, if any.
pub fn flash(html: &str) -> Option<String> {
    let start = html.find("id=\"flash\"")?;
    let text_start = html[start..].find('>')? + start + 1;
    let end = html[text_start..].find("</p>")? + text_start;
    Some(html[text_start..end].to_string())
}
