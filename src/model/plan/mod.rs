//! From the current state to the list of statements that bring the database to
//! the bundle, object by object, so a second run has nothing to do.

use serde::Serialize;

pub(crate) mod existing;
mod roles;
mod tables;
#[cfg(test)]
mod tests;

use roles::{admin_role, app_role, log_break_glass};
use tables::table_item;

use super::sql::{helper_values, shadow_values};
use super::sql::{render, statements, Step};
use crate::model::config::{Target, ADMIN_POLICY_NAME};
use crate::model::secret::Secret;
use std::collections::BTreeMap;

use crate::model::shadow::Since;
use crate::model::snapshot::{Snapshot, Table, TableMode};
use crate::model::sql::quote_ident;

/// What happens to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Action {
    /// It does not exist yet.
    Create,
    /// It exists but differs from the bundle.
    Change,
    /// It is as the bundle wants it.
    Unchanged,
}

/// One SQL statement, with the text that may be shown (passwords redacted).
/// Serializes as the shown text only.
#[derive(Debug, Clone, Serialize)]
#[serde(transparent)]
pub(crate) struct Statement {
    /// What is shown in plans, logs and errors.
    pub(crate) shown: String,
    /// What is sent (may hold a SCRAM verifier).
    #[serde(skip)]
    pub(crate) sql: String,
}

impl Statement {
    /// One statement without its terminator (plans and logs add their own).
    fn plain(sql: String) -> Self {
        let sql = sql.trim().trim_end_matches(';').to_string();
        Self {
            shown: sql.clone(),
            sql,
        }
    }
    fn many(text: String) -> Vec<Self> {
        statements(&text).into_iter().map(Self::plain).collect()
    }
}

/// One object of the plan.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Item {
    /// e.g. `role app_user`, `table public.customers`.
    pub(crate) object: String,
    /// What happens to it.
    pub(crate) action: Action,
    /// The statements that do it (empty when unchanged).
    pub(crate) statements: Vec<Statement>,
    /// For a tenant table, its index in the snapshot's tables (apply batches these).
    #[serde(skip)]
    pub(crate) table: Option<usize>,
    /// For a tenant table, its mode before and after.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) mode: Option<ModeChange>,
    /// For a tenant table, why it gets that mode (`--enforce-clean`: what the
    /// shadow records say).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) why: Option<String>,
}

/// A tenant table's mode before apply and after.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(crate) struct ModeChange {
    /// As it is now.
    pub(crate) before: TableMode,
    /// As apply leaves it.
    pub(crate) after: TableMode,
}

/// The passwords and choices that shape the role statements.
#[derive(Debug, Default)]
pub struct RoleInputs {
    /// Password for the app role.
    pub app_password: Option<Secret>,
    /// Password for the break-glass role.
    pub admin_password: Option<Secret>,
    /// Set passwords of existing roles too.
    pub rotate_passwords: bool,
    /// The app role logs in with IAM auth tokens (`apply --app-iam`): granted
    /// `rds_iam`, no password.
    pub app_iam: bool,
    /// Give the break-glass role BYPASSRLS where the session may.
    pub admin_bypassrls: bool,
}

/// The plan and its warnings.
#[derive(Debug, Default, Serialize)]
pub struct Plan {
    /// Objects in the order their statements run.
    pub(crate) items: Vec<Item>,
    /// Things the operator should know (e.g. roles that will read no rows after FORCE).
    pub(crate) warnings: Vec<String>,
    /// Changes the session may not make: the pre-flight refuses with these.
    #[serde(skip)]
    pub(crate) blocked: Vec<String>,
    /// The policies on the tenant tables that apply did not create, and what
    /// it does with each.
    pub(crate) existing_policies: Vec<existing::ExistingPolicy>,
    /// The setting that logs the break-glass role's statements, as apply
    /// makes sure of it (`pgaudit.log=all` or `log_statement=all`); `None`
    /// when the session may set neither (PRE010 says what to do).
    pub(crate) break_glass_logging: Option<String>,
}

impl Plan {
    /// The tenant tables that need changing (indexes into the snapshot's
    /// tables), in the configured order.
    pub(crate) fn changing_tables(&self) -> Vec<usize> {
        self.items
            .iter()
            .filter(|i| !i.statements.is_empty())
            .filter_map(|i| i.table)
            .collect()
    }

    /// Number of objects created or changed.
    pub(crate) fn changes(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.action != Action::Unchanged)
            .count()
    }
    /// All statements, in order.
    pub(crate) fn statements(&self) -> impl Iterator<Item = &Statement> {
        self.items.iter().flat_map(|i| i.statements.iter())
    }
}

fn item(object: String, existed: bool, statements: Vec<Statement>) -> Item {
    let action = match (existed, statements.is_empty()) {
        (_, true) => Action::Unchanged,
        (false, false) => Action::Create,
        (true, false) => Action::Change,
    };
    Item {
        object,
        action,
        statements,
        table: None,
        mode: None,
        why: None,
    }
}

/// How one table's isolation policy is installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Each tenant sees and writes only its rows.
    #[default]
    Enforce,
    /// Nothing is narrowed yet: what enforcement would hide is recorded
    /// (`apply --shadow`).
    Shadow,
    /// Left exactly as it is: a table under an open break-glass that a
    /// staged apply does not name (`rollback --restore` ends a break-glass).
    Keep,
}

/// Which tenant tables apply enforces; the others are in shadow mode.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Enforcement {
    /// Every tenant table (`apply`).
    #[default]
    All,
    /// None: every tenant table in shadow mode (`apply --shadow`).
    Shadow,
    /// These tables (bare names, as configured) enforced, those in shadow
    /// mode; every other table keeps its mode, and one without the isolation
    /// policy yet starts in shadow mode (`apply --enforce`, `apply
    /// --enforce-clean`, `rollback --to-shadow`).
    Staged {
        /// Tables to enforce.
        enforce: Vec<String>,
        /// Tables to put in shadow mode.
        shadow: Vec<String>,
    },
    /// Every table in shadow mode that the shadow records show clean (none
    /// since the moment, and in shadow mode since before it) enforced; every
    /// other keeps its mode (`apply --enforce-clean --since`).
    Clean(Since),
}

impl Enforcement {
    /// Each tenant table's mode after apply, in the snapshot's order.
    pub(crate) fn modes(&self, snap: &Snapshot) -> Vec<Mode> {
        snap.tables
            .iter()
            .map(|t| match self {
                Self::All => Mode::Enforce,
                Self::Shadow => Mode::Shadow,
                Self::Staged { enforce, .. } if enforce.contains(&t.name) => Mode::Enforce,
                Self::Staged { shadow, .. } if shadow.contains(&t.name) => Mode::Shadow,
                Self::Staged { .. } | Self::Clean(_)
                    if snap.table_mode(t) == TableMode::BreakGlass =>
                {
                    Mode::Keep
                }
                Self::Staged { .. } => as_it_is(snap, t),
                Self::Clean(since) => match clean(snap, t, since) {
                    Ok(_) => Mode::Enforce,
                    Err(_) => as_it_is(snap, t),
                },
            })
            .collect()
    }

    /// Per table (bare name), why `--enforce-clean` gives it its mode.
    pub(crate) fn why(&self, snap: &Snapshot) -> BTreeMap<String, String> {
        let Self::Clean(since) = self else {
            return BTreeMap::new();
        };
        snap.tables
            .iter()
            .filter(|t| t.exists)
            .map(|t| {
                let why = match clean(snap, t, since) {
                    Ok(why) | Err(why) => why,
                };
                (t.name.clone(), why)
            })
            .collect()
    }
}

/// A table's mode as it is: enforced stays enforced (under a break-glass
/// too: the policy says which), anything else shadow.
fn as_it_is(snap: &Snapshot, table: &Table) -> Mode {
    let policy = snap.policy(&table.display, crate::model::config::POLICY_NAME);
    if policy.is_some_and(|p| !p.is_shadow()) {
        Mode::Enforce
    } else {
        Mode::Shadow
    }
}

/// Whether `--enforce-clean` enforces `table` (`Ok`) or leaves it (`Err`),
/// and why, in words. Clean: in shadow mode since before the moment, and no
/// record of it since.
fn clean(snap: &Snapshot, table: &Table, since: &Since) -> Result<String, String> {
    match snap.table_mode(table) {
        TableMode::Enforced => return Err("enforced already".into()),
        TableMode::NotInstalled => {
            return Err("not installed yet: starts in shadow mode, to be watched".into())
        }
        TableMode::Shadow | TableMode::BreakGlass => {}
    }
    if let Some(dirt) = since.dirty.get(&table.display) {
        return Err(format!(
            "{} record(s) since {} (the first: {}): stays in shadow",
            dirt.records, since.label, dirt.first_query
        ));
    }
    let watched_from = snap
        .bundle
        .registry
        .iter()
        .find(|r| r.table == table.name)
        .and_then(|r| r.policy_since);
    match watched_from {
        Some(from) if from <= since.cutoff => Ok(format!("clean since {}: enforce", since.label)),
        Some(from) => Err(format!(
            "in shadow mode only since {}, after {}: stays in shadow until it has been watched that long",
            crate::model::log::time::utc_text(from),
            since.label
        )),
        None => Err("in shadow mode for a time the registry does not say: stays in shadow".into()),
    }
}

/// Builds the plan, each tenant table in its mode (`modes`, in the
/// snapshot's order: see [`Enforcement::modes`]).
/// `replace_policies`: drop the permissive policies apply did not create that
/// would stay ORed with the bundle's (`--replace-policies`).
pub(crate) fn build(
    target: &Target,
    snap: &Snapshot,
    inputs: &RoleInputs,
    modes: &[Mode],
    replace_policies: bool,
) -> Plan {
    let mut plan = Plan {
        existing_policies: existing::existing_policies(snap, target, replace_policies),
        ..Plan::default()
    };
    let app = quote_ident(&target.app_role);
    let admin = quote_ident(&target.admin_role);
    // The shadow function stays while any table is (or stays) in shadow mode.
    let any_shadow = snap.tables.iter().zip(modes).any(|(t, m)| match m {
        Mode::Shadow => true,
        Mode::Keep => snap.table_mode(t) == TableMode::Shadow,
        Mode::Enforce => false,
    });
    app_role(&mut plan, target, snap, inputs);
    admin_role(&mut plan, target, snap, inputs);
    log_break_glass(&mut plan, snap, &admin);
    grants(&mut plan, target, snap);
    bundle_schema(&mut plan, target, snap, modes);
    for (i, table) in snap.tables.iter().enumerate() {
        let mode = modes.get(i).copied().unwrap_or_default();
        let before = snap.table_mode(table);
        let (mut item, after) = match mode {
            Mode::Keep => (
                item(
                    format!("table {}", target.display_table(&table.name)),
                    true,
                    Vec::new(),
                ),
                before,
            ),
            Mode::Enforce => (table_item(target, snap, table, mode), TableMode::Enforced),
            Mode::Shadow => (table_item(target, snap, table, mode), TableMode::Shadow),
        };
        if mode != Mode::Keep {
            drop_replaced(&mut item, &plan.existing_policies, target, table);
        }
        item.table = Some(i);
        if table.exists {
            item.mode = Some(ModeChange { before, after });
        }
        plan.items.push(item);
    }
    revoke_shadow_function(&mut plan, snap, &app, any_shadow);
    plan
}

/// The replaced policies on `table` dropped first in its item (one that
/// shares a name with the bundle's is dropped by the bundle's own steps).
fn drop_replaced(
    item: &mut Item,
    existing: &[existing::ExistingPolicy],
    target: &Target,
    table: &Table,
) {
    let drops: Vec<Statement> = existing
        .iter()
        .filter(|p| p.table == table.display && p.disposition == existing::Disposition::Replaced)
        .filter(|p| p.name != crate::model::config::POLICY_NAME && p.name != ADMIN_POLICY_NAME)
        .map(|p| Statement::plain(p.drop_sql(&target.schema)))
        .collect();
    if drops.is_empty() {
        return;
    }
    item.statements.splice(0..0, drops);
    if item.action == Action::Unchanged {
        item.action = Action::Change;
    }
}

/// Database CONNECT and schema USAGE for both roles.
fn grants(plan: &mut Plan, target: &Target, snap: &Snapshot) {
    let database = snap.session.database.as_str();
    let app = quote_ident(&target.app_role);
    let admin = quote_ident(&target.admin_role);
    let mut stmts = Vec::new();
    for (role, quoted) in [(&snap.app, &app), (&snap.admin, &admin)] {
        if !role.connect {
            stmts.push(Statement::plain(render(
                Step::GrantConnect,
                &[("database", &quote_ident(database)), ("role", quoted)],
            )));
        }
        if !role.schema_usage {
            let statement = Statement::plain(render(
                Step::GrantSchemaUsage,
                &[("schema", &quote_ident(&target.schema)), ("role", quoted)],
            ));
            if snap.session.can_grant_schema_usage {
                stmts.push(statement);
            } else {
                plan.blocked.push(format!(
                    "{} may not grant USAGE on schema {}: have its owner run `{};`, then apply again",
                    snap.session.user, target.schema, statement.shown
                ));
            }
        }
    }
    plan.items.push(item(
        format!("grants on database {database} and schema {}", target.schema),
        true,
        stmts,
    ));
}

/// The rlsctl schema: history, registry, break-glass log, helper (and the
/// shadow function in shadow mode).
fn bundle_schema(plan: &mut Plan, target: &Target, snap: &Snapshot, modes: &[Mode]) {
    let shadow = modes.iter().filter(|m| **m == Mode::Shadow).count();
    let app = quote_ident(&target.app_role);
    let admin = quote_ident(&target.admin_role);
    let roles = [("app_role", app.as_str()), ("admin_role", admin.as_str())];
    let mut stmts = Vec::new();
    if !snap.bundle.installed || !snap.bundle.app_grants || !snap.bundle.records_current {
        stmts.extend(Statement::many(render(Step::Schema, &roles)));
    }
    if !snap.session.superuser && !snap.admin.session_inherits {
        // PostgreSQL 16+: granting a role needs ADMIN OPTION on it, which the
        // session has on a role it creates, not on one made by someone else.
        let join = render(Step::JoinAdminRole, &[("admin_role", &admin)]);
        if snap.admin.exists && snap.pg16_or_newer() && !snap.admin.session_is_admin {
            plan.blocked.push(format!(
                "{user} must be a member of {role} (to hand it the helper and reach every row through its policy) \
                 but holds no ADMIN OPTION on it: have its admin run `GRANT {admin} TO {quser};`, then apply again",
                user = snap.session.user,
                role = target.admin_role,
                quser = quote_ident(&snap.session.user),
            ));
        } else {
            stmts.push(Statement::plain(join));
        }
    }
    if !snap.bundle.helper_current || !snap.bundle.app_grants {
        let policy = crate::model::sql::quote_literal(ADMIN_POLICY_NAME);
        stmts.extend(Statement::many(render(
            Step::Helper,
            &helper_values(&app, &admin, &policy),
        )));
    }
    if shadow > 0 && !snap.bundle.shadow_current {
        let setting = crate::model::sql::quote_literal(&target.tenant_setting);
        stmts.extend(Statement::many(render(
            Step::ShadowFunction,
            &shadow_values(&app, &setting),
        )));
    }
    plan.items.push(item(
        "schema rlsctl (history, registry, break-glass log, helper)".into(),
        snap.bundle.installed,
        stmts,
    ));
    if shadow > 0 {
        plan.warnings.push(format!(
            "shadow mode on {shadow} of {} tenant table(s): {} will see and write every tenant's rows there; what enforcement would hide is recorded in the server log (rlsctl shadow report), and monitor reports RLS008 until `rlsctl apply` enforces them",
            modes.len(),
            target.app_role
        ));
    }
}

/// Outside shadow mode nobody should call the shadow function (it writes what
/// the shadow report counts): EXECUTE goes with the last table that leaves
/// shadow mode, so a batch before it still has it, or with the rlsctl schema
/// when no table changes.
fn revoke_shadow_function(plan: &mut Plan, snap: &Snapshot, app: &str, any_shadow: bool) {
    if any_shadow || !snap.bundle.shadow_executable {
        return;
    }
    let revoke = Statement::plain(render(Step::RevokeShadowFunction, &[("app_role", app)]));
    let last_table = plan
        .items
        .iter()
        .rposition(|i| i.table.is_some() && !i.statements.is_empty());
    let schema = plan
        .items
        .iter()
        .position(|i| i.object.starts_with("schema rlsctl"));
    if let Some(at) = last_table.or(schema) {
        let item = &mut plan.items[at];
        item.statements.push(revoke);
        if item.action == Action::Unchanged {
            item.action = Action::Change;
        }
    }
}
