//! One model of the database: everything apply, rollback, verify, monitor and
//! rehearse need to know, read once by [`Snapshot::read`] with a constant
//! number of statements whatever the number of tables (its SQL is in
//! `sql/inspect/`). The checks and the plan are pure functions of it.

use std::collections::HashMap;

use serde::Serialize;

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
    /// The break-glass role's client sessions open now (`pid N`).
    pub(crate) break_glass_sessions: Vec<String>,
}

/// A role that reaches every row of at least one tenant table, and how (see
/// `sql/inspect/reach.sql`): the one notion every "is this a bypass" question
/// asks.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Reacher {
    /// The role, or `PUBLIC` when an always-true policy names PUBLIC.
    pub(crate) role: String,
    /// It can log in.
    pub(crate) login: bool,
    /// Why the role at the end of the path reaches rows: superuser,
    /// BYPASSRLS, owner, an always-true policy, or CREATEROLE (15 and older).
    pub(crate) reason: String,
    /// How many of the tenant tables it reaches.
    pub(crate) tables: i64,
    /// It reaches every tenant table.
    pub(crate) all_tables: bool,
    /// The membership path from this role to the one that reaches rows
    /// itself (one element when it does so itself).
    pub(crate) path: Vec<String>,
    /// What runs with this role's rights (a view, a SECURITY DEFINER
    /// function) reads every row as it is, without first changing anything:
    /// superuser, BYPASSRLS, or an always-true policy through inherited
    /// membership. (An owner under FORCE, or a role that must SET ROLE or
    /// grant itself something first, reaches rows only by acting.)
    #[serde(default)]
    pub(crate) reads_as_itself: bool,
}

impl Reacher {
    /// `reporter → tenant_admin (policy rlsctl_break_glass is USING (true))`.
    pub(crate) fn describe(&self) -> String {
        let scope = if self.all_tables {
            String::new()
        } else {
            format!(", on {} tenant table(s)", self.tables)
        };
        format!("{} ({}{scope})", self.path.join(" → "), self.reason)
    }
}

/// One of the bundle's roles (the app role or the break-glass role).
#[derive(Debug, Clone, Default)]
pub(crate) struct Role {
    /// It exists.
    pub(crate) exists: bool,
    /// LOGIN.
    pub(crate) login: bool,
    /// SUPERUSER.
    pub(crate) superuser: bool,
    /// BYPASSRLS.
    pub(crate) bypassrls: bool,
    /// CREATEDB.
    pub(crate) createdb: bool,
    /// CREATEROLE.
    pub(crate) createrole: bool,
    /// REPLICATION.
    pub(crate) replication: bool,
    /// USAGE on the tenant schema (directly or through PUBLIC; for a role that
    /// does not exist yet, what PUBLIC has).
    pub(crate) schema_usage: bool,
    /// CONNECT on the database (likewise).
    pub(crate) connect: bool,
    /// The session holds ADMIN OPTION on it (on PostgreSQL 16+ what CREATEROLE
    /// needs to alter, grant or drop a role).
    pub(crate) session_is_admin: bool,
    /// The session has its privileges (an inheriting member, or the role itself).
    pub(crate) session_inherits: bool,
    /// Its settings for every database (`ALTER ROLE ... SET`), as `name=value`.
    pub(crate) settings: Vec<String>,
}

impl Role {
    /// Whether its settings for every database hold `name` = `value`
    /// (compared case-insensitively, quotes aside).
    pub(crate) fn has_setting(&self, name: &str, value: &str) -> bool {
        self.settings.iter().any(|s| {
            s.split_once('=').is_some_and(|(n, v)| {
                n.trim().eq_ignore_ascii_case(name)
                    && v.trim().trim_matches('\'').eq_ignore_ascii_case(value)
            })
        })
    }
}

/// A per-role setting (`ALTER ROLE ... SET name = value`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RoleSetting {
    /// The parameter.
    pub(crate) name: &'static str,
    /// Its value.
    pub(crate) value: &'static str,
}

impl std::fmt::Display for RoleSetting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}={}", self.name, self.value)
    }
}

/// What the app role reaches beyond its own grants.
#[derive(Debug, Clone, Default)]
pub(crate) struct AppReach {
    /// The app role itself, or roles it reaches, that have CREATEROLE.
    pub(crate) createrole_roles: Vec<String>,
    /// Role-, database- or server-level defaults of the tenant setting: "scope: setting=value".
    pub(crate) setting_defaults: Vec<String>,
    /// Default privileges that will grant the app role (or PUBLIC) TRUNCATE,
    /// REFERENCES or TRIGGER on tables created later.
    pub(crate) default_privileges: Vec<String>,
}

/// A sequence owned by a column of a tenant table.
#[derive(Debug, Clone)]
pub(crate) struct Sequence {
    /// Schema.
    pub(crate) schema: String,
    /// Name.
    pub(crate) name: String,
    /// Whether the app role can use it.
    pub(crate) app_usage: bool,
}

/// One configured tenant table (present or not), or a partition of one.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    /// Name as configured (or the partition's name).
    pub(crate) name: String,
    /// `schema.table` for display.
    pub(crate) display: String,
    /// For a partition: `schema.table` of the configured table it belongs to.
    pub(crate) partition_of: Option<String>,
    /// A partitioned table (its rows live in its partitions).
    pub(crate) partitioned: bool,
    /// Exists (as a table or partitioned table).
    pub(crate) exists: bool,
    /// Has the tenant column.
    pub(crate) has_column: bool,
    /// The column's type without modifiers, as `format_type` writes it.
    pub(crate) column_type: Option<String>,
    /// Owner.
    pub(crate) owner: Option<String>,
    /// The session has the owner's privileges (owner, or an inheriting member).
    pub(crate) session_owns: bool,
    /// The app role is the owner or a member of it (it can `SET ROLE` to it).
    pub(crate) app_owns: bool,
    /// relrowsecurity.
    pub(crate) rls: bool,
    /// relforcerowsecurity.
    pub(crate) force: bool,
    /// A btree index led by the tenant column.
    pub(crate) has_tenant_index: bool,
    /// Privileges granted to PUBLIC.
    pub(crate) public_privileges: Vec<String>,
    /// Privileges granted directly to the app role.
    pub(crate) app_privileges: Vec<String>,
    /// Privileges granted directly to the break-glass role.
    pub(crate) admin_privileges: Vec<String>,
    /// TRUNCATE / REFERENCES / TRIGGER the app role holds (directly, by membership or PUBLIC).
    pub(crate) app_forbidden_privileges: Vec<String>,
    /// Sequences owned by its columns.
    pub(crate) sequences: Vec<Sequence>,
    /// The session holds SELECT on it.
    pub(crate) session_can_select: bool,
}

/// The command a policy governs (`pg_policy.polcmd`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command {
    /// `ALL` (`*`).
    All,
    /// `SELECT` (`r`).
    Select,
    /// `INSERT` (`a`).
    Insert,
    /// `UPDATE` (`w`).
    Update,
    /// `DELETE` (`d`).
    Delete,
}

impl Command {
    /// From `polcmd`; `None` for a code this version does not know.
    pub(crate) fn from_polcmd(code: &str) -> Option<Self> {
        Some(match code {
            "*" => Self::All,
            "r" => Self::Select,
            "a" => Self::Insert,
            "w" => Self::Update,
            "d" => Self::Delete,
            _ => return None,
        })
    }

    /// As SQL writes it.
    pub(crate) fn sql(self) -> &'static str {
        match self {
            Self::All => "ALL",
            Self::Select => "SELECT",
            Self::Insert => "INSERT",
            Self::Update => "UPDATE",
            Self::Delete => "DELETE",
        }
    }

    /// It governs reads (USING applies to SELECT).
    pub(crate) fn reads(self) -> bool {
        matches!(self, Self::All | Self::Select)
    }

    /// It governs writes that WITH CHECK applies to (INSERT, UPDATE).
    pub(crate) fn writes(self) -> bool {
        matches!(self, Self::All | Self::Insert | Self::Update)
    }
}

/// A policy on a table of the schema or on a child of a tenant table.
#[derive(Debug, Clone)]
pub(crate) struct Policy {
    /// `schema.table` of the table.
    pub(crate) table: String,
    /// Policy name.
    pub(crate) name: String,
    /// The command it governs.
    pub(crate) cmd: Command,
    /// PERMISSIVE (else RESTRICTIVE).
    pub(crate) permissive: bool,
    /// Role names (`public` for PUBLIC), sorted.
    pub(crate) roles: Vec<String>,
    /// It applies to the app role (directly, through membership, or PUBLIC).
    pub(crate) applies_to_app: bool,
    /// It applies to the session (whose privileges it has, or PUBLIC).
    pub(crate) applies_to_session: bool,
    /// USING, deparsed.
    pub(crate) using: Option<String>,
    /// WITH CHECK, deparsed.
    pub(crate) check: Option<String>,
    /// USING uses only built-in operators, functions and types and reads only
    /// the tenant column (or is the tree apply recorded).
    pub(crate) using_builtin: bool,
    /// The same for WITH CHECK.
    pub(crate) check_builtin: bool,
}

impl Policy {
    /// USING restricts rows to the tenant in `setting` by `column`: in one of
    /// the accepted textual forms, and built only of built-in parts over the
    /// tenant column (see [`Policy::using_builtin`]).
    pub(crate) fn scopes_reads(&self, column: &str, setting: &str) -> bool {
        self.using_builtin && scoped(&self.using, column, setting)
    }

    /// The same for WITH CHECK.
    pub(crate) fn scopes_writes(&self, column: &str, setting: &str) -> bool {
        self.check_builtin && scoped(&self.check, column, setting)
    }

    /// The policy is in shadow mode (`apply --shadow`): it lets every row
    /// through and records those the isolation predicate would hide.
    pub(crate) fn is_shadow(&self) -> bool {
        [&self.using, &self.check]
            .iter()
            .any(|e| e.as_deref().is_some_and(crate::model::policy::is_shadow))
    }
}

fn scoped(expr: &Option<String>, column: &str, setting: &str) -> bool {
    expr.as_deref()
        .is_some_and(|e| crate::model::policy::scopes_to_tenant(e, column, setting))
}

/// What a [`Relation`] is (`pg_class.relkind`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RelationKind {
    /// A view (`v`).
    View,
    /// A materialized view (`m`).
    MaterializedView,
    /// A foreign table (`f`).
    ForeignTable,
}

impl RelationKind {
    /// From `relkind`; `None` for any other kind.
    pub(crate) fn from_relkind(code: &str) -> Option<Self> {
        Some(match code {
            "v" => Self::View,
            "m" => Self::MaterializedView,
            "f" => Self::ForeignTable,
            _ => return None,
        })
    }
}

/// A view, materialized view or foreign table over tenant data.
#[derive(Debug, Clone)]
pub(crate) struct Relation {
    /// `schema.name`.
    pub(crate) name: String,
    /// Its name without the schema (as a function body may mention it).
    pub(crate) bare_name: String,
    /// The app role may SELECT from it.
    pub(crate) app_can_select: bool,
    /// What kind of relation it is.
    pub(crate) kind: RelationKind,
    /// Owner.
    pub(crate) owner: String,
    /// The owner bypasses RLS on what it reads (superuser, BYPASSRLS, or owner of an unforced base table).
    pub(crate) owner_bypasses: bool,
    /// `security_invoker` is set (PostgreSQL 15+).
    pub(crate) security_invoker: bool,
    /// The tenant tables it reads (empty for foreign tables).
    pub(crate) reads: Vec<String>,
}

/// A SECURITY DEFINER or LEAKPROOF function.
#[derive(Debug, Clone)]
pub(crate) struct Function {
    /// `schema.name(args)`.
    pub(crate) signature: String,
    /// Schema.
    pub(crate) schema: String,
    /// Name.
    pub(crate) name: String,
    /// SECURITY DEFINER.
    pub(crate) security_definer: bool,
    /// LEAKPROOF.
    pub(crate) leakproof: bool,
    /// Has a `search_path` setting.
    pub(crate) pins_search_path: bool,
    /// The app role may execute it.
    pub(crate) app_can_execute: bool,
    /// Its source.
    pub(crate) source: String,
    /// Its language (`sql`, `plpgsql`, `c`, ...).
    pub(crate) language: String,
    /// Its owner (whose rights a SECURITY DEFINER function runs with).
    pub(crate) owner: String,
    /// What it returns (`trigger` and `event_trigger` functions cannot be called).
    pub(crate) returns: String,
    /// An extension owns it (`CREATE EXTENSION` made it).
    pub(crate) in_extension: bool,
    /// A trigger function attached to a table the app role can write to.
    pub(crate) app_fires: bool,
    /// `COMMENT ON FUNCTION` (where a review is recorded).
    pub(crate) comment: String,
    /// The names of every user-defined function (a call to one runs with the
    /// definer's rights too).
    pub(crate) user_functions: Vec<String>,
}

/// A partition or inheritance child of a tenant table.
#[derive(Debug, Clone)]
pub(crate) struct Child {
    /// `schema.name`.
    pub(crate) name: String,
    /// `schema.name` of the tenant table it descends from.
    pub(crate) parent: String,
    /// relrowsecurity.
    pub(crate) rls: bool,
    /// relforcerowsecurity.
    pub(crate) force: bool,
}

/// One row of the bundle's installed-table registry.
#[derive(Debug, Clone)]
pub(crate) struct Installed {
    /// Table name (in the tenant schema).
    pub(crate) table: String,
    /// The isolation policy's USING as the server deparsed it when installed.
    pub(crate) using: String,
    /// Its WITH CHECK, likewise.
    pub(crate) check: String,
}

/// An open break-glass entry.
#[derive(Debug, Clone)]
pub(crate) struct BreakGlass {
    /// `schema.table` of the tables it disabled.
    pub(crate) tables: Vec<String>,
    /// Who started it.
    pub(crate) started_by: String,
    /// When.
    pub(crate) started_at: String,
    /// Why.
    pub(crate) reason: String,
}

/// The bundle's own schema and what it recorded.
#[derive(Debug, Clone, Default)]
pub(crate) struct Bundle {
    /// The rlsctl schema and its three tables exist.
    pub(crate) installed: bool,
    /// The session may use the schema (read its records).
    pub(crate) usage: bool,
    /// The helper exists and the session may execute it.
    pub(crate) helper_executable: bool,
    /// The helper's source, security, settings and owner are as the bundle makes them.
    pub(crate) helper_current: bool,
    /// The shadow function is there as the bundle writes it, executable by the app role.
    pub(crate) shadow_current: bool,
    /// The app role can read the bundle tables and run the helper.
    pub(crate) app_grants: bool,
    /// The installed-table registry.
    pub(crate) registry: Vec<Installed>,
    /// Roles that bypassed RLS when the bundle was last applied.
    pub(crate) recorded_bypass_roles: Option<Vec<String>>,
    /// Who reached every row right after the last apply; `None` when that
    /// apply did not record it (an older rlsctl).
    pub(crate) recorded_reach: Option<Vec<Reacher>>,
    /// The history table has the columns that record the reach set and the
    /// registry's checksum.
    pub(crate) records_current: bool,
    /// The app role may execute `rlsctl.shadow_seen`.
    pub(crate) shadow_executable: bool,
    /// Roles that can log in and write the bundle's records (or become their
    /// owner, or create in its schema), other than superusers: (role, what).
    pub(crate) writers: Vec<(String, String)>,
    /// The registry's checksum as the last apply recorded it (`None` when that
    /// apply predates it) and as it is now; `None` without a history row.
    pub(crate) registry_checksum: Option<(Option<String>, String)>,
    /// The setting the last apply made sure logs the break-glass role's
    /// statements (`pgaudit.log=all`, `log_statement=all`), if any.
    pub(crate) recorded_logging: Option<String>,
    /// When and by whom the last apply ran.
    pub(crate) last_apply: Option<String>,
    /// Every role that ever applied the bundle (its history's `applied_by`).
    pub(crate) appliers: Vec<String>,
    /// The owner of the rlsctl schema, and whether it is a superuser; `None`
    /// when there is no such schema.
    pub(crate) schema_owner: Option<(String, bool)>,
    /// What is in or on the rlsctl schema that the bundle did not make, or that
    /// a role other than the schema's owner made (see sql/inspect/bundle_objects.sql).
    pub(crate) foreign_objects: Vec<String>,
    /// Open break-glass entries.
    pub(crate) open_break_glass: Vec<BreakGlass>,
    /// NULL tenant counts from the helper: (table, count or None when unknown);
    /// `None` when not asked for or the helper cannot be run.
    pub(crate) null_counts: Option<Vec<(String, Option<i64>)>>,
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
            .filter(|t| {
                self.policies_on(&t.display)
                    .any(|p| p.name == crate::model::config::POLICY_NAME && p.is_shadow())
            })
            .map(|t| t.display.as_str())
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
