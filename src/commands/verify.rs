//! `rlsctl verify`: prove isolation as the app role.

use anyhow::Result;

use super::output::{self, Rendering, Sink};
use super::Verdict;
use crate::cli::{AppArgs, VerifyArgs};
use crate::http::burst::{Burst, Id};
use crate::model::checks::{self, Findings};
use crate::model::config::Target;
use crate::model::report::Report;
use crate::pg::Db;

/// The probes read and write as one tenant against another: the same id
/// twice would report its own rows as another tenant's.
fn distinct_tenants(tenants: &[String]) -> Result<()> {
    for (i, tenant) in tenants.iter().enumerate() {
        if tenants[..i].contains(tenant) {
            anyhow::bail!(
                "--tenant {:?} is given twice: the probes need tenants that differ",
                crate::model::checks::shorten(tenant)
            );
        }
    }
    Ok(())
}

/// Runs `verify` (default user: the app role).
pub(crate) async fn run(args: VerifyArgs) -> Result<Verdict> {
    distinct_tenants(&args.tenants)?;
    // Read before anything connects, as every command does.
    let exceptions = super::read_exceptions(args.report.accept.as_deref())?;
    let conn = args.db.conn.clone();
    super::with_tunnel(&conn, |conn| async move {
        let (target, db) =
            super::connect_as(&conn, &args.db.target, None, true, super::Pair::Two).await?;
        let app = args.app_url.as_deref().map(|url| (url, burst(&args.app)));
        let report = verify(&db, &target, &args.tenants, app).await?;
        let report = super::accepted(report, &exceptions, None);
        let how = Rendering {
            strict: args.strict,
            docs_url: args.report.docs_url.as_deref(),
            ..Rendering::now()
        };
        output::emit(&report, args.format.into(), &how, Sink::STDOUT)
    })
    .await
}

/// The burst's settings from the flags.
fn burst(args: &AppArgs) -> Burst {
    Burst {
        requests: args.burst_requests as usize,
        concurrency: args.burst_concurrency as usize,
        time_limit: args.burst_time_limit,
        request_timeout: args.app_timeout,
    }
}

/// Catalog checks, probes, the session-state probe and (with an URL and the
/// burst's settings) app checks, as one report.
pub(crate) async fn verify(
    db: &Db,
    target: &Target,
    tenants: &[String],
    app: Option<(&str, Burst)>,
) -> Result<Report> {
    // The snapshot's second connection serves the probes, then the
    // session-state probe: no connection is opened after the catalog read.
    // (boxed, as the probes are: their state machines are large)
    let (read, second) = Box::pin(crate::inspect::read_for_checks(db, target)).await?;
    let snapshot = read.assemble()?;
    let types = crate::model::snapshot::tenant_column_types(&snapshot.tables);
    let mut findings = Findings::default();
    checks::run_catalog(&snapshot, target, true, &mut findings);
    checks::server::ver001(
        &snapshot,
        &db.info.server_version,
        &super::clock::today(),
        &mut findings,
    );
    Box::pin(crate::probes::run(
        db,
        second.as_ref(),
        &snapshot,
        target,
        tenants,
        &mut findings,
    ))
    .await?;
    // After the probes, never beside them: through a transaction pooler the
    // canary could reach a probe's server connection and fail PRB004.
    Box::pin(crate::probes::session_state::run(
        db,
        second,
        &types,
        target,
        &mut findings,
    ))
    .await?;
    if let Some((url, burst)) = app {
        // Every tenant given, and two ids that exist nowhere (castable to the
        // tenant column, so the app treats them as ordinary ids).
        let types: Vec<&str> = types.iter().map(String::as_str).collect();
        let mut ids: Vec<Id> = tenants
            .iter()
            .map(|t| Id {
                value: t.clone(),
                known: true,
            })
            .collect();
        for _ in 0..2 {
            ids.push(Id {
                value: crate::probes::random_tenant(db, &types).await?,
                known: false,
            });
        }
        crate::http::app::run(url, ids, &burst, target, &mut findings).await?;
    }
    checks::remedy_break_glass(&snapshot, &mut findings);
    tracing::info!(statements = db.statements(), "verify done");
    Ok(Report::new("verify", db.info.clone(), findings.0).with_modes(&snapshot))
}
