//! Break-glass (disable RLS with an audit record), restore, and uninstall.
//! Each runs in one transaction.

use anyhow::{bail, Result};
use serde::Serialize;

use super::sql::render;
use crate::config::{Target, ADMIN_POLICY_NAME, POLICY_NAME};
use crate::db::{qualified, quote_ident, Db, DbResultExt};

/// What to do.
#[derive(Debug, Clone)]
pub enum Action {
    /// Disable RLS on these tables (bare names in the target schema).
    Disable(Vec<String>),
    /// Re-enable and FORCE RLS where break-glass disabled it.
    Restore,
    /// Remove the bundle; optionally drop the roles.
    Uninstall {
        /// Drop the app and break-glass roles.
        drop_roles: bool,
    },
}

/// What was done.
#[derive(Debug, Serialize)]
pub struct Outcome {
    /// `disable`, `restore` or `uninstall`.
    pub action: &'static str,
    /// `schema.table` of every table touched.
    pub tables: Vec<String>,
    /// The reason recorded.
    pub reason: Option<String>,
    /// Break-glass log entries closed.
    pub closed_entries: i64,
}

/// How long break-glass waits for a table lock before it reports the blocker.
const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `action` in one transaction.
pub async fn run(
    db: &Db,
    target: &Target,
    action: &Action,
    reason: Option<&str>,
) -> Result<Outcome> {
    db.begin_change(LOCK_TIMEOUT)
        .await
        .doing("starting the transaction")?;
    let result = match action {
        Action::Disable(tables) => disable(db, target, tables, reason.unwrap_or_default()).await,
        Action::Restore => restore(db, target).await,
        Action::Uninstall { drop_roles } => {
            uninstall(db, target, *drop_roles, reason.unwrap_or_default()).await
        }
    };
    match result {
        Ok(outcome) => {
            db.commit().await.doing("committing")?;
            Ok(outcome)
        }
        Err(err) => {
            let _ = db.rollback().await;
            Err(err)
        }
    }
}

async fn installed_tables(db: &Db, target: &Target) -> Result<Vec<String>> {
    let present: bool = db
        .query_one("SELECT to_regclass('rlsctl.tenant_tables') IS NOT NULL AND to_regclass('rlsctl.break_glass_log') IS NOT NULL", &[])
        .await
        .doing("looking for the bundle")?
        .get(0);
    if !present {
        bail!(
            "the bundle is not installed in {} (no rlsctl.tenant_tables): nothing to roll back",
            db.info.name
        );
    }
    let rows = db
        .query(
            "SELECT table_name FROM rlsctl.tenant_tables WHERE schema_name = $1 ORDER BY 1",
            &[&target.schema],
        )
        .await
        .doing("reading the installed tables")?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

async fn disable(db: &Db, target: &Target, tables: &[String], reason: &str) -> Result<Outcome> {
    let installed = installed_tables(db, target).await?;
    let tables: Vec<String> = if tables.is_empty() {
        installed.clone()
    } else {
        tables.to_vec()
    };
    let unknown: Vec<&String> = tables.iter().filter(|t| !installed.contains(t)).collect();
    if !unknown.is_empty() {
        bail!(
            "not a tenant table installed by the bundle in schema {}: {} (installed: {})",
            target.schema,
            unknown
                .iter()
                .map(|t| t.as_str())
                .collect::<Vec<_>>()
                .join(", "),
            installed.join(", ")
        );
    }
    let sql: Vec<String> = tables
        .iter()
        .map(|t| render("disable_rls", &[("table", &qualified(&target.schema, t))]))
        .collect();
    db.simple(&sql.join("\n"))
        .await
        .doing("disabling row level security")?;
    db.execute(
        "INSERT INTO rlsctl.break_glass_log (action, schema_name, tables, reason) VALUES ('disable', $1, $2, $3)",
        &[&target.schema, &tables, &reason],
    )
    .await
    .doing("writing the break-glass log")?;
    Ok(Outcome {
        action: "disable",
        tables: tables.iter().map(|t| target.display_table(t)).collect(),
        reason: Some(reason.to_string()),
        closed_entries: 0,
    })
}

/// Closes open disable entries and returns the (schema, table) pairs they covered.
async fn close_entries(db: &Db) -> Result<(Vec<(String, String)>, i64)> {
    let rows = db
        .query(
            "UPDATE rlsctl.break_glass_log SET ended_at = now(), ended_by = session_user
             WHERE ended_at IS NULL AND action = 'disable' RETURNING schema_name, tables",
            &[],
        )
        .await
        .doing("closing the break-glass log entries")?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for row in &rows {
        let schema: String = row.get(0);
        for table in row.get::<_, Vec<String>>(1) {
            pairs.push((schema.clone(), table));
        }
    }
    pairs.sort();
    pairs.dedup();
    Ok((pairs, rows.len() as i64))
}

async fn restore(db: &Db, target: &Target) -> Result<Outcome> {
    installed_tables(db, target).await?;
    let (pairs, closed) = close_entries(db).await?;
    if !pairs.is_empty() {
        let sql: Vec<String> = pairs
            .iter()
            .map(|(s, t)| render("restore_rls", &[("table", &qualified(s, t))]))
            .collect();
        db.simple(&sql.join("\n"))
            .await
            .doing("re-enabling row level security")?;
    }
    Ok(Outcome {
        action: "restore",
        tables: pairs.iter().map(|(s, t)| format!("{s}.{t}")).collect(),
        reason: None,
        closed_entries: closed,
    })
}

async fn uninstall(db: &Db, target: &Target, drop_roles: bool, reason: &str) -> Result<Outcome> {
    installed_tables(db, target).await?;
    let (_, closed) = close_entries(db).await?;
    let rows = db
        .query(
            "SELECT tt.table_name, tt.original_rls, tt.original_force, tt.original_public_privileges,
                    ARRAY(SELECT format('%s.%s', quote_ident(sn.nspname), quote_ident(s.relname))
                          FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                          JOIN pg_depend d ON d.refobjid = c.oid AND d.classid = 'pg_class'::regclass
                               AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
                          JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
                          JOIN pg_namespace sn ON sn.oid = s.relnamespace
                          WHERE n.nspname = tt.schema_name AND c.relname = tt.table_name)
             FROM rlsctl.tenant_tables tt WHERE tt.schema_name = $1 ORDER BY 1",
            &[&target.schema],
        )
        .await
        .doing("reading what the bundle installed")?;
    let app = quote_ident(&target.app_role);
    let admin = quote_ident(&target.admin_role);
    let roles_exist: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_roles WHERE rolname IN ($1, $2)",
            &[&target.app_role, &target.admin_role],
        )
        .await
        .doing("reading roles")?
        .get(0);
    let mut sql = Vec::new();
    let mut tables = Vec::new();
    for row in &rows {
        let name: String = row.get(0);
        let table = qualified(&target.schema, &name);
        let rls = if row.get::<_, bool>(1) {
            "ENABLE"
        } else {
            "DISABLE"
        };
        let force = if row.get::<_, bool>(2) {
            "FORCE"
        } else {
            "NO FORCE"
        };
        let values = [
            ("table", table.as_str()),
            ("policy", &quote_ident(POLICY_NAME)),
            ("admin_policy", &quote_ident(ADMIN_POLICY_NAME)),
            ("rls", rls),
            ("force", force),
            ("app_role", &app),
            ("admin_role", &admin),
        ];
        sql.push(if roles_exist == 2 {
            render("uninstall_table", &values)
        } else {
            // Without the roles there is nothing to revoke from them.
            render("uninstall_table", &values)
                .lines()
                .filter(|l| !l.starts_with("REVOKE"))
                .collect::<Vec<_>>()
                .join("\n")
        });
        let public: Vec<String> = row.get(3);
        if !public.is_empty() {
            sql.push(render(
                "regrant_public",
                &[("table", &table), ("privileges", &public.join(", "))],
            ));
        }
        if roles_exist == 2 {
            for sequence in row.get::<_, Vec<String>>(4) {
                sql.push(render(
                    "revoke_sequence",
                    &[
                        ("sequence", &sequence),
                        ("app_role", &app),
                        ("admin_role", &admin),
                    ],
                ));
            }
        }
        tables.push(target.display_table(&name));
    }
    db.simple(&sql.join("\n"))
        .await
        .doing("removing policies and grants")?;
    db.execute(
        "INSERT INTO rlsctl.break_glass_log (action, schema_name, tables, reason, ended_at, ended_by)
         VALUES ('uninstall', $1, ARRAY(SELECT table_name FROM rlsctl.tenant_tables WHERE schema_name = $1), $2, now(), session_user)",
        &[&target.schema, &reason],
    )
    .await
    .doing("writing the break-glass log")?;
    let mut schema_sql = render(
        "uninstall_schema",
        &[
            ("schema", &quote_ident(&target.schema)),
            ("database", &quote_ident(&db.info.name)),
            ("app_role", &app),
            ("admin_role", &admin),
        ],
    );
    if roles_exist != 2 {
        schema_sql = schema_sql
            .lines()
            .filter(|l| !l.starts_with("REVOKE"))
            .collect::<Vec<_>>()
            .join("\n");
    }
    db.simple(&schema_sql)
        .await
        .doing("removing the bundle's schema objects")?;
    if drop_roles {
        db.simple(&render(
            "drop_roles",
            &[("app_role", &app), ("admin_role", &admin)],
        ))
        .await
        .doing("dropping the roles (they may still hold privileges elsewhere)")?;
    }
    Ok(Outcome {
        action: "uninstall",
        tables,
        reason: Some(reason.to_string()),
        closed_entries: closed,
    })
}
