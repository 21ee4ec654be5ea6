//! Role checks: the app role itself, what it reaches through membership and
//! setting defaults, what it owns and what privileges it holds.

use super::*;
use crate::model::config::Target;
use crate::model::snapshot::Snapshot;
use crate::model::sql::{qualified, quote_ident};

/// ROLE001 (with `session_check`, for verify) to ROLE010, in catalogue order.
pub(crate) fn run(snap: &Snapshot, target: &Target, session_check: bool, findings: &mut Findings) {
    if session_check {
        role001(snap, target, findings);
    }
    if snap.app.exists {
        role002(snap, target, findings);
        role003(snap, target, findings);
        role004(snap, target, findings);
        role006(snap, target, findings);
    } else {
        let app = &target.app_role;
        let reason = format!("role {app} does not exist (run rlsctl apply)");
        for check in [ROLE002, ROLE003, ROLE004, ROLE006, ROLE009] {
            findings.push(Finding::problem(
                &check,
                app.clone(),
                reason.clone(),
                "rlsctl apply",
            ));
        }
    }
    role005(snap, target, findings);
    role007(snap, target, findings);
    role008(snap, target, findings);
    if snap.app.exists {
        role009(snap, target, findings);
    }
    role010(snap, target, findings);
}

/// One problem on the app role when `bad`.
fn on_app_role(
    check: &Check,
    app: &str,
    bad: bool,
    detail: String,
    remedy: String,
) -> Vec<Finding> {
    if bad {
        vec![Finding::problem(check, app, detail, remedy)]
    } else {
        vec![]
    }
}

/// ROLE001: verify runs as the app role (isolation is proven as the app connects).
pub(crate) fn role001(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let app = &target.app_role;
    let mut problems = Vec::new();
    if snap.session.session_user != *app {
        let why = snap
            .session_bypass_reason()
            .map(|r| format!("; {r}"))
            .unwrap_or_default();
        problems.push(Finding::problem(
            &ROLE001,
            snap.session.session_user.clone(),
            format!("connected as {}, not the app role {app}{why}: isolation must be proven as the app connects", snap.session.session_user),
            format!("connect as {app}: rlsctl verify -U {app}"),
        ));
    }
    let method = if snap.app.iam {
        "with IAM auth tokens (a member of rds_iam)"
    } else {
        "with a password"
    };
    findings.check(
        &ROLE001,
        problems,
        format!("connected as {app}, which logs in {method}"),
    );
}

/// ROLE002: the app role is not a superuser.
pub(crate) fn role002(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let app = &target.app_role;
    findings.check(
        &ROLE002,
        on_app_role(
            &ROLE002,
            app,
            snap.app.superuser,
            format!("{app} is a superuser: RLS never applies"),
            format!("ALTER ROLE {} NOSUPERUSER", quote_ident(app)),
        ),
        format!("{app} is not a superuser"),
    );
}

/// ROLE003: the app role does not have BYPASSRLS.
pub(crate) fn role003(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let app = &target.app_role;
    findings.check(
        &ROLE003,
        on_app_role(
            &ROLE003,
            app,
            snap.app.bypassrls,
            format!("{app} has BYPASSRLS"),
            format!("ALTER ROLE {} NOBYPASSRLS", quote_ident(app)),
        ),
        format!("{app} does not have BYPASSRLS"),
    );
}

/// ROLE004: the app role is not one of the roles that reach every row (the
/// whole set is listed when it passes).
pub(crate) fn role004(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let app = &target.app_role;
    let problems = snap
        .reaches(app)
        .map(|reacher| {
            let remedy = reacher.undo();
            Finding::problem(
                &ROLE004,
                app.clone(),
                format!(
                    "{app} reaches every row of {} tenant table(s): {}",
                    reacher.tables,
                    reacher.describe()
                ),
                remedy,
            )
        })
        .into_iter()
        .collect();
    let set: Vec<String> = snap.reach.iter().map(|r| r.describe()).collect();
    findings.check(
        &ROLE004,
        problems,
        format!(
            "{app} is none of the {} role(s) that reach every row: {}",
            set.len(),
            if set.is_empty() {
                "none".to_string()
            } else {
                set.join("; ")
            }
        ),
    );
}

/// ROLE006: no role, database or server default for the tenant setting.
pub(crate) fn role006(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let problems = snap
        .app_reach
        .setting_defaults
        .iter()
        .map(|d| {
            Finding::problem(
                &ROLE006,
                d.clone(),
                format!("{d}: every session starts with a tenant nobody asked for"),
                format!(
                    "ALTER ROLE ... RESET {} (or ALTER DATABASE ... RESET {})",
                    target.tenant_setting, target.tenant_setting
                ),
            )
        })
        .collect();
    findings.check(
        &ROLE006,
        problems,
        format!("no default for {}", target.tenant_setting),
    );
}

/// ROLE005: the app role owns no tenant table without FORCE.
pub(crate) fn role005(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let app = &target.app_role;
    let problems = snap
        .tables
        .iter()
        .filter(|t| t.exists && t.app_owns && !t.force)
        .map(|t| {
            Finding::problem(
                &ROLE005,
                t.display.clone(),
                format!("{app} owns (or is a member of the owner {} of) {} and FORCE is off: the owner bypasses RLS", t.owner.clone().unwrap_or_default(), t.display),
                format!("ALTER TABLE {} FORCE ROW LEVEL SECURITY; better, make another role the owner", qualified(&target.schema, &t.name)),
            )
        })
        .collect();
    findings.check(
        &ROLE005,
        problems,
        format!("{app} owns no unforced tenant table"),
    );
}

/// ROLE007: no TRUNCATE, REFERENCES or TRIGGER for the app role, now or by default.
pub(crate) fn role007(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let app = &target.app_role;
    let mut problems: Vec<Finding> = snap
        .tables
        .iter()
        .filter(|t| !t.app_forbidden_privileges.is_empty())
        .map(|t| {
            let privileges = t.app_forbidden_privileges.join(", ");
            Finding::problem(
                &ROLE007,
                t.display.clone(),
                format!("{app} holds {privileges} on {}: TRUNCATE and REFERENCES are not subject to row security", t.display),
                format!("REVOKE {privileges} ON {} FROM {} (and from PUBLIC or any role it is a member of)", qualified(&target.schema, &t.name), quote_ident(app)),
            )
        })
        .collect();
    problems.extend(snap.app_reach.default_privileges.iter().map(|d| {
        Finding::problem(
            &ROLE007,
            d.clone(),
            format!("default privileges grant {d} on every table created later: a new tenant table would come with them"),
            "ALTER DEFAULT PRIVILEGES FOR ROLE <owner> [IN SCHEMA <schema>] REVOKE TRUNCATE, REFERENCES, TRIGGER ON TABLES FROM <grantee>",
        )
    }));
    findings.check(
        &ROLE007,
        problems,
        "no TRUNCATE, REFERENCES or TRIGGER for the app role",
    );
}

/// ROLE008: whoever owns a table can ALTER TABLE ... DISABLE ROW LEVEL
/// SECURITY, FORCE or not; membership is followed however it was granted
/// (INHERIT or not: a member can SET ROLE).
pub(crate) fn role008(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let app = &target.app_role;
    let problems = snap
        .tables
        .iter()
        .filter(|t| t.exists && t.app_owns)
        .map(|t| {
            let owner = t.owner.clone().unwrap_or_default();
            let how = if owner == *app {
                format!("{app} owns {}", t.display)
            } else {
                format!(
                    "{app} is a member (directly or transitively) of {owner}, the owner of {}",
                    t.display
                )
            };
            Finding::problem(
                &ROLE008,
                t.display.clone(),
                format!(
                    "{how}: it can turn RLS off with ALTER TABLE ... DISABLE ROW LEVEL SECURITY"
                ),
                if owner == *app {
                    format!(
                        "ALTER TABLE {} OWNER TO <a role the app cannot reach>",
                        qualified(&target.schema, &t.name)
                    )
                } else {
                    format!(
                        "REVOKE {} FROM {} (on the membership path)",
                        quote_ident(&owner),
                        quote_ident(app)
                    )
                },
            )
        })
        .collect();
    findings.check(
        &ROLE008,
        problems,
        format!("{app} cannot reach the owner of any tenant table"),
    );
}

/// ROLE009: CREATEROLE can grant itself roles (on PostgreSQL 15 and older any
/// non-superuser role: the break-glass role, a table's owner).
pub(crate) fn role009(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let app = &target.app_role;
    let problems = snap
        .app_reach
        .createrole_roles
        .iter()
        .map(|role| {
            let name = &role.name;
            // The app role's own attribute goes; for a role it reaches (the
            // RDS master, say), the grant that leads there does, as the role
            // itself may need CREATEROLE.
            let (detail, remedy) = match &role.granted {
                None => (
                    format!("{app} has CREATEROLE: it can grant itself other roles (any non-superuser one on PostgreSQL 15 and older)"),
                    format!("ALTER ROLE {} NOCREATEROLE", quote_ident(app)),
                ),
                Some(granted) => (
                    format!("{app} reaches {name}, which has CREATEROLE: through it, it can grant itself other roles"),
                    format!("REVOKE {} FROM {}", quote_ident(granted), quote_ident(app)),
                ),
            };
            Finding::problem(&ROLE009, name.clone(), detail, remedy)
        })
        .collect();
    findings.check(
        &ROLE009,
        problems,
        format!("neither {app} nor any role it reaches has CREATEROLE"),
    );
}

/// ROLE010: default privileges that grant the app role SELECT on tables
/// created later make a new tenant table readable across tenants from the
/// moment a migration creates it until apply covers it (RLS006 then fails).
/// A warning: it is a common, deliberate setup, and the window is the
/// operator's to close.
pub(crate) fn role010(snap: &Snapshot, target: &Target, findings: &mut Findings) {
    let app = &target.app_role;
    let problems = snap
        .app_reach
        .default_select
        .iter()
        .map(|d| {
            Finding::problem(
                &ROLE010,
                d.clone(),
                format!("default privileges grant SELECT to {d}: a tenant table created later is readable across tenants until rlsctl apply covers it"),
                "run rlsctl apply in the migration that creates a tenant table; or grant SELECT per table: ALTER DEFAULT PRIVILEGES FOR ROLE <owner> [IN SCHEMA <schema>] REVOKE SELECT ON TABLES FROM <app role>",
            )
        })
        .collect();
    findings.check(
        &ROLE010,
        problems,
        format!("no default privilege grants {app} SELECT on tables created later"),
    );
}
