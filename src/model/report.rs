//! Rendering check results: a text table, the JSON contract, Prometheus.

use std::io::IsTerminal;

use serde::Serialize;

use crate::model::checks::{Finding, Status};
use crate::model::snapshot::{ServerInfo, Snapshot, TableMode};

/// One tenant table's mode, as the reports show it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TableState {
    /// `schema.table`.
    pub(crate) table: String,
    /// `enforced`, `shadow`, `break-glass` or `not-installed`.
    pub(crate) mode: TableMode,
}

/// Counts by status.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub(crate) struct Counts {
    /// `pass` findings.
    pub(crate) passed: usize,
    /// `fail` findings.
    pub(crate) failed: usize,
    /// `warn` findings.
    pub(crate) warnings: usize,
    /// `skip` findings.
    pub(crate) skipped: usize,
}

/// The result document of `verify`, `monitor` (and the check steps of `rehearse`).
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Report {
    /// `verify` or `monitor`.
    pub(crate) command: &'static str,
    /// The database and session.
    pub(crate) database: ServerInfo,
    /// Every finding, in catalogue order.
    pub(crate) checks: Vec<Finding>,
    /// Counts.
    pub(crate) summary: Counts,
    /// Each tenant table's mode (verify and monitor).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) tables: Vec<TableState>,
}

impl Report {
    /// Builds the report and its summary.
    pub(crate) fn new(command: &'static str, database: ServerInfo, checks: Vec<Finding>) -> Self {
        let mut summary = Counts::default();
        for finding in &checks {
            match finding.status {
                Status::Pass => summary.passed += 1,
                Status::Fail => summary.failed += 1,
                Status::Warn => summary.warnings += 1,
                Status::Skip => summary.skipped += 1,
            }
        }
        Self {
            command,
            database,
            checks,
            summary,
            tables: Vec::new(),
        }
    }

    /// The report with each tenant table's mode from `snap`.
    pub(crate) fn with_modes(mut self, snap: &Snapshot) -> Self {
        self.tables = snap
            .table_modes()
            .into_iter()
            .map(|(table, mode)| TableState {
                table: table.to_string(),
                mode,
            })
            .collect();
        self
    }

    /// One line: how many tables are in each mode, naming those not enforced.
    fn modes_line(&self) -> Option<String> {
        if self.tables.is_empty() {
            return None;
        }
        let mut parts = Vec::new();
        for mode in [
            TableMode::Enforced,
            TableMode::Shadow,
            TableMode::BreakGlass,
            TableMode::NotInstalled,
        ] {
            let tables: Vec<&str> = self
                .tables
                .iter()
                .filter(|t| t.mode == mode)
                .map(|t| t.table.as_str())
                .collect();
            if tables.is_empty() {
                continue;
            }
            let mut part = format!("{} {}", tables.len(), mode.label());
            if mode != TableMode::Enforced {
                let shown: Vec<&str> = tables.iter().take(10).copied().collect();
                let more = tables.len() - shown.len();
                part.push_str(&format!(
                    " ({}{})",
                    crate::logging::printable(&shown.join(", ")),
                    if more > 0 {
                        format!(" and {more} more")
                    } else {
                        String::new()
                    }
                ));
            }
            parts.push(part);
        }
        Some(format!("tenant tables: {}\n", parts.join(", ")))
    }

    /// Whether the result is clean: no failure (and no warning under `strict`).
    pub(crate) fn clean(&self, strict: bool) -> bool {
        self.summary.failed == 0 && (!strict || self.summary.warnings == 0)
    }

    /// The JSON document (the public contract in docs/checks.md).
    pub(crate) fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A readable table, then the remedies of what failed, then the summary line.
    pub(crate) fn text(&self) -> String {
        let mut table = comfy_table::Table::new();
        table
            .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
            .set_header(["id", "status", "object", "detail"]);
        // On a terminal comfy-table fits the table to its width; a file or a
        // pipe gets lines of at most 160 characters.
        if !std::io::stdout().is_terminal() {
            table.set_width(160);
        }
        for f in &self.checks {
            table.add_row([
                f.id.to_string(),
                status_word(f.status).into(),
                crate::logging::printable(f.object.as_deref().unwrap_or_default()).into_owned(),
                crate::logging::printable(&f.detail).into_owned(),
            ]);
        }
        let mut out = format!(
            "rlsctl {}: database {} as {} (PostgreSQL {})\n{}{table}\n",
            self.command,
            self.database.name,
            self.database.user,
            self.database.server_version,
            self.modes_line().unwrap_or_default()
        );
        let fixes: Vec<&Finding> = self
            .checks
            .iter()
            .filter(|f| f.remedy.is_some() && matches!(f.status, Status::Fail | Status::Warn))
            .collect();
        if !fixes.is_empty() {
            out.push_str("\nHow to fix:\n");
            for f in fixes {
                out.push_str(&format!(
                    "  {} {}: {}\n",
                    f.id,
                    f.object.as_deref().unwrap_or(""),
                    f.remedy.as_deref().unwrap_or("")
                ));
            }
        }
        let s = &self.summary;
        out.push_str(&format!(
            "\n{} passed, {} failed, {} warnings, {} skipped\n",
            s.passed, s.failed, s.warnings, s.skipped
        ));
        out
    }

    /// node_exporter textfile format: a gauge per finding, counts per status, the run time.
    pub(crate) fn prometheus(&self, unix_time: f64) -> String {
        let mut out = String::new();
        out.push_str("# HELP rlsctl_check_status One series per finding: 1 for the status it has.\n# TYPE rlsctl_check_status gauge\n");
        for f in &self.checks {
            out.push_str(&format!(
                "rlsctl_check_status{{id=\"{}\",severity=\"{}\",status=\"{}\",object=\"{}\"}} 1\n",
                f.id,
                match f.severity {
                    crate::model::checks::Severity::Error => "error",
                    crate::model::checks::Severity::Warning => "warning",
                },
                status_word(f.status),
                escape_label(f.object.as_deref().unwrap_or(""))
            ));
        }
        out.push_str(
            "# HELP rlsctl_checks Number of findings by status.\n# TYPE rlsctl_checks gauge\n",
        );
        let s = &self.summary;
        for (status, n) in [
            ("pass", s.passed),
            ("fail", s.failed),
            ("warn", s.warnings),
            ("skip", s.skipped),
        ] {
            out.push_str(&format!("rlsctl_checks{{status=\"{status}\"}} {n}\n"));
        }
        if !self.tables.is_empty() {
            out.push_str("# HELP rlsctl_table_mode One series per tenant table: 1 for the mode it is in.\n# TYPE rlsctl_table_mode gauge\n");
            for t in &self.tables {
                out.push_str(&format!(
                    "rlsctl_table_mode{{table=\"{}\",mode=\"{}\"}} 1\n",
                    escape_label(&t.table),
                    t.mode.label().replace(' ', "-")
                ));
            }
        }
        out.push_str(
            "# HELP rlsctl_drift 1 when a check failed, else 0.\n# TYPE rlsctl_drift gauge\n",
        );
        out.push_str(&format!("rlsctl_drift {}\n", u8::from(s.failed > 0)));
        out.push_str("# HELP rlsctl_last_run_timestamp_seconds When this result was produced.\n# TYPE rlsctl_last_run_timestamp_seconds gauge\n");
        out.push_str(&format!(
            "rlsctl_last_run_timestamp_seconds {unix_time:.3}\n"
        ));
        out
    }
}

fn status_word(status: Status) -> &'static str {
    match status {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Warn => "warn",
        Status::Skip => "skip",
    }
}

/// A Prometheus label value: backslash, quote and newline escaped as the
/// format wants; other control characters as a literal `\uXXXX` (the format
/// has no such escape, so its backslash is escaped too).
fn escape_label(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => out.push_str(&format!("\\\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::escape_label;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
