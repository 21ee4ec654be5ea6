//! The `rlsctl` binary: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `.env` fills the environment without overriding it: flag > env > .env > default.
    let _ = dotenvy::dotenv();
    let cli = rlsctl::cli::Cli::parse();
    rlsctl::main_with(cli)
}
