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

impl<S> Layer<S> for RequireScope {
    type Service = RequireScopeService<S>;
    fn layer(&self, inner: S) -> RequireScopeService<S> {
        RequireScopeService { inner, scope: self.0 }
    }
}

#[derive(Clone)]
pub struct RequireScopeService<S> {
    inner: S,
    scope: &'static str,
}

/// The guard that validated a request, kept beside the principal for scope-refusal counts.
#[derive(Clone)]
struct ValidatedBy(Guard);

impl<S> Service<Request> for RequireScopeService<S>
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
        let scope = self.scope;
        Box::pin(async move {
            let Some(p) = req.extensions().get::<Principal>() else {
                return Ok(GuardError::NotInstalled.into_response());
            };
            if !p.has_scope(scope) {
                if let Some(ValidatedBy(g)) = req.extensions().get::<ValidatedBy>() {
                    g.count_scope_refusal();
                }
                return Ok(GuardError::InsufficientScope(scope.to_string()).into_response());
            }
            inner.call(req).await.map(IntoResponse::into_response)
        })
    }
}

/// Per-route DPoP requirement (RFC 9449 §7): `handler.layer(RequireDpop)` refuses bearer tokens
/// on this route (401 with the `DPoP` challenge). Needs [`Guard::layer`] in front (fails closed).
#[derive(Debug, Clone, Copy)]
pub struct RequireDpop;

impl<S> Layer<S> for RequireDpop {
    type Service = RequireDpopService<S>;
    fn layer(&self, inner: S) -> RequireDpopService<S> {
        RequireDpopService { inner }
    }
}

#[derive(Clone)]
pub struct RequireDpopService<S> {
    inner: S,
}

impl<S> Service<Request> for RequireDpopService<S>
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
        Box::pin(async move {
            let Some(p) = req.extensions().get::<Principal>() else {
                return Ok(GuardError::NotInstalled.into_response());
            };
            if p.dpop_jkt.is_none() {
                let metadata = req.extensions().get::<ValidatedBy>().and_then(|ValidatedBy(g)| g.resource_metadata_url().map(str::to_string));
                return Ok(GuardError::DpopRequired.into_response_naming(metadata.as_deref()));
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
