//! `rlsctl rehearse`.
use crate::Status;
use anyhow::{bail, Result};
/// Runs the command.
pub async fn run(_args: crate::cli::RehearseArgs) -> Result<Status> {
    bail!("not yet")
}
