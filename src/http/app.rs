//! App checks: the application's `/health/tenant-security` endpoint, which
//! reports what the database session looks like inside a request.

use anyhow::Result;

use super::burst::{Burst, Id};
use super::health::{self, Reply, Report, HEALTH_PATH};
use crate::model::checks::{Finding, Findings, APP001, APP002, APP003};
use crate::model::config::Target;

/// Headers the application must send, with the values accepted.
pub(crate) const REQUIRED_HEADERS: [(&str, &[&str]); 2] = [
    ("x-content-type-options", &["nosniff"]),
    ("x-frame-options", &["deny", "sameorigin"]),
];

/// Runs the app checks against `base_url`: APP001 to APP003 with the first
/// of `ids` as the header value, then the burst (APP004) over all of them.
pub(crate) async fn run(
    base_url: &str,
    ids: Vec<Id>,
    burst: &Burst,
    target: &Target,
    findings: &mut Findings,
) -> Result<()> {
    let url = format!("{}{HEALTH_PATH}", base_url.trim_end_matches('/'));
    let tenant = ids.first().map(|id| id.value.clone()).unwrap_or_default();
    let (with, without) = {
        let (url, tenant, timeout) = (url.clone(), tenant.clone(), burst.request_timeout);
        tokio::task::spawn_blocking(move || {
            let agent = health::agent(1);
            (
                health::get(&agent, &url, Some(&tenant), timeout),
                health::get(&agent, &url, None, timeout),
            )
        })
        .await?
    };
    // No answer (a timeout, a refused connection) is a finding, not an abort.
    let with = with.map_err(|e| format!("{e:#}"));
    app001(&url, &with, &tenant, target, findings);
    app002(&url, without, findings);
    app003(&url, &with, findings);
    super::burst::run(&url, ids, burst, findings).await;
    Ok(())
}

/// APP001: with the header, the endpoint reports the app role under RLS and
/// the tenant from the header.
fn app001(
    url: &str,
    with: &Result<Reply, String>,
    tenant: &str,
    target: &Target,
    findings: &mut Findings,
) {
    let issues = match with {
        Err(e) => vec![format!("GET with X-Tenant-Id got no answer: {e}")],
        Ok(reply) if reply.status != 200 => vec![format!(
            "GET with X-Tenant-Id answered {} (expected 200)",
            reply.status
        )],
        Ok(reply) => match Report::parse(&reply.body) {
            Err(e) => vec![format!("the body is not JSON: {e}")],
            Ok(report) => report_issues(&report, tenant, target),
        },
    };
    let problems = issues
        .into_iter()
        .map(|detail| {
            Finding::problem(
                &APP001,
                url,
                detail,
                "see docs/checks.md#app001 for the middleware contract",
            )
        })
        .collect();
    findings.check(
        &APP001,
        problems,
        format!(
            "{url} reports {} under RLS with the tenant from the header",
            target.app_role
        ),
    );
}

/// What in the endpoint's report is not the contract.
fn report_issues(report: &Report, tenant: &str, target: &Target) -> Vec<String> {
    let expect = |path: &str, want: &str| {
        let got = report.text(path);
        (got.as_deref() != Some(want)).then(|| {
            format!(
                "{} is {} (expected {want:?})",
                path.trim_start_matches('/').replace('/', "."),
                got.map(|g| format!("{g:?}"))
                    .unwrap_or_else(|| "missing".into())
            )
        })
    };
    let tables = report.count("/rls/enabled_tables");
    [
        expect("/status", "healthy"),
        expect("/database/user", &target.app_role),
        expect("/database/session_user", &target.app_role),
        expect("/database/tenant_context", tenant),
        (tables != Some(target.tables.len() as u64)).then(|| {
            format!(
                "rls.enabled_tables is {} (expected {})",
                tables.map_or_else(|| "missing".to_string(), |n| n.to_string()),
                target.tables.len()
            )
        }),
    ]
    .into_iter()
    .flatten()
    .collect()
}

/// APP002: a request without the header is rejected with 400.
fn app002(url: &str, without: Result<Reply>, findings: &mut Findings) {
    let detail = match without {
        Ok(reply) if reply.status == 400 => None,
        Ok(reply) => Some(format!(
            "a request without X-Tenant-Id answered {} (expected 400): requests run without a tenant",
            reply.status
        )),
        Err(e) => Some(format!(
            "a request without X-Tenant-Id got no answer ({e:#}): whether it would run without a tenant is not shown"
        )),
    };
    let problems = detail
        .map(|detail| {
            Finding::problem(
                &APP002,
                url,
                detail,
                "reject requests without a tenant before touching the database",
            )
        })
        .into_iter()
        .collect();
    findings.check(
        &APP002,
        problems,
        "requests without X-Tenant-Id are rejected with 400",
    );
}

/// APP003: the security headers on the answer with the header.
fn app003(url: &str, with: &Result<Reply, String>, findings: &mut Findings) {
    let headers = with
        .as_ref()
        .map(|r| r.headers.as_slice())
        .unwrap_or_default();
    let problems = REQUIRED_HEADERS
        .iter()
        .filter_map(|(name, accepted)| {
            let value = headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_ascii_lowercase());
            let ok = value.as_deref().is_some_and(|v| accepted.contains(&v));
            (!ok).then(|| {
                Finding::problem(
                    &APP003,
                    url,
                    format!(
                        "{name} is {} (expected {})",
                        value.unwrap_or_else(|| "missing".into()),
                        accepted.join(" or ")
                    ),
                    format!("send {name}: {} on every response", accepted[0]),
                )
            })
        })
        .collect();
    findings.check(
        &APP003,
        problems,
        "X-Content-Type-Options and X-Frame-Options are sent",
    );
}
