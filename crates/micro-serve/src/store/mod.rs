//! Where users' state lives: the [`StateStore`] trait and its one implementation,
//! [`SqlStore`], over two databases: SQLite (the embedded default) and PostgreSQL (shared by
//! several server replicas). [`open`] picks the database from the URL.
//!
//! The feedback log is the source of truth: each event's head margins are appended, and the
//! user's Hedge state (the derived value) is updated, in one transaction, before the server
//! acknowledges. [`StateStore::rebuild`] recomputes the state from the prior and the log.

mod postgres;
mod sql;
mod sqlite;

pub use postgres::{Postgres, PostgresStore};
pub use sql::{Dialect, Sql, SqlStore, SHARED_SQL};
pub use sqlite::{
    with_sync as with_sqlite_sync, Options as SqliteOptions, Sqlite, SqliteStore,
    Sync as SqliteSync,
};

use micro_route::{Rate, UserState};
use serde::{Deserialize, Serialize};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A boxed future, so that the trait stays object-safe (`Arc<dyn StateStore>`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    Db(#[from] sqlx::Error),
    /// A stored value that cannot be read back (hand-edited row, other program).
    #[error("corrupt row for {what}: {message}")]
    Corrupt { what: String, message: String },
    /// Stored state that does not fit the served model.
    #[error("{0}")]
    Mismatch(String),
    #[error("{0}")]
    Config(String),
    #[error("unknown store scheme `{0}://`: give a SQLite file path, sqlite://PATH or postgres://USER@HOST/DB")]
    Scheme(String),
    /// A database server that does not answer in time.
    #[error("no answer from {0} within {1:?}")]
    NoAnswer(&'static str, std::time::Duration),
}

pub type Result<T> = std::result::Result<T, StoreError>;

/// A user is named within its tenant: the pair is the key everywhere.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct UserKey {
    pub tenant: String,
    pub user_id: String,
}

impl UserKey {
    pub fn new(tenant: impl Into<String>, user_id: impl Into<String>) -> Self {
        UserKey {
            tenant: tenant.into(),
            user_id: user_id.into(),
        }
    }
}

/// How a user starts when its first event arrives (ignored when it exists already).
#[derive(Clone, Debug, PartialEq)]
pub struct NewUser {
    /// Prior weights over the heads (router weights for the user's context, or uniform).
    pub prior: Vec<f32>,
    /// Hedge learning rate.
    pub rate: Rate,
    /// The user's context (criterion) text, kept with the state when known.
    pub context: Option<String>,
}

/// One piece of feedback: what the log keeps.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Feedback {
    /// delta_k = r_k(chosen) - r_k(rejected) per head.
    pub margins: Vec<f32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chosen: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rejected: Option<String>,
}

/// A user's stored row: the prior, the derived state and the last log sequence number.
#[derive(Clone, Debug, PartialEq)]
pub struct UserRecord {
    pub key: UserKey,
    pub prior: Vec<f32>,
    pub state: UserState,
    /// Sequence number of the last event folded into `state` (0: none).
    pub seq: i64,
    /// Unix milliseconds.
    pub created_at: i64,
    pub updated_at: i64,
}

/// One row of the feedback log.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    pub seq: i64,
    #[serde(flatten)]
    pub feedback: Feedback,
    pub created_at: i64,
}

/// An API key's stored form (the key itself is never stored).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KeyRecord {
    /// sha256 of the key, hex.
    pub hash: String,
    pub tenant: String,
    pub label: String,
    pub created_at: i64,
}

/// Users' state and the feedback log, behind one interface so SQLite and PostgreSQL swap.
///
/// Implementations must make [`append_feedback`](StateStore::append_feedback) atomic and
/// serialised per user across processes (a database lock), and durable before it returns.
pub trait StateStore: Send + Sync {
    /// `sqlite` or `postgres`.
    fn kind(&self) -> &'static str;
    fn add_key<'a>(&'a self, record: &'a KeyRecord) -> BoxFuture<'a, Result<()>>;
    fn tenant_for_key<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<String>>>;
    fn list_keys(&self) -> BoxFuture<'_, Result<Vec<KeyRecord>>>;
    /// Removes keys whose hash starts with `prefix` (at least 8 hex digits); returns how many.
    fn remove_keys<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64>>;
    /// Creates a user with no feedback; `None` when it exists already.
    fn create_user<'a>(
        &'a self,
        key: &'a UserKey,
        new: &'a NewUser,
    ) -> BoxFuture<'a, Result<Option<UserRecord>>>;
    fn get_user<'a>(&'a self, key: &'a UserKey) -> BoxFuture<'a, Result<Option<UserRecord>>>;
    /// Deletes the user and its log; false when there was none.
    fn delete_user<'a>(&'a self, key: &'a UserKey) -> BoxFuture<'a, Result<bool>>;
    /// Appends to the log and folds the event into the state, in one transaction; creates the
    /// user from `new` when absent. Returns the updated record.
    fn append_feedback<'a>(
        &'a self,
        key: &'a UserKey,
        new: &'a NewUser,
        feedback: &'a Feedback,
    ) -> BoxFuture<'a, Result<UserRecord>>;
    /// Log entries with `seq > after`, oldest first, at most `limit`.
    fn feedback_log<'a>(
        &'a self,
        key: &'a UserKey,
        after: i64,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<LogEntry>>>;
    /// Recomputes the state from the prior and the whole log and stores it.
    fn rebuild<'a>(&'a self, key: &'a UserKey) -> BoxFuture<'a, Result<Option<UserRecord>>>;
}

/// Opens the store a `--db` value names: `postgres://...` / `postgresql://...` for PostgreSQL;
/// `sqlite://PATH?OPTIONS`, `sqlite:PATH?OPTIONS` or a bare file path for SQLite (its options,
/// `sync=normal|full` and `busy_timeout_ms=N`, are described in [`SqliteOptions`]). A value
/// with any other `scheme://` is refused before anything is created: taking `postgre://` or
/// `mysql://` for a file name would start each replica on a store of its own.
pub async fn open(url: &str) -> Result<Arc<dyn StateStore>> {
    // One line per database, by the URL's scheme.
    Ok(match url.split_once("://").map(|(scheme, _)| scheme) {
        Some("postgres" | "postgresql") => Arc::new(PostgresStore::connect(url).await?),
        Some("sqlite") | None => Arc::new(SqliteStore::connect(url).await?),
        Some(scheme) => return Err(StoreError::Scheme(scheme.to_owned())),
    })
}

/// A `users` row as the store selects it: prior, state, seq, created_at, updated_at (the
/// `rate` column is written for readers of the table; the state carries the rate too).
pub(crate) type UserRow = (String, String, i64, i64, i64);

/// A `feedback` row as the store selects it: seq, body, created_at.
pub(crate) type LogRow = (i64, String, i64);

/// An `api_keys` row: hash, tenant, label, created_at.
pub(crate) type KeyRow = (String, String, String, i64);

impl UserRecord {
    /// A user that has just been created from `new`, with no feedback yet.
    pub(crate) fn fresh(key: &UserKey, new: &NewUser, now: i64) -> Self {
        UserRecord {
            key: key.clone(),
            prior: new.prior.clone(),
            state: initial_state(new),
            seq: 0,
            created_at: now,
            updated_at: now,
        }
    }

    /// Decodes one `users` row.
    pub(crate) fn from_row(key: &UserKey, row: UserRow) -> Result<Self> {
        let (prior, state, seq, created_at, updated_at) = row;
        Ok(UserRecord {
            key: key.clone(),
            prior: from_json(&prior, key, "prior")?,
            state: from_json(&state, key, "state")?,
            seq,
            created_at,
            updated_at,
        })
    }

    /// Folds one event into the state and takes the next sequence number (the one the event's
    /// log row carries).
    pub(crate) fn record(&mut self, feedback: &Feedback, now: i64) -> Result<()> {
        fold(&mut self.state, &feedback.margins, &self.key)?;
        self.seq += 1;
        self.updated_at = now;
        Ok(())
    }

    /// The record of `row` with its state recomputed from the prior and the whole `log`.
    pub(crate) fn rebuilt(key: &UserKey, row: UserRow, log: &[LogEntry]) -> Result<Self> {
        let mut rec = UserRecord::from_row(key, row)?;
        let mut state = UserState::with_rate(&rec.prior, rec.state.rate);
        state.context = rec.state.context.take();
        for e in log {
            fold(&mut state, &e.feedback.margins, key)?;
        }
        rec.state = state;
        rec.seq = log.last().map_or(0, |e| e.seq);
        rec.updated_at = now_ms();
        Ok(rec)
    }
}

impl From<KeyRow> for KeyRecord {
    fn from((hash, tenant, label, created_at): KeyRow) -> Self {
        KeyRecord {
            hash,
            tenant,
            label,
            created_at,
        }
    }
}

/// The state a user starts from.
pub(crate) fn initial_state(new: &NewUser) -> UserState {
    let mut s = UserState::with_rate(&new.prior, new.rate);
    s.context = new.context.clone();
    s
}

/// Folds one event into a state, refusing margins for another number of heads.
pub(crate) fn fold(state: &mut UserState, margins: &[f32], key: &UserKey) -> Result<()> {
    if margins.len() != state.log_weights.len() {
        return Err(StoreError::Mismatch(format!(
            "user {:?} has state over {} heads but the feedback has {} margins: the model changed; delete the user or serve its model",
            key.user_id,
            state.log_weights.len(),
            margins.len()
        )));
    }
    state
        .try_update(margins)
        .map_err(|e| StoreError::Mismatch(format!("user {:?}: {e}", key.user_id)))
}

pub(crate) fn to_json<T: Serialize>(v: &T) -> String {
    // Serialising plain vectors and structs of numbers cannot fail.
    serde_json::to_string(v).unwrap_or_default()
}

pub(crate) fn from_json<T: serde::de::DeserializeOwned>(
    text: &str,
    what: &UserKey,
    field: &str,
) -> Result<T> {
    serde_json::from_str(text).map_err(|e| StoreError::Corrupt {
        what: format!("{}/{} ({field})", what.tenant, what.user_id),
        message: e.to_string(),
    })
}

pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// Decodes `feedback` rows, oldest first.
pub(crate) fn log_entries(key: &UserKey, rows: Vec<LogRow>) -> Result<Vec<LogEntry>> {
    rows.into_iter()
        .map(|(seq, body, created_at)| {
            Ok(LogEntry {
                seq,
                feedback: from_json(&body, key, "feedback")?,
                created_at,
            })
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod conformance;
