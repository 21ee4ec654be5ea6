//! The session-manager-plugin process, started exactly as the AWS CLI does:
//! the StartSession response (token included) handed over in an environment
//! variable on plugins that support it (newer than 1.2.497.0; older ones
//! take it as the first argument), then the region, the operation, the
//! profile, the request and the SSM endpoint as arguments. SIGINT ends the
//! session; its exit status says nothing, its output does.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::process::Command;

use super::helper::{with_parent_death_signal, Helper};

/// The environment variable the response is handed over in (newer plugins).
pub(crate) const RESPONSE_ENV: &str = "AWS_SSM_START_SESSION_RESPONSE";
/// Plugins above this version read the response from `RESPONSE_ENV`.
const ENV_HANDOFF_AFTER: [u64; 4] = [1, 2, 497, 0];
/// The version a plugin built from source reports.
const SOURCE_BUILD_VERSION: &str = "1.2.0.0";
/// The readiness line (no newline follows it on older agents).
const READY_MARKER: &str = " opened for sessionId ";
/// Printed on stdout, with exit status 0, when the plugin fails.
const FAILURE_MARKER: &str = "Cannot perform start session";

/// The plugin executable: --plugin / SESSION_MANAGER_PLUGIN, else PATH.
pub(crate) fn find(explicit: Option<&Path>) -> Result<PathBuf> {
    const INSTALL: &str = "install the Session Manager plugin \
        (https://docs.aws.amazon.com/systems-manager/latest/userguide/session-manager-working-with-install-plugin.html) \
        or point SESSION_MANAGER_PLUGIN at it";
    let path = match explicit {
        Some(path) => path.to_path_buf(),
        None => super::helper::on_path("session-manager-plugin")
            .ok_or_else(|| anyhow!("session-manager-plugin is not on PATH: {INSTALL}"))?,
    };
    let metadata = std::fs::metadata(&path).map_err(|_| {
        anyhow!(
            "session-manager-plugin not found at {}: {INSTALL}",
            path.display()
        )
    })?;
    use std::os::unix::fs::PermissionsExt;
    if !metadata.is_file() || metadata.permissions().mode() & 0o111 == 0 {
        bail!("{} is not an executable file: {INSTALL}", path.display());
    }
    Ok(path)
}

/// Runs `plugin --version`.
pub(crate) async fn version(path: &Path) -> Result<String> {
    let output = tokio::time::timeout(
        Duration::from_secs(10),
        Command::new(path)
            .arg("--version")
            .stdin(Stdio::null())
            .output(),
    )
    .await
    .map_err(|_| anyhow!("{} --version did not answer within 10 s", path.display()))?
    .with_context(|| format!("running {} --version", path.display()))?;
    let version = String::from_utf8_lossy(&output.stdout).trim().to_string();
    if version.is_empty() {
        bail!(
            "{} --version printed nothing: is it the Session Manager plugin?",
            path.display()
        );
    }
    Ok(version)
}

/// Refuses a plugin that would get the session token on its command line
/// (readable by any local user in /proc/PID/cmdline) unless the operator
/// allowed it: versions up to 1.2.497.0, a build from source (1.2.0.0), or a
/// version that does not parse.
pub(crate) fn check_token_handoff(version: &str, allow_token_in_argv: bool) -> Result<()> {
    if uses_env_handoff(version) {
        return Ok(());
    }
    let what = if version == SOURCE_BUILD_VERSION {
        format!("{version}, a build from source,")
    } else {
        version.to_string()
    };
    if allow_token_in_argv {
        tracing::warn!("session-manager-plugin {what} gets the session token on its command line (--allow-token-in-argv)");
        return Ok(());
    }
    bail!(
        "session-manager-plugin {what} would get the session token on its command line, where any local user can read it: \
         install a plugin newer than 1.2.497.0, or pass --allow-token-in-argv to accept that"
    )
}

/// Whether this version reads the response from the environment (> 1.2.497.0).
pub(crate) fn uses_env_handoff(version: &str) -> bool {
    let parts: Vec<u64> = version
        .split('.')
        .map(|p| p.trim().parse().unwrap_or(0))
        .collect();
    parts.as_slice() > ENV_HANDOFF_AFTER.as_slice()
}

/// What to start the plugin with.
pub(crate) struct Launch<'a> {
    /// The executable.
    pub(crate) path: &'a Path,
    /// Its version.
    pub(crate) version: &'a str,
    /// StartSession's response: SessionId, TokenValue, StreamUrl.
    pub(crate) response_json: &'a str,
    /// The region.
    pub(crate) region: &'a str,
    /// The profile ("" for none).
    pub(crate) profile: &'a str,
    /// StartSession's request, with Target.
    pub(crate) request_json: &'a str,
    /// The SSM endpoint URL.
    pub(crate) endpoint: &'a str,
}

/// A running plugin and everything it has printed.
pub(crate) struct Plugin {
    helper: Helper,
}

impl Plugin {
    /// Starts the plugin in its own process group (so a terminal's Ctrl-C
    /// reaches rlsctl, which then stops the plugin and ends the session).
    pub(crate) fn spawn(launch: &Launch<'_>) -> Result<Self> {
        let mut command = with_parent_death_signal(launch.path);
        if uses_env_handoff(launch.version) {
            // The token never shows in the process list.
            command
                .arg(RESPONSE_ENV)
                .env(RESPONSE_ENV, launch.response_json);
        } else {
            command.arg(launch.response_json);
        }
        command
            .args([
                launch.region,
                "StartSession",
                launch.profile,
                launch.request_json,
                launch.endpoint,
            ])
            .stdin(Stdio::null())
            .process_group(0);
        let helper = Helper::spawn(command, &launch.path.display().to_string())?;
        Ok(Self { helper })
    }

    /// The last `n` non-empty lines printed.
    pub(crate) fn tail(&self, n: usize) -> String {
        self.helper.tail(n)
    }

    /// Its pid (the same through `setpriv`, which execs in place).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.helper.pid()
    }

    /// Waits for `Port N opened for sessionId`, then for a TCP connect to the port.
    pub(crate) async fn ready(&mut self, timeout: Duration) -> Result<u16> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut exited = None;
        loop {
            if exited.is_none() {
                // Read what it printed to the end before judging why it stopped.
                exited = self.helper.has_exited().await;
            }
            let output = self.helper.output();
            if let Some(at) = output.find(FAILURE_MARKER) {
                let line = output[at..].lines().next().unwrap_or_default();
                bail!("the session-manager-plugin failed: {line}");
            }
            if let Some(port) = ready_port(&output) {
                while tokio::net::TcpStream::connect(("127.0.0.1", port))
                    .await
                    .is_err()
                {
                    if tokio::time::Instant::now() > deadline {
                        bail!("the plugin reported port {port} open but nothing accepts connections on it");
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                return Ok(port);
            }
            if let Some(status) = exited {
                bail!("the session-manager-plugin exited ({status}) before the port opened; it printed:\n{}", self.tail(10));
            }
            if !self.helper.printed_more(deadline).await {
                bail!("the session-manager-plugin did not open the port within {timeout:?}; it printed:\n{}", self.tail(10));
            }
        }
    }

    /// Waits until the plugin exits on its own, and until what it printed last
    /// is read (its last words say why it stopped).
    pub(crate) async fn exited(&mut self) -> std::io::Result<std::process::ExitStatus> {
        self.helper.exited().await
    }

    /// SIGINT (the plugin ends its session on SIGINT, not SIGTERM), a grace
    /// period, then SIGKILL.
    pub(crate) async fn stop(&mut self) {
        self.helper
            .stop(
                nix::sys::signal::Signal::SIGINT,
                Duration::from_secs(10),
                "the plugin",
            )
            .await;
    }
}

/// The port in `Port N opened for sessionId ...`.
fn ready_port(output: &str) -> Option<u16> {
    let at = output.find(READY_MARKER)?;
    let before = &output[..at];
    let start = before.rfind("Port ")?;
    before[start + 5..].trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_readiness() {
        assert!(uses_env_handoff("1.2.650.0"));
        assert!(uses_env_handoff("1.3.0.0"));
        assert!(!uses_env_handoff("1.2.497.0"));
        assert!(!uses_env_handoff("1.2.0.0"));
        let out = "\nStarting session with SessionId: s-1\nPort 40123 opened for sessionId s-1.";
        assert_eq!(ready_port(out), Some(40123));
        assert_eq!(ready_port("\nStarting session with SessionId: s-1\n"), None);
    }
}
