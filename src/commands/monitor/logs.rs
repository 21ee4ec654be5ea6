//! `monitor --logs`: the tenant-context errors in the server's log since
//! `--since`, from the sources `shadow report` reads, under the rules
//! `apply --enforce-clean` holds a log to: read whole, reaching back to the
//! window's start, and holding the mark monitor had the server write a
//! moment before (so it is the current log, up to now). Anything less is
//! exit 2, never "no error".

use std::time::Duration;

use anyhow::{bail, Result};

use crate::cli::{ConnectionArgs, MonitorLogArgs};
use crate::commands::clock;
use crate::commands::shadow::{read_outside, read_until_marked, write_log_mark};
use crate::logs::server;
use crate::model::config::Target;
use crate::model::log::tenant_errors::{self, TenantErrors, TenantTable, Watch};
use crate::model::log::time;
use crate::pg::Db;

/// The window read when `--since` is not given.
const DEFAULT_SINCE: Duration = Duration::from_secs(24 * 3600);

/// The log flags make sense together: a source or a threshold without
/// `--logs` would read nothing, silently.
pub(crate) fn check_flags(args: &MonitorLogArgs) -> Result<()> {
    let source = &args.source;
    let given = !source.log_files.is_empty()
        || source.rds
        || source.since.is_some()
        || source.log_line_prefix.is_some()
        || !args.max_errors.is_empty();
    if given && !args.read {
        bail!("--log-file, --rds, --since, --log-line-prefix and --max-errors are for monitor --logs: add --logs");
    }
    Ok(())
}

/// The tenant-context errors in the log since `--since`, attributed to
/// `tables` of `target`; `db` (monitor's own session) writes the mark, and
/// reads the server's own log when no other source is named.
pub(crate) async fn tenant_errors(
    db: &Db,
    conn: &ConnectionArgs,
    args: &MonitorLogArgs,
    target: &Target,
    tables: Vec<TenantTable>,
) -> Result<TenantErrors> {
    let since = args.source.since.unwrap_or(DEFAULT_SINCE);
    let now = clock::now_ms();
    let cutoff = time::cutoff(now, since)?;
    let watch = Watch {
        tables,
        setting: target.tenant_setting.clone(),
        cutoff: Some(cutoff),
    };
    let mut source = args.source.clone();
    // --rds reads the files written within the window.
    source.since = Some(since);
    let mark = format!("{now}-{}-monitor", std::process::id());
    write_log_mark(db, &mark).await?;
    let (found, label) = read_until_marked(&mark, || async {
        match read_outside(&source, conn, Some(&watch)).await? {
            Some(read) => Ok(read),
            None => server::records(db, Some(&watch)).await,
        }
    })
    .await?;
    let back = humantime::format_duration(since).to_string();
    found.covers(&label, cutoff, &back, now, Some(&mark))?;
    let mut tally = found
        .errors
        .ok_or_else(|| anyhow::anyhow!("the log was read without its errors"))?;
    tally.add_records(&found.records);
    Ok(TenantErrors {
        source: label,
        since: time::utc_text(cutoff),
        groups: tally.groups(),
        limits: tenant_errors::limits(&args.max_errors),
    })
}
