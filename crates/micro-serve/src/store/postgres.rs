//! The shared store: PostgreSQL, so several server replicas serve the same users.
//!
//! A write transaction locks the user's row (`SELECT ... FOR UPDATE`): concurrent feedback for
//! one user, from any replica, is applied one event at a time, so no update is lost. Commits
//! use the server's default `synchronous_commit = on`: acknowledged means on disk. The URL is
//! PostgreSQL's own (`postgres://user:password@host:port/db?sslmode=...`).

use super::sql::{Dialect, Sql, SqlStore, SHARED_SQL};
use super::{Result, StoreError};
use sqlx::postgres::{PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgQueryResult};
use sqlx::{Connection, Transaction};
use std::time::Duration;

/// How long opening the store waits for the database server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

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

/// PostgreSQL's pool, shared by reads and writes.
pub struct Postgres {
    pool: PgPool,
}

/// PostgreSQL behind [`super::StateStore`].
pub type PostgresStore = SqlStore<Postgres>;

impl Postgres {
    /// Creates the tables if needed, one replica at a time.
    async fn migrate(pool: &PgPool) -> Result<()> {
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
        Ok(())
    }
}

impl Dialect for Postgres {
    type Db = sqlx::Postgres;
    const KIND: &'static str = "postgres";
    const SQL: Sql = SHARED_SQL;

    async fn connect(url: &str) -> Result<Self> {
        let opts: PgConnectOptions = url.parse()?;
        // One connection first, so that a server that refuses or is not there is reported as
        // such, at once: the pool retries until its acquire timeout and then says only that
        // it timed out.
        let first = tokio::time::timeout(CONNECT_TIMEOUT, PgConnection::connect_with(&opts))
            .await
            .map_err(|_| StoreError::NoAnswer("PostgreSQL", CONNECT_TIMEOUT))??;
        first.close().await?;
        let pool = PgPoolOptions::new()
            .max_connections(16)
            .acquire_timeout(CONNECT_TIMEOUT)
            .connect_with(opts)
            .await?;
        Postgres::migrate(&pool).await?;
        Ok(Postgres { pool })
    }

    fn writer(&self) -> &PgPool {
        &self.pool
    }

    fn reader(&self) -> &PgPool {
        &self.pool
    }

    async fn begin_write(&self) -> sqlx::Result<Transaction<'static, sqlx::Postgres>> {
        self.pool.begin().await
    }

    fn rows_affected(done: &PgQueryResult) -> u64 {
        done.rows_affected()
    }
}
