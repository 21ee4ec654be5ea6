//! The plan's roles: the app role and the break-glass role, with their
//! attributes, passwords and the break-glass role's statement logging.

use super::{item, Action, Plan, RoleInputs, Statement};
use crate::model::config::Target;
use crate::model::secret::Secret;
use crate::model::snapshot::{Role, Snapshot};
use crate::model::sql::{quote_ident, render, Step};

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
fn can_grant_bypassrls(snap: &Snapshot) -> bool {
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

/// A bundle role's attributes, as it has them and as it should: LOGIN and
/// BYPASSRLS as given, and never SUPERUSER, CREATEDB, CREATEROLE or
/// REPLICATION.
fn wanted_attributes(role: &Role, login: bool, bypassrls: bool) -> [Attribute; 6] {
    [
        Attribute::new("LOGIN", role.login, login),
        Attribute::new("SUPERUSER", role.superuser, false),
        Attribute::new("BYPASSRLS", role.bypassrls, bypassrls),
        Attribute::new("CREATEDB", role.createdb, false),
        Attribute::new("CREATEROLE", role.createrole, false),
        Attribute::new("REPLICATION", role.replication, false),
    ]
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

/// The app role: LOGIN and nothing that could bypass RLS.
pub(super) fn app_role(plan: &mut Plan, target: &Target, snap: &Snapshot, inputs: &RoleInputs) {
    let app = quote_ident(&target.app_role);
    let a = &snap.app;
    let spec = RoleSpec {
        name: &target.app_role,
        role: a,
        create: Statement::plain(render(Step::CreateAppRole, &[("app_role", &app)])),
        attributes: wanted_attributes(a, true, false),
        password: inputs.app_password.as_ref(),
    };
    role_plan(plan, snap, spec, inputs.rotate_passwords);
    if inputs.app_iam {
        grant_rds_iam(plan, target, snap);
    }
}

/// The break-glass role reaches every row through its own policy on each
/// table; BYPASSRLS only when asked for and the session may grant it, and an
/// existing BYPASSRLS is left alone. LOGIN only with a password.
pub(super) fn admin_role(plan: &mut Plan, target: &Target, snap: &Snapshot, inputs: &RoleInputs) {
    let admin = quote_ident(&target.admin_role);
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
        attributes: wanted_attributes(d, login, bypass),
        password: inputs.admin_password.as_ref(),
    };
    role_plan(plan, snap, spec, inputs.rotate_passwords);
}

/// Adds the break-glass role's statement logging to its item when missing.
pub(super) fn log_break_glass(plan: &mut Plan, snap: &Snapshot, admin: &str) {
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
    add_to_last(plan, statement);
}

/// Adds `statement` to the last item (the role it concerns).
fn add_to_last(plan: &mut Plan, statement: Statement) {
    if let Some(item) = plan.items.last_mut() {
        item.statements.push(statement);
        if item.action == Action::Unchanged {
            item.action = Action::Change;
        }
    }
}

/// `apply --app-iam`: the app role joins RDS's `rds_iam`, so it logs in with
/// IAM auth tokens only.
fn grant_rds_iam(plan: &mut Plan, target: &Target, snap: &Snapshot) {
    if snap.app.iam {
        return;
    }
    let app = &target.app_role;
    let session = &snap.session;
    if !session.rds_iam_exists {
        plan.blocked.push(
            "--app-iam: there is no rds_iam role; IAM database authentication is RDS's \
             (turn it on for the instance, then apply again)"
                .to_string(),
        );
    } else if !session.can_grant_rds_iam {
        plan.blocked.push(format!(
            "--app-iam: {} may not grant rds_iam to {app}: have the RDS master run it, or apply as the master",
            session.user
        ));
    } else {
        let statement = Statement::plain(render(Step::GrantRdsIam, &[("role", &quote_ident(app))]));
        add_to_last(plan, statement);
    }
}
