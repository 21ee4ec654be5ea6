//! Logs and progress go to stderr; results go to stdout.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the tracing subscriber: `RLSCTL_LOG` (env-filter syntax) wins over
/// `-v`/`-q` (`verbose`: how many `-v`); no ANSI colour unless stderr is a TTY
/// and `NO_COLOR` is unset.
pub fn init(quiet: bool, verbose: u8, format: LogFormat) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_env("RLSCTL_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("rlsctl={default},warn")));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false);
    let result = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.with_ansi(color_allowed()).try_init(),
    };
    let _ = result;
}

/// True when stderr is a terminal and NO_COLOR is not set.
pub fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// True when progress spinners may be shown (stderr is a terminal).
pub fn progress_allowed() -> bool {
    std::io::stderr().is_terminal()
}

/// A spinner on stderr with `message`, only when stderr is a terminal.
pub fn spinner(message: &str) -> Option<indicatif::ProgressBar> {
    if !progress_allowed() {
        return None;
    }
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(message.to_string());
    spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    Some(spinner)
}
