//! One module per subcommand.

pub mod apply;
pub mod completions;
pub mod monitor;
pub mod rehearse;
pub mod rollback;
pub mod tunnel;
pub mod verify;

use std::future::Future;

use anyhow::{anyhow, Result};

use crate::cli::{ConnectionArgs, TargetArgs};
use crate::config::Target;
use crate::db::{self, ConnectOptions, Db};
use crate::tunnel::{free_local_port, Tunnel};
use crate::{until_interrupted, Interrupted};

/// Runs `work` with the connection settings. With `--via-ssm`, an ephemeral
/// tunnel is opened on a free local port first, `work` connects through it
/// (verifying TLS against RDS_ENDPOINT unless told otherwise), and the tunnel is
/// torn down afterwards whatever happened: success, failure, Ctrl-C, or the
/// plugin dying under it.
pub async fn with_tunnel<T, F, Fut>(conn: &ConnectionArgs, work: F) -> Result<T>
where
    F: FnOnce(ConnectionArgs) -> Fut,
    Fut: Future<Output = Result<T>>,
{
    if !conn.via_ssm {
        return until_interrupted(work(conn.clone())).await;
    }
    let mut tunnel = until_interrupted(Tunnel::open(&conn.ssm, free_local_port()?)).await?;
    let mut through = conn.clone();
    through.host = "127.0.0.1".into();
    through.port = tunnel.local_port;
    if through.tls_server_name.is_none() {
        through.tls_server_name = conn.ssm.rds_endpoint.clone();
    }
    let result = tokio::select! {
        biased;
        _ = tokio::signal::ctrl_c() => {
            db::cancel_all().await;
            Err(Interrupted.into())
        }
        why = tunnel.exited() => Err(anyhow!("the SSM tunnel dropped during the command (nothing was committed unless reported): {why}")),
        result = work(through) => result,
    };
    tunnel.close().await;
    result
}

/// Validates the target and opens the connection a command works on.
pub async fn connect(
    conn: &ConnectionArgs,
    target: &TargetArgs,
    default_user: &str,
    allow_prompt: bool,
) -> Result<(Target, Db)> {
    let target = Target::from_args(target)?;
    let default_user = if default_user.is_empty() {
        target.app_role.clone()
    } else {
        default_user.to_string()
    };
    let options = ConnectOptions::from_args(conn, &default_user, allow_prompt);
    let db = db::connect(&options).await?;
    tracing::info!(database = %db.info.name, user = %db.info.user, version = %db.info.server_version, "connected");
    Ok((target, db))
}

/// Prints a result document on stdout.
pub fn print(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
}
