//! Every command's result on its way out: each kind of result renders itself
//! in the formats its command offers ([`Rendered`]), says whether it is clean
//! (exit 0) or found problems (exit 1), and [`emit`] prints it, writes it to
//! `--output`, or stays quiet: one dispatch for every command.

use std::io::IsTerminal;
use std::path::Path;

use anyhow::{Context, Result};

use super::Verdict;
use crate::cli::{Format, MonitorFormat, VerifyFormat};
use crate::model::report::fleet::FleetReport;
use crate::model::report::Report;

/// The formats of every command (each command's `--format` offers a subset).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Output {
    Text,
    Json,
    Prometheus,
    Sarif,
    Junit,
}

impl From<Format> for Output {
    fn from(format: Format) -> Self {
        match format {
            Format::Text => Self::Text,
            Format::Json => Self::Json,
        }
    }
}

impl From<VerifyFormat> for Output {
    fn from(format: VerifyFormat) -> Self {
        match format {
            VerifyFormat::Text => Self::Text,
            VerifyFormat::Json => Self::Json,
            VerifyFormat::Sarif => Self::Sarif,
            VerifyFormat::Junit => Self::Junit,
        }
    }
}

impl From<MonitorFormat> for Output {
    fn from(format: MonitorFormat) -> Self {
        match format {
            MonitorFormat::Text => Self::Text,
            MonitorFormat::Json => Self::Json,
            MonitorFormat::Prometheus => Self::Prometheus,
            MonitorFormat::Sarif => Self::Sarif,
            MonitorFormat::Junit => Self::Junit,
        }
    }
}

/// What a rendering may need from the run: read at the edge, once.
#[derive(Debug, Clone, Default)]
pub(crate) struct Rendering<'a> {
    /// `--strict`: warnings count as problems.
    pub(crate) strict: bool,
    /// `--docs-url`, for SARIF's help links.
    pub(crate) docs_url: Option<&'a str>,
    /// Whether stdout is a terminal (text fits its width).
    pub(crate) terminal: bool,
    /// Seconds since the epoch, for Prometheus's timestamps.
    pub(crate) now_secs: f64,
    /// The textfile being replaced (`--output`), for a fleet's last successes.
    pub(crate) previous: String,
}

impl Rendering<'_> {
    /// The context of this run: the terminal and the clock as they are now.
    pub(crate) fn now() -> Self {
        Self {
            terminal: std::io::stdout().is_terminal(),
            now_secs: super::clock::now_secs(),
            ..Self::default()
        }
    }
}

/// A command's result.
pub(crate) trait Rendered {
    /// The result in `format`.
    fn render(&self, format: Output, how: &Rendering) -> Result<String>;
    /// Clean (exit 0) or problems found (exit 1).
    fn verdict(&self, how: &Rendering) -> Verdict;
}

impl Rendered for Report {
    fn render(&self, format: Output, how: &Rendering) -> Result<String> {
        Ok(match format {
            Output::Text => self.text(how.terminal),
            Output::Json => self.json(),
            Output::Prometheus => self.prometheus(how.now_secs),
            Output::Sarif => self.sarif(self.command, how.docs_url),
            Output::Junit => self.junit(self.command, how.strict),
        })
    }

    fn verdict(&self, how: &Rendering) -> Verdict {
        Verdict::of(self.clean(how.strict))
    }
}

impl Rendered for FleetReport {
    fn render(&self, format: Output, how: &Rendering) -> Result<String> {
        Ok(match format {
            Output::Text => self.text(how.terminal),
            Output::Json => self.json(),
            Output::Prometheus => self.prometheus(
                how.now_secs,
                &crate::model::report::fleet::last_success_times(&how.previous),
            ),
            Output::Sarif => self.sarif(how.docs_url),
            Output::Junit => self.junit(how.strict),
        })
    }

    fn verdict(&self, _: &Rendering) -> Verdict {
        Verdict::of(self.clean())
    }
}

/// A result offered as text and JSON (apply, rollback, shadow report), both
/// rendered (each is a few kilobytes).
pub(crate) struct TextOrJson {
    /// The readable text.
    pub(crate) text: String,
    /// The JSON document.
    pub(crate) json: String,
    /// Nothing wrong found.
    pub(crate) clean: bool,
}

impl Rendered for TextOrJson {
    fn render(&self, format: Output, _: &Rendering) -> Result<String> {
        Ok(match format {
            Output::Json => self.json.clone(),
            _ => self.text.clone(),
        })
    }

    fn verdict(&self, _: &Rendering) -> Verdict {
        Verdict::of(self.clean)
    }
}

/// Where a result goes: stdout, or a file replaced whole (`--output`); with
/// `quiet`, a clean result on stdout is not printed.
pub(crate) struct Sink<'a> {
    /// `--output FILE`.
    pub(crate) file: Option<&'a Path>,
    /// `--quiet`.
    pub(crate) quiet: bool,
}

impl Sink<'_> {
    /// Stdout, always printed.
    pub(crate) const STDOUT: Sink<'static> = Sink {
        file: None,
        quiet: false,
    };
}

/// Renders `result` in `format` and sends it to `sink`; its verdict.
pub(crate) fn emit(
    result: &dyn Rendered,
    format: Output,
    how: &Rendering,
    sink: Sink,
) -> Result<Verdict> {
    let verdict = result.verdict(how);
    let text = result.render(format, how)?;
    match sink.file {
        Some(path) => write_atomically(path, &text)?,
        None if sink.quiet && verdict == Verdict::Clean => {}
        None if format == Output::Prometheus && !how.terminal => {
            // node_exporter's textfile takes any UTF-8 in a label but rejects
            // the `\u202e` that print() writes for a character that could
            // reorder a terminal's text.
            use std::io::Write;
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
        }
        None => super::print(&text),
    }
    Ok(verdict)
}

impl Verdict {
    /// Clean when `clean`, else problems found.
    pub(crate) fn of(clean: bool) -> Self {
        if clean {
            Self::Clean
        } else {
            Self::Problems
        }
    }
}

/// Writes to a temp file beside `path`, then renames it over `path`: a reader
/// sees the old file or the new one, never half of one. The file is 0644: the
/// report holds no secret, and node_exporter, which reads the textfile
/// directory, runs as its own user (a temp file's 0600 would hide the metrics).
pub(crate) fn write_atomically(path: &Path, text: &str) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut file = tempfile::NamedTempFile::new_in(dir)
        .with_context(|| format!("creating a temp file in {}", dir.display()))?;
    std::io::Write::write_all(&mut file, text.as_bytes())?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))?;
    file.as_file().sync_all()?;
    file.persist(path)
        .with_context(|| format!("renaming onto {}", path.display()))?;
    Ok(())
}
