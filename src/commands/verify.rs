//! `rlsctl verify`: prove isolation as the app role.

use anyhow::Result;

use crate::checks::{self, Findings};
use crate::cli::{Format, VerifyArgs};
use crate::config::Target;
use crate::db::Db;
use crate::inspect::Snapshot;
use crate::report::Report;
use crate::Status;

/// Runs `verify` (default user: the app role).
pub async fn run(args: VerifyArgs) -> Result<Status> {
    let conn = args.conn.clone();
    super::with_tunnel(&conn, |conn| async move {
        let (target, db) = super::connect(&conn, &args.target, None, true).await?;
        let report = verify(&db, &target, &args.tenants, args.app_url.as_deref()).await?;
        super::print(&match args.format {
            Format::Text => report.text(),
            Format::Json => report.json(),
        });
        Ok(if report.clean(args.strict) {
            Status::Clean
        } else {
            Status::Problems
        })
    })
    .await
}

/// Catalog checks, probes and (with an URL) app checks, as one report.
pub async fn verify(
    db: &Db,
    target: &Target,
    tenants: &[String],
    app_url: Option<&str>,
) -> Result<Report> {
    let snapshot = Snapshot::read_for_checks(db, target).await?;
    let mut findings = Findings::default();
    checks::run_catalog(&snapshot, target, true, &mut findings);
    checks::probes::run(db, &snapshot, target, tenants, &mut findings).await?;
    checks::session_state::run(db, &snapshot, target, &mut findings).await?;
    if let Some(url) = app_url {
        let tenant = tenants
            .first()
            .cloned()
            .unwrap_or_else(|| format!("rlsctl-probe-{}", crate::sandbox::random_hex(8)));
        checks::app::run(url, &tenant, target, &mut findings).await?;
    }
    tracing::info!(statements = db.statements(), "verify done");
    Ok(Report::new("verify", db.info.clone(), findings.0))
}
