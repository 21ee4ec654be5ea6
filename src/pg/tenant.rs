//! The tenant context as the application sets it: one transaction, the
//! tenant given by `set_config(setting, id, true)` so it ends with the
//! transaction.

use tokio_postgres::error::SqlState;

use super::Db;

/// Sets the tenant for the current transaction only; the id is a bound parameter.
pub async fn set_local(db: &Db, setting: &str, tenant: &str) -> Result<(), tokio_postgres::Error> {
    db.query(
        "SELECT pg_catalog.set_config($1, $2, true)",
        &[&setting, &tenant],
    )
    .await
    .map(|_| ())
}

/// Reads the setting as a session sees it (NULL before ever set, '' after a SET LOCAL ended).
pub async fn current(db: &Db, setting: &str) -> Result<Option<String>, tokio_postgres::Error> {
    let row = db
        .query_one("SELECT pg_catalog.current_setting($1, true)", &[&setting])
        .await?;
    row.try_get(0)
}

/// True when an SQLSTATE and message are the denial row security gives: 42501
/// insufficient_privilege with "new row violates row-level security policy".
/// Other 42501s (a missing sequence grant, a column privilege) prove nothing
/// about isolation.
pub(crate) fn is_rls_denial(state: &str, message: &str) -> bool {
    state == SqlState::INSUFFICIENT_PRIVILEGE.code() && message.contains("row-level security")
}
