//! The node_exporter textfile format. Series are gathered by metric family
//! first, so a fleet's file has each family's HELP and TYPE once with every
//! target's samples under it (node_exporter refuses a family written twice).

use crate::model::checks::Severity;

use super::{status_word, Report};

/// Metric families in the order they were first added, each with its samples.
#[derive(Default)]
pub(crate) struct Metrics {
    families: Vec<Family>,
}

struct Family {
    name: &'static str,
    help: &'static str,
    samples: Vec<String>,
}

impl Metrics {
    /// Adds one sample `name{labels} value` to its family.
    pub(crate) fn add(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        value: impl std::fmt::Display,
    ) {
        let labels: Vec<String> = labels
            .iter()
            .map(|(k, v)| format!("{k}=\"{}\"", escape_label(v)))
            .collect();
        let sample = if labels.is_empty() {
            format!("{name} {value}")
        } else {
            format!("{name}{{{}}} {value}", labels.join(","))
        };
        match self.families.iter_mut().find(|f| f.name == name) {
            Some(family) => family.samples.push(sample),
            None => self.families.push(Family {
                name,
                help,
                samples: vec![sample],
            }),
        }
    }

    /// A report's series, each with `labels` first (a fleet's `target`).
    pub(crate) fn add_report(&mut self, report: &Report, labels: &[(&str, &str)]) {
        self.add_findings(report, labels);
        self.add_counts(report, labels);
        for t in &report.tables {
            let mode = t.mode.label().replace(' ', "-");
            self.add_labelled(
                "rlsctl_table_mode",
                "One series per tenant table: 1 for the mode it is in.",
                labels,
                &[("table", t.table.as_str()), ("mode", mode.as_str())],
                1,
            );
        }
        self.add_exceptions(report, labels);
        self.add_tenant_errors(report, labels);
        self.add_labelled(
            "rlsctl_drift",
            "1 when a check failed (or a reviewed exception expired), else 0.",
            labels,
            &[],
            usize::from(!report.clean(false)),
        );
    }

    /// One series per finding.
    fn add_findings(&mut self, report: &Report, labels: &[(&str, &str)]) {
        for f in &report.checks {
            let severity = match f.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            self.add_labelled(
                "rlsctl_check_status",
                "One series per finding: 1 for the status it has.",
                labels,
                &[
                    ("id", f.id.as_str()),
                    ("severity", severity),
                    ("status", status_word(f.status)),
                    ("object", f.object.as_deref().unwrap_or("")),
                ],
                1,
            );
        }
    }

    /// One series per reviewed exception.
    fn add_exceptions(&mut self, report: &Report, labels: &[(&str, &str)]) {
        for e in &report.exceptions {
            self.add_labelled(
                "rlsctl_exception",
                "One series per reviewed exception (--accept): 1 for what became of it (accepted, expired, stale, changed).",
                labels,
                &[
                    ("id", e.exception.check.as_str()),
                    ("object", e.exception.object.as_deref().unwrap_or("")),
                    ("state", e.state.label()),
                ],
                1,
            );
        }
    }

    /// The tenant-context errors `monitor --logs` read: one series per
    /// class, table, role and SQLSTATE (applications summed: their names
    /// are the client's to choose, and the JSON has them). A gauge, not a
    /// counter: the count in the window read, which may fall.
    fn add_tenant_errors(&mut self, report: &Report, labels: &[(&str, &str)]) {
        let Some(errors) = &report.tenant_errors else {
            return;
        };
        let mut series: std::collections::BTreeMap<(&str, &str, &str, &str), u64> =
            Default::default();
        for g in &errors.groups {
            *series
                .entry((
                    g.class.label(),
                    g.table.as_str(),
                    g.role.as_str(),
                    g.sqlstate.as_str(),
                ))
                .or_default() += g.count;
        }
        for ((class, table, role, sqlstate), count) in series {
            self.add_labelled(
                "rlsctl_tenant_errors",
                "Tenant-context errors in the server log over the window monitor --logs read, per class, table, role and SQLSTATE.",
                labels,
                &[("class", class), ("table", table), ("role", role), ("sqlstate", sqlstate)],
                count,
            );
        }
    }

    /// The counts of findings by status, and the accepted ones apart.
    fn add_counts(&mut self, report: &Report, labels: &[(&str, &str)]) {
        let s = &report.summary;
        for (status, n) in [
            ("pass", s.passed),
            ("fail", s.failed),
            ("warn", s.warnings),
            ("skip", s.skipped),
            ("accepted", s.accepted),
        ] {
            self.add_labelled(
                "rlsctl_checks",
                "Number of findings by status.",
                labels,
                &[("status", status)],
                n,
            );
        }
        // Accepted isolation failures apart: an alert on critical="true"
        // sees a reviewed leak that is still live, whatever the drift says.
        let critical = report
            .checks
            .iter()
            .filter(|f| f.status == crate::model::checks::Status::Accepted)
            .filter(|f| crate::model::exceptions::CRITICAL.contains(&f.id))
            .count();
        for (is_critical, n) in [("true", critical), ("false", s.accepted - critical)] {
            self.add_labelled(
                "rlsctl_accepted",
                "Findings accepted by a reviewed exception (--accept); critical=\"true\" counts isolation failures (the app role's reach, RLS off, cross-tenant probes).",
                labels,
                &[("critical", is_critical)],
                n,
            );
        }
    }

    /// Adds one sample labelled `labels` and then `more`.
    fn add_labelled(
        &mut self,
        name: &'static str,
        help: &'static str,
        labels: &[(&str, &str)],
        more: &[(&str, &str)],
        value: impl std::fmt::Display,
    ) {
        let all: Vec<(&str, &str)> = labels.iter().chain(more).copied().collect();
        self.add(name, help, &all, value);
    }

    /// When the result was produced.
    pub(crate) fn add_run_time(&mut self, unix_time: f64) {
        self.add(
            "rlsctl_last_run_timestamp_seconds",
            "When this result was produced.",
            &[],
            format!("{unix_time:.3}"),
        );
    }

    /// The textfile.
    pub(crate) fn render(&self) -> String {
        let mut out = String::new();
        for family in &self.families {
            out.push_str(&format!(
                "# HELP {} {}\n# TYPE {} gauge\n",
                family.name, family.help, family.name
            ));
            for sample in &family.samples {
                out.push_str(sample);
                out.push('\n');
            }
        }
        out
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
    use super::*;

    #[test]
    fn labels_are_escaped() {
        assert_eq!(escape_label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }

    #[test]
    fn each_family_is_written_once_with_every_sample_under_it() {
        let mut metrics = Metrics::default();
        metrics.add("a", "A.", &[("target", "one")], 1);
        metrics.add("b", "B.", &[("target", "one")], 2);
        metrics.add("a", "A.", &[("target", "two")], 3);
        assert_eq!(
            metrics.render(),
            "# HELP a A.\n# TYPE a gauge\na{target=\"one\"} 1\na{target=\"two\"} 3\n# HELP b B.\n# TYPE b gauge\nb{target=\"one\"} 2\n"
        );
    }
}
