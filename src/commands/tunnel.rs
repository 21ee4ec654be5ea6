//! `rlsctl tunnel`: SSM port forwarding in the foreground.

use std::time::Duration;

use anyhow::{bail, Result};

use super::Verdict;
use crate::cli::TunnelArgs;
use crate::signals::stop_signal;
use crate::tunnel::Tunnel;

/// Runs the tunnel until Ctrl-C, SIGTERM or SIGHUP (a closed terminal), then
/// ends the session; with --reconnect, restarts dropped sessions.
pub(crate) async fn run(args: TunnelArgs) -> Result<Verdict> {
    let mut drops = 0u32;
    loop {
        // open() handles stop signals itself, ending the session it started.
        let mut tunnel = Tunnel::open(&super::tunnel_settings(&args.aws), args.local_port).await?;
        crate::say!(
            "ready: 127.0.0.1:{} -> {} (session {})",
            tunnel.local_port,
            tunnel.destination,
            tunnel.session_id
        );
        let dropped = tokio::select! {
            biased;
            _ = stop_signal() => None,
            why = tunnel.exited() => Some(why),
        };
        tunnel.close().await;
        let Some(why) = dropped else {
            crate::say!("tunnel closed; session {} terminated", tunnel.session_id);
            return Ok(Verdict::Clean);
        };
        if !args.reconnect {
            bail!("{why}");
        }
        drops += 1;
        let wait = Duration::from_secs(2u64.pow(drops.min(5)));
        tracing::warn!("{why}");
        crate::say!("session dropped; reconnecting in {}s", wait.as_secs());
        tokio::select! {
            biased;
            _ = stop_signal() => return Ok(Verdict::Clean),
            _ = tokio::time::sleep(wait) => {}
        }
    }
}
