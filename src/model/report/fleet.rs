//! A fleet's result (`monitor --targets`): each target's report, or why it
//! could not be checked, in every format.

use serde::Serialize;

use super::prometheus::Metrics;
use super::{Report, Run};

/// What became of one target.
#[derive(Debug, Serialize)]
#[serde(rename_all = "lowercase", tag = "status")]
pub(crate) enum Outcome {
    /// Checked, nothing failed.
    Clean {
        /// Its report.
        report: Report,
    },
    /// Checked, and something failed.
    Drift {
        /// Its report.
        report: Report,
    },
    /// Could not be checked (no connection, a timeout, an error).
    Error {
        /// What went wrong (never a secret).
        error: String,
    },
}

/// One target and its outcome.
#[derive(Debug, Serialize)]
pub(crate) struct TargetResult {
    /// The target's name in the targets file.
    pub(crate) target: String,
    /// Where it was checked: `host:port`, or the endpoint and the tunnel to it.
    pub(crate) checked: String,
    /// Its outcome.
    #[serde(flatten)]
    pub(crate) outcome: Outcome,
}

impl TargetResult {
    /// The outcome of `report` under `strict`.
    pub(crate) fn checked(target: String, checked: String, report: Report, strict: bool) -> Self {
        let outcome = if report.clean(strict) {
            Outcome::Clean { report }
        } else {
            Outcome::Drift { report }
        };
        Self {
            target,
            checked,
            outcome,
        }
    }

    fn run(&self) -> Run<'_> {
        match &self.outcome {
            Outcome::Clean { report } | Outcome::Drift { report } => Run::Checked {
                target: Some(&self.target),
                report,
            },
            Outcome::Error { error } => Run::Failed {
                target: &self.target,
                error,
            },
        }
    }
}

/// Counts over the fleet.
#[derive(Debug, Default, Serialize)]
pub(crate) struct FleetSummary {
    /// Targets run.
    pub(crate) targets: usize,
    /// Clean.
    pub(crate) clean: usize,
    /// Drifted.
    pub(crate) drifted: usize,
    /// Could not be checked.
    pub(crate) errors: usize,
}

/// The fleet's document.
#[derive(Debug, Serialize)]
pub(crate) struct FleetReport {
    /// `monitor`.
    pub(crate) command: &'static str,
    /// Each target, in the targets file's order.
    pub(crate) targets: Vec<TargetResult>,
    /// Counts.
    pub(crate) summary: FleetSummary,
}

impl FleetReport {
    /// The fleet's report of `targets`.
    pub(crate) fn new(command: &'static str, targets: Vec<TargetResult>) -> Self {
        let mut summary = FleetSummary {
            targets: targets.len(),
            ..FleetSummary::default()
        };
        for t in &targets {
            match t.outcome {
                Outcome::Clean { .. } => summary.clean += 1,
                Outcome::Drift { .. } => summary.drifted += 1,
                Outcome::Error { .. } => summary.errors += 1,
            }
        }
        Self {
            command,
            targets,
            summary,
        }
    }

    /// Whether every target was checked and is clean.
    pub(crate) fn clean(&self) -> bool {
        self.summary.drifted == 0 && self.summary.errors == 0
    }

    /// The names of the targets that could not be checked.
    pub(crate) fn failed(&self) -> Vec<&str> {
        self.targets
            .iter()
            .filter(|t| matches!(t.outcome, Outcome::Error { .. }))
            .map(|t| t.target.as_str())
            .collect()
    }

    /// The JSON document: `targets`, each with its status and report or error.
    pub(crate) fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A section per target, then the summary line.
    pub(crate) fn text(&self, terminal: bool) -> String {
        let mut out = String::new();
        for t in &self.targets {
            out.push_str(&format!(
                "== target {} ({}) ==\n",
                crate::logging::printable(&t.target),
                crate::logging::printable(&t.checked)
            ));
            match &t.outcome {
                Outcome::Clean { report } | Outcome::Drift { report } => {
                    out.push_str(&report.text(terminal))
                }
                Outcome::Error { error } => {
                    out.push_str(&format!("could not be checked: {error}\n"))
                }
            }
            out.push('\n');
        }
        out.push_str(&self.summary_line());
        out.push('\n');
        out
    }

    /// `fleet: N targets: N clean, N drifted, N could not be checked (names)`.
    pub(crate) fn summary_line(&self) -> String {
        let s = &self.summary;
        let failed = self.failed();
        let names = if failed.is_empty() {
            String::new()
        } else {
            format!(" ({})", crate::logging::printable(&failed.join(", ")))
        };
        format!(
            "fleet: {} targets: {} clean, {} drifted, {} could not be checked{names}",
            s.targets, s.clean, s.drifted, s.errors
        )
    }

    /// One textfile: every series with a `target` label, whether each target
    /// could be checked, and when it last was (`last_success`: the times of
    /// an earlier file, kept for the targets that fail now).
    pub(crate) fn prometheus(&self, unix_time: f64, last_success: &[(String, f64)]) -> String {
        let mut metrics = Metrics::default();
        for t in &self.targets {
            let label = [("target", t.target.as_str())];
            if let Outcome::Clean { report } | Outcome::Drift { report } = &t.outcome {
                metrics.add_report(report, &label);
            }
        }
        for t in &self.targets {
            let label = [("target", t.target.as_str())];
            let up = !matches!(t.outcome, Outcome::Error { .. });
            metrics.add(
                "rlsctl_target_up",
                "1 when the target could be checked in this run, else 0.",
                &label,
                u8::from(up),
            );
            let last = if up {
                Some(unix_time)
            } else {
                last_success
                    .iter()
                    .find(|(name, _)| *name == t.target)
                    .map(|(_, at)| *at)
            };
            if let Some(at) = last {
                metrics.add(
                    "rlsctl_last_success_timestamp_seconds",
                    "When the target was last checked (kept from the previous file while it cannot be).",
                    &label,
                    format!("{at:.3}"),
                );
            }
        }
        metrics.add_run_time(unix_time);
        metrics.render()
    }

    /// The SARIF log: a run per target.
    pub(crate) fn sarif(&self, docs_url: Option<&str>) -> String {
        let runs: Vec<Run<'_>> = self.targets.iter().map(TargetResult::run).collect();
        super::sarif::log(self.command, &runs, docs_url)
    }

    /// The JUnit XML: a suite per target.
    pub(crate) fn junit(&self, strict: bool) -> String {
        let runs: Vec<Run<'_>> = self.targets.iter().map(TargetResult::run).collect();
        super::junit::log(self.command, &runs, strict)
    }
}

/// The `rlsctl_last_success_timestamp_seconds` samples of an earlier textfile.
pub(crate) fn last_success_times(textfile: &str) -> Vec<(String, f64)> {
    textfile
        .lines()
        .filter_map(|line| {
            let rest = line.strip_prefix("rlsctl_last_success_timestamp_seconds{target=\"")?;
            let (name, value) = rest.rsplit_once("\"} ")?;
            // Only names that need no unescaping are carried over.
            (!name.contains('\\')).then_some(())?;
            Some((name.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_success_of_a_target_that_fails_now_is_kept_from_the_previous_file() {
        let fleet = FleetReport::new(
            "monitor",
            vec![TargetResult {
                target: "eu-1".into(),
                checked: "eu-1.example:5432".into(),
                outcome: Outcome::Error {
                    error: "timed out".into(),
                },
            }],
        );
        let before = "rlsctl_last_success_timestamp_seconds{target=\"eu-1\"} 1700000000.000\nrlsctl_last_success_timestamp_seconds{target=\"us-1\"} 1.000\n";
        let text = fleet.prometheus(1800000000.0, &last_success_times(before));
        assert!(
            text.contains("rlsctl_target_up{target=\"eu-1\"} 0\n"),
            "{text}"
        );
        assert!(
            text.contains(
                "rlsctl_last_success_timestamp_seconds{target=\"eu-1\"} 1700000000.000\n"
            ),
            "{text}"
        );
        assert!(!text.contains("us-1"), "{text}");
    }
}
