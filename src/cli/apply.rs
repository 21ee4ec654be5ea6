//! The flags of `rlsctl apply`.

use super::*;

/// `rlsctl apply`.
#[derive(Debug, Args)]
pub(crate) struct ApplyArgs {
    /// Show the plan, object by object, and the SQL (passwords redacted); change nothing.
    #[arg(long)]
    pub(crate) dry_run: bool,
    /// How long one attempt waits for a table lock before giving up (keeps the app from queueing behind apply).
    #[arg(long, value_parser = parse_duration, default_value = "5s")]
    pub(crate) lock_timeout: Duration,
    /// How many times to retry after a lock timeout, with backoff, before failing.
    #[arg(long, default_value_t = 3)]
    pub(crate) lock_retries: u32,
    /// Tenant tables per transaction. By default one transaction, or batches
    /// when the server's lock table cannot hold every table's lock at once
    /// (each batch commits whole tables; a rerun finishes an interrupted run).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) batch_size: Option<u32>,
    /// Shadow mode: install everything, but let the app role see and write every
    /// row; each statement that enforcement would narrow is recorded in the
    /// server log (read it with `rlsctl shadow report`). A later plain `apply`
    /// enforces, in one transaction.
    #[arg(long, conflicts_with_all = ["enforce", "enforce_clean"])]
    pub(crate) shadow: bool,
    /// Staged enforcement: enforce these tenant tables (comma-separated, as
    /// configured); every other keeps its mode, and a table not installed yet
    /// starts in shadow mode.
    #[arg(
        long,
        value_delimiter = ',',
        value_name = "TABLE",
        conflicts_with = "enforce_clean"
    )]
    pub(crate) enforce: Vec<String>,
    /// Staged enforcement: enforce exactly the tables the shadow records show
    /// clean since --since (no record, and in shadow mode that whole time);
    /// the others stay in shadow. A log that cannot be read, or that does not
    /// reach back to --since, is an error: no table is called clean for lack
    /// of data.
    #[arg(long, requires = "since")]
    pub(crate) enforce_clean: bool,
    #[command(flatten, next_help_heading = "Shadow records (--enforce-clean)")]
    pub(crate) logs: LogSourceArgs,
    /// Password for the app role when apply creates it (or with --rotate-passwords).
    #[arg(long, env = "RLSCTL_APP_PASSWORD_FROM", value_name = "SOURCE", value_parser = SourceParser)]
    pub(crate) app_password_from: Option<PasswordSource>,
    /// Password for the break-glass role; without it the role is created NOLOGIN (members use SET ROLE).
    #[arg(long, env = "RLSCTL_ADMIN_PASSWORD_FROM", value_name = "SOURCE", value_parser = SourceParser)]
    pub(crate) admin_password_from: Option<PasswordSource>,
    /// Create the app role without a password (for IAM database authentication).
    #[arg(long, conflicts_with = "app_password_from")]
    pub(crate) no_app_password: bool,
    /// The app role logs in with RDS IAM auth tokens: grant it rds_iam (no password).
    #[arg(long, conflicts_with = "app_password_from")]
    pub(crate) app_iam: bool,
    /// Set the passwords of roles that already exist (otherwise they are left alone).
    #[arg(long)]
    pub(crate) rotate_passwords: bool,
    /// Also give the break-glass role BYPASSRLS, where the applying role may
    /// (a superuser; on PostgreSQL 16+ a role with BYPASSRLS). Not needed: the
    /// break-glass role reaches every row through its own policy.
    #[arg(long)]
    pub(crate) admin_bypassrls: bool,
    /// Drop the permissive policies on tenant tables that apply did not create
    /// and that would stay ORed with the isolation policy (the plan lists
    /// them), in the same transaction, their definitions recorded so rollback
    /// --uninstall recreates them; without it apply refuses while they are there.
    #[arg(long)]
    pub(crate) replace_policies: bool,
    /// Reviewed exceptions (TOML, as for verify): the only way past a
    /// pre-flight refusal about the database itself (PRE011, PRE012).
    #[arg(long, env = "RLSCTL_ACCEPT", value_name = "FILE")]
    pub(crate) accept: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    #[command(flatten)]
    pub(crate) db: DatabaseArgs,
}
