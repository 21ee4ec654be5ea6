//! The flags of `rlsctl shadow` and of the log sources it shares with `apply --enforce-clean`.

use super::*;

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
