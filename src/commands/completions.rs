//! `rlsctl completions <shell>` and `rlsctl man`: generated from the clap definitions.

use anyhow::{Context, Result};
use clap::CommandFactory;

use super::Verdict;
use crate::cli::Cli;

/// Prints completions for `shell`.
pub(crate) fn completions(shell: clap_complete::Shell) -> Result<Verdict> {
    let mut command = Cli::command();
    clap_complete::generate(shell, &mut command, "rlsctl", &mut std::io::stdout());
    Ok(Verdict::Clean)
}

/// Prints the man page.
pub(crate) fn man() -> Result<Verdict> {
    clap_mangen::Man::new(Cli::command())
        .render(&mut std::io::stdout())
        .context("writing the man page")?;
    Ok(Verdict::Clean)
}
