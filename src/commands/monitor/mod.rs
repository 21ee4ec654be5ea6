//! `rlsctl monitor`: the nightly drift check, of one database or (with
//! `--targets`) a fleet.

mod fleet;
mod logs;
mod targets;

use anyhow::{Context, Result};

use super::output::{self, Rendering, Sink};
use super::Verdict;
use crate::cli::MonitorArgs;
use crate::model::checks::{self, Findings};
use crate::model::config::Target;
use crate::model::log::tenant_errors::TenantTable;
use crate::model::report::Report;
use crate::model::snapshot::Snapshot;
use crate::pg::Db;

/// Runs `monitor` (default user: the app role; never prompts).
pub(crate) async fn run(args: MonitorArgs, quiet: bool) -> Result<Verdict> {
    let exceptions = super::read_exceptions(args.report.accept.as_deref())?;
    logs::check_flags(&args.logs)?;
    if args.fleet.targets.is_some() {
        return fleet::run(args, exceptions, quiet).await;
    }
    let conn = args.db.conn.clone();
    super::with_tunnel(&conn, |conn| async move {
        let (target, db) =
            super::connect_as(&conn, &args.db.target, None, false, super::Pair::Two).await?;
        let (report, tables) = checked(&db, &target).await?;
        let report = match args.logs.read {
            true => {
                let errors = logs::tenant_errors(&db, &conn, &args.logs, &target, tables).await?;
                report.with_tenant_errors(errors)
            }
            false => report,
        };
        let report = super::accepted(report, &exceptions, None);
        let how = Rendering {
            strict: args.strict,
            docs_url: args.report.docs_url.as_deref(),
            ..Rendering::now()
        };
        let sink = Sink {
            file: args.output.as_deref(),
            quiet,
        };
        output::emit(&report, args.format.into(), &how, sink)
    })
    .await
}

/// Catalog checks, drift and the session-state probe; read-only apart from
/// the probe's canary (which it removes), a constant number of statements.
pub(crate) async fn monitor(db: &Db, target: &Target) -> Result<Report> {
    Ok(checked(db, target).await?.0)
}

/// [`monitor`]'s report, and the tenant tables it saw (which `--logs`
/// attributes errors to).
async fn checked(db: &Db, target: &Target) -> Result<(Report, Vec<TenantTable>)> {
    // The snapshot's second connection serves the session-state probe.
    // (boxed: the read's state machine is large, and a fleet's worker
    // threads have tokio's 2 MiB stacks)
    let (read, second) = Box::pin(crate::inspect::read_for_checks(db, target)).await?;
    let types = crate::model::snapshot::tenant_column_types(read.tables());
    // Assembling the snapshot and the checks need only the rows read: they
    // run on another thread while the probe mostly waits on the server (for a
    // closed connection's process to end), rather than one after the other.
    let checked = {
        let target = target.clone();
        let today = super::clock::today();
        let version = db.info.server_version.clone();
        tokio::task::spawn_blocking(move || -> Result<(Snapshot, Findings)> {
            let snapshot = read.assemble()?;
            let mut findings = Findings::default();
            checks::run_catalog_and_drift(&snapshot, &target, &mut findings);
            checks::server::ver001(&snapshot, &version, &today, &mut findings);
            checks::remedy_break_glass(&snapshot, &mut findings);
            Ok((snapshot, findings))
        })
    };
    let mut probed = Findings::default();
    let probe_waits = Box::pin(crate::probes::session_state::run(
        db,
        second,
        &types,
        target,
        &mut probed,
    ))
    .await?;
    let (snapshot, mut findings) = checked.await.context("running the catalog checks")??;
    findings.0.append(&mut probed.0);
    // probe_waits: the session-state probe's statements that depend on the
    // server's load, not the tables; the rest is constant in their number.
    tracing::info!(statements = db.statements(), probe_waits, "monitor done");
    let report = Report::new("monitor", db.info.clone(), findings.0).with_modes(&snapshot);
    let tables = snapshot
        .tables
        .iter()
        .filter(|t| t.exists)
        .map(|t| TenantTable {
            // `display` is `schema.name`
            schema: t
                .display
                .strip_suffix(&t.name)
                .and_then(|s| s.strip_suffix('.'))
                .unwrap_or_default()
                .to_string(),
            name: t.name.clone(),
            display: t.display.clone(),
        })
        .collect();
    // Freeing a snapshot of thousands of tables takes a few milliseconds: on
    // another thread, beside the rendering (the runtime waits for it at exit).
    tokio::task::spawn_blocking(move || drop(snapshot));
    Ok((report, tables))
}
