//! Rendering check results: a text table, the JSON contract, Prometheus,
//! SARIF and JUnit; for one database or a fleet.

use serde::Serialize;

use crate::model::checks::{Finding, Status};
use crate::model::exceptions::{Exception, ExceptionResult, ExceptionState};
use crate::model::log::tenant_errors::TenantErrors;
use crate::model::snapshot::{ServerInfo, Snapshot, TableMode};

pub(crate) mod fleet;
pub(crate) mod junit;
pub(crate) mod prometheus;
pub(crate) mod sarif;

/// One database's run, or why it could not be checked.
pub(crate) enum Run<'a> {
    /// The report of a database that was checked.
    Checked {
        /// The fleet's name for it (none for a single database).
        target: Option<&'a str>,
        /// Its report.
        report: &'a Report,
    },
    /// A target that could not be checked.
    Failed {
        /// The fleet's name for it.
        target: &'a str,
        /// What went wrong.
        error: &'a str,
    },
}

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
    /// `accepted` findings (problems a reviewed exception accepts).
    pub(crate) accepted: usize,
}

impl Counts {
    /// The counts of `findings` by status.
    fn of(findings: &[Finding]) -> Self {
        let mut counts = Counts::default();
        for finding in findings {
            match finding.status {
                Status::Pass => counts.passed += 1,
                Status::Fail => counts.failed += 1,
                Status::Warn => counts.warnings += 1,
                Status::Skip => counts.skipped += 1,
                Status::Accepted => counts.accepted += 1,
            }
        }
        counts
    }
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
    /// The reviewed exceptions given (`--accept`) and what became of each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub(crate) exceptions: Vec<ExceptionResult>,
    /// The tenant-context errors read from the server's log (`monitor --logs`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) tenant_errors: Option<TenantErrors>,
}

impl Report {
    /// Builds the report and its summary.
    pub(crate) fn new(command: &'static str, database: ServerInfo, checks: Vec<Finding>) -> Self {
        Self {
            command,
            database,
            summary: Counts::of(&checks),
            checks,
            tables: Vec::new(),
            exceptions: Vec::new(),
            tenant_errors: None,
        }
    }

    /// The report with what `monitor --logs` read, and LOG001 judged on it.
    pub(crate) fn with_tenant_errors(mut self, errors: TenantErrors) -> Self {
        let mut findings = crate::model::checks::Findings::default();
        crate::model::checks::logs::log001(&errors, &mut findings);
        self.checks.append(&mut findings.0);
        self.summary = Counts::of(&self.checks);
        self.tenant_errors = Some(errors);
        self
    }

    /// The report with `exceptions` applied on `today` (`YYYY-MM-DD`, UTC),
    /// for the fleet's `target` (`None`: a single database).
    pub(crate) fn with_exceptions(
        mut self,
        exceptions: &[Exception],
        today: &str,
        target: Option<&str>,
    ) -> Self {
        self.exceptions =
            crate::model::exceptions::apply(&mut self.checks, exceptions, today, target);
        self.summary = Counts::of(&self.checks);
        self
    }

    /// Exceptions in `state`.
    fn exceptions_in(&self, state: ExceptionState) -> impl Iterator<Item = &ExceptionResult> {
        self.exceptions.iter().filter(move |e| e.state == state)
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

    /// Whether the result is clean: no failure, no expired exception (and no
    /// warning under `strict`). Accepted findings are not failures.
    pub(crate) fn clean(&self, strict: bool) -> bool {
        self.summary.failed == 0
            && self.exceptions_in(ExceptionState::Expired).next().is_none()
            && (!strict || self.summary.warnings == 0)
    }

    /// The JSON document (the public contract in docs/checks.md).
    pub(crate) fn json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// A readable table, then the remedies of what failed, then the summary
    /// line; fitted to the terminal when stdout is one (`terminal`).
    pub(crate) fn text(&self, terminal: bool) -> String {
        let mut table = comfy_table::Table::new();
        table
            .load_preset(comfy_table::presets::UTF8_FULL_CONDENSED)
            .set_content_arrangement(comfy_table::ContentArrangement::Dynamic)
            .set_header(["id", "status", "object", "detail"]);
        // On a terminal comfy-table fits the table to its width; a file or a
        // pipe gets lines of at most 160 characters.
        if !terminal {
            table.set_width(160);
        }
        for f in &self.checks {
            table.add_row([
                f.id.to_string(),
                status_word(f.status).into(),
                crate::logging::printable(f.object.as_deref().unwrap_or_default()).into_owned(),
                crate::logging::printable(&detail_with_acceptance(f)).into_owned(),
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
        for (state, what) in [
            (
                ExceptionState::Expired,
                "expired (it accepts nothing now: review it again or fix the finding)",
            ),
            (
                ExceptionState::Stale,
                "stale (it matches no problem: remove it)",
            ),
            (
                ExceptionState::Changed,
                "changed (the object is not the one reviewed: it accepts nothing; review it, then record",
            ),
        ] {
            for e in self.exceptions_in(state) {
                let record = match &e.fingerprint_now {
                    Some(fp) => format!(" fingerprint = \"{fp}\")"),
                    None => String::new(),
                };
                out.push_str(&format!(
                    "\nexception {} {} until {}: {what}{record}",
                    e.exception.check,
                    crate::logging::printable(
                        e.exception.object.as_deref().unwrap_or("(no object)")
                    ),
                    e.exception.until.as_deref().unwrap_or("-"),
                ));
            }
        }
        out.push_str(&format!("\n{}\n", self.summary_line()));
        out
    }

    /// SARIF 2.1.0 of this report (`docs_url`: the address of docs/checks.md).
    pub(crate) fn sarif(&self, command: &str, docs_url: Option<&str>) -> String {
        sarif::log(
            command,
            &[Run::Checked {
                target: None,
                report: self,
            }],
            docs_url,
        )
    }

    /// JUnit XML of this report (warnings fail their case under `strict`).
    pub(crate) fn junit(&self, command: &str, strict: bool) -> String {
        junit::log(
            command,
            &[Run::Checked {
                target: None,
                report: self,
            }],
            strict,
        )
    }

    /// `N passed, N failed, N warnings, N skipped` (and accepted, when any).
    pub(crate) fn summary_line(&self) -> String {
        let s = &self.summary;
        let mut line = format!(
            "{} passed, {} failed, {} warnings, {} skipped",
            s.passed, s.failed, s.warnings, s.skipped
        );
        if s.accepted > 0 {
            line.push_str(&format!(", {} accepted", s.accepted));
        }
        line
    }

    /// node_exporter textfile format: a gauge per finding, counts per
    /// status, each table's mode, the run time.
    pub(crate) fn prometheus(&self, unix_time: f64) -> String {
        let mut metrics = prometheus::Metrics::default();
        metrics.add_report(self, &[]);
        metrics.add_run_time(unix_time);
        metrics.render()
    }
}

/// The status as reports write it.
pub(crate) fn status_word(status: Status) -> &'static str {
    match status {
        Status::Pass => "pass",
        Status::Fail => "fail",
        Status::Warn => "warn",
        Status::Skip => "skip",
        Status::Accepted => "accepted",
    }
}

/// The finding's detail, with the reason it is accepted (or was, until a day
/// now past).
pub(crate) fn detail_with_acceptance(f: &Finding) -> String {
    let until = |a: &crate::model::checks::Acceptance| {
        a.until
            .as_deref()
            .map(|d| format!(" until {d}"))
            .unwrap_or_default()
    };
    match (&f.acceptance, &f.expired_acceptance) {
        (Some(a), _) => format!("{} [accepted{}: {}]", f.detail, until(a), a.reason),
        (None, Some(a)) => format!(
            "{} [acceptance expired{}: {}]",
            f.detail,
            until(a),
            a.reason
        ),
        (None, None) => f.detail.clone(),
    }
}
