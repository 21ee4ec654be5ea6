//! Pre-flight checks: what apply checks before it changes anything. A failure
//! refuses the apply (exit 1) with nothing changed; a warning is reported and
//! the apply goes on.

use super::performance::{tenant_index_remedy, unindexed};
use super::*;
use crate::model::config::Target;
use crate::model::snapshot::{ReachKind, Reacher, Snapshot};
use crate::model::sql::quote_ident;

/// A table with rows whose tenant column is NULL.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct NullRows {
    /// `schema.table`.
    pub(crate) table: String,
    /// How many rows.
    pub(crate) rows: i64,
}

/// What the pre-flight looks at besides the snapshot.
#[derive(Debug, Default)]
pub(crate) struct Inputs<'a> {
    /// A password for the app role was given.
    pub(crate) app_password: bool,
    /// `--no-app-password`: the app role authenticates by IAM.
    pub(crate) no_app_password: bool,
    /// Changes the plan needs that the session may not make (see `plan::build`).
    pub(crate) blocked: &'a [String],
    /// NULL-tenant rows counted on the tables the session can see whole.
    pub(crate) null_rows: &'a [NullRows],
    /// The transactions the tenant tables go in (the first transaction of a
    /// run decides; a later batch has none).
    pub(crate) batching: Option<&'a crate::model::batches::Batching>,
    /// The policies on the tenant tables apply did not create, and what the
    /// plan does with each.
    pub(crate) existing_policies: &'a [crate::model::plan::existing::ExistingPolicy],
}

/// PRE001 to PRE012, in catalogue order.
pub(crate) fn run(snap: &Snapshot, target: &Target, inputs: &Inputs, findings: &mut Findings) {
    for rule in RULES {
        rule(snap, target, inputs, findings);
    }
}

/// A pre-flight rule: the snapshot and what apply was given.
type PreflightRule = fn(&Snapshot, &Target, &Inputs, &mut Findings);

const RULES: [PreflightRule; 14] = [
    pre001, pre002, pre003, pre004, pre005, pre006, pre007, pre008, pre009, pre010, pre011, pre012,
    pre013, pre014,
];

/// PRE001: the applying role may make every change the plan needs.
pub(crate) fn pre001(snap: &Snapshot, _: &Target, inputs: &Inputs, findings: &mut Findings) {
    let s = &snap.session;
    let user = &s.user;
    let mut problems = Vec::new();
    if !s.superuser && !s.createrole && (!snap.app.exists || !snap.admin.exists) {
        problems.push(Finding::problem(
            &PRE001,
            user.clone(),
            format!("{user} is neither superuser nor CREATEROLE, and the bundle's roles do not exist yet"),
            "apply as the RDS master (CREATEROLE) or a superuser",
        ));
    }
    if !s.superuser && !snap.bundle.installed && !s.can_create_schema {
        problems.push(Finding::problem(
            &PRE001,
            user.clone(),
            format!(
                "{user} lacks CREATE on database {} (needed for the rlsctl schema)",
                s.database
            ),
            format!(
                "GRANT CREATE ON DATABASE {} TO {}",
                quote_ident(&s.database),
                quote_ident(user)
            ),
        ));
    }
    for blocked in inputs.blocked {
        problems.push(Finding::problem(
            &PRE001,
            user.clone(),
            blocked.clone(),
            "run the statement quoted as a role that may, then apply again",
        ));
    }
    findings.check(
        &PRE001,
        problems,
        format!("{user} may make every change the plan needs"),
    );
}

/// PRE002: every configured tenant table exists and has the tenant column.
pub(crate) fn pre002(snap: &Snapshot, target: &Target, _: &Inputs, findings: &mut Findings) {
    let problems = snap
        .tables
        .iter()
        .filter(|t| !t.exists || !t.has_column)
        .map(|t| {
            let detail = if !t.exists {
                t.missing()
            } else {
                format!(
                    "table {} has no column {:?}",
                    t.display, target.tenant_column
                )
            };
            Finding::problem(
                &PRE002,
                t.display.clone(),
                detail,
                "fix RLSCTL_TENANT_TABLES / RLSCTL_TENANT_COLUMN, or the table",
            )
        })
        .collect();
    findings.check(
        &PRE002,
        problems,
        "every tenant table exists with the tenant column",
    );
}

/// PRE003: ALTER TABLE and CREATE POLICY need the owner's privileges: the
/// session must be the owner or an inheriting member of it.
pub(crate) fn pre003(snap: &Snapshot, _: &Target, _: &Inputs, findings: &mut Findings) {
    let s = &snap.session;
    let user = &s.user;
    let mut not_owned: std::collections::BTreeMap<&str, Vec<&str>> = Default::default();
    if !s.superuser {
        for t in snap.tables.iter().filter(|t| t.exists && !t.session_owns) {
            not_owned
                .entry(t.owner.as_deref().unwrap_or("?"))
                .or_default()
                .push(&t.display);
        }
    }
    let problems = not_owned
        .into_iter()
        .map(|(owner, tables)| {
            Finding::problem(
                &PRE003,
                tables.join(", "),
                format!(
                    "{} {} owned by {owner}, and {user} is not a member of {owner}",
                    tables.join(", "),
                    if tables.len() == 1 { "is" } else { "are" },
                ),
                format!(
                    "as an admin of {owner} (or a superuser): GRANT {} TO {}; or run apply as {owner}",
                    quote_ident(owner),
                    quote_ident(user)
                ),
            )
        })
        .collect();
    findings.check(
        &PRE003,
        problems,
        format!("{user} has the owner's privileges on every tenant table"),
    );
}

/// PRE004: a new app role gets a password (or IAM authentication is asked for).
pub(crate) fn pre004(snap: &Snapshot, target: &Target, inputs: &Inputs, findings: &mut Findings) {
    let problems = if !snap.app.exists && !inputs.app_password && !inputs.no_app_password {
        vec![Finding::problem(
            &PRE004,
            target.app_role.clone(),
            format!(
                "role {} does not exist and no password was given",
                target.app_role
            ),
            "pass --app-password-from, or --app-iam for IAM database authentication",
        )]
    } else {
        vec![]
    };
    findings.check(
        &PRE004,
        problems,
        format!("{} exists or gets a password", target.app_role),
    );
}

/// PRE005: no row has a NULL tenant column before the cutover (a table whose
/// rows RLS hides from the session cannot be counted: a warning).
pub(crate) fn pre005(snap: &Snapshot, target: &Target, inputs: &Inputs, findings: &mut Findings) {
    let user = &snap.session.user;
    let mut problems: Vec<Finding> = inputs
        .null_rows
        .iter()
        .map(|n| {
            Finding::problem(
                &PRE005,
                n.table.clone(),
                format!(
                    "{} has {} row(s) whose {} is NULL: no tenant would see them after the cutover",
                    n.table, n.rows, target.tenant_column
                ),
                "assign them a tenant or delete them",
            )
        })
        .collect();
    let hidden: Vec<&str> = snap
        .tables
        .iter()
        .filter(|t| t.exists && t.has_column && !snap.session_sees_all(t))
        .map(|t| t.display.as_str())
        .collect();
    if !hidden.is_empty() {
        problems.push(Finding::warn(
            &PRE005,
            Some(hidden.join(", ")),
            format!(
                "RLS hides rows of {} from {user}, so their NULL-tenant rows cannot be counted before the change",
                hidden.join(", ")
            ),
            "after apply, verify and monitor count them through the break-glass role (RLS007)",
        ));
    }
    findings.check(
        &PRE005,
        problems,
        format!("no row has a NULL {}", target.tenant_column),
    );
}

/// PRE006: every tenant table has an index led by the tenant column.
pub(crate) fn pre006(snap: &Snapshot, target: &Target, _: &Inputs, findings: &mut Findings) {
    let problems = unindexed(snap)
        .map(|t| {
            Finding::problem(
                &PRE006,
                t.display.clone(),
                format!(
                    "{} has no btree index led by {}: every tenant query scans the table",
                    t.display, target.tenant_column
                ),
                format!(
                    "before the cutover: {}",
                    tenant_index_remedy(target, &t.name)
                ),
            )
        })
        .collect();
    findings.check(
        &PRE006,
        problems,
        "every tenant table has an index led by the tenant column",
    );
}

/// PRE007: roles that read tenant tables today keep their rows after FORCE.
pub(crate) fn pre007(snap: &Snapshot, target: &Target, _: &Inputs, findings: &mut Findings) {
    let problems = snap
        .losing_readers
        .iter()
        .map(|(role, tables)| {
            let tables: Vec<String> = tables.iter().map(|t| target.display_table(t)).collect();
            Finding::problem(
                &PRE007,
                role.clone(),
                format!(
                    "{role} reads {} today and will read no rows once RLS is forced (no policy applies to it)",
                    tables.join(", ")
                ),
                "if it runs backups, replication or ETL, see \"Backups and other readers\" in docs/runbook.md",
            )
        })
        .collect();
    findings.check(&PRE007, problems, "no other role reads tenant tables today");
}

/// PRE008: apply writes into the rlsctl schema as the applying role; a
/// trigger, rule, default or function someone else planted there would run
/// with its rights (CREATE SCHEMA / TABLE IF NOT EXISTS accept what exists).
pub(crate) fn pre008(snap: &Snapshot, _: &Target, _: &Inputs, findings: &mut Findings) {
    let s = &snap.session;
    let user = &s.user;
    // trigger, rule, default or function someone else planted there would run
    // with its rights (CREATE SCHEMA / TABLE IF NOT EXISTS accept what exists).
    let bundle = &snap.bundle;
    let mut problems: Vec<Finding> = Vec::new();
    if let Some((owner, owner_is_superuser)) = &bundle.schema_owner {
        if owner != user && !(*owner_is_superuser && s.superuser) {
            problems.push(Finding::problem(
                &PRE008,
                "schema rlsctl",
                format!("schema rlsctl exists and is owned by {owner}, not by {user}: apply will not run in a schema another role controls"),
                format!("as a superuser, inspect it; if the bundle was never applied: DROP SCHEMA rlsctl CASCADE; otherwise ALTER SCHEMA rlsctl OWNER TO {}", quote_ident(user)),
            ));
        }
    }
    problems.extend(bundle.foreign_objects.iter().map(|o| {
        Finding::problem(
            &PRE008,
            o.clone(),
            format!("{o}: the bundle did not make it, and it would run or be trusted as {user}"),
            "as a superuser, inspect and drop it, then apply again",
        )
    }));
    findings.check(
        &PRE008,
        problems,
        "the rlsctl schema is absent or holds only what the bundle made",
    );
}

/// PRE009: what apply's locks take from the lock table every session shares.
pub(crate) fn pre009(_: &Snapshot, _: &Target, inputs: &Inputs, findings: &mut Findings) {
    if let Some(batching) = inputs.batching {
        if batching.split() {
            findings.push(Finding::problem(
                &PRE009,
                format!("{} tenant tables", batching.tables),
                format!(
                    "apply will run in {} transactions of up to {} tables: {}",
                    batching.batches, batching.batch_size, batching.reason
                ),
                if batching.forced {
                    "as asked; without --batch-size apply takes one transaction where the lock table allows"
                } else {
                    "accept the batches (see \"Many tables\" in docs/runbook.md), or raise max_locks_per_transaction as \
                     printed (on RDS a parameter-group change and a reboot) to keep it to one transaction"
                },
            ));
        } else {
            findings.push(Finding::pass(&PRE009, None, batching.reason.clone()));
        }
    }
}

/// PRE010: break-glass use must be logged ("log all usage").
pub(crate) fn pre010(snap: &Snapshot, target: &Target, _: &Inputs, findings: &mut Findings) {
    let user = &snap.session.user;
    let admin = quote_ident(&target.admin_role);
    match snap.break_glass_logging() {
        Some(crate::model::snapshot::RoleSetting { name, value }) => findings.push(Finding::pass(
            &PRE010,
            None,
            format!("every statement of {} will be logged ({name} = '{value}' for the role)", target.admin_role),
        )),
        None => findings.push(Finding::problem(
            &PRE010,
            target.admin_role.clone(),
            format!(
                "{user} may set neither pgaudit.log nor log_statement for {}: break-glass use will not be logged",
                target.admin_role
            ),
            format!(
                "on RDS: add pgaudit to shared_preload_libraries in the parameter group, reboot, CREATE EXTENSION pgaudit, \
                 and apply again (it sets pgaudit.log = 'all' for the role); elsewhere, as a superuser: \
                 ALTER ROLE {admin} SET log_statement = 'all'"
            ),
        )),
    }
}

/// PRE011: every policy apply did not create either stays harmlessly (listed
/// in the plan) or is replaced because `--replace-policies` asked for it.
pub(crate) fn pre011(_: &Snapshot, target: &Target, inputs: &Inputs, findings: &mut Findings) {
    use crate::model::plan::existing::{remedy, Disposition};
    let existing = inputs.existing_policies;
    let problems = existing
        .iter()
        .filter(|p| p.disposition == Disposition::Refused)
        .map(|p| {
            Finding::problem(
                &PRE011,
                format!("{} policy {}", p.table, p.name),
                format!("{}: {}", p.describe(), p.why),
                remedy(target, p),
            )
        })
        .collect();
    let count = |d: Disposition| existing.iter().filter(|p| p.disposition == d).count();
    findings.check(
        &PRE011,
        problems,
        if existing.is_empty() {
            "every policy on the tenant tables is the bundle's".to_string()
        } else {
            format!(
                "{} policy(ies) apply did not create: {} kept, {} replaced (listed in the plan)",
                existing.len(),
                count(Disposition::Kept),
                count(Disposition::Replaced)
            )
        },
    );
}

/// PRE012: the app role must not reach every row before the cutover: the
/// bundle would record that as the baseline monitor compares with, and
/// isolation would hold for nobody. A reach through a policy apply did not
/// create is PRE011's.
pub(crate) fn pre012(snap: &Snapshot, target: &Target, _: &Inputs, findings: &mut Findings) {
    let app = &target.app_role;
    // A reach through a policy apply did not create is PRE011's.
    let foreign_policy = |r: &Reacher| {
        r.kind == ReachKind::Policy
            && r.policy.as_deref() != Some(crate::model::config::ADMIN_POLICY_NAME)
    };
    let problems = snap
        .reach
        .iter()
        .filter(|r| &r.role == app && !foreign_policy(r))
        .map(|r| {
            let remedy = r.undo();
            Finding::problem(
                &PRE012,
                app.clone(),
                format!(
                    "{app} already reaches every row: {}; apply would record that as the baseline monitor compares with",
                    r.describe()
                ),
                format!("{remedy}, then apply again; or, reviewed, accept it (--accept, with an until)"),
            )
        })
        .collect();
    findings.check(
        &PRE012,
        problems,
        format!("{app} reaches no tenant row past isolation"),
    );
}

/// PRE013: tables apply leaves uncovered that will fail RLS006 or RLS009
/// right after the cutover: a table with the tenant column that is not
/// configured, a table that references a tenant table without it. A warning:
/// the operator may mean to cover them in a later apply.
pub(crate) fn pre013(snap: &Snapshot, target: &Target, _: &Inputs, findings: &mut Findings) {
    let column = &target.tenant_column;
    let mut problems: Vec<Finding> = super::coverage::uncovered(snap, target)
        .map(|name| {
            Finding::problem(
                &PRE013,
                name.clone(),
                format!("{name} has a {column} column but is not a configured tenant table: after apply it stays readable across tenants (RLS006)"),
                "add it to RLSCTL_TENANT_TABLES (another schema's with --schema), or revoke the app role's access to it",
            )
        })
        .collect();
    problems.extend(
        super::coverage::uncovered_children(snap, snap.app.exists).map(|k| {
            Finding::problem(
                &PRE013,
                k.table.clone(),
                format!(
                    "{} references tenant table {} ({}) but has no {column} column: after apply its rows stay readable across tenants (RLS009)",
                    k.table, k.parent, k.name
                ),
                format!("add {column} to {} and configure it, or give it RLS of its own", k.table),
            )
        }),
    );
    findings.check(
        &PRE013,
        problems,
        format!("every table with {column}, or referencing a tenant table, is covered"),
    );
}

/// PRE014: apply grants the app role it creates the tenant tables only; the
/// other tables and views the app reads (a tenants list, lookup tables) it
/// cannot read until granted, and the app fails on them after the cutover.
pub(crate) fn pre014(snap: &Snapshot, target: &Target, _: &Inputs, findings: &mut Findings) {
    let app = &target.app_role;
    let names = &snap.app_reach.unreadable_by_new_app;
    let problems = if names.is_empty() {
        Vec::new()
    } else {
        let qualified: Vec<String> = names
            .iter()
            .map(|n| crate::model::sql::qualified(&target.schema, n))
            .collect();
        vec![Finding::problem(
            &PRE014,
            app.clone(),
            format!(
                "apply creates {app} with privileges on the tenant tables only: it cannot read {} of the schema's other tables and views ({})",
                names.len(),
                names.join(", ")
            ),
            format!(
                "after apply, grant what the app reads: GRANT SELECT ON {} TO {}",
                qualified.join(", "),
                quote_ident(app)
            ),
        )]
    };
    findings.check(
        &PRE014,
        problems,
        format!("{app} exists, or reads nothing in the schema beyond the tenant tables"),
    );
}
