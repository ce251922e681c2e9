//! Template overrides (issue 15, `--template-dir DIR`): an operator's own version of a page,
//! a file of the page's name in the folder (`login.html`, `consent.html`, …, [`OVERRIDABLE`])
//! written in MiniJinja (Jinja2) syntax, auto-escaped, given the same variables the built-in
//! page gets and the functions `t(key)`, `t1(key, name, value)`, `product()`, `lang()` and
//! `logo()`. A page without a file in the folder stays the built-in one. The folder is read
//! once at start; a file that is not a page Tessera has, or does not parse, stops the start
//! with its name ([`load`]).

use askama::Template;
use axum::response::Html;
use serde::Serialize;
use std::path::Path;
use std::sync::Arc;

/// The pages that can be overridden, by file name.
pub const OVERRIDABLE: &[&str] = &["login.html", "consent.html", "error.html", "message.html", "device.html", "logout.html"];

/// The operator's templates.
pub struct Overrides {
    env: minijinja::Environment<'static>,
}

impl std::fmt::Debug for Overrides {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Overrides").field("pages", &self.env.templates().map(|(n, _)| n.to_string()).collect::<Vec<_>>()).finish()
    }
}

/// A page that can be overridden: its file name, and its variables as the override sees them.
pub trait Overridable: Template + Serialize {
    const FILE: &'static str;
}

/// Read the templates of `dir` (the `.html` files; others are ignored), or say what is wrong.
pub fn load(dir: &Path) -> Result<Overrides, String> {
    let mut env = minijinja::Environment::new();
    env.add_function("t", |key: String| crate::i18n::t(&key));
    env.add_function("t1", |key: String, name: String, value: String| crate::i18n::t_named(&key, &name, &value));
    env.add_function("product", crate::i18n::product);
    env.add_function("lang", || crate::i18n::lang().to_string());
    env.add_function("logo", || crate::i18n::logo().unwrap_or_default());
    let entries = std::fs::read_dir(dir).map_err(|e| format!("--template-dir {}: {e}", dir.display()))?;
    for entry in entries {
        let path = entry.map_err(|e| format!("--template-dir {}: {e}", dir.display()))?.path();
        let Some(name) = path.file_name().and_then(|n| n.to_str()).map(str::to_string) else { continue };
        if !name.ends_with(".html") {
            continue;
        }
        if !OVERRIDABLE.contains(&name.as_str()) {
            return Err(format!("--template-dir: {name} is not a page that can be overridden (these can: {})", OVERRIDABLE.join(", ")));
        }
        let source = std::fs::read_to_string(&path).map_err(|e| format!("--template-dir: reading {}: {e}", path.display()))?;
        env.add_template_owned(name.clone(), source).map_err(|e| format!("--template-dir: {name}: {e}"))?;
    }
    Ok(Overrides { env })
}

/// Render `page`: the operator's version when there is one, else the built-in one. An override
/// that fails at render time (an unknown variable in a filter, say) is logged and the built-in
/// page is shown instead: the page still works.
pub fn render<T: Overridable>(page: &T) -> Html<String> {
    if let Some(o) = crate::i18n::overrides() {
        if let Ok(t) = o.env.get_template(T::FILE) {
            match t.render(page) {
                Ok(html) => return Html(html),
                Err(e) => tracing::error!(error = %e, page = T::FILE, "the overriding template failed; the built-in page is shown"),
            }
        }
    }
    crate::pages::render(page)
}

/// The overrides as the pages' layer holds them.
pub type Shared = Option<Arc<Overrides>>;
