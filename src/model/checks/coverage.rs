//! Coverage checks: RLS enabled and forced, policies that scope reads and
//! writes to the tenant, nothing widening them, every tenant-column table
//! covered, no row invisible to every tenant.

use super::*;
use crate::model::config::{Target, POLICY_NAME};
use crate::model::snapshot::{Policy, Snapshot};
use crate::model::sql::{qualified, quote_ident, quote_literal};

/// RLS001 to RLS008.
pub(crate) fn run(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let column = &target.tenant_column;
    let setting = &target.tenant_setting;
    let mut rls = Vec::new();
    let mut force = Vec::new();
    let mut using = Vec::new();
    let mut check = Vec::new();
    let mut widen = Vec::new();
    for t in &snap.tables {
        let sql_name = qualified(&target.schema, &t.name);
        if !t.exists {
            let detail = format!("{} does not exist", t.display);
            rls.push(Finding::problem(
                &RLS001,
                t.display.clone(),
                detail,
                "fix RLSCTL_TENANT_TABLES or create the table, then rlsctl apply",
            ));
            continue;
        }
        if !t.rls {
            rls.push(Finding::problem(
                &RLS001,
                t.display.clone(),
                "relrowsecurity is false: no policy applies",
                format!("ALTER TABLE {sql_name} ENABLE ROW LEVEL SECURITY"),
            ));
        }
        if !t.force {
            force.push(Finding::problem(
                &RLS002,
                t.display.clone(),
                "relforcerowsecurity is false: the owner bypasses every policy",
                format!("ALTER TABLE {sql_name} FORCE ROW LEVEL SECURITY"),
            ));
        }
        if !t.has_column {
            using.push(Finding::problem(
                &RLS003,
                t.display.clone(),
                format!("{} has no column {column:?}", t.display),
                "fix RLSCTL_TENANT_COLUMN or the table",
            ));
            continue;
        }
        let own: Vec<&Policy> = snap.policies_on(&t.display).collect();
        // A shadow-mode isolation policy lets every row through: reported once
        // here and by RLS008, not again as a write policy or a widening one.
        if own.iter().any(|p| p.name == POLICY_NAME && p.is_shadow()) {
            using.push(Finding::problem(
                &RLS003,
                t.display.clone(),
                "shadow mode (apply --shadow): the isolation policy records reads instead of narrowing them (RLS008)",
                "rlsctl apply (enforces)",
            ));
        }
        let own: Vec<&Policy> = own.into_iter().filter(|p| !p.is_shadow()).collect();

        let isolates = own.iter().any(|p| {
            p.permissive
                && p.applies_to_app
                && matches!(p.cmd.as_str(), "*" | "r")
                && p.scopes_reads(column, setting)
        });
        if !isolates
            && !using
                .iter()
                .any(|f| f.object.as_deref() == Some(t.display.as_str()))
        {
            let lookalike = own.iter().find(|p| {
                !p.using_builtin
                    && p.using
                        .as_deref()
                        .is_some_and(|u| crate::model::policy::scopes_to_tenant(u, column, setting))
            });
            let detail = match lookalike {
                Some(p) => format!(
                    "policy {} reads like the isolation predicate but is not: it compares another column, or uses a user-defined operator, function or type",
                    p.name
                ),
                None => format!(
                    "no permissive policy for {} restricts reads to {column} = current_setting('{setting}')",
                    target.app_role
                ),
            };
            using.push(Finding::problem(
                &RLS003,
                t.display.clone(),
                detail,
                "rlsctl apply (installs the tenant_isolation policy)",
            ));
        }
        for p in own.iter().filter(|p| p.permissive && p.applies_to_app) {
            if writes(&p.cmd) && !p.scopes_writes(column, setting) {
                let found = p.check.clone().unwrap_or_else(|| "no WITH CHECK".into());
                check.push(Finding::problem(
                    &RLS004,
                    format!("{} policy {}", t.display, p.name),
                    format!("write policy {} has {found}: a tenant could write rows for another tenant", p.name),
                    format!("ALTER POLICY {} ON {sql_name} WITH CHECK ({column} = (SELECT NULLIF(current_setting({}, true), '')::...))", quote_ident(&p.name), quote_literal(setting)),
                ));
            }
            let reads_widely = p.cmd != "a" && !p.scopes_reads(column, setting);
            let writes_widely =
                writes(&p.cmd) && p.check.is_some() && !p.scopes_writes(column, setting);
            if reads_widely || writes_widely {
                let expr = if reads_widely {
                    p.using.clone()
                } else {
                    p.check.clone()
                };
                widen.push(Finding::problem(
                    &RLS005,
                    format!("{} policy {}", t.display, p.name),
                    format!(
                        "permissive policy {} ({}) ORs with the isolation policy: {}",
                        p.name,
                        cmd_name(&p.cmd),
                        expr.unwrap_or_else(|| "true".into())
                    ),
                    format!(
                        "DROP POLICY {} ON {sql_name}, or make it RESTRICTIVE",
                        quote_ident(&p.name)
                    ),
                ));
            }
        }
    }
    findings.check(&RLS001, rls, "RLS is enabled on every tenant table");
    findings.check(&RLS002, force, "FORCE is on for every tenant table");
    findings.check(
        &RLS003,
        using,
        "every tenant table has a policy scoping reads to the tenant",
    );
    findings.check(&RLS004, check, "every write policy checks the tenant");
    findings.check(&RLS005, widen, "no permissive policy widens access");

    let shadow = snap.shadow_tables();
    let problems = if shadow.is_empty() {
        Vec::new()
    } else {
        let shown: Vec<&str> = shadow.iter().take(10).copied().collect();
        let more = shadow.len().saturating_sub(shown.len());
        vec![Finding::problem(
            &RLS008,
            format!("{} of {} tenant tables", shadow.len(), snap.tables.len()),
            format!(
                "isolation is not enforced: shadow mode is on for {}{}; {} sees and writes every tenant's rows, and what enforcement would hide is only recorded in the server log",
                shown.join(", "),
                if more > 0 { format!(" and {more} more") } else { String::new() },
                target.app_role
            ),
            "read the records (rlsctl shadow report), fix the code paths it names, then rlsctl apply to enforce",
        )]
    };
    findings.check(
        &RLS008,
        problems,
        "isolation is enforced on every tenant table (no shadow mode)",
    );

    // A table outside the configuration still counts as covered when RLS is on,
    // forced, and a policy scopes it to the tenant (DRF006 says it is unmonitored).
    let problems = snap
        .uncovered
        .iter()
        .filter(|(name, forced)| {
            let scoped = snap.policies_on(name).any(|p| {
                p.permissive
                    && p.applies_to_app
                    && p.scopes_reads(column, setting)
            });
            !(*forced && scoped)
        })
        .map(|(name, _)| {
            Finding::problem(
                &RLS006,
                name.clone(),
                format!("{name} has a {column} column but is not a configured tenant table, and no forced RLS policy isolates it"),
                "add it to RLSCTL_TENANT_TABLES (its schema's tables with --schema) and run rlsctl apply, or revoke the app role's access",
            )
        })
        .collect();
    findings.check(
        &RLS006,
        problems,
        format!(
            "every table with {column} in {} or readable by {} is covered",
            target.schema, target.app_role
        ),
    );

    match &snap.bundle.null_counts {
        None => findings.push(Finding::skip(
            &RLS007,
            "the bundle's helper rlsctl.null_tenant_counts() is not installed or not executable",
        )),
        Some(counts) => {
            let problems = counts
                .iter()
                .filter_map(|(table, count)| match count {
                    Some(0) => None,
                    Some(n) => Some(Finding::problem(
                        &RLS007,
                        table.clone(),
                        format!("{n} row(s) with a NULL {column}: invisible to every tenant"),
                        "assign them a tenant (UPDATE ... SET tenant_id = ...) or delete them",
                    )),
                    None => Some(Finding::problem(
                        &RLS007,
                        table.clone(),
                        format!(
                            "unknown: the helper's owner {} cannot see every row (its break-glass policy is missing or narrowed), so it cannot count",
                            target.admin_role
                        ),
                        "rlsctl apply (re-installs the break-glass policy)",
                    )),
                })
                .collect();
            findings.check(&RLS007, problems, "no NULL tenant rows");
        }
    }
}

fn cmd_name(cmd: &str) -> &'static str {
    match cmd {
        "r" => "SELECT",
        "a" => "INSERT",
        "w" => "UPDATE",
        "d" => "DELETE",
        _ => "ALL",
    }
}

/// Which write commands a policy governs.
fn writes(cmd: &str) -> bool {
    matches!(cmd, "*" | "a" | "w")
}
