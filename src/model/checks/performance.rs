//! Performance checks read from the catalog.

use super::*;
use crate::model::config::{truncate_identifier, Target};
use crate::model::snapshot::Snapshot;
use crate::model::sql::{qualified, quote_ident};

/// PRF001 (PRF002 is a probe: see probes.rs).
pub(crate) fn prf001(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let problems = unindexed(snap)
        .map(|t| {
            Finding::problem(
                &PRF001,
                t.display.clone(),
                format!(
                    "no btree index is led by {}: every tenant query scans the whole table",
                    target.tenant_column
                ),
                tenant_index_remedy(target, &t.name),
            )
        })
        .collect();
    findings.check(
        &PRF001,
        problems,
        "every tenant table has an index led by the tenant column",
    );
}

/// Tenant tables with the tenant column but no btree index led by it
/// (PRF001, and the pre-flight's PRE006 before the cutover).
pub(crate) fn unindexed(snap: &Snapshot) -> impl Iterator<Item = &crate::model::snapshot::Table> {
    snap.tables
        .iter()
        .filter(|t| t.exists && t.has_column && !t.has_tenant_index)
}

/// The statement that adds the missing tenant index, without blocking writes
/// (PRF001 and the pre-flight's PRE006 print the same).
pub(crate) fn tenant_index_remedy(target: &Target, table: &str) -> String {
    format!(
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS {} ON {} ({})",
        quote_ident(truncate_identifier(&format!(
            "{table}_{}_idx",
            target.tenant_column
        ))),
        qualified(&target.schema, table),
        quote_ident(&target.tenant_column)
    )
}
