//! Every command, flag and help text of `rlsctl`, in one place.
//!
//! Precedence of settings is flag > environment > `.env` in the working
//! directory > default: clap reads the environment (`env = ...`), and `main`
//! loads `.env` into the environment before parsing without overriding what
//! is already set.

use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::credentials::{PasswordSource, SourceParser};
pub(crate) use crate::logging::LogFormat;
pub(crate) use crate::pg::tls::SslMode;

/// Exit codes, shown at the end of every `--help`.
pub(crate) const EXIT_CODES: &str = "\
Exit codes:
  0    success; nothing wrong found
  1    the tool ran and found a problem (a failed check, drift, an apply refused by its pre-flight)
  2    the tool could not do its job (bad input, cannot connect, AWS error, plugin missing)
  130  interrupted (Ctrl-C); anything half-done was rolled back
  143  terminated (SIGTERM), 129 hung up (SIGHUP): the same clean stop";

/// rlsctl: cut a multi-tenant PostgreSQL database over to Row-Level Security,
/// prove that tenants are isolated, watch for drift, and roll back under
/// break-glass.
#[derive(Debug, Parser)]
#[command(name = "rlsctl", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// Logging and verbosity, shared by every command.
    #[command(flatten)]
    pub(crate) global: GlobalArgs,
    /// The command to run.
    #[command(subcommand)]
    pub(crate) command: Command,
}

impl Cli {
    /// The run checks many databases (`monitor --targets`).
    pub(crate) fn many_targets(&self) -> bool {
        matches!(&self.command, Command::Monitor(args) if args.fleet.targets.is_some())
    }
}

/// Flags that every command accepts.
#[derive(Debug, Args)]
pub(crate) struct GlobalArgs {
    /// More log output on stderr (-v info, -vv debug, -vvv trace).
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub(crate) verbose: u8,
    /// Only errors on stderr; `monitor` also prints nothing on stdout when all is well.
    #[arg(short, long, global = true)]
    pub(crate) quiet: bool,
    /// Log line format on stderr: `text` for people, `json` (JSON lines) for cron and journald.
    /// The filter can be set with RLSCTL_LOG (tracing env-filter syntax).
    #[arg(long, value_enum, default_value_t = LogFormat::Text, global = true)]
    pub(crate) log_format: LogFormat,
    /// The longest the whole run may take (e.g. 10m; 0 for no limit). Past
    /// it, what is in flight is cancelled (a change rolls back whole) and the
    /// run ends with exit 2, so cron never piles runs up. Not for `tunnel`,
    /// which runs until stopped.
    #[arg(long, env = "RLSCTL_TIMEOUT", value_name = "DURATION", value_parser = parse_duration,
          default_value = "30m", global = true)]
    pub(crate) timeout: Duration,
}

/// Result format for `apply`, `verify`, `rollback` and `rehearse`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Format {
    /// A readable table.
    Text,
    /// The JSON document described in docs/checks.md (a public contract).
    Json,
}

/// Result format for `verify`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum VerifyFormat {
    /// A readable table.
    Text,
    /// The JSON document described in docs/checks.md (a public contract).
    Json,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
    /// JUnit XML, for CI test-report viewers.
    Junit,
}

/// Result format for `monitor`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum MonitorFormat {
    /// A readable table.
    Text,
    /// The JSON document described in docs/checks.md.
    Json,
    /// node_exporter textfile-collector format.
    Prometheus,
    /// SARIF 2.1.0, for code-scanning dashboards.
    Sarif,
    /// JUnit XML, for CI test-report viewers.
    Junit,
}

/// What verify and monitor do with their findings before they print them.
#[derive(Debug, Clone, Args)]
pub(crate) struct ReportArgs {
    /// Reviewed exceptions (TOML: [[accept]] with check, object, reason, an
    /// optional until day and, with --targets, an optional target). A finding one accepts is reported as `accepted`, with
    /// its reason, and is no failure; an entry past its day fails the run; one
    /// that matches nothing is reported stale.
    #[arg(long, env = "RLSCTL_ACCEPT", value_name = "FILE")]
    pub(crate) accept: Option<PathBuf>,
    /// The address of docs/checks.md, for the rules' help links in SARIF.
    #[arg(long, env = "RLSCTL_DOCS_URL", value_name = "URL")]
    pub(crate) docs_url: Option<String>,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Apply the embedded RLS bundle (roles, RLS, policies, grants, helpers) in one transaction.
    ///
    /// Connects as a privileged user (postgres, or the RDS master user). Idempotent:
    /// a second run changes nothing. Refuses (exit 1) when the pre-flight finds a
    /// missing table or column, rows whose tenant column is NULL, a policy of
    /// its own on a tenant table that would stay ORed with the bundle's (see
    /// --replace-policies), or an app role that already reaches every row.
    #[command(after_help = EXIT_CODES)]
    Apply(ApplyArgs),
    /// Prove tenant isolation, connected as the application role.
    ///
    /// Runs the catalog checks (role security, RLS coverage, bypass paths), the
    /// probes (fail-closed, read and write isolation, context scoping, all inside a
    /// transaction that is rolled back) and, with --app-url, the app checks.
    #[command(after_help = EXIT_CODES)]
    Verify(VerifyArgs),
    /// Nightly drift check for cron: catalog checks plus drift against the installed bundle.
    ///
    /// Connects as the application role by default, is read-only and never prompts.
    /// Exit 1 means drift.
    #[command(after_help = EXIT_CODES)]
    Monitor(MonitorArgs),
    /// Break-glass: disable RLS on tables with a reason (audited); --restore puts it back.
    ///
    /// Connects as a privileged user. --uninstall removes the whole bundle.
    #[command(after_help = EXIT_CODES)]
    Rollback(RollbackArgs),
    /// The whole cutover on a throwaway local PostgreSQL with a sample schema.
    ///
    /// apply --dry-run, apply --shadow, a report job without a tenant, shadow report,
    /// apply (enforces), verify, monitor, rollback, monitor, restore, verify.
    #[command(after_help = EXIT_CODES)]
    Rehearse(RehearseArgs),
    /// Shadow mode (after `apply --shadow`): what enforcement would hide.
    ///
    /// `shadow report` reads the records the shadow policies wrote to the server
    /// log and prints, per table, the queries that enforcement would empty or
    /// narrow. Exit 1 when there are any, 0 when none.
    #[command(subcommand)]
    Shadow(ShadowCommand),
    /// SSM port forwarding localhost:15432 -> RDS:5432 through an EC2 instance; foreground until Ctrl-C.
    ///
    /// Uses AWS credentials (standard chain) and the session-manager-plugin. Prints
    /// `ready: ...` on stderr once the port is open; Ctrl-C or SIGTERM ends the session.
    #[command(after_help = EXIT_CODES)]
    Tunnel(TunnelArgs),
    /// Print shell completions for the given shell on stdout.
    Completions {
        /// The shell.
        shell: clap_complete::Shell,
    },
    /// Print the man page (roff) on stdout.
    Man,
}

/// Where and how to connect to PostgreSQL (libpq conventions).
#[derive(Debug, Clone, Args)]
pub(crate) struct ConnectionArgs {
    /// Server host name or address.
    #[arg(long, env = "PGHOST", default_value = "127.0.0.1")]
    pub(crate) host: String,
    /// Server port (15432 is the SSM tunnel's local port).
    #[arg(long, env = "PGPORT", default_value_t = 15432)]
    pub(crate) port: u16,
    /// Database name.
    #[arg(
        short = 'd',
        long = "dbname",
        env = "PGDATABASE",
        default_value = "edgarautoshop"
    )]
    pub(crate) dbname: String,
    /// User name (the default depends on the command: the app role for verify and monitor, postgres otherwise).
    #[arg(short = 'U', long, env = "PGUSER")]
    pub(crate) user: Option<String>,
    /// Where the password comes from: prompt, env:VAR, file:PATH, ssm:/parameter/name,
    /// secretsmanager:SECRET (name or ARN; a JSON secret also gives the user name) or
    /// rds-master (the secret RDS keeps for the master user of --db-instance).
    /// Without it: PGPASSWORD, then ~/.pgpass (PGPASSFILE), then a prompt on a TTY.
    #[arg(long, env = "RLSCTL_PASSWORD_FROM", value_name = "SOURCE", value_parser = SourceParser)]
    pub(crate) password_from: Option<PasswordSource>,
    /// Authenticate with an RDS IAM auth token instead of a password: made from the AWS
    /// credentials, fresh for every connection, signed for RDS_ENDPOINT and --remote-port
    /// (else --host and --port). Needs TLS (sslmode require or stronger).
    #[arg(long, env = "RLSCTL_IAM_AUTH", conflicts_with = "password_from")]
    pub(crate) iam_auth: bool,
    /// TLS mode: disable, prefer, require, verify-ca or verify-full. Default:
    /// verify-full when a TLS server name is set or the connection goes through
    /// an SSM tunnel (anything weaker must be asked for), else prefer.
    #[arg(long, env = "PGSSLMODE", value_enum)]
    pub(crate) sslmode: Option<SslMode>,
    /// Answer a server that asks for a cleartext or MD5 password. Refused by
    /// default, as libpq's require_auth can: a fake server on the local port
    /// would capture it.
    #[arg(long, env = "RLSCTL_ALLOW_WEAK_AUTH")]
    pub(crate) allow_weak_auth: bool,
    /// CA certificates (PEM) to verify the server with; the system roots when not given.
    #[arg(long, env = "PGSSLROOTCERT", value_name = "FILE")]
    pub(crate) sslrootcert: Option<PathBuf>,
    /// Verify the server certificate against NAME while dialling --host (for a tunnel:
    /// dial 127.0.0.1, verify the RDS endpoint name). Defaults to RDS_ENDPOINT with --via-ssm.
    #[arg(long, env = "RLSCTL_TLS_SERVER_NAME", value_name = "NAME")]
    pub(crate) tls_server_name: Option<String>,
    /// Give up connecting after this long (e.g. 10s, 500ms).
    #[arg(long, env = "PGCONNECT_TIMEOUT", value_parser = parse_duration, default_value = "10s")]
    pub(crate) connect_timeout: Duration,
    /// Open an SSM tunnel on a free local port for the length of the command and connect
    /// through it (instead of --host/--port); it is always torn down afterwards.
    #[arg(long, help_heading = "AWS", conflicts_with = "via_ssh")]
    pub(crate) via_ssm: bool,
    /// Open an SSH tunnel through [USER@]BASTION instead (the runbook's fallback when SSM
    /// fails): ssh -N -L 127.0.0.1:<free port>:RDS_ENDPOINT:<remote port>, for the length
    /// of the command; it is always stopped afterwards.
    #[arg(
        long,
        env = "RLSCTL_VIA_SSH",
        value_name = "[USER@]BASTION",
        help_heading = "SSH tunnel"
    )]
    pub(crate) via_ssh: Option<String>,
    /// An ssh_config file for --via-ssh (ssh -F): keys, known hosts, jump hosts.
    #[arg(
        long,
        env = "RLSCTL_SSH_CONFIG",
        value_name = "FILE",
        help_heading = "SSH tunnel"
    )]
    pub(crate) ssh_config: Option<PathBuf>,
    #[command(flatten, next_help_heading = "AWS")]
    pub(crate) aws: AwsArgs,
}

/// AWS: the credentials and region every AWS call uses, the RDS instance, and
/// where the SSM tunnel goes and how the plugin is run.
#[derive(Debug, Clone, Args)]
pub(crate) struct AwsArgs {
    /// The EC2 instance (SSM-managed) that forwards to the database.
    #[arg(long, env = "INSTANCE_ID", value_name = "ID")]
    pub(crate) instance_id: Option<String>,
    /// The RDS endpoint the tunnel dials (also the TLS server name through a tunnel, and
    /// the host an IAM auth token is signed for).
    #[arg(long, env = "RDS_ENDPOINT", value_name = "HOST")]
    pub(crate) rds_endpoint: Option<String>,
    /// The RDS DB instance (or Aurora cluster) identifier, for --rds and rds-master
    /// (else the first label of RDS_ENDPOINT).
    #[arg(long, env = "RDS_INSTANCE_ID", value_name = "ID")]
    pub(crate) db_instance: Option<String>,
    /// The database port on the RDS side.
    #[arg(long, env = "RDS_PORT", default_value_t = 5432)]
    pub(crate) remote_port: u16,
    /// The session-manager-plugin executable (else SESSION_MANAGER_PLUGIN, else PATH).
    #[arg(long, env = "SESSION_MANAGER_PLUGIN", value_name = "PATH")]
    pub(crate) plugin: Option<PathBuf>,
    /// AWS profile (standard chain otherwise: env, SSO, instance role).
    #[arg(long, env = "AWS_PROFILE")]
    pub(crate) profile: Option<String>,
    /// AWS region (else the profile's or AWS_REGION).
    #[arg(long, env = "AWS_REGION")]
    pub(crate) region: Option<String>,
    /// How long to wait for the tunnel (the plugin, or ssh) to open the local port.
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub(crate) start_timeout: Duration,
    /// Accept a session-manager-plugin (1.2.497.0 or older, or a build from
    /// source) that takes the session token on its command line, where any
    /// local user can read it. Refused otherwise.
    #[arg(long)]
    pub(crate) allow_token_in_argv: bool,
}

/// What the bundle protects: schema, tables, tenant column and setting, roles.
#[derive(Debug, Clone, Args)]
pub(crate) struct TargetArgs {
    /// Schema that holds the tenant tables.
    #[arg(long, env = "RLSCTL_SCHEMA", default_value = "public")]
    pub(crate) schema: String,
    /// Tenant tables, comma-separated (names as they are in the catalog, unquoted).
    #[arg(
        long = "tables",
        env = "RLSCTL_TENANT_TABLES",
        value_delimiter = ',',
        default_value = "customers,vehicles,appointments,services"
    )]
    pub(crate) tables: Vec<String>,
    /// Column that holds the tenant id in every tenant table.
    #[arg(long, env = "RLSCTL_TENANT_COLUMN", default_value = "tenant_id")]
    pub(crate) tenant_column: String,
    /// Session setting that carries the current tenant (set with set_config(..., true)).
    #[arg(long, env = "RLSCTL_TENANT_SETTING", default_value = "app.tenant_id")]
    pub(crate) tenant_setting: String,
    /// The application's role (LOGIN, subject to RLS).
    #[arg(long, env = "RLSCTL_APP_ROLE", default_value = "app_user")]
    pub(crate) app_role: String,
    /// The break-glass role (reaches every row through its own policy).
    #[arg(long, env = "RLSCTL_ADMIN_ROLE", default_value = "tenant_admin")]
    pub(crate) admin_role: String,
}

/// The database a command works on: where to connect, and what the bundle
/// protects there.
#[derive(Debug, Clone, Args)]
pub(crate) struct DatabaseArgs {
    #[command(flatten, next_help_heading = "Connection")]
    pub(crate) conn: ConnectionArgs,
    #[command(flatten, next_help_heading = "Target")]
    pub(crate) target: TargetArgs,
}

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

/// `rlsctl verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// A tenant id to probe with (repeatable; two recommended). Without any, probes use a
    /// random id that exists nowhere and read isolation is only proven vacuously (warning).
    #[arg(long = "tenant", value_name = "ID")]
    pub(crate) tenants: Vec<String>,
    /// Base URL of the application; checks GET <URL>/health/tenant-security
    /// (only that path, ever): once with a tenant, once without, then a burst.
    #[arg(long, value_name = "URL")]
    pub(crate) app_url: Option<String>,
    /// Treat warnings as failures.
    #[arg(long)]
    pub(crate) strict: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = VerifyFormat::Text)]
    pub(crate) format: VerifyFormat,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
    #[command(flatten, next_help_heading = "Application (--app-url)")]
    pub(crate) app: AppArgs,
    #[command(flatten)]
    pub(crate) db: DatabaseArgs,
}

/// How verify exercises the application's health endpoint.
#[derive(Debug, Clone, Args)]
pub(crate) struct AppArgs {
    /// Requests in the concurrent burst (APP004), interleaving every --tenant
    /// with ids that exist nowhere; 0 skips the burst.
    #[arg(long, value_name = "N", default_value_t = 240)]
    pub(crate) burst_requests: u32,
    /// Requests in flight at once during the burst.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(crate) burst_concurrency: u32,
    /// The burst stops sending when this has passed (what is unanswered by then counts as unanswered).
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub(crate) burst_time_limit: Duration,
    /// How long one request to the application may take.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub(crate) app_timeout: Duration,
}

/// `rlsctl monitor`.
#[derive(Debug, Args)]
pub(crate) struct MonitorArgs {
    /// Output format.
    #[arg(long, value_enum, default_value_t = MonitorFormat::Text)]
    pub(crate) format: MonitorFormat,
    /// Write the result to FILE atomically (temp file + rename) instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub(crate) output: Option<PathBuf>,
    /// Treat warnings as drift.
    #[arg(long)]
    pub(crate) strict: bool,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
    #[command(flatten, next_help_heading = "Fleet (--targets)")]
    pub(crate) fleet: FleetArgs,
    #[command(flatten)]
    pub(crate) db: DatabaseArgs,
}

/// Many databases from one run: `monitor --targets FILE`.
#[derive(Debug, Clone, Args)]
pub(crate) struct FleetArgs {
    /// Check every database in FILE (TOML: [defaults] and one [[target]] per database,
    /// see docs/runbook.md "Many databases"). The connection and target flags are the
    /// defaults under [defaults]. Exit 0: all clean; 1: any drifted; 2: any could not be checked.
    #[arg(long, env = "RLSCTL_TARGETS", value_name = "FILE")]
    pub(crate) targets: Option<PathBuf>,
    /// Targets checked at once.
    #[arg(long, value_name = "N", default_value_t = 8, value_parser = clap::value_parser!(u32).range(1..=256), requires = "targets")]
    pub(crate) concurrency: u32,
    /// Each target's deadline (connecting, the tunnel and the checks); past it the
    /// target is reported as not checked and the others go on.
    #[arg(long, value_parser = parse_duration, default_value = "120s", requires = "targets")]
    pub(crate) target_timeout: Duration,
    /// Run only the targets in shard I of N (0 <= I < N), by a stable hash of their
    /// names: N scheduled tasks (a Kubernetes Indexed Job's $(JOB_COMPLETION_INDEX)) split
    /// a fleet into disjoint parts whose union is the fleet.
    #[arg(long, env = "RLSCTL_SHARD", value_name = "I/N", value_parser = parse_shard, requires = "targets")]
    pub(crate) shard: Option<Shard>,
}

/// One shard of a fleet: `index` of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Shard {
    /// 0-based.
    pub(crate) index: u32,
    /// How many shards.
    pub(crate) count: u32,
}

fn parse_shard(text: &str) -> Result<Shard, String> {
    let (index, count) = text
        .split_once('/')
        .ok_or_else(|| format!("{text:?} is not I/N (e.g. 0/4)"))?;
    let number = |s: &str| {
        s.trim()
            .parse::<u32>()
            .map_err(|_| format!("{text:?} is not I/N (e.g. 0/4)"))
    };
    let (index, count) = (number(index)?, number(count)?);
    if count == 0 || index >= count {
        return Err(format!(
            "shard {index}/{count}: I counts from 0 and must be below N"
        ));
    }
    Ok(Shard { index, count })
}

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

/// `rlsctl shadow ...`.
#[derive(Debug, Subcommand)]
pub(crate) enum ShadowCommand {
    /// Per table, the queries that enforcement would empty or narrow, from the server log.
    ///
    /// Sources: --log-file (a server log you have), --rds (the RDS API's log
    /// files), else the server's own log files over the connection (needs
    /// superuser or pg_read_server_files; default user postgres).
    #[command(after_help = EXIT_CODES)]
    Report(ShadowReportArgs),
}

/// Where shadow records are read from (`shadow report`, `apply
/// --enforce-clean`): log files, the RDS API, else the server's own log.
#[derive(Debug, Clone, Args)]
pub(crate) struct LogSourceArgs {
    /// A server log file to read (repeatable; plain, CSV (.csv) or JSON
    /// (.json) log format).
    #[arg(long = "log-file", value_name = "PATH", conflicts_with = "rds")]
    pub(crate) log_files: Vec<PathBuf>,
    /// The server's log_line_prefix, for plain log files and --rds (a record
    /// counts only where the message starts after it). Default: RDS's fixed
    /// prefix, %t:%r:%u@%d:[%p]: . The server's own log is read with its own.
    #[arg(long, env = "RLSCTL_LOG_LINE_PREFIX", value_name = "PREFIX")]
    pub(crate) log_line_prefix: Option<String>,
    /// Read the instance's log files through the RDS API (DescribeDBLogFiles,
    /// DownloadDBLogFilePortion) with the AWS credentials of --profile/--region.
    #[arg(long)]
    pub(crate) rds: bool,
    /// With --rds, a read replica whose logs to read too (repeatable): a
    /// session on a replica is recorded in that replica's log only.
    #[arg(long = "rds-replica", value_name = "ID", requires = "rds")]
    pub(crate) rds_replicas: Vec<String>,
    /// Only the records of this long ago and later (e.g. 7d); with --rds, the
    /// log files written since then (24h when not given, for shadow report).
    #[arg(long, value_parser = parse_duration)]
    pub(crate) since: Option<Duration>,
}

/// `rlsctl shadow report`.
#[derive(Debug, Args)]
pub(crate) struct ShadowReportArgs {
    #[command(flatten)]
    pub(crate) logs: LogSourceArgs,
    /// Output format.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub(crate) format: Format,
    #[command(flatten, next_help_heading = "Connection")]
    pub(crate) conn: ConnectionArgs,
}

/// `rlsctl tunnel`.
#[derive(Debug, Args)]
pub(crate) struct TunnelArgs {
    /// The local port to listen on (127.0.0.1 only).
    #[arg(long, env = "LOCAL_PORT", default_value_t = 15432)]
    pub(crate) local_port: u16,
    /// When the session drops, start a new one (with backoff) instead of exiting.
    #[arg(long)]
    pub(crate) reconnect: bool,
    #[command(flatten, next_help_heading = "AWS")]
    pub(crate) aws: AwsArgs,
}

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

/// Parses a duration as humantime writes it (`500ms`, `5s`, `2m`, `1h 30m`),
/// or a bare number of seconds.
pub(crate) fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    if !text.is_empty() && text.chars().all(|c| c.is_ascii_digit()) {
        return text
            .parse()
            .map(Duration::from_secs)
            .map_err(|e| format!("{text:?}: {e}"));
    }
    humantime::parse_duration(text)
        .map_err(|e| format!("not a duration: {text:?} ({e}; try 5s or 500ms)"))
}
