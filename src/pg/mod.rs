//! PostgreSQL through tokio-postgres: opening a connection (`connect`: TLS,
//! the authentication guard, password sources), the [`Db`] that counts the
//! statements it sends, transactions with their timeouts, the driver's errors
//! as rlsctl reports them, cancelling on a stop signal, and the helpers that
//! read cells and set the tenant context.

pub(crate) mod auth_guard;
mod cancel;
pub(crate) mod cells;
mod connect;
mod dial;
mod error;
mod options;
pub mod per_table;
pub(crate) mod pgpass;
pub mod tenant;
pub(crate) mod tls;
pub(crate) mod transaction;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use tokio_postgres::types::{ToSql, Type};
use tokio_postgres::{Client, Row, SimpleQueryMessage};

use crate::model::snapshot::ServerInfo;
pub(crate) use cancel::{cancel_all, until_interrupted};
pub(crate) use connect::prompt;
pub use connect::{connect, connect_pair};
pub use error::describe;
pub(crate) use error::{DbError, DbResultExt};
pub use options::{ConnectOptions, Credential, CredentialFuture, PasswordSupplier, Renewal};
pub use transaction::{Begin, Transaction};

/// A value bound to a statement parameter, with the PostgreSQL type it is
/// sent as (statements are unnamed and typed by the client; see [`Db::query`]).
pub trait Param: ToSql + Sync {
    /// The parameter's type.
    fn sql_type(&self) -> Type;
    /// The value as the driver binds it.
    fn as_sql(&self) -> &(dyn ToSql + Sync);
}

macro_rules! params {
    ($($rust:ty => $pg:expr),* $(,)?) => {$(
        impl Param for $rust {
            fn sql_type(&self) -> Type {
                $pg
            }
            fn as_sql(&self) -> &(dyn ToSql + Sync) {
                self
            }
        }
    )*};
}

params! {
    &str => Type::TEXT,
    String => Type::TEXT,
    Option<String> => Type::TEXT,
    Option<&str> => Type::TEXT,
    bool => Type::BOOL,
    i32 => Type::INT4,
    i64 => Type::INT8,
    Vec<String> => Type::TEXT_ARRAY,
    Vec<&str> => Type::TEXT_ARRAY,
    Vec<bool> => Type::BOOL_ARRAY,
    &[String] => Type::TEXT_ARRAY,
}

fn typed<'a>(params: &'a [&'a dyn Param]) -> Vec<(&'a (dyn ToSql + Sync), Type)> {
    params.iter().map(|p| (p.as_sql(), p.sql_type())).collect()
}

/// An open connection that counts the statements it sends (for the
/// constant-round-trip guarantees and the benchmarks).
pub struct Db {
    client: Client,
    /// Statements sent, shared with its siblings.
    statements: Arc<AtomicU64>,
    /// How it was opened, with the password it used: a sibling opens the same way.
    options: ConnectOptions,
    /// The session as the server reports it.
    pub info: ServerInfo,
    /// A [`Transaction`] was dropped open: roll it back before the next statement.
    abandoned: AtomicBool,
    /// A second connection opened beside this one ([`connect_pair`]), which
    /// the first [`Db::sibling`] hands over.
    spare: std::sync::Mutex<Option<Box<Db>>>,
}

impl Db {
    /// Before every statement: roll back a transaction dropped open (see
    /// [`Transaction`]), then count it.
    async fn before_statement(&self) {
        self.settle().await;
        self.statements.fetch_add(1, Ordering::Relaxed);
    }

    /// Runs one statement: `before_statement`, then `statement` (a future,
    /// which does nothing until awaited), its duration logged at trace level
    /// (`RLSCTL_LOG=rlsctl=trace`) with only the first 80 characters of `sql`,
    /// which never hold a password.
    async fn timed<T>(&self, sql: &str, statement: impl std::future::Future<Output = T>) -> T {
        self.before_statement().await;
        let started = std::time::Instant::now();
        let result = statement.await;
        if tracing::enabled!(tracing::Level::TRACE) {
            let head: String = sql
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ")
                .chars()
                .take(80)
                .collect();
            tracing::trace!(ms = started.elapsed().as_secs_f64() * 1000.0, sql = %head, "statement");
        }
        result
    }

    /// The connection to the server is gone (the server ended it, or the
    /// tunnel dropped): what fails on it next says nothing about the database.
    pub(crate) fn is_closed(&self) -> bool {
        self.client.is_closed()
    }

    /// How this connection was opened (host, port, user; the password inside
    /// is never to be printed).
    pub(crate) fn options(&self) -> &ConnectOptions {
        &self.options
    }

    /// Statements sent on this connection and its siblings so far (including
    /// the session query at connect).
    pub fn statements(&self) -> u64 {
        self.statements.load(Ordering::Relaxed)
    }

    /// Runs a query with bound parameters.
    ///
    /// Every statement goes out as one unnamed Parse/Bind/Execute/Sync with
    /// its parameter types given: one round trip, and nothing named is left on
    /// a server connection, so it works through a transaction pooler (PgBouncer
    /// in `pool_mode = transaction` hands the next statement to whichever
    /// server connection is free, where a named prepared statement does not
    /// exist).
    pub async fn query(
        &self,
        sql: &str,
        params: &[&dyn Param],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        let typed = typed(params);
        self.timed(sql, self.client.query_typed(sql, &typed)).await
    }

    /// Runs a query that returns exactly one row.
    pub async fn query_one(
        &self,
        sql: &str,
        params: &[&dyn Param],
    ) -> Result<Row, tokio_postgres::Error> {
        let typed = typed(params);
        self.timed(sql, self.client.query_typed_one(sql, &typed))
            .await
    }

    /// Runs a statement with bound parameters; returns the rows affected.
    pub async fn execute(
        &self,
        sql: &str,
        params: &[&dyn Param],
    ) -> Result<u64, tokio_postgres::Error> {
        let typed = typed(params);
        self.timed(sql, self.client.execute_typed(sql, &typed))
            .await
    }

    /// Prepares a named statement for repeated use (the benchmark's hot loop,
    /// on a direct connection; named statements do not survive a transaction
    /// pooler).
    pub async fn prepare(
        &self,
        sql: &str,
    ) -> Result<tokio_postgres::Statement, tokio_postgres::Error> {
        self.before_statement().await;
        self.client.prepare(sql).await
    }

    /// Runs a prepared statement.
    pub async fn query_prepared(
        &self,
        statement: &tokio_postgres::Statement,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, tokio_postgres::Error> {
        self.before_statement().await;
        self.client.query(statement, params).await
    }

    /// Runs SQL without parameters through the simple protocol (utility statements, BEGIN, ...).
    pub async fn simple(
        &self,
        sql: &str,
    ) -> Result<Vec<SimpleQueryMessage>, tokio_postgres::Error> {
        if sql.contains("PASSWORD") {
            // Role statements may carry a SCRAM verifier: never traced.
            self.before_statement().await;
            return self.client.simple_query(sql).await;
        }
        self.timed(sql, self.client.simple_query(sql)).await
    }
}
