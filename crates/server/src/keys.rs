//! The signing key ring. Keys live in the store (generated on first start, never printed or
//! logged). Each algorithm has its own keys: ES256 signs access tokens; RS256 (the OpenID
//! Connect default), ES256 or EdDSA sign ID tokens per client.
//!
//! Rotation (OIDC Core §10.1.1): a new key is published in the JWKS when it is created and
//! signs only from its `use_after` time on, so relying parties have fetched it before they see
//! it; a superseded key stays published until every token it signed has expired, then it is
//! deleted. The signer is chosen at signing time, so no reload is needed for a key to start
//! signing.
//!
//! At rest (RFC 6819 §5.1.4.1.3): private keys are stored sealed under the key-encryption key
//! (KEK, `tessera_jose::kek`), which is held outside the database; the ring opens them on load.
//! On start, keys stored in plain PKCS#8 (databases from before) or sealed under a previous KEK
//! (a KEK rotation) are sealed again under the current one, in place ([`reseal`]); a key sealed
//! under a KEK the server does not hold stops the start with an error naming both KEK ids.

use std::sync::{Arc, RwLock};
use tessera_jose::kek::{KeyEncryption, StoredForm};
use tessera_jose::{Alg, SigningKey};
use tessera_storage::{ExistingKey, KeyRecord, Store, StoreError};

pub struct KeyRing {
    inner: RwLock<Arc<Loaded>>,
    kek: Arc<KeyEncryption>,
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

/// Generate a key for `alg`, published now and signing from `use_after`, sealed under the
/// current KEK.
fn new_key(kek: &KeyEncryption, alg: Alg, now: i64, use_after: i64) -> Result<KeyRecord, StoreError> {
    let der = tessera_jose::generate(alg).map_err(other)?;
    let key = SigningKey::from_pkcs8(alg, &der).map_err(other)?;
    let sealed = kek.seal(key.kid(), &der).map_err(other)?;
    Ok(KeyRecord { kid: key.kid().to_string(), alg: alg.as_str().into(), private_der: sealed, created_at: now, use_after })
}

/// Generate a key for `alg` and store it, published now and signing from `use_after`.
pub async fn create_key(store: &dyn Store, kek: &KeyEncryption, alg: Alg, now: i64, use_after: i64) -> Result<String, StoreError> {
    let record = new_key(kek, alg, now, use_after)?;
    store.create_signing_key(&record).await?;
    Ok(record.kid)
}

/// Make sure every algorithm has a key that signs now (first start). Instances starting
/// together on an empty database agree on one key per algorithm (the store decides).
async fn ensure_keys(store: &dyn Store, kek: &KeyEncryption, now: i64) -> Result<(), StoreError> {
    let records = store.list_signing_keys().await?;
    for alg in Alg::ALL {
        if !records.iter().any(|r| r.alg == alg.as_str() && r.use_after <= now) {
            store.create_signing_key_unless(&new_key(kek, alg, now, now)?, ExistingKey::SignsAt(now)).await?;
        }
    }
    Ok(())
}

/// Start a rotation: a new key for `alg`, published now, signing after `publish_delay` seconds.
pub async fn rotate(store: &dyn Store, kek: &KeyEncryption, alg: Alg, now: i64, publish_delay: i64) -> Result<String, StoreError> {
    create_key(store, kek, alg, now, now + publish_delay).await
}

/// The message for a stored key this server cannot open (RFC 6819 §5.1.4.1.3): which KEK
/// sealed it and which ones the server holds, and where a KEK comes from.
fn open_error(r: &KeyRecord, e: tessera_jose::JoseError) -> StoreError {
    StoreError::Other(format!(
        "signing key {} ({}): {e}; start with the key-encryption key that sealed it (TESSERA_KEY_ENCRYPTION_KEY, or the file --key-encryption-key-file / TESSERA_KEY_ENCRYPTION_KEY_FILE names), giving the old one as TESSERA_KEY_ENCRYPTION_KEY_PREVIOUS(_FILE) after a rotation",
        r.kid, r.alg
    ))
}

/// Seal under the current KEK, in place, every stored key that is not: plain PKCS#8 (stored
/// before encryption at rest) or sealed under a previous KEK (a KEK rotation). Returns the kids
/// sealed again. Every key is opened first, so a key under an unknown KEK stops this before
/// anything changes. Instances doing this together: each replacement is a compare and swap, so
/// one of them seals each key and the others leave it.
pub async fn reseal(store: &dyn Store, kek: &KeyEncryption) -> Result<Vec<String>, StoreError> {
    let records = store.list_signing_keys().await?;
    let mut todo = Vec::new();
    for r in &records {
        let opened = kek.open(&r.kid, &r.private_der).map_err(|e| open_error(r, e))?;
        if opened.reseal {
            let alg: Alg = r.alg.parse().map_err(other)?;
            // A plain row must be the key its kid names (the kid is the associated data).
            let key = SigningKey::from_pkcs8(alg, &opened.pkcs8).map_err(|e| StoreError::Other(format!("signing key {}: {e}", r.kid)))?;
            if key.kid() != r.kid {
                return Err(StoreError::Other(format!("signing key {}: the stored key has another kid ({})", r.kid, key.kid())));
            }
            todo.push((r, kek.seal(&r.kid, &opened.pkcs8).map_err(other)?));
        }
    }
    let mut done = Vec::new();
    for (r, sealed) in todo {
        if store.update_signing_key_der(&r.kid, &r.private_der, &sealed).await? {
            done.push(r.kid.clone());
        }
    }
    Ok(done)
}

/// The KEK ids the stored keys are sealed under (`None`: plain PKCS#8), for start-up checks.
pub async fn stored_forms(store: &dyn Store) -> Result<Vec<(String, StoredForm)>, StoreError> {
    Ok(store
        .list_signing_keys()
        .await?
        .into_iter()
        .map(|r| {
            let f = StoredForm::of(&r.private_der);
            (r.kid, f)
        })
        .collect())
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
pub async fn rotate_if_due(store: &dyn Store, kek: &KeyEncryption, now: i64, period: i64, publish_delay: i64) -> Result<Vec<String>, StoreError> {
    let records = store.list_signing_keys().await?;
    let mut created = Vec::new();
    for alg in Alg::ALL {
        let newest = records.iter().filter(|r| r.alg == alg.as_str()).map(|r| r.created_at).max();
        if newest.is_some_and(|t| now - t >= period) {
            // Once per period across instances: another one may have rotated meanwhile.
            let record = new_key(kek, alg, now, now + publish_delay)?;
            if store.create_signing_key_unless(&record, ExistingKey::CreatedSince(now - period + 1)).await? {
                created.push(record.kid);
            }
        }
    }
    Ok(created)
}

impl KeyRing {
    /// Load the keys in the store, sealing under `kek` those that are not yet ([`reseal`]) and
    /// generating the missing ones on first start.
    pub async fn load_or_generate(store: &dyn Store, kek: Arc<KeyEncryption>, now: i64) -> Result<Self, StoreError> {
        let resealed = reseal(store, &kek).await?;
        if !resealed.is_empty() {
            tracing::info!(keys = resealed.len(), kek = %kek.current().id(), "signing keys sealed under the current key-encryption key");
        }
        ensure_keys(store, &kek, now).await?;
        let loaded = build(&store.list_signing_keys().await?, None, &kek)?;
        Ok(Self { inner: RwLock::new(Arc::new(loaded)), kek })
    }

    /// The key-encryption keys this ring seals and opens with (for rotations).
    pub fn kek(&self) -> &KeyEncryption {
        &self.kek
    }

    /// Re-read keys from the store (picks up keys added or deleted by another process). Keys
    /// already loaded are kept as they are (parsing an RSA key checks it, about a millisecond);
    /// an unchanged list changes nothing.
    pub async fn reload(&self, store: &dyn Store) -> Result<(), StoreError> {
        let records = store.list_signing_keys().await?;
        let current = self.current();
        let unchanged =
            records.len() == current.all.len() && records.iter().zip(&current.all).all(|(r, (k, use_after))| r.kid == k.kid() && r.use_after == *use_after);
        if unchanged {
            return Ok(());
        }
        let loaded = Arc::new(build(&records, Some(&current), &self.kek)?);
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

/// The ring for `records`, reusing the keys of `previous` that are still listed and opening the
/// others with `kek`.
fn build(records: &[KeyRecord], previous: Option<&Loaded>, kek: &KeyEncryption) -> Result<Loaded, StoreError> {
    let mut all = Vec::with_capacity(records.len());
    for r in records {
        let alg: Alg = r.alg.parse().map_err(other)?;
        let known = previous.and_then(|p| p.all.iter().find(|(k, _)| k.kid() == r.kid && k.alg() == alg)).map(|(k, _)| k.clone());
        let key = match known {
            Some(k) => k,
            None => {
                let opened = kek.open(&r.kid, &r.private_der).map_err(|e| open_error(r, e))?;
                Arc::new(SigningKey::from_pkcs8(alg, &opened.pkcs8).map_err(|e| StoreError::Other(format!("signing key {}: {e}", r.kid)))?)
            }
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
    use super::*;
    use tessera_jose::kek::Kek;
    use tessera_storage::prelude::*;
    use tessera_storage_sqlite::SqliteStore;

    fn kek() -> Arc<KeyEncryption> {
        Arc::new(KeyEncryption::new(Kek::from_base64(&Kek::generate_base64().unwrap()).unwrap(), vec![]))
    }

    /// Rotation: the new key is published at once and signs only after the delay; the old key
    /// stays published until its tokens expired, then it is retired.
    #[tokio::test]
    async fn rotation_publishes_before_signing_and_retires_late() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        let k = kek();
        let ring = KeyRing::load_or_generate(&store, k.clone(), 1_000).await.unwrap();
        let first = ring.current().signer(Alg::ES256, 1_000).unwrap().kid().to_string();
        assert!(ring.current().signer(Alg::RS256, 1_000).is_some() && ring.current().signer(Alg::EdDSA, 1_000).is_some());
        let next = rotate(&store, &k, Alg::ES256, 2_000, 300).await.unwrap();
        ring.reload(&store).await.unwrap();
        let keys = ring.current();
        assert!(keys.jwks_json.contains(&next), "published at once");
        assert_eq!(keys.signer(Alg::ES256, 2_299).unwrap().kid(), first, "the new key does not sign before its time");
        assert_eq!(keys.signer(Alg::ES256, 2_300).unwrap().kid(), next);
        assert!(retire(&store, 2_300 + 600, 3_600).await.unwrap().is_empty(), "old key kept while its tokens may live");
        assert_eq!(retire(&store, 2_300 + 3_601, 3_600).await.unwrap(), vec![first.clone()]);
        ring.reload(&store).await.unwrap();
        assert!(!ring.current().jwks_json.contains(&first));
        assert_eq!(rotate_if_due(&store, &k, 2_301, 86_400, 300).await.unwrap().len(), 0);
        assert_eq!(rotate_if_due(&store, &k, 2_000 + 86_400, 86_400, 300).await.unwrap().len(), 3, "every algorithm is due");
        // Two instances due at the same moment: both see the keys as due, one rotation is made.
        let later = 2_000 + 3 * 86_400;
        let (a, b) = tokio::join!(rotate_if_due(&store, &k, later, 86_400, 300), rotate_if_due(&store, &k, later, 86_400, 300));
        assert_eq!(a.unwrap().len() + b.unwrap().len(), 3, "one new key per algorithm, not one per instance");
    }

    /// Instances starting together on an empty database agree on one key per algorithm.
    #[tokio::test]
    async fn instances_starting_together_share_keys() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        let k = kek();
        let (a, b) = tokio::join!(KeyRing::load_or_generate(&store, k.clone(), 1_000), KeyRing::load_or_generate(&store, k.clone(), 1_000));
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
        let k = kek();
        let ring = KeyRing::load_or_generate(&store, k.clone(), 1_000).await.unwrap();
        let before = ring.current();
        ring.reload(&store).await.unwrap();
        assert!(Arc::ptr_eq(&before, &ring.current()), "nothing changed, nothing rebuilt");
        let next = rotate(&store, &k, Alg::ES256, 2_000, 300).await.unwrap();
        ring.reload(&store).await.unwrap();
        let after = ring.current();
        assert_eq!(after.all.len(), before.all.len() + 1);
        assert!(after.jwks_json.contains(&next));
        for (k, _) in &before.all {
            let kept = after.all.iter().find(|(a, _)| a.kid() == k.kid()).unwrap();
            assert!(Arc::ptr_eq(k, &kept.0), "{} reused", k.kid());
        }
    }

    /// Keys in plain PKCS#8 (a database from before) are sealed in place on load, keeping their
    /// kids; a KEK rotation re-seals them; a KEK that sealed nothing here is refused by id.
    #[tokio::test]
    async fn legacy_keys_sealed_and_kek_rotation() {
        let store = SqliteStore::open("sqlite::memory:").await.unwrap();
        let der = tessera_jose::generate(Alg::ES256).unwrap();
        let kid = SigningKey::from_pkcs8(Alg::ES256, &der).unwrap().kid().to_string();
        store.create_signing_key(&KeyRecord { kid: kid.clone(), alg: "ES256".into(), private_der: der.clone(), created_at: 1, use_after: 1 }).await.unwrap();
        let a_text = Kek::generate_base64().unwrap();
        let a = Arc::new(KeyEncryption::new(Kek::from_base64(&a_text).unwrap(), vec![]));
        let ring = KeyRing::load_or_generate(&store, a.clone(), 1_000).await.unwrap();
        assert_eq!(ring.current().signer(Alg::ES256, 1_000).unwrap().kid(), kid, "the legacy key is kept");
        let forms = stored_forms(&store).await.unwrap();
        assert!(forms.len() == 3 && forms.iter().all(|(_, f)| f.kek_id() == Some(a.current().id())), "{forms:?}");
        // Another KEK alone: refused, naming both ids.
        let b = Kek::from_base64(&Kek::generate_base64().unwrap()).unwrap();
        let b_id = b.id();
        let e = KeyRing::load_or_generate(&store, Arc::new(KeyEncryption::new(Kek::from_base64(&Kek::generate_base64().unwrap()).unwrap(), vec![])), 1_000)
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains(&a.current().id()) && e.contains("TESSERA_KEY_ENCRYPTION_KEY"), "{e}");
        // Rotation: the new KEK with the previous one re-seals every key; kids unchanged.
        let rotated = Arc::new(KeyEncryption::new(b, vec![Kek::from_base64(&a_text).unwrap()]));
        let before: Vec<String> = ring.current().all.iter().map(|(k, _)| k.kid().to_string()).collect();
        let ring = KeyRing::load_or_generate(&store, rotated, 1_000).await.unwrap();
        assert_eq!(ring.current().all.iter().map(|(k, _)| k.kid().to_string()).collect::<Vec<_>>(), before);
        assert!(stored_forms(&store).await.unwrap().iter().all(|(_, f)| f.kek_id().as_deref() == Some(b_id.as_str())));
        assert!(reseal(&store, ring.kek()).await.unwrap().is_empty(), "nothing left to re-seal");
    }
}
