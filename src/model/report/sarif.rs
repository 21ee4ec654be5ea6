//! SARIF 2.1.0, for code-scanning dashboards: one rule per check of the
//! catalogue (its title, severity and docs/checks.md section), one result per
//! problem, the database object as its logical location. Accepted findings
//! are results with an external suppression carrying the reason. One run per
//! database: a fleet is one log with a run per target.

use serde_json::{json, Value};

use crate::model::checks::{Finding, Severity, Status, CATALOGUE};

use super::Run;

/// The SARIF schema the log names.
const SCHEMA: &str = "https://json.schemastore.org/sarif-2.1.0.json";
/// The checks reference, whose sections become the rules' help.
const CHECKS_DOC: &str = include_str!("../../../docs/checks.md");

/// The SARIF log of `runs`; `docs_url` (the address of docs/checks.md), when
/// given, makes each rule's help URI.
pub(crate) fn log(command: &str, runs: &[Run<'_>], docs_url: Option<&str>) -> String {
    let runs: Vec<Value> = runs.iter().map(|r| run(command, r, docs_url)).collect();
    let log = json!({ "$schema": SCHEMA, "version": "2.1.0", "runs": runs });
    serde_json::to_string_pretty(&log).unwrap_or_default()
}

fn run(command: &str, run: &Run<'_>, docs_url: Option<&str>) -> Value {
    let (target, results, invocation) = match run {
        Run::Checked { target, report } => (
            *target,
            report
                .checks
                .iter()
                .filter(|f| matches!(f.status, Status::Fail | Status::Warn | Status::Accepted))
                .map(|f| result(f, &report.database.name))
                .collect(),
            json!({ "executionSuccessful": true }),
        ),
        Run::Failed { target, error } => (
            Some(*target),
            Vec::new(),
            json!({
                "executionSuccessful": false,
                "toolExecutionNotifications": [{
                    "level": "error",
                    "message": { "text": format!("{target} could not be checked: {error}") }
                }]
            }),
        ),
    };
    let mut run = json!({
        "tool": { "driver": {
            "name": "rlsctl",
            "version": env!("CARGO_PKG_VERSION"),
            "rules": rules(docs_url),
        }},
        "invocations": [invocation],
        "results": results,
    });
    if let Some(target) = target {
        run["automationDetails"] = json!({ "id": format!("rlsctl/{command}/{target}/") });
    }
    run
}

/// Every check of the catalogue, in catalogue order (results refer to them by index).
fn rules(docs_url: Option<&str>) -> Vec<Value> {
    CATALOGUE
        .iter()
        .map(|c| {
            let anchor = c.id.as_str().to_lowercase();
            let mut rule = json!({
                "id": c.id.as_str(),
                "shortDescription": { "text": c.title },
                "defaultConfiguration": { "level": level(c.severity) },
                "properties": { "kind": c.kind },
            });
            if let Some(section) = section(c.id.as_str()) {
                rule["help"] = json!({ "text": section, "markdown": section });
            }
            if let Some(url) = docs_url {
                rule["helpUri"] = json!(format!("{url}#{anchor}"));
            }
            rule
        })
        .collect()
}

/// The section of docs/checks.md under `## ID`, without its heading.
fn section(id: &str) -> Option<&'static str> {
    let heading = format!("\n## {id}\n");
    let start = CHECKS_DOC.find(&heading)? + heading.len();
    let end = CHECKS_DOC[start..]
        .find("\n## ")
        .map_or(CHECKS_DOC.len(), |at| start + at);
    Some(CHECKS_DOC[start..end].trim())
}

fn level(severity: Severity) -> &'static str {
    match severity {
        Severity::Error => "error",
        Severity::Warning => "warning",
    }
}

fn result(f: &Finding, database: &str) -> Value {
    let index = CATALOGUE.iter().position(|c| c.id == f.id).unwrap_or(0);
    let level = match f.status {
        Status::Fail => "error",
        Status::Warn => "warning",
        _ => level(f.severity),
    };
    let mut text = f.detail.clone();
    if let Some(remedy) = &f.remedy {
        text.push_str(&format!(" Fix: {remedy}"));
    }
    if let Some(expired) = &f.expired_acceptance {
        text.push_str(&format!(
            " (an exception accepted this until {}; it has expired: {})",
            expired.until.as_deref().unwrap_or("-"),
            expired.reason
        ));
    }
    let object = f.object.as_deref();
    let mut result = json!({
        "ruleId": f.id.as_str(),
        "ruleIndex": index,
        "level": level,
        "message": { "text": text },
        "locations": [{ "logicalLocations": [{
            "name": object.unwrap_or(database),
            "fullyQualifiedName": match object {
                Some(object) => format!("{database}/{object}"),
                None => database.to_string(),
            },
            "kind": if object.is_some() { "object" } else { "database" },
        }]}],
        // Stable across runs, so a dashboard can tell a finding it saw before.
        "partialFingerprints": { "rlsctlFinding/v1": format!("{}/{}/{}", f.id, database, object.unwrap_or("")) },
    });
    if let Some(acceptance) = &f.acceptance {
        result["suppressions"] = json!([{
            "kind": "external",
            "status": "accepted",
            "justification": match &acceptance.until {
                Some(day) => format!("{} (until {day})", acceptance.reason),
                None => acceptance.reason.clone(),
            },
        }]);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_check_has_a_rule_with_its_section_as_help() {
        let rules = rules(Some("https://example.test/docs/checks.md"));
        assert_eq!(rules.len(), CATALOGUE.len());
        for (rule, check) in rules.iter().zip(CATALOGUE) {
            assert_eq!(rule["id"], check.id.as_str());
            assert!(
                rule["help"]["text"].as_str().is_some_and(|t| !t.is_empty()),
                "{} has no help",
                check.id
            );
            assert_eq!(
                rule["helpUri"],
                format!(
                    "https://example.test/docs/checks.md#{}",
                    check.id.as_str().to_lowercase()
                )
            );
        }
        assert!(section("RLS002").unwrap().starts_with("**"));
    }
}
