//! The guard's added cost per request with cached keys (target: under 50 µs).
//!
//! Run: `cargo bench -p tessera-guard --bench guard` (release profile; no network: keys are
//! installed with `Guard::set_keys`). For ES256 Tessera-style access tokens it prints:
//! - `verify, token seen before`: `Guard::verify` of a token already verified (the normal case:
//!   a client uses one access token for its whole lifetime) — digest, lookup, time checks;
//! - `verify, new token`: full validation, ECDSA P-256 signature included;
//! - per request: one axum request through `Guard::layer()` + `RequireScope`, minus the same
//!   request to the same route without the guard, for both cases.
//!
//! - `request, DPoP-bound token`: the same request with `Authorization: DPoP` and a fresh proof
//!   (RFC 9449 §7: proof signature, `htu`, `ath`, replay cache), the token seen before.
//!
//! Each figure is the median of 15 rounds of 2,000 iterations on one thread.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair};
use axum::Router;
use axum::body::Body;
use axum::handler::Handler;
use axum::http::{Request, header};
use axum::routing::get;
use jsonwebtoken::jwk::{Jwk, JwkSet};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use std::hint::black_box;
use std::time::{Duration, Instant};
use tessera_guard::{Guard, GuardConfig, Principal, RequireScope};
use tower::{Service, ServiceExt};

const ROUNDS: usize = 15;
const ITERS: usize = 2_000;
const ISSUER: &str = "https://auth.example";
const AUD: &str = "https://notes.example";

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn us(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

async fn plain() -> &'static str {
    "ok"
}

async fn guarded(p: Principal) -> &'static str {
    black_box(p);
    "ok"
}

/// Median per-iteration time of `ROUNDS` rounds; `tokens(round)` gives each round's tokens.
async fn per_request(app: &Router, tokens: &[Vec<String>]) -> Duration {
    let proofs: Vec<Vec<String>> = tokens.iter().map(|r| vec![String::new(); r.len()]).collect();
    per_request_with(app, tokens, &proofs).await
}

/// [`per_request`] with a DPoP proof per request (the DPoP scheme where a proof is given).
async fn per_request_with(app: &Router, tokens: &[Vec<String>], proofs: &[Vec<String>]) -> Duration {
    let mut rounds = Vec::new();
    for (round, round_proofs) in tokens.iter().zip(proofs) {
        let mut svc = app.clone();
        let t = Instant::now();
        for (token, proof) in round.iter().zip(round_proofs) {
            let mut req = Request::get("/notes");
            if !proof.is_empty() {
                req = req.header(header::AUTHORIZATION, format!("DPoP {token}")).header("DPoP", proof);
            } else if !token.is_empty() {
                req = req.header(header::AUTHORIZATION, format!("Bearer {token}"));
            }
            let req: Request<Body> = req.body(Body::empty()).unwrap();
            let res = ServiceExt::<Request<Body>>::ready(&mut svc).await.unwrap().call(req).await.unwrap();
            assert!(res.status().is_success(), "{}", res.status());
            black_box(res);
        }
        rounds.push(t.elapsed() / round.len() as u32);
    }
    median(rounds)
}

async fn verify_rounds(guard: &Guard, tokens: &[Vec<String>]) -> Duration {
    let mut rounds = Vec::new();
    for round in tokens {
        let t = Instant::now();
        for token in round {
            assert!(guard.verify(black_box(token)).await.is_ok());
        }
        rounds.push(t.elapsed() / round.len() as u32);
    }
    median(rounds)
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let der = EcdsaKeyPair::generate(&ECDSA_P256_SHA256_FIXED_SIGNING).unwrap().to_pkcs8v1().unwrap().as_ref().to_vec();
    let enc = EncodingKey::from_ec_der(&der);
    let mut jwk = Jwk::from_encoding_key(&enc, Algorithm::ES256).unwrap();
    jwk.common.key_id = Some("k1".into());
    let keys = JwkSet { keys: vec![jwk] };
    let remembering = Guard::new(GuardConfig::new(ISSUER, AUD)).unwrap();
    remembering.set_keys(&keys);
    let forgetful = Guard::new(GuardConfig::new(ISSUER, AUD).with_verified_cache_capacity(0)).unwrap();
    forgetful.set_keys(&keys);

    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
    let mut h = Header::new(Algorithm::ES256);
    h.typ = Some("at+jwt".into());
    h.kid = Some("k1".into());
    let sign = |jti: usize| {
        let claims = serde_json::json!({"iss": ISSUER, "sub": "u1", "aud": AUD, "exp": now + 3600, "iat": now, "jti": format!("j{jti}"), "client_id": "c", "scope": "notes.read notes.write"});
        jsonwebtoken::encode(&h, &claims, &enc).unwrap()
    };
    let same: Vec<Vec<String>> = vec![vec![sign(0); ITERS]; ROUNDS];
    let fresh: Vec<Vec<String>> = (0..ROUNDS).map(|r| (0..ITERS).map(|i| sign(1 + r * ITERS + i)).collect()).collect();
    let none: Vec<Vec<String>> = vec![vec![String::new(); ITERS]; ROUNDS];
    // A DPoP-bound token and a fresh proof for every request, signed before the clock starts.
    let dpop_key = tessera_dpop::testing::ProofSigner::es256();
    let bound = {
        let claims = serde_json::json!({"iss": ISSUER, "sub": "u1", "aud": AUD, "exp": now + 3600, "iat": now, "jti": "bound", "client_id": "c", "scope": "notes.read", "cnf": {"jkt": dpop_key.thumbprint()}});
        jsonwebtoken::encode(&h, &claims, &enc).unwrap()
    };
    let bound_rounds: Vec<Vec<String>> = vec![vec![bound.clone(); ITERS]; ROUNDS];
    let proofs: Vec<Vec<String>> = (0..ROUNDS)
        .map(|r| (0..ITERS).map(|i| dpop_key.sign("GET", "https://notes.example/notes", now, &format!("p{r}-{i}"), Some(&bound), None)).collect())
        .collect();
    let dpop_guard = Guard::new(GuardConfig::new(ISSUER, AUD).with_public_base_url("https://notes.example")).unwrap();
    dpop_guard.set_keys(&keys);

    let app = |g: &Guard| Router::new().route("/notes", get(guarded.layer(RequireScope("notes.read")))).layer(g.layer());
    let (with_cache, without_cache, with_dpop) = (app(&remembering), app(&forgetful), app(&dpop_guard));
    let bare = Router::new().route("/notes", get(plain));

    rt.block_on(async {
        let v_same = verify_rounds(&remembering, &same).await;
        let v_fresh = verify_rounds(&forgetful, &fresh).await;
        let r_bare = per_request(&bare, &none).await;
        let r_same = per_request(&with_cache, &same).await;
        let r_fresh = per_request(&without_cache, &fresh).await;
        let r_dpop = per_request_with(&with_dpop, &bound_rounds, &proofs).await;
        println!("tessera-guard benchmark: ES256 access tokens, keys cached, median of {ROUNDS} rounds x {ITERS}");
        println!("  verify, token seen before        {:>8.1} µs", us(v_same));
        println!("  verify, new token (signature)    {:>8.1} µs", us(v_fresh));
        println!("  request without guard            {:>8.1} µs", us(r_bare));
        println!("  request, token seen before       {:>8.1} µs   added by the guard: {:.1} µs", us(r_same), us(r_same.saturating_sub(r_bare)));
        println!("  request, new token (signature)   {:>8.1} µs   added by the guard: {:.1} µs", us(r_fresh), us(r_fresh.saturating_sub(r_bare)));
        println!("  request, DPoP-bound token        {:>8.1} µs   added by the guard: {:.1} µs", us(r_dpop), us(r_dpop.saturating_sub(r_bare)));
    });
}
