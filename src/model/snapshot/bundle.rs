//! The bundle's own schema and what apply recorded in it.

use super::Reacher;

/// One row of the bundle's installed-table registry.
#[derive(Debug, Clone)]
pub(crate) struct Installed {
    /// Table name (in the tenant schema).
    pub(crate) table: String,
    /// The isolation policy's USING as the server deparsed it when installed.
    pub(crate) using: String,
    /// Its WITH CHECK, likewise.
    pub(crate) check: String,
    /// When the policy took its present form, in milliseconds since the epoch
    /// (`None`: recorded by an older rlsctl).
    pub(crate) policy_since: Option<i64>,
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

/// A policy apply found on a tenant table and did not create, as the last
/// apply recorded it (`bundle_history.existing_policies`; the rest of what
/// apply records there is the plan's).
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
pub(crate) struct RecordedPolicy {
    /// `schema.table`.
    pub(crate) table: String,
    /// Its name.
    pub(crate) name: String,
    /// USING, as the server deparsed it then.
    pub(crate) using: Option<String>,
    /// WITH CHECK, likewise.
    pub(crate) check: Option<String>,
    /// What apply did with it: `kept`, `replaced` or `refused` (accepted).
    pub(crate) disposition: String,
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
    /// The policies on the tenant tables that the last apply found and did
    /// not create (kept, or accepted); `None` when that apply did not record
    /// them (an older rlsctl).
    pub(crate) recorded_existing: Option<Vec<RecordedPolicy>>,
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
