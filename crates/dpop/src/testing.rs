//! A DPoP proof signer for tests (feature `test-support`, never in the product): ES256, EdDSA
//! and RS256 keys made on the spot, proofs with any header and claims.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde_json::{Value, json};

enum Pair {
    Ec(EcdsaKeyPair),
    Ed(Ed25519KeyPair),
    Rsa(aws_lc_rs::rsa::KeyPair),
}

/// A key pair that signs proofs.
pub struct ProofSigner {
    pair: Pair,
    alg: &'static str,
    jwk: Value,
}

impl ProofSigner {
    pub fn es256() -> Self {
        let pair = EcdsaKeyPair::generate(&signature::ECDSA_P256_SHA256_FIXED_SIGNING).unwrap();
        let point = pair.public_key().as_ref().to_vec();
        let jwk = json!({"kty": "EC", "crv": "P-256", "x": B64.encode(&point[1..33]), "y": B64.encode(&point[33..65])});
        Self { pair: Pair::Ec(pair), alg: "ES256", jwk }
    }
    pub fn ed25519() -> Self {
        let doc = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        let pair = Ed25519KeyPair::from_pkcs8(doc.as_ref()).unwrap();
        let jwk = json!({"kty": "OKP", "crv": "Ed25519", "x": B64.encode(pair.public_key().as_ref())});
        Self { pair: Pair::Ed(pair), alg: "EdDSA", jwk }
    }
    pub fn rs256() -> Self {
        let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048).unwrap();
        let public = pair.public_key();
        let jwk = json!({
            "kty": "RSA",
            "n": B64.encode(public.modulus().big_endian_without_leading_zero()),
            "e": B64.encode(public.exponent().big_endian_without_leading_zero()),
        });
        Self { pair: Pair::Rsa(pair), alg: "RS256", jwk }
    }
    /// The public JWK.
    pub fn jwk(&self) -> Value {
        self.jwk.clone()
    }
    /// Its RFC 7638 thumbprint.
    pub fn thumbprint(&self) -> String {
        crate::thumbprint(&self.jwk).unwrap()
    }
    /// The header a proof normally has.
    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg, "jwk": self.jwk})
    }
    /// A proof for a request.
    pub fn sign(&self, htm: &str, htu: &str, iat: i64, jti: &str, access_token: Option<&str>, nonce: Option<&str>) -> String {
        let mut claims = json!({"jti": jti, "htm": htm, "htu": htu, "iat": iat});
        if let Some(t) = access_token {
            claims["ath"] = json!(crate::ath(t));
        }
        if let Some(n) = nonce {
            claims["nonce"] = json!(n);
        }
        self.sign_raw(&self.header(), &claims)
    }
    /// A proof with exactly this header and these claims (for refusals).
    pub fn sign_raw(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", B64.encode(header.to_string()), B64.encode(claims.to_string()));
        let sig = match &self.pair {
            Pair::Ec(p) => p.sign(&SystemRandom::new(), input.as_bytes()).unwrap().as_ref().to_vec(),
            Pair::Ed(p) => p.sign(input.as_bytes()).as_ref().to_vec(),
            Pair::Rsa(p) => {
                let mut sig = vec![0u8; p.public_modulus_len()];
                p.sign(&signature::RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
                sig
            }
        };
        format!("{input}.{}", B64.encode(sig))
    }
}
