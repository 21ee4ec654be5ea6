//! rlsctl: cut a multi-tenant PostgreSQL database over to Row-Level Security,
//! prove tenant isolation, watch for drift, and roll back under break-glass.

pub mod bundle;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod env_file;
pub mod inspect;
pub mod logging;
pub mod report;
pub mod sandbox;
pub mod shadow;
pub mod signals;
pub mod tunnel;

use std::process::ExitCode;

use anyhow::Result;

pub use signals::{stop_signal, Interrupted, Stop};

/// How a command ended, when it ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Success; nothing wrong found (exit 0).
    Clean,
    /// The tool ran and found a problem (exit 1).
    Problems,
}

/// Exit code for "could not do its job".
pub const EXIT_ERROR: u8 = 2;

/// Sets up logging, runs the command on a Tokio runtime and maps the result to an exit code.
pub fn main_with(cli: cli::Cli) -> ExitCode {
    logging::init(cli.global.quiet, cli.global.verbose, cli.global.log_format);
    // Before the runtime starts its threads: they inherit the signal mask.
    signals::prepare();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            crate::say!("rlsctl: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let result = runtime.block_on(async {
        // Handlers first, so a signal at any point of the run is seen.
        signals::listen();
        run(cli).await
    });
    // Do not wait for stray connection tasks: the process is done.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(Status::Clean) => ExitCode::SUCCESS,
        Ok(Status::Problems) => ExitCode::from(1),
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

/// Runs one parsed command line.
pub async fn run(cli: cli::Cli) -> Result<Status> {
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

/// An error's message followed by its causes, `: `-separated.
pub fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

/// Runs `work` until it ends or a stop signal arrives (see [`stop_signal`]);
/// then the statements in flight are cancelled, the future is dropped (its
/// connections close, so the server rolls back any open transaction; a tunnel
/// around it is closed by its owner) and `Interrupted` is returned.
pub async fn until_interrupted<T>(work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    // Biased, signal first: the handlers are installed before any work starts,
    // so a signal during a blocking step is still seen (and cleaned up after).
    tokio::select! {
        biased;
        stop = stop_signal() => {
            db::cancel_all().await;
            Err(Interrupted(stop).into())
        }
        result = work => result,
    }
}
