//! `rlsctl shadow report`: what shadow mode recorded, per table and query.

use anyhow::{anyhow, Result};

use crate::cli::{Format, ShadowCommand, ShadowReportArgs};
use crate::db;
use crate::shadow::sources::{self, Source};
use crate::shadow::Summary;
use crate::Status;

/// Runs a `shadow` subcommand.
pub async fn run(command: ShadowCommand) -> Result<Status> {
    match command {
        ShadowCommand::Report(args) => report(args).await,
    }
}

/// Reads the records from the chosen source and prints the summary: exit 1
/// when some statement would have been emptied or narrowed, 0 when none.
async fn report(args: ShadowReportArgs) -> Result<Status> {
    let source = if !args.log_files.is_empty() {
        Source::Files(args.log_files.clone())
    } else if args.rds {
        let instance = args
            .db_instance
            .clone()
            .or_else(|| {
                args.conn
                    .ssm
                    .rds_endpoint
                    .as_deref()
                    .and_then(sources::instance_from_endpoint)
            })
            .ok_or_else(|| anyhow!("--rds needs the instance: --db-instance ID, or --rds-endpoint HOST (its first label)"))?;
        Source::Rds {
            instance,
            since: args.since,
            aws: super::aws_settings(&args.conn.ssm),
        }
    } else {
        Source::Server
    };
    // Files and RDS: the prefix given, else RDS's (the server's own log is
    // read with the server's own prefix).
    let prefix = args
        .log_line_prefix
        .clone()
        .unwrap_or_else(|| crate::shadow::log::RDS_PREFIX.to_string());
    let (found, label) = match source {
        Source::Files(paths) => {
            tokio::task::spawn_blocking(move || sources::from_files(&paths, &prefix)).await??
        }
        Source::Rds {
            instance,
            since,
            aws,
        } => crate::until_interrupted(sources::from_rds(&instance, since, &aws, &prefix)).await?,
        Source::Server => {
            let conn = args.conn.clone();
            super::with_tunnel(&conn, |conn| async move {
                let user = conn.user.clone().unwrap_or_else(|| "postgres".into());
                let db = db::connect(&super::connect_options(&conn, &user, true)).await?;
                sources::from_server(&db).await
            })
            .await?
        }
    };
    let summary = Summary::of_found(found);
    super::print(&match args.format {
        Format::Text => summary.text(&label),
        Format::Json => summary.json(&label),
    });
    Ok(if summary.records == 0 {
        Status::Clean
    } else {
        Status::Problems
    })
}
