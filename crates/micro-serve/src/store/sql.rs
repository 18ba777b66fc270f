//! The store, written once for every SQL database: [`SqlStore`] runs the [`StateStore`]
//! operations over a [`Dialect`], which holds only what differs between databases (the SQL
//! text, the pools and their creation, the schema, how a write transaction locks).
//!
//! Every write that touches a user first makes sure the user's row exists (`INSERT ... ON
//! CONFLICT DO NOTHING`), then reads it back through the dialect's locking read inside the
//! dialect's write transaction: concurrent feedback for one user, from any process, is applied
//! one event at a time, so no update is lost and log sequence numbers never collide.

use super::{
    initial_state, log_entries, now_ms, to_json, BoxFuture, Feedback, KeyRecord, KeyRow, LogEntry,
    LogRow, NewUser, Result, StateStore, StoreError, UserKey, UserRecord, UserRow,
};
use sqlx::{Database, Encode, Executor, FromRow, IntoArguments, Pool, Transaction, Type};
use std::future::Future;

/// The statements the store runs, as one database writes them. Binds follow the order of the
/// placeholders in the text, so a dialect with positional `?` placeholders can reuse them.
#[derive(Clone, Copy, Debug)]
pub struct Sql {
    /// prior, state, seq, created_at, updated_at of (tenant, user_id).
    pub select_user: &'static str,
    /// [`Sql::select_user`] that also holds the row until the write transaction ends.
    pub lock_user: &'static str,
    /// Every `users` column, in table order; does nothing when the user exists.
    pub insert_user: &'static str,
    /// state, seq, updated_at of (tenant, user_id).
    pub update_user: &'static str,
    pub insert_feedback: &'static str,
    /// One page of the log: (tenant, user_id), seq greater than, limit.
    pub select_log_page: &'static str,
    /// The whole log of (tenant, user_id), oldest first.
    pub select_log: &'static str,
    pub delete_feedback: &'static str,
    pub delete_user: &'static str,
    pub insert_key: &'static str,
    pub select_tenant: &'static str,
    pub select_keys: &'static str,
    /// Keys whose hash is LIKE the pattern.
    pub delete_keys: &'static str,
}

/// The statements as SQLite and PostgreSQL both read them (`$N` placeholders, `ON CONFLICT`).
pub const SHARED_SQL: Sql = Sql {
    select_user: "SELECT prior, state, seq, created_at, updated_at FROM users WHERE tenant = $1 AND user_id = $2",
    lock_user: "SELECT prior, state, seq, created_at, updated_at FROM users WHERE tenant = $1 AND user_id = $2 FOR UPDATE",
    insert_user: "INSERT INTO users (tenant, user_id, prior, rate, state, seq, created_at, updated_at)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (tenant, user_id) DO NOTHING",
    update_user: "UPDATE users SET state = $1, seq = $2, updated_at = $3 WHERE tenant = $4 AND user_id = $5",
    insert_feedback: "INSERT INTO feedback (tenant, user_id, seq, body, created_at) VALUES ($1, $2, $3, $4, $5)",
    select_log_page: "SELECT seq, body, created_at FROM feedback WHERE tenant = $1 AND user_id = $2 AND seq > $3 ORDER BY seq LIMIT $4",
    select_log: "SELECT seq, body, created_at FROM feedback WHERE tenant = $1 AND user_id = $2 ORDER BY seq",
    delete_feedback: "DELETE FROM feedback WHERE tenant = $1 AND user_id = $2",
    delete_user: "DELETE FROM users WHERE tenant = $1 AND user_id = $2",
    insert_key: "INSERT INTO api_keys (hash, tenant, label, created_at) VALUES ($1, $2, $3, $4)",
    select_tenant: "SELECT tenant FROM api_keys WHERE hash = $1",
    select_keys: "SELECT hash, tenant, label, created_at FROM api_keys ORDER BY tenant, created_at",
    delete_keys: "DELETE FROM api_keys WHERE hash LIKE $1",
};

/// What one database does its own way. A new database is one implementation of this (in its
/// own file) and one line in [`super::open`].
pub trait Dialect: Send + Sync + Sized + 'static {
    type Db: Database;
    /// [`StateStore::kind`]: `sqlite`, `postgres`.
    const KIND: &'static str;
    const SQL: Sql;
    /// Opens the pools for a `--db` URL and creates the tables if needed. (Not `Send`: rustc
    /// cannot prove it through sqlx's executor bounds, and opening is awaited in place.)
    fn connect(url: &str) -> impl Future<Output = Result<Self>>;
    /// The pool that writes go through.
    fn writer(&self) -> &Pool<Self::Db>;
    /// The pool that reads outside a transaction go through (may be the writer).
    fn reader(&self) -> &Pool<Self::Db>;
    /// A transaction for writing one user's rows, in which [`Sql::lock_user`] serialises it
    /// against every other writer of that user, in this process or another.
    fn begin_write(
        &self,
    ) -> impl Future<Output = sqlx::Result<Transaction<'static, Self::Db>>> + Send;
    fn rows_affected(done: &<Self::Db as Database>::QueryResult) -> u64;
}

type Conn<D> = <<D as Dialect>::Db as Database>::Connection;

/// [`StateStore`] over any [`Dialect`].
pub struct SqlStore<D> {
    db: D,
}

impl<D: Dialect> SqlStore<D> {
    /// Connects to the database `url` names and creates the tables if needed.
    pub async fn connect(url: &str) -> Result<Self> {
        Ok(SqlStore {
            db: D::connect(url).await?,
        })
    }

    #[cfg(test)]
    pub(crate) fn dialect(&self) -> &D {
        &self.db
    }
}

// sqlx states per database what it can bind, read and run; Rust does not carry such bounds
// with a trait, so the two impls below spell them out: connections that run queries, text
// and 64-bit integer values, and the store's row shapes.
impl<D> SqlStore<D>
where
    D: Dialect,
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'q> String: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
    for<'r> UserRow: FromRow<'r, <D::Db as Database>::Row>,
    for<'r> LogRow: FromRow<'r, <D::Db as Database>::Row>,
    for<'r> KeyRow: FromRow<'r, <D::Db as Database>::Row>,
    for<'r> (String,): FromRow<'r, <D::Db as Database>::Row>,
{
    /// Inserts the user's first row unless it exists; true when this call created it.
    async fn insert_new(
        conn: &mut Conn<D>,
        key: &UserKey,
        new: &NewUser,
        now: i64,
    ) -> Result<bool> {
        let done = sqlx::query(D::SQL.insert_user)
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
        Ok(D::rows_affected(&done) == 1)
    }

    async fn lock_user(conn: &mut Conn<D>, key: &UserKey) -> Result<Option<UserRow>> {
        Ok(sqlx::query_as(D::SQL.lock_user)
            .bind(&key.tenant)
            .bind(&key.user_id)
            .fetch_optional(conn)
            .await?)
    }

    async fn store_state(conn: &mut Conn<D>, rec: &UserRecord) -> Result<()> {
        sqlx::query(D::SQL.update_user)
            .bind(to_json(&rec.state))
            .bind(rec.seq)
            .bind(rec.updated_at)
            .bind(&rec.key.tenant)
            .bind(&rec.key.user_id)
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
        let mut tx = self.db.begin_write().await?;
        let now = now_ms();
        Self::insert_new(&mut tx, key, new, now).await?;
        let Some(row) = Self::lock_user(&mut tx, key).await? else {
            return Err(StoreError::Mismatch(format!(
                "user {:?} vanished during feedback; retry",
                key.user_id
            )));
        };
        let mut rec = UserRecord::from_row(key, row)?;
        rec.record(feedback, now)?;
        sqlx::query(D::SQL.insert_feedback)
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
        let mut conn = self.db.writer().acquire().await?;
        let now = now_ms();
        if !Self::insert_new(&mut conn, key, new, now).await? {
            return Ok(None);
        }
        Ok(Some(UserRecord::fresh(key, new, now)))
    }

    async fn load(&self, key: &UserKey) -> Result<Option<UserRecord>> {
        let row: Option<UserRow> = sqlx::query_as(D::SQL.select_user)
            .bind(&key.tenant)
            .bind(&key.user_id)
            .fetch_optional(self.db.reader())
            .await?;
        row.map(|row| UserRecord::from_row(key, row)).transpose()
    }

    async fn remove(&self, key: &UserKey) -> Result<bool> {
        let mut tx = self.db.begin_write().await?;
        // Lock first so a concurrent feedback cannot re-add log rows between the deletes.
        Self::lock_user(&mut tx, key).await?;
        sqlx::query(D::SQL.delete_feedback)
            .bind(&key.tenant)
            .bind(&key.user_id)
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query(D::SQL.delete_user)
            .bind(&key.tenant)
            .bind(&key.user_id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(D::rows_affected(&done) > 0)
    }

    async fn log(&self, key: &UserKey, after: i64, limit: i64) -> Result<Vec<LogEntry>> {
        let rows: Vec<LogRow> = sqlx::query_as(D::SQL.select_log_page)
            .bind(&key.tenant)
            .bind(&key.user_id)
            .bind(after)
            .bind(limit)
            .fetch_all(self.db.reader())
            .await?;
        log_entries(key, rows)
    }

    async fn rebuild_user(&self, key: &UserKey) -> Result<Option<UserRecord>> {
        let mut tx = self.db.begin_write().await?;
        let Some(row) = Self::lock_user(&mut tx, key).await? else {
            return Ok(None);
        };
        let rows: Vec<LogRow> = sqlx::query_as(D::SQL.select_log)
            .bind(&key.tenant)
            .bind(&key.user_id)
            .fetch_all(&mut *tx)
            .await?;
        let rec = UserRecord::rebuilt(key, row, &log_entries(key, rows)?)?;
        Self::store_state(&mut tx, &rec).await?;
        tx.commit().await?;
        Ok(Some(rec))
    }

    async fn insert_key(&self, r: &KeyRecord) -> Result<()> {
        sqlx::query(D::SQL.insert_key)
            .bind(&r.hash)
            .bind(&r.tenant)
            .bind(&r.label)
            .bind(r.created_at)
            .execute(self.db.writer())
            .await?;
        Ok(())
    }

    async fn tenant(&self, hash: &str) -> Result<Option<String>> {
        let row: Option<(String,)> = sqlx::query_as(D::SQL.select_tenant)
            .bind(hash.to_owned())
            .fetch_optional(self.db.reader())
            .await?;
        Ok(row.map(|r| r.0))
    }

    async fn keys(&self) -> Result<Vec<KeyRecord>> {
        let rows: Vec<KeyRow> = sqlx::query_as(D::SQL.select_keys)
            .fetch_all(self.db.reader())
            .await?;
        Ok(rows.into_iter().map(KeyRecord::from).collect())
    }

    async fn delete_keys(&self, prefix: &str) -> Result<u64> {
        let pattern = format!("{}%", prefix.replace(['%', '_'], ""));
        let done = sqlx::query(D::SQL.delete_keys)
            .bind(pattern)
            .execute(self.db.writer())
            .await?;
        Ok(D::rows_affected(&done))
    }
}

impl<D> StateStore for SqlStore<D>
where
    D: Dialect,
    for<'c> &'c mut Conn<D>: Executor<'c, Database = D::Db>,
    for<'q> <D::Db as Database>::Arguments<'q>: IntoArguments<'q, D::Db>,
    for<'q> String: Encode<'q, D::Db> + Type<D::Db>,
    for<'q> i64: Encode<'q, D::Db> + Type<D::Db>,
    for<'r> UserRow: FromRow<'r, <D::Db as Database>::Row>,
    for<'r> LogRow: FromRow<'r, <D::Db as Database>::Row>,
    for<'r> KeyRow: FromRow<'r, <D::Db as Database>::Row>,
    for<'r> (String,): FromRow<'r, <D::Db as Database>::Row>,
{
    fn kind(&self) -> &'static str {
        D::KIND
    }

    fn add_key<'a>(&'a self, record: &'a KeyRecord) -> BoxFuture<'a, Result<()>> {
        Box::pin(self.insert_key(record))
    }

    fn tenant_for_key<'a>(&'a self, hash: &'a str) -> BoxFuture<'a, Result<Option<String>>> {
        Box::pin(self.tenant(hash))
    }

    fn list_keys(&self) -> BoxFuture<'_, Result<Vec<KeyRecord>>> {
        Box::pin(self.keys())
    }

    fn remove_keys<'a>(&'a self, prefix: &'a str) -> BoxFuture<'a, Result<u64>> {
        Box::pin(self.delete_keys(prefix))
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
        Box::pin(self.remove(key))
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
