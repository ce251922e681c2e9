//! Property-based tests of tessera-guard's token validation (RFC 9068 §4, RFC 7515 §5.2) on
//! generated, mutated and arbitrary tokens, with a static key set (no network).
use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use proptest::prelude::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tessera_guard::error::Reason;
use tessera_guard::{Clock, Guard, GuardConfig, GuardError};

const ISS: &str = "https://auth.example";
const AUD: &str = "https://notes.example";
const NOW: i64 = 1_800_000_000;

struct FixedClock;
impl Clock for FixedClock {
    fn now(&self) -> i64 {
        NOW
    }
}

/// An ES256 key, its JWK (kid "k1") in the guard's key set, and a guard that never reaches
/// the network: an unknown kid's one refetch goes to a closed loopback port.
struct Fixture {
    enc: EncodingKey,
    guard: Guard,
    rt: tokio::runtime::Runtime,
}

impl Fixture {
    fn new() -> Self {
        let der = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap().to_pkcs8v1().unwrap().as_ref().to_vec();
        let enc = EncodingKey::from_ec_der(&der);
        let mut jwk = Jwk::from_encoding_key(&enc, Algorithm::ES256).unwrap();
        jwk.common.key_id = Some("k1".into());
        let config = GuardConfig::new(ISS, AUD)
            .with_clock(Arc::new(FixedClock))
            .with_jwks_uri("http://127.0.0.1:1/jwks")
            .with_min_refetch_interval(Duration::from_secs(3600))
            .with_verified_cache_capacity(0);
        let guard = Guard::new(config).unwrap();
        guard.set_keys(&JwkSet { keys: vec![jwk] });
        let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        Self { enc, guard, rt }
    }

    fn sign(&self, header: &Header, claims: &Value) -> String {
        jsonwebtoken::encode(header, claims, &self.enc).unwrap()
    }

    fn verify(&self, token: &str) -> Result<tessera_guard::Principal, GuardError> {
        self.rt.block_on(self.guard.verify(token))
    }
}

fn at_header() -> Header {
    let mut h = Header::new(Algorithm::ES256);
    h.typ = Some("at+jwt".into());
    h.kid = Some("k1".into());
    h
}

/// RFC 9068 §2.2 claims with generated subject, client and scopes.
fn claims(sub: &str, client_id: &str, scopes: &[String]) -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": sub, "client_id": client_id, "scope": scopes.join(" "), "exp": NOW + 300, "iat": NOW, "jti": "f.r"})
}

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z0-9._:@-]{1,24}", proptest::collection::vec(any::<char>(), 1..12).prop_map(|v| v.into_iter().collect::<String>())]
}

fn scopes() -> impl Strategy<Value = Vec<String>> {
    proptest::collection::vec("[a-z.:]{1,12}", 0..5)
}

/// RFC 9068 §4: a token signed by the issuer's key with valid claims is accepted, and the
/// principal holds exactly its subject, client and scopes.
#[test]
fn rfc9068_4_valid_token_is_accepted() {
    let f = Fixture::new();
    proptest!(ProptestConfig::with_cases(64), |(sub in text(), client_id in text(), scopes in scopes())| {
        let p = f.verify(&f.sign(&at_header(), &claims(&sub, &client_id, &scopes))).unwrap();
        prop_assert_eq!(p.subject, sub);
        prop_assert_eq!(p.client_id, client_id);
        prop_assert_eq!(p.scopes, scopes.into_iter().filter(|s| !s.is_empty()).collect::<Vec<_>>());
        prop_assert_eq!(p.expires_at, NOW + 300);
    });
}

/// RFC 9068 §4 / RFC 7515 §5.2: any one byte of a valid token changed (header, claims,
/// signature or a separator) is rejected, never accepted and never a panic.
#[test]
fn rfc9068_4_one_byte_changed_is_rejected() {
    let f = Fixture::new();
    proptest!(ProptestConfig::with_cases(128), |(sub in text(), scopes in scopes(), at in any::<prop::sample::Index>(), byte in prop_oneof![0x20u8..0x7f, any::<u8>()])| {
        let token = f.sign(&at_header(), &claims(&sub, "app", &scopes));
        let mut bytes = token.clone().into_bytes();
        let i = at.index(bytes.len());
        prop_assume!(bytes[i] != byte);
        bytes[i] = byte;
        if let Ok(mutated) = String::from_utf8(bytes) {
            let r = f.verify(&mutated);
            prop_assert!(matches!(r, Err(GuardError::InvalidToken(_))), "byte {} of {}: {:?}", i, token, r);
        }
    });
}

/// RFC 9068 §4: a correctly signed token is still refused when its `typ`, `iss`, `aud` or
/// `exp` is not what the resource server expects, with the matching reason.
#[test]
fn rfc9068_4_wrong_claims_are_rejected() {
    let f = Fixture::new();
    proptest!(ProptestConfig::with_cases(64), |(other in "[a-z]{1,10}", typ in prop_oneof![Just("JWT".to_string()), Just("logout+jwt".to_string()), "[a-z+/]{0,12}"], past in 31i64..1_000_000)| {
        let good = claims("u", "app", &[]);
        let refused = |header: &Header, claims: &Value| f.verify(&f.sign(header, claims)).unwrap_err();
        prop_assume!(!typ.eq_ignore_ascii_case("at+jwt") && !typ.eq_ignore_ascii_case("application/at+jwt"));
        let mut h = at_header();
        h.typ = Some(typ);
        prop_assert_eq!(refused(&h, &good), GuardError::InvalidToken(Reason::Type));
        let mut c = good.clone();
        c["iss"] = json!(format!("https://{other}.example"));
        prop_assert_eq!(refused(&at_header(), &c), GuardError::InvalidToken(Reason::Issuer));
        let mut c = good.clone();
        c["aud"] = json!([format!("https://{other}.example"), format!("{AUD}/")]);
        prop_assert_eq!(refused(&at_header(), &c), GuardError::InvalidToken(Reason::Audience));
        let mut c = good.clone();
        c["exp"] = json!(NOW - past);
        prop_assert_eq!(refused(&at_header(), &c), GuardError::InvalidToken(Reason::Expired));
    });
}

/// RFC 9068 §4 and RFC 8725 §3.1: arbitrary strings (huge, unicode, JWT-shaped) and headers
/// with any `alg` (`none`, HMAC keyed with anything) over any claims are rejected, never a
/// panic.
#[test]
fn rfc9068_4_arbitrary_token_is_rejected() {
    let f = Fixture::new();
    proptest!(ProptestConfig::with_cases(128), |(
        s in prop_oneof![any::<String>(), "[A-Za-z0-9_.-]{0,300}", "([A-Za-z0-9_-]{0,40}\\.){2}[A-Za-z0-9_-]{0,40}"],
        times in 1usize..40,
        alg in "(none|HS256|HS384|HS512|ES256|RS256|EdDSA|[A-Z]{2}[0-9]{3})",
        body in proptest::collection::vec(any::<u8>(), 0..200),
    )| {
        prop_assert!(f.verify(&s).is_err());
        prop_assert!(f.verify(&s.repeat(times)).is_err());
        use base64::Engine;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let h = b64.encode(json!({"alg": alg, "typ": "at+jwt", "kid": "k1"}).to_string());
        let c = b64.encode(&body);
        let valid = b64.encode(claims("u", "app", &[]).to_string());
        for token in [format!("{h}.{c}."), format!("{h}.{valid}."), format!("{h}.{valid}.{}", b64.encode(&body))] {
            prop_assert!(matches!(f.verify(&token), Err(GuardError::InvalidToken(_))), "{}", token);
        }
    });
}
