//! The admin REST API (issue 16), clients first, over real HTTP with Tessera's own tokens:
//! 401 without a token or with the wrong one, 403 for `tessera.read` on a write, 404, 400 with
//! the member at fault, 428 and 412 for updates without or with a stale `If-Match`; the OpenAPI
//! document against the routes; every change in the audit log with the calling client.

use crate::common::*;
use serde_json::{Value, json};
use tessera_server::service::admin::NewClient;

const CC: &str = "client_credentials";

/// A token for the admin API with `scope`, through a client registered for it.
async fn admin_token(s: &TestServer, scope: &str) -> (String, String) {
    let (token, id, _) = admin_token_and_secret(s, scope).await;
    (token, id)
}

async fn admin_token_and_secret(s: &TestServer, scope: &str) -> (String, String, String) {
    let c = s.client(NewClient { name: format!("ops {scope}"), scope: scope.into(), grant_types: vec![CC.into()], ..Default::default() }).await;
    let (status, body, _) = token_basic(&s.url, &c.client.client_id, c.client_secret.as_deref().unwrap(), &[("grant_type", CC), ("scope", scope)]).await;
    assert_eq!(status, 200, "{body}");
    let claims = verify_access_token(&s.url, body["access_token"].as_str().unwrap(), "urn:tessera:admin").await;
    assert_eq!(claims["scope"], scope);
    (body["access_token"].as_str().unwrap().to_string(), c.client.client_id, c.client_secret.unwrap())
}

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    fn new(s: &TestServer) -> Self {
        Self { base: format!("{}/admin/v1", s.url), http: reqwest::Client::new() }
    }
    async fn call(
        &self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
        if_match: Option<&str>,
    ) -> (u16, Value, reqwest::header::HeaderMap) {
        let mut req = self.http.request(method.parse().unwrap(), format!("{}{path}", self.base));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        if let Some(m) = if_match {
            req = req.header("if-match", m);
        }
        let res = req.send().await.unwrap();
        let (status, headers) = (res.status().as_u16(), res.headers().clone());
        let text = res.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::Null), headers)
    }
}

fn etag(h: &reqwest::header::HeaderMap) -> String {
    h.get("etag").expect("an ETag").to_str().unwrap().to_string()
}

#[tokio::test]
async fn clients_through_the_admin_api() {
    let s = TestServer::start().await;
    let api = Api::new(&s);
    let (admin, ops_id) = admin_token(&s, "tessera.admin").await;
    let (reader, _) = admin_token(&s, "tessera.read").await;

    let new = json!({"name": "Mail", "redirect_uris": ["https://mail.example/cb"], "scope": "notes.read"});
    let (status, created, h) = api.call("POST", "/clients", Some(&admin), Some(new.clone()), None).await;
    assert_eq!(status, 201, "{created}");
    let id = created["client_id"].as_str().unwrap().to_string();
    assert_eq!(h["location"], format!("/admin/v1/clients/{id}"));
    assert!(created["client_secret"].as_str().is_some_and(|s| s.len() > 20), "the secret, once");
    let (status, list, _) = api.call("GET", "/clients", Some(&reader), None, None).await;
    assert_eq!(status, 200);
    assert!(list.as_array().unwrap().iter().any(|c| c["client_id"] == id.as_str() && c.get("client_secret").is_none()), "{list}");

    // Conditional updates: none without If-Match, none with a stale one.
    let (status, shown, h) = api.call("GET", &format!("/clients/{id}"), Some(&reader), None, None).await;
    assert_eq!((status, shown["name"].as_str()), (200, Some("Mail")));
    let first = etag(&h);
    let patch = json!({"name": "Mail Sync"});
    assert_eq!(api.call("PATCH", &format!("/clients/{id}"), Some(&admin), Some(patch.clone()), None).await.0, 428);
    let (status, updated, h) = api.call("PATCH", &format!("/clients/{id}"), Some(&admin), Some(patch), Some(&first)).await;
    assert_eq!((status, updated["name"].as_str()), (200, Some("Mail Sync")), "{updated}");
    assert_ne!(etag(&h), first, "a new ETag for the new representation");
    // A second operator who read before the change is refused.
    let (status, err, _) = api.call("PATCH", &format!("/clients/{id}"), Some(&admin), Some(json!({"scope": "notes.write"})), Some(&first)).await;
    assert_eq!((status, err["error"].as_str()), (412, Some("precondition_failed")), "{err}");
    assert_eq!(api.call("GET", &format!("/clients/{id}"), Some(&reader), None, None).await.1["scope"], "notes.read", "nothing overwritten");

    // Field errors.
    let bad = json!({"name": "Evil", "redirect_uris": ["http://evil.example/cb"]});
    let (status, err, _) = api.call("POST", "/clients", Some(&admin), Some(bad), None).await;
    assert_eq!((status, err["error"].as_str(), err["field"].as_str()), (400, Some("invalid"), Some("redirect_uris")), "{err}");
    let (status, err, _) = api.call("POST", "/clients", Some(&admin), Some(json!({"name": "X", "colour": "red"})), None).await;
    assert_eq!((status, err["error"].as_str()), (400, Some("invalid")), "unknown members are refused: {err}");
    let raw = reqwest::Client::new()
        .post(format!("{}/clients", api.base))
        .bearer_auth(&admin)
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);

    // Rotation: the new secret works at /token, the old one no longer.
    let old = created["client_secret"].as_str().unwrap();
    let (status, rotated, _) = api.call("POST", &format!("/clients/{id}/secret"), Some(&admin), None, None).await;
    assert_eq!(status, 200);
    let new_secret = rotated["client_secret"].as_str().unwrap();
    assert_eq!(token_basic(&s.url, &id, old, &[("grant_type", "authorization_code"), ("code", "x")]).await.0, 401);
    assert_eq!(token_basic(&s.url, &id, new_secret, &[("grant_type", "authorization_code"), ("code", "x")]).await.0, 400, "authenticated; the code is bad");

    // Deletion, then 404s.
    let (_, _, h) = api.call("GET", &format!("/clients/{id}"), Some(&reader), None, None).await;
    assert_eq!(api.call("DELETE", &format!("/clients/{id}"), Some(&admin), None, Some("\"stale\"")).await.0, 412);
    assert_eq!(api.call("DELETE", &format!("/clients/{id}"), Some(&admin), None, Some(&etag(&h))).await.0, 204);
    for (method, path) in
        [("GET", format!("/clients/{id}")), ("DELETE", format!("/clients/{id}")), ("POST", format!("/clients/{id}/secret")), ("GET", "/nothing".into())]
    {
        let (status, err, _) = api.call(method, &path, Some(&admin), None, None).await;
        assert_eq!((status, err["error"].as_str()), (404, Some("not_found")), "{method} {path}: {err}");
    }

    // Every change is in the audit log, with the calling client as the actor.
    let events = s.svc.store.find_audit_events(&tessera_storage::AuditQuery { client_id: Some(id.clone()), limit: 10, ..Default::default() }).await.unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["admin.client_deleted", "admin.client_secret_rotated", "admin.client_updated", "admin.client_created"]);
    assert!(events.iter().all(|e| e.actor == format!("client:{ops_id}")), "{events:?}");
}

/// Who may call: a token for the admin API with an admin scope, from a client acting for itself.
#[tokio::test]
async fn only_admin_tokens_are_accepted() {
    let s = TestServer::start().await;
    let api = Api::new(&s);
    let (reader, _) = admin_token(&s, "tessera.read").await;
    let (status, err, h) = api.call("GET", "/clients", None, None, None).await;
    assert_eq!((status, err["error"].as_str()), (401, Some("unauthorized")));
    assert!(h.contains_key("www-authenticate"));
    assert_eq!(api.call("GET", "/clients", Some("not-a-token"), None, None).await.0, 401);
    // A token for another API.
    let notes = s.client(NewClient { name: "Job".into(), scope: "notes.read".into(), grant_types: vec![CC.into()], ..Default::default() }).await;
    let (_, t, _) = token_basic(&s.url, &notes.client.client_id, notes.client_secret.as_deref().unwrap(), &[("grant_type", CC)]).await;
    let (status, err, _) = api.call("GET", "/clients", Some(t["access_token"].as_str().unwrap()), None, None).await;
    assert_eq!(status, 401, "{err}");
    assert!(err["message"].as_str().unwrap().contains("audience"), "{err}");
    // Reads with tessera.read; no writes.
    assert_eq!(api.call("GET", "/clients", Some(&reader), None, None).await.0, 200);
    let (status, err, _) = api.call("POST", "/clients", Some(&reader), Some(json!({"name": "X"})), None).await;
    assert_eq!((status, err["error"].as_str()), (403, Some("forbidden")), "{err}");
    // A revoked token stops working at once.
    let (admin, ops, secret) = admin_token_and_secret(&s, "tessera.admin").await;
    assert_eq!(api.call("GET", "/clients", Some(&admin), None, None).await.0, 200);
    assert_eq!(post(&s.url, "/revoke", Some((&ops, &secret)), &[("token", &admin)]).await.0, 200);
    assert_eq!(api.call("GET", "/clients", Some(&admin), None, None).await.0, 401, "revoked (RFC 7009)");
    // A user's token for the admin API (a client registered for the scope, alice consenting)
    // acts with her authority: refused while she is not an administrator.
    let web = s
        .client(NewClient { name: "Web".into(), redirect_uris: vec!["https://app.example/cb".into()], scope: "tessera.admin".into(), ..Default::default() })
        .await;
    let url = s.authorize_url(&web.client.client_id, "https://app.example/cb", "tessera.admin", "st", None);
    let back = Browser::new(&s.url).authorize_and_allow(&url).await;
    let code = query(&back).remove("code").unwrap();
    let (_, t, _) = token_basic(
        &s.url,
        &web.client.client_id,
        web.client_secret.as_deref().unwrap(),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "https://app.example/cb")],
    )
    .await;
    let user_token = t["access_token"].as_str().unwrap().to_string();
    let (status, err, _) = api.call("GET", "/clients", Some(&user_token), None, None).await;
    assert_eq!((status, err["error"].as_str()), (403, Some("forbidden")), "{err}");
    assert!(err["message"].as_str().unwrap().contains("administrator"), "{err}");
    // `tessera user update --admin`: the same token now acts as alice, and the audit log says so.
    let alice = tessera_server::service::admin::set_admin(&*s.svc.store, USER, true).await.unwrap();
    assert!(alice.is_admin);
    let (status, created, _) =
        api.call("POST", "/clients", Some(&user_token), Some(json!({"name": "By Alice", "grant_types": ["client_credentials"]})), None).await;
    assert_eq!(status, 201, "{created}");
    let events = s
        .svc
        .store
        .find_audit_events(&tessera_storage::AuditQuery { kind: Some("admin.client_created".into()), limit: 5, ..Default::default() })
        .await
        .unwrap();
    assert_eq!(events[0].actor, alice.id, "the administrator is the actor");
    // Disabled, or no longer an administrator: refused again.
    tessera_server::service::admin::set_admin(&*s.svc.store, USER, false).await.unwrap();
    assert_eq!(api.call("GET", "/clients", Some(&user_token), None, None).await.0, 403);
}

/// The OpenAPI document is OpenAPI 3.1, documents every route it serves, and every route it
/// documents is served.
#[tokio::test]
async fn the_openapi_document_matches_the_routes() {
    let s = TestServer::start().await;
    let api = Api::new(&s);
    let (admin, _) = admin_token(&s, "tessera.admin").await;
    let (status, doc, _) = api.call("GET", "/openapi.json", None, None, None).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1"), "{}", doc["openapi"]);
    assert_eq!(doc["components"]["securitySchemes"]["bearer"]["scheme"], "bearer");
    let mut documented = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys().filter(|m| ["get", "post", "patch", "delete", "put"].contains(&m.as_str())) {
            let mut p = path.clone();
            for (param, value) in [
                ("{client_id}", "nope"),
                ("{user_id}", "nope"),
                ("{name}", "nope"),
                ("{username}", "nope"),
                ("{identifier}", "nope"),
                ("{role}", "nope"),
                ("{kind}", "users"),
                ("{holder}", "nope"),
            ] {
                p = p.replace(param, value);
            }
            documented.push((method.to_uppercase(), p));
        }
    }
    documented.sort();
    assert_eq!(
        documented.iter().map(|(m, p)| format!("{m} {p}")).collect::<Vec<_>>(),
        [
            "DELETE /apis/nope",
            "DELETE /apis/nope/roles/nope/users/nope",
            "DELETE /clients/nope",
            "DELETE /groups/nope",
            "DELETE /groups/nope/members/nope",
            "DELETE /users/nope",
            "DELETE /users/nope/consents/nope",
            "DELETE /users/nope/factors",
            "DELETE /users/nope/sessions",
            "GET /apis",
            "GET /audit-events",
            "GET /clients",
            "GET /clients/nope",
            "GET /groups",
            "GET /groups/nope",
            "GET /keys",
            "GET /users",
            "GET /users/nope",
            "GET /users/nope/consents",
            "GET /users/nope/factors",
            "GET /users/nope/sessions",
            "PATCH /clients/nope",
            "PATCH /users/nope",
            "POST /apis",
            "POST /clients",
            "POST /clients/nope/secret",
            "POST /groups",
            "POST /keys/rotate",
            "POST /users",
            "PUT /apis/nope/roles/nope/users/nope",
            "PUT /groups/nope/members/nope"
        ]
    );
    // Every documented route is served: a real answer, not the router's 404 or 405.
    for (method, path) in &documented {
        let (status, body, _) = api.call(method, path, Some(&admin), Some(json!({})), Some("*")).await;
        let routed_404 = status == 404 && body["message"] == "no such admin API resource";
        assert!(!routed_404 && status != 405, "{method} {path}: {status} {body}");
    }
    // And nothing undocumented is: another method on a documented path is 405.
    assert_eq!(api.call("PUT", "/clients", Some(&admin), None, None).await.0, 405);
}

#[tokio::test]
async fn users_and_audit_events_through_the_admin_api() {
    let s = TestServer::start().await;
    let api = Api::new(&s);
    let (admin, ops_id) = admin_token(&s, "tessera.admin").await;
    let (reader, _) = admin_token(&s, "tessera.read").await;
    for name in ["carol", "dave", "erin"] {
        let body = json!({"username": name, "password": "a long enough password", "email": format!("{name}@example.com")});
        let (status, u, h) = api.call("POST", "/users", Some(&admin), Some(body), None).await;
        assert_eq!(status, 201, "{u}");
        assert_eq!(h["location"], format!("/admin/v1/users/{}", u["id"].as_str().unwrap()));
        assert!(u.get("password_hash").is_none() && u.get("password").is_none(), "{u}");
    }
    let (status, err, _) = api.call("POST", "/users", Some(&admin), Some(json!({"username": "x", "password": "short"})), None).await;
    assert_eq!((status, err["field"].as_str()), (400, Some("password")), "{err}");
    let (status, err, _) = api.call("POST", "/users", Some(&admin), Some(json!({"username": "carol", "password": "a long enough password"})), None).await;
    assert_eq!(status, 400, "a taken username: {err}");

    // Search and paging, by username.
    let (status, page, _) = api.call("GET", "/users?limit=2", Some(&reader), None, None).await;
    assert_eq!(status, 200);
    let names = |p: &Value| p["users"].as_array().unwrap().iter().map(|u| u["username"].as_str().unwrap().to_string()).collect::<Vec<_>>();
    assert_eq!(names(&page), ["alice", "carol"]);
    let (_, next, _) = api.call("GET", &format!("/users?limit=2&after={}", page["next_after"].as_str().unwrap()), Some(&reader), None, None).await;
    assert_eq!(names(&next), ["dave", "erin"]);
    assert!(next.get("next_after").is_none(), "the last page");
    let (_, found, _) = api.call("GET", "/users?search=DAVE%40EXAMPLE", Some(&reader), None, None).await;
    assert_eq!(names(&found), ["dave"]);
    assert_eq!(api.call("GET", "/users?limit=0", Some(&reader), None, None).await.0, 400);
    assert_eq!(api.call("GET", "/users?colour=red", Some(&reader), None, None).await.0, 400);

    // A conditional update with a new password: the old one stops working.
    let dave = found["users"][0]["id"].as_str().unwrap().to_string();
    let (_, _, h) = api.call("GET", &format!("/users/{dave}"), Some(&reader), None, None).await;
    let tag = etag(&h);
    assert_eq!(api.call("PATCH", &format!("/users/{dave}"), Some(&admin), Some(json!({"name": "Dave"})), None).await.0, 428);
    let (status, err, _) = api.call("PATCH", &format!("/users/{dave}"), Some(&admin), Some(json!({"name": "Half", "password": "short"})), Some(&tag)).await;
    assert_eq!((status, err["field"].as_str()), (400, Some("password")), "{err}");
    assert_eq!(api.call("GET", &format!("/users/{dave}"), Some(&reader), None, None).await.1["name"], Value::Null, "a refused change changes nothing");
    let (status, u, _) =
        api.call("PATCH", &format!("/users/{dave}"), Some(&admin), Some(json!({"name": "Dave D", "password": "another long password"})), Some(&tag)).await;
    assert_eq!((status, u["name"].as_str()), (200, Some("Dave D")), "{u}");
    assert_eq!(api.call("PATCH", &format!("/users/{dave}"), Some(&admin), Some(json!({"name": "Stale"})), Some(&tag)).await.0, 412);
    assert!(s.svc.sign_in("dave", "a long enough password", "127.0.0.1").await.unwrap().is_err(), "the old password");
    assert!(s.svc.sign_in("dave", "another long password", "127.0.0.1").await.unwrap().is_ok(), "the new one");
    // Reads only with tessera.read.
    assert_eq!(api.call("DELETE", &format!("/users/{dave}"), Some(&reader), None, None).await.0, 403);
    assert_eq!(api.call("DELETE", &format!("/users/{dave}"), Some(&admin), None, None).await.0, 204);
    assert_eq!(api.call("GET", &format!("/users/{dave}"), Some(&reader), None, None).await.0, 404);

    // The audit log through the API: newest first, by type, user and client, in pages.
    let (status, page, _) = api.call("GET", &format!("/audit-events?user_id={dave}"), Some(&reader), None, None).await;
    assert_eq!(status, 200);
    let kinds: Vec<&str> = page["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap()).collect();
    // (The failed sign-in with the old password names no user id: it proves nothing about one.)
    assert_eq!(kinds, ["admin.user_deleted", "sign_in", "admin.password_set", "admin.user_updated", "admin.user_created"], "{page}");
    assert!(page["events"][0]["actor"] == format!("client:{ops_id}").as_str());
    let (_, created, _) = api.call("GET", "/audit-events?type=admin.user_created&limit=2", Some(&reader), None, None).await;
    assert_eq!(created["events"].as_array().unwrap().len(), 2);
    let before = created["next_before"].as_i64().expect("another page");
    let (_, rest, _) = api.call("GET", &format!("/audit-events?type=admin.user_created&before={before}"), Some(&reader), None, None).await;
    assert_eq!(rest["events"].as_array().unwrap().len(), 1);
    assert_eq!(rest["events"][0]["detail"]["username"], "carol", "oldest last: {rest}");
    assert_eq!(api.call("GET", "/audit-events?limit=5000", Some(&reader), None, None).await.0, 400);
}

/// Groups, APIs with roles, role grants and signing keys through the API; a role granted there
/// is in the next access token.
#[tokio::test]
async fn groups_apis_roles_and_keys_through_the_admin_api() {
    let s = TestServer::start().await;
    let api = Api::new(&s);
    let (admin, _) = admin_token(&s, "tessera.admin").await;
    let (status, g, _) = api.call("POST", "/groups", Some(&admin), Some(json!({"name": "editors", "description": "People who edit"})), None).await;
    assert_eq!((status, g["members"].clone()), (201, json!([])), "{g}");
    let (status, err, _) = api.call("POST", "/groups", Some(&admin), Some(json!({"name": "editors"})), None).await;
    assert_eq!((status, err["error"].as_str()), (409, Some("conflict")), "{err}");
    assert_eq!(api.call("POST", "/groups", Some(&admin), Some(json!({"name": "has space"})), None).await.0, 400);
    assert_eq!(api.call("PUT", "/groups/editors/members/alice", Some(&admin), None, None).await.0, 204);
    assert_eq!(api.call("PUT", "/groups/editors/members/alice", Some(&admin), None, None).await.0, 204, "idempotent");
    assert_eq!(api.call("PUT", "/groups/editors/members/nobody", Some(&admin), None, None).await.0, 404);
    assert_eq!(api.call("GET", "/groups/editors", Some(&admin), None, None).await.1["members"], json!(["alice"]));

    let docs = json!({"identifier": "https://docs.example", "name": "Docs", "scopes": [{"name": "docs.read", "description": "Read your documents"}], "roles": [{"name": "editor", "description": "Can edit"}]});
    let (status, a, _) = api.call("POST", "/apis", Some(&admin), Some(docs.clone()), None).await;
    assert_eq!(status, 201, "{a}");
    assert_eq!(api.call("POST", "/apis", Some(&admin), Some(docs), None).await.0, 409);
    let enc = "https%3A%2F%2Fdocs.example";
    assert_eq!(api.call("PUT", &format!("/apis/{enc}/roles/editor/groups/editors"), Some(&admin), None, None).await.0, 204);
    let (status, err, _) = api.call("PUT", &format!("/apis/{enc}/roles/owner/users/alice"), Some(&admin), None, None).await;
    assert_eq!((status, err["error"].as_str()), (400, Some("invalid")), "an undeclared role: {err}");
    assert_eq!(api.call("PUT", &format!("/apis/{enc}/roles/editor/robots/r2"), Some(&admin), None, None).await.0, 404);

    // The grant is in alice's next token for the API (once the scope catalog's 2 s cache has
    // seen the new API).
    s.clock.advance(3);
    let c = s
        .client(NewClient { name: "Docs Web".into(), redirect_uris: vec!["https://app.example/cb".into()], scope: "docs.read".into(), ..Default::default() })
        .await;
    let url = s.authorize_url(&c.client.client_id, "https://app.example/cb", "docs.read", "st", None);
    let code = query(&Browser::new(&s.url).authorize_and_allow(&url).await).remove("code").unwrap();
    let (_, t, _) = token_basic(
        &s.url,
        &c.client.client_id,
        c.client_secret.as_deref().unwrap(),
        &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "https://app.example/cb")],
    )
    .await;
    let claims = verify_access_token(&s.url, t["access_token"].as_str().unwrap(), "https://docs.example").await;
    assert_eq!(claims["roles"], json!(["editor"]));
    assert_eq!(api.call("DELETE", &format!("/apis/{enc}/roles/editor/groups/editors"), Some(&admin), None, None).await.0, 204);
    assert_eq!(api.call("DELETE", "/groups/editors/members/alice", Some(&admin), None, None).await.0, 204);
    assert_eq!(api.call("DELETE", "/groups/editors", Some(&admin), None, None).await.0, 204);
    assert_eq!(api.call("GET", "/groups/editors", Some(&admin), None, None).await.0, 404);
    assert_eq!(api.call("DELETE", &format!("/apis/{enc}"), Some(&admin), None, None).await.0, 204);
    assert!(api.call("GET", "/apis", Some(&admin), None, None).await.1.as_array().unwrap().iter().all(|a| a["identifier"] != "https://docs.example"));

    // Keys: a rotation publishes one new key per algorithm, in the JWKS at once.
    let (_, before, _) = api.call("GET", "/keys", Some(&admin), None, None).await;
    let (status, rotated, _) = api.call("POST", "/keys/rotate", Some(&admin), None, None).await;
    assert_eq!(status, 200);
    assert_eq!(rotated.as_array().unwrap().len(), 3);
    let (_, after, _) = api.call("GET", "/keys", Some(&admin), None, None).await;
    assert_eq!(after.as_array().unwrap().len(), before.as_array().unwrap().len() + 3);
    let jwks: Value = reqwest::get(format!("{}/jwks.json", s.url)).await.unwrap().json().await.unwrap();
    for k in rotated.as_array().unwrap() {
        assert!(jwks["keys"].as_array().unwrap().iter().any(|j| j["kid"] == k["kid"]), "{} published", k["kid"]);
    }
    let kinds: Vec<String> = s
        .svc
        .store
        .find_audit_events(&tessera_storage::AuditQuery { limit: 50, ..Default::default() })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .filter(|k| k.starts_with("admin."))
        .collect();
    for k in [
        "admin.group_created",
        "admin.group_member_added",
        "admin.api_created",
        "admin.role_granted",
        "admin.role_revoked",
        "admin.group_deleted",
        "admin.api_deleted",
        "admin.keys_rotated",
    ] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
}

/// "Remove access" through the API: the client's grants for the user are revoked at once
/// (refresh token refused, access token inactive), and the next authorization asks again;
/// ending the user's sessions signs the browser out.
#[tokio::test]
async fn removing_access_and_ending_sessions() {
    let s = TestServer::start().await;
    let api = Api::new(&s);
    let (admin, _) = admin_token(&s, "tessera.admin").await;
    let (id, secret) = s.confidential_client("https://app.example/cb").await;
    let alice = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap().id;
    let b = Browser::new(&s.url);
    let url = s.authorize_url(&id, "https://app.example/cb", "notes.read", "st", None);
    let code = query(&b.authorize_and_allow(&url).await).remove("code").unwrap();
    let (_, t, _) =
        token_basic(&s.url, &id, &secret, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "https://app.example/cb")]).await;
    let (rt, at) = (t["refresh_token"].as_str().unwrap().to_string(), t["access_token"].as_str().unwrap().to_string());

    let (status, consents, _) = api.call("GET", &format!("/users/{alice}/consents"), Some(&admin), None, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (consents[0]["client_id"].as_str(), consents[0]["client_name"].as_str(), consents[0]["scope"].as_str()),
        (Some(id.as_str()), Some("Notes Client"), Some("notes.read"))
    );
    let (_, sessions, _) = api.call("GET", &format!("/users/{alice}/sessions"), Some(&admin), None, None).await;
    assert_eq!(sessions.as_array().unwrap().len(), 1, "{sessions}");
    assert!(sessions[0].get("id_hash").is_none() && sessions[0].get("csrf_token").is_none(), "{sessions}");

    assert_eq!(api.call("DELETE", &format!("/users/{alice}/consents/{id}"), Some(&admin), None, None).await.0, 204);
    assert_eq!(api.call("DELETE", &format!("/users/{alice}/consents/{id}"), Some(&admin), None, None).await.0, 404, "nothing left to remove");
    let (status, body, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", &rt)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "the refresh token is revoked: {body}");
    let (_, intro, _) = post(&s.url, "/introspect", Some((&id, &secret)), &[("token", &at)]).await;
    assert_eq!(intro["active"], false, "the access token is revoked: {intro}");
    // Still signed in, but the consent page comes back.
    let res = b.get(&url).await;
    assert!(location(&res).starts_with("/consent"), "{}", location(&res));
    let events = s.svc.store.list_audit_events("consent_removed").await.unwrap();
    assert_eq!(events.len(), 1);

    // Ending the sessions signs the browser out.
    assert_eq!(api.call("DELETE", &format!("/users/{alice}/sessions"), Some(&admin), None, None).await.0, 204);
    assert!(api.call("GET", &format!("/users/{alice}/sessions"), Some(&admin), None, None).await.1.as_array().unwrap().is_empty());
    let res = b.get(&url).await;
    assert!(location(&res).starts_with("/login"), "{}", location(&res));
    assert_eq!(api.call("GET", "/users/nobody/consents", Some(&admin), None, None).await.0, 404);
}

/// Disabling a user (issue 16): their refresh token and access token stop working at once, the
/// right password is refused with a clear page, and enabling lets them sign in again.
#[tokio::test]
async fn disabling_a_user_ends_their_access() {
    let s = TestServer::start().await;
    let api = Api::new(&s);
    let (admin, _) = admin_token(&s, "tessera.admin").await;
    let (id, secret) = s.confidential_client("https://app.example/cb").await;
    let alice = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap().id;
    let url = s.authorize_url(&id, "https://app.example/cb", "notes.read", "st", None);
    let code = query(&Browser::new(&s.url).authorize_and_allow(&url).await).remove("code").unwrap();
    let (_, t, _) =
        token_basic(&s.url, &id, &secret, &[("grant_type", "authorization_code"), ("code", &code), ("redirect_uri", "https://app.example/cb")]).await;
    let (rt, at) = (t["refresh_token"].as_str().unwrap().to_string(), t["access_token"].as_str().unwrap().to_string());
    assert_eq!(post(&s.url, "/introspect", Some((&id, &secret)), &[("token", &at)]).await.1["active"], true);

    let (_, _, h) = api.call("GET", &format!("/users/{alice}"), Some(&admin), None, None).await;
    let (status, u, _) = api.call("PATCH", &format!("/users/{alice}"), Some(&admin), Some(json!({"disabled": true})), Some(&etag(&h))).await;
    assert_eq!((status, u["disabled"].as_bool()), (200, Some(true)), "{u}");
    let (status, body, _) = token_basic(&s.url, &id, &secret, &[("grant_type", "refresh_token"), ("refresh_token", &rt)]).await;
    assert_eq!((status, body["error"].as_str()), (400, Some("invalid_grant")), "{body}");
    s.clock.advance(3); // the 2 s cache of users found
    assert_eq!(post(&s.url, "/introspect", Some((&id, &secret)), &[("token", &at)]).await.1["active"], false, "a disabled user's access token is inactive");
    // The right password: refused, and said so.
    let b = Browser::new(&s.url);
    let (_, html) = b.open_login(&url).await;
    let res = b.sign_in(&html, USER, PASSWORD).await;
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("This account is disabled"));
    // A wrong password says nothing about the account.
    let (_, html) = b.open_login(&url).await;
    let res = b.sign_in(&html, USER, "wrong password").await;
    assert_eq!(res.status(), 401);
    assert!(!res.text().await.unwrap().contains("disabled"));

    let (_, _, h) = api.call("GET", &format!("/users/{alice}"), Some(&admin), None, None).await;
    assert_eq!(api.call("PATCH", &format!("/users/{alice}"), Some(&admin), Some(json!({"disabled": false})), Some(&etag(&h))).await.1["disabled"], false);
    let back = Browser::new(&s.url).journey_as(&url, USER).await;
    assert!(query(&back).contains_key("code"), "enabled again: {back}");
    let kinds: Vec<String> = s
        .svc
        .store
        .find_audit_events(&tessera_storage::AuditQuery { user_id: Some(alice), limit: 50, ..Default::default() })
        .await
        .unwrap()
        .into_iter()
        .map(|e| e.kind)
        .collect();
    for k in ["admin.user_disabled", "sign_in_refused", "admin.user_enabled"] {
        assert!(kinds.iter().any(|x| x == k), "{k} in {kinds:?}");
    }
}

/// Two operators who read the same version and both write: exactly one wins, the other gets
/// 412 (RFC 9110 §13.1.1). Many writes with one `If-Match` at once: one 200, the rest 412,
/// for clients and for users (the check and the write are one conditional statement).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_with_one_if_match_let_exactly_one_through() {
    let s = TestServer::start().await;
    let api = std::sync::Arc::new(Api::new(&s));
    let (admin, _) = admin_token(&s, "tessera.admin").await;
    let (_, c, _) = api.call("POST", "/clients", Some(&admin), Some(json!({"name": "Race", "redirect_uris": ["https://race.example/cb"]})), None).await;
    let (_, u, _) = api.call("POST", "/users", Some(&admin), Some(json!({"username": "racer", "password": "a long enough password"})), None).await;
    for path in [format!("/clients/{}", c["client_id"].as_str().unwrap()), format!("/users/{}", u["id"].as_str().unwrap())] {
        let (_, _, h) = api.call("GET", &path, Some(&admin), None, None).await;
        let tag = etag(&h);
        let mut tasks = Vec::new();
        for i in 0..30 {
            let (api, admin, path, tag) = (api.clone(), admin.clone(), path.clone(), tag.clone());
            tasks.push(tokio::spawn(async move { api.call("PATCH", &path, Some(&admin), Some(json!({"name": format!("writer {i}")})), Some(&tag)).await.0 }));
        }
        let mut statuses = Vec::new();
        for t in tasks {
            statuses.push(t.await.unwrap());
        }
        assert_eq!(statuses.iter().filter(|&&st| st == 200).count(), 1, "{path}: {statuses:?}");
        assert!(statuses.iter().all(|&st| st == 200 || st == 412), "{path}: {statuses:?}");
    }
}

/// Issue 15: an administrator sees a user's second factors (never their secrets), requires a
/// second factor of them (their sessions end) and resets their factors (a lost phone).
#[tokio::test]
async fn second_factors_listed_required_and_reset() {
    let s = TestServer::start().await;
    let api = Api::new(&s);
    let (admin, _) = admin_token(&s, "tessera.admin").await;
    let (reader, _) = admin_token(&s, "tessera.read").await;
    let alice = s.svc.store.find_user_by_username(USER).await.unwrap().unwrap().id;
    let b = Browser::new(&s.url);
    let html = b.get("/account/signin").await.text().await.unwrap();
    let csrf = hidden(&html, "csrf").unwrap();
    b.post_form("/account/signin", &[("csrf", &csrf), ("username", USER), ("password", PASSWORD)]).await;
    let (secret, _) = b.enrol_totp(s.svc.now()).await;
    let (status, factors, _) = api.call("GET", &format!("/users/{alice}/factors"), Some(&reader), None, None).await;
    assert_eq!(status, 200);
    assert_eq!((factors[0]["kind"].as_str(), factors[0]["name"].as_str()), (Some("totp"), Some("Phone")), "{factors}");
    assert!(!factors.to_string().contains(&secret.replace(' ', "")) && factors[0].get("secret").is_none(), "{factors}");
    // A reader cannot reset.
    assert_eq!(api.call("DELETE", &format!("/users/{alice}/factors"), Some(&reader), None, None).await.0, 403);
    let (_, user, headers) = api.call("GET", &format!("/users/{alice}"), Some(&admin), None, None).await;
    assert_eq!((user["require_mfa"].as_bool(), user["email_verified"].as_bool()), (Some(false), Some(false)));
    let etag = headers["etag"].to_str().unwrap().to_string();
    let (status, user, _) = api.call("PATCH", &format!("/users/{alice}"), Some(&admin), Some(serde_json::json!({ "require_mfa": true })), Some(&etag)).await;
    assert_eq!((status, user["require_mfa"].as_bool()), (200, Some(true)), "{user}");
    assert_eq!(location(&b.get("/account").await), "/account/signin", "her sessions ended");
    assert_eq!(api.call("DELETE", &format!("/users/{alice}/factors"), Some(&admin), None, None).await.0, 204);
    assert!(api.call("GET", &format!("/users/{alice}/factors"), Some(&reader), None, None).await.1.as_array().unwrap().is_empty());
    assert_eq!(api.call("DELETE", "/users/nope/factors", Some(&admin), None, None).await.0, 404);
    let q = tessera_storage::AuditQuery { kind: Some("admin.mfa_reset".into()), limit: 5, ..Default::default() };
    assert_eq!(s.svc.store.find_audit_events(&q).await.unwrap().len(), 1, "the reset is audited");
}
