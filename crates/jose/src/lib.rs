//! JOSE for Tessera: signing keys (generation, persistence form, JWK publication) and compact JWS
//! signing (RFC 7515) of JWTs (RFC 7519).
//!
//! Signing is done directly with aws-lc-rs on a key pair parsed once at load, so the hot path
//! builds two base64 segments and one signature, nothing more. Private key material never leaves
//! this crate except sealed under a key-encryption key ([`kek`]) for storage, and every `Debug`
//! here redacts it.
#![forbid(unsafe_code)]

pub mod kek;

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Serialize;
use serde_json::{Value, json};
use std::fmt;
use std::str::FromStr;

/// JWS algorithms Tessera signs with (RFC 7518 §3.1, RFC 8037 §3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alg {
    ES256,
    EdDSA,
    RS256,
}

impl Alg {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ES256 => "ES256",
            Self::EdDSA => "EdDSA",
            Self::RS256 => "RS256",
        }
    }
    pub const ALL: [Alg; 3] = [Alg::ES256, Alg::RS256, Alg::EdDSA];
}

impl FromStr for Alg {
    type Err = JoseError;
    fn from_str(s: &str) -> Result<Self, JoseError> {
        match s {
            "ES256" => Ok(Self::ES256),
            "EdDSA" => Ok(Self::EdDSA),
            "RS256" => Ok(Self::RS256),
            _ => Err(JoseError::UnsupportedAlg(s.to_string())),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum JoseError {
    #[error("unsupported algorithm {0}")]
    UnsupportedAlg(String),
    #[error("key generation failed")]
    KeyGeneration,
    #[error("stored key is not a valid {0} PKCS#8 key")]
    InvalidKey(&'static str),
    #[error("signing failed")]
    Signing,
    #[error("claims could not be serialized: {0}")]
    Serialize(#[from] serde_json::Error),
    #[error("malformed or unverifiable token")]
    Invalid,
    #[error("the key-encryption key is not valid: {0}")]
    InvalidKek(String),
    #[error("sealing a signing key failed")]
    Sealing,
    /// The stored key was sealed under a KEK this process does not hold.
    #[error("the signing key was encrypted under key-encryption key {sealed_under}, but this server has key-encryption key {available}")]
    WrongKek { sealed_under: String, available: String },
    #[error("the stored signing key could not be decrypted (altered, or stored under another kid)")]
    Unsealing,
}

enum Pair {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(aws_lc_rs::rsa::KeyPair),
}

/// A private signing key, ready to sign.
pub struct SigningKey {
    kid: String,
    alg: Alg,
    pair: Pair,
    rng: SystemRandom,
    jwk: Value,
    /// The encoded protected headers for the `typ`s Tessera signs, made once per key.
    headers: Vec<(&'static str, String)>,
}

/// The `typ`s whose encoded headers each key keeps ready (RFC 9068 §2.1 `at+jwt`, ID tokens,
/// OIDC Back-Channel Logout §2.4 `logout+jwt`).
const COMMON_TYPS: [&str; 3] = ["at+jwt", "JWT", "logout+jwt"];

/// The base64url JWS protected header `{"alg","typ","kid"}` (RFC 7515 §7.1).
fn encoded_header(alg: Alg, typ: &str, kid: &str) -> Result<String, JoseError> {
    Ok(URL_SAFE_NO_PAD.encode(serde_json::to_vec(&json!({"alg": alg.as_str(), "typ": typ, "kid": kid}))?))
}

impl fmt::Debug for SigningKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SigningKey").field("kid", &self.kid).field("alg", &self.alg).field("private", &"<redacted>").finish()
    }
}

/// Generate a new key; returns its PKCS#8 DER form, to be sealed ([`kek::KeyEncryption::seal`])
/// before it is stored (never to be printed or logged).
pub fn generate(alg: Alg) -> Result<Vec<u8>, JoseError> {
    match alg {
        Alg::ES256 => {
            let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).map_err(|_| JoseError::KeyGeneration)?;
            Ok(pair.to_pkcs8v1().map_err(|_| JoseError::KeyGeneration)?.as_ref().to_vec())
        }
        Alg::EdDSA => {
            let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).map_err(|_| JoseError::KeyGeneration)?;
            Ok(doc.as_ref().to_vec())
        }
        Alg::RS256 => {
            use aws_lc_rs::encoding::AsDer;
            let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).map_err(|_| JoseError::KeyGeneration)?;
            Ok(pair.as_der().map_err(|_| JoseError::KeyGeneration)?.as_ref().to_vec())
        }
    }
}

impl SigningKey {
    /// Load a key from its PKCS#8 DER form. The `kid` is the RFC 7638 JWK thumbprint.
    pub fn from_pkcs8(alg: Alg, der: &[u8]) -> Result<Self, JoseError> {
        let (pair, jwk_members) = match alg {
            Alg::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, der).map_err(|_| JoseError::InvalidKey("ES256"))?;
                let point = pair.public_key().as_ref();
                // Uncompressed SEC1 point: 0x04 || x (32) || y (32).
                if point.len() != 65 {
                    return Err(JoseError::InvalidKey("ES256"));
                }
                let x = URL_SAFE_NO_PAD.encode(&point[1..33]);
                let y = URL_SAFE_NO_PAD.encode(&point[33..65]);
                // RFC 7638 §3.2: required members in lexicographic order, no whitespace.
                let members = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
                (Pair::Ec(pair), (members, json!({"kty": "EC", "crv": "P-256", "x": x, "y": y})))
            }
            Alg::EdDSA => {
                let pair = Ed25519KeyPair::from_pkcs8(der).map_err(|_| JoseError::InvalidKey("EdDSA"))?;
                let x = URL_SAFE_NO_PAD.encode(pair.public_key().as_ref());
                let members = format!(r#"{{"crv":"Ed25519","kty":"OKP","x":"{x}"}}"#);
                (Pair::Ed(pair), (members, json!({"kty": "OKP", "crv": "Ed25519", "x": x})))
            }
            Alg::RS256 => {
                let pair = aws_lc_rs::rsa::KeyPair::from_pkcs8(der).map_err(|_| JoseError::InvalidKey("RS256"))?;
                let public = pair.public_key();
                let n = URL_SAFE_NO_PAD.encode(public.modulus().big_endian_without_leading_zero());
                let e = URL_SAFE_NO_PAD.encode(public.exponent().big_endian_without_leading_zero());
                let members = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
                (Pair::Rsa(pair), (members, json!({"kty": "RSA", "n": n, "e": e})))
            }
        };
        let (thumbprint_input, mut jwk) = jwk_members;
        let kid = URL_SAFE_NO_PAD.encode(aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, thumbprint_input.as_bytes()));
        if let Value::Object(m) = &mut jwk {
            m.insert("kid".into(), json!(kid));
            m.insert("alg".into(), json!(alg.as_str()));
            m.insert("use".into(), json!("sig"));
        }
        let headers = COMMON_TYPS.iter().map(|&typ| Ok((typ, encoded_header(alg, typ, &kid)?))).collect::<Result<_, JoseError>>()?;
        Ok(Self { kid, alg, pair, rng: SystemRandom::new(), jwk, headers })
    }

    pub fn kid(&self) -> &str {
        &self.kid
    }
    pub fn alg(&self) -> Alg {
        self.alg
    }
    /// The public JWK (RFC 7517 §4) with `kid`, `alg` and `use`.
    pub fn public_jwk(&self) -> &Value {
        &self.jwk
    }

    /// Sign `claims` as a compact JWS with header `{"alg","typ","kid"}` (RFC 7515 §7.1).
    pub fn sign_jwt<C: Serialize>(&self, typ: &str, claims: &C) -> Result<String, JoseError> {
        let mut out = String::with_capacity(512);
        match self.headers.iter().find(|(t, _)| *t == typ) {
            Some((_, h)) => out.push_str(h),
            None => out.push_str(&encoded_header(self.alg, typ, &self.kid)?),
        }
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(serde_json::to_vec(claims)?, &mut out);
        let sig = match &self.pair {
            Pair::Ec(p) => p.sign(&self.rng, out.as_bytes()).map_err(|_| JoseError::Signing)?.as_ref().to_vec(),
            Pair::Ed(p) => p.sign(out.as_bytes()).as_ref().to_vec(),
            Pair::Rsa(p) => {
                let mut sig = vec![0u8; p.public_modulus_len()];
                p.sign(&signature::RSA_PKCS1_SHA256, &self.rng, out.as_bytes(), &mut sig).map_err(|_| JoseError::Signing)?;
                sig
            }
        };
        out.push('.');
        URL_SAFE_NO_PAD.encode_string(sig, &mut out);
        Ok(out)
    }
}

impl SigningKey {
    /// Check a signature made by this key over `input`.
    pub fn verify_signature(&self, input: &[u8], sig: &[u8]) -> bool {
        use aws_lc_rs::signature::UnparsedPublicKey;
        match &self.pair {
            Pair::Ec(p) => UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, p.public_key().as_ref()).verify(input, sig).is_ok(),
            Pair::Ed(p) => UnparsedPublicKey::new(&signature::ED25519, p.public_key().as_ref()).verify(input, sig).is_ok(),
            Pair::Rsa(p) => UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, p.public_key().as_ref()).verify(input, sig).is_ok(),
        }
    }
}

/// The verified parts of a compact JWS.
#[derive(Debug, Clone)]
pub struct Verified {
    pub header: Value,
    pub claims: Value,
}

/// Verify a compact JWS (RFC 7515 §5.2) signed by one of our own keys, found by `kid`. The
/// header's `alg` must be the key's algorithm (no `none`, no algorithm confusion). Claims are
/// returned unchecked: expiry and audience are the caller's rules.
pub fn verify_compact<'a>(token: &str, find: impl Fn(&str) -> Option<&'a SigningKey>) -> Result<Verified, JoseError> {
    if token.len() > 8192 {
        return Err(JoseError::Invalid);
    }
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(sig), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
        return Err(JoseError::Invalid);
    };
    let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).map_err(|_| JoseError::Invalid)?).map_err(|_| JoseError::Invalid)?;
    let kid = header.get("kid").and_then(Value::as_str).ok_or(JoseError::Invalid)?;
    let key = find(kid).ok_or(JoseError::Invalid)?;
    if header.get("alg").and_then(Value::as_str) != Some(key.alg().as_str()) {
        return Err(JoseError::Invalid);
    }
    let sig = URL_SAFE_NO_PAD.decode(sig).map_err(|_| JoseError::Invalid)?;
    let signing_input = &token[..h.len() + 1 + p.len()];
    if !key.verify_signature(signing_input.as_bytes(), &sig) {
        return Err(JoseError::Invalid);
    }
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).map_err(|_| JoseError::Invalid)?).map_err(|_| JoseError::Invalid)?;
    if !claims.is_object() {
        return Err(JoseError::Invalid);
    }
    Ok(Verified { header, claims })
}

/// A JWK Set (RFC 7517 §5) of the given keys' public halves.
pub fn jwks<'a>(keys: impl IntoIterator<Item = &'a SigningKey>) -> Value {
    json!({ "keys": keys.into_iter().map(|k| k.public_jwk().clone()).collect::<Vec<_>>() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{DecodingKey, Validation, decode, jwk::JwkSet};

    #[derive(Serialize, serde::Deserialize, Debug, PartialEq)]
    struct Claims {
        sub: String,
        exp: i64,
    }

    /// RFC 7515 / RFC 7517: a token we sign verifies with an independent library against the JWKS.
    #[test]
    fn signs_verifiable_jwts_for_each_alg() {
        for alg in Alg::ALL {
            let der = generate(alg).unwrap();
            let key = SigningKey::from_pkcs8(alg, &der).unwrap();
            let claims = Claims { sub: "u1".into(), exp: 4_000_000_000 };
            let jwt = key.sign_jwt("at+jwt", &claims).unwrap();
            let set: JwkSet = serde_json::from_value(jwks([&key])).unwrap();
            let header = jsonwebtoken::decode_header(&jwt).unwrap();
            assert_eq!(header.typ.as_deref(), Some("at+jwt"));
            assert_eq!(header.kid.as_deref(), Some(key.kid()));
            let jwk = set.find(key.kid()).unwrap();
            let mut v = Validation::new(header.alg);
            v.validate_aud = false;
            let got = decode::<Claims>(&jwt, &DecodingKey::from_jwk(jwk).unwrap(), &v).unwrap();
            assert_eq!(got.claims, claims);
            // A key reloaded from storage has the same kid and still verifies.
            let again = SigningKey::from_pkcs8(alg, &der).unwrap();
            assert_eq!(again.kid(), key.kid());
        }
    }

    /// The protected header names the `typ` asked for, whether kept ready or made on the spot.
    #[test]
    fn header_typ_and_kid_for_every_typ() {
        let key = SigningKey::from_pkcs8(Alg::ES256, &generate(Alg::ES256).unwrap()).unwrap();
        for typ in ["at+jwt", "JWT", "logout+jwt", "other+jwt"] {
            let jwt = key.sign_jwt(typ, &Claims { sub: "u1".into(), exp: 4_000_000_000 }).unwrap();
            let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(jwt.split('.').next().unwrap()).unwrap()).unwrap();
            assert_eq!(header, json!({"alg": "ES256", "typ": typ, "kid": key.kid()}));
            assert!(key.verify_signature(&jwt.as_bytes()[..jwt.rfind('.').unwrap()], &URL_SAFE_NO_PAD.decode(jwt.rsplit('.').next().unwrap()).unwrap()));
        }
    }

    /// A tampered token fails verification.
    #[test]
    fn tampered_signature_fails() {
        let key = SigningKey::from_pkcs8(Alg::ES256, &generate(Alg::ES256).unwrap()).unwrap();
        let jwt = key.sign_jwt("at+jwt", &Claims { sub: "u1".into(), exp: 4_000_000_000 }).unwrap();
        let other = key.sign_jwt("at+jwt", &Claims { sub: "admin".into(), exp: 4_000_000_000 }).unwrap();
        let forged = format!("{}.{}", &other[..other.rfind('.').unwrap()], &jwt[jwt.rfind('.').unwrap() + 1..]);
        let set: JwkSet = serde_json::from_value(jwks([&key])).unwrap();
        let mut v = Validation::new(jsonwebtoken::Algorithm::ES256);
        v.validate_aud = false;
        assert!(decode::<Claims>(&forged, &DecodingKey::from_jwk(set.find(key.kid()).unwrap()).unwrap(), &v).is_err());
    }

    /// Our own verification: good tokens pass; tampering, `alg: none`, unknown kids fail.
    #[test]
    fn verify_compact_rules() {
        let key = SigningKey::from_pkcs8(Alg::ES256, &generate(Alg::ES256).unwrap()).unwrap();
        let find = |kid: &str| (kid == key.kid()).then_some(&key);
        let jwt = key.sign_jwt("at+jwt", &Claims { sub: "u1".into(), exp: 1 }).unwrap();
        let v = verify_compact(&jwt, find).unwrap();
        assert_eq!(v.claims["sub"], "u1");
        assert_eq!(v.header["typ"], "at+jwt");
        let (h, rest) = jwt.split_once('.').unwrap();
        let (p, sig) = rest.split_once('.').unwrap();
        let other_claims = URL_SAFE_NO_PAD.encode(br#"{"sub":"admin","exp":1}"#);
        assert!(verify_compact(&format!("{h}.{other_claims}.{sig}"), find).is_err(), "tampered claims");
        let none_header = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"none","kid":"{}"}}"#, key.kid()));
        assert!(verify_compact(&format!("{none_header}.{p}."), find).is_err(), "alg none");
        let es_as_hs = URL_SAFE_NO_PAD.encode(format!(r#"{{"alg":"HS256","kid":"{}"}}"#, key.kid()));
        assert!(verify_compact(&format!("{es_as_hs}.{p}.{sig}"), find).is_err(), "alg confusion");
        assert!(verify_compact(&jwt, |_| None).is_err(), "unknown kid");
        assert!(verify_compact("a.b", find).is_err());
        assert!(verify_compact("a.b.c.d", find).is_err());
        assert!(verify_compact("!!.??.**", find).is_err());
    }

    #[test]
    fn debug_redacts_private_key() {
        let key = SigningKey::from_pkcs8(Alg::ES256, &generate(Alg::ES256).unwrap()).unwrap();
        assert!(format!("{key:?}").contains("<redacted>"));
        assert!(key.public_jwk().get("d").is_none());
    }
}

/// Property-based tests of RFC 7515 §5.2 verification on arbitrary and mutated tokens.
#[cfg(test)]
mod proptests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::LazyLock;

    /// One key per algorithm for the whole run (RSA generation is slow).
    static KEYS: LazyLock<Vec<SigningKey>> =
        LazyLock::new(|| Alg::ALL.iter().map(|&alg| SigningKey::from_pkcs8(alg, &generate(alg).unwrap()).unwrap()).collect());

    fn find(kid: &str) -> Option<&'static SigningKey> {
        KEYS.iter().find(|k| k.kid() == kid)
    }

    /// JWT claims sets: string, number and boolean members with any names and text.
    fn claims() -> impl Strategy<Value = serde_json::Map<String, Value>> {
        let value = prop_oneof![any::<String>().prop_map(Value::from), any::<i64>().prop_map(Value::from), any::<bool>().prop_map(Value::from)];
        proptest::collection::btree_map("[a-z_]{1,10}", value, 0..8).prop_map(|m| m.into_iter().collect())
    }

    fn key() -> impl Strategy<Value = &'static SigningKey> {
        (0..Alg::ALL.len()).prop_map(|i| &KEYS[i])
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        /// RFC 7515 §5.2: a token signed by one of our keys verifies, and gives back the claims
        /// and the header that were signed, for each algorithm.
        #[test]
        fn rfc7515_5_2_signed_token_verifies(key in key(), claims in claims(), typ in prop_oneof![Just("at+jwt"), Just("JWT"), Just("logout+jwt"), Just("x+jwt")]) {
            let jwt = key.sign_jwt(typ, &claims).unwrap();
            let v = verify_compact(&jwt, find).unwrap();
            prop_assert_eq!(v.claims, Value::Object(claims));
            prop_assert_eq!(v.header, json!({"alg": key.alg().as_str(), "typ": typ, "kid": key.kid()}));
        }

        /// RFC 7515 §5.2: changing any one byte of the header, the payload, the signature or a
        /// separator makes verification fail, never panic and never succeed.
        #[test]
        fn rfc7515_5_2_one_byte_changed_is_rejected(key in key(), claims in claims(), at in any::<prop::sample::Index>(), byte in prop_oneof![0x20u8..0x7f, any::<u8>()]) {
            let jwt = key.sign_jwt("at+jwt", &claims).unwrap();
            let mut bytes = jwt.clone().into_bytes();
            let i = at.index(bytes.len());
            prop_assume!(bytes[i] != byte);
            bytes[i] = byte;
            // A header value that is not UTF-8 never reaches the verifier as a &str.
            if let Ok(mutated) = String::from_utf8(bytes) {
                prop_assert!(verify_compact(&mutated, find).is_err(), "byte {} of {}", i, jwt);
            }
        }

        /// RFC 7515 §5.2: a header naming our key and algorithm over any payload and any
        /// signature (unsigned, or signed by another of our keys) is rejected.
        #[test]
        fn rfc7515_5_2_forged_signature_is_rejected(key in key(), other in key(), claims in claims(), sig in proptest::collection::vec(any::<u8>(), 0..300)) {
            let jwt = key.sign_jwt("at+jwt", &claims).unwrap();
            let input = &jwt[..jwt.rfind('.').unwrap()];
            let unsigned = format!("{input}.{}", URL_SAFE_NO_PAD.encode(&sig));
            prop_assert!(verify_compact(&unsigned, find).is_err());
            if other.kid() != key.kid() {
                let theirs = other.sign_jwt("at+jwt", &claims).unwrap();
                let sig = &theirs[theirs.rfind('.').unwrap() + 1..];
                let swapped = format!("{input}.{sig}");
                prop_assert!(verify_compact(&swapped, find).is_err());
            }
        }

        /// RFC 7515 §5.2 and RFC 8725 §3.1: any string (huge, unicode, three dots) never
        /// panics, and nothing unsigned verifies; a header whose `alg` is not the key's
        /// (`none`, HS256, another asymmetric one) is refused.
        #[test]
        fn rfc7515_5_2_arbitrary_token_never_panics(s in prop_oneof![any::<String>(), "[A-Za-z0-9_.-]{0,400}", "([A-Za-z0-9_-]{0,40}\\.){0,4}[A-Za-z0-9_-]{0,40}"], times in 1usize..30, key in key(), alg in prop_oneof![prop::sample::select(vec!["none", "HS256", "ES256", "RS256", "EdDSA"]).prop_map(String::from), "[A-Za-z0-9]{0,8}"], payload in any::<Vec<u8>>()) {
            prop_assert!(verify_compact(&s, find).is_err());
            prop_assert!(verify_compact(&s.repeat(times), find).is_err());
            prop_assume!(alg != key.alg().as_str());
            let h = URL_SAFE_NO_PAD.encode(json!({"alg": alg, "kid": key.kid(), "typ": "at+jwt"}).to_string());
            let p = URL_SAFE_NO_PAD.encode(&payload);
            let signed = key.sign_jwt("at+jwt", &json!({})).unwrap();
            let sig = &signed[signed.rfind('.').unwrap() + 1..];
            let (confused, empty) = (format!("{h}.{p}.{sig}"), format!("{h}.{p}."));
            prop_assert!(verify_compact(&confused, find).is_err());
            prop_assert!(verify_compact(&empty, find).is_err());
        }
    }
}
