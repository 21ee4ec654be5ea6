//! The flags of `rlsctl rollback`.

use super::*;

/// `rlsctl rollback`.
#[derive(Debug, Args)]
pub(crate) struct RollbackArgs {
    /// A table to disable RLS on (repeatable); with --to-shadow, to put back in shadow mode.
    #[arg(long = "table", value_name = "TABLE", conflicts_with_all = ["all", "restore", "uninstall"])]
    pub(crate) table: Vec<String>,
    /// The gentle way back for an enforced table that breaks a job: put the
    /// --table(s) back in shadow mode (RLS stays on; the app sees every
    /// tenant's rows there again, and what enforcement would hide is recorded
    /// again). Recorded in the break-glass log; `apply --enforce TABLE`
    /// enforces it again.
    #[arg(long, requires = "table")]
    pub(crate) to_shadow: bool,
    /// Disable RLS on every tenant table.
    #[arg(long, conflicts_with_all = ["restore", "uninstall"])]
    pub(crate) all: bool,
    /// Re-enable and FORCE RLS on every table that break-glass disabled, and close the log entries.
    #[arg(long, conflicts_with = "uninstall")]
    pub(crate) restore: bool,
    /// Remove everything the bundle installed (policies, RLS, grants, helpers); keeps the log.
    #[arg(long)]
    pub(crate) uninstall: bool,
    /// With --uninstall: drop the app and break-glass roles too.
    #[arg(long, requires = "uninstall")]
    pub(crate) drop_roles: bool,
    /// Why (an incident id); recorded in the break-glass log. Required to disable or uninstall.
    #[arg(long)]
    pub(crate) reason: Option<String>,
    /// Do not ask to type the database name to confirm.
    #[arg(long, short = 'y')]
    pub(crate) yes: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    #[command(flatten)]
    pub(crate) db: DatabaseArgs,
}
