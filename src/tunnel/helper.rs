//! A helper process a tunnel runs for the length of a command (the
//! session-manager-plugin, ssh): killed if rlsctl dies, everything it prints
//! captured for the messages, stopped with a signal and a grace period.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result};
use tokio::io::AsyncReadExt;
use tokio::process::{Child, Command};
use tokio::sync::watch;

/// util-linux's `setpriv`, which sets PR_SET_PDEATHSIG and then execs the
/// program in place (same pid, same argv for the program).
const SETPRIV: &str = "/usr/bin/setpriv";

/// A command that runs `program` so that it is killed when rlsctl dies, even
/// by SIGKILL (which no handler sees): through `setpriv --pdeathsig KILL` on
/// Linux where it exists (util-linux, on every Debian and Ubuntu). Without it
/// the helper still stops with every clean exit of rlsctl.
pub(crate) fn with_parent_death_signal(program: &Path) -> Command {
    if cfg!(target_os = "linux") && Path::new(SETPRIV).is_file() {
        let mut command = Command::new(SETPRIV);
        command.args(["--pdeathsig", "KILL"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

/// The executable `name` on PATH, if there is one.
pub(crate) fn on_path(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(name))
        .find(|p| p.is_file())
}

/// A running helper and everything it has printed.
pub(crate) struct Helper {
    child: Child,
    output: Arc<Mutex<String>>,
    changed: watch::Receiver<()>,
    readers: Vec<tokio::task::JoinHandle<()>>,
}

impl Helper {
    /// Starts `command` (its stdin and process group as the caller set them)
    /// with its output captured; `what` names it in the error.
    pub(crate) fn spawn(mut command: Command, what: &str) -> Result<Self> {
        command
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {what}"))?;
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

    /// Its pid (the same through `setpriv`, which execs in place).
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Its exit status if it has exited, with what it printed read to the end.
    pub(crate) async fn has_exited(&mut self) -> Option<std::process::ExitStatus> {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                self.drain_output().await;
                Some(status)
            }
            _ => None,
        }
    }

    /// Waits until it prints more (or, both streams closed, a moment).
    pub(crate) async fn printed_more(&mut self, deadline: tokio::time::Instant) -> bool {
        match tokio::time::timeout_at(deadline, self.changed.changed()).await {
            Err(_) => false,
            Ok(Err(_)) => {
                // The process is ending; poll for its exit.
                tokio::time::sleep(Duration::from_millis(20)).await;
                true
            }
            Ok(Ok(())) => true,
        }
    }

    /// Waits until it exits on its own, and until what it printed last is
    /// read (its last words say why it stopped).
    pub(crate) async fn exited(&mut self) -> std::io::Result<std::process::ExitStatus> {
        let status = self.child.wait().await;
        self.drain_output().await;
        status
    }

    /// Reads what it printed to the end (its pipes close as it exits).
    async fn drain_output(&mut self) {
        for reader in self.readers.drain(..) {
            let _ = tokio::time::timeout(Duration::from_secs(2), reader).await;
        }
    }

    /// Sends `signal`, waits `grace`, then SIGKILL; `what` names it in the warning.
    pub(crate) async fn stop(
        &mut self,
        signal: nix::sys::signal::Signal,
        grace: Duration,
        what: &str,
    ) {
        if let Ok(Some(_)) = self.child.try_wait() {
            return;
        }
        if let Some(pid) = self.child.id() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), signal);
        }
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            tracing::warn!("{what} ignored {signal} for {grace:?}; killing it");
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
}
