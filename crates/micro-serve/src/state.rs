//! The state every request shares: the [`AppState`] (model, store, keys, locks, metrics) and
//! the request [`Limits`] it enforces.

use crate::auth::KeyCache;
use crate::metrics::Metrics;
use crate::scorer::Scorer;
use crate::store::{StateStore, UserKey};
use micro_route::Rate;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Mutex;

/// Request limits; each violation is a 4xx with a message naming the limit (413 for the
/// sizes, 408 for the request timeout), or 503 for a connection over the cap. With the `clap`
/// feature these are `micro serve`'s flags.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "clap", derive(clap::Args))]
pub struct Limits {
    /// Largest request body, bytes.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Limits::default().max_body_bytes))]
    pub max_body_bytes: usize,
    /// Most responses (texts or embeddings), or `/get_reward` queries, per request.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Limits::default().max_texts))]
    pub max_texts: usize,
    /// Longest text, characters.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Limits::default().max_text_chars))]
    pub max_text_chars: usize,
    /// Requests running longer are answered 408; on SIGTERM, connections still open after
    /// this long are closed.
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "request-timeout-ms",
            value_name = "REQUEST_TIMEOUT_MS",
            default_value = "30000",
            value_parser = crate::options::parse_millis
        )
    )]
    pub timeout: Duration,
    /// A connection that has not sent its request headers within this is closed.
    #[cfg_attr(
        feature = "clap",
        arg(
            long = "header-timeout-ms",
            value_name = "HEADER_TIMEOUT_MS",
            default_value = "10000",
            value_parser = crate::options::parse_millis
        )
    )]
    pub header_timeout: Duration,
    /// Most connections open at once; beyond it a new connection is answered 503 and closed.
    /// Lowered at start to what the open-file limit allows.
    #[cfg_attr(feature = "clap", arg(long, default_value_t = Limits::default().max_connections))]
    pub max_connections: usize,
}

/// A limit that cannot serve: every request would be refused, or time out at once.
#[derive(Debug, thiserror::Error)]
#[error("--{flag} 0 would refuse every request: give at least 1")]
pub struct ZeroLimit {
    pub flag: &'static str,
}

impl Limits {
    /// Refuses a limit of zero (a body, a response list, a timeout or a connection count).
    pub fn check(&self) -> Result<(), ZeroLimit> {
        let zero = [
            ("max-body-bytes", self.max_body_bytes == 0),
            ("max-texts", self.max_texts == 0),
            ("request-timeout-ms", self.timeout.is_zero()),
            ("header-timeout-ms", self.header_timeout.is_zero()),
            ("max-connections", self.max_connections == 0),
        ];
        match zero.into_iter().find(|(_, z)| *z) {
            Some((flag, _)) => Err(ZeroLimit { flag }),
            None => Ok(()),
        }
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body_bytes: 4 << 20,
            max_texts: 64,
            max_text_chars: 32_768,
            timeout: Duration::from_secs(30),
            header_timeout: Duration::from_secs(10),
            max_connections: 1024,
        }
    }
}

/// Per-user serialisation in process: a fixed set of striped locks, so concurrent feedback
/// for one user queues here instead of in the database (two users may share a stripe, which
/// only costs a little concurrency).
pub struct UserLocks {
    stripes: Vec<Mutex<()>>,
}

impl UserLocks {
    pub fn new(n: usize) -> Self {
        UserLocks {
            stripes: (0..n.max(1)).map(|_| Mutex::new(())).collect(),
        }
    }

    pub fn stripe(&self, key: &UserKey) -> &Mutex<()> {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        key.hash(&mut h);
        &self.stripes[(h.finish() % self.stripes.len() as u64) as usize]
    }
}

/// Everything a handler needs, shared by all requests.
pub struct AppState {
    pub scorer: Scorer,
    pub store: Arc<dyn StateStore>,
    pub keys: KeyCache,
    pub locks: UserLocks,
    pub metrics: Metrics,
    pub limits: Limits,
    /// Hedge learning rate for new users.
    pub rate: Rate,
}

impl AppState {
    pub fn new(scorer: Scorer, store: Arc<dyn StateStore>, limits: Limits, rate: Rate) -> Self {
        AppState {
            scorer,
            store,
            keys: KeyCache::default(),
            locks: UserLocks::new(1024),
            metrics: Metrics::default(),
            limits,
            rate,
        }
    }
}
