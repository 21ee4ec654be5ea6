//! Logs and progress go to stderr; results go to stdout.

use std::io::IsTerminal;

use tracing_subscriber::filter::{filter_fn, EnvFilter};
use tracing_subscriber::prelude::*;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Installs the tracing subscriber: `RLSCTL_LOG` (env-filter syntax) wins over
/// `-v`/`-q` (`verbose`: how many `-v`); no ANSI colour unless stderr is a TTY
/// and `NO_COLOR` is unset.
///
/// Other crates never log below INFO, whatever `RLSCTL_LOG` asks: at DEBUG
/// and TRACE tokio-postgres prints statements with their parameters (a role's
/// SCRAM verifier) and the AWS SDK prints responses (the session token).
/// rlsctl's own statement log leaves out anything that carries a password.
pub(crate) fn init(quiet: bool, verbose: u8, format: LogFormat) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        (false, _) => "trace",
    };
    let filter = EnvFilter::try_from_env("RLSCTL_LOG")
        .unwrap_or_else(|_| EnvFilter::new(format!("rlsctl={default},warn")));
    let no_secrets = filter_fn(|meta| {
        meta.target().starts_with("rlsctl") || *meta.level() <= tracing::Level::INFO
    });
    let layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_target(false);
    let layer = match format {
        LogFormat::Json => layer.json().boxed(),
        LogFormat::Text => layer.with_ansi(color_allowed()).boxed(),
    };
    let _ = tracing_subscriber::registry()
        .with(layer.with_filter(filter).with_filter(no_secrets))
        .try_init();
}

/// Writes a line to stderr, ignoring errors: when the terminal is gone (a
/// dropped SSH session, the very case SIGHUP reports) a message must not turn
/// a clean stop into a panic, as `eprintln!` would.
#[macro_export]
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let line = format!($($arg)*);
        let _ = writeln!(std::io::stderr(), "{}", $crate::logging::printable(&line));
    }};
}

/// `text` with every character that could drive a terminal written as a
/// `\uXXXX` escape: control characters other than newline and tab (ESC, BEL,
/// CR, DEL, the C1 set) and the invisible bidirectional and zero-width marks.
/// Table names, tenant ids, query text and error details come from the
/// database, its log or the user: printed raw, they could clear the screen
/// and write "all clean". The escape is also JSON's, so a JSON document stays
/// exact (serde already escapes C0 inside strings; DEL, C1 and bidi marks it
/// leaves raw), and what is printable passes through untouched.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| {
        (c.is_control() && c != '\n' && c != '\t')
            || matches!(c, '\u{200b}'..='\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{feff}')
    };
    if !text.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if unsafe_char(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// True when stderr is a terminal and NO_COLOR is not set.
pub(crate) fn color_allowed() -> bool {
    std::env::var_os("NO_COLOR").is_none() && std::io::stderr().is_terminal()
}

/// True when progress spinners may be shown (stderr is a terminal).
pub(crate) fn progress_allowed() -> bool {
    std::io::stderr().is_terminal()
}

/// A spinner on stderr with `message`, only when stderr is a terminal.
pub(crate) fn spinner(message: &str) -> Option<indicatif::ProgressBar> {
    if !progress_allowed() {
        return None;
    }
    let spinner = indicatif::ProgressBar::new_spinner();
    spinner.set_message(message.to_string());
    spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    Some(spinner)
}

/// A progress bar on stderr counting to `total`, only when stderr is a terminal.
pub(crate) fn progress_bar(total: u64, message: &str) -> Option<indicatif::ProgressBar> {
    if !progress_allowed() {
        return None;
    }
    let bar = indicatif::ProgressBar::new(total);
    if let Ok(style) =
        indicatif::ProgressStyle::with_template("{msg} [{bar:30}] {pos}/{len} {elapsed}")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar.set_message(message.to_string());
    Some(bar)
}

/// An error's message followed by its causes, `: `-separated.
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::printable;

    #[test]
    fn terminal_controls_are_escaped_and_the_rest_untouched() {
        assert_eq!(printable("plain täble\n\tok"), "plain täble\n\tok");
        assert_eq!(printable("a\u{1b}[2Jb\u{7}"), "a\\u001b[2Jb\\u0007");
        assert_eq!(printable("x\ry\u{9b}z\u{202e}"), "x\\u000dy\\u009bz\\u202e");
        // JSON stays exact: the escape decodes to the same string.
        let doc =
            serde_json::to_string(&serde_json::json!({ "name": "t\u{9b}\u{202e}\u{7f}" })).unwrap();
        let safe = printable(&doc);
        let back: serde_json::Value = serde_json::from_str(&safe).unwrap();
        assert_eq!(back["name"], "t\u{9b}\u{202e}\u{7f}");
        assert!(!safe.contains('\u{9b}'));
    }
}
