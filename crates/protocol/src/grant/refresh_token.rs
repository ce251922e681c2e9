//! The refresh token grant, RFC 6749 §6, with rotation per RFC 9700 §4.14.2.

use crate::error::OAuthError;
use crate::params::Params;
use crate::scope::Scopes;

/// RFC 6749 §6 refresh request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefreshRequest {
    pub refresh_token: String,
    pub scope: Option<Scopes>,
}

impl RefreshRequest {
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        let scope = match params.get("scope") {
            Some(s) => Some(Scopes::parse(s)?),
            None => None,
        };
        Ok(Self { refresh_token: params.require("refresh_token")?.to_string(), scope })
    }

    /// RFC 6749 §6: "The requested scope MUST NOT include any scope not originally granted by the
    /// resource owner, and if omitted is treated as equal to the scope originally granted."
    pub fn effective_scope(&self, granted: &Scopes) -> Result<Scopes, OAuthError> {
        match &self.scope {
            None => Ok(granted.clone()),
            Some(s) if s.is_empty() => Ok(granted.clone()),
            Some(s) if s.is_subset(granted) => Ok(s.clone()),
            Some(s) => Err(OAuthError::invalid_scope(format!("not originally granted: {}", s.difference(granted)))),
        }
    }
}

/// RFC 6749 §6: the token was issued to this client.
pub fn check_client(token_client_id: &str, client_id: &str) -> Result<(), OAuthError> {
    if token_client_id == client_id { Ok(()) } else { Err(OAuthError::invalid_grant("the refresh token was issued to another client")) }
}

/// A stored refresh token as [`decide`] sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredRefresh<'a> {
    pub client_id: &'a str,
    pub granted: &'a Scopes,
    /// Neither used (outside its grace period) nor revoked.
    pub live: bool,
}

/// What presenting a refresh token means, decided before anything is consumed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshDecision {
    /// Consume the token and store its successor with this scope, in one transaction; a consume
    /// that finds it used meanwhile is answered by [`not_taken`].
    Rotate { scope: Scopes },
    /// Deny without consuming: a live token's client asked for more than was granted, and a
    /// client's mistake does not cost it its grant.
    Refuse(OAuthError),
    /// Deny, consuming the token first: a used one is settled by the consume ([`not_taken`]:
    /// reuse detection), and `error` is the answer when the consume takes it.
    SettleThenRefuse(OAuthError),
    /// Another client presented it: the token has leaked. Consume it and end its family
    /// (RFC 9700 §4.14.2), then deny with `error`.
    EndLeakedFamily(OAuthError),
}

/// The decision for `req` presented by `client_id` for `stored` (RFC 6749 §6, RFC 9700 §4.14.2).
pub fn decide(req: &RefreshRequest, stored: &StoredRefresh<'_>, client_id: &str) -> RefreshDecision {
    if let Err(e) = check_client(stored.client_id, client_id) {
        return RefreshDecision::EndLeakedFamily(e);
    }
    match req.effective_scope(stored.granted) {
        Ok(scope) => RefreshDecision::Rotate { scope },
        Err(e) if stored.live => RefreshDecision::Refuse(e),
        Err(e) => RefreshDecision::SettleThenRefuse(e),
    }
}

/// A refresh token the atomic consume did not take, as it was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotTaken {
    /// No such token (or none any more).
    Unknown,
    /// Found spent: `rotated` (used for a successor) and/or `revoked`.
    Spent { rotated: bool, revoked: bool },
}

/// The answer for a token that was not taken, and whether its family is to be revoked and the
/// reuse recorded. RFC 9700 §4.14.2: presenting a rotated token revokes its whole family ("the
/// authorization server cannot determine whether the attacker or the legitimate client is
/// trying to access"); a token already revoked is only refused.
pub fn not_taken(found: NotTaken) -> (OAuthError, bool) {
    match found {
        NotTaken::Unknown => (OAuthError::invalid_grant("unknown refresh token"), false),
        NotTaken::Spent { rotated, revoked } => (OAuthError::invalid_grant("the refresh token is no longer valid"), rotated && !revoked),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    fn req(scope: Option<&str>) -> RefreshRequest {
        RefreshRequest { refresh_token: "r".into(), scope: scope.map(|s| Scopes::parse(s).unwrap()) }
    }

    /// RFC 6749 §6: scope may be narrowed, never widened; omitted means the original grant.
    #[test]
    fn rfc6749_6_scope_narrowing() {
        let granted = Scopes::parse("a b").unwrap();
        assert_eq!(req(None).effective_scope(&granted).unwrap().to_string(), "a b");
        assert_eq!(req(Some("a")).effective_scope(&granted).unwrap().to_string(), "a");
        assert_eq!(req(Some("a c")).effective_scope(&granted).unwrap_err().code, ErrorCode::InvalidScope);
    }

    /// RFC 6749 §6: a refresh token is bound to the client it was issued to.
    #[test]
    fn rfc6749_6_client_binding() {
        assert!(check_client("c1", "c1").is_ok());
        assert_eq!(check_client("c1", "c2").unwrap_err().code, ErrorCode::InvalidGrant);
    }

    /// (request scope, token's client, live, presenting client) → decision: the one helper
    /// every row goes through.
    fn decides(scope: Option<&str>, owner: &str, live: bool, client: &str, expected: &str) {
        let granted = Scopes::parse("a b").unwrap();
        let stored = StoredRefresh { client_id: owner, granted: &granted, live };
        let got = match decide(&req(scope), &stored, client) {
            RefreshDecision::Rotate { scope } => format!("rotate {scope}"),
            RefreshDecision::Refuse(e) => format!("refuse {}", e.code.as_str()),
            RefreshDecision::SettleThenRefuse(e) => format!("settle, refuse {}", e.code.as_str()),
            RefreshDecision::EndLeakedFamily(e) => format!("end family, refuse {}", e.code.as_str()),
        };
        assert_eq!(got, expected, "scope={scope:?} owner={owner} live={live} client={client}");
    }

    /// RFC 6749 §6 (client binding, no widening) and RFC 9700 §4.14.2 (rotation; a leaked
    /// token's family ends), table-driven.
    #[test]
    fn rfc9700_4_14_2_decisions() {
        decides(None, "c1", true, "c1", "rotate a b");
        decides(Some("b"), "c1", true, "c1", "rotate b");
        // A used token of its own client is still sent to the consume, which settles it.
        decides(None, "c1", false, "c1", "rotate a b");
        decides(Some("a c"), "c1", true, "c1", "refuse invalid_scope");
        decides(Some("a c"), "c1", false, "c1", "settle, refuse invalid_scope");
        decides(None, "c1", true, "c2", "end family, refuse invalid_grant");
        decides(Some("a c"), "c1", false, "c2", "end family, refuse invalid_grant");
    }

    /// RFC 9700 §4.14.2: a rotated token presented again revokes the family; revoked or unknown
    /// ones are only refused.
    #[test]
    fn rfc9700_4_14_2_reuse_revokes_the_family() {
        let answer = |n| {
            let (e, revoke) = not_taken(n);
            (e.code, e.description, revoke)
        };
        let spent = |rotated, revoked| NotTaken::Spent { rotated, revoked };
        assert_eq!(answer(spent(true, false)), (ErrorCode::InvalidGrant, "the refresh token is no longer valid".into(), true));
        assert_eq!(answer(spent(true, true)), (ErrorCode::InvalidGrant, "the refresh token is no longer valid".into(), false));
        assert_eq!(answer(spent(false, true)), (ErrorCode::InvalidGrant, "the refresh token is no longer valid".into(), false));
        assert_eq!(answer(NotTaken::Unknown), (ErrorCode::InvalidGrant, "unknown refresh token".into(), false));
    }

    #[test]
    fn rfc6749_6_refresh_token_required() {
        let p = Params::parse(b"grant_type=refresh_token").unwrap();
        assert_eq!(RefreshRequest::parse(&p).unwrap_err().code, ErrorCode::InvalidRequest);
    }
}
