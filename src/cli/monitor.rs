//! The flags of `rlsctl monitor`, one database or a fleet.

use super::*;

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
    #[command(flatten, next_help_heading = "Tenant-context errors (--logs)")]
    pub(crate) logs: MonitorLogArgs,
    #[command(flatten, next_help_heading = "Fleet (--targets)")]
    pub(crate) fleet: FleetArgs,
    #[command(flatten)]
    pub(crate) db: DatabaseArgs,
}

/// The server's log, read for tenant-context errors: `monitor --logs`.
#[derive(Debug, Clone, Args)]
pub(crate) struct MonitorLogArgs {
    /// Also read the server's log for tenant-context errors since --since (default 24h):
    /// RLS violations on write, an empty or unset tenant setting, permission denied on
    /// tenant tables, reads with no tenant (shadow mode), counted per class, table, role,
    /// application and SQLSTATE (check LOG001). The source: --log-file, --rds, else the
    /// server's own log (which needs pg_read_server_files). A log that cannot be shown
    /// read whole, back to --since and up to now, is exit 2.
    #[arg(long = "logs", conflicts_with = "targets")]
    pub(crate) read: bool,
    #[command(flatten)]
    pub(crate) source: LogSourceArgs,
    /// The most errors one group may have before LOG001 fails: N for every class, or
    /// CLASS=N for one (rls_violation, permission_denied, tenant_cast, missing_setting,
    /// no_tenant); repeatable, the later winning. Default 0 for every class.
    #[arg(long = "max-errors", value_name = "[CLASS=]N")]
    pub(crate) max_errors: Vec<crate::model::log::tenant_errors::MaxErrors>,
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
