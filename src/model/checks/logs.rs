//! LOG001: the tenant-context errors `monitor --logs` read from the server's
//! log, each group of them above its `--max-errors` a finding.

use super::{Finding, Findings, LOG001};
use crate::model::log::tenant_errors::{Group, TenantErrors};

/// One finding per group above its limit; a pass naming the groups within.
pub(crate) fn log001(errors: &TenantErrors, findings: &mut Findings) {
    let (over, within): (Vec<&Group>, Vec<&Group>) = errors
        .groups
        .iter()
        .partition(|g| g.count > errors.limit(g.class));
    let problems = over
        .iter()
        .map(|g| {
            let object = if g.table.is_empty() {
                "(a table the log does not name)".to_string()
            } else {
                g.table.clone()
            };
            let detail = format!(
                "{} {}; {}; above --max-errors {}={}; e.g. {}",
                g.count,
                g.class.meaning(),
                who(g),
                g.class.label(),
                errors.limit(g.class),
                g.example
            );
            Finding::problem(&LOG001, object, detail, g.class.remedy())
        })
        .collect();
    let total: u64 = within.iter().map(|g| g.count).sum();
    let pass = if within.is_empty() {
        format!(
            "no tenant-context error since {} in {}",
            errors.since, errors.source
        )
    } else {
        format!(
            "{total} tenant-context error(s) since {} in {}, each group within --max-errors",
            errors.since, errors.source
        )
    };
    findings.check(&LOG001, problems, pass);
}

/// Who, where and when: SQLSTATE, role, application, first and last time.
fn who(g: &Group) -> String {
    let mut parts = Vec::new();
    if !g.sqlstate.is_empty() {
        parts.push(format!("SQLSTATE {}", g.sqlstate));
    }
    if !g.role.is_empty() {
        parts.push(format!("as {}", g.role));
    }
    if !g.application.is_empty() {
        parts.push(format!("from application {:?}", g.application));
    }
    match (&g.first, &g.last) {
        (Some(first), Some(last)) if first != last => parts.push(format!("{first} to {last}")),
        (Some(first), _) => parts.push(format!("at {first}")),
        _ => {}
    }
    parts.join(", ")
}
