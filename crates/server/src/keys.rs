//! The signing key ring. Keys live in the store (generated on first start, never printed or
//! logged). Each algorithm has its own keys: ES256 signs access tokens; RS256 (the OpenID
//! Connect default), ES256 or EdDSA sign ID tokens per client.
//!
//! Rotation (OIDC Core §10.1.1): a new key is published in the JWKS when it is created and
//! signs only from its `use_after` time on, so relying parties have fetched it before they see
//! it; a superseded key stays published until every token it signed has expired, then it is
//! deleted. The signer is chosen at signing time, so no reload is needed for a key to start
//! signing.

use std::sync::{Arc, RwLock};
use tessera_jose::{Alg, SigningKey};
use tessera_storage::{ExistingKey, KeyRecord, Store, StoreError};

pub struct KeyRing {
    inner: RwLock<Arc<Loaded>>,
}

pub struct Loaded {
    /// Every published key with its record's `use_after`, oldest first.
    pub all: Vec<(Arc<SigningKey>, i64)>,
    pub jwks_json: String,
}

impl Loaded {
    /// The key that signs for `alg` at `now`: the newest one whose `use_after` has passed.
    pub fn signer(&self, alg: Alg, now: i64) -> Option<&Arc<SigningKey>> {
        // The latest `use_after` wins (ties: the later-created key, as `all` is oldest first).
        self.all.iter().filter(|(k, use_after)| k.alg() == alg && *use_after <= now).max_by_key(|(_, use_after)| *use_after).map(|(k, _)| k)
    }
    /// A published key by `kid` (for verifying our own tokens).
    pub fn find(&self, kid: &str) -> Option<&SigningKey> {
        self.all.iter().find(|(k, _)| k.kid() == kid).map(|(k, _)| k.as_ref())
    }
}

fn other(e: impl std::fmt::Display) -> StoreError {
    StoreError::Other(e.to_string())
}

/// Generate a key for `alg`, published now and signing from `use_after`.
fn new_key(alg: Alg, now: i64, use_after: i64) -> Result<KeyRecord, StoreError> {
    let der = tessera_jose::generate(alg).map_err(other)?;
    let key = SigningKey::from_pkcs8(alg, &der).map_err(other)?;
    Ok(KeyRecord { kid: key.kid().to_string(), alg: alg.as_str().into(), private_der: der, created_at: now, use_after })
}

/// Generate a key for `alg` and store it, published now and signing from `use_after`.
pub async fn create_key(store: &dyn Store, alg: Alg, now: i64, use_after: i64) -> Result<String, StoreError> {
    let record = new_key(alg, now, use_after)?;
    store.create_signing_key(&record).await?;
    Ok(record.kid)
}

/// Make sure every algorithm has a key that signs now (first start). Instances starting
/// together on an empty database agree on one key per algorithm (the store decides).
async fn ensure_keys(store: &dyn Store, now: i64) -> Result<(), StoreError> {
    let records = store.list_signing_keys().await?;
    for alg in Alg::ALL {
        if !records.iter().any(|r| r.alg == alg.as_str() && r.use_after <= now) {
            store.create_signing_key_unless(&new_key(alg, now, now)?, ExistingKey::SignsAt(now)).await?;
        }
    }
    Ok(())
}

/// Start a rotation: a new key for `alg`, published now, signing after `publish_delay` seconds.
pub async fn rotate(store: &dyn Store, alg: Alg, now: i64, publish_delay: i64) -> Result<String, StoreError> {
    create_key(store, alg, now, now + publish_delay).await
}

/// Delete keys that no longer sign and whose tokens have all expired: a key is retired once a
/// newer key of its algorithm has been signing for longer than `max_token_lifetime`.
pub async fn retire(store: &dyn Store, now: i64, max_token_lifetime: i64) -> Result<Vec<String>, StoreError> {
    let records = store.list_signing_keys().await?;
    let mut deleted = Vec::new();
    for r in &records {
        let superseded_since = records.iter().filter(|n| n.alg == r.alg && n.use_after > r.use_after && n.use_after <= now).map(|n| n.use_after).min();
        if let Some(since) = superseded_since {
            if now - since > max_token_lifetime && store.delete_signing_key(&r.kid).await? {
                deleted.push(r.kid.clone());
            }
        }
    }
    Ok(deleted)
}

/// Start a scheduled rotation when the newest key of an algorithm is older than `period`.
pub async fn rotate_if_due(store: &dyn Store, now: i64, period: i64, publish_delay: i64) -> Result<Vec<String>, StoreError> {
    let records = store.list_signing_keys().await?;
    let mut created = Vec::new();
    for alg in Alg::ALL {
        let newest = records.iter().filter(|r| r.alg == alg.as_str()).map(|r| r.created_at).max();
        if newest.is_some_and(|t| now - t >= period) {
            // Once per period across instances: another one may have rotated meanwhile.
            let record = new_key(alg, now, now + publish_delay)?;
            if store.create_signing_key_unless(&record, ExistingKey::CreatedSince(now - period + 1)).await? {
                created.push(record.kid);
            }
        }
    }
    Ok(created)
}

impl KeyRing {
    /// Load the keys in the store, generating the missing ones on first start.
    pub async fn load_or_generate(store: &dyn Store, now: i64) -> Result<Self, StoreError> {
        ensure_keys(store, now).await?;
        let loaded = load(store).await?;
        Ok(Self { inner: RwLock::new(Arc::new(loaded)) })
    }

    /// Re-read keys from the store (picks up keys added or deleted by another process). Keys
    /// already loaded are kept as they are (parsing an RSA key checks it, about a millisecond);
    /// an unchanged list changes nothing.
    pub async fn reload(&self, store: &dyn Store) -> Result<(), StoreError> {
        let records = store.list_signing_keys().await?;
        let current = self.current();
        let unchanged = records.len() == current.all.len() && records.iter().zip(&current.all).all(|(r, (k, use_after))| r.kid == k.kid() && r.use_after == *use_after);
        if unchanged {
            return Ok(());
        }
        let loaded = Arc::new(build(&records, Some(&current))?);
        if let Ok(mut g) = self.inner.write() {
            *g = loaded;
        }
        Ok(())
    }

    pub fn current(&self) -> Arc<Loaded> {
        match self.inner.read() {
            Ok(g) => g.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }
}

async fn load(store: &dyn Store) -> Result<Loaded, StoreError> {
    build(&store.list_signing_keys().await?, None)
}

/// The ring for `records`, reusing the keys of `previous` that are still listed.
fn build(records: &[KeyRecord], previous: Option<&Loaded>) -> Result<Loaded, StoreError> {
    let mut all = Vec::with_capacity(records.len());
    for r in records {
        let alg: Alg = r.alg.parse().map_err(other)?;
        let known = previous.and_then(|p| p.all.iter().find(|(k, _)| k.kid() == r.kid && k.alg() == alg)).map(|(k, _)| k.clone());
        let key = match known {
            Some(k) => k,
            None => Arc::new(SigningKey::from_pkcs8(alg, &r.private_der).map_err(|e| StoreError::Other(format!("signing key {}: {e}", r.kid)))?),
        };
        all.push((key, r.use_after));
    }
    if all.is_empty() {
        return Err(StoreError::Other("no signing key".into()));
    }
    let jwks_json = tessera_jose::jwks(all.iter().map(|(k, _)| k.as_ref())).to_string();
    Ok(Loaded { all, jwks_json })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use tessera_storage_sqlite::SqliteStore;

    /// Rotation: the new key is published at once and signs only after the delay; the old key
    /// stays published until its tokens expired, then it is retired.
    #[tokio::test]
    async fn rotation_publishes_before_signing_and_retires_late() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        let ring = KeyRing::load_or_generate(&store, 1_000).await.unwrap();
        let first = ring.current().signer(Alg::ES256, 1_000).unwrap().kid().to_string();
        assert!(ring.current().signer(Alg::RS256, 1_000).is_some() && ring.current().signer(Alg::EdDSA, 1_000).is_some());
        let next = rotate(&store, Alg::ES256, 2_000, 300).await.unwrap();
        ring.reload(&store).await.unwrap();
        let keys = ring.current();
        assert!(keys.jwks_json.contains(&next), "published at once");
        assert_eq!(keys.signer(Alg::ES256, 2_299).unwrap().kid(), first, "the new key does not sign before its time");
        assert_eq!(keys.signer(Alg::ES256, 2_300).unwrap().kid(), next);
        assert!(retire(&store, 2_300 + 600, 3_600).await.unwrap().is_empty(), "old key kept while its tokens may live");
        assert_eq!(retire(&store, 2_300 + 3_601, 3_600).await.unwrap(), vec![first.clone()]);
        ring.reload(&store).await.unwrap();
        assert!(!ring.current().jwks_json.contains(&first));
        assert_eq!(rotate_if_due(&store, 2_301, 86_400, 300).await.unwrap().len(), 0);
        assert_eq!(rotate_if_due(&store, 2_000 + 86_400, 86_400, 300).await.unwrap().len(), 3, "every algorithm is due");
        // Two instances due at the same moment: both see the keys as due, one rotation is made.
        let later = 2_000 + 3 * 86_400;
        let (a, b) = tokio::join!(rotate_if_due(&store, later, 86_400, 300), rotate_if_due(&store, later, 86_400, 300));
        assert_eq!(a.unwrap().len() + b.unwrap().len(), 3, "one new key per algorithm, not one per instance");
    }

    /// Instances starting together on an empty database agree on one key per algorithm.
    #[tokio::test]
    async fn instances_starting_together_share_keys() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        let (a, b) = tokio::join!(KeyRing::load_or_generate(&store, 1_000), KeyRing::load_or_generate(&store, 1_000));
        let (a, b) = (a.unwrap(), b.unwrap());
        a.reload(&store).await.unwrap();
        b.reload(&store).await.unwrap();
        assert_eq!(store.list_signing_keys().await.unwrap().len(), Alg::ALL.len());
        for alg in Alg::ALL {
            assert_eq!(a.current().signer(alg, 1_000).unwrap().kid(), b.current().signer(alg, 1_000).unwrap().kid());
        }
    }

    /// A reload of an unchanged list keeps the ring as it is; a changed list keeps the keys
    /// already parsed and parses only the new one.
    #[tokio::test]
    async fn reload_parses_only_what_changed() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        let ring = KeyRing::load_or_generate(&store, 1_000).await.unwrap();
        let before = ring.current();
        ring.reload(&store).await.unwrap();
        assert!(Arc::ptr_eq(&before, &ring.current()), "nothing changed, nothing rebuilt");
        let next = rotate(&store, Alg::ES256, 2_000, 300).await.unwrap();
        ring.reload(&store).await.unwrap();
        let after = ring.current();
        assert_eq!(after.all.len(), before.all.len() + 1);
        assert!(after.jwks_json.contains(&next));
        for (k, _) in &before.all {
            let kept = after.all.iter().find(|(a, _)| a.kid() == k.kid()).unwrap();
            assert!(Arc::ptr_eq(k, &kept.0), "{} reused", k.kid());
        }
    }
}
