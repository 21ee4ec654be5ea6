//! Reviewed exceptions (`--accept FILE`): findings a team has looked at and
//! signed off, each with a reason and an optional last day. An accepted
//! finding is still reported, as `accepted` with its reason; an entry past
//! its day no longer accepts anything and fails the run as expired; an entry
//! that matches no problem is stale, and says so.
//!
//! ```toml
//! [[accept]]
//! check = "BYP005"
//! object = "public.customer_report"
//! reason = "read-only reporting view, signed off by security (SEC-1234)"
//! until = 2027-03-31
//! ```

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::model::checks::{
    Acceptance, CheckId, Finding, Status, BYP008, CATALOGUE, PRB001, PRB002, PRB003, PRE012,
    RLS001, RLS002, RLS003, ROLE002, ROLE003, ROLE004, ROLE005, ROLE008,
};
use crate::model::toml_file::TomlFile;

/// One reviewed exception.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Exception {
    /// The check id, as the catalogue writes it.
    pub(crate) check: CheckId,
    /// The object of the finding, exactly as reported; `None` matches a
    /// finding that names no object.
    pub(crate) object: Option<String>,
    /// Why it is accepted (shown wherever the finding is).
    pub(crate) reason: String,
    /// The last day (`YYYY-MM-DD`, UTC) it accepts anything.
    pub(crate) until: Option<String>,
    /// With `monitor --targets`: the one target it is for (else every one).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) target: Option<String>,
    /// The fingerprint of the object as reviewed, for a finding that has one
    /// (a view's, a rule's definition): the entry accepts that object only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fingerprint: Option<String>,
}

impl Exception {
    /// Whether it is for the database named `target` (`None`: a single
    /// database, which only entries without a target are for).
    pub(crate) fn is_for(&self, target: Option<&str>) -> bool {
        match &self.target {
            None => true,
            Some(name) => Some(name.as_str()) == target,
        }
    }
}

/// What became of an exception in one run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ExceptionState {
    /// It matched a problem, which is reported as `accepted`.
    Accepted,
    /// Past its day: it accepts nothing, and the run fails.
    Expired,
    /// It matched no problem (fixed, renamed, or never there).
    Stale,
    /// It matched a problem on an object that is not the one reviewed (its
    /// definition's fingerprint differs, or the entry records none): it
    /// accepts nothing, and the finding fails.
    Changed,
}

impl ExceptionState {
    /// As reports write it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::Accepted => "accepted",
            Self::Expired => "expired",
            Self::Stale => "stale",
            Self::Changed => "changed",
        }
    }
}

/// An exception with what became of it, as the reports list it.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct ExceptionResult {
    /// The entry.
    #[serde(flatten)]
    pub(crate) exception: Exception,
    /// `accepted`, `expired`, `stale` or `changed`.
    pub(crate) state: ExceptionState,
    /// For `changed`: the fingerprint the object has now, to record once it
    /// is reviewed again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) fingerprint_now: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    accept: Vec<Entry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    check: toml::Spanned<String>,
    #[serde(default)]
    object: Option<String>,
    reason: toml::Spanned<String>,
    #[serde(default)]
    until: Option<toml::Spanned<Day>>,
    #[serde(default)]
    target: Option<String>,
    #[serde(default)]
    fingerprint: Option<String>,
}

/// A TOML date (`2027-03-31`) or the same as a string.
#[derive(Deserialize)]
#[serde(untagged)]
enum Day {
    Date(toml::value::Datetime),
    Text(String),
}

/// The checks whose failure is a leak or an outage of isolation itself: the
/// app role's own attributes and reach, RLS off, the probes that read and
/// write across tenants. Accepting one takes an `until` within
/// [`CRITICAL_DAYS`] of today: a reviewed risk, never a silenced one.
pub(crate) const CRITICAL: [CheckId; 13] = [
    ROLE002.id, ROLE003.id, ROLE004.id, ROLE005.id, ROLE008.id, RLS001.id, RLS002.id, RLS003.id,
    PRB001.id, PRB002.id, PRB003.id, PRE012.id, BYP008.id,
];

/// See [`CRITICAL`].
pub(crate) const CRITICAL_DAYS: i64 = 30;

/// Reads the exceptions in `text` (the file at `path`, for messages), as of
/// `today` (`YYYY-MM-DD`, UTC): every error names the line and the field.
pub(crate) fn parse(text: &str, path: &str, today: &str) -> Result<Vec<Exception>> {
    let latest = latest_critical_day(today)?;
    let toml = TomlFile { path, text };
    let file: File = toml.parse()?;
    file.accept
        .into_iter()
        .map(|entry| {
            let check = CATALOGUE
                .iter()
                .find(|c| c.id.as_str() == entry.check.get_ref())
                .map(|c| c.id);
            let Some(check) = check else {
                bail!(
                    "{}: {:?} is no check id (see docs/checks.md)",
                    toml.at(entry.check.span(), "check"),
                    entry.check.get_ref()
                );
            };
            if entry.reason.get_ref().trim().is_empty() {
                bail!(
                    "{}: an accepted finding needs the reason it was accepted",
                    toml.at(entry.reason.span(), "reason")
                );
            }
            let until = match entry.until {
                None => None,
                Some(day) => {
                    let at = toml.at(day.span(), "until");
                    // A date-time is no day: valid_day refuses its text.
                    let text = match day.into_inner() {
                        Day::Date(date) => date.to_string(),
                        Day::Text(text) => text,
                    };
                    Some(valid_day(&text).with_context(|| at)?)
                }
            };
            if CRITICAL.contains(&check) && until.as_deref().is_none_or(|day| day > latest.as_str()) {
                bail!(
                    "{}: {} is a check whose failure is a leak or an outage of isolation: accepting it needs until, \
                     at most {CRITICAL_DAYS} days ahead (by {latest}), and a review again then",
                    toml.at(entry.check.span(), "until"),
                    check.as_str()
                );
            }
            Ok(Exception {
                check,
                object: entry.object,
                reason: entry.reason.into_inner(),
                until,
                target: entry.target,
                fingerprint: entry.fingerprint,
            })
        })
        .collect()
}

/// The last day an acceptance of a [`CRITICAL`] check may run to.
fn latest_critical_day(today: &str) -> Result<String> {
    let start = crate::model::log::time::epoch_millis(&format!("{today} 00:00:00 UTC"))
        .with_context(|| format!("{today:?} is not a day"))?;
    let latest = start + CRITICAL_DAYS * 86_400_000;
    Ok(crate::model::log::time::utc_text(latest)[..10].to_string())
}

/// `text` when it is a day `YYYY-MM-DD`.
fn valid_day(text: &str) -> Result<String> {
    let ok = text.len() == 10
        && crate::model::log::time::epoch_millis(&format!("{text} 00:00:00 UTC")).is_some();
    if !ok {
        bail!("{text:?} is not a day (YYYY-MM-DD)");
    }
    Ok(text.to_string())
}

/// Marks the problems that `exceptions` accept as `accepted` (with the
/// reason), on `today` (`YYYY-MM-DD`, UTC), and says what became of each
/// entry for the database named `target` (`None`: a single database).
pub(crate) fn apply(
    findings: &mut [Finding],
    exceptions: &[Exception],
    today: &str,
    target: Option<&str>,
) -> Vec<ExceptionResult> {
    exceptions
        .iter()
        // an entry for a named target, in a run of one database, accepts
        // nothing there: stale, not silently gone
        .filter(|e| e.is_for(target) || target.is_none())
        .map(|exception| {
            if !exception.is_for(target) {
                return ExceptionResult {
                    exception: exception.clone(),
                    state: ExceptionState::Stale,
                    fingerprint_now: None,
                };
            }
            let matches = |f: &Finding| {
                f.id == exception.check
                    && f.object == exception.object
                    && matches!(f.status, Status::Fail | Status::Warn | Status::Accepted)
            };
            let expired = exception.until.as_deref().is_some_and(|day| day < today);
            let mut matched = false;
            let mut changed = None;
            for finding in findings.iter_mut().filter(|f| matches(f)) {
                matched = true;
                // What was reviewed is that definition: another is not accepted.
                if let Some(now) = &finding.fingerprint {
                    if exception.fingerprint.as_ref() != Some(now) {
                        changed = Some(now.clone());
                        continue;
                    }
                }
                let acceptance = Acceptance {
                    reason: exception.reason.clone(),
                    until: exception.until.clone(),
                };
                if expired {
                    finding.expired_acceptance = Some(acceptance);
                } else {
                    finding.status = Status::Accepted;
                    finding.acceptance = Some(acceptance);
                }
            }
            let state = match (matched, expired, &changed) {
                (_, true, _) => ExceptionState::Expired,
                (true, false, Some(_)) => ExceptionState::Changed,
                (true, false, None) => ExceptionState::Accepted,
                (false, false, _) => ExceptionState::Stale,
            };
            ExceptionResult {
                exception: exception.clone(),
                state,
                fingerprint_now: changed,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::checks::{Finding, BYP001, BYP005};

    fn problem(object: &str) -> Finding {
        Finding::problem(&BYP005, object, "reads every row", "fix it")
    }

    #[test]
    fn an_entry_accepts_its_finding_an_expired_one_does_not_and_a_stale_one_says_so() {
        let exceptions = parse(
            r#"
[[accept]]
check = "BYP005"
object = "public.report"
reason = "signed off (SEC-1)"
until = 2027-03-31

[[accept]]
check = "BYP005"
object = "public.old_report"
reason = "was fine last year"
until = "2026-01-31"

[[accept]]
check = "BYP001"
object = "public.gone"
reason = "dropped since"
"#,
            "accept.toml",
            "2026-11-27",
        )
        .unwrap();
        let mut findings = vec![
            problem("public.report"),
            problem("public.old_report"),
            problem("public.other"),
            Finding::pass(&BYP001, None, "fine"),
        ];
        let results = apply(&mut findings, &exceptions, "2026-11-27", None);
        let states: Vec<_> = results.iter().map(|r| r.state).collect();
        assert_eq!(
            states,
            [
                ExceptionState::Accepted,
                ExceptionState::Expired,
                ExceptionState::Stale
            ]
        );
        assert_eq!(findings[0].status, Status::Accepted);
        assert_eq!(
            findings[0].acceptance.as_ref().unwrap().reason,
            "signed off (SEC-1)"
        );
        // BYP005 is an error: an expired acceptance leaves it failing.
        assert_eq!(findings[1].status, Status::Fail);
        assert!(findings[1].expired_acceptance.is_some());
        assert_eq!(findings[2].status, Status::Fail);
        assert_eq!(findings[3].status, Status::Pass);
        // The last day itself still accepts.
        let results = apply(
            &mut [problem("public.report")],
            &exceptions[..1],
            "2027-03-31",
            None,
        );
        assert_eq!(results[0].state, ExceptionState::Accepted);
    }

    #[test]
    fn an_entry_accepts_the_object_as_reviewed_and_no_other() {
        let file = |fingerprint: &str| {
            format!("[[accept]]\ncheck = \"BYP005\"\nobject = \"public.report\"\nreason = \"an aggregate\"\n{fingerprint}")
        };
        let run = |file: &str, fingerprint: &str| {
            let exceptions = parse(file, "accept.toml", "2026-11-27").unwrap();
            let mut findings = vec![problem("public.report").with_fingerprint(fingerprint)];
            let results = apply(&mut findings, &exceptions, "2026-11-27", None);
            (
                results[0].state,
                results[0].fingerprint_now.clone(),
                findings[0].status,
            )
        };
        // None recorded: what was reviewed is unknown, so nothing is accepted.
        assert_eq!(
            run(&file(""), "aaa"),
            (ExceptionState::Changed, Some("aaa".into()), Status::Fail)
        );
        let recorded = file("fingerprint = \"aaa\"\n");
        assert_eq!(
            run(&recorded, "aaa"),
            (ExceptionState::Accepted, None, Status::Accepted)
        );
        // The object redefined since the review.
        assert_eq!(
            run(&recorded, "bbb"),
            (ExceptionState::Changed, Some("bbb".into()), Status::Fail)
        );
    }

    #[test]
    fn an_isolation_critical_check_is_accepted_only_until_a_day_within_30() {
        let file = |until: &str| {
            format!("[[accept]]\ncheck = \"ROLE003\"\nobject = \"app_user\"\nreason = \"migration, INC-9\"\n{until}")
        };
        for until in ["", "until = 2027-06-30\n"] {
            let err = format!(
                "{:#}",
                parse(&file(until), "accept.toml", "2026-11-27").unwrap_err()
            );
            assert!(err.contains("by 2026-12-27"), "{err}");
        }
        assert!(parse(&file("until = 2026-12-27\n"), "accept.toml", "2026-11-27").is_ok());
        // Others may run longer.
        let long = "[[accept]]\ncheck = \"BYP005\"\nreason = \"x\"\nuntil = 2028-01-01\n";
        assert!(parse(long, "accept.toml", "2026-11-27").is_ok());
    }

    #[test]
    fn an_entry_for_one_target_is_applied_to_that_target_only() {
        let exceptions = parse(
            "[[accept]]\ncheck = \"BYP005\"\nobject = \"public.report\"\nreason = \"eu only\"\ntarget = \"eu-1\"\n",
            "accept.toml",
            "2026-11-27",
        )
        .unwrap();
        let mut eu = vec![problem("public.report")];
        assert_eq!(
            apply(&mut eu, &exceptions, "2026-11-27", Some("eu-1")).len(),
            1
        );
        assert_eq!(eu[0].status, Status::Accepted);
        let mut us = vec![problem("public.report")];
        assert!(apply(&mut us, &exceptions, "2026-11-27", Some("us-1")).is_empty());
        assert_eq!(us[0].status, Status::Fail);
        let mut single = vec![problem("public.report")];
        let results = apply(&mut single, &exceptions, "2026-11-27", None);
        assert_eq!(results[0].state, ExceptionState::Stale);
        assert_eq!(single[0].status, Status::Fail);
    }

    #[test]
    fn a_bad_file_names_the_line_and_the_field() {
        let err = |text: &str| {
            format!(
                "{:#}",
                parse(text, "accept.toml", "2026-11-27").unwrap_err()
            )
        };
        let unknown = err("[[accept]]\ncheck = \"BYP999\"\nreason = \"x\"\n");
        assert!(
            unknown.contains("line 2") && unknown.contains("check"),
            "{unknown}"
        );
        let day = err("[[accept]]\ncheck = \"BYP005\"\nreason = \"x\"\nuntil = \"31/03/2027\"\n");
        assert!(day.contains("line 4") && day.contains("until"), "{day}");
        let reason = err("[[accept]]\ncheck = \"BYP005\"\nreason = \" \"\n");
        assert!(
            reason.contains("line 3") && reason.contains("reason"),
            "{reason}"
        );
        let missing = err("[[accept]]\ncheck = \"BYP005\"\n");
        assert!(
            missing.contains("line 1") && missing.contains("reason"),
            "{missing}"
        );
        let field = err("[[accept]]\ncheck = \"BYP005\"\nreason = \"x\"\nobjekt = \"t\"\n");
        assert!(
            field.contains("line 4") && field.contains("objekt"),
            "{field}"
        );
    }
}
