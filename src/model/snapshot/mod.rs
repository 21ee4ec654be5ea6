//! One model of the database: everything apply, rollback, verify, monitor and
//! rehearse need to know, read once by `inspect::read` with a constant
//! number of statements whatever the number of tables (its SQL is in
//! `sql/inspect/`). The checks and the plan are pure functions of it.

use std::collections::HashMap;

use serde::Serialize;

mod bundle;
mod roles;
mod tables;

#[cfg(test)]
pub(crate) use bundle::RecordedPolicy;
pub(crate) use bundle::{BreakGlass, Bundle, Installed};
pub(crate) use roles::ReachKind;
pub use roles::Reacher;
pub(crate) use roles::{AppReach, CreateroleRole, Role, RoleSetting};
pub(crate) use tables::{
    Child, Command, ForeignKey, ForeignKeyKind, Function, Policy, Relation, RelationKind, Rule,
    Sequence, Table,
};

/// What the server told us about the session.
#[derive(Debug, Clone, Serialize)]
pub struct ServerInfo {
    /// `current_database()`.
    pub name: String,
    /// `session_user`.
    pub user: String,
    /// `server_version`.
    pub server_version: String,
    /// `server_version_num`, e.g. 150004.
    #[serde(skip)]
    pub server_version_num: i32,
}

/// How isolation stands on one tenant table.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum TableMode {
    /// Its isolation policy narrows every tenant to its rows.
    Enforced,
    /// Its isolation policy lets every row through and records what
    /// enforcement would hide (`apply --shadow`, `rollback --to-shadow`).
    Shadow,
    /// RLS is off on it under an open break-glass (`rollback --table`).
    BreakGlass,
    /// The bundle has not installed its isolation policy yet.
    NotInstalled,
}

impl TableMode {
    /// As the reports write it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Enforced => "enforced",
            Self::Shadow => "shadow",
            Self::BreakGlass => "break-glass",
            Self::NotInstalled => "not installed",
        }
    }
}

/// The connected session and the server.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// `current_database()`.
    pub(crate) database: String,
    /// `current_user`: whose privileges the statements run with.
    pub(crate) user: String,
    /// `session_user`: who logged in (verify proves isolation as this role).
    pub(crate) session_user: String,
    /// SUPERUSER.
    pub(crate) superuser: bool,
    /// CREATEROLE.
    pub(crate) createrole: bool,
    /// CREATEDB.
    pub(crate) createdb: bool,
    /// REPLICATION.
    pub(crate) replication: bool,
    /// BYPASSRLS.
    pub(crate) bypassrls: bool,
    /// CREATE on the database (needed for the rlsctl schema).
    pub(crate) can_create_schema: bool,
    /// May grant USAGE on the tenant schema (owns it, or holds it WITH GRANT OPTION).
    pub(crate) can_grant_schema_usage: bool,
    /// `server_version_num`, e.g. 150004.
    pub(crate) server_version_num: i32,
    /// Every role that is superuser or BYPASSRLS now.
    pub(crate) bypass_roles: Vec<String>,
    /// pgaudit is loaded (its settings exist).
    pub(crate) pgaudit_loaded: bool,
    /// The session may set `pgaudit.log` per role (superuser, the SET
    /// privilege on it, or RDS's rds_superuser).
    pub(crate) can_set_pgaudit: bool,
    /// The session may set `log_statement` per role.
    pub(crate) can_set_log_statement: bool,
    /// RDS's `rds_iam` role exists (IAM database authentication).
    pub(crate) rds_iam_exists: bool,
    /// The session may grant `rds_iam`.
    pub(crate) can_grant_rds_iam: bool,
    /// The break-glass role's client sessions open now (`pid N`).
    pub(crate) break_glass_sessions: Vec<String>,
    /// `pg_stats_ext` and `pg_stats_ext_exprs` in this database show only
    /// the statistics of tables the user owns (CVE-2024-4317's fix, which a
    /// database created before it gets only from its script).
    pub(crate) stats_ext_private: bool,
}

/// What to read beyond the catalog.
#[derive(Debug, Clone, Copy, Default)]
pub struct Reads {
    /// Run the bundle's NULL-tenant counting helper (a scan per nullable tenant
    /// column): verify and monitor want it; apply counts for itself.
    pub null_counts: bool,
    /// Read the larger half on a second connection, so the server works on
    /// both halves at once (verify and monitor, which read outside any
    /// transaction; apply reads inside its own and never sets it).
    pub parallel: bool,
    /// Read the sequences the tenant tables' columns own: the plan grants the
    /// app role USAGE on them. Only apply needs them (a lookup per table).
    pub sequences: bool,
}

/// Everything the tool knows about the database, read in one go.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The session.
    pub(crate) session: Session,
    /// The app role.
    pub(crate) app: Role,
    /// The break-glass role.
    pub(crate) admin: Role,
    /// What the app role reaches through memberships and setting defaults.
    pub(crate) app_reach: AppReach,
    /// Configured tables, in order.
    pub(crate) tables: Vec<Table>,
    /// Policies in the schema and on children of tenant tables.
    pub(crate) policies: Vec<Policy>,
    /// Index of `policies` by table (`schema.table`), so per-table lookups stay linear overall.
    pub(crate) policies_by_table: HashMap<String, Vec<usize>>,
    /// Tables in the schema with the tenant column that are not configured, and
    /// whether RLS is enabled and forced on them all the same.
    pub(crate) uncovered: Vec<(String, bool)>,
    /// Views, materialized views and foreign tables over tenant data.
    pub(crate) relations: Vec<Relation>,
    /// Rules whose actions read tenant tables.
    pub(crate) rules: Vec<Rule>,
    /// Foreign keys that carry tenant data where the policies do not look.
    pub(crate) foreign_keys: Vec<ForeignKey>,
    /// SECURITY DEFINER and LEAKPROOF functions outside the system schemas.
    pub(crate) functions: Vec<Function>,
    /// Children of tenant tables.
    pub(crate) children: Vec<Child>,
    /// LOGIN roles that read tenant tables today and will see no rows once RLS
    /// is forced (no policy applies to them): (role, table names).
    pub(crate) losing_readers: Vec<(String, Vec<String>)>,
    /// The bundle's schema and records.
    pub(crate) bundle: Bundle,
    /// Every role that reaches every row of a tenant table, by name.
    pub(crate) reach: Vec<Reacher>,
}

impl Snapshot {
    /// The role setting that logs every statement of the break-glass role
    /// ("use only for emergency operations, log all usage"): pgaudit per role
    /// where it is loaded and the session may set it (the way RDS documents
    /// per-role auditing, allowed to the RDS master), else `log_statement`
    /// where the session may set it (a superuser); `None` when neither.
    pub(crate) fn break_glass_logging(&self) -> Option<RoleSetting> {
        let s = &self.session;
        let name = if s.pgaudit_loaded && s.can_set_pgaudit {
            "pgaudit.log"
        } else if s.can_set_log_statement {
            "log_statement"
        } else {
            return None;
        };
        Some(RoleSetting { name, value: "all" })
    }

    /// How `role` reaches every row of a tenant table, if it does (an
    /// always-true policy for PUBLIC reaches every role).
    pub(crate) fn reaches(&self, role: &str) -> Option<&Reacher> {
        self.reach
            .iter()
            .find(|r| r.role == role)
            .or_else(|| self.reach.iter().find(|r| r.role == "PUBLIC"))
    }

    /// The tenant tables whose isolation policy is in shadow mode, in order.
    pub(crate) fn shadow_tables(&self) -> Vec<&str> {
        self.tables
            .iter()
            .filter(|t| self.table_mode(t) == TableMode::Shadow)
            .map(|t| t.display.as_str())
            .collect()
    }

    /// How isolation stands on `table` now.
    pub(crate) fn table_mode(&self, table: &Table) -> TableMode {
        let policy = self.policy(&table.display, crate::model::config::POLICY_NAME);
        let break_glass = self
            .bundle
            .open_break_glass
            .iter()
            .any(|b| b.tables.contains(&table.display));
        match policy {
            _ if break_glass && !table.rls => TableMode::BreakGlass,
            Some(p) if p.is_shadow() => TableMode::Shadow,
            Some(_) => TableMode::Enforced,
            None => TableMode::NotInstalled,
        }
    }

    /// Every tenant table that exists, with its mode, in order.
    pub(crate) fn table_modes(&self) -> Vec<(&str, TableMode)> {
        self.tables
            .iter()
            .filter(|t| t.exists)
            .map(|t| (t.display.as_str(), self.table_mode(t)))
            .collect()
    }

    /// The policies on one table (`schema.table`).
    pub(crate) fn policies_on<'a>(&'a self, table: &str) -> impl Iterator<Item = &'a Policy> + 'a {
        self.policies_by_table
            .get(table)
            .into_iter()
            .flatten()
            .map(|&i| &self.policies[i])
    }

    /// The policy `name` on `table` (`schema.table`), if there is one.
    pub(crate) fn policy(&self, table: &str, name: &str) -> Option<&Policy> {
        self.policies_on(table).find(|p| p.name == name)
    }

    /// The same snapshot with its policy index rebuilt (after `policies` changed).
    pub(crate) fn reindexed(mut self) -> Self {
        self.policies_by_table = index_by_table(&self.policies);
        self
    }

    /// Whether the session sees every row of `table`: it may SELECT, and RLS is
    /// off, or it bypasses RLS (superuser, BYPASSRLS, the owner without FORCE),
    /// or a permissive policy `USING (true)` applies to it and no restrictive
    /// one narrows it. Then its counts of the table are real.
    pub(crate) fn session_sees_all(&self, table: &Table) -> bool {
        let s = &self.session;
        if !table.session_can_select {
            return false;
        }
        if !table.rls || s.superuser || s.bypassrls || (table.session_owns && !table.force) {
            return true;
        }
        let reads = |p: &&Policy| p.applies_to_session && p.cmd.reads();
        let mut policies = self.policies_on(&table.display).filter(reads);
        let (mut open, mut narrowed) = (false, false);
        for p in policies.by_ref() {
            if p.permissive {
                open |= p.using.as_deref() == Some("true");
            } else {
                narrowed = true;
            }
        }
        open && !narrowed
    }

    /// Whether the server is PostgreSQL 16 or newer (role rules changed there).
    pub(crate) fn pg16_or_newer(&self) -> bool {
        self.session.server_version_num >= 160000
    }

    /// Why this session would bypass RLS, if it would: then probes prove nothing.
    pub(crate) fn session_bypass_reason(&self) -> Option<String> {
        let s = &self.session;
        if s.superuser {
            return Some(format!(
                "connected as {}, a superuser, which bypasses RLS",
                s.session_user
            ));
        }
        if s.bypassrls {
            return Some(format!(
                "connected as {}, which has BYPASSRLS",
                s.session_user
            ));
        }
        let owned: Vec<&str> = self
            .tables
            .iter()
            .filter(|t| t.exists && t.session_owns && !t.force)
            .map(|t| t.display.as_str())
            .collect();
        if !owned.is_empty() {
            return Some(format!(
                "connected as {}, which owns {} without FORCE ROW LEVEL SECURITY",
                s.session_user,
                owned.join(", ")
            ));
        }
        None
    }
}

pub(crate) fn index_by_table(policies: &[Policy]) -> HashMap<String, Vec<usize>> {
    let mut index: HashMap<String, Vec<usize>> = HashMap::new();
    for (i, p) in policies.iter().enumerate() {
        index.entry(p.table.clone()).or_default().push(i);
    }
    index
}

/// The tenant column's types across the tenant tables (`text` when none is known).
pub(crate) fn tenant_column_types(tables: &[Table]) -> Vec<String> {
    let mut types: Vec<String> = tables
        .iter()
        .filter(|t| t.exists && t.has_column)
        .map(|t| t.column_type.clone().unwrap_or_else(|| "text".into()))
        .collect();
    types.sort();
    types.dedup();
    if types.is_empty() {
        types.push("text".into());
    }
    types
}
