//! The authorization code grant at the token endpoint, RFC 6749 §4.1.3 with RFC 7636 §4.5–4.6
//! and RFC 9700 §4.8.2.

use crate::error::OAuthError;
use crate::params::Params;
use crate::pkce::CodeChallenge;

/// RFC 6749 §4.1.3 access token request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRequest {
    pub code: String,
    pub redirect_uri: Option<String>,
    pub code_verifier: Option<String>,
}

impl CodeRequest {
    pub fn parse(params: &Params) -> Result<Self, OAuthError> {
        Ok(Self {
            code: params.require("code")?.to_string(),
            redirect_uri: params.get("redirect_uri").map(str::to_string),
            code_verifier: params.get("code_verifier").map(str::to_string),
        })
    }

    /// Check the request against what the code was bound to when it was issued.
    ///
    /// RFC 6749 §4.1.3: the server MUST "ensure that the authorization code was issued to the
    /// authenticated confidential client, or ... to the client identified by client_id", "verify
    /// that the authorization code is valid", and "ensure that the redirect_uri parameter is
    /// present if the redirect_uri parameter was included in the initial authorization request
    /// ... and if included ensure that their values are identical."
    pub fn check(&self, binding: &CodeBinding, client_id: &str, now: i64) -> Result<(), OAuthError> {
        self.check_binding(binding, client_id)?;
        if now >= binding.expires_at {
            return Err(OAuthError::invalid_grant("the code has expired"));
        }
        Ok(())
    }

    /// Whether the presenter is the client the code was issued to, with the redirect URI and
    /// PKCE verifier it was bound to ([`CodeRequest::check`] without the expiry).
    ///
    /// This decides what a used code presented again means. RFC 6749 §4.1.2: "If an
    /// authorization code is used more than once, the authorization server MUST deny the request
    /// and SHOULD revoke (when possible) all tokens previously issued based on that authorization
    /// code." Only a replay that passes this check revokes the grant: a public client_id is no
    /// secret, so anyone holding a used code could otherwise end the victim's grant with any
    /// client's id (RFC 6749 §10.5: codes are bound to the client; RFC 9700 §4.2.1).
    pub fn check_binding(&self, binding: &CodeBinding, client_id: &str) -> Result<(), OAuthError> {
        if binding.client_id != client_id {
            return Err(OAuthError::invalid_grant("the code was issued to another client"));
        }
        match (&self.redirect_uri, binding.redirect_uri_given) {
            (Some(r), _) if *r != binding.redirect_uri => {
                return Err(OAuthError::invalid_grant("redirect_uri does not match the authorization request"));
            }
            (None, true) => return Err(OAuthError::invalid_grant("redirect_uri is required: it was in the authorization request")),
            _ => {}
        }
        match (&binding.code_challenge, &self.code_verifier) {
            // RFC 7636 §4.6.
            (Some(c), Some(v)) => c.verify(v),
            (Some(_), None) => Err(OAuthError::invalid_grant("code_verifier is required")),
            // RFC 9700 §4.8.2: a verifier for a code issued without a challenge is a downgrade attempt.
            (None, Some(_)) => Err(OAuthError::invalid_grant("code_verifier sent but the authorization request had no code_challenge")),
            (None, None) => Ok(()),
        }
    }
}

/// What an authorization code is bound to (stored with it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeBinding {
    pub client_id: String,
    pub redirect_uri: String,
    pub redirect_uri_given: bool,
    pub code_challenge: Option<CodeChallenge>,
    pub expires_at: i64,
}

/// What presenting a stored code means, decided before anything is consumed
/// ([`decide`]). RFC 6749 §4.1.2: "If an authorization code is used more than once, the
/// authorization server MUST deny the request and SHOULD revoke (when possible) all tokens
/// previously issued based on that authorization code."
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeDecision {
    /// Issue the tokens, consuming the code in the same transaction; if the consume finds it used
    /// meanwhile, that is a [`CodeDecision::Replay`] (the presenter passed the binding).
    Redeem,
    /// The code's own client presented a used code: deny, revoke the grant's tokens, record it.
    Replay,
    /// Deny with `error`. `consume`: a failed redemption uses the code up, as a successful one
    /// does; `replay_if_used`: when that consume finds the code used meanwhile, it is a replay
    /// (only for its own client, with its redirect URI and verifier: RFC 6749 §10.5).
    Refuse { error: OAuthError, consume: bool, replay_if_used: bool },
}

/// The decision for `req`, presented by `client_id` at `now`, for a code bound to `binding`
/// that is `used` or not. Only the code's own client ends the grant by presenting a used code
/// ([`CodeRequest::check_binding`]): a public client_id is no secret, so anyone else holding a
/// used code is only refused and the grant stays.
pub fn decide(req: &CodeRequest, binding: &CodeBinding, used: bool, client_id: &str, now: i64) -> CodeDecision {
    let own_client = req.check_binding(binding, client_id);
    match (used, own_client) {
        (true, Ok(())) => CodeDecision::Replay,
        (true, Err(error)) => CodeDecision::Refuse { error, consume: false, replay_if_used: false },
        (false, own) => match req.check(binding, client_id, now) {
            Ok(()) => CodeDecision::Redeem,
            Err(error) => CodeDecision::Refuse { error, consume: true, replay_if_used: own.is_ok() },
        },
    }
}

/// RFC 6749 §4.1.2 recommends a maximum code lifetime of 10 minutes; Tessera uses 60 seconds.
pub const CODE_LIFETIME_SECS: i64 = 60;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ErrorCode;

    const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

    fn binding(pkce: bool, given: bool) -> CodeBinding {
        CodeBinding {
            client_id: "c1".into(),
            redirect_uri: "https://app.example/cb".into(),
            redirect_uri_given: given,
            code_challenge: pkce.then(|| CodeChallenge::parse(CHALLENGE, Some("S256")).unwrap()),
            expires_at: 1_000 + CODE_LIFETIME_SECS,
        }
    }
    fn req(redirect: Option<&str>, verifier: Option<&str>) -> CodeRequest {
        CodeRequest { code: "x".into(), redirect_uri: redirect.map(Into::into), code_verifier: verifier.map(Into::into) }
    }
    fn check(r: CodeRequest, b: CodeBinding, client: &str, now: i64) -> Result<(), ErrorCode> {
        r.check(&b, client, now).map_err(|e| e.code)
    }
    const CB: Option<&str> = Some("https://app.example/cb");

    #[test]
    fn rfc6749_4_1_3_valid() {
        assert_eq!(check(req(CB, Some(VERIFIER)), binding(true, true), "c1", 1_000), Ok(()));
    }

    /// RFC 6749 §4.1.3: code issued to another client.
    #[test]
    fn rfc6749_4_1_3_other_client() {
        assert_eq!(check(req(CB, Some(VERIFIER)), binding(true, true), "c2", 1_000), Err(ErrorCode::InvalidGrant));
    }

    /// RFC 6749 §4.1.2: codes are short-lived (60 s here).
    #[test]
    fn rfc6749_4_1_2_expired_code() {
        assert_eq!(check(req(CB, Some(VERIFIER)), binding(true, true), "c1", 1_000 + CODE_LIFETIME_SECS), Err(ErrorCode::InvalidGrant));
        assert_eq!(check(req(CB, Some(VERIFIER)), binding(true, true), "c1", 1_000 + CODE_LIFETIME_SECS - 1), Ok(()));
    }

    /// RFC 6749 §4.1.3: redirect_uri present and identical when the request had it.
    #[test]
    fn rfc6749_4_1_3_redirect_uri_binding() {
        assert_eq!(check(req(None, Some(VERIFIER)), binding(true, true), "c1", 1_000), Err(ErrorCode::InvalidGrant));
        assert_eq!(check(req(Some("https://app.example/other"), Some(VERIFIER)), binding(true, true), "c1", 1_000), Err(ErrorCode::InvalidGrant));
        assert_eq!(check(req(None, Some(VERIFIER)), binding(true, false), "c1", 1_000), Ok(()));
        assert_eq!(check(req(Some("https://app.example/other"), Some(VERIFIER)), binding(true, false), "c1", 1_000), Err(ErrorCode::InvalidGrant));
    }

    /// RFC 6749 §4.1.2, §10.5: what a replay may revoke is decided by the binding alone: the
    /// code's own client with its redirect URI and verifier, whether or not the code expired.
    #[test]
    fn rfc6749_4_1_2_replay_binding() {
        let own = |r: CodeRequest, client: &str| r.check_binding(&binding(true, true), client).is_ok();
        assert!(own(req(CB, Some(VERIFIER)), "c1"));
        assert!(req(CB, Some(VERIFIER)).check(&binding(true, true), "c1", 1_000 + CODE_LIFETIME_SECS).is_err(), "expired");
        assert!(req(CB, Some(VERIFIER)).check_binding(&binding(true, true), "c1").is_ok(), "but still bound to c1");
        assert!(!own(req(CB, Some(VERIFIER)), "c2"), "another client");
        assert!(!own(req(CB, None), "c1"), "no verifier");
        assert!(!own(req(CB, Some("wrong-verifier-wrong-verifier-wrong-verifier-x")), "c1"), "wrong verifier");
        assert!(!own(req(Some("https://app.example/other"), Some(VERIFIER)), "c1"), "another redirect URI");
    }

    /// What a presentation decides, per case: (request, used, presenting client, time) →
    /// decision. The one helper every row goes through.
    fn decides(r: CodeRequest, used: bool, client: &str, now: i64, expected: &str) {
        let got = match decide(&r, &binding(true, true), used, client, now) {
            CodeDecision::Redeem => "redeem".to_string(),
            CodeDecision::Replay => "replay".to_string(),
            CodeDecision::Refuse { error, consume, replay_if_used } => {
                format!("refuse {}{}{}", error.code.as_str(), if consume { " consume" } else { "" }, if replay_if_used { " replay-if-used" } else { "" })
            }
        };
        assert_eq!(got, expected, "used={used} client={client} now={now} {r:?}");
    }

    /// RFC 6749 §4.1.2 (single use, replay revokes), §4.1.3 (binding), §10.5 (only the code's
    /// own client ends the grant), RFC 7636 §4.6 (verifier), table-driven.
    #[test]
    fn rfc6749_4_1_2_decisions() {
        let late = 1_000 + CODE_LIFETIME_SECS;
        let wrong = Some("wrong-verifier-wrong-verifier-wrong-verifier-x");
        decides(req(CB, Some(VERIFIER)), false, "c1", 1_000, "redeem");
        decides(req(CB, Some(VERIFIER)), true, "c1", 1_000, "replay");
        // A used code presented by its own client after it expired is still a replay.
        decides(req(CB, Some(VERIFIER)), true, "c1", late, "replay");
        // Anyone else with a used code is refused; the grant stays, nothing is consumed.
        decides(req(CB, Some(VERIFIER)), true, "c2", 1_000, "refuse invalid_grant");
        decides(req(CB, wrong), true, "c1", 1_000, "refuse invalid_grant");
        decides(req(Some("https://app.example/other"), Some(VERIFIER)), true, "c1", 1_000, "refuse invalid_grant");
        // A failed redemption of a live code uses it up; a race with a redemption is a replay
        // only when its own client (binding passed) is the one refused.
        decides(req(CB, Some(VERIFIER)), false, "c1", late, "refuse invalid_grant consume replay-if-used");
        decides(req(CB, wrong), false, "c1", 1_000, "refuse invalid_grant consume");
        decides(req(CB, None), false, "c1", 1_000, "refuse invalid_grant consume");
        decides(req(CB, Some(VERIFIER)), false, "c2", 1_000, "refuse invalid_grant consume");
        decides(req(None, Some(VERIFIER)), false, "c1", 1_000, "refuse invalid_grant consume");
    }

    /// RFC 7636 §4.6 and RFC 9700 §4.8.2: verifier required with a challenge; refused without one.
    #[test]
    fn rfc7636_4_6_verifier_rules() {
        assert_eq!(check(req(CB, None), binding(true, true), "c1", 1_000), Err(ErrorCode::InvalidGrant));
        assert_eq!(check(req(CB, Some(VERIFIER)), binding(false, true), "c1", 1_000), Err(ErrorCode::InvalidGrant));
        assert_eq!(check(req(CB, None), binding(false, true), "c1", 1_000), Ok(()));
    }
}
