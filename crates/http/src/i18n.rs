//! The language and branding of the pages people see (issue 15). Translations are Project
//! Fluent catalogs (`locales/LANG/*.ftl`, embedded at compile time; English is the fallback,
//! German complete): each request's language is chosen from the OpenID Connect `ui_locales` of
//! the authorization request it continues (OIDC Core §3.1.2.1), else from `Accept-Language`
//! (RFC 9110 §12.5.4), else English. The [`layer`] puts the request's [`Page`] (language and
//! branding) in a task-local for the request's duration, so templates and messages call
//! [`t`] / [`t1`] without every view carrying it.
//!
//! Adding a language: copy `locales/en/main.ftl` to `locales/LANG/main.ftl`, translate every
//! message, add `LANG` to [`LANGUAGES`]; the test `catalogs_are_complete` fails until every key
//! of the English catalog is there.

use crate::AppState;
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use fluent_templates::Loader;
use fluent_templates::fluent_bundle::FluentValue;
use std::borrow::Cow;
use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::Arc;
use tessera_server::service::Branding;
use unic_langid::LanguageIdentifier;

fluent_templates::static_loader! {
    static LOCALES = {
        locales: "./locales",
        fallback_language: "en",
        // No Unicode isolation marks around arguments: pages are left-to-right text.
        customise: |bundle| bundle.set_use_isolating(false),
    };
}

/// The languages with a complete catalog, the fallback first.
pub const LANGUAGES: &[&str] = &["en", "de"];

/// The language and branding of the page being answered.
#[derive(Clone)]
pub struct Page {
    lang: &'static str,
    brand: Arc<Branding>,
    overrides: crate::overrides::Shared,
}

/// What the pages' layer holds: the service (its branding) and the operator's templates.
#[derive(Clone)]
pub struct PageState {
    pub svc: AppState,
    pub overrides: crate::overrides::Shared,
}

tokio::task_local! {
    static PAGE: RefCell<Page>;
}

fn langid(lang: &str) -> LanguageIdentifier {
    lang.parse().unwrap_or_default()
}

/// The first of `preferred` (language tags, best first) that has a catalog.
fn first_known<'a>(preferred: impl Iterator<Item = &'a str>) -> Option<&'static str> {
    for tag in preferred {
        let primary = tag.trim().split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
        if let Some(l) = LANGUAGES.iter().find(|l| **l == primary) {
            return Some(l);
        }
    }
    None
}

/// RFC 9110 §12.5.4: the tags of an `Accept-Language` value by descending weight (`q=0`
/// excluded; at most 32 considered).
fn accept_language(value: &str) -> Vec<String> {
    let mut tags: Vec<(String, f32, usize)> = value
        .split(',')
        .take(32)
        .enumerate()
        .filter_map(|(i, part)| {
            let mut it = part.split(';');
            let tag = it.next()?.trim().to_string();
            let q = it.find_map(|p| p.trim().strip_prefix("q=").and_then(|q| q.trim().parse::<f32>().ok())).unwrap_or(1.0);
            (q > 0.0 && !tag.is_empty() && tag != "*").then_some((tag, q, i))
        })
        .collect();
    tags.sort_by(|a, b| b.1.partial_cmp(&a.1).unwrap_or(std::cmp::Ordering::Equal).then(a.2.cmp(&b.2)));
    tags.into_iter().map(|(t, _, _)| t).collect()
}

/// The language for `ui_locales` (space-separated, best first) then `accept` (the header).
pub fn choose(ui_locales: Option<&str>, accept: Option<&str>) -> &'static str {
    ui_locales
        .and_then(|u| first_known(u.split(' ').filter(|s| !s.is_empty()).take(16)))
        .or_else(|| accept.and_then(|a| first_known(accept_language(a).iter().map(String::as_str))))
        .unwrap_or(LANGUAGES[0])
}

/// Every request: its language from `Accept-Language`, and the server's branding.
pub async fn layer(State(state): State<PageState>, req: Request, next: Next) -> Response {
    let accept = req.headers().get(header::ACCEPT_LANGUAGE).and_then(|v| v.to_str().ok()).map(str::to_string);
    let page = Page { lang: choose(None, accept.as_deref()), brand: state.svc.branding(), overrides: state.overrides.clone() };
    PAGE.scope(RefCell::new(page), next.run(req)).await
}

/// The authorization request being continued named `ui_locales` (OIDC Core §3.1.2.1): its
/// languages come before the browser's, for the rest of this request.
pub fn prefer(ui_locales: Option<&str>) {
    let Some(u) = ui_locales else { return };
    let Some(lang) = first_known(u.split(' ').filter(|s| !s.is_empty()).take(16)) else { return };
    let _ = PAGE.try_with(|p| p.borrow_mut().lang = lang);
}

/// The page's language tag (for `<html lang>`).
pub fn lang() -> &'static str {
    PAGE.try_with(|p| p.borrow().lang).unwrap_or(LANGUAGES[0])
}

fn lookup(key: &str, args: Option<&HashMap<Cow<'static, str>, FluentValue<'_>>>) -> String {
    let id = langid(lang());
    let found = match args {
        Some(a) => LOCALES.try_lookup_with_args(&id, key, a),
        None => LOCALES.try_lookup(&id, key),
    };
    // A key missing from every catalog shows as itself (the catalog test keeps this from
    // happening), never as an empty string.
    found.unwrap_or_else(|| key.to_string())
}

/// The message `key` in the page's language.
pub fn t(key: &str) -> String {
    lookup(key, None)
}

/// The message `key` with one argument (`{ $name }` in the catalog).
pub fn t1(key: &str, name: &'static str, value: &str) -> String {
    let mut args = HashMap::new();
    args.insert(Cow::Borrowed(name), FluentValue::from(value.to_string()));
    lookup(key, Some(&args))
}

/// [`t1`] with the argument's name given at run time (the overriding templates' `t1`).
pub fn t_named(key: &str, name: &str, value: &str) -> String {
    let mut args = HashMap::new();
    args.insert(Cow::Owned(name.to_string()), FluentValue::from(value.to_string()));
    lookup(key, Some(&args))
}

/// The operator's templates, if any (`--template-dir`).
pub fn overrides() -> crate::overrides::Shared {
    PAGE.try_with(|p| p.borrow().overrides.clone()).ok().flatten()
}

/// The message `key` with one number argument (plural forms select on it).
pub fn tn(key: &str, name: &'static str, n: i64) -> String {
    let mut args = HashMap::new();
    args.insert(Cow::Borrowed(name), FluentValue::from(n));
    lookup(key, Some(&args))
}

/// A count for [`tn`] from whatever integer a template holds (`usize`, a reference to one).
pub fn num<T: std::fmt::Display>(v: T) -> i64 {
    v.to_string().parse().unwrap_or(0)
}

/// The message `key` with two arguments.
pub fn t2(key: &str, a: (&'static str, &str), b: (&'static str, &str)) -> String {
    let mut args = HashMap::new();
    args.insert(Cow::Borrowed(a.0), FluentValue::from(a.1.to_string()));
    args.insert(Cow::Borrowed(b.0), FluentValue::from(b.1.to_string()));
    lookup(key, Some(&args))
}

/// The message `key` split around its argument `name`, for a page that marks the argument up
/// (`before<strong>value</strong>after`): the text before and after it.
pub fn around(key: &str, name: &'static str) -> (String, String) {
    const MARK: &str = "\u{1}";
    let whole = t1(key, name, MARK);
    match whole.split_once(MARK) {
        Some((a, b)) => (a.to_string(), b.to_string()),
        None => (whole, String::new()),
    }
}

/// What the consent and account pages say a scope allows: a scope OpenID Connect defines in
/// the page's language (`scope-NAME`), an API's own scope as the API described it.
pub fn scope_description(name: &str, description: &str) -> String {
    let builtin = tessera_protocol::oidc::OIDC_SCOPES.iter().any(|(n, d)| *n == name && *d == description);
    if builtin { t(&format!("scope-{name}")) } else { description.to_string() }
}

fn brand() -> Arc<Branding> {
    PAGE.try_with(|p| p.borrow().brand.clone()).unwrap_or_default()
}

/// The product name of the pages ("Tessera" unless branded).
pub fn product() -> String {
    brand().product_name.clone()
}

/// The logo shown above the pages, if branded.
pub fn logo() -> Option<String> {
    brand().logo_url.clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Plural forms select on numbers; outside a request the fallback language answers.
    #[test]
    fn plurals_and_the_fallback() {
        assert_eq!(tn("wait-seconds", "n", 1), "1 second");
        assert_eq!(tn("wait-seconds", "n", 5), "5 seconds");
        assert_eq!(t("no-such-key"), "no-such-key");
        assert_eq!(lang(), "en");
        assert_eq!(LANGUAGES, tessera_protocol::oidc::UI_LOCALES_SUPPORTED, "discovery advertises the catalogs");
        for (name, description) in tessera_protocol::oidc::OIDC_SCOPES {
            assert_eq!(scope_description(name, description), *description, "the English catalog says what the protocol says");
        }
        assert_eq!(scope_description("openid", "an API's own words"), "an API's own words");
    }

    #[test]
    fn languages_from_ui_locales_then_accept_language() {
        assert_eq!(choose(None, None), "en");
        assert_eq!(choose(None, Some("de-CH, de;q=0.9, en;q=0.8")), "de");
        assert_eq!(choose(None, Some("fr-FR, en;q=0.5, de;q=0.7")), "de", "by weight: de 0.7 before en 0.5");
        assert_eq!(choose(None, Some("de;q=0, en")), "en", "q=0 is 'not acceptable'");
        assert_eq!(choose(Some("fr de"), Some("en")), "de", "ui_locales first");
        assert_eq!(choose(Some("fr"), Some("de")), "de", "an unknown ui_locales falls back to the header");
        assert_eq!(choose(Some(""), Some("garbage;;;q=x,,")), "en");
    }

    /// Every message of the English catalog is in every other catalog (and no other way round:
    /// a key only one catalog has is a typo).
    #[test]
    fn catalogs_are_complete() {
        let keys = |lang: &str| -> std::collections::BTreeSet<String> {
            let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("locales").join(lang);
            let mut keys = std::collections::BTreeSet::new();
            for f in std::fs::read_dir(&dir).unwrap() {
                let text = std::fs::read_to_string(f.unwrap().path()).unwrap();
                for line in text.lines() {
                    if let Some((k, _)) = line.split_once(" =") {
                        if !k.starts_with([' ', '#', '-']) && !k.is_empty() {
                            keys.insert(k.trim().to_string());
                        }
                    }
                }
            }
            keys
        };
        let en = keys("en");
        assert!(en.len() > 50, "{}", en.len());
        for lang in &LANGUAGES[1..] {
            let other = keys(lang);
            let missing: Vec<_> = en.difference(&other).collect();
            let extra: Vec<_> = other.difference(&en).collect();
            assert!(missing.is_empty() && extra.is_empty(), "{lang}: missing {missing:?}, extra {extra:?}");
        }
    }

    /// Templates name only keys the catalog has.
    #[test]
    fn templates_use_known_keys() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let en = std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("locales/en/main.ftl")).unwrap();
        let mut files = vec![];
        for f in std::fs::read_dir(&dir).unwrap() {
            files.push(f.unwrap().path());
        }
        let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        for f in std::fs::read_dir(&src).unwrap() {
            files.push(f.unwrap().path());
        }
        for path in files.into_iter().filter(|p| p.is_file()) {
            let text = std::fs::read_to_string(&path).unwrap();
            for call in ["i18n::t(\"", "i18n::t1(\"", "i18n::t2(\"", "i18n::tn(\"", "i18n::around(\""] {
                for (i, _) in text.match_indices(call) {
                    let rest = &text[i + call.len()..];
                    let key = &rest[..rest.find('"').unwrap()];
                    if key.is_empty() || key.contains(' ') {
                        continue;
                    }
                    assert!(en.lines().any(|l| l.starts_with(&format!("{key} ="))), "{}: unknown message {key}", path.display());
                }
            }
        }
    }
}
