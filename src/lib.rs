//! rlsctl: cut a multi-tenant PostgreSQL database over to Row-Level Security,
//! prove tenant isolation, watch for drift, and roll back under break-glass.

pub mod bundle;
pub mod checks;
pub mod cli;
pub mod commands;
pub mod config;
pub mod db;
pub mod inspect;
pub mod logging;
pub mod report;
pub mod sandbox;
pub mod tunnel;

use std::process::ExitCode;

use anyhow::Result;

/// How a command ended, when it ran to the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// Success; nothing wrong found (exit 0).
    Clean,
    /// The tool ran and found a problem (exit 1).
    Problems,
}

/// The user pressed Ctrl-C; whatever was half-done has been rolled back (exit 130).
#[derive(Debug)]
pub struct Interrupted;

impl std::fmt::Display for Interrupted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("interrupted; nothing was committed")
    }
}

impl std::error::Error for Interrupted {}

/// Exit code for "could not do its job".
pub const EXIT_ERROR: u8 = 2;
/// Exit code after Ctrl-C.
pub const EXIT_INTERRUPTED: u8 = 130;

/// Sets up logging, runs the command on a Tokio runtime and maps the result to an exit code.
pub fn main_with(cli: cli::Cli) -> ExitCode {
    logging::init(cli.global.quiet, cli.global.verbose, cli.global.log_format);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("rlsctl: cannot start the async runtime: {err}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    let result = runtime.block_on(run(cli));
    // Do not wait for stray connection tasks: the process is done.
    runtime.shutdown_timeout(std::time::Duration::from_millis(200));
    match result {
        Ok(Status::Clean) => ExitCode::SUCCESS,
        Ok(Status::Problems) => ExitCode::from(1),
        Err(err) if err.downcast_ref::<Interrupted>().is_some() => {
            eprintln!("rlsctl: {err}");
            ExitCode::from(EXIT_INTERRUPTED)
        }
        Err(err) => {
            eprintln!("rlsctl: error: {err:#}");
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
        Command::Tunnel(args) => commands::tunnel::run(args).await,
        Command::Completions { shell } => commands::completions::completions(shell),
        Command::Man => commands::completions::man(),
    }
}

/// Runs `work` until it ends or Ctrl-C arrives; on Ctrl-C the future is dropped
/// (its connections close, so the server rolls back any open transaction) and
/// `Interrupted` is returned.
pub async fn until_interrupted<T>(work: impl std::future::Future<Output = Result<T>>) -> Result<T> {
    // Biased, signal first: the handler is installed before any work starts,
    // so a Ctrl-C during a blocking step is still seen (and cleaned up after).
    tokio::select! {
        biased;
        _ = tokio::signal::ctrl_c() => {
            db::cancel_all().await;
            Err(Interrupted.into())
        }
        result = work => result,
    }
}
