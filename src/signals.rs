//! The signals that stop a command (SIGINT, SIGTERM, SIGHUP) and how they map
//! to exit codes. Every command stops the same clean way on each of them.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

use tokio::sync::watch;

/// Set when SIGHUP was ignored on entry (`nohup rlsctl ...`): then a hang-up
/// is not a reason to stop, as the operator asked.
static HANGUP_IGNORED: AtomicBool = AtomicBool::new(false);

/// Makes the stop signals reach rlsctl whatever it inherited. Called once,
/// before the runtime starts its threads (they inherit this thread's mask).
///
/// A parent that blocks a signal passes the block on through exec, and a
/// blocked SIGTERM or SIGHUP would leave a tunnel, a session and a held lock
/// behind: so the three are unblocked. An *ignored* SIGHUP is the `nohup`
/// convention and is kept (the shell convention: ignored on entry stays
/// ignored); SIGINT and SIGTERM always stop.
pub(crate) fn prepare() {
    use nix::sys::signal::{pthread_sigmask, SigSet, SigmaskHow, Signal};
    HANGUP_IGNORED.store(ignored_on_entry(Signal::SIGHUP as i32), Ordering::Relaxed);
    let mut stops = SigSet::empty();
    for signal in [Signal::SIGINT, Signal::SIGTERM, Signal::SIGHUP] {
        stops.add(signal);
    }
    if let Err(err) = pthread_sigmask(SigmaskHow::SIG_UNBLOCK, Some(&stops), None) {
        tracing::debug!("cannot unblock the stop signals: {err}");
    }
}

/// Whether `signal` is ignored (SIG_IGN), read from /proc/self/status so no
/// handler has to be swapped in and out to find out.
fn ignored_on_entry(signal: i32) -> bool {
    let Ok(status) = std::fs::read_to_string("/proc/self/status") else {
        return false;
    };
    status
        .lines()
        .find_map(|line| line.strip_prefix("SigIgn:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

/// The signal that asked rlsctl to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// SIGINT (Ctrl-C): exit 130.
    Interrupt,
    /// SIGTERM (systemd, kill): exit 143.
    Terminate,
    /// SIGHUP (the terminal or SSH session went away): exit 129.
    Hangup,
}

impl Stop {
    /// The exit code, 128 + the signal number, as shells report it.
    pub(crate) fn exit_code(self) -> u8 {
        match self {
            Stop::Interrupt => 130,
            Stop::Terminate => 143,
            Stop::Hangup => 129,
        }
    }
}

/// The first stop signal, once one has come; filled by the listener that
/// [`listen`] starts.
static FIRST_STOP: OnceLock<watch::Receiver<Option<Stop>>> = OnceLock::new();

/// Starts listening for the stop signals, once per process, inside the
/// runtime. The handlers are registered before this returns, and the first
/// stop is kept: a signal that comes while no one is waiting (between two
/// steps, say) is still seen by the next [`stop_signal`], not lost.
pub(crate) fn listen() -> watch::Receiver<Option<Stop>> {
    use tokio::signal::unix::{signal, SignalKind};
    FIRST_STOP
        .get_or_init(|| {
            let (first, receiver) = watch::channel(None);
            let interrupt = signal(SignalKind::interrupt()).ok();
            let terminate = signal(SignalKind::terminate()).ok();
            // Listening replaces SIG_IGN, so under nohup SIGHUP is left alone.
            let hangup = match HANGUP_IGNORED.load(Ordering::Relaxed) {
                true => None,
                false => signal(SignalKind::hangup()).ok(),
            };
            tokio::spawn(async move {
                let stop = tokio::select! {
                    _ = recv(interrupt) => Stop::Interrupt,
                    _ = recv(terminate) => Stop::Terminate,
                    _ = recv(hangup) => Stop::Hangup,
                };
                let _ = first.send(Some(stop));
                // Keep the receivers (and so the handlers) for the whole run.
                std::future::pending::<()>().await;
            });
            receiver
        })
        .clone()
}

/// The next delivery of a signal, or never when it could not be listened for.
async fn recv(signal: Option<tokio::signal::unix::Signal>) {
    match signal {
        Some(mut signal) => {
            signal.recv().await;
        }
        None => std::future::pending().await,
    }
}

/// Resolves once SIGINT, SIGTERM or SIGHUP has come (at once if one already
/// has): every command stops the same clean way on each of them.
pub(crate) async fn stop_signal() -> Stop {
    let mut first = listen();
    // Copied out of the guard, which must not be held across an await (the
    // future is sent between threads).
    let stop = first
        .wait_for(Option::is_some)
        .await
        .ok()
        .map(|stop| stop.unwrap_or(Stop::Interrupt));
    match stop {
        Some(stop) => stop,
        // The listener's runtime is gone: nothing can be heard any more.
        None => std::future::pending().await,
    }
}

/// A signal stopped the command; whatever was half-done has been rolled back.
#[derive(Debug)]
pub(crate) struct Interrupted(pub Stop);

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let by = match self.0 {
            Stop::Interrupt => "interrupted",
            Stop::Terminate => "terminated (SIGTERM)",
            Stop::Hangup => "hung up (SIGHUP)",
        };
        write!(f, "{by}; nothing was committed")
    }
}

impl std::error::Error for Interrupted {}

/// Runs `work` until it ends or a stop signal arrives (see [`stop_signal`]);
/// then the future is dropped (its connections close, so the server rolls
/// back any open transaction; a tunnel around it is closed by its owner) and
/// [`Interrupted`] is returned. `pg::until_interrupted` also cancels the
/// statements in flight.
pub(crate) async fn until_stopped<T>(
    work: impl std::future::Future<Output = anyhow::Result<T>>,
) -> anyhow::Result<T> {
    // Biased, signal first: the handlers are installed before any work starts,
    // so a signal during a blocking step is still seen (and cleaned up after).
    tokio::select! {
        biased;
        stop = stop_signal() => Err(Interrupted(stop).into()),
        result = work => result,
    }
}
