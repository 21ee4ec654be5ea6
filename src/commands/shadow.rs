//! `rlsctl shadow report`: what shadow mode recorded, per table and query,
//! read from log files the operator has, the server's own log files (when the
//! session may read them), or, on RDS, the RDS API's log files.

use std::time::Duration;

use anyhow::{anyhow, Result};

use super::Verdict;

use super::output::{self, Rendering, Sink, TextOrJson};
use crate::cli::{ConnectionArgs, LogSourceArgs, ShadowCommand, ShadowReportArgs};
use crate::logs::{files, rds, server};
use crate::model::log::time;
use crate::model::log::{Found, RDS_PREFIX};
use crate::model::shadow::Summary;
use crate::pg;

/// Runs a `shadow` subcommand.
pub(crate) async fn run(command: ShadowCommand) -> Result<Verdict> {
    match command {
        ShadowCommand::Report(args) => report(args).await,
    }
}

/// Reads the records from the chosen source and prints the summary: exit 1
/// when some statement would have been emptied or narrowed, 0 when none.
async fn report(args: ShadowReportArgs) -> Result<Verdict> {
    let cutoff = args
        .logs
        .since
        .map(|since| time::cutoff(crate::commands::clock::now_ms(), since))
        .transpose()?;
    let (mut found, label) = read_records(&args.logs, &args.conn).await?;
    // A log read wrongly, or in part, is exit 2, never "no record".
    found.read_whole(&label)?;
    if let Some(cutoff) = cutoff {
        found
            .records
            .retain(|r| time::epoch_millis(&r.at).is_none_or(|at| at >= cutoff));
    }
    let summary = Summary::of_found(found);
    let result = TextOrJson {
        text: summary.text(&label),
        json: summary.json(&label),
        clean: summary.records == 0,
    };
    output::emit(&result, args.format.into(), &Rendering::now(), Sink::STDOUT)
}

/// The shadow records from the source the flags choose (log files, the RDS
/// API, else the server's own log over `conn`), and a description of it.
pub(crate) async fn read_records(
    logs: &LogSourceArgs,
    conn: &ConnectionArgs,
) -> Result<(Found, String)> {
    // Files and RDS: the prefix given, else RDS's (the server's own log is
    // read with the server's own prefix).
    let prefix = logs
        .log_line_prefix
        .clone()
        .unwrap_or_else(|| RDS_PREFIX.to_string());
    if !logs.log_files.is_empty() {
        let paths = logs.log_files.clone();
        return tokio::task::spawn_blocking(move || files::read(&paths, &prefix)).await?;
    }
    if logs.rds {
        let aws = super::aws_settings(&conn.aws);
        let instance = aws.rds_instance.clone().ok_or_else(|| {
            anyhow!("--rds needs the instance: --db-instance ID, or --rds-endpoint HOST (its first label)")
        })?;
        let since = logs.since.unwrap_or(Duration::from_secs(24 * 3600));
        // The primary's logs, then each replica's: one source, every instance
        // covering the window.
        let mut found = Found::default();
        let mut labels = Vec::new();
        for instance in std::iter::once(&instance).chain(&logs.rds_replicas) {
            let (more, label) =
                pg::until_interrupted(rds::records(instance, since, &aws, &prefix)).await?;
            found.absorb(more);
            labels.push(label);
        }
        return Ok((found, labels.join("; ")));
    }
    super::with_tunnel(conn, |conn| async move {
        let user = conn.user.clone().unwrap_or_else(|| "postgres".into());
        let db = pg::connect(&super::connect_options(&conn, &user, true)?).await?;
        server::records(&db).await
    })
    .await
}
