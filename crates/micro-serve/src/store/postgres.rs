//! The shared store: PostgreSQL, so several server replicas serve the same users.
//!
//! A feedback transaction first makes sure the user's row exists (`INSERT ... ON CONFLICT DO
//! NOTHING`), then locks it (`SELECT ... FOR UPDATE`): concurrent feedback for one user, from
//! any replica, is applied one event at a time, so no update is lost. Commits use the server's
//! default `synchronous_commit = on`: acknowledged means on disk.

use super::{
    initial_state, log_entries, now_ms, to_json, BoxFuture, Feedback, KeyRecord, KeyRow, LogEntry,
    LogRow, NewUser, Result, StateStore, UserKey, UserRecord, UserRow,
};
use sqlx::postgres::{PgPool, PgPoolOptions};
use sqlx::PgConnection;
use std::time::Duration;

/// Serialises schema creation when several replicas start at once (any fixed number works).
const SCHEMA_LOCK: i64 = 0x6d69_6372_6f01;

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS api_keys (
    hash TEXT PRIMARY KEY, tenant TEXT NOT NULL, label TEXT NOT NULL, created_at BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS users (
    tenant TEXT NOT NULL, user_id TEXT NOT NULL, prior TEXT NOT NULL, rate TEXT NOT NULL,
    state TEXT NOT NULL, seq BIGINT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL,
    PRIMARY KEY (tenant, user_id));
CREATE TABLE IF NOT EXISTS feedback (
    tenant TEXT NOT NULL, user_id TEXT NOT NULL, seq BIGINT NOT NULL, body TEXT NOT NULL,
    created_at BIGINT NOT NULL, PRIMARY KEY (tenant, user_id, seq));
";

const SELECT_USER: &str =
    "SELECT prior, state, seq, created_at, updated_at FROM users WHERE tenant = $1 AND user_id = $2";
const INSERT_USER: &str =
    "INSERT INTO users (tenant, user_id, prior, rate, state, seq, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant, user_id) DO NOTHING";
const UPDATE_USER: &str =
    "UPDATE users SET state = $3, seq = $4, updated_at = $5 WHERE tenant = $1 AND user_id = $2";

/// PostgreSQL behind [`StateStore`].
pub struct PostgresStore {
    pool: PgPool,
}

impl PostgresStore {
    /// Connects and creates the tables if needed.
    pub async fn connect(url: &str) -> Result<Self> {
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(Duration::from_secs(10))
            .connect(url)
            .await?;
        let mut conn = pool.acquire().await?;
        sqlx::query("SELECT pg_advisory_lock($1)")
            .bind(SCHEMA_LOCK)
            .execute(&mut *conn)
            .await?;
        let created = sqlx::raw_sql(SCHEMA).execute(&mut *conn).await;
        sqlx::query("SELECT pg_advisory_unlock($1)")
            .bind(SCHEMA_LOCK)
            .execute(&mut *conn)
            .await?;
        created?;
        drop(conn);
        Ok(PostgresStore { pool })
    }

    /// Inserts the user's first row unless it exists; true when this call created it.
    async fn insert_new(
        conn: &mut PgConnection,
        key: &UserKey,
        new: &NewUser,
        now: i64,
    ) -> Result<bool> {
        let done = sqlx::query(INSERT_USER)
            .bind(&key.tenant)
            .bind(&key.user_id)
            .bind(to_json(&new.prior))
            .bind(to_json(&new.rate))
            .bind(to_json(&initial_state(new)))
            .bind(0i64)
            .bind(now)
            .bind(now)
            .execute(conn)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    async fn lock_user(conn: &mut PgConnection, key: &UserKey) -> Result<Option<UserRow>> {
        let sql = format!("{SELECT_USER} FOR UPDATE");
        Ok(sqlx::query_as(&sql)
            .bind(&key.tenant)
            .bind(&key.user_id)
            .fetch_optional(conn)
            .await?)
    }

    async fn store_state(conn: &mut PgConnection, rec: &UserRecord) -> Result<()> {
        sqlx::query(UPDATE_USER)
            .bind(&rec.key.tenant)
            .bind(&rec.key.user_id)
            .bind(to_json(&rec.state))
            .bind(rec.seq)
            .bind(rec.updated_at)
            .execute(conn)
            .await?;
        Ok(())
    }

    async fn append(
        &self,
        key: &UserKey,
        new: &NewUser,
        feedback: &Feedback,
    ) -> Result<UserRecord> {
        let mut tx = self.pool.begin().await?;
        let now = now_ms();
        Self::insert_new(&mut tx, key, new, now).await?;
        let row = Self::lock_user(&mut tx, key).await?;
        let Some(row) = row else {
            return Err(super::StoreError::Mismatch(format!(
                "user {:?} vanished during feedback; retry",
                key.user_id
            )));
        };
        let mut rec = UserRecord::from_row(key, row)?;
        rec.record(feedback, now)?;
        sqlx::query("INSERT INTO feedback (tenant, user_id, seq, body, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(&key.tenant)
            .bind(&key.user_id)
            .bind(rec.seq)
            .bind(to_json(feedback))
            .bind(now)
            .execute(&mut *tx)
            .await?;
        Self::store_state(&mut tx, &rec).await?;
        tx.commit().await?;
        Ok(rec)
    }

    async fn create(&self, key: &UserKey, new: &NewUser) -> Result<Option<UserRecord>> {
        let mut conn = self.pool.acquire().await?;
        let now = now_ms();
        if !Self::insert_new(&mut conn, key, new, now).await? {
            return Ok(None);
        }
        Ok(Some(UserRecord::fresh(key, new, now)))
    }

    async fn load(&self, key: &UserKey) -> Result<Option<UserRecord>> {
        let row: Option<UserRow> = sqlx::query_as(SELECT_USER)
            .bind(&key.tenant)
            .bind(&key.user_id)
            .fetch_optional(&self.pool)
            .await?;
        row.map(|row| UserRecord::from_row(key, row)).transpose()
    }

    async fn log(&self, key: &UserKey, after: i64, limit: i64) -> Result<Vec<LogEntry>> {
        let rows: Vec<LogRow> = sqlx::query_as(
            "SELECT seq, body, created_at FROM feedback WHERE tenant = $1 AND user_id = $2 AND seq > $3 ORDER BY seq LIMIT $4",
        )
        .bind(&key.tenant)
        .bind(&key.user_id)
        .bind(after)
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        log_entries(key, rows)
    }

    async fn rebuild_user(&self, key: &UserKey) -> Result<Option<UserRecord>> {
        let mut tx = self.pool.begin().await?;
        let Some(row) = Self::lock_user(&mut tx, key).await? else {
            return Ok(None);
        };
        let rows: Vec<LogRow> =
            sqlx::query_as("SELECT seq, body, created_at FROM feedback WHERE tenant = $1 AND user_id = $2 ORDER BY seq")
                .bind(&key.tenant)
                .bind(&key.user_id)
                .fetch_all(&mut *tx)
                .await?;
        let rec = UserRecord::rebuilt(key, row, &log_entries(key, rows)?)?;
        Self::store_state(&mut tx, &rec).await?;
        tx.commit().await?;
        Ok(Some(rec))
    }
}

impl StateStore for PostgresStore {
    fn kind(&self) -> &'static str {
        "postgres"
    }

    fn add_key<'a>(&'a self, r: &'a KeyRecord) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            sqlx::query(
                "INSERT INTO api_keys (hash, tenant, label, created_at) VALUES ($1, $2, $3, $4)",
            )
            .bind(&r.hash)
            .bind(&r.tenant)
            .bind(&r.label)
            .bind(r.created_at)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }

    fn tenant_for_key<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(async move {
            let row: Option<(String,)> =
                sqlx::query_as("SELECT tenant FROM api_keys WHERE hash = $1")
                    .bind(hash)
                    .fetch_optional(&self.pool)
                    .await?;
            Ok(row.map(|r| r.0))
        })
    }

    fn list_keys(&self) -> BoxFuture<'_, Result<Vec<KeyRecord>>> {
        Box::pin(async move {
            let rows: Vec<KeyRow> = sqlx::query_as(
                "SELECT hash, tenant, label, created_at FROM api_keys ORDER BY tenant, created_at",
            )
            .fetch_all(&self.pool)
            .await?;
            Ok(rows.into_iter().map(KeyRecord::from).collect())
        })
    }

    fn remove_keys<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64>> {
        Box::pin(async move {
            let pattern = format!("{}%", prefix.replace(['%', '_'], ""));
            let done = sqlx::query("DELETE FROM api_keys WHERE hash LIKE $1")
                .bind(pattern)
                .execute(&self.pool)
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
            let mut tx = self.pool.begin().await?;
            // Lock first so a concurrent feedback cannot re-add log rows between the deletes.
            Self::lock_user(&mut tx, key).await?;
            sqlx::query("DELETE FROM feedback WHERE tenant = $1 AND user_id = $2")
                .bind(&key.tenant)
                .bind(&key.user_id)
                .execute(&mut *tx)
                .await?;
            let done = sqlx::query("DELETE FROM users WHERE tenant = $1 AND user_id = $2")
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
