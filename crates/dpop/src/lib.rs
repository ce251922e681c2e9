//! DPoP proofs (RFC 9449 §4): verification of a proof JWT against the request it came with,
//! and RFC 7638 JWK thumbprints. Pure: no I/O and no clock (callers pass `now`); the replay
//! check of `jti` (§11.1) and the nonce policy (§8, §9) belong to the caller, which gets both
//! back in [`Proof`]. Used by Tessera's token and UserInfo endpoints and by tessera-guard.
//! [`jws`] checks other JWTs (the JWT bearer grant's assertions) against registered keys.

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
pub(crate) use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub mod jws;
#[cfg(any(test, feature = "test-support"))]
pub mod testing;

/// The algorithms accepted for proofs, advertised as `dpop_signing_alg_values_supported`
/// (RFC 9449 §5.1): asymmetric only (§4.2: "MUST NOT be none or an identifier for a symmetric
/// algorithm").
pub const SUPPORTED_ALGS: &[&str] = &["ES256", "ES384", "EdDSA", "RS256", "PS256"];

/// A proof larger than this is refused before it is decoded.
pub const MAX_PROOF_LEN: usize = 8 * 1024;
/// A `jti` longer than this is refused (it is stored for replay detection).
pub const MAX_JTI_LEN: usize = 256;

/// What the request a proof came with must match (RFC 9449 §4.3).
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The request's method: `htm` must equal it (check 8).
    pub method: &'a str,
    /// The request's URL as the client addressed it: `htu` must equal it, both without query
    /// and fragment, after syntax-based normalization (check 9, RFC 3986 §6.2.2–6.2.3).
    pub url: &'a str,
    /// Now, in seconds since the epoch.
    pub now: i64,
    /// How far in the past `iat` may be (check 11).
    pub max_age_secs: i64,
    /// How far in the future `iat` may be (clock skew).
    pub max_skew_secs: i64,
    /// When the proof comes with an access token: `ath` must be its hash (check 12, §7).
    pub access_token: Option<&'a str>,
    /// The algorithms allowed here (a subset of [`SUPPORTED_ALGS`]).
    pub algs: &'a [&'a str],
}

/// A verified proof: who signed it (the key's thumbprint) and what the caller still checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    /// RFC 7638 SHA-256 thumbprint of the proof's `jwk`, base64url: what tokens are bound to.
    pub jkt: String,
    /// The proof's unique identifier, for the caller's replay check (§11.1).
    pub jti: String,
    pub iat: i64,
    /// The server-provided nonce the proof carries (§8), for the caller's nonce policy.
    pub nonce: Option<String>,
    pub alg: String,
}

/// Why a proof was refused; each `Display` is safe to send as an `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DpopError {
    #[error("the DPoP proof is not a well-formed JWT: {0}")]
    Malformed(&'static str),
    #[error("the DPoP proof's typ must be dpop+jwt")]
    Typ,
    #[error("the DPoP proof's alg is not accepted (asymmetric algorithms only)")]
    Alg,
    #[error("the DPoP proof's jwk is not an acceptable public key: {0}")]
    Jwk(&'static str),
    #[error("the DPoP proof's signature does not verify with its jwk")]
    Signature,
    #[error("the DPoP proof lacks the {0} claim")]
    MissingClaim(&'static str),
    #[error("the DPoP proof's htm does not match the request method")]
    Method,
    #[error("the DPoP proof's htu does not match the request URL")]
    Url,
    #[error("the DPoP proof was issued too long ago (iat)")]
    IatTooOld,
    #[error("the DPoP proof's iat is in the future")]
    IatInFuture,
    #[error("the DPoP proof's ath does not match the access token")]
    Ath,
}

/// RFC 9449 §4.3: check a proof against the request, every check but the replay of `jti` and
/// the nonce (returned for the caller). One DPoP header exactly (check 1) is the caller's.
pub fn verify(proof: &str, expect: &Expect<'_>) -> Result<Proof, DpopError> {
    // Check 2: a well-formed JWT.
    let Compact { header, claims, signing_input, sig } = split_compact(proof, MAX_PROOF_LEN).map_err(DpopError::Malformed)?;
    // Check 4: typ.
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(DpopError::Typ);
    }
    // Check 5: an asymmetric algorithm the server accepts.
    let alg = header.get("alg").and_then(Value::as_str).ok_or(DpopError::Alg)?;
    if !SUPPORTED_ALGS.contains(&alg) || !expect.algs.contains(&alg) {
        return Err(DpopError::Alg);
    }
    // Check 7: a public key only; check 6: the signature verifies with it.
    let jwk = header.get("jwk").and_then(Value::as_object).ok_or(DpopError::Jwk("missing"))?;
    let jkt = thumbprint_of(jwk)?;
    verify_signature(alg, jwk, signing_input.as_bytes(), &sig)?;
    // Check 3: the required claims.
    let jti = claims.get("jti").and_then(Value::as_str).filter(|j| !j.is_empty()).ok_or(DpopError::MissingClaim("jti"))?;
    if jti.len() > MAX_JTI_LEN {
        return Err(DpopError::Malformed("jti too long"));
    }
    let htm = claims.get("htm").and_then(Value::as_str).ok_or(DpopError::MissingClaim("htm"))?;
    let htu = claims.get("htu").and_then(Value::as_str).ok_or(DpopError::MissingClaim("htu"))?;
    let iat = claims.get("iat").and_then(Value::as_i64).ok_or(DpopError::MissingClaim("iat"))?;
    // Check 8: the method.
    if htm != expect.method {
        return Err(DpopError::Method);
    }
    // Check 9: the URL without query and fragment.
    if normalize_url(htu).is_none() || normalize_url(htu) != normalize_url(expect.url) {
        return Err(DpopError::Url);
    }
    // Check 11: iat within the window.
    if iat < expect.now.saturating_sub(expect.max_age_secs) {
        return Err(DpopError::IatTooOld);
    }
    if iat > expect.now.saturating_add(expect.max_skew_secs) {
        return Err(DpopError::IatInFuture);
    }
    // Check 12: the access token's hash.
    if let Some(token) = expect.access_token {
        let presented = claims.get("ath").and_then(Value::as_str).ok_or(DpopError::MissingClaim("ath"))?;
        if !constant_time_eq(presented.as_bytes(), ath(token).as_bytes()) {
            return Err(DpopError::Ath);
        }
    }
    let nonce = claims.get("nonce").and_then(Value::as_str).map(str::to_string);
    Ok(Proof { jkt, jti: jti.to_string(), iat, nonce, alg: alg.to_string() })
}

/// RFC 9449 §4.2 `ath`: base64url(SHA-256(ASCII(access token))).
pub fn ath(access_token: &str) -> String {
    B64.encode(Sha256::digest(access_token.as_bytes()))
}

/// RFC 7638 §3: the SHA-256 thumbprint of a public JWK (its required members only, in
/// lexicographic order, no whitespace), base64url.
pub fn thumbprint(jwk: &Value) -> Result<String, DpopError> {
    thumbprint_of(jwk.as_object().ok_or(DpopError::Jwk("not an object"))?)
}

fn thumbprint_of(jwk: &Map<String, Value>) -> Result<String, DpopError> {
    const PRIVATE: [&str; 7] = ["d", "p", "q", "dp", "dq", "qi", "k"];
    if PRIVATE.iter().any(|m| jwk.contains_key(*m)) {
        return Err(DpopError::Jwk("private or symmetric key members"));
    }
    let member = |name: &'static str| jwk.get(name).and_then(Value::as_str).ok_or(DpopError::Jwk("a required member is missing"));
    // serde_json's maps keep keys sorted (no `preserve_order`), so this is the §3.3 order.
    let mut required = Map::new();
    match member("kty")? {
        "EC" => {
            for m in ["crv", "kty", "x", "y"] {
                required.insert(m.into(), Value::String(member(m)?.into()));
            }
        }
        "RSA" => {
            for m in ["e", "kty", "n"] {
                required.insert(m.into(), Value::String(member(m)?.into()));
            }
        }
        "OKP" => {
            for m in ["crv", "kty", "x"] {
                required.insert(m.into(), Value::String(member(m)?.into()));
            }
        }
        _ => return Err(DpopError::Jwk("unsupported kty")),
    }
    let text = serde_json::to_string(&Value::Object(required)).map_err(|_| DpopError::Jwk("unencodable"))?;
    Ok(B64.encode(Sha256::digest(text.as_bytes())))
}

fn verify_signature(alg: &str, jwk: &Map<String, Value>, input: &[u8], sig: &[u8]) -> Result<(), DpopError> {
    let bytes = |name: &str| jwk.get(name).and_then(Value::as_str).and_then(|v| B64.decode(v).ok()).ok_or(DpopError::Jwk("a key member is not base64url"));
    let kty = jwk.get("kty").and_then(Value::as_str).unwrap_or("");
    let crv = jwk.get("crv").and_then(Value::as_str).unwrap_or("");
    let ok = match (alg, kty, crv) {
        ("ES256", "EC", "P-256") | ("ES384", "EC", "P-384") => {
            let (x, y) = (bytes("x")?, bytes("y")?);
            let size = if alg == "ES256" { 32 } else { 48 };
            if x.len() != size || y.len() != size {
                return Err(DpopError::Jwk("wrong coordinate size"));
            }
            let point: Vec<u8> = [&[4u8][..], &x, &y].concat();
            let algorithm = if alg == "ES256" { &signature::ECDSA_P256_SHA256_FIXED } else { &signature::ECDSA_P384_SHA384_FIXED };
            UnparsedPublicKey::new(algorithm, point).verify(input, sig).is_ok()
        }
        ("EdDSA", "OKP", "Ed25519") => {
            let x = bytes("x")?;
            if x.len() != 32 {
                return Err(DpopError::Jwk("wrong key size"));
            }
            UnparsedPublicKey::new(&signature::ED25519, x).verify(input, sig).is_ok()
        }
        ("RS256" | "PS256", "RSA", _) => {
            let key = RsaPublicKeyComponents { n: bytes("n")?, e: bytes("e")? };
            let algorithm = if alg == "RS256" { &signature::RSA_PKCS1_2048_8192_SHA256 } else { &signature::RSA_PSS_2048_8192_SHA256 };
            key.verify(algorithm, input, sig).is_ok()
        }
        _ => return Err(DpopError::Jwk("the key does not fit the algorithm")),
    };
    if ok { Ok(()) } else { Err(DpopError::Signature) }
}

/// A compact JWS (RFC 7515 §7.1) taken apart: the decoded header and claims, the signing input
/// (`header.claims` as sent) and the signature.
pub(crate) struct Compact<'a> {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    pub signing_input: &'a str,
    pub sig: Vec<u8>,
}

/// Split a compact JWS of at most `max_len` bytes; the error names what is malformed.
pub(crate) fn split_compact(token: &str, max_len: usize) -> Result<Compact<'_>, &'static str> {
    if token.len() > max_len {
        return Err("too large");
    }
    let mut parts = token.split('.');
    let (Some(h), Some(c), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err("not a compact JWS");
    };
    let header = decode_object(h).ok_or("header")?;
    let claims = decode_object(c).ok_or("claims")?;
    let sig = B64.decode(s).map_err(|_| "signature encoding")?;
    Ok(Compact { header, claims, signing_input: &token[..h.len() + 1 + c.len()], sig })
}

fn decode_object(part: &str) -> Option<Map<String, Value>> {
    let bytes = B64.decode(part).ok()?;
    match serde_json::from_slice(&bytes).ok()? {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// RFC 9449 §4.3 check 9: an absolute http(s) URL without query and fragment, its scheme and
/// host lowercased and a default port dropped (RFC 3986 §6.2.2.1, §6.2.3), an empty path as `/`.
/// `None` for anything else (a relative URL, userinfo, another scheme).
pub fn normalize_url(url: &str) -> Option<String> {
    let url = url.split(['#', '?']).next()?;
    let (scheme, rest) = url.split_once("://")?;
    let scheme = scheme.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let mut authority = authority.to_ascii_lowercase();
    if authority.ends_with(default_port) {
        authority.truncate(authority.len() - default_port.len());
    }
    Some(format!("{scheme}://{authority}{path}"))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
