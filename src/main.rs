//! The `rlsctl` binary: parse, run, map the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    // `.env` in the working directory (not its parents) fills the environment
    // without overriding it: flag > env > .env > default. Refused when someone
    // else could have written it.
    if let Err(err) = rlsctl::env_file::load(std::path::Path::new(".env")) {
        rlsctl::say!("rlsctl: error: {err:#}");
        return ExitCode::from(2);
    }
    let cli = rlsctl::cli::Cli::parse();
    rlsctl::main_with(cli)
}
