//! Tenant tables and what is on or around them: policies, sequences,
//! children, views and functions.

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
    /// When it does not: what else has the name (`a view`, `a sequence`, ...).
    pub(crate) other_kind: Option<String>,
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

    /// The same for the expression that checks new rows (see
    /// [`Policy::new_row_check`]).
    pub(crate) fn scopes_writes(&self, column: &str, setting: &str) -> bool {
        match self.new_row_check() {
            Some((check, builtin)) => {
                builtin && crate::model::policy::scopes_to_tenant(check, column, setting)
            }
            None => true,
        }
    }

    /// The expression PostgreSQL checks new rows against for this policy,
    /// and whether it is built only of built-in parts: WITH CHECK, or for
    /// `ALL` and `UPDATE` without one, USING (a row written for another
    /// tenant then fails "new row violates row-level security policy").
    /// `None` when the policy checks no new row: a SELECT or DELETE policy,
    /// or an INSERT policy without WITH CHECK (which lets no row in).
    pub(crate) fn new_row_check(&self) -> Option<(&str, bool)> {
        if let Some(check) = self.check.as_deref() {
            return Some((check, self.check_builtin));
        }
        match self.cmd {
            Command::All | Command::Update => {
                self.using.as_deref().map(|u| (u, self.using_builtin))
            }
            _ => None,
        }
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
    /// The md5 of its definition (a view's query), for acceptances.
    pub(crate) definition_md5: String,
}

/// A rule (other than a view's own) whose action reads tenant tables: it
/// runs with the rights of its table's owner (`CREATE RULE`).
#[derive(Debug, Clone)]
pub(crate) struct Rule {
    /// The rule's name.
    pub(crate) name: String,
    /// `schema.table` it is on.
    pub(crate) table: String,
    /// The statement that fires it: `SELECT`, `INSERT`, `UPDATE` or `DELETE`.
    pub(crate) event: String,
    /// The app role may run that statement on the table.
    pub(crate) app_fires: bool,
    /// The table's owner, whose rights the action runs with.
    pub(crate) owner: String,
    /// The owner bypasses RLS on what the action reads.
    pub(crate) owner_bypasses: bool,
    /// The tenant tables the action reads.
    pub(crate) reads: Vec<String>,
    /// The md5 of the rule's definition, for acceptances.
    pub(crate) definition_md5: String,
}

/// A foreign key that carries tenant data where the policies do not look
/// (`sql/inspect/foreign_keys.sql`).
#[derive(Debug, Clone)]
pub(crate) struct ForeignKey {
    /// Which kind of key it is.
    pub(crate) kind: ForeignKeyKind,
    /// `schema.table` that holds the key.
    pub(crate) table: String,
    /// The constraint's name.
    pub(crate) name: String,
    /// `schema.table` it references (a tenant table).
    pub(crate) parent: String,
    /// `FOREIGN KEY (...) REFERENCES ...`.
    pub(crate) definition: String,
    /// The app role can read the table that holds the key.
    pub(crate) app_can_read: bool,
    /// RLS is on that table, with a policy of its own.
    pub(crate) covered: bool,
}

/// What a [`ForeignKey`] leaves open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForeignKeyKind {
    /// A table without the tenant column references a tenant table: its rows
    /// belong to tenants, and no isolation policy can cover them.
    Child,
    /// A key between tenant tables leaves the tenant column out: a row may
    /// reference another tenant's row (key checks ignore row security).
    Cross,
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
    /// Its `search_path` setting (`SET search_path = ...`), if any, as stored.
    pub(crate) search_path: Option<String>,
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

impl Table {
    /// Why it is not there as a table: `public.v is a view, not a table` or
    /// `public.t does not exist`.
    pub(crate) fn missing(&self) -> String {
        match &self.other_kind {
            Some(kind) => format!(
                "{} is {kind}, not a table: row security applies to tables (configure the tables it reads)",
                self.display
            ),
            None => format!("{} does not exist", self.display),
        }
    }
}

impl Function {
    /// Its `search_path` ends with `pg_temp`. PostgreSQL searches the
    /// caller's temporary schema first for relations unless the path names
    /// it, so a path that does not end with it lets the caller's temporary
    /// table stand in for one the function reads (`SET search_path = ''`
    /// included).
    pub(crate) fn search_path_ends_with_pg_temp(&self) -> bool {
        self.search_path.as_deref().is_some_and(|path| {
            path.rsplit(',')
                .next()
                .map(|last| last.trim().trim_matches('"'))
                .is_some_and(|last| last.eq_ignore_ascii_case("pg_temp"))
        })
    }
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
