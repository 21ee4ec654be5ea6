//! A database built in code for the rules' unit tests: [`sound`] is right
//! (as apply leaves it, with what real databases also have: an extension's
//! SECURITY DEFINER function, a reporting role, an app-owned trigger function).

use crate::model::config::{
    Target, ADMIN_POLICY_NAME, BUNDLE_SCHEMA, HELPER_FUNCTION, POLICY_NAME,
};
use crate::model::snapshot::*;
use crate::model::sql::helper_body;

/// The isolation predicate as PostgreSQL deparses the bundle's.
pub(crate) const PREDICATE: &str = "(tenant_id = ( SELECT (NULLIF(current_setting('app.tenant_id'::text, true), ''::text))::integer AS \"nullif\"))";

pub(crate) fn target() -> Target {
    Target {
        schema: "public".into(),
        tables: vec!["orders".into()],
        tenant_column: "tenant_id".into(),
        tenant_setting: "app.tenant_id".into(),
        app_role: "app_user".into(),
        admin_role: "tenant_admin".into(),
    }
}

pub(crate) fn role(exists: bool) -> Role {
    Role {
        exists,
        login: true,
        connect: true,
        schema_usage: true,
        ..Role::default()
    }
}

pub(crate) fn policy(name: &str, roles: &[&str], using: &str, applies_to_app: bool) -> Policy {
    Policy {
        table: "public.orders".into(),
        name: name.into(),
        cmd: Command::All,
        permissive: true,
        roles: roles.iter().map(|r| r.to_string()).collect(),
        applies_to_app,
        applies_to_session: false,
        using: Some(using.into()),
        check: Some(using.into()),
        using_builtin: true,
        check_builtin: true,
    }
}

pub(crate) fn function(name: &str) -> Function {
    Function {
        signature: format!("public.{name}()"),
        schema: "public".into(),
        name: name.into(),
        security_definer: false,
        leakproof: false,
        search_path: Some("pg_catalog, pg_temp".into()),
        app_can_execute: true,
        source: "SELECT 1".into(),
        language: "sql".into(),
        owner: "app_owner".into(),
        returns: "integer".into(),
        in_extension: false,
        app_fires: false,
        comment: String::new(),
        user_functions: Vec::new(),
    }
}

/// An audit rule the app role fires, owned by a role that does not read past
/// the policies: its action reads a tenant table under them.
pub(crate) fn audit_rule() -> Rule {
    Rule {
        name: "log_order_reads".into(),
        table: "public.read_log".into(),
        event: "INSERT".into(),
        app_fires: true,
        owner: "app_owner".into(),
        owner_bypasses: false,
        reads: vec!["public.orders".into()],
        definition_md5: "0f3c".into(),
    }
}

/// Foreign keys into tenant tables that leave nothing open: a child table
/// without the tenant column under RLS of its own, and one the app role
/// cannot read.
pub(crate) fn foreign_keys() -> Vec<ForeignKey> {
    let covered = ForeignKey {
        kind: ForeignKeyKind::Child,
        table: "public.order_lines".into(),
        name: "order_lines_order_id_fkey".into(),
        parent: "public.orders".into(),
        definition: "FOREIGN KEY (order_id) REFERENCES orders(id)".into(),
        app_can_read: true,
        covered: true,
    };
    let unreadable = ForeignKey {
        table: "public.order_exports".into(),
        name: "order_exports_order_id_fkey".into(),
        app_can_read: false,
        covered: false,
        ..covered.clone()
    };
    vec![covered, unreadable]
}

pub(crate) fn break_glass_reacher() -> Reacher {
    Reacher {
        role: "tenant_admin".into(),
        login: false,
        reason: format!("policy {ADMIN_POLICY_NAME} is USING (true)"),
        tables: 1,
        all_tables: true,
        path: vec!["tenant_admin".into()],
        reads_as_itself: true,
        kind: ReachKind::Policy,
        policy: Some(ADMIN_POLICY_NAME.into()),
    }
}

/// `pg_execute_server_program` as every supported major has it: a predefined
/// role without LOGIN that reaches every row below row security.
pub(crate) fn server_program_reacher() -> Reacher {
    Reacher {
        role: "pg_execute_server_program".into(),
        reason: "pg_execute_server_program (it runs programs as the server)".into(),
        path: vec!["pg_execute_server_program".into()],
        reads_as_itself: false,
        kind: ReachKind::Server,
        policy: None,
        ..break_glass_reacher()
    }
}

/// A database as apply leaves it, as the RDS master applied it, with what
/// real databases also have.
pub(crate) fn sound() -> Snapshot {
    let mut admin = role(true);
    admin.login = false;
    admin.settings = vec!["log_statement=all".into()];
    Snapshot {
        session: session(),
        app: role(true),
        admin,
        app_reach: AppReach::default(),
        tables: vec![orders()],
        policies: vec![
            policy(POLICY_NAME, &["app_user"], PREDICATE, true),
            // The applying role is a member of the break-glass role (apply
            // grants it on 16+), so it sees every row, as it counts NULLs.
            Policy {
                applies_to_session: true,
                ..policy(ADMIN_POLICY_NAME, &["tenant_admin"], "true", false)
            },
        ],
        policies_by_table: Default::default(),
        uncovered: Vec::new(),
        relations: Vec::new(),
        rules: vec![audit_rule()],
        foreign_keys: foreign_keys(),
        functions: functions(),
        children: Vec::new(),
        losing_readers: Vec::new(),
        bundle: bundle(),
        reach: vec![break_glass_reacher(), server_program_reacher()],
    }
    .reindexed()
}

/// The RDS master, applying (it has CREATEROLE, not SUPERUSER).
fn session() -> Session {
    Session {
        database: "shop".into(),
        user: "postgres".into(),
        session_user: "app_user".into(),
        superuser: false,
        createrole: true,
        createdb: true,
        replication: false,
        bypassrls: false,
        can_create_schema: true,
        can_grant_schema_usage: true,
        server_version_num: 160014,
        bypass_roles: vec!["rdsadmin".into()],
        pgaudit_loaded: false,
        can_set_pgaudit: false,
        can_set_log_statement: true,
        rds_iam_exists: true,
        can_grant_rds_iam: true,
        break_glass_sessions: Vec::new(),
        stats_ext_private: true,
    }
}

/// The tenant table, as apply leaves it.
fn orders() -> Table {
    Table {
        name: "orders".into(),
        display: "public.orders".into(),
        partition_of: None,
        partitioned: false,
        exists: true,
        other_kind: None,
        has_column: true,
        column_type: Some("integer".into()),
        owner: Some("postgres".into()),
        session_owns: true,
        app_owns: false,
        rls: true,
        force: true,
        has_tenant_index: true,
        public_privileges: Vec::new(),
        app_privileges: vec![
            "DELETE".into(),
            "INSERT".into(),
            "SELECT".into(),
            "UPDATE".into(),
        ],
        admin_privileges: vec![
            "DELETE".into(),
            "INSERT".into(),
            "SELECT".into(),
            "UPDATE".into(),
        ],
        app_forbidden_privileges: Vec::new(),
        sequences: Vec::new(),
        session_can_select: true,
    }
}

/// The bundle's helper, and two SECURITY DEFINER functions real databases have.
fn functions() -> Vec<Function> {
    let helper = Function {
        signature: "rlsctl.null_tenant_counts()".into(),
        schema: BUNDLE_SCHEMA.into(),
        name: HELPER_FUNCTION.into(),
        security_definer: true,
        source: helper_body(),
        owner: "tenant_admin".into(),
        returns: "SETOF record".into(),
        language: "plpgsql".into(),
        ..function("helper")
    };
    // pgaudit-like: SECURITY DEFINER, no search_path, made by CREATE EXTENSION.
    let extension = Function {
        signature: "public.pgaudit_ddl_command_end()".into(),
        security_definer: true,
        search_path: None,
        returns: "event_trigger".into(),
        owner: "rdsadmin".into(),
        in_extension: true,
        ..function("pgaudit_ddl_command_end")
    };
    // The app's own trigger function: SECURITY DEFINER, owned by a role that
    // reads under the policies.
    let app_trigger = Function {
        security_definer: true,
        returns: "trigger".into(),
        app_fires: true,
        owner: "app_user".into(),
        source: "begin new.updated_at = now(); return new; end".into(),
        ..function("touch_updated_at")
    };
    vec![helper, extension, app_trigger]
}

/// The bundle's records as the last apply wrote them.
fn bundle() -> Bundle {
    Bundle {
        installed: true,
        usage: true,
        helper_executable: true,
        helper_current: true,
        shadow_current: true,
        app_grants: true,
        registry: vec![Installed {
            table: "orders".into(),
            using: PREDICATE.into(),
            check: PREDICATE.into(),
            policy_since: Some(1_764_000_000),
        }],
        recorded_bypass_roles: Some(vec!["rdsadmin".into()]),
        recorded_reach: Some(vec![break_glass_reacher(), server_program_reacher()]),
        recorded_existing: Some(Vec::new()),
        records_current: true,
        shadow_executable: false,
        writers: vec![("postgres".into(), "owns the records".into())],
        registry_checksum: Some((Some("c0ffee".into()), "c0ffee".into())),
        recorded_logging: Some("log_statement=all".into()),
        last_apply: Some("2026-11-01 by postgres".into()),
        appliers: vec!["postgres".into()],
        schema_owner: Some(("postgres".into(), false)),
        foreign_objects: Vec::new(),
        open_break_glass: Vec::new(),
        null_counts: Some(vec![("public.orders".into(), Some(0))]),
    }
}
