//! Narrow reads for rollback (what the bundle installed, in one or two
//! statements, so break-glass does not depend on the whole snapshot) and for
//! apply's lock budget and lock-timeout message.

use anyhow::Result;

use crate::bundle::batches::LockBudget;
use crate::config::Target;
use crate::db::{Db, DbResultExt};

const BUNDLE_ROLES: &str = include_str!("../../sql/inspect/bundle_roles.sql");
const INSTALLED: &str = include_str!("../../sql/inspect/installed.sql");
const EXISTING_TABLES: &str = include_str!("../../sql/inspect/existing_tables.sql");
const LOCK_HOLDERS: &str = include_str!("../../sql/inspect/lock_holders.sql");
const LOCK_BUDGET: &str = include_str!("../../sql/inspect/lock_budget.sql");

/// One table the bundle installed.
#[derive(Debug, Clone)]
pub struct InstalledTable {
    /// Table name in the tenant schema.
    pub name: String,
    /// relrowsecurity before the first apply.
    pub original_rls: bool,
    /// relforcerowsecurity before the first apply.
    pub original_force: bool,
    /// PUBLIC's privileges before the first apply.
    pub original_public: Vec<String>,
    /// Sequences its columns own, as quoted `schema.name`.
    pub sequences: Vec<String>,
}

/// What the bundle installed in the tenant schema.
#[derive(Debug, Clone)]
pub struct Installation {
    /// Both bundle roles exist (so there are grants to revoke).
    pub roles_exist: bool,
    /// The installed tables, by name.
    pub tables: Vec<InstalledTable>,
}

/// Reads the installation; `None` when the bundle is not installed.
pub async fn installation(db: &Db, target: &Target) -> Result<Option<Installation>> {
    let roles = vec![target.app_role.clone(), target.admin_role.clone()];
    let row = db
        .query_one(BUNDLE_ROLES, &[&roles])
        .await
        .doing("looking for the bundle")?;
    if !row.get::<_, bool>("installed") {
        return Ok(None);
    }
    let rows = db
        .query(INSTALLED, &[&target.schema])
        .await
        .doing("reading what the bundle installed")?;
    Ok(Some(Installation {
        roles_exist: row.get::<_, i64>("roles") == 2,
        tables: rows
            .iter()
            .map(|r| InstalledTable {
                name: r.get("table_name"),
                original_rls: r.get("original_rls"),
                original_force: r.get("original_force"),
                original_public: r.get("original_public_privileges"),
                sequences: r.get("sequences"),
            })
            .collect(),
    }))
}

/// The (schema, table) pairs of `pairs` that still exist.
pub async fn existing_tables(db: &Db, pairs: &[(String, String)]) -> Result<Vec<(String, String)>> {
    let schemas: Vec<&str> = pairs.iter().map(|p| p.0.as_str()).collect();
    let tables: Vec<&str> = pairs.iter().map(|p| p.1.as_str()).collect();
    let rows = db
        .query(EXISTING_TABLES, &[&schemas, &tables])
        .await
        .doing("looking for the tables to restore")?;
    Ok(rows
        .iter()
        .map(|r| (r.get("schema_name"), r.get("table_name")))
        .collect())
}

/// Who holds locks on the tenant tables or the advisory lock `key`:
/// "pid 123 (alice, idle in transaction): LOCK TABLE ...". Empty on any error:
/// this only decorates a message.
pub async fn lock_holders(db: &Db, target: &Target, key: i64) -> Vec<String> {
    let rows = db
        .query(LOCK_HOLDERS, &[&target.schema, &target.tables, &key])
        .await
        .unwrap_or_default();
    rows.iter()
        .map(|r| {
            format!(
                "pid {} ({}, {}): {}",
                r.get::<_, i32>("pid"),
                r.get::<_, String>("usename"),
                r.get::<_, String>("state"),
                r.get::<_, String>("query")
            )
        })
        .collect()
}

/// The server's shared lock table and what other sessions hold in it now.
pub async fn lock_budget(db: &Db) -> Result<LockBudget> {
    let row = db
        .query_one(LOCK_BUDGET, &[])
        .await
        .doing("reading the lock table's size")?;
    Ok(LockBudget {
        max_locks_per_transaction: row.get("max_locks_per_transaction"),
        slots: row.get("slots"),
        held_by_others: row.get("held"),
    })
}
