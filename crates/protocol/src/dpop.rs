//! DPoP (RFC 9449) at the authorization server: the rules that decide what a proof binds, once
//! the proof itself was verified (signature, `htm`, `htu`, `iat`, replay: `tessera-dpop` and
//! the service). Pure: the callers pass the thumbprints.

use crate::error::{ErrorCode, OAuthError};

/// RFC 9449 §5: `token_type` of a token bound to a key.
pub const TOKEN_TYPE_DPOP: &str = "DPoP";
/// RFC 6750: `token_type` of a bearer token.
pub const TOKEN_TYPE_BEARER: &str = "Bearer";

/// RFC 9449 §7.1 / §12.2: the proof is missing or invalid.
pub fn invalid_proof(description: impl Into<String>) -> OAuthError {
    OAuthError::new(ErrorCode::InvalidDpopProof, description)
}

/// RFC 9449 §10: the `dpop_jkt` authorization request parameter, the base64url (no padding)
/// SHA-256 JWK thumbprint (RFC 7638) of the key the client will prove at the token endpoint.
pub fn parse_jkt(value: &str) -> Result<String, OAuthError> {
    let well_formed = value.len() == 43 && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if well_formed { Ok(value.to_string()) } else { Err(OAuthError::invalid_request("dpop_jkt must be a base64url SHA-256 JWK thumbprint (RFC 7638)")) }
}

/// What a verified proof (its key's thumbprint) means for a grant whose code or refresh token
/// may already be bound to a key: RFC 9449 §10.1 (a code requested with `dpop_jkt`) and §5 (a
/// public client's refresh token). Unbound values accept any proof, or none.
pub fn check_binding(bound: Option<&str>, presented: Option<&str>, what: &str) -> Result<(), OAuthError> {
    match (bound, presented) {
        (None, _) => Ok(()),
        (Some(_), None) => Err(invalid_proof(format!("this {what} is bound to a DPoP key: a DPoP proof made with it is required"))),
        (Some(b), Some(p)) if b == p => Ok(()),
        (Some(_), Some(_)) => Err(invalid_proof(format!("this {what} is bound to another DPoP key"))),
    }
}

/// RFC 9449 §5: "refresh tokens issued to public clients MUST be bound to the DPoP key" — a
/// confidential client's refresh token is bound by its client authentication instead.
pub fn refresh_binding(public_client: bool, presented: Option<&str>) -> Option<String> {
    if public_client { presented.map(str::to_string) } else { None }
}

/// A client registered to require DPoP (`tessera client create --require-dpop`) may not get
/// bearer tokens: every token request needs a proof.
pub fn check_required(required: bool, presented: Option<&str>) -> Result<(), OAuthError> {
    if required && presented.is_none() { Err(invalid_proof("this client must send a DPoP proof (RFC 9449) with every token request")) } else { Ok(()) }
}

/// The `token_type` of an access token bound to `jkt` (or not bound).
pub fn token_type(jkt: Option<&str>) -> &'static str {
    if jkt.is_some() { TOKEN_TYPE_DPOP } else { TOKEN_TYPE_BEARER }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JKT: &str = "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs";
    const OTHER: &str = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I";

    /// One row of a decision table: the input, and the error code expected (None: allowed).
    fn check(got: Result<(), OAuthError>, expected: Option<ErrorCode>) {
        assert_eq!(got.err().map(|e| e.code), expected);
    }

    #[test]
    fn rfc9449_10_dpop_jkt_is_a_sha256_thumbprint() {
        assert_eq!(parse_jkt(JKT).as_deref(), Ok(JKT));
        for bad in ["", "short", &format!("{JKT}A"), &JKT.replace('-', "+"), &JKT.replace('_', "/"), &format!("{}=", &JKT[..42])] {
            assert_eq!(parse_jkt(bad).map_err(|e| e.code), Err(ErrorCode::InvalidRequest), "{bad:?}");
        }
    }

    #[test]
    fn rfc9449_10_1_and_5_bound_values_need_a_proof_with_their_key() {
        let rows: [(Option<&str>, Option<&str>, Option<ErrorCode>); 5] = [
            (None, None, None),
            (None, Some(JKT), None),
            (Some(JKT), Some(JKT), None),
            (Some(JKT), None, Some(ErrorCode::InvalidDpopProof)),
            (Some(JKT), Some(OTHER), Some(ErrorCode::InvalidDpopProof)),
        ];
        for (bound, presented, expected) in rows {
            check(check_binding(bound, presented, "code"), expected);
        }
    }

    #[test]
    fn rfc9449_5_only_public_clients_refresh_tokens_are_bound() {
        assert_eq!(refresh_binding(true, Some(JKT)).as_deref(), Some(JKT));
        assert_eq!(refresh_binding(false, Some(JKT)), None);
        assert_eq!(refresh_binding(true, None), None);
    }

    #[test]
    fn a_client_that_requires_dpop_gets_no_bearer_token() {
        check(check_required(true, None), Some(ErrorCode::InvalidDpopProof));
        check(check_required(true, Some(JKT)), None);
        check(check_required(false, None), None);
        assert_eq!((token_type(Some(JKT)), token_type(None)), ("DPoP", "Bearer"));
    }
}
