//! The transaction guard: every transaction rlsctl opens is a [`Transaction`],
//! rolled back unless committed, on every path out (an error's `?`, an early
//! return, a panic). The only place `BEGIN`, `COMMIT` and `ROLLBACK` are written.

use std::ops::Deref;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::Db;

/// Pins name resolution to the system catalog for one transaction: functions,
/// operators or types planted in a schema the inspected role controls (or
/// `ALTER ROLE ... SET search_path` on it) cannot stand in for the catalog's.
/// `SET LOCAL`, never a session-level `SET`: through a transaction pooler a
/// session setting would stay on a server connection other clients get.
const PIN_SEARCH_PATH: &str = "SET LOCAL search_path = pg_catalog, pg_temp";

/// No JIT compilation for rlsctl's own statements. On a server built with
/// LLVM (Debian's and the PGDG packages; `SELECT pg_jit_available()` tells),
/// JIT is on by default, and the catalog reads' estimated cost passes
/// `jit_above_cost` by 2,000 tables: compiling then costs more than
/// the read (35 ms of monitor's 142 at 2,000 tables), and more again past
/// `jit_optimize_above_cost`. `SET LOCAL` for the same reason as the pin.
const NO_JIT: &str = "SET LOCAL jit = off";

/// The reads and probes wait for no lock and run no statement for long: a
/// session holding ACCESS EXCLUSIVE on a tenant table (a migration, a stuck
/// VACUUM FULL) ends the read with its lock named, not a cron job that never
/// ends. Generous next to what a read takes (well under a second at 2,000
/// tables).
pub(crate) const READ_LOCK_TIMEOUT: &str = "10s";
/// See [`READ_LOCK_TIMEOUT`].
pub(crate) const READ_STATEMENT_TIMEOUT: &str = "120s";

/// How a transaction starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Begin {
    /// The session's own settings (tests acting as the application).
    Plain,
    /// The search_path pinned to the system catalog, and no JIT.
    Pinned,
    /// Pinned, for a read of many statements that must agree: one snapshot
    /// (REPEATABLE READ) and nothing written (READ ONLY).
    Read,
    /// Pinned, for apply and rollback's changes: a lock timeout (so the
    /// application never queues behind them for long) and standard quoting.
    Change {
        /// `lock_timeout` for the transaction.
        lock_timeout: Duration,
    },
}

/// The timeouts of [`READ_LOCK_TIMEOUT`] for the transaction.
fn bounded() -> String {
    format!(
        "SET LOCAL lock_timeout = '{READ_LOCK_TIMEOUT}'; SET LOCAL statement_timeout = '{READ_STATEMENT_TIMEOUT}'"
    )
}

impl Begin {
    fn sql(self) -> String {
        match self {
            Begin::Plain => "BEGIN".to_string(),
            Begin::Pinned => format!("BEGIN; {PIN_SEARCH_PATH}; {NO_JIT}; {}", bounded()),
            Begin::Read => format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; {PIN_SEARCH_PATH}; {NO_JIT}; {}",
                bounded()
            ),
            Begin::Change { lock_timeout } => format!(
                "BEGIN; SET LOCAL lock_timeout = '{}ms'; {PIN_SEARCH_PATH}; {NO_JIT}; \
                 SET LOCAL standard_conforming_strings = on",
                lock_timeout.as_millis().max(1)
            ),
        }
    }
}

/// An open transaction. Dereferences to its [`Db`], so the statements inside
/// run on it as on any connection. Ended by [`Transaction::commit`] or
/// [`Transaction::rollback`]; dropped open (an error returned through it), it
/// is rolled back before the connection's next statement, and a connection
/// that has none closes, which rolls it back on the server.
#[must_use = "a transaction is rolled back unless committed"]
pub struct Transaction<'a> {
    db: &'a Db,
    open: bool,
}

impl Db {
    /// Starts a transaction.
    pub async fn begin(&self, kind: Begin) -> Result<Transaction<'_>, tokio_postgres::Error> {
        self.simple(&kind.sql()).await?;
        Ok(Transaction {
            db: self,
            open: true,
        })
    }

    /// Starts a transaction of `kind` with `work` in it: BEGIN goes out in
    /// one batch with the statements `work` sends on its first poll (on one
    /// connection they run in that order), one round trip less than BEGIN
    /// and then the work; the transaction stays open for more. `work` runs
    /// on this connection (the transaction's own). Should BEGIN fail, the
    /// error is BEGIN's, and the transaction is rolled back before the
    /// connection's next statement.
    pub async fn begin_with<T, E>(
        &self,
        kind: Begin,
        work: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<(Transaction<'_>, T), E>
    where
        E: From<tokio_postgres::Error>,
    {
        let transaction = Transaction {
            db: self,
            open: true,
        };
        let begin = kind.sql();
        let (begun, result) = tokio::join!(self.simple(&begin), work);
        begun?;
        Ok((transaction, result?))
    }

    /// Runs `work` in a transaction of `kind` that is always rolled back,
    /// sent in one batch with it: BEGIN, the statements `work` sends on its
    /// first poll (statements joined with `tokio::try_join!` are) and ROLLBACK
    /// go out together, one round trip through a tunnel instead of three. On
    /// one connection they run in that order. For work that leaves nothing
    /// behind even outside a transaction (the probes' blocks undo their own
    /// writes): should BEGIN fail, the error is BEGIN's.
    pub async fn rolled_back_batch<T, E>(
        &self,
        kind: Begin,
        work: impl std::future::Future<Output = Result<T, E>>,
    ) -> Result<T, E>
    where
        E: From<tokio_postgres::Error>,
    {
        let begin = kind.sql();
        let (begun, result, ended) =
            tokio::join!(self.simple(&begin), work, self.simple("ROLLBACK"));
        begun?;
        let result = result?;
        ended?;
        Ok(result)
    }

    /// Rolls back a transaction that was dropped open, before anything else
    /// runs on this connection. (Not in one batch with the next statement:
    /// through a transaction pooler, a statement sent behind a transaction's
    /// end can reach a server connection the pooler has already handed on.)
    pub(super) async fn settle(&self) {
        if self.abandoned.swap(false, Ordering::SeqCst) {
            if let Err(err) = self.client.simple_query("ROLLBACK").await {
                tracing::debug!("rolling back an abandoned transaction: {err}");
            }
        }
    }
}

impl Transaction<'_> {
    /// Commits.
    pub async fn commit(mut self) -> Result<(), tokio_postgres::Error> {
        self.open = false;
        self.db.simple("COMMIT").await.map(|_| ())
    }

    /// Rolls back.
    pub async fn rollback(mut self) -> Result<(), tokio_postgres::Error> {
        self.open = false;
        self.db.simple("ROLLBACK").await.map(|_| ())
    }
}

impl Deref for Transaction<'_> {
    type Target = Db;
    fn deref(&self) -> &Db {
        self.db
    }
}

impl Drop for Transaction<'_> {
    fn drop(&mut self) {
        if self.open {
            self.db.abandoned.store(true, Ordering::SeqCst);
        }
    }
}
