//! The flags of `rlsctl verify` and of its app checks.

use super::*;

/// `rlsctl verify`.
#[derive(Debug, Args)]
pub(crate) struct VerifyArgs {
    /// A tenant id to probe with (repeatable; two recommended). Without any, probes use a
    /// random id that exists nowhere and read isolation is only proven vacuously (warning).
    #[arg(long = "tenant", value_name = "ID")]
    pub(crate) tenants: Vec<String>,
    /// Base URL of the application; checks GET <URL>/health/tenant-security
    /// (only that path, ever): once with a tenant, once without, then a burst.
    #[arg(long, value_name = "URL")]
    pub(crate) app_url: Option<String>,
    /// Treat warnings as failures.
    #[arg(long)]
    pub(crate) strict: bool,
    /// Output format.
    #[arg(long, value_enum, default_value_t = VerifyFormat::Text)]
    pub(crate) format: VerifyFormat,
    #[command(flatten)]
    pub(crate) report: ReportArgs,
    #[command(flatten, next_help_heading = "Application (--app-url)")]
    pub(crate) app: AppArgs,
    #[command(flatten)]
    pub(crate) db: DatabaseArgs,
}

/// How verify exercises the application's health endpoint.
#[derive(Debug, Clone, Args)]
pub(crate) struct AppArgs {
    /// Requests in the concurrent burst (APP004), interleaving every --tenant
    /// with ids that exist nowhere; 0 skips the burst.
    #[arg(long, value_name = "N", default_value_t = 240)]
    pub(crate) burst_requests: u32,
    /// Requests in flight at once during the burst.
    #[arg(long, value_name = "N", default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=1024))]
    pub(crate) burst_concurrency: u32,
    /// The burst stops sending when this has passed (what is unanswered by then counts as unanswered).
    #[arg(long, value_parser = parse_duration, default_value = "30s")]
    pub(crate) burst_time_limit: Duration,
    /// How long one request to the application may take.
    #[arg(long, value_parser = parse_duration, default_value = "10s")]
    pub(crate) app_timeout: Duration,
}
