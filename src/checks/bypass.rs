//! Bypass checks: paths around the policies that the catalog shows — views
//! with their owner's rights, materialized views and foreign tables, SECURITY
//! DEFINER and LEAKPROOF functions, children queried directly.

use super::*;
use crate::bundle::policy::scopes_to_tenant;
use crate::bundle::sql::helper_body;
use crate::config::{Target, BUNDLE_SCHEMA, HELPER_FUNCTION};
use crate::db::quote_ident;
use crate::inspect::{Function, Snapshot};

/// BYP001 to BYP006.
pub fn run(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let app = &target.app_role;
    let views = snap
        .relations
        .iter()
        .filter(|r| r.relkind == "v" && !r.security_invoker && r.owner_bypasses)
        .map(|r| {
            Finding::problem(
                &BYP001,
                r.name.clone(),
                format!("{app} can read view {} over {}; it runs with the rights of its owner {}, who bypasses RLS", r.name, r.reads.join(", "), r.owner),
                if snap.session.server_version_num >= 150000 {
                    format!("ALTER VIEW {} SET (security_invoker = true)", r.name)
                } else {
                    format!("REVOKE SELECT ON {} FROM {}; or upgrade to PostgreSQL 15 for security_invoker", r.name, quote_ident(app))
                },
            )
        })
        .collect();
    findings.check(
        &BYP001,
        views,
        "no view exposes tenant tables with its owner's rights",
    );
    let stored = snap
        .relations
        .iter()
        .filter(|r| r.relkind == "m" || r.relkind == "f")
        .map(|r| {
            let what = if r.relkind == "m" {
                "materialized view"
            } else {
                "foreign table"
            };
            Finding::problem(
                &BYP002,
                r.name.clone(),
                format!(
                    "{app} can read {what} {}: RLS is not enforced on it at query time",
                    r.name
                ),
                format!("REVOKE SELECT ON {} FROM {}", r.name, quote_ident(app)),
            )
        })
        .collect();
    findings.check(
        &BYP002,
        stored,
        "no materialized view or foreign table with tenant data is readable",
    );
    let helper = helper_body();
    let is_bundle_helper =
        |f: &Function| f.schema == BUNDLE_SCHEMA && f.name == HELPER_FUNCTION && f.source == helper;
    let problems = snap
        .functions
        .iter()
        .filter(|f| f.security_definer && f.app_can_execute && !is_bundle_helper(f))
        .filter_map(|f| {
            let read: Vec<&str> = snap.tables.iter().filter(|t| mentions(&f.source, &t.name)).map(|t| t.display.as_str()).collect();
            (!read.is_empty()).then(|| {
                Finding::problem(
                    &BYP003,
                    f.signature.clone(),
                    format!("{app} can execute SECURITY DEFINER {} which reads {}: it runs as its owner, not under {app}'s policies", f.signature, read.join(", ")),
                    format!("REVOKE EXECUTE ON FUNCTION {} FROM {}, PUBLIC; or make it SECURITY INVOKER", f.signature, quote_ident(app)),
                )
            })
        })
        .collect();
    findings.check(
        &BYP003,
        problems,
        "no SECURITY DEFINER function executable by the app role reads tenant tables",
    );
    let problems = snap
        .functions
        .iter()
        .filter(|f| f.security_definer && !f.pins_search_path)
        .map(|f| {
            Finding::problem(
                &BYP004,
                f.signature.clone(),
                format!("SECURITY DEFINER {} has no search_path setting: objects in pg_temp or a writable schema can hijack it", f.signature),
                format!("ALTER FUNCTION {} SET search_path = pg_catalog, pg_temp", f.signature),
            )
        })
        .collect();
    findings.check(
        &BYP004,
        problems,
        "every SECURITY DEFINER function pins search_path",
    );
    let problems = snap
        .functions
        .iter()
        .filter(|f| f.leakproof)
        .map(|f| {
            Finding::problem(
                &BYP005,
                f.signature.clone(),
                format!("{} is LEAKPROOF: it may run before the policy filter and see other tenants' values", f.signature),
                format!("ALTER FUNCTION {} NOT LEAKPROOF", f.signature),
            )
        })
        .collect();
    findings.check(&BYP005, problems, "no user-defined LEAKPROOF function");
    let problems = snap
        .children
        .iter()
        .filter_map(|c| {
            let policy = snap.policies_on(&c.name).any(|p| {
                p.permissive && p.applies_to_app && p.using.as_deref().is_some_and(|e| scopes_to_tenant(e, &target.tenant_column, &target.tenant_setting))
            });
            let mut missing = Vec::new();
            if !c.rls {
                missing.push("RLS is off");
            }
            if !c.force {
                missing.push("FORCE is off");
            }
            if !policy {
                missing.push("no isolation policy");
            }
            (!missing.is_empty()).then(|| {
                Finding::problem(
                    &BYP006,
                    c.name.clone(),
                    format!("{} descends from {}; queried directly, the parent's policies do not apply: {}", c.name, c.parent, missing.join(", ")),
                    format!("add {} to RLSCTL_TENANT_TABLES (with its schema) and run rlsctl apply, or REVOKE access to it", c.name),
                )
            })
        })
        .collect();
    findings.check(&BYP006, problems, "children of tenant tables enforce RLS");
}

/// Whether `source` mentions `table` as a whole word (case-insensitive).
fn mentions(source: &str, table: &str) -> bool {
    let source = source.to_lowercase();
    let table = table.to_lowercase();
    let word = |c: char| c.is_alphanumeric() || c == '_';
    source.match_indices(&table).any(|(at, _)| {
        let before = source[..at].chars().next_back();
        let after = source[at + table.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

#[cfg(test)]
mod tests {
    use super::mentions;

    #[test]
    fn mentions_whole_words_only() {
        assert!(mentions(
            "select * from public.customers where x",
            "customers"
        ));
        assert!(mentions("FROM \"Customers\"", "customers"));
        assert!(!mentions("select * from customers_archive", "customers"));
    }
}
