//! The `rlsctl` binary: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `.env` in the working directory (not its parents) fills the environment
    // without overriding it: flag > env > .env > default.
    if let Err(err) = dotenvy::from_path(".env") {
        if !err.not_found() {
            rlsctl::say!("rlsctl: warning: ignoring .env: {err}");
        }
    }
    let cli = rlsctl::cli::Cli::parse();
    rlsctl::main_with(cli)
}
