//! SSM Session Manager port forwarding: pre-flight, StartSession, the plugin
//! process, readiness, and teardown with TerminateSession.

pub(crate) mod helper;
pub(crate) mod plugin;
pub(crate) mod ssh;

use std::net::TcpListener;

use anyhow::{anyhow, bail, Context, Result};

use crate::aws::{AwsSettings, Ssm, PORT_FORWARD_DOCUMENT};
use plugin::{Launch, Plugin};

/// Where a tunnel goes and how the plugin is run.
#[derive(Debug, Clone)]
pub(crate) struct TunnelSettings {
    /// The SSM-managed EC2 instance that forwards to the database.
    pub(crate) instance_id: Option<String>,
    /// The RDS endpoint the instance dials.
    pub(crate) rds_endpoint: Option<String>,
    /// The database port on the RDS side.
    pub(crate) remote_port: u16,
    /// The plugin executable (else SESSION_MANAGER_PLUGIN, else PATH).
    pub(crate) plugin: Option<std::path::PathBuf>,
    /// AWS credentials and region.
    pub(crate) aws: AwsSettings,
    /// How long to wait for the plugin to report the port open.
    pub(crate) start_timeout: std::time::Duration,
    /// Let an old plugin take the session token on its command line.
    pub(crate) allow_token_in_argv: bool,
}

/// Another process listens on the port the plugin reported: refused, so no
/// password goes to it. `--via-ssm` retries on another free port.
#[derive(Debug)]
pub(crate) struct PortTaken(pub u16);

impl std::fmt::Display for PortTaken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "local port {} is held by another process, not the session-manager-plugin: refusing to connect through it",
            self.0
        )
    }
}

impl std::error::Error for PortTaken {}

/// A session started and its plugin running, not yet ready.
struct Started {
    ssm: Ssm,
    session_id: String,
    plugin: Plugin,
    spinner: Option<indicatif::ProgressBar>,
    rds: String,
}

/// An open tunnel: `127.0.0.1:local_port` -> `rds:remote_port` through the instance.
pub(crate) struct Tunnel {
    ssm: Ssm,
    plugin: Plugin,
    /// The SSM session.
    pub(crate) session_id: String,
    /// The local port.
    pub(crate) local_port: u16,
    /// Where it leads, for messages: `host:port`.
    pub(crate) destination: String,
    closed: bool,
}

/// A free port on 127.0.0.1 (for `--via-ssm`).
pub fn free_local_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")
        .context("finding a free local port")?
        .local_addr()?
        .port())
}

impl Tunnel {
    /// Pre-flight (plugin, local port, instance Online), StartSession, the plugin,
    /// readiness. Whatever fails after StartSession ends the session again, and
    /// so does a stop signal (SIGINT, SIGTERM, SIGHUP) while the plugin comes
    /// up: it handles those itself, so callers do not wrap it in
    /// `until_interrupted` (which would drop it before it could clean up).
    pub(crate) async fn open(args: &TunnelSettings, local_port: u16) -> Result<Self> {
        let Started {
            ssm,
            session_id,
            mut plugin,
            spinner,
            rds,
        } = crate::signals::until_stopped(Self::start(args, local_port)).await?;
        let ready = tokio::select! {
            biased;
            stop = crate::signals::stop_signal() => Err(anyhow::Error::new(crate::signals::Interrupted(stop))),
            ready = plugin.ready(args.start_timeout) => ready,
        };
        if let Some(spinner) = spinner {
            spinner.finish_and_clear();
        }
        let mut tunnel = Self {
            ssm,
            plugin,
            session_id,
            local_port,
            destination: format!("{rds}:{}", args.remote_port),
            closed: false,
        };
        // The port was free at the pre-flight, but another process could have
        // taken it before the plugin bound it: connect only to the plugin.
        let ready = ready.and_then(|port| {
            let owner = tunnel
                .plugin
                .pid()
                .and_then(|pid| helper::listener_owned_by(pid, port));
            if owner == Some(false) {
                return Err(anyhow::Error::new(PortTaken(port)));
            }
            Ok(port)
        });
        match ready {
            Ok(port) => {
                tunnel.local_port = port;
                Ok(tunnel)
            }
            Err(e) => {
                tunnel.close().await;
                Err(e)
            }
        }
    }

    /// Everything up to a running plugin.
    async fn start(args: &TunnelSettings, local_port: u16) -> Result<Started> {
        let instance = args
            .instance_id
            .as_deref()
            .ok_or_else(|| anyhow!("no instance: set INSTANCE_ID or pass --instance-id"))?;
        let rds = args
            .rds_endpoint
            .as_deref()
            .ok_or_else(|| anyhow!("no RDS endpoint: set RDS_ENDPOINT or pass --rds-endpoint"))?;
        let plugin_path = plugin::find(args.plugin.as_deref())?;
        let version = plugin::version(&plugin_path).await?;
        plugin::check_token_handoff(&version, args.allow_token_in_argv)?;
        if let Err(e) = TcpListener::bind(("127.0.0.1", local_port)) {
            bail!("local port {local_port} is not free ({e}): stop what listens there or pick another with --local-port / LOCAL_PORT");
        }
        let spinner = crate::logging::spinner("opening the SSM tunnel");
        let ssm = Ssm::new(&args.aws).await?;
        ssm.check_instance(instance).await?;
        let (response_json, session_id) = ssm
            .start_session(instance, rds, args.remote_port, local_port)
            .await?;
        tracing::info!(session_id, plugin_version = %version, "session started");
        let request_json = serde_json::json!({
            "Target": instance,
            "DocumentName": PORT_FORWARD_DOCUMENT,
            "Parameters": {"host": [rds], "portNumber": [args.remote_port.to_string()], "localPortNumber": [local_port.to_string()]},
        })
        .to_string();
        let launch = Launch {
            path: &plugin_path,
            version: &version,
            response_json: &response_json,
            region: &ssm.region,
            profile: &ssm.profile,
            request_json: &request_json,
            endpoint: &ssm.endpoint,
        };
        let plugin = match Plugin::spawn(&launch) {
            Ok(plugin) => plugin,
            Err(e) => {
                ssm.terminate_session(&session_id).await;
                return Err(e);
            }
        };
        Ok(Started {
            ssm,
            session_id,
            plugin,
            spinner,
            rds: rds.to_string(),
        })
    }

    /// Waits until the plugin exits on its own (the session dropped).
    pub(crate) async fn exited(&mut self) -> String {
        let status = self
            .plugin
            .exited()
            .await
            .map(|s| s.to_string())
            .unwrap_or_else(|e| e.to_string());
        format!(
            "the session-manager-plugin exited ({status}); its last output:\n{}",
            self.plugin.tail(5)
        )
    }

    /// Stops the plugin with SIGINT and calls TerminateSession. Safe to call twice.
    pub(crate) async fn close(&mut self) {
        if self.closed {
            return;
        }
        self.closed = true;
        self.plugin.stop().await;
        self.ssm.terminate_session(&self.session_id).await;
    }
}

impl Drop for Tunnel {
    fn drop(&mut self) {
        if !self.closed {
            tracing::warn!(session_id = %self.session_id, "tunnel dropped without close; the plugin is killed and the session may stay open until it times out");
        }
    }
}

/// A tunnel a command connects through: SSM, or SSH (the runbook's fallback).
pub(crate) enum Forward {
    /// Session Manager port forwarding.
    Ssm(Tunnel),
    /// `ssh -N -L` through a bastion.
    Ssh(ssh::SshTunnel),
}

impl Forward {
    /// The local port it listens on.
    pub(crate) fn local_port(&self) -> u16 {
        match self {
            Self::Ssm(t) => t.local_port,
            Self::Ssh(t) => t.local_port,
        }
    }

    /// `SSM` or `SSH`, for messages.
    pub(crate) fn kind(&self) -> &'static str {
        match self {
            Self::Ssm(_) => "SSM",
            Self::Ssh(_) => "SSH",
        }
    }

    /// Waits until it drops on its own; why, for the message.
    pub(crate) async fn exited(&mut self) -> String {
        match self {
            Self::Ssm(t) => t.exited().await,
            Self::Ssh(t) => t.exited().await,
        }
    }

    /// Tears it down. Safe to call twice.
    pub(crate) async fn close(&mut self) {
        match self {
            Self::Ssm(t) => t.close().await,
            Self::Ssh(t) => t.close().await,
        }
    }
}
