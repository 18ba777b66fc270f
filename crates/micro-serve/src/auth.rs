//! API keys: one or more per tenant, stored as sha256 hashes, and the [`Tenant`] extractor
//! that every `/v1` data route takes.
//!
//! A key is 32 random bytes; its hash is a safe lookup value because the key has 256 bits of
//! entropy (no salt or slow hash needed, unlike passwords).

use crate::error::ApiError;
use crate::store::{now_ms, KeyRecord, StateStore, StoreError};
use axum::http::request::Parts;
use base64::Engine as _;
use rand::RngCore;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
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

/// Why a key was not created.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("tenant {0:?} must be 1-64 characters of letters, digits, '-', '_' or '.'")]
    Tenant(String),
    #[error("cannot store the key: {0}")]
    Store(#[from] StoreError),
}

/// Tenant names appear in URLs of logs and metrics: keep them plain.
fn check_tenant(tenant: &str) -> Result<(), KeyError> {
    let ok = !tenant.is_empty()
        && tenant.len() <= 64
        && tenant
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    match ok {
        true => Ok(()),
        false => Err(KeyError::Tenant(tenant.to_owned())),
    }
}

/// Creates a key for `tenant`, stores its hash and returns the key (shown once).
pub async fn add_key(
    store: &dyn StateStore,
    tenant: &str,
    label: &str,
) -> Result<(String, KeyRecord), KeyError> {
    check_tenant(tenant)?;
    let key = generate_key();
    let record = KeyRecord {
        hash: hash_key(&key),
        tenant: tenant.to_owned(),
        label: label.to_owned(),
        created_at: now_ms(),
    };
    store.add_key(&record).await?;
    Ok((key, record))
}

/// How long a server keeps accepting a key after `micro serve keys remove`.
pub const KEY_CACHE_TTL: Duration = Duration::from_secs(30);

/// Keys seen recently, so a request costs no database read; entries expire so that a removed
/// key stops working within [`KEY_CACHE_TTL`].
#[derive(Default)]
pub struct KeyCache {
    known: Mutex<HashMap<String, (String, Instant)>>,
}

impl KeyCache {
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
            .filter(|(_, at)| at.elapsed() < KEY_CACHE_TTL)
            .map(|(t, _)| t.clone())
    }
}

/// The key a request carries, if any.
pub(crate) fn request_key(parts: &Parts) -> Result<Option<String>, ApiError> {
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let key = match (header("x-api-key"), header("authorization")) {
        (Some(k), _) => Some(k.to_owned()),
        (None, Some(v)) => match v.split_once(' ') {
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("bearer") => Some(rest.to_owned()),
            Some((scheme, rest)) if scheme.eq_ignore_ascii_case("basic") => {
                Some(basic_password(rest)?)
            }
            _ => None,
        },
        (None, None) => None,
    };
    Ok(key.map(|k| k.trim().to_owned()).filter(|k| !k.is_empty()))
}

/// The password of HTTP Basic credentials (`base64(user:password)`), or the user name when
/// the password is empty (`http://KEY@host/`).
fn basic_password(credentials: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::unauthorized(
            "malformed Basic credentials: use a URL like `http://micro:KEY@host/`",
        )
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(credentials.trim())
        .map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let (user, password) = text.split_once(':').unwrap_or((&text, ""));
    Ok(if password.is_empty() { user } else { password }.to_owned())
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

    fn parts(authorization: &str) -> Parts {
        with_headers(&[("authorization", authorization)])
    }

    fn with_headers(headers: &[(&str, &str)]) -> Parts {
        let mut req = axum::http::Request::builder();
        for (name, value) in headers {
            req = req.header(*name, *value);
        }
        req.body(()).unwrap().into_parts().0
    }

    #[test]
    fn x_api_key_wins_over_any_authorization_header() {
        for authorization in ["Bearer some-proxy-token", "Basic %%%", "Digest x"] {
            let p = with_headers(&[("authorization", authorization), ("x-api-key", "mk_4")]);
            assert_eq!(
                request_key(&p).unwrap().as_deref(),
                Some("mk_4"),
                "{authorization}"
            );
        }
        let p = with_headers(&[("x-api-key", " mk_5 ")]);
        assert_eq!(request_key(&p).unwrap().as_deref(), Some("mk_5"));
    }

    #[test]
    fn the_key_comes_from_bearer_or_basic_credentials() {
        assert_eq!(
            request_key(&parts("Bearer mk_1")).unwrap().as_deref(),
            Some("mk_1")
        );
        assert_eq!(
            request_key(&parts("bearer  mk_1 ")).unwrap().as_deref(),
            Some("mk_1")
        );
        // base64("micro:mk_2") and base64("mk_3:"), as a client sends them for key-in-URL.
        assert_eq!(
            request_key(&parts("Basic bWljcm86bWtfMg=="))
                .unwrap()
                .as_deref(),
            Some("mk_2")
        );
        assert_eq!(
            request_key(&parts("Basic bWtfMzo=")).unwrap().as_deref(),
            Some("mk_3")
        );
        assert!(request_key(&parts("Basic %%%")).is_err());
        assert_eq!(request_key(&parts("Digest x")).unwrap(), None);
    }

    #[test]
    fn tenant_names_are_plain() {
        assert!(check_tenant("acme-1.eu").is_ok());
        assert!(check_tenant("").is_err());
        assert!(check_tenant("a b").is_err());
    }
}
