//! `rlsctl shadow report`: what shadow mode recorded, per table and query,
//! read from log files the operator has, the server's own log files (when the
//! session may read them), or, on RDS, the RDS API's log files.

use std::time::Duration;

use anyhow::{anyhow, Result};

use super::Verdict;

use super::output::{self, Rendering, Sink, TextOrJson};
use crate::cli::{ConnectionArgs, LogSourceArgs, ShadowCommand, ShadowReportArgs};
use crate::logs::{files, rds, server};
use crate::model::log::tenant_errors::Watch;
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
    if let Some(read) = read_outside(logs, conn, None).await? {
        return Ok(read);
    }
    super::with_tunnel(conn, |conn| async move {
        let user = conn.user.clone().unwrap_or_else(|| "postgres".into());
        let db = pg::connect(&super::connect_options(&conn, &user, true)?).await?;
        server::records(&db, None).await
    })
    .await
}

/// What the log files or the RDS API hold, when the flags name one of them
/// (`None`: the server's own log is the source), tenant-context errors
/// tallied as `watch` says.
pub(crate) async fn read_outside(
    logs: &LogSourceArgs,
    conn: &ConnectionArgs,
    watch: Option<&Watch>,
) -> Result<Option<(Found, String)>> {
    // Files and RDS: the prefix given, else RDS's (the server's own log is
    // read with the server's own prefix).
    let prefix = logs
        .log_line_prefix
        .clone()
        .unwrap_or_else(|| RDS_PREFIX.to_string());
    if !logs.log_files.is_empty() {
        let paths = logs.log_files.clone();
        let watch = watch.cloned();
        let read = move || files::read(&paths, &prefix, watch.as_ref());
        return Ok(Some(tokio::task::spawn_blocking(read).await??));
    }
    if !logs.rds {
        return Ok(None);
    }
    let aws = super::aws_settings(&conn.aws);
    let instance = aws.rds_instance.clone().ok_or_else(|| {
        anyhow!(
            "--rds needs the instance: --db-instance ID, or --rds-endpoint HOST (its first label)"
        )
    })?;
    let since = logs.since.unwrap_or(Duration::from_secs(24 * 3600));
    // The primary's logs, then each replica's: one source, every instance
    // covering the window.
    let mut found = Found::default();
    let mut labels = Vec::new();
    for instance in std::iter::once(&instance).chain(&logs.rds_replicas) {
        let (more, label) =
            pg::until_interrupted(rds::records(instance, since, &aws, &prefix, watch)).await?;
        found.absorb(more);
        labels.push(label);
    }
    Ok(Some((found, labels.join("; "))))
}

/// Reads the log with `read` until it holds the mark `nonce` rlsctl had
/// the server write: the server writes its log a moment after, so a few
/// tries. The last read is returned whether it holds the mark or not (the
/// caller judges it).
pub(crate) async fn read_until_marked<F, Fut>(nonce: &str, mut read: F) -> Result<(Found, String)>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(Found, String)>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        let (found, label) = read().await?;
        if found.marks.iter().any(|m| m == nonce) || tries == 5 {
            return Ok((found, label));
        }
        tokio::time::sleep(Duration::from_millis(400)).await;
    }
}

/// Has the server write the [`LOG_MARK`](crate::model::log::LOG_MARK) entry
/// with `nonce` to its log (a `LOG` entry any role may raise).
pub(crate) async fn write_log_mark(db: &pg::Db, nonce: &str) -> Result<()> {
    let message = format!("{}{nonce}", crate::model::log::LOG_MARK);
    db.simple(&format!(
        "DO $$ BEGIN RAISE LOG {}; END $$",
        crate::model::sql::quote_literal(&message)
    ))
    .await
    .map_err(|e| anyhow!("writing a mark to the server's log: {}", pg::describe(&e)))?;
    Ok(())
}
