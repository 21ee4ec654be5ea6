//! The session-manager-plugin process, started exactly as the AWS CLI does:
//! the StartSession response (token included) handed over in an environment
//! variable on plugins that support it (newer than 1.2.497.0; older ones
//! take it as the first argument), then the region, the operation, the
//! profile, the request and the SSM endpoint as arguments. SIGINT ends the
//! session; its exit status says nothing, its output does.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::watch;

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
        None => std::env::var_os("PATH")
            .and_then(|paths| {
                std::env::split_paths(&paths)
                    .map(|d| d.join("session-manager-plugin"))
                    .find(|p| p.is_file())
            })
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

/// util-linux's `setpriv`, which sets PR_SET_PDEATHSIG and then execs the
/// program in place (same pid, same argv for the program).
const SETPRIV: &str = "/usr/bin/setpriv";

/// A command that runs `program` so that it is killed when rlsctl dies, even
/// by SIGKILL (which no handler sees): through `setpriv --pdeathsig KILL` on
/// Linux where it exists (util-linux, on every Debian and Ubuntu). Without it
/// the plugin still stops with every clean exit of rlsctl.
fn with_parent_death_signal(program: &Path) -> Command {
    if cfg!(target_os = "linux") && Path::new(SETPRIV).is_file() {
        let mut command = Command::new(SETPRIV);
        command.args(["--pdeathsig", "KILL"]).arg(program);
        command
    } else {
        Command::new(program)
    }
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
    child: Child,
    output: Arc<Mutex<String>>,
    changed: watch::Receiver<()>,
    readers: Vec<tokio::task::JoinHandle<()>>,
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
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {}", launch.path.display()))?;
        let output = Arc::new(Mutex::new(String::new()));
        let (notify, changed) = watch::channel(());
        let notify = Arc::new(notify);
        let mut readers = Vec::new();
        for stream in [
            child
                .stdout
                .take()
                .map(|s| Box::new(s) as Box<dyn tokio::io::AsyncRead + Send + Unpin>),
            child.stderr.take().map(|s| Box::new(s) as _),
        ]
        .into_iter()
        .flatten()
        {
            let (output, notify) = (output.clone(), notify.clone());
            readers.push(tokio::spawn(async move {
                let mut stream = stream;
                let mut buffer = [0u8; 4096];
                while let Ok(n) = stream.read(&mut buffer).await {
                    if n == 0 {
                        break;
                    }
                    // A poisoned lock still holds the text: a reader's panic loses nothing.
                    output
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner)
                        .push_str(&String::from_utf8_lossy(&buffer[..n]));
                    let _ = notify.send(());
                }
                let _ = notify.send(());
            }));
        }
        Ok(Self {
            child,
            output,
            changed,
            readers,
        })
    }

    /// Everything printed so far.
    pub(crate) fn output(&self) -> String {
        self.output
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The last `n` non-empty lines printed.
    pub(crate) fn tail(&self, n: usize) -> String {
        let output = self.output();
        let lines: Vec<&str> = output.lines().filter(|l| !l.trim().is_empty()).collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// Waits for `Port N opened for sessionId`, then for a TCP connect to the port.
    pub(crate) async fn ready(&mut self, timeout: Duration) -> Result<u16> {
        let deadline = tokio::time::Instant::now() + timeout;
        let mut exited = None;
        loop {
            if exited.is_none() {
                if let Ok(Some(status)) = self.child.try_wait() {
                    // Read what it printed to the end before judging why it stopped.
                    self.drain_output().await;
                    exited = Some(status);
                }
            }
            let output = self.output();
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
            match tokio::time::timeout_at(deadline, self.changed.changed()).await {
                Err(_) => bail!("the session-manager-plugin did not open the port within {timeout:?}; it printed:\n{}", self.tail(10)),
                // Both streams closed: the process is ending; poll for its exit.
                Ok(Err(_)) => tokio::time::sleep(Duration::from_millis(20)).await,
                Ok(Ok(())) => {}
            }
        }
    }

    /// Waits until the plugin exits on its own, and until what it printed last
    /// is read (its last words say why it stopped).
    pub(crate) async fn exited(&mut self) -> std::io::Result<std::process::ExitStatus> {
        let status = self.child.wait().await;
        self.drain_output().await;
        status
    }

    /// Reads what the plugin printed to the end (its pipes close as it exits).
    async fn drain_output(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
    }

    /// SIGINT (the plugin ends its session on SIGINT, not SIGTERM), a grace
    /// period, then SIGKILL.
    pub(crate) async fn stop(&mut self) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGINT,
            );
        }
        if tokio::time::timeout(Duration::from_secs(10), self.child.wait())
            .await
            .is_err()
        {
            tracing::warn!("the plugin ignored SIGINT for 10 s; killing it");
            let _ = self.child.kill().await;
        }
    }
}

/// Whether the socket listening on 127.0.0.1/::1 `port` belongs to process
/// `pid`, from /proc (Linux): `Some(false)` when another process listens
/// there, `None` when it cannot be told (no /proc, nothing listening).
pub(crate) fn listener_owned_by(pid: u32, port: u16) -> Option<bool> {
    let wanted = format!(":{port:04X}");
    let mut inodes = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address, rem_address, st (0A = LISTEN), ..., inode at 9
            if fields.len() > 9 && fields[1].ends_with(&wanted) && fields[3] == "0A" {
                inodes.push(format!("socket:[{}]", fields[9]));
            }
        }
    }
    if inodes.is_empty() {
        return None;
    }
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?;
    Some(fds.filter_map(|e| e.ok()).any(|e| {
        std::fs::read_link(e.path())
            .map(|target| inodes.iter().any(|i| target.as_os_str() == i.as_str()))
            .unwrap_or(false)
    }))
}

impl Plugin {
    /// Its pid (the same through `setpriv`, which execs in place).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
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
    fn the_listener_is_told_apart_by_its_owner() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert_eq!(listener_owned_by(std::process::id(), port), Some(true));
        assert_eq!(listener_owned_by(1, port), Some(false));
        drop(listener);
        assert_eq!(listener_owned_by(std::process::id(), port), None);
    }

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
