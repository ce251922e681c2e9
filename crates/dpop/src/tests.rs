//! One test per rule of RFC 9449 §4.3 (and §7's `ath`), named by the rule.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use super::*;
use crate::testing::ProofSigner;
use serde_json::json;

const URL: &str = "https://as.example/token";
const NOW: i64 = 1_700_000_000;

fn expect() -> Expect<'static> {
    Expect { method: "POST", url: URL, now: NOW, max_age_secs: 300, max_skew_secs: 60, access_token: None, algs: SUPPORTED_ALGS }
}

fn claims() -> Value {
    json!({"jti": "j-1", "htm": "POST", "htu": URL, "iat": NOW})
}

#[test]
fn rfc9449_4_3_a_valid_proof_is_accepted_for_each_key_type() {
    for k in [ProofSigner::es256(), ProofSigner::ed25519(), ProofSigner::rs256()] {
        let p = verify(&k.sign("POST", URL, NOW, "j-1", None, Some("n-1")), &expect()).unwrap();
        assert_eq!((p.jkt, p.jti.as_str(), p.iat, p.nonce.as_deref()), (k.thumbprint(), "j-1", NOW, Some("n-1")));
    }
}

#[test]
fn rfc9449_4_3_2_the_proof_must_be_a_well_formed_jwt() {
    let k = ProofSigner::es256();
    let good = k.sign("POST", URL, NOW, "j", None, None);
    for bad in ["", "a.b", "a.b.c.d", "!!.!!.!!", &format!("{good}.x"), &"a".repeat(MAX_PROOF_LEN + 1)] {
        assert!(matches!(verify(bad, &expect()), Err(DpopError::Malformed(_))), "{bad:.40}");
    }
    let not_object = format!("{}.{}.{}", B64.encode("[1]"), B64.encode("{}"), B64.encode("x"));
    assert!(matches!(verify(&not_object, &expect()), Err(DpopError::Malformed(_))));
}

#[test]
fn rfc9449_4_3_3_required_claims_jti_htm_htu_iat() {
    let k = ProofSigner::es256();
    for (claim, name) in [("jti", "jti"), ("htm", "htm"), ("htu", "htu"), ("iat", "iat")] {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(claim);
        assert_eq!(verify(&k.sign_raw(&k.header(), &c), &expect()), Err(DpopError::MissingClaim(name)));
    }
    let mut empty_jti = claims();
    empty_jti["jti"] = json!("");
    assert_eq!(verify(&k.sign_raw(&k.header(), &empty_jti), &expect()), Err(DpopError::MissingClaim("jti")));
}

#[test]
fn rfc9449_4_3_4_typ_must_be_dpop_jwt() {
    let k = ProofSigner::es256();
    for typ in [json!("JWT"), json!("at+jwt"), json!(null)] {
        let mut h = k.header();
        h["typ"] = typ;
        assert_eq!(verify(&k.sign_raw(&h, &claims()), &expect()), Err(DpopError::Typ));
    }
}

#[test]
fn rfc9449_4_3_5_alg_must_be_asymmetric_and_accepted() {
    let k = ProofSigner::es256();
    for alg in ["none", "HS256", "XX"] {
        let mut h = k.header();
        h["alg"] = json!(alg);
        assert_eq!(verify(&k.sign_raw(&h, &claims()), &expect()), Err(DpopError::Alg), "{alg}");
    }
    let only_eddsa = Expect { algs: &["EdDSA"], ..expect() };
    assert_eq!(verify(&k.sign("POST", URL, NOW, "j", None, None), &only_eddsa), Err(DpopError::Alg), "an algorithm the server does not allow here");
}

#[test]
fn rfc9449_4_3_6_the_signature_must_verify_with_the_header_jwk() {
    let (k, other) = (ProofSigner::es256(), ProofSigner::es256());
    let mut h = k.header();
    h["jwk"] = other.jwk();
    assert_eq!(verify(&k.sign_raw(&h, &claims()), &expect()), Err(DpopError::Signature), "signed by another key than its jwk");
    let good = k.sign("POST", URL, NOW, "j", None, None);
    let (input, _) = good.rsplit_once('.').unwrap();
    let tampered = format!("{}.{}", input.replace(&input[input.len() - 4..], "AAAA"), good.rsplit_once('.').unwrap().1);
    assert!(verify(&tampered, &expect()).is_err(), "changed claims");
    let mut rs_as_es = k.header();
    rs_as_es["alg"] = json!("RS256");
    assert!(matches!(verify(&k.sign_raw(&rs_as_es, &claims()), &expect()), Err(DpopError::Jwk(_))), "an EC key claimed as RSA");
}

#[test]
fn rfc9449_4_3_7_the_jwk_must_be_a_public_key() {
    let k = ProofSigner::es256();
    for (member, value) in [("d", json!("c2VjcmV0")), ("k", json!("c2VjcmV0"))] {
        let mut h = k.header();
        h["jwk"][member] = value;
        assert!(matches!(verify(&k.sign_raw(&h, &claims()), &expect()), Err(DpopError::Jwk(_))), "{member}");
    }
    let mut oct = k.header();
    oct["jwk"] = json!({"kty": "oct", "k": "c2VjcmV0"});
    assert!(matches!(verify(&k.sign_raw(&oct, &claims()), &expect()), Err(DpopError::Jwk(_))));
    let mut none = k.header();
    none.as_object_mut().unwrap().remove("jwk");
    assert_eq!(verify(&k.sign_raw(&none, &claims()), &expect()), Err(DpopError::Jwk("missing")));
}

#[test]
fn rfc9449_4_3_8_htm_must_match_the_method() {
    let k = ProofSigner::es256();
    assert_eq!(verify(&k.sign("GET", URL, NOW, "j", None, None), &expect()), Err(DpopError::Method));
    assert_eq!(verify(&k.sign("post", URL, NOW, "j", None, None), &expect()), Err(DpopError::Method), "methods are case-sensitive");
}

#[test]
fn rfc9449_4_3_9_htu_must_match_the_url_without_query_and_fragment() {
    let k = ProofSigner::es256();
    for same in
        ["https://as.example/token", "https://AS.example/token", "HTTPS://as.example:443/token", "https://as.example/token?x=1", "https://as.example/token#f"]
    {
        assert!(verify(&k.sign("POST", same, NOW, "j", None, None), &expect()).is_ok(), "{same}");
    }
    for other in [
        "https://as.example/token/",
        "https://as.example/Token",
        "http://as.example/token",
        "https://as.example:8443/token",
        "https://evil.example/token",
        "/token",
        "https://u@as.example/token",
    ] {
        assert_eq!(verify(&k.sign("POST", other, NOW, "j", None, None), &expect()), Err(DpopError::Url), "{other}");
    }
}

#[test]
fn rfc9449_4_3_11_iat_must_be_within_the_window() {
    let k = ProofSigner::es256();
    assert!(verify(&k.sign("POST", URL, NOW - 300, "j", None, None), &expect()).is_ok());
    assert_eq!(verify(&k.sign("POST", URL, NOW - 301, "j", None, None), &expect()), Err(DpopError::IatTooOld));
    assert!(verify(&k.sign("POST", URL, NOW + 60, "j", None, None), &expect()).is_ok());
    assert_eq!(verify(&k.sign("POST", URL, NOW + 61, "j", None, None), &expect()), Err(DpopError::IatInFuture));
}

#[test]
fn rfc9449_4_3_12_and_7_ath_must_hash_the_access_token() {
    let k = ProofSigner::es256();
    let with_token = Expect { access_token: Some("the-token"), method: "GET", ..expect() };
    assert!(verify(&k.sign("GET", URL, NOW, "j", Some("the-token"), None), &with_token).is_ok());
    assert_eq!(verify(&k.sign("GET", URL, NOW, "j", Some("another"), None), &with_token), Err(DpopError::Ath));
    assert_eq!(verify(&k.sign("GET", URL, NOW, "j", None, None), &with_token), Err(DpopError::MissingClaim("ath")));
}

#[test]
fn rfc7638_3_1_thumbprint_of_the_rfc_example_key() {
    let jwk = json!({
        "kty": "RSA",
        "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
        "e": "AQAB",
        "alg": "RS256",
        "kid": "2011-04-29"
    });
    assert_eq!(thumbprint(&jwk).unwrap(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
}

#[test]
fn rfc9449_4_2_ath_is_base64url_sha256() {
    // SHA-256("") in base64url.
    assert_eq!(ath(""), "47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU");
}

mod proptests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn arbitrary_proofs_never_panic(s in ".{0,400}") {
            let _ = verify(&s, &expect());
        }
        #[test]
        fn arbitrary_jwt_shaped_proofs_never_panic(h in "[A-Za-z0-9_-]{0,80}", c in "[A-Za-z0-9_-]{0,80}", s in "[A-Za-z0-9_-]{0,80}") {
            let _ = verify(&format!("{h}.{c}.{s}"), &expect());
        }
        #[test]
        fn arbitrary_urls_never_panic(u in ".{0,100}") {
            let _ = normalize_url(&u);
        }
    }
}

// RFC 7515 §5.2 signatures checked against a registered JWK Set (`jws`), as the JWT bearer
// grant does (RFC 7523 §3 item 9).

mod registered_keys {
    use crate::jws::{JwsError, verify_with_jwks};
    use crate::testing::ProofSigner;
    use serde_json::{Value, json};

    fn set(keys: &[Value]) -> Value {
        json!({ "keys": keys })
    }
    fn with_kid(jwk: Value, kid: &str) -> Value {
        let mut k = jwk;
        k["kid"] = json!(kid);
        k
    }
    const ALGS: &[&str] = crate::SUPPORTED_ALGS;

    #[test]
    fn rfc7515_5_2_a_registered_key_verifies_for_each_key_type() {
        for k in [ProofSigner::es256(), ProofSigner::ed25519(), ProofSigner::rs256()] {
            let alg = k.header()["alg"].clone();
            let token = k.sign_raw(&json!({"alg": alg}), &json!({"sub": "u"}));
            let claims = verify_with_jwks(&token, &set(&[ProofSigner::es256().jwk(), k.jwk()]), ALGS).unwrap();
            assert_eq!(claims["sub"], "u");
        }
    }

    #[test]
    fn rfc7515_5_2_another_key_or_a_changed_token_fails() {
        let (k, other) = (ProofSigner::es256(), ProofSigner::es256());
        let token = k.sign_raw(&json!({"alg": "ES256"}), &json!({"sub": "u"}));
        assert_eq!(verify_with_jwks(&token, &set(&[other.jwk()]), ALGS), Err(JwsError::Signature));
        let parts: Vec<&str> = token.split('.').collect();
        let forged = format!("{}.{}.{}", parts[0], base64::Engine::encode(&crate::B64, br#"{"sub":"admin"}"#), parts[2]);
        assert_eq!(verify_with_jwks(&forged, &set(&[k.jwk()]), ALGS), Err(JwsError::Signature));
        assert_eq!(verify_with_jwks(&token, &set(&[]), ALGS), Err(JwsError::NoKey), "no key registered");
        assert_eq!(verify_with_jwks(&token, &json!({}), ALGS), Err(JwsError::NoKey), "not a JWK Set");
    }

    /// RFC 7517 §4.5 `kid` picks the key; §4.4 a key's `alg` restricts it.
    #[test]
    fn rfc7517_4_kid_and_alg_select_the_key() {
        let (a, b) = (ProofSigner::es256(), ProofSigner::es256());
        let keys = set(&[with_kid(a.jwk(), "a"), with_kid(b.jwk(), "b")]);
        let by_b = b.sign_raw(&json!({"alg": "ES256", "kid": "b"}), &json!({}));
        assert!(verify_with_jwks(&by_b, &keys, ALGS).is_ok());
        let lying = b.sign_raw(&json!({"alg": "ES256", "kid": "a"}), &json!({}));
        assert_eq!(verify_with_jwks(&lying, &keys, ALGS), Err(JwsError::Signature));
        let unknown = b.sign_raw(&json!({"alg": "ES256", "kid": "c"}), &json!({}));
        assert_eq!(verify_with_jwks(&unknown, &keys, ALGS), Err(JwsError::NoKey));
        let mut pinned = a.jwk();
        pinned["alg"] = json!("ES384");
        let token = a.sign_raw(&json!({"alg": "ES256"}), &json!({}));
        assert_eq!(verify_with_jwks(&token, &set(&[pinned]), ALGS), Err(JwsError::NoKey));
    }

    /// RFC 8725 §3.1: `none` and MACs are never accepted; nor a key the caller did not allow.
    #[test]
    fn rfc8725_3_1_none_and_symmetric_algorithms_are_refused() {
        let k = ProofSigner::es256();
        for alg in ["none", "HS256", "ES512", ""] {
            let token = k.sign_raw(&json!({"alg": alg}), &json!({}));
            assert_eq!(verify_with_jwks(&token, &set(&[k.jwk()]), ALGS), Err(JwsError::Alg), "{alg}");
        }
        let unsigned = format!("{}.{}.", base64::Engine::encode(&crate::B64, br#"{"alg":"none"}"#), base64::Engine::encode(&crate::B64, b"{}"));
        assert_eq!(verify_with_jwks(&unsigned, &set(&[k.jwk()]), ALGS), Err(JwsError::Alg));
        let token = k.sign_raw(&json!({"alg": "ES256"}), &json!({}));
        assert_eq!(verify_with_jwks(&token, &set(&[k.jwk()]), &["RS256"]), Err(JwsError::Alg));
        let crit = k.sign_raw(&json!({"alg": "ES256", "crit": ["exp"], "exp": 1}), &json!({}));
        assert!(matches!(verify_with_jwks(&crit, &set(&[k.jwk()]), ALGS), Err(JwsError::Malformed(_))));
    }

    #[test]
    fn junk_is_malformed_never_a_panic() {
        let keys = set(&[ProofSigner::es256().jwk()]);
        for junk in ["", ".", "..", "a.b.c", "a.b.c.d", "eyJ.eyJ.", &"x".repeat(9000), "e30.e30.!!"] {
            assert!(matches!(verify_with_jwks(junk, &keys, ALGS), Err(JwsError::Malformed(_) | JwsError::Alg)), "{junk:.20}");
        }
    }
}
