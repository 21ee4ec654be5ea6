//! The runbook's fallback when SSM fails: `ssh -N -L` through a bastion for
//! the length of a command, started, waited for and always stopped by rlsctl.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Result};

use super::helper::{listener_owned_by, on_path, with_parent_death_signal, Helper};
use super::PortTaken;

/// Where an SSH tunnel goes.
#[derive(Debug, Clone)]
pub(crate) struct SshSettings {
    /// `[user@]host` of the bastion.
    pub(crate) bastion: String,
    /// An ssh_config file (`ssh -F`).
    pub(crate) config: Option<PathBuf>,
    /// The RDS endpoint the bastion dials.
    pub(crate) rds_endpoint: Option<String>,
    /// The database port on the RDS side.
    pub(crate) remote_port: u16,
    /// How long to wait for the forwarded port to accept.
    pub(crate) start_timeout: Duration,
}

/// An open SSH tunnel: `127.0.0.1:local_port` -> `rds:remote_port` through the bastion.
pub(crate) struct SshTunnel {
    ssh: Helper,
    /// The local port.
    pub(crate) local_port: u16,
    closed: bool,
}

impl SshTunnel {
    /// Starts `ssh -N -L 127.0.0.1:<local_port>:<rds>:<remote_port> <bastion>`
    /// and waits until the port accepts, on ssh's socket. Without a terminal
    /// ssh runs in batch mode (no prompt can hang cron) in its own process
    /// group; on a terminal it may ask for a passphrase or a host key. A stop
    /// signal while it comes up stops it again.
    pub(crate) async fn open(settings: &SshSettings, local_port: u16) -> Result<Self> {
        let rds = settings.rds_endpoint.as_deref().ok_or_else(|| {
            anyhow!("--via-ssh needs the RDS endpoint to forward to: set RDS_ENDPOINT or pass --rds-endpoint")
        })?;
        if settings.bastion.starts_with('-') || settings.bastion.trim().is_empty() {
            bail!(
                "--via-ssh takes [USER@]BASTION, a host; {:?} is not one",
                settings.bastion
            );
        }
        let ssh = on_path("ssh").ok_or_else(|| {
            anyhow!("ssh is not on PATH: install the OpenSSH client for --via-ssh")
        })?;
        let mut command = with_parent_death_signal(&ssh);
        command
            .args(["-N", "-o", "ExitOnForwardFailure=yes"])
            .args([
                "-o",
                "ServerAliveInterval=15",
                "-o",
                "ServerAliveCountMax=3",
            ])
            // The forward is this process's, and ends with it: no fork to
            // the background after authentication, no master connection
            // left to persist (options given here win over the config's).
            .args([
                "-o",
                "ForkAfterAuthentication=no",
                "-o",
                "ControlMaster=no",
                "-o",
                "ControlPath=none",
            ])
            .stdin(Stdio::null());
        if !std::io::stdin().is_terminal() {
            command.args(["-o", "BatchMode=yes"]).process_group(0);
        }
        if let Some(config) = &settings.config {
            command.arg("-F").arg(config);
        }
        command
            .arg("-L")
            .arg(format!(
                "127.0.0.1:{local_port}:{rds}:{}",
                settings.remote_port
            ))
            .arg("--")
            .arg(&settings.bastion);
        tracing::info!(bastion = %settings.bastion, local_port, rds, "starting ssh");
        let mut tunnel = Self {
            ssh: Helper::spawn(command, "ssh")?,
            local_port,
            closed: false,
        };
        let ready = tokio::select! {
            biased;
            stop = crate::signals::stop_signal() => Err(anyhow::Error::new(crate::signals::Interrupted(stop))),
            ready = tunnel.ready(settings.start_timeout) => ready,
        };
        match ready {
            Ok(()) => Ok(tunnel),
            Err(e) => {
                tunnel.close().await;
                Err(e)
            }
        }
    }

    /// Waits until the local port accepts connections on ssh's own socket.
    async fn ready(&mut self, timeout: Duration) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        let port = self.local_port;
        loop {
            if let Some(status) = self.ssh.has_exited().await {
                bail!(
                    "ssh exited ({status}) before the tunnel was up; it printed:\n{}",
                    self.ssh.tail(10)
                );
            }
            if tokio::net::TcpStream::connect(("127.0.0.1", port))
                .await
                .is_ok()
            {
                let owner = self.ssh.pid().and_then(|pid| listener_owned_by(pid, port));
                if owner == Some(false) {
                    return Err(anyhow::Error::new(PortTaken(port)));
                }
                return Ok(());
            }
            if tokio::time::Instant::now() > deadline {
                bail!(
                    "the SSH tunnel did not open port {port} within {timeout:?}; ssh printed:\n{}",
                    self.ssh.tail(10)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until ssh exits on its own (the connection dropped).
    pub(crate) async fn exited(&mut self) -> String {
        let status = self
            .ssh
            .exited()
            .await
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string());
        format!(
            "ssh exited ({status}); its last output:\n{}",
            self.ssh.tail(5)
        )
    }

    /// Stops ssh (SIGTERM, then SIGKILL after 5 s). Safe to call twice.
    pub(crate) async fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.ssh
            .stop(
                nix::sys::signal::Signal::SIGTERM,
                Duration::from_secs(5),
                "ssh",
            )
            .await;
        tracing::info!(local_port = self.local_port, "SSH tunnel closed");
    }
}
