//! `rlsctl rollback`.
use crate::Status;
use anyhow::{bail, Result};
/// Runs the command.
pub async fn run(_args: crate::cli::RollbackArgs) -> Result<Status> {
    bail!("not yet")
}
