//! `rlsctl monitor`.
use crate::Status;
use anyhow::{bail, Result};
/// Runs the command.
pub async fn run(_args: crate::cli::MonitorArgs, _quiet: bool) -> Result<Status> {
    bail!("not yet")
}
