//! The embedded store: one SQLite file in WAL mode.
//!
//! All writes go through a pool of ONE connection, so writers queue in process instead of
//! spinning on `SQLITE_BUSY`; each write transaction is `BEGIN IMMEDIATE`, which also
//! serialises it against other processes on the same file (`micro serve keys add`), and
//! waits up to the busy timeout for them. Reads use a separate pool and see the last committed
//! state (WAL readers never block the writer).
//!
//! Durability: with `synchronous=NORMAL` in WAL mode a commit is in the OS page cache when it
//! returns, so a killed process (kill -9) loses nothing, while a power loss or kernel crash can
//! lose the last transactions; `sync=full` fsyncs every commit at a throughput cost.
//!
//! The store is named by a path, bare or as a URL with options:
//! `sqlite:///var/lib/micro/state.sqlite?sync=full&busy_timeout_ms=5000` (also `sqlite:PATH`;
//! the options are `sync=normal|full`, default normal, and `busy_timeout_ms`, default 10000).

use super::sql::{Dialect, Sql, SqlStore, SHARED_SQL};
use super::{Result, StoreError};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteQueryResult,
    SqliteSynchronous,
};
use sqlx::Transaction;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How hard each commit waits for the disk.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Sync {
    /// WAL + synchronous=NORMAL: survives a process crash; a power loss may drop the last commits.
    #[default]
    Normal,
    /// synchronous=FULL: every commit is fsynced before it is acknowledged.
    Full,
}

impl std::str::FromStr for Sync {
    type Err = StoreError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "normal" => Ok(Sync::Normal),
            "full" => Ok(Sync::Full),
            _ => Err(StoreError::Config(format!(
                "unknown SQLite sync mode {s:?}: use normal or full"
            ))),
        }
    }
}

impl std::fmt::Display for Sync {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Sync::Normal => "normal",
            Sync::Full => "full",
        })
    }
}

/// What a SQLite URL's query string sets, as in
/// `sqlite:///var/lib/micro/state.sqlite?sync=full&busy_timeout_ms=5000`: `sync=normal|full`
/// (default normal) and `busy_timeout_ms` (default 10000). A bare path takes the defaults.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    pub sync: Sync,
    /// How long a write waits for another process's write lock on the file.
    pub busy_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            sync: Sync::Normal,
            busy_timeout: Duration::from_secs(10),
        }
    }
}

/// The file and options a SQLite `--db` value names: `sqlite://PATH?opts`, `sqlite:PATH?opts`,
/// or a bare path (taken whole, with no options). The options follow the last `?`; a later
/// option overrides an earlier one.
pub fn parse_url(url: &str) -> Result<(PathBuf, Options)> {
    let Some(rest) = url
        .strip_prefix("sqlite://")
        .or_else(|| url.strip_prefix("sqlite:"))
    else {
        return Ok((PathBuf::from(url), Options::default()));
    };
    let (path, query) = rest.rsplit_once('?').unwrap_or((rest, ""));
    let mut opts = Options::default();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        match name {
            "sync" => {
                opts.sync = value
                    .parse::<Sync>()
                    .map_err(|e| StoreError::Config(format!("{e} (in {url})")))?
            }
            "busy_timeout_ms" => {
                let ms: u64 = value.parse().map_err(|_| {
                    StoreError::Config(format!(
                        "busy_timeout_ms={value:?} in {url}: give milliseconds as a whole number"
                    ))
                })?;
                opts.busy_timeout = Duration::from_millis(ms);
            }
            _ => {
                return Err(StoreError::Config(format!(
                    "unknown SQLite option {name:?} in {url}: the options are sync=normal|full and busy_timeout_ms=N"
                )))
            }
        }
    }
    Ok((PathBuf::from(path), opts))
}

/// `url` with its SQLite sync mode set to `sync` (`--sqlite-sync`); other stores' URLs come
/// back unchanged.
pub fn with_sync(url: &str, sync: Sync) -> String {
    // A bare path, or a URL whose scheme is SQLite's: anything else is another store's.
    if !url.starts_with("sqlite:") && url.contains("://") {
        return url.to_owned();
    }
    let url = match url.starts_with("sqlite:") {
        true => url.to_owned(),
        false => format!("sqlite:{url}"),
    };
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}sync={sync}")
}

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS api_keys (
    hash TEXT PRIMARY KEY, tenant TEXT NOT NULL, label TEXT NOT NULL, created_at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    tenant TEXT NOT NULL, user_id TEXT NOT NULL, prior TEXT NOT NULL, rate TEXT NOT NULL,
    state TEXT NOT NULL, seq INTEGER NOT NULL, created_at INTEGER NOT NULL, updated_at INTEGER NOT NULL,
    PRIMARY KEY (tenant, user_id));
CREATE TABLE IF NOT EXISTS feedback (
    tenant TEXT NOT NULL, user_id TEXT NOT NULL, seq INTEGER NOT NULL, body TEXT NOT NULL,
    created_at INTEGER NOT NULL, PRIMARY KEY (tenant, user_id, seq));
";

/// SQLite's pools: one writer connection, several readers.
pub struct Sqlite {
    writer: SqlitePool,
    reader: SqlitePool,
}

/// SQLite behind [`super::StateStore`].
pub type SqliteStore = SqlStore<Sqlite>;

impl Sqlite {
    /// Opens (creating if needed) the database file and its tables.
    async fn open(path: &Path, opts: Options) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Config(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let connect = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match opts.sync {
                Sync::Normal => SqliteSynchronous::Normal,
                Sync::Full => SqliteSynchronous::Full,
            })
            .busy_timeout(opts.busy_timeout);
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(connect.clone())
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(connect)
            .await?;
        Ok(Sqlite { writer, reader })
    }
}

impl Dialect for Sqlite {
    type Db = sqlx::Sqlite;
    const KIND: &'static str = "sqlite";
    // SQLite has no row locks: `BEGIN IMMEDIATE` already holds the file's write lock.
    const SQL: Sql = Sql {
        lock_user: SHARED_SQL.select_user,
        ..SHARED_SQL
    };

    async fn connect(url: &str) -> Result<Self> {
        let (path, opts) = parse_url(url)?;
        Sqlite::open(&path, opts).await
    }

    fn writer(&self) -> &SqlitePool {
        &self.writer
    }

    fn reader(&self) -> &SqlitePool {
        &self.reader
    }

    async fn begin_write(&self) -> sqlx::Result<Transaction<'static, sqlx::Sqlite>> {
        self.writer.begin_with("BEGIN IMMEDIATE").await
    }

    fn rows_affected(done: &SqliteQueryResult) -> u64 {
        done.rows_affected()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_and_urls_name_the_file_and_options() {
        let at = |url: &str| parse_url(url).unwrap();
        assert_eq!(
            at("state.sqlite"),
            ("state.sqlite".into(), Options::default())
        );
        assert_eq!(at("sqlite:a/b.db").0, PathBuf::from("a/b.db"));
        let (path, opts) = at("sqlite:///var/s.db?sync=full&busy_timeout_ms=5000");
        assert_eq!(path, PathBuf::from("/var/s.db"));
        assert_eq!(opts.sync, Sync::Full);
        assert_eq!(opts.busy_timeout, Duration::from_millis(5000));
        // A bare path is taken whole; in a URL, the options follow the last `?`.
        assert_eq!(at("odd?name").0, PathBuf::from("odd?name"));
        assert_eq!(at("sqlite:odd?name?sync=full").0, PathBuf::from("odd?name"));
        for bad in [
            "sqlite:x?fsync=1",
            "sqlite:x?sync=fast",
            "sqlite:x?busy_timeout_ms=-1",
        ] {
            let err = parse_url(bad).unwrap_err().to_string();
            assert!(err.contains("sqlite:x"), "{err}");
        }
    }

    #[test]
    fn the_sync_flag_lands_in_sqlite_urls_only() {
        assert_eq!(with_sync("s.db", Sync::Full), "sqlite:s.db?sync=full");
        assert_eq!(
            with_sync("sqlite:s.db?sync=normal", Sync::Full),
            "sqlite:s.db?sync=normal&sync=full"
        );
        assert_eq!(
            parse_url(&with_sync("sqlite:s.db?sync=normal", Sync::Full))
                .unwrap()
                .1
                .sync,
            Sync::Full
        );
        assert_eq!(with_sync("postgres://h/db", Sync::Full), "postgres://h/db");
    }

    #[tokio::test]
    async fn the_url_options_reach_every_connection() {
        let dir = tempfile::tempdir().unwrap();
        let url = format!(
            "sqlite://{}/s.db?sync=full&busy_timeout_ms=2500",
            dir.path().display()
        );
        let store = SqliteStore::connect(&url).await.unwrap();
        for pool in [store.dialect().writer(), store.dialect().reader()] {
            let pragma = |name: &'static str| async move {
                let (v,): (i64,) = sqlx::query_as(&format!("PRAGMA {name}"))
                    .fetch_one(pool)
                    .await
                    .unwrap();
                v
            };
            assert_eq!(pragma("synchronous").await, 2, "FULL");
            assert_eq!(pragma("busy_timeout").await, 2500);
            let (mode,): (String,) = sqlx::query_as("PRAGMA journal_mode")
                .fetch_one(pool)
                .await
                .unwrap();
            assert_eq!(mode, "wal");
        }
    }
}
