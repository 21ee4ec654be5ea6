//! rlsctl: cut a multi-tenant PostgreSQL database over to Row-Level Security,
//! prove tenant isolation, watch for drift, and roll back under break-glass.

//!
//! The layers, each importing only those below it (checked by
//! `tests/integration/layers.rs`):
//!
//! 1. [`logging`], [`signals`], `input_file`: output, the stop signals, and
//!    the small files read whole (bounded, regular, private where it matters);
//! 2. [`model`]: the database's state, its rules and reports, without I/O;
//! 3. [`pg`], [`aws`], [`http`], [`env_file`]: PostgreSQL connections, AWS,
//!    the app's HTTP endpoint, the `.env` file;
//! 4. [`inspect`], [`sandbox`], `logs`, [`tunnel`], [`credentials`]: reading
//!    the snapshot, the throwaway server, the log sources, the tunnels,
//!    password sources;
//! 5. [`probes`], [`cutover`]: the live probes; applying and rolling back;
//! 6. [`cli`]: every flag and its help;
//! 7. [`commands`]: one module per subcommand; this file dispatches to them.

#![forbid(unsafe_code)]

pub mod aws;
pub mod cli;
pub mod commands;
pub mod credentials;
pub mod cutover;
pub mod env_file;
pub mod http;
pub(crate) mod input_file;
pub mod inspect;
pub mod logging;
pub(crate) mod logs;
pub mod model;
pub mod pg;
pub mod probes;
pub mod sandbox;
pub mod signals;
pub mod tunnel;

use std::process::ExitCode;

use anyhow::Result;

use commands::Verdict;
use signals::{Interrupted, Stop};

/// Exit code for "could not do its job".
pub(crate) const EXIT_ERROR: u8 = 2;

/// Sets up logging, runs the command on a Tokio runtime and maps the result to an exit code.
pub fn main_with(cli: cli::Cli) -> ExitCode {
    logging::init(cli.global.quiet, cli.global.verbose, cli.global.log_format);
    // Before the runtime starts its threads: they inherit the signal mask.
    signals::prepare();
    // One database's run is a chain of round trips on one or two connections:
    // on one thread, each message the server sends wakes no other thread (at
    // 2,000 tables that saved about 11 ms of CPU of a monitor run, 5% of its
    // wall; docs/performance.md). A fleet's targets are independent, and their
    // client-side work (reading each snapshot, running the checks) uses both
    // workers.
    let mut builder = if cli.many_targets() {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        // tokio's 2 MiB worker stacks: the big reads' futures are boxed
        // (monitor's), and a fleet's run passes at 1 MiB in a debug build.
        builder.worker_threads(2);
        builder
    } else {
        tokio::runtime::Builder::new_current_thread()
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            crate::say!("rlsctl: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let limit = Some(cli.global.timeout)
        .filter(|d| !d.is_zero() && !matches!(cli.command, cli::Command::Tunnel(_)));
    let result = runtime.block_on(async {
        // Handlers first, so a signal at any point of the run is seen.
        signals::listen();
        match limit {
            None => run(cli).await,
            Some(limit) => within(limit, run(cli)).await,
        }
    });
    // Do not wait for stray connection tasks: the process is done.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(Verdict::Clean) => ExitCode::SUCCESS,
        Ok(Verdict::Problems) => ExitCode::from(1),
        Err(err) if err.downcast_ref::<Interrupted>().is_some() => {
            crate::say!("rlsctl: {err}");
            let stop = err.downcast_ref::<Interrupted>().map(|i| i.0);
            ExitCode::from(stop.unwrap_or(Stop::Interrupt).exit_code())
        }
        Err(err) => {
            crate::say!("rlsctl: error: {err:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// `work`, or past `limit` an error: the statements in flight are cancelled
/// and the connections dropped with the future, so the server rolls back a
/// change in progress whole.
async fn within(
    limit: std::time::Duration,
    work: impl std::future::Future<Output = Result<Verdict>>,
) -> Result<Verdict> {
    match tokio::time::timeout(limit, work).await {
        Ok(result) => result,
        Err(_) => {
            pg::cancel_all().await;
            Err(anyhow::anyhow!(
                "did not finish within --timeout {} (RLSCTL_TIMEOUT): stopped; a change in progress was rolled back whole",
                humantime::format_duration(limit)
            ))
        }
    }
}

/// Runs one parsed command line.
pub(crate) async fn run(cli: cli::Cli) -> Result<Verdict> {
    use cli::Command;
    match cli.command {
        Command::Apply(args) => commands::apply::run(args).await,
        Command::Verify(args) => commands::verify::run(args).await,
        Command::Monitor(args) => commands::monitor::run(args, cli.global.quiet).await,
        Command::Rollback(args) => commands::rollback::run(args).await,
        Command::Rehearse(args) => commands::rehearse::run(args).await,
        Command::Shadow(command) => commands::shadow::run(command).await,
        Command::Tunnel(args) => commands::tunnel::run(args).await,
        Command::Completions { shell } => commands::completions::completions(shell),
        Command::Man => commands::completions::man(),
    }
}
