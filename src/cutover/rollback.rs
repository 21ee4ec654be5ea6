//! Break-glass (disable RLS with an audit record), restore, and uninstall.
//! Each runs in one transaction.

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::inspect::installed::{Installation, InstalledTable};
use crate::model::config::{Target, ADMIN_POLICY_NAME, POLICY_NAME};
use crate::model::plan::existing::{Disposition, ExistingPolicy};
use crate::model::sql::{qualified, quote_ident};
use crate::model::sql::{render, Step};
use crate::pg::cells::Cells;
use crate::pg::{Begin, Db, DbResultExt};

/// What to do.
#[derive(Debug, Clone)]
pub(crate) enum RollbackAction {
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

/// What a rollback did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Performed {
    /// Break-glass: RLS disabled.
    Disable,
    /// RLS enabled and forced again.
    Restore,
    /// The bundle removed.
    Uninstall,
}

/// What was done.
#[derive(Debug, Serialize)]
pub(crate) struct RollbackOutcome {
    /// Which action ran.
    pub(crate) action: Performed,
    /// `schema.table` of every table touched.
    pub(crate) tables: Vec<String>,
    /// The reason recorded.
    pub(crate) reason: Option<String>,
    /// Break-glass log entries closed.
    pub(crate) closed_entries: i64,
    /// Tables the break-glass log named that no longer exist (restore only).
    pub(crate) missing: Vec<String>,
}

/// How long break-glass waits for a table lock before it reports the blocker.
const LOCK_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// Runs `action` in one transaction.
pub(crate) async fn run(
    db: &Db,
    target: &Target,
    action: &RollbackAction,
    reason: Option<&str>,
) -> Result<RollbackOutcome> {
    let work = async {
        match action {
            RollbackAction::Disable(tables) => {
                disable(db, target, tables, reason.unwrap_or_default()).await
            }
            RollbackAction::Restore => restore(db, target).await,
            RollbackAction::Uninstall { drop_roles } => {
                uninstall(db, target, *drop_roles, reason.unwrap_or_default()).await
            }
        }
    };
    // BEGIN in one batch with the action's first statements (they run in it).
    let kind = Begin::Change {
        lock_timeout: LOCK_TIMEOUT,
    };
    let (transaction, outcome) = db.begin_with(kind, Box::pin(work)).await?;
    transaction.commit().await.doing("committing")?;
    Ok(outcome)
}

/// What the bundle installed; an error when it is not installed.
async fn installed(db: &Db, target: &Target) -> Result<Installation> {
    match crate::inspect::installed::installation(db, target).await? {
        Some(installation) => Ok(installation),
        None => bail!(
            "the bundle is not installed in {} (no rlsctl.tenant_tables): nothing to roll back",
            db.info.name
        ),
    }
}

async fn disable(
    db: &Db,
    target: &Target,
    tables: &[String],
    reason: &str,
) -> Result<RollbackOutcome> {
    let installed: Vec<String> = installed(db, target)
        .await?
        .tables
        .into_iter()
        .map(|t| t.name)
        .collect();
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
        .map(|t| {
            render(
                Step::DisableRls,
                &[("table", &qualified(&target.schema, t))],
            )
        })
        .collect();
    // The change and its log entry in one batch (one transaction: both or
    // neither).
    let sql = sql.join("\n");
    let log = render(Step::LogBreakGlass, &[]);
    tokio::try_join!(
        async { db.simple(&sql).await.doing("disabling row level security") },
        async {
            db.execute(&log, &[&target.schema, &tables, &reason])
                .await
                .doing("writing the break-glass log")
        },
    )?;
    Ok(RollbackOutcome {
        action: Performed::Disable,
        tables: tables.iter().map(|t| target.display_table(t)).collect(),
        reason: Some(reason.to_string()),
        closed_entries: 0,
        missing: Vec::new(),
    })
}

/// Closes open disable entries and returns the (schema, table) pairs they covered.
async fn close_entries(db: &Db) -> Result<(Vec<(String, String)>, i64)> {
    let rows = db
        .query(&render(Step::CloseBreakGlass, &[]), &[])
        .await
        .doing("closing the break-glass log entries")?;
    let mut pairs: Vec<(String, String)> = Vec::new();
    for row in &rows {
        let row = Cells::new(row, "close_break_glass");
        let schema: String = row.column("schema_name")?;
        for table in row.column::<Vec<String>>("tables")? {
            pairs.push((schema.clone(), table));
        }
    }
    pairs.sort();
    pairs.dedup();
    Ok((pairs, rows.len() as i64))
}

async fn restore(db: &Db, target: &Target) -> Result<RollbackOutcome> {
    // The check that the bundle is there and the log's entries closed, in
    // one batch (should the bundle be missing, its error is the one shown).
    let (_, (logged, closed)) = tokio::try_join!(installed(db, target), close_entries(db))?;
    // A table dropped since break-glass cannot be restored; the others still are.
    let pairs = crate::inspect::installed::existing_tables(db, &logged).await?;
    let missing: Vec<String> = logged
        .iter()
        .filter(|p| !pairs.contains(p))
        .map(|(s, t)| format!("{s}.{t}"))
        .collect();
    if !pairs.is_empty() {
        let sql: Vec<String> = pairs
            .iter()
            .map(|(s, t)| render(Step::RestoreRls, &[("table", &qualified(s, t))]))
            .collect();
        db.simple(&sql.join("\n"))
            .await
            .doing("re-enabling row level security")?;
    }
    Ok(RollbackOutcome {
        action: Performed::Restore,
        tables: pairs.iter().map(|(s, t)| format!("{s}.{t}")).collect(),
        reason: None,
        closed_entries: closed,
        missing,
    })
}

async fn uninstall(
    db: &Db,
    target: &Target,
    drop_roles: bool,
    reason: &str,
) -> Result<RollbackOutcome> {
    let installation = installed(db, target).await?;
    let replaced = replaced_policies(db, target).await?;
    let (_, closed) = close_entries(db).await?;
    let app = quote_ident(&target.app_role);
    let admin = quote_ident(&target.admin_role);
    let mut sql: Vec<String> = installation
        .tables
        .iter()
        .flat_map(|t| table_uninstall(target, t, installation.roles_exist))
        .collect();
    // The users' own policies that apply replaced, as they were, once the
    // bundle's are gone (one of them may have had a bundle policy's name).
    sql.extend(
        replaced
            .iter()
            .map(|p| format!("{};", p.create_sql(&target.schema))),
    );
    let tables: Vec<String> = installation
        .tables
        .iter()
        .map(|t| target.display_table(&t.name))
        .collect();
    db.simple(&sql.join("\n"))
        .await
        .doing("removing policies and grants")?;
    db.execute(&render(Step::LogUninstall, &[]), &[&target.schema, &reason])
        .await
        .doing("writing the break-glass log")?;
    let values = [
        ("schema", quote_ident(&target.schema)),
        ("database", quote_ident(&db.info.name)),
        ("app_role", app.clone()),
        ("admin_role", admin.clone()),
    ];
    let values: Vec<(&str, &str)> = values.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut schema_sql = render(Step::UninstallSchema, &values);
    if installation.roles_exist {
        schema_sql.push('\n');
        schema_sql.push_str(&render(Step::RevokeSchema, &values));
    }
    db.simple(&schema_sql)
        .await
        .doing("removing the bundle's schema objects")?;
    if drop_roles {
        db.simple(&render(
            Step::DropRoles,
            &[("app_role", &app), ("admin_role", &admin)],
        ))
        .await
        .doing("dropping the roles (they may still hold privileges elsewhere)")?;
    }
    Ok(RollbackOutcome {
        action: Performed::Uninstall,
        tables,
        reason: Some(reason.to_string()),
        closed_entries: closed,
        missing: Vec::new(),
    })
}

/// The policies apply replaced in `target`'s schema, each as first recorded.
async fn replaced_policies(db: &Db, target: &Target) -> Result<Vec<ExistingPolicy>> {
    let rows = db
        .query(&render(Step::ReplacedPolicies, &[]), &[&target.schema])
        .await
        .doing("reading the policies apply replaced")?;
    let mut out: Vec<ExistingPolicy> = Vec::new();
    for row in rows {
        let Some(text) = row.try_get::<_, Option<String>>(0).ok().flatten() else {
            continue;
        };
        let recorded: Vec<ExistingPolicy> = serde_json::from_str(&text).context(
            "the history's record of the policies apply found is not as apply writes it",
        )?;
        for p in recorded
            .into_iter()
            .filter(|p| p.disposition == Disposition::Replaced)
        {
            if !out.iter().any(|o| o.table == p.table && o.name == p.name) {
                out.push(p);
            }
        }
    }
    Ok(out)
}

/// What puts one table back as it was before apply: RLS and FORCE as they
/// were, the bundle's policies and grants gone, PUBLIC's privileges back.
fn table_uninstall(target: &Target, t: &InstalledTable, roles_exist: bool) -> Vec<String> {
    let app = quote_ident(&target.app_role);
    let admin = quote_ident(&target.admin_role);
    let mut sql = Vec::new();
    let table = qualified(&target.schema, &t.name);
    let values = [
        ("table", table.as_str()),
        ("policy", &quote_ident(POLICY_NAME)),
        ("admin_policy", &quote_ident(ADMIN_POLICY_NAME)),
        ("rls", if t.original_rls { "ENABLE" } else { "DISABLE" }),
        (
            "force",
            if t.original_force {
                "FORCE"
            } else {
                "NO FORCE"
            },
        ),
        ("app_role", &app),
        ("admin_role", &admin),
    ];
    sql.push(render(Step::UninstallTable, &values));
    if roles_exist {
        sql.push(render(Step::RevokeTable, &values));
    }
    if !t.original_public.is_empty() {
        sql.push(render(
            Step::RegrantPublic,
            &[
                ("table", &table),
                ("privileges", &t.original_public.join(", ")),
            ],
        ));
    }
    if roles_exist {
        for sequence in &t.sequences {
            sql.push(render(
                Step::RevokeSequence,
                &[
                    ("sequence", sequence),
                    ("app_role", &app),
                    ("admin_role", &admin),
                ],
            ));
        }
    }
    sql
}
