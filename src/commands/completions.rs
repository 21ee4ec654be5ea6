//! `rlsctl completions <shell>` and `rlsctl man`: generated from the clap definitions.

use anyhow::{Context, Result};
use clap::CommandFactory;

use crate::cli::Cli;
use crate::Status;

/// Prints completions for `shell`.
pub fn completions(shell: clap_complete::Shell) -> Result<Status> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "rlsctl", &mut std::io::stdout());
    Ok(Status::Clean)
}

/// Prints the man page.
pub fn man() -> Result<Status> {
    clap_mangen::Man::new(Cli::command())
        .render(&mut std::io::stdout())
        .context("writing the man page")?;
    Ok(Status::Clean)
}
