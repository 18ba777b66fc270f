//! API keys: one or more per tenant, stored as sha256 hashes, and the [`Tenant`] extractor
//! that every `/v1` data route takes.
//!
//! A key is 32 random bytes; its hash is a safe lookup value because the key has 256 bits of
//! entropy (no salt or slow hash needed, unlike passwords).

use crate::error::ApiError;
use crate::server::AppState;
use crate::store::{now_ms, KeyRecord, StateStore};
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const KEY_PREFIX: &str = "mk_";

/// A fresh key, as shown to its owner once.
pub fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    format!("{KEY_PREFIX}{}", hex::encode(bytes))
}

pub fn hash_key(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

/// Tenant names appear in URLs of logs and metrics: keep them plain.
pub fn check_tenant(tenant: &str) -> Result<(), String> {
    let ok = !tenant.is_empty()
        && tenant.len() <= 64
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "tenant {tenant:?} must be 1-64 characters of letters, digits, '-', '_' or '.'"
        ))
    }
}

/// Creates a key for `tenant`, stores its hash and returns the key (shown once).
pub async fn add_key(
    store: &dyn StateStore,
    tenant: &str,
    label: &str,
) -> Result<(String, KeyRecord), String> {
    check_tenant(tenant)?;
    let key = generate_key();
    let record = KeyRecord {
        hash: hash_key(&key),
        tenant: tenant.to_owned(),
        label: label.to_owned(),
        created_at: now_ms(),
    };
    store
        .add_key(&record)
        .await
        .map_err(|e| format!("cannot store the key: {e}"))?;
    Ok((key, record))
}

/// Keys seen recently, so a request costs no database read; entries expire so that a removed
/// key stops working within [`KeyCache::TTL`].
#[derive(Default)]
pub struct KeyCache {
    known: Mutex<HashMap<String, (String, Instant)>>,
}

impl KeyCache {
    pub const TTL: Duration = Duration::from_secs(30);

    pub async fn tenant(
        &self,
        store: &dyn StateStore,
        key: &str,
    ) -> Result<Option<String>, ApiError> {
        let hash = hash_key(key);
        if let Some(t) = self.cached(&hash) {
            return Ok(Some(t));
        }
        let tenant = store.tenant_for_key(&hash).await?;
        if let Some(t) = &tenant {
            if let Ok(mut m) = self.known.lock() {
                m.insert(hash, (t.clone(), Instant::now()));
            }
        }
        Ok(tenant)
    }

    fn cached(&self, hash: &str) -> Option<String> {
        let m = self.known.lock().ok()?;
        m.get(hash)
            .filter(|(_, at)| at.elapsed() < Self::TTL)
            .map(|(t, _)| t.clone())
    }
}

/// The tenant a request's API key belongs to (`Authorization: Bearer KEY` or `X-Api-Key: KEY`).
#[derive(Clone, Debug)]
pub struct Tenant(pub String);

impl FromRequestParts<Arc<AppState>> for Tenant {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &Arc<AppState>,
    ) -> Result<Self, ApiError> {
        let header = |name: &str| {
            parts
                .headers
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
        };
        let key = header("authorization")
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .or_else(|| header("x-api-key"))
            .map(str::trim)
            .filter(|k| !k.is_empty())
            .ok_or_else(|| {
                ApiError::unauthorized("missing API key: send `Authorization: Bearer KEY` (create one with `micro serve keys add`)")
            })?;
        match state.keys.tenant(state.store.as_ref(), key).await? {
            Some(t) => Ok(Tenant(t)),
            None => Err(ApiError::unauthorized("invalid API key")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hash_to_a_fixed_width() {
        let (a, b) = (generate_key(), generate_key());
        assert_ne!(a, b);
        assert!(a.starts_with(KEY_PREFIX) && a.len() == KEY_PREFIX.len() + 64);
        assert_eq!(hash_key(&a).len(), 64);
        assert_eq!(
            hash_key("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn tenant_names_are_plain() {
        assert!(check_tenant("acme-1.eu").is_ok());
        assert!(check_tenant("").is_err());
        assert!(check_tenant("a b").is_err());
    }
}
