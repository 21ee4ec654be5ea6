//! The tenant context as the application sets it: one transaction, the
//! tenant given by `set_config(setting, id, true)` so it ends with the
//! transaction.

use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;

use super::Db;

/// Sets the tenant for the current transaction only; the id is a bound parameter.
pub async fn set_local(db: &Db, setting: &str, tenant: &str) -> Result<(), tokio_postgres::Error> {
    db.query("SELECT set_config($1, $2, true)", &[&setting, &tenant])
        .await
        .map(|_| ())
}

/// Reads the setting as a session sees it (NULL before ever set, '' after a SET LOCAL ended).
pub async fn current(db: &Db, setting: &str) -> Result<Option<String>, tokio_postgres::Error> {
    let row = db
        .query_one("SELECT current_setting($1, true)", &[&setting])
        .await?;
    Ok(row.get(0))
}

/// Executes `sql` inside a savepoint and rolls back to it whatever happened,
/// so a probe's error does not abort the surrounding transaction. The outer
/// result fails only when the savepoint itself cannot be managed.
pub async fn execute_in_savepoint(
    db: &Db,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<Result<u64, tokio_postgres::Error>, tokio_postgres::Error> {
    db.simple("SAVEPOINT rlsctl_probe").await?;
    let outcome = db.execute(sql, params).await;
    db.simple("ROLLBACK TO SAVEPOINT rlsctl_probe").await?;
    Ok(outcome)
}

/// True when the error is the denial row security gives: 42501
/// insufficient_privilege with "new row violates row-level security policy".
/// Other 42501s (a missing sequence grant, a column privilege) prove nothing
/// about isolation.
pub fn is_rls_denial(err: &tokio_postgres::Error) -> bool {
    err.as_db_error().is_some_and(|e| {
        *e.code() == SqlState::INSUFFICIENT_PRIVILEGE && e.message().contains("row-level security")
    })
}
