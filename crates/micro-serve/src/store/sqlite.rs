//! The embedded store: one SQLite file in WAL mode.
//!
//! All writes go through a pool of ONE connection, so writers queue in process instead of
//! spinning on `SQLITE_BUSY`; each feedback transaction is `BEGIN IMMEDIATE`, which also
//! serialises it against other processes on the same file (`micro serve keys add`). Reads use a
//! separate pool and see the last committed state (WAL readers never block the writer).
//!
//! Durability: with `synchronous=NORMAL` in WAL mode a commit is in the OS page cache when it
//! returns, so a killed process (kill -9) loses nothing, while a power loss or kernel crash can
//! lose the last transactions; `--sqlite-sync full` fsyncs every commit at a throughput cost.

use super::{
    log_entries, now_ms, to_json, BoxFuture, Feedback, KeyRecord, KeyRow, LogEntry, LogRow,
    NewUser, Result, StateStore, StoreError, UserKey, UserRecord, UserRow,
};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};
use std::path::Path;
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
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s.to_ascii_lowercase().as_str() {
            "normal" => Ok(Sync::Normal),
            "full" => Ok(Sync::Full),
            _ => Err(format!(
                "unknown SQLite sync mode {s:?}: use normal or full"
            )),
        }
    }
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

const SELECT_USER: &str =
    "SELECT prior, state, seq, created_at, updated_at FROM users WHERE tenant = ? AND user_id = ?";
const INSERT_USER: &str =
    "INSERT INTO users (tenant, user_id, prior, rate, state, seq, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (tenant, user_id) DO NOTHING";
const UPSERT_USER: &str = "INSERT INTO users (tenant, user_id, prior, rate, state, seq, created_at, updated_at)
     VALUES (?, ?, ?, ?, ?, ?, ?, ?)
     ON CONFLICT (tenant, user_id) DO UPDATE SET state = excluded.state, seq = excluded.seq, updated_at = excluded.updated_at";

/// SQLite behind [`StateStore`].
pub struct SqliteStore {
    writer: SqlitePool,
    reader: SqlitePool,
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and its tables.
    pub async fn open(path: &Path, sync: Sync) -> Result<Self> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| {
                StoreError::Config(format!("cannot create {}: {e}", parent.display()))
            })?;
        }
        let opts = SqliteConnectOptions::new()
            .filename(path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(match sync {
                Sync::Normal => SqliteSynchronous::Normal,
                Sync::Full => SqliteSynchronous::Full,
            })
            .busy_timeout(Duration::from_secs(10));
        let writer = SqlitePoolOptions::new()
            .max_connections(1)
            .connect_with(opts.clone())
            .await?;
        sqlx::raw_sql(SCHEMA).execute(&writer).await?;
        let reader = SqlitePoolOptions::new()
            .max_connections(4)
            .connect_with(opts)
            .await?;
        Ok(SqliteStore { writer, reader })
    }

    async fn load(&self, key: &UserKey) -> Result<Option<UserRecord>> {
        let row: Option<UserRow> = sqlx::query_as(SELECT_USER)
            .bind(&key.tenant)
            .bind(&key.user_id)
            .fetch_optional(&self.reader)
            .await?;
        row.map(|row| UserRecord::from_row(key, row)).transpose()
    }

    async fn append(
        &self,
        key: &UserKey,
        new: &NewUser,
        feedback: &Feedback,
    ) -> Result<UserRecord> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let row: Option<UserRow> = sqlx::query_as(SELECT_USER)
            .bind(&key.tenant)
            .bind(&key.user_id)
            .fetch_optional(&mut *tx)
            .await?;
        let now = now_ms();
        let mut rec = match row {
            Some(row) => UserRecord::from_row(key, row)?,
            None => UserRecord::fresh(key, new, now),
        };
        rec.record(feedback, now)?;
        sqlx::query(
            "INSERT INTO feedback (tenant, user_id, seq, body, created_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(&key.tenant)
        .bind(&key.user_id)
        .bind(rec.seq)
        .bind(to_json(feedback))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        self.upsert(&mut tx, &rec).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn upsert(&self, tx: &mut sqlx::SqliteConnection, rec: &UserRecord) -> Result<()> {
        write_user(UPSERT_USER, rec).execute(tx).await?;
        Ok(())
    }

    async fn create(&self, key: &UserKey, new: &NewUser) -> Result<Option<UserRecord>> {
        let rec = UserRecord::fresh(key, new, now_ms());
        let done = write_user(INSERT_USER, &rec).execute(&self.writer).await?;
        Ok((done.rows_affected() == 1).then_some(rec))
    }

    async fn log(&self, key: &UserKey, after: i64, limit: i64) -> Result<Vec<LogEntry>> {
        let rows: Vec<LogRow> = sqlx::query_as(
            "SELECT seq, body, created_at FROM feedback WHERE tenant = ? AND user_id = ? AND seq > ? ORDER BY seq LIMIT ?",
        )
        .bind(&key.tenant)
        .bind(&key.user_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.reader)
        .await?;
        log_entries(key, rows)
    }

    async fn rebuild_user(&self, key: &UserKey) -> Result<Option<UserRecord>> {
        let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
        let row: Option<UserRow> = sqlx::query_as(SELECT_USER)
            .bind(&key.tenant)
            .bind(&key.user_id)
            .fetch_optional(&mut *tx)
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let rows: Vec<LogRow> =
            sqlx::query_as("SELECT seq, body, created_at FROM feedback WHERE tenant = ? AND user_id = ? ORDER BY seq")
                .bind(&key.tenant)
                .bind(&key.user_id)
                .fetch_all(&mut *tx)
                .await?;
        let rec = UserRecord::rebuilt(key, row, &log_entries(key, rows)?)?;
        self.upsert(&mut tx, &rec).await?;
        tx.commit().await?;
        Ok(Some(rec))
    }
}

/// `sql` (an insert of every `users` column) bound to `rec`.
fn write_user<'q>(
    sql: &'q str,
    rec: &'q UserRecord,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    sqlx::query(sql)
        .bind(&rec.key.tenant)
        .bind(&rec.key.user_id)
        .bind(to_json(&rec.prior))
        .bind(to_json(&rec.state.rate))
        .bind(to_json(&rec.state))
        .bind(rec.seq)
        .bind(rec.created_at)
        .bind(rec.updated_at)
}

impl StateStore for SqliteStore {
    fn kind(&self) -> &'static str {
        "sqlite"
    }

    fn add_key<'a>(&'a self, r: &'a KeyRecord) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO api_keys (hash, tenant, label, created_at) VALUES (?, ?, ?, ?)",
            )
            .bind(&r.hash)
            .bind(&r.tenant)
            .bind(&r.label)
            .bind(r.created_at)
            .execute(&self.writer)
            .await?;
            Ok(())
        })
    }

    fn tenant_for_key<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move {
            let row: Option<(String,)> =
                sqlx::query_as("SELECT tenant FROM api_keys WHERE hash = ?")
                    .bind(hash)
                    .fetch_optional(&self.reader)
                    .await?;
            Ok(row.map(|r| r.0))
        })
    }

    fn list_keys(&self) -> BoxFuture<'_, Result<Vec<KeyRecord>>> {
        Box::pin(async move {
            let rows: Vec<KeyRow> = sqlx::query_as(
                "SELECT hash, tenant, label, created_at FROM api_keys ORDER BY tenant, created_at",
            )
            .fetch_all(&self.reader)
            .await?;
            Ok(rows.into_iter().map(KeyRecord::from).collect())
        })
    }

    fn remove_keys<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let pattern = format!("{}%", prefix.replace(['%', '_'], ""));
            let done = sqlx::query("DELETE FROM api_keys WHERE hash LIKE ?")
                .bind(pattern)
                .execute(&self.writer)
                .await?;
            Ok(done.rows_affected())
        })
    }

    fn create_user<'a>(
        &'a self,
        key: &'a UserKey,
        new: &'a NewUser,
    ) -> BoxFuture<'a, Result<Option<UserRecord>>> {
        Box::pin(self.create(key, new))
    }

    fn get_user<'a>(&'a self, key: &'a UserKey) -> BoxFuture<'a, Result<Option<UserRecord>>> {
        Box::pin(self.load(key))
    }

    fn delete_user<'a>(&'a self, key: &'a UserKey) -> BoxFuture<'a, Result<bool>> {
        Box::pin(async move {
            let mut tx = self.writer.begin_with("BEGIN IMMEDIATE").await?;
            sqlx::query("DELETE FROM feedback WHERE tenant = ? AND user_id = ?")
                .bind(&key.tenant)
                .bind(&key.user_id)
                .execute(&mut *tx)
                .await?;
            let done = sqlx::query("DELETE FROM users WHERE tenant = ? AND user_id = ?")
                .bind(&key.tenant)
                .bind(&key.user_id)
                .execute(&mut *tx)
                .await?;
            tx.commit().await?;
            Ok(done.rows_affected() > 0)
        })
    }

    fn append_feedback<'a>(
        &'a self,
        key: &'a UserKey,
        new: &'a NewUser,
        feedback: &'a Feedback,
    ) -> BoxFuture<'a, Result<UserRecord>> {
        Box::pin(self.append(key, new, feedback))
    }

    fn feedback_log<'a>(
        &'a self,
        key: &'a UserKey,
        after: i64,
        limit: i64,
    ) -> BoxFuture<'a, Result<Vec<LogEntry>>> {
        Box::pin(self.log(key, after, limit))
    }

    fn rebuild<'a>(&'a self, key: &'a UserKey) -> BoxFuture<'a, Result<Option<UserRecord>>> {
        Box::pin(self.rebuild_user(key))
    }
}
