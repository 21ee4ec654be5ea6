//! apply's pre-flight, inside its transaction: the NULL-tenant rows counted,
//! then the PRE checks over the snapshot and the plan, acceptances applied.
//! What it refuses is refused before anything changes.

use std::collections::HashSet;

use anyhow::{Context, Result};
use serde::Serialize;

use super::Options;
use crate::model::batches::Batching;
use crate::model::checks::preflight::{self, Inputs, NullRows};
use crate::model::checks::{Findings, Status};
use crate::model::config::Target;
use crate::model::plan::Plan;
use crate::model::report::Report;
use crate::model::snapshot::Snapshot;
use crate::model::sql::Step;
use crate::pg::per_table::{self, TableRef};
use crate::pg::Db;

/// What the pre-flight found: catalogued checks (PRE001…), reported like the
/// others, and the NULL-tenant counts behind PRE005.
#[derive(Debug, Serialize)]
pub struct Preflight {
    /// The pre-flight checks as a report (its `checks` and `summary`).
    #[serde(flatten)]
    pub(crate) report: Report,
    /// Per-table NULL tenant rows (behind PRE005's failures).
    pub(crate) null_rows: Vec<NullRows>,
}

/// The pre-flight checks, with the NULL-tenant rows counted first.
pub(super) async fn run(
    db: &Db,
    target: &Target,
    snap: &Snapshot,
    plan: &Plan,
    options: &Options,
    counted: Option<&[usize]>,
    batching: Option<&Batching>,
) -> Result<Preflight> {
    let null_rows = null_rows(db, target, snap, counted).await?;
    let mut findings = Findings::default();
    let inputs = Inputs {
        app_password: options.roles.app_password.is_some(),
        no_app_password: options.no_app_password,
        blocked: &plan.blocked,
        null_rows: &null_rows,
        batching,
        existing_policies: if options.judge_existing {
            &plan.existing_policies
        } else {
            &[]
        },
    };
    preflight::run(snap, target, &inputs, &mut findings);
    let accepted = &options.accepted;
    crate::model::exceptions::apply(&mut findings.0, &accepted.exceptions, &accepted.today, None);
    Ok(Preflight {
        report: Report::new("apply", db.info.clone(), findings.0),
        null_rows,
    })
}

impl Preflight {
    /// The findings that did not pass.
    pub fn problems(&self) -> impl Iterator<Item = &crate::model::checks::Finding> {
        self.report
            .checks
            .iter()
            .filter(|f| matches!(f.status, Status::Fail | Status::Warn))
    }
}

/// The rows with a NULL tenant column in each table the session sees in full
/// (of `only`, when given), in a constant number of statements; each table's
/// locks are released once it is counted, so the count fits any lock table.
pub(super) async fn null_rows(
    db: &Db,
    target: &Target,
    snap: &Snapshot,
    only: Option<&[usize]>,
) -> Result<Vec<NullRows>> {
    let only: Option<HashSet<usize>> = only.map(|only| only.iter().copied().collect());
    let counted: Vec<usize> = (0..snap.tables.len())
        .filter(|i| only.as_ref().is_none_or(|only| only.contains(i)))
        .filter(|&i| {
            let t = &snap.tables[i];
            t.exists && t.has_column && snap.session_sees_all(t)
        })
        .collect();
    if counted.is_empty() {
        return Ok(Vec::new());
    }
    let tables: Vec<TableRef> = counted
        .iter()
        .map(|&i| TableRef {
            schema: target.schema.clone(),
            name: snap.tables[i].name.clone(),
            column_type: snap.tables[i].column_type.clone().unwrap_or_default(),
            partitioned: snap.tables[i].partitioned,
        })
        .collect();
    let input = serde_json::json!({ "tables": tables, "column": target.tenant_column });
    let counts = per_table::run(db, Step::CountNullTenants, &input)
        .await
        .context("counting rows with a NULL tenant")?;
    let mut out = Vec::new();
    for (&i, count) in counted.iter().zip(counts.iter()) {
        let table = &snap.tables[i].display;
        let rows = count.as_i64().with_context(|| {
            format!("counting rows with a NULL tenant: {count} is not a count, for {table}")
        })?;
        if rows > 0 {
            out.push(NullRows {
                table: table.clone(),
                rows,
            });
        }
    }
    out.sort_by(|a, b| a.table.cmp(&b.table));
    Ok(out)
}
