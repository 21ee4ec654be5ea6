//! The plan's item for one tenant table: privileges, RLS on and forced, and
//! the isolation and break-glass policies.

use super::{item, Item, Mode, Statement};
use crate::model::config::{Target, ADMIN_POLICY_NAME, POLICY_NAME};
use crate::model::policy;
use crate::model::snapshot::{Command, Snapshot, Table};
use crate::model::sql::{qualified, quote_ident, render, Step};

const APP_PRIVILEGES: [&str; 4] = ["DELETE", "INSERT", "SELECT", "UPDATE"];
const FORBIDDEN_PRIVILEGES: [&str; 3] = ["REFERENCES", "TRIGGER", "TRUNCATE"];

/// A step of a table's item, with the values it needs beyond the table's own.
type TableStep = (Step, Vec<(&'static str, String)>);

pub(super) fn table_item(target: &Target, snap: &Snapshot, table: &Table, mode: Mode) -> Item {
    let name = qualified(&target.schema, &table.name);
    let (app, admin) = (
        quote_ident(&target.app_role),
        quote_ident(&target.admin_role),
    );
    let (policy, admin_policy) = (quote_ident(POLICY_NAME), quote_ident(ADMIN_POLICY_NAME));
    let common = [
        ("table", name.as_str()),
        ("app_role", app.as_str()),
        ("admin_role", admin.as_str()),
        ("policy", policy.as_str()),
        ("admin_policy", admin_policy.as_str()),
    ];
    let mut steps = privilege_steps(table);
    steps.extend(policy_steps(target, snap, table, mode));
    let stmts = steps
        .into_iter()
        .map(|(step, extra)| {
            let mut values: Vec<(&str, &str)> = common.to_vec();
            values.extend(extra.iter().map(|(k, v)| (*k, v.as_str())));
            Statement::plain(render(step, &values))
        })
        .collect();
    let existed = table.rls || snap.policy(&table.display, POLICY_NAME).is_some();
    item(
        format!("table {}", target.display_table(&table.name)),
        existed,
        stmts,
    )
}

/// Grants and revokes that make the table's privileges the bundle's, and RLS on and forced.
fn privilege_steps(table: &Table) -> Vec<TableStep> {
    let has_all = |granted: &[String]| {
        APP_PRIVILEGES
            .iter()
            .all(|p| granted.iter().any(|q| q == p))
    };
    let mut steps: Vec<TableStep> = Vec::new();
    if !table.public_privileges.is_empty() {
        steps.push((Step::RevokePublic, vec![]));
    }
    if table
        .app_privileges
        .iter()
        .any(|p| FORBIDDEN_PRIVILEGES.contains(&p.as_str()))
    {
        steps.push((Step::RevokeAppExtra, vec![]));
    }
    if !has_all(&table.app_privileges) {
        steps.push((Step::GrantApp, vec![]));
    }
    if !has_all(&table.admin_privileges) {
        steps.push((Step::GrantAdmin, vec![]));
    }
    for sequence in table.sequences.iter().filter(|s| !s.app_usage) {
        let sequence = qualified(&sequence.schema, &sequence.name);
        steps.push((Step::GrantSequence, vec![("sequence", sequence)]));
    }
    if !table.rls {
        steps.push((Step::EnableRls, vec![]));
    }
    if !table.force {
        steps.push((Step::ForceRls, vec![]));
    }
    steps
}

/// The isolation policy's USING and WITH CHECK for `mode`.
fn predicates(target: &Target, table: &Table, mode: Mode) -> (String, String) {
    let column_type = table.column_type.clone().unwrap_or_default();
    match mode {
        Mode::Enforce | Mode::Keep => {
            let predicate =
                policy::predicate(&target.tenant_column, &column_type, &target.tenant_setting);
            (predicate.clone(), predicate)
        }
        Mode::Shadow => {
            let form = |access| {
                policy::shadow_predicate(
                    &target.tenant_column,
                    &column_type,
                    &target.tenant_setting,
                    &table.display,
                    access,
                )
            };
            (form(policy::Access::Read), form(policy::Access::Write))
        }
    }
}

/// The isolation and break-glass policies, (re)made unless they are as the bundle makes them.
fn policy_steps(target: &Target, snap: &Snapshot, table: &Table, mode: Mode) -> Vec<TableStep> {
    let (using, check) = predicates(target, table, mode);
    let matches = |expr: &Option<String>, wanted: &str| {
        expr.as_deref().is_some_and(|e| policy::same(e, wanted))
    };
    let mut steps: Vec<TableStep> = Vec::new();
    let create = || {
        (
            Step::CreatePolicy,
            vec![("using", using.clone()), ("check", check.clone())],
        )
    };
    match snap.policy(&table.display, POLICY_NAME) {
        None => steps.push(create()),
        Some(p) => {
            let current = p.cmd == Command::All
                && p.permissive
                && p.roles == [target.app_role.clone()]
                && matches(&p.using, &using)
                && matches(&p.check, &check);
            if !current {
                steps.push((Step::DropPolicy, vec![]));
                steps.push(create());
            }
        }
    }
    let admin_policy = snap.policy(&table.display, ADMIN_POLICY_NAME);
    let admin_policy_current = admin_policy.is_some_and(|p| {
        p.cmd == Command::All
            && p.permissive
            && p.roles == [target.admin_role.clone()]
            && p.using.as_deref() == Some("true")
            && p.check.as_deref() == Some("true")
    });
    if !admin_policy_current {
        if admin_policy.is_some() {
            steps.push((Step::DropAdminPolicy, vec![]));
        }
        steps.push((Step::CreateAdminPolicy, vec![]));
    }
    steps
}
