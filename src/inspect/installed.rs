//! Narrow reads for rollback (what the bundle installed, in one or two
//! statements, so break-glass does not depend on the whole snapshot) and for
//! apply's lock budget and lock-timeout message.

use anyhow::Result;

use crate::model::batches::LockBudget;
use crate::model::config::Target;
use crate::pg::cells::{all, Cells};
use crate::pg::{Db, DbResultExt};

const BUNDLE_ROLES: &str = include_str!("../../sql/inspect/bundle_roles.sql");
const INSTALLED: &str = include_str!("../../sql/inspect/installed.sql");
const EXISTING_TABLES: &str = include_str!("../../sql/inspect/existing_tables.sql");
const LOCK_HOLDERS: &str = include_str!("../../sql/inspect/lock_holders.sql");
const LOCK_BUDGET: &str = include_str!("../../sql/inspect/lock_budget.sql");

/// One table the bundle installed.
#[derive(Debug, Clone)]
pub(crate) struct InstalledTable {
    /// Table name in the tenant schema.
    pub(crate) name: String,
    /// relrowsecurity before the first apply.
    pub(crate) original_rls: bool,
    /// relforcerowsecurity before the first apply.
    pub(crate) original_force: bool,
    /// PUBLIC's privileges before the first apply.
    pub(crate) original_public: Vec<String>,
    /// Sequences its columns own, as quoted `schema.name`.
    pub(crate) sequences: Vec<String>,
}

/// What the bundle installed in the tenant schema.
#[derive(Debug, Clone)]
pub(crate) struct Installation {
    /// Both bundle roles exist (so there are grants to revoke).
    pub(crate) roles_exist: bool,
    /// The installed tables, by name.
    pub(crate) tables: Vec<InstalledTable>,
}

/// Reads the installation; `None` when the bundle is not installed.
pub(crate) async fn installation(db: &Db, target: &Target) -> Result<Option<Installation>> {
    let roles = vec![target.app_role.clone(), target.admin_role.clone()];
    let row = db
        .query_one(BUNDLE_ROLES, &[&roles])
        .await
        .doing("looking for the bundle")?;
    let row = Cells::new(&row, "bundle_roles");
    if !row.column::<bool>("installed")? {
        return Ok(None);
    }
    let rows = db
        .query(INSTALLED, &[&target.schema])
        .await
        .doing("reading what the bundle installed")?;
    Ok(Some(Installation {
        roles_exist: row.column::<i64>("roles")? == 2,
        tables: all(&rows, "installed", |r| {
            Ok(InstalledTable {
                name: r.column("table_name")?,
                original_rls: r.column("original_rls")?,
                original_force: r.column("original_force")?,
                original_public: r.column("original_public_privileges")?,
                sequences: r.column("sequences")?,
            })
        })?,
    }))
}

/// The (schema, table) pairs of `pairs` that still exist.
pub(crate) async fn existing_tables(
    db: &Db,
    pairs: &[(String, String)],
) -> Result<Vec<(String, String)>> {
    let schemas: Vec<&str> = pairs.iter().map(|p| p.0.as_str()).collect();
    let tables: Vec<&str> = pairs.iter().map(|p| p.1.as_str()).collect();
    let rows = db
        .query(EXISTING_TABLES, &[&schemas, &tables])
        .await
        .doing("looking for the tables to restore")?;
    all(&rows, "existing_tables", |r| {
        Ok((r.column("schema_name")?, r.column("table_name")?))
    })
}

/// Who holds locks on the tenant tables or the advisory lock `key`:
/// "pid 123 (alice, idle in transaction): LOCK TABLE ...". Empty on any error:
/// this only decorates a message.
pub(crate) async fn lock_holders(db: &Db, target: &Target, key: i64) -> Vec<String> {
    let rows = db
        .query(LOCK_HOLDERS, &[&target.schema, &target.tables, &key])
        .await
        .unwrap_or_default();
    all(&rows, "lock_holders", |r| {
        Ok(format!(
            "pid {} ({}, {}): {}",
            r.column::<i32>("pid")?,
            r.column::<String>("usename")?,
            r.column::<String>("state")?,
            r.column::<String>("query")?
        ))
    })
    .unwrap_or_default()
}

/// The server's shared lock table and what other sessions hold in it now.
pub(crate) async fn lock_budget(db: &Db) -> Result<LockBudget> {
    let row = db
        .query_one(LOCK_BUDGET, &[])
        .await
        .doing("reading the lock table's size")?;
    let row = Cells::new(&row, "lock_budget");
    Ok(LockBudget {
        max_locks_per_transaction: row.column("max_locks_per_transaction")?,
        slots: row.column("slots")?,
        held_by_others: row.column("held")?,
    })
}
