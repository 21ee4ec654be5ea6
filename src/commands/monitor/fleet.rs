//! `monitor --targets`: every database of a fleet from one run. Targets run
//! concurrently (`--concurrency`), each with its own deadline; one that fails
//! to connect or times out is reported and never stops the others.

use std::sync::Arc;

use anyhow::{Context, Result};
use tokio::sync::Semaphore;
use tracing::Instrument;

use super::targets::{self, FleetTarget};
use crate::cli::{MonitorArgs, MonitorFormat};
use crate::commands::output::{self, Rendering, Sink};
use crate::commands::Verdict;
use crate::model::exceptions::Exception;
use crate::model::report::fleet::{FleetReport, Outcome, TargetResult};

/// Runs monitor on every target of `args.fleet.targets` (in `--shard`).
pub(crate) async fn run(
    args: MonitorArgs,
    exceptions: Vec<Exception>,
    quiet: bool,
) -> Result<Verdict> {
    let path = args.fleet.targets.clone().context("no --targets file")?;
    let shown = path.display().to_string();
    let text = crate::input_file::read(&path, "--targets", false)?;
    let mut fleet = targets::parse(&text, &shown, &args.db)?;
    let named: Vec<String> = fleet.iter().map(|t| t.name.clone()).collect();
    if let Some(shard) = args.fleet.shard {
        fleet.retain(|t| targets::in_shard(&t.name, shard));
        tracing::info!(shard = %format!("{}/{}", shard.index, shard.count), targets = fleet.len(), "this shard's targets");
    }
    // An entry for a target the file does not name (misspelled, removed)
    // accepts nothing anywhere: said, not silently dropped.
    for e in &exceptions {
        if let Some(name) = e
            .target
            .as_deref()
            .filter(|n| !named.iter().any(|t| t == n))
        {
            crate::say!(
                "rlsctl: warning: a reviewed exception ({} {}) is for target {:?}, which this run does not check (stale)",
                e.check,
                e.object.as_deref().unwrap_or(""),
                crate::logging::printable(name)
            );
        }
    }
    let results = check_all(&args, fleet, Arc::new(exceptions)).await;
    let report = FleetReport::new("monitor", results);
    let how = Rendering {
        strict: args.strict,
        docs_url: args.report.docs_url.as_deref(),
        // A target that fails now keeps its last success from the file it replaces.
        previous: (args.format == MonitorFormat::Prometheus)
            .then(|| {
                args.output
                    .as_ref()
                    .and_then(|p| std::fs::read_to_string(p).ok())
            })
            .flatten()
            .unwrap_or_default(),
        ..Rendering::now()
    };
    let sink = Sink {
        file: args.output.as_deref(),
        quiet,
    };
    let verdict = output::emit(&report, args.format.into(), &how, sink)?;
    if !quiet && (args.output.is_some() || args.format != MonitorFormat::Text) {
        crate::say!("rlsctl monitor: {}", report.summary_line());
    }
    let failed = report.failed();
    if !failed.is_empty() {
        // Exit 2, naming them: they could not be checked.
        anyhow::bail!(
            "{} target(s) could not be checked: {}",
            failed.len(),
            crate::logging::printable(&failed.join(", "))
        );
    }
    Ok(verdict)
}

/// Every target, at most `--concurrency` at once, in the file's order.
async fn check_all(
    args: &MonitorArgs,
    fleet: Vec<FleetTarget>,
    exceptions: Arc<Vec<Exception>>,
) -> Vec<TargetResult> {
    let permits = Arc::new(Semaphore::new(args.fleet.concurrency as usize));
    let (deadline, strict) = (args.fleet.target_timeout, args.strict);
    let mut tasks = tokio::task::JoinSet::new();
    for (index, target) in fleet.into_iter().enumerate() {
        let (permits, exceptions) = (permits.clone(), exceptions.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await;
            let name = target.name.clone();
            let place = checked_at(&target.conn);
            let span = tracing::info_span!("target", name = %name);
            let checked = tokio::time::timeout(deadline, Box::pin(check_one(target, &exceptions)))
                .instrument(span)
                .await;
            let result = match checked {
                Ok(Ok(report)) => TargetResult::checked(name, place, report, strict),
                Ok(Err(err)) => error(name, place, format!("{err:#}")),
                Err(_) => error(
                    name,
                    place,
                    format!(
                        "no result within --target-timeout {}",
                        humantime::format_duration(deadline)
                    ),
                ),
            };
            (index, result)
        });
    }
    let mut results = Vec::new();
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(result) => results.push(result),
            Err(err) => tracing::error!("a target's task ended: {err}"),
        }
    }
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, r)| r).collect()
}

fn error(target: String, checked: String, error: String) -> TargetResult {
    tracing::warn!(target = %target, "could not be checked: {error}");
    TargetResult {
        target,
        checked,
        outcome: Outcome::Error { error },
    }
}

/// Where a target is checked, as its result names it.
fn checked_at(conn: &crate::cli::ConnectionArgs) -> String {
    let endpoint = conn.aws.rds_endpoint.as_deref().unwrap_or("RDS_ENDPOINT");
    if conn.via_ssm {
        let instance = conn.aws.instance_id.as_deref().unwrap_or("?");
        format!("{endpoint}:{} via SSM on {instance}", conn.aws.remote_port)
    } else if let Some(bastion) = &conn.via_ssh {
        format!("{endpoint}:{} via ssh {bastion}", conn.aws.remote_port)
    } else {
        format!("{}:{}", conn.host, conn.port)
    }
}

/// One target's report: its tunnel, its connection, the checks.
async fn check_one(
    target: FleetTarget,
    exceptions: &[Exception],
) -> Result<crate::model::report::Report> {
    let FleetTarget { name, conn, target } = target;
    crate::commands::with_tunnel(&conn, |conn| async move {
        let (target, db) = crate::commands::connect(&conn, &target, None, false).await?;
        let report = super::monitor(&db, &target).await?;
        Ok(crate::commands::accepted(report, exceptions, Some(&name)))
    })
    .await
}
