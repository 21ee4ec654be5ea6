//! JUnit XML, for CI test-report viewers: one test suite per database, one
//! test case per check and object. A failure is a failed test case with the
//! detail as its message and the remedy as its text; a warning is one too
//! under `--strict`, else a passing case that says so; an accepted finding
//! passes with its reason; a skipped check is skipped. A target that could
//! not be checked is a suite with one errored case.

use quick_junit::{NonSuccessKind, TestCase, TestCaseStatus, TestSuite};

use crate::model::checks::{Finding, Status};

use super::{detail_with_acceptance, Report, Run};

/// The JUnit XML of `runs`: a suite for each.
pub(crate) fn log(command: &str, runs: &[Run<'_>], strict: bool) -> String {
    let mut log = quick_junit::Report::new(format!("rlsctl {command}"));
    for run in runs {
        log.add_test_suite(match run {
            Run::Checked { target, report } => suite(command, *target, report, strict),
            Run::Failed { target, error } => {
                let mut suite = TestSuite::new(format!("rlsctl {command} {target}"));
                let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
                status.set_message(format!("{target} could not be checked: {error}"));
                suite.add_test_case(TestCase::new("connect", status));
                suite
            }
        });
    }
    log.to_string().unwrap_or_default()
}

fn suite(command: &str, target: Option<&str>, report: &Report, strict: bool) -> TestSuite {
    let name = match target {
        Some(target) => format!("rlsctl {command} {target}"),
        None => format!("rlsctl {command} {}", report.database.name),
    };
    let mut suite = TestSuite::new(name);
    suite.add_test_cases(report.checks.iter().map(|f| case(f, strict)));
    suite
}

fn case(f: &Finding, strict: bool) -> TestCase {
    let detail = detail_with_acceptance(f);
    let failed = |kind: &str| {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status.set_type(kind).set_message(detail.clone());
        if let Some(remedy) = &f.remedy {
            status.set_description(format!("{detail}\nFix: {remedy}"));
        }
        status
    };
    let (status, out) = match f.status {
        Status::Fail => (failed("error"), None),
        Status::Warn if strict => (failed("warning"), None),
        Status::Warn => (
            TestCaseStatus::success(),
            Some(format!("warning: {detail}")),
        ),
        Status::Skip => {
            let mut status = TestCaseStatus::skipped();
            status.set_message(detail.clone());
            (status, None)
        }
        Status::Accepted => (TestCaseStatus::success(), Some(detail.clone())),
        Status::Pass => (TestCaseStatus::success(), Some(detail.clone())),
    };
    let name = match &f.object {
        Some(object) => format!("{} {object}", f.id),
        None => f.id.to_string(),
    };
    let mut case = TestCase::new(name, status);
    case.set_classname(format!("rlsctl.{}", f.id));
    if let Some(out) = out {
        case.set_system_out(out);
    }
    case
}
