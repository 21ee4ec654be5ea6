//! Drift: the live catalog against what the bundle recorded when applied.

use super::{
    Finding, Findings, Rule, DRF001, DRF002, DRF003, DRF004, DRF005, DRF006, DRF007, DRF008,
    DRF009, DRF010,
};
use crate::model::config::{Target, BUNDLE_SCHEMA, HELPER_FUNCTION, POLICY_NAME};
use crate::model::policy::normalize;
use crate::model::snapshot::{Command, Policy, Reacher, Snapshot};
use crate::model::sql::helper_body;
use crate::model::sql::quote_ident;
use std::collections::{HashMap, HashSet};

/// Runs the drift checks on the snapshot, in catalogue order.
pub(crate) fn run(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    if !snap.bundle.installed {
        findings.push(Finding::problem(
            &DRF001,
            "schema rlsctl",
            "the bundle was never applied to this database",
            "rlsctl apply",
        ));
        let reason = "the bundle is not installed";
        findings.skip_all(&[DRF002, DRF003, DRF004, DRF005, DRF006], reason);
        // DRF007 runs all the same (a schema of that name may have been planted).
        drf007(snap, target, findings);
        findings.skip_all(&[DRF008, DRF009, DRF010], reason);
        return;
    }
    findings.push(Finding::pass(
        &DRF001,
        None,
        format!(
            "last applied by {}",
            snap.bundle.last_apply.clone().unwrap_or_else(|| "?".into())
        ),
    ));
    for rule in RULES {
        rule(snap, target, findings);
    }
}

/// DRF002 to DRF010, in catalogue order, once the bundle is installed.
const RULES: [Rule; 9] = [
    drf002, drf003, drf004, drf005, drf006, drf007, drf008, drf009, drf010,
];

/// DRF002: each installed table's isolation policy is still what apply
/// deparsed, and no permissive policy for the app role appeared beside it.
pub(crate) fn drf002(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let mut problems: Vec<Finding> = snap
        .bundle
        .registry
        .iter()
        .filter_map(|installed| {
            let display = target.display_table(&installed.table);
            let policy = snap.policies_on(&display).find(|p| p.name == POLICY_NAME);
            let detail = isolation_policy_changed(installed, policy, target)?;
            Some(Finding::problem(
                &DRF002,
                display,
                detail,
                "rlsctl apply (re-installs the policy)",
            ))
        })
        .collect();
    problems.extend(permissive_beside(snap, target));
    findings.check(&DRF002, problems, "every isolation policy is as installed");
}

/// How an installed table's isolation policy differs from what apply
/// installed; `None` when it does not.
fn isolation_policy_changed(
    installed: &crate::model::snapshot::Installed,
    policy: Option<&Policy>,
    target: &Target,
) -> Option<String> {
    let Some(p) = policy else {
        return Some("the tenant_isolation policy was dropped".to_string());
    };
    // (the same text, as when the read reused apply's, needs no normalizing)
    let same = |now: &Option<String>, then: &str| {
        now.as_deref()
            .is_some_and(|n| n == then || normalize(n) == normalize(then))
    };
    let (using, check) = (&installed.using, &installed.check);
    if !same(&p.using, using) {
        Some(format!(
            "USING changed from {using} to {}",
            p.using.clone().unwrap_or_else(|| "nothing".into())
        ))
    } else if !same(&p.check, check) {
        Some(format!(
            "WITH CHECK changed from {check} to {}",
            p.check.clone().unwrap_or_else(|| "nothing".into())
        ))
    } else if !p.using_builtin || !p.check_builtin {
        Some("the policy's text is as installed but its structure is not: it compares another column, or uses a user-defined operator, function or type".to_string())
    } else if p.roles != [target.app_role.as_str()] {
        Some(format!(
            "the policy now applies to {} instead of {}",
            p.roles.join(", "),
            target.app_role
        ))
    } else if !p.permissive || p.cmd != Command::All {
        Some("the policy is no longer PERMISSIVE FOR ALL".to_string())
    } else {
        None
    }
}

/// Permissive policies for the app role beside the isolation policy of an
/// installed table: each widens what it sees. One the last apply found and
/// left (kept, or refused and accepted) was there before: drift only if it
/// changed since.
fn permissive_beside(snap: &Snapshot, target: &Target) -> Vec<Finding> {
    let bundle = &snap.bundle;
    let registered: std::collections::HashSet<String> = bundle
        .registry
        .iter()
        .map(|r| target.display_table(&r.table))
        .collect();
    let found_at_apply = |p: &Policy| {
        bundle
            .recorded_existing
            .iter()
            .flatten()
            .find(|r| r.table == p.table && r.name == p.name && r.disposition != "replaced")
    };
    snap.policies
        .iter()
        .filter(|p| {
            p.name != POLICY_NAME
                && p.permissive
                && p.applies_to_app
                && registered.contains(&p.table)
        })
        .filter_map(|p| {
            let detail = match found_at_apply(p) {
                None => format!("permissive policy {} appeared after apply", p.name),
                Some(then) if same_text(&then.using, &p.using) && same_text(&then.check, &p.check) => {
                    return None
                }
                Some(then) => format!(
                    "permissive policy {}, present at apply and left as it was, changed since: USING {} → {}, WITH CHECK {} → {}",
                    p.name,
                    then.using.as_deref().unwrap_or("none"),
                    p.using.as_deref().unwrap_or("none"),
                    then.check.as_deref().unwrap_or("none"),
                    p.check.as_deref().unwrap_or("none"),
                ),
            };
            Some(Finding::problem(
                &DRF002,
                format!("{} policy {}", p.table, p.name),
                detail,
                format!(
                    "review it; DROP POLICY {} ON {} unless it is meant to widen access",
                    quote_ident(&p.name),
                    p.table
                ),
            ))
        })
        .collect()
}

/// Two deparsed expressions (or both none) say the same.
fn same_text(then: &Option<String>, now: &Option<String>) -> bool {
    match (then, now) {
        (Some(a), Some(b)) => a == b || normalize(a) == normalize(b),
        (a, b) => a == b,
    }
}

/// DRF003: no break-glass is active.
pub(crate) fn drf003(snap: &Snapshot, _: &Target, findings: &mut Findings) {
    let bundle = &snap.bundle;
    let problems = bundle
        .open_break_glass
        .iter()
        .map(|b| {
            Finding::problem(
                &DRF003,
                b.tables.join(", "),
                format!(
                    "break-glass active: RLS disabled on {} since {} by {}, reason: {}",
                    b.tables.join(", "),
                    b.started_at,
                    b.started_by,
                    b.reason
                ),
                "rlsctl rollback --restore",
            )
        })
        .collect();
    findings.check(&DRF003, problems, "no break-glass is active");
}

/// DRF005: the bundle's helper function is unchanged.
pub(crate) fn drf005(snap: &Snapshot, _: &Target, findings: &mut Findings) {
    let helper = snap
        .functions
        .iter()
        .find(|f| f.schema == BUNDLE_SCHEMA && f.name == HELPER_FUNCTION);
    let problem = match helper {
        None => Some("rlsctl.null_tenant_counts() is missing or no longer SECURITY DEFINER"),
        Some(f) if f.source != helper_body() => {
            Some("rlsctl.null_tenant_counts() was replaced with other code")
        }
        Some(f) if !f.search_path_ends_with_pg_temp() => {
            Some("rlsctl.null_tenant_counts() lost its pinned search_path")
        }
        Some(_) => None,
    };
    let problems = problem
        .map(|d| {
            vec![Finding::problem(
                &DRF005,
                "rlsctl.null_tenant_counts()",
                d,
                "rlsctl apply",
            )]
        })
        .unwrap_or_default();
    findings.check(&DRF005, problems, "the helper function is as installed");
}

/// DRF006: configuration and registry agree (a partition counts as configured
/// with its parent: one created after apply has no RLS and no policy).
pub(crate) fn drf006(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let bundle = &snap.bundle;
    let installed: std::collections::HashSet<&str> =
        bundle.registry.iter().map(|r| r.table.as_str()).collect();
    let configured: std::collections::HashSet<&str> =
        snap.tables.iter().map(|t| t.name.as_str()).collect();
    let mut problems: Vec<Finding> = snap
        .tables
        .iter()
        .filter(|t| !installed.contains(t.name.as_str()))
        .map(|t| {
            let detail = match &t.partition_of {
                Some(root) => format!(
                    "a partition of {root} the last apply did not install (created or attached since): \
                     a partition inherits neither RLS nor its parent's policies, and querying it directly skips the parent's"
                ),
                None => "configured but not installed by the last apply".to_string(),
            };
            Finding::problem(&DRF006, t.display.clone(), detail, "rlsctl apply")
        })
        .collect();
    let mut removed: Vec<&&str> = installed
        .iter()
        .filter(|t| !configured.contains(**t))
        .collect();
    removed.sort();
    problems.extend(removed.into_iter().map(|t| {
        Finding::problem(
            &DRF006,
            target.display_table(t),
            "installed but no longer configured (or no longer a partition of a configured table): monitor does not check it",
            "add it back to RLSCTL_TENANT_TABLES; or rlsctl apply to forget it (its RLS stays), or rlsctl rollback --uninstall and re-apply",
        )
    }));
    findings.check(
        &DRF006,
        problems,
        "the configured tables are the installed ones",
    );
}

/// DRF004: a role that reaches every row now and did not when apply recorded
/// the set, or one that could not log in then and can now, named with its
/// path. A set that shrank is information. An apply by an older rlsctl
/// recorded only superusers and BYPASSRLS roles: those are compared then.
pub(crate) fn drf004(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let bundle = &snap.bundle;
    let Some(recorded) = &bundle.recorded_reach else {
        drf004_before_the_reach_set(snap, target, findings);
        return;
    };
    let then: HashMap<&str, &Reacher> = recorded.iter().map(|r| (r.role.as_str(), r)).collect();
    // A set recorded by an rlsctl that did not yet count the ways below row
    // security (every major has pg_execute_server_program, so a set recorded
    // since does hold one): the roles without LOGIN that reach rows only so,
    // the predefined roles themselves, were there then too.
    let recorded_below = recorded.iter().any(|r| r.kind.below_row_security());
    let mut unrecorded = Vec::new();
    let mut problems = Vec::new();
    for now in &snap.reach {
        if !recorded_below
            && now.kind.below_row_security()
            && !now.login
            && !then.contains_key(now.role.as_str())
        {
            unrecorded.push(now.role.as_str());
            continue;
        }
        let remedy = format!("{}; or, if intended, rlsctl apply to record it", now.undo());
        match then.get(now.role.as_str()) {
            None => problems.push(Finding::problem(
                &DRF004,
                now.role.clone(),
                format!(
                    "{} now reaches every row of {} tenant table(s) and did not when the bundle was applied: {}",
                    now.role,
                    now.tables,
                    now.describe()
                ),
                remedy,
            )),
            Some(before) if now.login && !before.login => problems.push(Finding::problem(
                &DRF004,
                now.role.clone(),
                format!(
                    "{} can now log in, and it reaches every row: {}",
                    now.role,
                    now.describe()
                ),
                format!("ALTER ROLE {} NOLOGIN; or, if intended, rlsctl apply to record it", quote_ident(&now.role)),
            )),
            Some(_) => {}
        }
    }
    let live: HashSet<&str> = snap.reach.iter().map(|r| r.role.as_str()).collect();
    let mut gone: Vec<&str> = then.keys().copied().filter(|r| !live.contains(r)).collect();
    gone.sort();
    let mut pass = if gone.is_empty() {
        format!(
            "the {} role(s) that reach every row are those apply recorded",
            snap.reach.len() - unrecorded.len()
        )
    } else {
        format!(
            "no role joined those that reach every row; {} no longer do",
            gone.join(", ")
        )
    };
    if !unrecorded.is_empty() {
        pass.push_str(&format!(
            "; {} reach(es) rows below row security, which the rlsctl that applied did not record (rlsctl apply records it)",
            unrecorded.join(", ")
        ));
    }
    findings.check(&DRF004, problems, pass);
}

/// DRF008: the registry is what monitor compares with: edited behind apply's
/// back, it could hide a changed policy.
pub(crate) fn drf008(snap: &Snapshot, _: &Target, findings: &mut Findings) {
    let bundle = &snap.bundle;
    match &bundle.registry_checksum {
        Some((Some(recorded), live)) if recorded != live => findings.push(Finding::problem(
            &DRF008,
            "rlsctl.tenant_tables",
            format!(
                "the installed-table registry was changed outside apply since the last apply ({}): what monitor compares the policies with can no longer be trusted",
                bundle.last_apply.clone().unwrap_or_else(|| "?".into())
            ),
            "find who changed it (see BYP007), then rlsctl apply to rewrite it from the live policies after reviewing them",
        )),
        Some((Some(_), _)) => findings.push(Finding::pass(
            &DRF008,
            None,
            "the installed-table registry is as the last apply wrote it",
        )),
        _ => findings.push(Finding::skip(
            &DRF008,
            "the last apply recorded no checksum of the registry (an older rlsctl): rlsctl apply records it",
        )),
    }
}

/// DRF009: the logging apply set up for the break-glass role is still there.
pub(crate) fn drf009(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let admin = &target.admin_role;
    match &snap.bundle.recorded_logging {
        Some(recorded) => {
            let (name, value) = recorded.split_once('=').unwrap_or((recorded, ""));
            if snap.admin.has_setting(name, value) {
                findings.push(Finding::pass(
                    &DRF009,
                    None,
                    format!("every statement of {admin} is logged ({recorded})"),
                ));
            } else {
                findings.push(Finding::problem(
                    &DRF009,
                    admin.clone(),
                    format!("{recorded} was removed from {admin}: its statements are no longer logged"),
                    format!("rlsctl apply (it sets {recorded} for {admin} again)"),
                ));
            }
        }
        None => findings.push(Finding::skip(
            &DRF009,
            format!("the last apply could not turn on statement logging for {admin} (see PRE010 and docs/runbook.md)"),
        )),
    }
}

/// DRF010: sessions logged in as the break-glass role now (an emergency, or
/// someone using it who should not).
pub(crate) fn drf010(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let admin = &target.admin_role;
    let sessions = &snap.session.break_glass_sessions;
    if sessions.is_empty() {
        findings.push(Finding::pass(
            &DRF010,
            None,
            format!("no session is logged in as {admin}"),
        ));
    } else {
        findings.push(Finding::warn(
            &DRF010,
            Some(admin.clone()),
            format!(
                "{} session(s) logged in as {admin} now ({}): break-glass is for emergencies only",
                sessions.len(),
                sessions.join(", ")
            ),
            "if there is no incident: SELECT pg_terminate_backend(pid) and find out who logged in (the server log has every statement)",
        ));
    }
}

/// DRF004 for an apply by an older rlsctl, which recorded only superusers
/// and BYPASSRLS roles: those are compared.
fn drf004_before_the_reach_set(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let Some(recorded) = &snap.bundle.recorded_bypass_roles else {
        findings.push(Finding::skip(
            &DRF004,
            "no bundle history row records who reached every row",
        ));
        return;
    };
    let problems = snap
        .session
        .bypass_roles
        .iter()
        .filter(|r| !recorded.contains(r) && **r != target.admin_role)
        .map(|r| {
            Finding::problem(
                &DRF004,
                r.clone(),
                format!("{r} is superuser or BYPASSRLS and was not when the bundle was applied"),
                format!("ALTER ROLE {r} NOBYPASSRLS (or NOSUPERUSER), or re-apply to accept it"),
            )
        })
        .collect();
    findings.check(
        &DRF004,
        problems,
        "no new superuser or BYPASSRLS role (the last apply predates the reach set: apply again to record it)",
    );
}

/// DRF007: the bundle's own schema, as apply made it (also when a schema of
/// that name exists but the bundle was never installed: something planted it).
pub(crate) fn drf007(snap: &Snapshot, _: &Target, findings: &mut Findings) {
    let bundle = &snap.bundle;
    let mut problems: Vec<Finding> = Vec::new();
    if let Some((owner, owner_is_superuser)) = &bundle.schema_owner {
        if !owner_is_superuser && !bundle.appliers.contains(owner) {
            problems.push(Finding::problem(
                &DRF007,
                "schema rlsctl",
                format!("schema rlsctl is owned by {owner}, who never applied the bundle"),
                "as a superuser: ALTER SCHEMA rlsctl OWNER TO <the role that applies>; then rlsctl apply",
            ));
        }
    }
    problems.extend(bundle.foreign_objects.iter().map(|o| {
        Finding::problem(
            &DRF007,
            o.clone(),
            format!("{o}: not made by the bundle, in or on its schema (code there runs as whoever applies)"),
            "as a superuser, inspect and drop it",
        )
    }));
    findings.check(
        &DRF007,
        problems,
        "the rlsctl schema holds only what the bundle made",
    );
}
