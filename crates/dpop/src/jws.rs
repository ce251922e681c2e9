//! JWS signatures (RFC 7515 §5.2) checked against a registered JWK Set (RFC 7517 §5) rather
//! than a key the token carries: the JWT bearer grant's assertions (RFC 7523 §3 item 9, "The
//! JWT MUST be digitally signed"). Pure: the claims are returned for the caller's rules.

use crate::{Compact, split_compact, verify_signature};
use serde_json::{Map, Value};

/// An assertion larger than this is refused before it is decoded.
pub const MAX_JWS_LEN: usize = 8 * 1024;

/// Why a JWS was refused; each `Display` is safe to send as an `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwsError {
    #[error("the assertion is not a well-formed JWT: {0}")]
    Malformed(&'static str),
    #[error("the assertion's alg is not accepted (asymmetric algorithms only)")]
    Alg,
    #[error("no registered key of the client fits the assertion's kid and alg")]
    NoKey,
    #[error("the assertion's signature does not verify with the client's registered keys")]
    Signature,
}

/// Verify `token`'s signature with one of `jwks`' keys and return its claims. A `kid` in the
/// header picks the keys with that `kid`; without one, every key that fits `alg` is tried. The
/// `alg` must be one of `algs` (never `none` or a MAC: RFC 8725 §3.1) and, when the key names
/// an `alg`, that one. A `crit` header is refused (RFC 7515 §4.1.11: none is understood here).
pub fn verify_with_jwks(token: &str, jwks: &Value, algs: &[&str]) -> Result<Map<String, Value>, JwsError> {
    let Compact { header, claims, signing_input, sig } = split_compact(token, MAX_JWS_LEN).map_err(JwsError::Malformed)?;
    if header.contains_key("crit") {
        return Err(JwsError::Malformed("crit header parameters are not supported"));
    }
    let alg = header.get("alg").and_then(Value::as_str).ok_or(JwsError::Alg)?;
    if !crate::SUPPORTED_ALGS.contains(&alg) || !algs.contains(&alg) {
        return Err(JwsError::Alg);
    }
    let kid = header.get("kid").and_then(Value::as_str);
    let keys = jwks.get("keys").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    let candidates = keys.iter().filter_map(Value::as_object).filter(|k| kid.is_none() || k.get("kid").and_then(Value::as_str) == kid).filter(|k| {
        // RFC 7517 §4.4: a key that names its algorithm is used with that one only.
        k.get("alg").and_then(Value::as_str).is_none_or(|a| a == alg)
    });
    let mut fitted = false;
    for key in candidates {
        match verify_signature(alg, key, signing_input.as_bytes(), &sig) {
            Ok(()) => return Ok(claims),
            Err(crate::DpopError::Signature) => fitted = true,
            Err(_) => {}
        }
    }
    Err(if fitted { JwsError::Signature } else { JwsError::NoKey })
}
