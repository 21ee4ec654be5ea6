//! The flags of `rlsctl rehearse`.

use super::*;

/// The steps of `rlsctl rehearse`, in order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum RehearseStep {
    /// apply --dry-run (the plan).
    DryRun,
    /// apply --shadow: nothing narrowed yet, what enforcement would hide recorded.
    Shadow,
    /// a nightly report job reads a tenant table without a tenant.
    ShadowTraffic,
    /// shadow report: names the report job's query.
    ShadowReport,
    /// apply --enforce-clean: the tables the job did not read are enforced.
    EnforceClean,
    /// the report job is fixed: it sets its tenant and filters by it.
    JobFixed,
    /// apply --enforce-clean: the job's table is enforced too.
    EnforceLast,
    /// apply: enforces whatever is left (everything, on an existing database).
    Apply,
    /// verify as the app role with two tenants.
    Verify,
    /// monitor, expected clean.
    Monitor,
    /// rollback --table <first table> --reason rehearsal.
    Rollback,
    /// monitor, expected to report the break-glass.
    MonitorBreakGlass,
    /// rollback --restore.
    Restore,
    /// verify again.
    VerifyAgain,
}

/// `rlsctl rehearse`.
#[derive(Debug, Args)]
pub(crate) struct RehearseArgs {
    /// Leave the throwaway cluster running and print the environment that points the other commands at it.
    #[arg(long, conflicts_with = "database_url")]
    pub(crate) keep: bool,
    /// Rehearse against an existing database (a staging restore) instead of a throwaway one,
    /// e.g. postgres://postgres@staging:5432/edgarautoshop. No password in the URL: use
    /// PGPASSWORD or ~/.pgpass for the privileged user.
    #[arg(long, env = "RLSCTL_DATABASE_URL", value_name = "URL")]
    pub(crate) database_url: Option<String>,
    /// Rehearse as a real superuser instead of an RDS-shaped master (by default the
    /// throwaway cluster applies as `postgres` with the RDS master's attributes:
    /// NOSUPERUSER CREATEDB CREATEROLE, a member of rds_superuser).
    #[arg(long, conflicts_with = "database_url")]
    pub(crate) superuser: bool,
    /// With --database-url: also run the break-glass and restore steps.
    #[arg(long, requires = "database_url")]
    pub(crate) with_rollback: bool,
    /// With --database-url: the app role's password (apply sets it when creating the role; verify logs in with it).
    #[arg(long, value_name = "SOURCE", requires = "database_url", value_parser = SourceParser)]
    pub(crate) app_password_from: Option<PasswordSource>,
    /// Output format of the summary.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    /// Stop before STEP and wait for Enter, to inspect the database mid-rehearsal.
    #[arg(long, value_enum, value_name = "STEP")]
    pub(crate) pause_before: Option<RehearseStep>,
    /// Break the database just before the named step, to see the rehearsal catch it (for tests and demos).
    #[arg(long, value_enum, value_name = "STEP", hide = true)]
    pub(crate) inject_fault: Option<RehearseStep>,
    #[command(flatten, next_help_heading = "Target")]
    pub(crate) target: TargetArgs,
}
