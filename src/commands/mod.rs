//! One module per subcommand.

pub mod apply;
pub mod completions;
pub mod monitor;
pub mod rehearse;
pub mod rollback;
pub mod verify;

use anyhow::Result;

use crate::cli::{ConnectionArgs, TargetArgs};
use crate::config::Target;
use crate::db::{self, ConnectOptions, Db};

/// Validates the target and opens the connection a command works on.
pub async fn connect(
    conn: &ConnectionArgs,
    target: &TargetArgs,
    default_user: &str,
    allow_prompt: bool,
) -> Result<(Target, Db)> {
    let target = Target::from_args(target)?;
    let default_user = if default_user.is_empty() {
        target.app_role.clone()
    } else {
        default_user.to_string()
    };
    let options = ConnectOptions::from_args(conn, &default_user, allow_prompt);
    let db = db::connect(&options).await?;
    tracing::info!(database = %db.info.name, user = %db.info.user, version = %db.info.server_version, "connected");
    Ok((target, db))
}

/// Prints a result document on stdout.
pub fn print(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    if !text.ends_with('\n') {
        let _ = out.write_all(b"\n");
    }
}
