//! From the current state to the list of statements that bring the database to
//! the bundle, object by object, so a second run has nothing to do.

use serde::Serialize;

use super::policy;
use super::sql::{helper_values, shadow_values};
use super::sql::{render, statements, Step};
use crate::model::config::{Target, ADMIN_POLICY_NAME, POLICY_NAME};
use crate::model::secret::Secret;
use crate::model::snapshot::{Command, Role, Snapshot, Table};
use crate::model::sql::{qualified, quote_ident};

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

fn password_statement(role: &str, password: &Secret) -> Statement {
    // A SCRAM verifier computed here, so the cleartext never reaches the server or its logs.
    let verifier = postgres_protocol::password::scram_sha_256(password.expose().as_bytes());
    let sql = |value: &str| {
        render(
            Step::SetPassword,
            &[("role", &quote_ident(role)), ("password", value)],
        )
    };
    Statement {
        sql: sql(&format!("'{verifier}'")),
        shown: sql("'<redacted>'"),
    }
}

/// Whether the connected user may hand out BYPASSRLS (superuser; PG16+: a BYPASSRLS role).
pub(crate) fn can_grant_bypassrls(snap: &Snapshot) -> bool {
    snap.session.superuser
        || (snap.pg16_or_newer() && snap.session.bypassrls && snap.session.createrole)
}

/// One role attribute: its keyword when on, and whether it is on now and wanted on.
struct Attribute {
    keyword: &'static str,
    now: bool,
    wanted: bool,
}

impl Attribute {
    fn new(keyword: &'static str, now: bool, wanted: bool) -> Self {
        Self {
            keyword,
            now,
            wanted,
        }
    }
    /// The keyword that sets it to what is wanted: `LOGIN` or `NOLOGIN`.
    fn setting(&self) -> String {
        if self.wanted {
            self.keyword.to_string()
        } else {
            format!("NO{}", self.keyword)
        }
    }
}

/// Why the session may not run `ALTER ROLE` (attributes or password) on an
/// existing role, by the rules of the server's major version; `None` when it may.
///
/// PostgreSQL 15 and older: CREATEROLE reaches every role that is neither
/// superuser nor REPLICATION, but only a superuser may change SUPERUSER,
/// REPLICATION or BYPASSRLS. 16 and newer: CREATEROLE reaches only roles the
/// session holds ADMIN OPTION on, and it may change CREATEDB, REPLICATION or
/// BYPASSRLS only when it has that attribute itself.
fn alter_role_blocker(
    snap: &Snapshot,
    role: &Role,
    name: &str,
    changed: &[&Attribute],
) -> Option<String> {
    let s = &snap.session;
    if s.superuser {
        return None;
    }
    if role.superuser {
        return Some(format!(
            "{name} is a superuser, and only a superuser may alter one"
        ));
    }
    if !s.createrole {
        return Some(format!("{} has no CREATEROLE", s.user));
    }
    let changes = |keyword: &str| changed.iter().any(|a| a.keyword == keyword);
    if !snap.pg16_or_newer() {
        if role.replication || changes("REPLICATION") {
            return Some(format!(
                "{name} has REPLICATION, and on PostgreSQL 15 and older only a superuser may alter such a role"
            ));
        }
        if changes("BYPASSRLS") {
            return Some("on PostgreSQL 15 and older only a superuser may change BYPASSRLS".into());
        }
        return None;
    }
    if !role.session_is_admin {
        return Some(format!(
            "{} holds no ADMIN OPTION on {name} (on PostgreSQL 16+ CREATEROLE reaches only such roles)",
            s.user
        ));
    }
    for (keyword, has) in [
        ("REPLICATION", s.replication),
        ("BYPASSRLS", s.bypassrls),
        ("CREATEDB", s.createdb),
    ] {
        if changes(keyword) && !has {
            return Some(format!(
                "on PostgreSQL 16+ only a role with {keyword} may change {keyword}, and {} has not",
                s.user
            ));
        }
    }
    None
}

/// One of the bundle's roles: what it is now and what it should be.
struct RoleSpec<'a> {
    name: &'a str,
    role: &'a Role,
    create: Statement,
    attributes: [Attribute; 6],
    password: Option<&'a Secret>,
}

/// A role's plan item. A new role is created with every attribute written out
/// (allowed to a CREATEROLE non-superuser for the NO forms); an existing one
/// gets `ALTER ROLE` with only the attributes that differ, and its password only
/// with `--rotate-passwords`. What the session may not run is refused up front.
fn role_plan(plan: &mut Plan, snap: &Snapshot, spec: RoleSpec, rotate: bool) {
    let RoleSpec {
        name,
        role,
        create,
        attributes,
        password,
    } = spec;
    let mut stmts = Vec::new();
    if !role.exists {
        stmts.push(create);
    } else {
        let changed: Vec<&Attribute> = attributes.iter().filter(|a| a.now != a.wanted).collect();
        if !changed.is_empty() {
            let list: Vec<String> = changed.iter().map(|a| a.setting()).collect();
            let statement = Statement::plain(render(
                Step::AlterRole,
                &[
                    ("role", &quote_ident(name)),
                    ("attributes", &list.join(" ")),
                ],
            ));
            match alter_role_blocker(snap, role, name, &changed) {
                Some(why) => plan.blocked.push(format!(
                    "role {name} must change ({}) but {why}: have someone who may run `{};`, then apply again",
                    list.join(" "),
                    statement.shown
                )),
                None => stmts.push(statement),
            }
        }
        if rotate && password.is_some() {
            if let Some(why) = alter_role_blocker(snap, role, name, &[]) {
                plan.blocked.push(format!(
                    "the password of {name} cannot be rotated: {why}; drop --rotate-passwords or have someone who may set it"
                ));
            }
        }
    }
    if let Some(password) = password {
        if !role.exists || rotate {
            stmts.push(password_statement(name, password));
        }
    }
    plan.items
        .push(item(format!("role {name}"), role.exists, stmts));
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
    let database = snap.session.database.as_str();
    let mut plan = Plan::default();
    let app = quote_ident(&target.app_role);
    let admin = quote_ident(&target.admin_role);
    let a = &snap.app;

    // The app role: LOGIN and nothing that could bypass RLS.
    let spec = RoleSpec {
        name: &target.app_role,
        role: a,
        create: Statement::plain(render(Step::CreateAppRole, &[("app_role", &app)])),
        attributes: [
            Attribute::new("LOGIN", a.login, true),
            Attribute::new("SUPERUSER", a.superuser, false),
            Attribute::new("BYPASSRLS", a.bypassrls, false),
            Attribute::new("CREATEDB", a.createdb, false),
            Attribute::new("CREATEROLE", a.createrole, false),
            Attribute::new("REPLICATION", a.replication, false),
        ],
        password: inputs.app_password.as_ref(),
    };
    role_plan(&mut plan, snap, spec, inputs.rotate_passwords);

    // The break-glass role reaches every row through its own policy on each
    // table; BYPASSRLS only when asked for and the session may grant it, and an
    // existing BYPASSRLS is left alone. LOGIN only with a password.
    let d = &snap.admin;
    let bypass = d.bypassrls || (inputs.admin_bypassrls && can_grant_bypassrls(snap));
    if inputs.admin_bypassrls && !bypass {
        plan.warnings.push(format!(
            "{} cannot give {} BYPASSRLS (superuser only on PostgreSQL 15 and older; on 16+ the granting role \
             needs BYPASSRLS itself); it reaches every row through its break-glass policy instead",
            snap.session.user, target.admin_role
        ));
    }
    let login = inputs.admin_password.is_some() || d.login;
    let create = render(
        Step::CreateAdminRole,
        &[
            ("admin_role", admin.as_str()),
            ("admin_login", if login { "LOGIN" } else { "NOLOGIN" }),
            (
                "admin_bypass",
                if bypass { "BYPASSRLS" } else { "NOBYPASSRLS" },
            ),
        ],
    );
    let spec = RoleSpec {
        name: &target.admin_role,
        role: d,
        create: Statement::plain(create),
        attributes: [
            Attribute::new("LOGIN", d.login, login),
            Attribute::new("SUPERUSER", d.superuser, false),
            Attribute::new("BYPASSRLS", d.bypassrls, bypass),
            Attribute::new("CREATEDB", d.createdb, false),
            Attribute::new("CREATEROLE", d.createrole, false),
            Attribute::new("REPLICATION", d.replication, false),
        ],
        password: inputs.admin_password.as_ref(),
    };
    role_plan(&mut plan, snap, spec, inputs.rotate_passwords);
    log_break_glass(&mut plan, snap, &admin);

    // Database CONNECT and schema USAGE for both roles.
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

    // The rlsctl schema: history, registry, break-glass log, helper.
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

    for (i, table) in snap.tables.iter().enumerate() {
        let mut item = table_item(target, snap, table, mode);
        item.table = Some(i);
        plan.items.push(item);
    }
    revoke_shadow_function(&mut plan, snap, &app, mode);
    plan
}

/// Adds the break-glass role's statement logging to its item when missing.
fn log_break_glass(plan: &mut Plan, snap: &Snapshot, admin: &str) {
    let Some(logging) = snap.break_glass_logging() else {
        return;
    };
    plan.break_glass_logging = Some(logging.to_string());
    let (name, value) = (logging.name, logging.value);
    if snap.admin.has_setting(name, value) {
        return;
    }
    let statement = Statement::plain(render(
        Step::LogAdminRole,
        &[
            ("admin_role", admin),
            ("setting", name),
            ("value", &crate::model::sql::quote_literal(value)),
        ],
    ));
    if let Some(item) = plan.items.last_mut() {
        item.statements.push(statement);
        if item.action == Action::Unchanged {
            item.action = Action::Change;
        }
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

const APP_PRIVILEGES: [&str; 4] = ["DELETE", "INSERT", "SELECT", "UPDATE"];
const FORBIDDEN_PRIVILEGES: [&str; 3] = ["REFERENCES", "TRIGGER", "TRUNCATE"];

fn table_item(target: &Target, snap: &Snapshot, table: &Table, mode: Mode) -> Item {
    let policy = snap.policy(&table.display, POLICY_NAME);
    let admin_policy = snap.policy(&table.display, ADMIN_POLICY_NAME);
    let name = qualified(&target.schema, &table.name);
    let column_type = table.column_type.clone().unwrap_or_default();
    let t = [
        ("table", name.as_str()),
        ("app_role", &quote_ident(&target.app_role)),
        ("admin_role", &quote_ident(&target.admin_role)),
        ("policy", &quote_ident(POLICY_NAME)),
        ("admin_policy", &quote_ident(ADMIN_POLICY_NAME)),
    ];
    let t: Vec<(&str, &str)> = t.iter().map(|(k, v)| (*k, *v)).collect();
    let mut stmts = Vec::new();
    let mut push = |step: Step, extra: &[(&str, &str)]| {
        let mut values = t.clone();
        values.extend_from_slice(extra);
        stmts.push(Statement::plain(render(step, &values)));
    };
    if !table.public_privileges.is_empty() {
        push(Step::RevokePublic, &[]);
    }
    if table
        .app_privileges
        .iter()
        .any(|p| FORBIDDEN_PRIVILEGES.contains(&p.as_str()))
    {
        push(Step::RevokeAppExtra, &[]);
    }
    if !APP_PRIVILEGES
        .iter()
        .all(|p| table.app_privileges.iter().any(|q| q == p))
    {
        push(Step::GrantApp, &[]);
    }
    if !APP_PRIVILEGES
        .iter()
        .all(|p| table.admin_privileges.iter().any(|q| q == p))
    {
        push(Step::GrantAdmin, &[]);
    }
    for sequence in table.sequences.iter().filter(|s| !s.app_usage) {
        push(
            Step::GrantSequence,
            &[("sequence", &qualified(&sequence.schema, &sequence.name))],
        );
    }
    if !table.rls {
        push(Step::EnableRls, &[]);
    }
    if !table.force {
        push(Step::ForceRls, &[]);
    }
    let (using, check) = match mode {
        Mode::Enforce => {
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
    };
    let matches = |expr: &Option<String>, wanted: &str| {
        expr.as_deref().is_some_and(|e| policy::same(e, wanted))
    };
    let create = [("using", using.as_str()), ("check", check.as_str())];
    match policy {
        None => push(Step::CreatePolicy, &create),
        Some(p) => {
            let current = p.cmd == Command::All
                && p.permissive
                && p.roles == [target.app_role.clone()]
                && matches(&p.using, &using)
                && matches(&p.check, &check);
            if !current {
                push(Step::DropPolicy, &[]);
                push(Step::CreatePolicy, &create);
            }
        }
    }
    let admin_policy_current = admin_policy.is_some_and(|p| {
        p.cmd == Command::All
            && p.permissive
            && p.roles == [target.admin_role.clone()]
            && p.using.as_deref() == Some("true")
            && p.check.as_deref() == Some("true")
    });
    if !admin_policy_current {
        if admin_policy.is_some() {
            push(Step::DropAdminPolicy, &[]);
        }
        push(Step::CreateAdminPolicy, &[]);
    }
    let existed = table.rls || policy.is_some();
    item(
        format!("table {}", target.display_table(&table.name)),
        existed,
        stmts,
    )
}
