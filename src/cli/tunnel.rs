//! The flags of `rlsctl tunnel`.

use super::*;

/// `rlsctl tunnel`.
#[derive(Debug, Args)]
pub(crate) struct TunnelArgs {
    /// The local port to listen on (127.0.0.1 only).
    #[arg(long, env = "LOCAL_PORT", default_value_t = 15432)]
    pub(crate) local_port: u16,
    /// When the session drops, start a new one (with backoff) instead of exiting.
    #[arg(long)]
    pub(crate) reconnect: bool,
    #[command(flatten, next_help_heading = "AWS")]
    pub(crate) aws: AwsArgs,
}
