//! Coverage checks: RLS enabled and forced, policies that scope reads and
//! writes to the tenant, nothing widening them, every tenant-column table
//! covered, no row invisible to every tenant.

use super::*;
use crate::model::config::{Target, POLICY_NAME};
use crate::model::policy::Form;
use crate::model::snapshot::{Command, ForeignKeyKind, Policy, Snapshot, Table};
use crate::model::sql::{qualified, quote_ident, quote_literal};

/// RLS001 to RLS010, in report order (RLS008 beside RLS003, which it
/// explains; the foreign keys beside RLS006's other uncovered tables).
pub(crate) const RULES: [Rule; 10] = [
    rls001, rls002, rls003, rls004, rls005, rls008, rls006, rls009, rls010, rls007,
];

/// RLS001: ROW LEVEL SECURITY is on for every tenant table (a missing table fails here).
pub(crate) fn rls001(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let problems = snap
        .tables
        .iter()
        .filter_map(|t| {
            let (detail, remedy) = if !t.exists {
                (
                    t.missing(),
                    "fix RLSCTL_TENANT_TABLES or create the table, then rlsctl apply".to_string(),
                )
            } else if !t.rls {
                (
                    "relrowsecurity is false: no policy applies".to_string(),
                    format!(
                        "ALTER TABLE {} ENABLE ROW LEVEL SECURITY",
                        qualified(&target.schema, &t.name)
                    ),
                )
            } else {
                return None;
            };
            Some(Finding::problem(&RLS001, t.display.clone(), detail, remedy))
        })
        .collect();
    findings.check(&RLS001, problems, "RLS is enabled on every tenant table");
}

/// RLS002: FORCE ROW LEVEL SECURITY on every existing tenant table.
pub(crate) fn rls002(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let problems = snap
        .tables
        .iter()
        .filter(|t| t.exists && !t.force)
        .map(|t| {
            Finding::problem(
                &RLS002,
                t.display.clone(),
                "relforcerowsecurity is false: the owner bypasses every policy",
                format!(
                    "ALTER TABLE {} FORCE ROW LEVEL SECURITY",
                    qualified(&target.schema, &t.name)
                ),
            )
        })
        .collect();
    findings.check(&RLS002, problems, "FORCE is on for every tenant table");
}

/// RLS003: a permissive policy for the app role scopes reads to the tenant.
pub(crate) fn rls003(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let (column, setting) = (&target.tenant_column, &target.tenant_setting);
    let mut problems = Vec::new();
    for t in snap.tables.iter().filter(|t| t.exists) {
        if !t.has_column {
            problems.push(Finding::problem(
                &RLS003,
                t.display.clone(),
                format!("{} has no column {column:?}", t.display),
                "fix RLSCTL_TENANT_COLUMN or the table",
            ));
            continue;
        }
        // A shadow-mode isolation policy lets every row through: reported
        // here and by RLS008, not again as a write policy or a widening one.
        if snap
            .policies_on(&t.display)
            .any(|p| p.name == POLICY_NAME && p.is_shadow())
        {
            problems.push(Finding::problem(
                &RLS003,
                t.display.clone(),
                "shadow mode (apply --shadow): the isolation policy records reads instead of narrowing them (RLS008)",
                "rlsctl apply (enforces)",
            ));
            continue;
        }
        let own = enforcing_policies(snap, &t.display);
        let isolates = own.iter().any(|p| {
            p.permissive && p.applies_to_app && p.cmd.reads() && p.scopes_reads(column, setting)
        });
        if isolates {
            continue;
        }
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
        problems.push(Finding::problem(
            &RLS003,
            t.display.clone(),
            detail,
            "rlsctl apply (installs the tenant_isolation policy)",
        ));
    }
    findings.check(
        &RLS003,
        problems,
        "every tenant table has a policy scoping reads to the tenant",
    );
}

/// The permissive policies for the app role on the existing tenant tables
/// that have the tenant column, shadow-mode ones left out (RLS003 and RLS008
/// report those), with each one's table (whose SQL name a remedy spells out:
/// only for a problem, not for each of thousands of tables).
fn app_policies(snap: &Snapshot) -> Vec<(&Table, &Policy)> {
    snap.tables
        .iter()
        .filter(|t| t.exists && t.has_column)
        .flat_map(|t| {
            enforcing_policies(snap, &t.display)
                .into_iter()
                .filter(|p| p.permissive && p.applies_to_app)
                .map(move |p| (t, p))
        })
        .collect()
}

/// A table's policies that are not in shadow mode.
fn enforcing_policies<'a>(snap: &'a Snapshot, table: &str) -> Vec<&'a Policy> {
    snap.policies_on(table).filter(|p| !p.is_shadow()).collect()
}

/// RLS004: every write policy for the app role checks new rows against the
/// tenant, by PostgreSQL's rules (see [`Policy::new_row_check`]): WITH CHECK,
/// or USING where an ALL or UPDATE policy has none.
pub(crate) fn rls004(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let (column, setting) = (&target.tenant_column, &target.tenant_setting);
    let problems = app_policies(snap)
        .into_iter()
        .filter(|(_, p)| p.cmd.writes() && !p.scopes_writes(column, setting))
        .map(|(t, p)| {
            let sql_name = qualified(&target.schema, &t.name);
            let (check, _) = p.new_row_check().unwrap_or(("true", true));
            let which = if p.check.is_some() { "WITH CHECK" } else { "USING (checked as WITH CHECK)" };
            Finding::problem(
                &RLS004,
                format!("{} policy {}", p.table, p.name),
                format!(
                    "write policy {} ({}) checks new rows with {which} {check}, which {}: a tenant could write rows for another tenant",
                    p.name,
                    p.cmd.sql(),
                    why_unscoped(p, check, column, setting)
                ),
                format!("ALTER POLICY {} ON {sql_name} WITH CHECK ({column} = (SELECT NULLIF(current_setting({}, true), '')::...))", quote_ident(&p.name), quote_literal(setting)),
            )
        })
        .collect();
    findings.check(&RLS004, problems, "every write policy checks the tenant");
}

/// Why `expr` of `policy` does not scope to the tenant, in words.
fn why_unscoped(policy: &Policy, expr: &str, column: &str, setting: &str) -> String {
    let builtin = if Some(expr) == policy.using.as_deref() {
        policy.using_builtin
    } else {
        policy.check_builtin
    };
    match crate::model::policy::classify(expr, column, setting) {
        Form::Scoped(_) if !builtin => "reads like the tenant predicate but uses another column or a user-defined operator, function or type".into(),
        Form::Scoped(_) => "scopes to the tenant".into(),
        Form::Unscoped(why) => format!("does not restrict rows to the tenant ({why})"),
        Form::NotUnderstood(what) => format!("rlsctl cannot read (it stopped at {what})"),
    }
}

/// RLS005: no other permissive policy for the app role ORs a wider read
/// predicate in with the isolation policy. A widening form it can read may be dropped
/// once reviewed; one it cannot read is never a reason to drop anything.
pub(crate) fn rls005(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let (column, setting) = (&target.tenant_column, &target.tenant_setting);
    let mut problems = Vec::new();
    for (t, p) in app_policies(snap) {
        // Writes that widen are RLS004's: one fact, one check.
        if p.cmd == Command::Insert || p.scopes_reads(column, setting) {
            continue;
        }
        let expr = p.using.as_deref().unwrap_or("true");
        let sql_name = qualified(&target.schema, &t.name);
        let policy = quote_ident(&p.name);
        let understood = !matches!(
            crate::model::policy::classify(expr, column, setting),
            Form::NotUnderstood(_)
        );
        let remedy = if understood {
            format!(
                "scope it to the tenant (ALTER POLICY {policy} ON {sql_name} USING (...)), make it RESTRICTIVE, \
                 or once nothing relies on it DROP POLICY {policy} ON {sql_name}; rlsctl apply --replace-policies does that in the cutover's transaction and keeps its definition for rollback --uninstall"
            )
        } else {
            format!(
                "review {policy} by hand: if it scopes to the tenant, rewrite it in a form rlsctl reads (docs/checks.md, RLS003); \
                 if it is reviewed and right, accept the finding (--accept)"
            )
        };
        problems.push(Finding::problem(
            &RLS005,
            format!("{} policy {}", p.table, p.name),
            format!(
                "permissive policy {} ({}) ORs with the isolation policy: {expr}, which {}",
                p.name,
                p.cmd.sql(),
                why_unscoped(p, expr, column, setting)
            ),
            remedy,
        ));
    }
    findings.check(&RLS005, problems, "no permissive policy widens access");
}

/// RLS008: no tenant table is in shadow mode.
pub(crate) fn rls008(snap: &Snapshot, target: &Target, findings: &mut Findings) {
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
}

/// The tables with the tenant column that are not configured and have no
/// forced RLS policy of their own scoping them to the tenant.
pub(crate) fn uncovered<'a>(
    snap: &'a Snapshot,
    target: &'a Target,
) -> impl Iterator<Item = &'a String> {
    let (column, setting) = (&target.tenant_column, &target.tenant_setting);
    snap.uncovered
        .iter()
        .filter(move |(name, forced)| {
            let scoped = snap
                .policies_on(name)
                .any(|p| p.permissive && p.applies_to_app && p.scopes_reads(column, setting));
            !(*forced && scoped)
        })
        .map(|(name, _)| name)
}

/// The foreign keys from tables without the tenant column into tenant
/// tables, where the table holding the key has no RLS of its own (RLS009;
/// `readable`: only those the app role can read).
pub(crate) fn uncovered_children(
    snap: &Snapshot,
    readable: bool,
) -> impl Iterator<Item = &crate::model::snapshot::ForeignKey> {
    snap.foreign_keys.iter().filter(move |k| {
        k.kind == ForeignKeyKind::Child && !k.covered && (k.app_can_read || !readable)
    })
}

/// RLS006: every table with the tenant column is covered. A table outside the
/// configuration still counts when RLS is on, forced, and a policy scopes it
/// to the tenant (DRF006 says it is unmonitored).
pub(crate) fn rls006(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let column = &target.tenant_column;
    let problems = uncovered(snap, target)
        .map(|name| {
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
}

/// RLS009: a table that references a tenant table by foreign key holds that
/// tenant's data (an order's lines, a customer's notes); without the tenant
/// column no isolation policy can cover it, so the app role reads every
/// tenant's rows of it unless RLS with a policy of its own is on it.
pub(crate) fn rls009(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let (app, column) = (&target.app_role, &target.tenant_column);
    let problems = uncovered_children(snap, true)
        .map(|k| {
            Finding::problem(
                &RLS009,
                k.table.clone(),
                format!(
                    "{} references tenant table {} ({}: {}) but has no {column} column, and {app} reads every tenant's rows of it",
                    k.table, k.parent, k.name, k.definition
                ),
                format!(
                    "add {column} to {} (filled from {}), include it in the key and in RLSCTL_TENANT_TABLES, and run rlsctl apply; or REVOKE SELECT ON {} FROM {}",
                    k.table, k.parent, k.table, quote_ident(app)
                ),
            )
        })
        .collect();
    findings.check(
        &RLS009,
        problems,
        format!(
            "every table {app} reads that references a tenant table has {column} or RLS of its own"
        ),
    );
}

/// RLS010: a foreign key between tenant tables that leaves the tenant column
/// out lets a row of one tenant reference another tenant's row. The key's
/// check ignores row security: a tenant can learn that another's row exists
/// (the insert succeeds) and block its deletion. A composite key on
/// `(tenant column, id)` closes it.
pub(crate) fn rls010(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let column = &target.tenant_column;
    let problems = snap
        .foreign_keys
        .iter()
        .filter(|k| k.kind == ForeignKeyKind::Cross)
        .map(|k| {
            Finding::problem(
                &RLS010,
                format!("{} ON {}", k.name, k.table),
                format!(
                    "{} on {} references {} without {column} ({}): a row can point at another tenant's row, and key checks ignore RLS",
                    k.name, k.table, k.parent, k.definition
                ),
                format!(
                    "a UNIQUE ({column}, ...) on {} and this key on ({column}, ...) instead: ALTER TABLE {} DROP CONSTRAINT {}, ADD FOREIGN KEY ({column}, ...) REFERENCES {} ({column}, ...)",
                    k.parent, k.table, quote_ident(&k.name), k.parent
                ),
            )
        })
        .collect();
    findings.check(
        &RLS010,
        problems,
        format!("every foreign key between tenant tables includes {column}"),
    );
}

/// RLS007: no row has a NULL tenant column (invisible to every tenant).
pub(crate) fn rls007(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let column = &target.tenant_column;
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
