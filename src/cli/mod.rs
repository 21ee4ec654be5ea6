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

mod apply;
mod database;
mod monitor;
mod rehearse;
mod rollback;
mod shadow;
mod tunnel;
mod verify;

pub(crate) use apply::*;
pub(crate) use database::*;
pub(crate) use monitor::*;
pub(crate) use rehearse::*;
pub(crate) use rollback::*;
pub(crate) use shadow::*;
pub(crate) use tunnel::*;
pub(crate) use verify::*;

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
