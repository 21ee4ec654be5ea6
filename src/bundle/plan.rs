//! From the current state to the list of statements that bring the database to
//! the bundle, object by object, so a second run has nothing to do.

use serde::Serialize;

use super::policy;
use super::sql::{render, statements};
use super::state::{Role, State, Table};
use crate::config::{Target, POLICY_NAME};
use crate::db::password::Secret;
use crate::db::{qualified, quote_ident};

/// What happens to one object.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
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
pub struct Statement {
    /// What is shown in plans, logs and errors.
    pub shown: String,
    /// What is sent (may hold a SCRAM verifier).
    #[serde(skip)]
    pub sql: String,
}

impl Statement {
    fn plain(sql: String) -> Self {
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
pub struct Item {
    /// e.g. `role app_user`, `table public.customers`.
    pub object: String,
    /// What happens to it.
    pub action: Action,
    /// The statements that do it (empty when unchanged).
    pub statements: Vec<Statement>,
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
}

/// The plan and its warnings.
#[derive(Debug, Default, Serialize)]
pub struct Plan {
    /// Objects in the order their statements run.
    pub items: Vec<Item>,
    /// Things the operator should know (e.g. the break-glass role cannot get BYPASSRLS).
    pub warnings: Vec<String>,
}

impl Plan {
    /// Number of objects created or changed.
    pub fn changes(&self) -> usize {
        self.items
            .iter()
            .filter(|i| i.action != Action::Unchanged)
            .count()
    }
    /// All statements, in order.
    pub fn statements(&self) -> impl Iterator<Item = &Statement> {
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
    }
}

fn password_statement(role: &str, password: &Secret) -> Statement {
    // A SCRAM verifier computed here, so the cleartext never reaches the server or its logs.
    let verifier = postgres_protocol::password::scram_sha_256(password.expose().as_bytes());
    let sql = |value: &str| {
        render(
            "set_password",
            &[("role", &quote_ident(role)), ("password", value)],
        )
    };
    Statement {
        sql: sql(&format!("'{verifier}'")),
        shown: sql("'<redacted>'"),
    }
}

/// A role's plan item: its attribute statements, then its password when the
/// role is new or passwords are being rotated.
fn role_item(
    name: &str,
    exists: bool,
    mut stmts: Vec<Statement>,
    password: Option<&Secret>,
    rotate: bool,
) -> Item {
    if let Some(password) = password {
        if !exists || rotate {
            stmts.push(password_statement(name, password));
        }
    }
    item(format!("role {name}"), exists, stmts)
}

/// Whether the connected user may hand out BYPASSRLS (superuser; PG16+: a BYPASSRLS role).
pub fn can_grant_bypassrls(state: &State) -> bool {
    state.session.superuser
        || (state.session.server_version_num >= 160000
            && state.session.bypassrls
            && state.session.createrole)
}

/// Builds the plan. `database` is the current database name.
pub fn build(target: &Target, state: &State, database: &str, inputs: &RoleInputs) -> Plan {
    let mut plan = Plan::default();
    let app = quote_ident(&target.app_role);
    let admin = quote_ident(&target.admin_role);

    // The app role: LOGIN and nothing that could bypass RLS.
    let mut stmts = Vec::new();
    if !state.app.exists {
        stmts.push(Statement::plain(render(
            "create_app_role",
            &[("app_role", &app)],
        )));
    } else if !app_role_is_safe(&state.app) {
        stmts.push(Statement::plain(render(
            "fix_app_role",
            &[("app_role", &app)],
        )));
    }
    plan.items.push(role_item(
        &target.app_role,
        state.app.exists,
        stmts,
        inputs.app_password.as_ref(),
        inputs.rotate_passwords,
    ));

    // The break-glass role: BYPASSRLS when we may grant it, LOGIN only with a password.
    let bypass = if can_grant_bypassrls(state) || state.admin.bypassrls {
        "BYPASSRLS"
    } else {
        "NOBYPASSRLS"
    };
    if bypass == "NOBYPASSRLS" {
        plan.warnings.push(format!(
            "{} cannot give the break-glass role {} BYPASSRLS (superuser only on PostgreSQL 15 and older; \
             on 16+ the granting role needs BYPASSRLS and CREATEROLE): ask a superuser to run \
             ALTER ROLE {} BYPASSRLS; until then the NULL-tenant count reports 'unknown'",
            state.session.user, target.admin_role, admin
        ));
    }
    let login = if inputs.admin_password.is_some() || state.admin.login {
        "LOGIN"
    } else {
        "NOLOGIN"
    };
    let admin_values = [
        ("admin_role", admin.as_str()),
        ("admin_login", login),
        ("admin_bypass", bypass),
    ];
    let mut stmts = Vec::new();
    if !state.admin.exists {
        stmts.push(Statement::plain(render("create_admin_role", &admin_values)));
    } else if state.admin.superuser
        || state.admin.createdb
        || state.admin.createrole
        || state.admin.replication
        || (bypass == "BYPASSRLS" && !state.admin.bypassrls)
        || (login == "LOGIN" && !state.admin.login)
    {
        stmts.push(Statement::plain(render("fix_admin_role", &admin_values)));
    }
    plan.items.push(role_item(
        &target.admin_role,
        state.admin.exists,
        stmts,
        inputs.admin_password.as_ref(),
        inputs.rotate_passwords,
    ));

    // Database CONNECT and schema USAGE for both roles.
    let mut stmts = Vec::new();
    for (role, quoted) in [(&state.app, &app), (&state.admin, &admin)] {
        if !role.connect {
            stmts.push(Statement::plain(render(
                "grant_connect",
                &[("database", &quote_ident(database)), ("role", quoted)],
            )));
        }
        if !role.schema_usage {
            stmts.push(Statement::plain(render(
                "grant_schema_usage",
                &[("schema", &quote_ident(&target.schema)), ("role", quoted)],
            )));
        }
    }
    plan.items.push(item(
        format!("grants on database {database} and schema {}", target.schema),
        true,
        stmts,
    ));

    // The rlsctl schema: history, registry, break-glass log, helper.
    let roles = [("app_role", app.as_str()), ("admin_role", admin.as_str())];
    let mut stmts = Vec::new();
    if !state.bundle.tables_exist || !state.bundle.app_grants {
        stmts.extend(Statement::many(render("schema", &roles)));
    }
    if !state.bundle.helper_current || !state.bundle.app_grants {
        if !state.session.superuser {
            stmts.push(Statement::plain(render(
                "join_admin_role",
                &[("admin_role", &admin)],
            )));
        }
        stmts.extend(Statement::many(render("helper", &roles)));
    }
    plan.items.push(item(
        "schema rlsctl (history, registry, break-glass log, helper)".into(),
        state.bundle.tables_exist,
        stmts,
    ));

    for table in &state.tables {
        plan.items.push(table_item(target, table));
    }
    plan
}

fn app_role_is_safe(role: &Role) -> bool {
    role.login
        && !role.superuser
        && !role.bypassrls
        && !role.createdb
        && !role.createrole
        && !role.replication
}

const APP_PRIVILEGES: [&str; 4] = ["DELETE", "INSERT", "SELECT", "UPDATE"];
const FORBIDDEN_PRIVILEGES: [&str; 3] = ["REFERENCES", "TRIGGER", "TRUNCATE"];

fn table_item(target: &Target, table: &Table) -> Item {
    let name = qualified(&target.schema, &table.name);
    let column_type = table.column_type.clone().unwrap_or_default();
    let t = [
        ("table", name.as_str()),
        ("app_role", &quote_ident(&target.app_role)),
        ("admin_role", &quote_ident(&target.admin_role)),
        ("policy", &quote_ident(POLICY_NAME)),
    ];
    let t: Vec<(&str, &str)> = t.iter().map(|(k, v)| (*k, *v)).collect();
    let mut stmts = Vec::new();
    let mut push = |step: &str, extra: &[(&str, &str)]| {
        let mut values = t.clone();
        values.extend_from_slice(extra);
        stmts.push(Statement::plain(render(step, &values)));
    };
    if !table.public_privileges.is_empty() {
        push("revoke_public", &[]);
    }
    if table
        .app_privileges
        .iter()
        .any(|p| FORBIDDEN_PRIVILEGES.contains(&p.as_str()))
    {
        push("revoke_app_extra", &[]);
    }
    if !APP_PRIVILEGES
        .iter()
        .all(|p| table.app_privileges.iter().any(|q| q == p))
    {
        push("grant_app", &[]);
    }
    if !APP_PRIVILEGES
        .iter()
        .all(|p| table.admin_privileges.iter().any(|q| q == p))
    {
        push("grant_admin", &[]);
    }
    for sequence in table.sequences.iter().filter(|s| !s.app_usage) {
        push(
            "grant_sequence",
            &[("sequence", &qualified(&sequence.schema, &sequence.name))],
        );
    }
    if !table.rls {
        push("enable_rls", &[]);
    }
    if !table.force {
        push("force_rls", &[]);
    }
    let predicate = policy::predicate(&target.tenant_column, &column_type, &target.tenant_setting);
    let matches = |expr: &Option<String>| {
        expr.as_deref().is_some_and(|e| {
            policy::is_bundle_predicate(
                e,
                &target.tenant_column,
                &column_type,
                &target.tenant_setting,
            )
        })
    };
    match &table.policy {
        None => push("create_policy", &[("predicate", &predicate)]),
        Some(p) => {
            let current = p.cmd == "*"
                && p.permissive
                && p.roles == [target.app_role.clone()]
                && matches(&p.using)
                && matches(&p.check);
            if !current {
                push("drop_policy", &[]);
                push("create_policy", &[("predicate", &predicate)]);
            }
        }
    }
    let existed = table.rls || table.policy.is_some();
    item(
        format!("table {}", target.display_table(&table.name)),
        existed,
        stmts,
    )
}
