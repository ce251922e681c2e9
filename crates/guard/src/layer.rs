//! axum/tower integration: [`GuardLayer`] validates the token and stores the [`Principal`] in
//! the request's extensions; [`RequireScope`] demands a scope per route; [`Principal`] is an
//! extractor.
//!
//! ```text
//! Router::new()
//!     .route("/notes", get(list.layer(RequireScope("notes.read"))))
//!     .layer(guard.layer())
//! ```

use crate::Guard;
use crate::error::GuardError;
use crate::token::Principal;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tower::{Layer, Service};

type BoxFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

/// Validates the bearer token of every request (see [`Guard::layer`], [`Guard::require`]).
#[derive(Clone)]
pub struct GuardLayer {
    guard: Guard,
    required: Arc<[String]>,
}

impl GuardLayer {
    pub(crate) fn new(guard: Guard, required: Vec<String>) -> Self {
        Self { guard, required: required.into() }
    }
}

impl<S> Layer<S> for GuardLayer {
    type Service = GuardService<S>;
    fn layer(&self, inner: S) -> GuardService<S> {
        GuardService { inner, guard: self.guard.clone(), required: self.required.clone() }
    }
}

#[derive(Clone)]
pub struct GuardService<S> {
    inner: S,
    guard: Guard,
    required: Arc<[String]>,
}

/// RFC 6750 §3.1: insufficient_scope names every scope the resource needs.
fn check_scopes(guard: &Guard, p: &Principal, required: &[String]) -> Result<(), GuardError> {
    if required.iter().all(|s| p.has_scope(s)) {
        return Ok(());
    }
    guard.count_scope_refusal();
    Err(GuardError::InsufficientScope(required.join(" ")))
}

impl<S> Service<Request> for GuardService<S>
where
    S: Service<Request, Error = Infallible> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request) -> BoxFuture {
        // The clone is the one that was not polled ready; keep the ready one for this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let guard = self.guard.clone();
        let required = self.required.clone();
        Box::pin(async move {
            let principal = match req.extensions().get::<Principal>() {
                Some(p) => p.clone(),
                None => match guard.authenticate_request(req.method(), req.headers(), req.uri()).await {
                    Ok(p) => p,
                    Err(e) => return Ok(e.into_response_naming(guard.resource_metadata_url())),
                },
            };
            if let Err(e) = check_scopes(&guard, &principal, &required) {
                return Ok(e.into_response_naming(guard.resource_metadata_url()));
            }
            req.extensions_mut().insert(principal);
            req.extensions_mut().insert(ValidatedBy(guard));
            inner.call(req).await.map(IntoResponse::into_response)
        })
    }
}

/// Per-route scope requirement: `handler.layer(RequireScope("notes.write"))`. Needs
/// [`Guard::layer`] in front of the route; without it every request is refused (500, fails
/// closed).
#[derive(Debug, Clone, Copy)]
pub struct RequireScope(pub &'static str);

/// Per-route DPoP requirement (RFC 9449 §7): `handler.layer(RequireDpop)` refuses bearer tokens
/// on this route (401 with the `DPoP` challenge). Needs [`Guard::layer`] in front (fails closed).
#[derive(Debug, Clone, Copy)]
pub struct RequireDpop;

/// Per-route role requirement: `handler.layer(RequireRole("editor"))` refuses (403,
/// `insufficient_scope`) a token whose `roles` lack it. Needs [`Guard::layer`] in front (fails
/// closed).
#[derive(Debug, Clone, Copy)]
pub struct RequireRole(pub &'static str);

/// What a per-route requirement demands of the principal [`Guard::layer`] validated.
#[derive(Debug, Clone, Copy)]
enum Requirement {
    Scope(&'static str),
    Dpop,
    Role(&'static str),
}

impl Requirement {
    /// The refusal, if the principal does not meet it.
    fn refusal(self, p: &Principal, by: Option<&Guard>) -> Option<Response> {
        match self {
            Self::Scope(scope) if !p.has_scope(scope) => {
                if let Some(g) = by {
                    g.count_scope_refusal();
                }
                Some(GuardError::InsufficientScope(scope.to_string()).into_response())
            }
            Self::Dpop if p.dpop_jkt.is_none() => Some(GuardError::DpopRequired.into_response_naming(by.and_then(Guard::resource_metadata_url))),
            Self::Role(role) if !p.has_role(role) => {
                if let Some(g) = by {
                    g.count_scope_refusal();
                }
                Some(GuardError::MissingRole(role.to_string()).into_response())
            }
            Self::Scope(_) | Self::Dpop | Self::Role(_) => None,
        }
    }
}

impl<S> Layer<S> for RequireScope {
    type Service = RequireService<S>;
    fn layer(&self, inner: S) -> RequireService<S> {
        RequireService { inner, requirement: Requirement::Scope(self.0) }
    }
}

impl<S> Layer<S> for RequireRole {
    type Service = RequireService<S>;
    fn layer(&self, inner: S) -> RequireService<S> {
        RequireService { inner, requirement: Requirement::Role(self.0) }
    }
}

impl<S> Layer<S> for RequireDpop {
    type Service = RequireService<S>;
    fn layer(&self, inner: S) -> RequireService<S> {
        RequireService { inner, requirement: Requirement::Dpop }
    }
}

/// The service of [`RequireScope`], [`RequireRole`] and [`RequireDpop`].
#[derive(Clone)]
pub struct RequireService<S> {
    inner: S,
    requirement: Requirement,
}

/// The former name of [`RequireService`].
pub type RequireScopeService<S> = RequireService<S>;

/// The guard that validated a request, kept beside the principal for scope-refusal counts.
#[derive(Clone)]
struct ValidatedBy(Guard);

impl<S> Service<Request> for RequireService<S>
where
    S: Service<Request, Error = Infallible> + Clone + Send + 'static,
    S::Response: IntoResponse,
    S::Future: Send + 'static,
{
    type Response = Response;
    type Error = Infallible;
    type Future = BoxFuture;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> BoxFuture {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let requirement = self.requirement;
        Box::pin(async move {
            let Some(p) = req.extensions().get::<Principal>() else {
                return Ok(GuardError::NotInstalled.into_response());
            };
            let by = req.extensions().get::<ValidatedBy>().map(|ValidatedBy(g)| g);
            if let Some(refused) = requirement.refusal(p, by) {
                return Ok(refused);
            }
            inner.call(req).await.map(IntoResponse::into_response)
        })
    }
}

/// The verified caller, for handlers behind [`Guard::layer`].
impl<S: Send + Sync> FromRequestParts<S> for Principal {
    type Rejection = GuardError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, GuardError> {
        parts.extensions.get::<Principal>().cloned().ok_or(GuardError::NotInstalled)
    }
}
