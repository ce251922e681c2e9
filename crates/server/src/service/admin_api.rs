//! Who calls the admin REST API (`/admin/v1/`, issue 16): the bearer of one of Tessera's own
//! access tokens for the built-in admin API ([`ADMIN_API`]), with `tessera.admin` (everything)
//! or `tessera.read` (reads only). Automation gets one with client credentials
//! (`tessera client create --grant-type client_credentials --scope tessera.admin`). The token
//! is checked as introspection checks it: signature by a published key, `typ` `at+jwt`, issuer,
//! expiry, revocation, and here its audience and scope; a user's token counts only when the user
//! is an administrator (`tessera user update --admin`).

use crate::service::Tessera;
use serde_json::Value;

/// The built-in API's identifier (RFC 8707: an absolute URI), the access tokens' audience.
pub const ADMIN_API: &str = "urn:tessera:admin";
/// Every admin operation.
pub const SCOPE_ADMIN: &str = "tessera.admin";
/// Reads only.
pub const SCOPE_READ: &str = "tessera.read";
/// The built-in API's scopes, with what a consent page would say.
pub const ADMIN_SCOPES: [(&str, &str); 2] = [(SCOPE_ADMIN, "Administer Tessera"), (SCOPE_READ, "Read Tessera's configuration")];

/// A verified admin API caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdminCaller {
    pub client_id: String,
    /// The token's `sub`: the client itself (client credentials) or a user.
    pub subject: String,
    /// `tessera.admin` was granted (else `tessera.read` only).
    pub can_write: bool,
}

impl AdminCaller {
    /// The audit log's actor: `client:ID` for a client acting for itself, else the user's id.
    pub fn actor(&self) -> String {
        if self.subject == self.client_id { format!("client:{}", self.client_id) } else { self.subject.clone() }
    }
}

/// Why a call was refused (RFC 6750 §3.1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AdminAuthError {
    /// No bearer token: 401.
    Missing,
    /// Not a live admin API token: 401 `invalid_token`.
    Invalid(&'static str),
    /// Neither admin scope: 403 `insufficient_scope`.
    Forbidden,
}

impl Tessera {
    /// Check the bearer token of an admin API call.
    pub async fn admin_caller(&self, token: Option<&str>) -> Result<AdminCaller, crate::service::ServiceError> {
        self.admin_caller_checked(token).await.map_err(|e| {
            let (code, description) = match e {
                AdminAuthError::Missing => (tessera_protocol::ErrorCode::InvalidClient, "an access token for the admin API is required"),
                AdminAuthError::Invalid(why) => (tessera_protocol::ErrorCode::InvalidClient, why),
                AdminAuthError::Forbidden => {
                    (tessera_protocol::ErrorCode::AccessDenied, "the token grants neither tessera.admin nor tessera.read, or its user is not an administrator")
                }
            };
            crate::service::ServiceError::OAuth(tessera_protocol::OAuthError::new(code, description))
        })
    }

    /// [`Tessera::admin_caller`], with the refusal as a value.
    pub async fn admin_caller_checked(&self, token: Option<&str>) -> Result<AdminCaller, AdminAuthError> {
        let token = token.ok_or(AdminAuthError::Missing)?;
        let invalid = AdminAuthError::Invalid("the access token is not a live token for the admin API");
        let t = self.live_access_token(token).await.map_err(|_| AdminAuthError::Invalid("the token could not be checked"))?.ok_or(invalid)?;
        let c = t.claims();
        let text = |k: &str| c.get(k).and_then(Value::as_str);
        let aud_ok = match c.get("aud") {
            Some(Value::String(a)) => a == ADMIN_API,
            Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(ADMIN_API)),
            _ => false,
        };
        if !aud_ok {
            return Err(AdminAuthError::Invalid("the access token is not for the admin API (its audience)"));
        }
        // A sender-constrained token would need its proof checked; the admin API takes bearer
        // tokens only.
        if c.get("cnf").is_some() {
            return Err(AdminAuthError::Invalid("DPoP-bound tokens are not accepted by the admin API"));
        }
        let (client_id, subject) = (text("client_id").unwrap_or("").to_string(), text("sub").unwrap_or("").to_string());
        // A user's token acts with that user's authority: only an administrator's (enabled, not
        // deleted) counts; anyone else's consent to "Administer Tessera" gives an app nothing.
        if subject != client_id {
            let admin = self.active_user(&subject).await.map_err(|_| AdminAuthError::Invalid("the token could not be checked"))?.is_some_and(|u| u.is_admin);
            if !admin {
                return Err(AdminAuthError::Forbidden);
            }
        }
        let scopes: Vec<&str> = text("scope").unwrap_or("").split(' ').collect();
        let can_write = scopes.contains(&SCOPE_ADMIN);
        if !can_write && !scopes.contains(&SCOPE_READ) {
            return Err(AdminAuthError::Forbidden);
        }
        Ok(AdminCaller { client_id, subject, can_write })
    }
}
