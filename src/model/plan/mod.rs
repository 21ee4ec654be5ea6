//! From the current state to the list of statements that bring the database to
//! the bundle, object by object, so a second run has nothing to do.

use serde::Serialize;

mod roles;
mod tables;

use roles::{admin_role, app_role, log_break_glass};
use tables::table_item;

use super::sql::{helper_values, shadow_values};
use super::sql::{render, statements, Step};
use crate::model::config::{Target, ADMIN_POLICY_NAME};
use crate::model::secret::Secret;
use crate::model::snapshot::Snapshot;
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
    }
}

/// How the isolation policies are installed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Each tenant sees and writes only its rows.
    #[default]
    Enforce,
    /// Nothing is narrowed yet: what enforcement would hide is recorded
    /// (`apply --shadow`).
    Shadow,
}

/// Builds the plan for `mode`.
pub(crate) fn build(target: &Target, snap: &Snapshot, inputs: &RoleInputs, mode: Mode) -> Plan {
    let mut plan = Plan::default();
    let app = quote_ident(&target.app_role);
    let admin = quote_ident(&target.admin_role);
    app_role(&mut plan, target, snap, inputs);
    admin_role(&mut plan, target, snap, inputs);
    log_break_glass(&mut plan, snap, &admin);
    grants(&mut plan, target, snap);
    bundle_schema(&mut plan, target, snap, mode);
    for (i, table) in snap.tables.iter().enumerate() {
        let mut item = table_item(target, snap, table, mode);
        item.table = Some(i);
        plan.items.push(item);
    }
    revoke_shadow_function(&mut plan, snap, &app, mode);
    plan
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
fn bundle_schema(plan: &mut Plan, target: &Target, snap: &Snapshot, mode: Mode) {
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
    if mode == Mode::Shadow && !snap.bundle.shadow_current {
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
    if mode == Mode::Shadow {
        plan.warnings.push(format!(
            "shadow mode: {} will see and write every tenant's rows; what enforcement would hide is recorded in the server log (rlsctl shadow report), and monitor reports RLS008 until `rlsctl apply` enforces",
            target.app_role
        ));
    }
}

/// Outside shadow mode nobody should call the shadow function (it writes what
/// the shadow report counts): EXECUTE goes with the last table that leaves
/// shadow mode, so a batch before it still has it, or with the rlsctl schema
/// when no table changes.
fn revoke_shadow_function(plan: &mut Plan, snap: &Snapshot, app: &str, mode: Mode) {
    if mode != Mode::Enforce || !snap.bundle.shadow_executable {
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
