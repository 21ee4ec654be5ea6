//! `rlsctl verify`.
use crate::Status;
use anyhow::{bail, Result};
/// Runs the command.
pub async fn run(_args: crate::cli::VerifyArgs) -> Result<Status> {
    bail!("not yet")
}
