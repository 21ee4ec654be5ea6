//! Bypass checks: paths around the policies that the catalog shows — views
//! with their owner's rights, materialized views and foreign tables, SECURITY
//! DEFINER and LEAKPROOF functions, children queried directly.

use super::*;
use crate::model::config::{Target, BUNDLE_SCHEMA, HELPER_FUNCTION};
use crate::model::snapshot::{Function, RelationKind, Rule as RewriteRule, Snapshot};
use crate::model::sql::helper_body;
use crate::model::sql::quote_ident;

/// BYP001 to BYP008, in catalogue order.
pub(crate) const RULES: [Rule; 8] = [
    byp001, byp002, byp003, byp004, byp005, byp006, byp007, byp008,
];

/// BYP001: a view the app role can read runs with its owner's rights; when
/// the owner reads past the policies, so does the view.
pub(crate) fn byp001(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let app = &target.app_role;
    let views = snap
        .relations
        .iter()
        .filter(|r| r.app_can_select && r.kind == RelationKind::View && !r.security_invoker)
        .filter_map(|r| {
            // The owner's rights are the view's: it reads past the policies
            // when the owner does as it is (the reach set), or owns an
            // unforced table under it.
            let how = match snap.reaches(&r.owner).filter(|x| x.reads_as_itself) {
                Some(reacher) => format!("who reaches every row: {}", reacher.describe()),
                None if r.owner_bypasses => "who bypasses RLS on what it reads".to_string(),
                None => return None,
            };
            Some(Finding::problem(
                &BYP001,
                r.name.clone(),
                format!("{app} can read view {} over {}; it runs with the rights of its owner {}, {how}", r.name, r.reads.join(", "), r.owner),
                if snap.session.server_version_num >= 150000 {
                    format!("ALTER VIEW {} SET (security_invoker = true)", r.name)
                } else {
                    format!("REVOKE SELECT ON {} FROM {}; or upgrade to PostgreSQL 15 for security_invoker", r.name, quote_ident(app))
                },
            ).with_fingerprint(&r.definition_md5))
        })
        .collect();
    findings.check(
        &BYP001,
        views,
        "no view exposes tenant tables with its owner's rights",
    );
}

/// BYP002: materialized views and foreign tables are not under RLS at query time.
pub(crate) fn byp002(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let app = &target.app_role;
    let stored = snap
        .relations
        .iter()
        .filter(|r| {
            r.app_can_select
                && matches!(
                    r.kind,
                    RelationKind::MaterializedView | RelationKind::ForeignTable
                )
        })
        .map(|r| {
            let what = if r.kind == RelationKind::MaterializedView {
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
            .with_fingerprint(&r.definition_md5)
        })
        .collect();
    findings.check(
        &BYP002,
        stored,
        "no materialized view or foreign table with tenant data is readable",
    );
}

/// BYP003: a SECURITY DEFINER function the app role can run may read tenant
/// rows with its owner's rights.
pub(crate) fn byp003(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let helper = helper_body();
    let is_bundle_helper =
        |f: &Function| f.schema == BUNDLE_SCHEMA && f.name == HELPER_FUNCTION && f.source == helper;
    let problems = snap
        .functions
        .iter()
        .filter(|f| f.security_definer && app_runs(f) && !is_bundle_helper(f) && !f.in_extension)
        .filter_map(|f| definer_finding(snap, target, f))
        .collect();
    findings.check(
        &BYP003,
        problems,
        "no SECURITY DEFINER function executable by the app role can read tenant rows past RLS",
    );
}

/// BYP004: every SECURITY DEFINER function pins its search_path.
pub(crate) fn byp004(snap: &Snapshot, _: &Target, findings: &mut Findings) {
    let problems = snap
        .functions
        .iter()
        .filter(|f| f.security_definer && !f.search_path_ends_with_pg_temp() && !f.in_extension)
        .map(|f| {
            let detail = match &f.search_path {
                None => format!("SECURITY DEFINER {} has no search_path setting: objects in pg_temp or a writable schema can hijack it", f.signature),
                Some(path) => format!("SECURITY DEFINER {} has search_path = {path}, which does not end with pg_temp: the caller's temporary tables are searched first and can stand in for the ones it reads", f.signature),
            };
            Finding::problem(
                &BYP004,
                f.signature.clone(),
                detail,
                format!("ALTER FUNCTION {} SET search_path = pg_catalog, pg_temp", f.signature),
            )
        })
        .collect();
    findings.check(
        &BYP004,
        problems,
        "every SECURITY DEFINER function pins search_path, ending with pg_temp",
    );
}

/// BYP005: no user-defined LEAKPROOF function.
pub(crate) fn byp005(snap: &Snapshot, _: &Target, findings: &mut Findings) {
    let problems = snap
        .functions
        .iter()
        .filter(|f| f.leakproof && !f.in_extension)
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
}

/// BYP006: partitions and inheritance children enforce RLS themselves.
pub(crate) fn byp006(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let problems = snap
        .children
        .iter()
        .filter_map(|c| {
            let policy = snap.policies_on(&c.name).any(|p| {
                p.permissive && p.applies_to_app && p.scopes_reads(&target.tenant_column, &target.tenant_setting)
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

/// BYP007: monitor compares the catalog with the bundle's records, so whoever
/// can rewrite them can hide drift; the shadow function writes what the shadow
/// report counts, so outside shadow mode nobody should call it.
pub(crate) fn byp007(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let bundle = &snap.bundle;
    let mut problems: Vec<Finding> = bundle
        .writers
        .iter()
        .filter(|(role, _)| !bundle.appliers.contains(role))
        .map(|(role, what)| {
            Finding::problem(
                &BYP007,
                role.clone(),
                format!("{what}, and never applied the bundle: it can rewrite what monitor compares with and hide drift"),
                format!(
                    "REVOKE INSERT, UPDATE, DELETE, TRUNCATE ON ALL TABLES IN SCHEMA rlsctl FROM {role}; REVOKE CREATE ON SCHEMA rlsctl FROM {role} \
                     (and any membership in the tables' owner)",
                    role = quote_ident(role)
                ),
            )
        })
        .collect();
    if bundle.shadow_executable && snap.shadow_tables().is_empty() {
        problems.push(Finding::problem(
            &BYP007,
            "rlsctl.shadow_seen(text, text)",
            format!(
                "{} can execute rlsctl.shadow_seen while no table is in shadow mode: it can write records the shadow report would count",
                target.app_role
            ),
            "rlsctl apply (it revokes EXECUTE when no table is in shadow mode)",
        ));
    }
    findings.check(
        &BYP007,
        problems,
        "only the roles that apply can write the bundle's records",
    );
}

/// Whether the app role can make `f` run: call it, or, for a trigger
/// function, write to a table one of its triggers is on. An event-trigger
/// function, or a trigger function on nothing the app writes, never runs on
/// its behalf.
fn app_runs(f: &Function) -> bool {
    match f.returns.as_str() {
        "trigger" => f.app_fires,
        "event_trigger" => false,
        _ => f.app_can_execute,
    }
}

/// The marker that records a review of a SECURITY DEFINER function in its
/// comment: `rlsctl:reviewed sha256=<hex of its source>`. A changed body no
/// longer matches, so monitor reports it again.
pub(crate) const REVIEWED_MARKER: &str = "rlsctl:reviewed sha256=";

/// The marker for `source`, as a reviewer puts it in the function's comment.
pub fn reviewed_marker(source: &str) -> String {
    use sha2::{Digest, Sha256};
    format!(
        "{REVIEWED_MARKER}{}",
        hex::encode(Sha256::digest(source.as_bytes()))
    )
}

/// BYP003 for one SECURITY DEFINER function the app role may execute.
///
/// Its body runs with its owner's rights. When the owner reads tenant rows
/// past RLS, the function must be shown free of tenant-table access — plain
/// SQL or PL/pgSQL with no dynamic SQL, no mention of a tenant table, a child
/// of one, a relation over them or with the tenant column, and no call to
/// another user function — or carry a review marker matching its source.
/// When the owner does not, it reads under its owner's policies; naming a
/// tenant table is still reported.
fn definer_finding(snap: &Snapshot, target: &Target, f: &Function) -> Option<Finding> {
    let app = &target.app_role;
    let remedy = format!(
        "REVOKE EXECUTE ON FUNCTION {sig} FROM {app}, PUBLIC; or make it SECURITY INVOKER; or, once reviewed, \
         COMMENT ON FUNCTION {sig} IS '{marker}'",
        sig = f.signature,
        app = quote_ident(app),
        marker = reviewed_marker(&f.source),
    );
    let reads: Vec<&str> = tenant_relations(snap)
        .filter(|(bare, _)| mentions(&f.source, bare))
        .map(|(_, shown)| shown)
        .collect();
    // An owner outside the reach set reads under the policies that apply to
    // it (the app role itself, a plain role): the function is no way round them.
    let reacher = snap.reaches(&f.owner)?;
    if let Some(at) = f.comment.find(REVIEWED_MARKER) {
        let hash = f.comment[at + REVIEWED_MARKER.len()..]
            .split_whitespace()
            .next()
            .unwrap_or_default();
        let recorded = format!("{REVIEWED_MARKER}{hash}");
        return (recorded != reviewed_marker(&f.source)).then(|| {
            Finding::problem(
                &BYP003,
                f.signature.clone(),
                format!("SECURITY DEFINER {} was marked reviewed, but its body changed since: review it again", f.signature),
                remedy.clone(),
            )
        });
    }
    let mut why: Vec<String> = Vec::new();
    if !matches!(f.language.as_str(), "sql" | "plpgsql") {
        why.push(format!(
            "it is written in {}, whose body cannot be read",
            f.language
        ));
    }
    if mentions(&f.source, "execute") {
        why.push("it runs dynamic SQL (EXECUTE)".into());
    }
    if !reads.is_empty() {
        why.push(format!("it reads {}", reads.join(", ")));
    }
    let calls: Vec<&str> = f
        .user_functions
        .iter()
        .filter(|name| **name != f.name && mentions(&f.source, name))
        .map(String::as_str)
        .collect();
    if !calls.is_empty() {
        why.push(format!(
            "it calls {}, which run with its rights too",
            calls.join(", ")
        ));
    }
    (!why.is_empty()).then(|| {
        Finding::problem(
            &BYP003,
            f.signature.clone(),
            format!(
                "{app} can {} SECURITY DEFINER {}, owned by {}, who reaches every row ({}), and it cannot be shown free of tenant-table access: {}",
                if f.returns == "trigger" { "fire" } else { "execute" },
                f.signature,
                f.owner,
                reacher.describe(),
                why.join("; ")
            ),
            remedy,
        )
    })
}

/// Every relation a function body might read tenant rows through, as (bare
/// name to look for, name to show): the tenant tables, their children, tables
/// with the tenant column, and views and materialized views over them.
fn tenant_relations(snap: &Snapshot) -> impl Iterator<Item = (&str, &str)> {
    snap.tables
        .iter()
        .map(|t| (t.name.as_str(), t.display.as_str()))
        .chain(
            snap.children
                .iter()
                .map(|c| (after_dot(&c.name), c.name.as_str())),
        )
        .chain(
            snap.uncovered
                .iter()
                .map(|(n, _)| (after_dot(n), n.as_str())),
        )
        .chain(
            snap.relations
                .iter()
                .map(|r| (r.bare_name.as_str(), r.name.as_str())),
        )
}

/// `table` of `schema.table`.
fn after_dot(name: &str) -> &str {
    name.split_once('.').map(|(_, t)| t).unwrap_or(name)
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

/// BYP008: a rule's action runs with the rights of its table's owner, not
/// of who fired it (a `DO ALSO SELECT` on a table the app role writes to
/// returns the rows it reads to the app). It reads past the policies when
/// that owner does.
pub(crate) fn byp008(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let app = &target.app_role;
    let bypasses = |r: &RewriteRule| {
        r.owner_bypasses || snap.reaches(&r.owner).is_some_and(|x| x.reads_as_itself)
    };
    let problems = snap
        .rules
        .iter()
        .filter(|r| r.app_fires && bypasses(r))
        .map(|r| {
            Finding::problem(
                &BYP008,
                format!("{} ON {}", r.name, r.table),
                format!(
                    "{app} fires rule {} with {} on {}; its action reads {} with the rights of the table's owner {}, who reads past the policies",
                    r.name,
                    r.event,
                    r.table,
                    r.reads.join(", "),
                    r.owner
                ),
                format!(
                    "DROP RULE {} ON {} (a trigger runs as who fires it); or REVOKE {} ON {} FROM {}",
                    quote_ident(&r.name),
                    r.table,
                    r.event,
                    r.table,
                    quote_ident(app)
                ),
            )
            .with_fingerprint(&r.definition_md5)
        })
        .collect();
    findings.check(
        &BYP008,
        problems,
        "no rule the app role fires reads tenant tables past the policies",
    );
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
