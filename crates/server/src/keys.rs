//! The signing key ring: keys live in the store (generated on first start, never printed or
//! logged); the newest is active. JWKS is serialized once per load, not per request.

use std::sync::{Arc, RwLock};
use tessera_jose::{Alg, SigningKey};
use tessera_storage::{KeyRecord, Store, StoreError};

pub struct KeyRing {
    inner: RwLock<Arc<Loaded>>,
}

pub struct Loaded {
    pub active: Arc<SigningKey>,
    pub all: Vec<Arc<SigningKey>>,
    pub jwks_json: String,
}

impl KeyRing {
    /// Load the keys in the store, generating an ES256 key if there is none.
    pub async fn load_or_generate(store: &dyn Store, now: i64) -> Result<Self, StoreError> {
        let loaded = load(store, now).await?;
        Ok(Self { inner: RwLock::new(Arc::new(loaded)) })
    }

    /// Re-read keys from the store (picks up keys added by another process).
    pub async fn reload(&self, store: &dyn Store, now: i64) -> Result<(), StoreError> {
        let loaded = Arc::new(load(store, now).await?);
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

async fn load(store: &dyn Store, now: i64) -> Result<Loaded, StoreError> {
    let mut records = store.list_signing_keys().await?;
    if records.is_empty() {
        let der = tessera_jose::generate(Alg::ES256).map_err(|e| StoreError::Other(e.to_string()))?;
        let key = SigningKey::from_pkcs8(Alg::ES256, &der).map_err(|e| StoreError::Other(e.to_string()))?;
        let rec = KeyRecord { kid: key.kid().to_string(), alg: Alg::ES256.as_str().into(), private_der: der, created_at: now, use_after: now };
        match store.create_signing_key(&rec).await {
            Ok(()) | Err(StoreError::Conflict(_)) => {}
            Err(e) => return Err(e),
        }
        records = store.list_signing_keys().await?;
    }
    let mut all = Vec::with_capacity(records.len());
    for r in &records {
        let alg: Alg = r.alg.parse().map_err(|e: tessera_jose::JoseError| StoreError::Other(e.to_string()))?;
        let key = SigningKey::from_pkcs8(alg, &r.private_der).map_err(|e| StoreError::Other(format!("signing key {}: {e}", r.kid)))?;
        all.push(Arc::new(key));
    }
    let active = all.last().cloned().ok_or_else(|| StoreError::Other("no signing key".into()))?;
    let jwks_json = tessera_jose::jwks(all.iter().map(|k| k.as_ref())).to_string();
    Ok(Loaded { active, all, jwks_json })
}
