//! App checks: the application's `/health/tenant-security` endpoint, which
//! reports what the database session looks like inside a request.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

use super::burst::{Burst, Id};
use crate::model::checks::{Finding, Findings, APP001, APP002, APP003};
use crate::model::config::Target;

/// Headers the application must send, with the values accepted.
pub(crate) const REQUIRED_HEADERS: [(&str, &[&str]); 2] = [
    ("x-content-type-options", &["nosniff"]),
    ("x-frame-options", &["deny", "sameorigin"]),
];

/// The path of the health endpoint.
pub(crate) const HEALTH_PATH: &str = "/health/tenant-security";

/// One HTTP exchange's outcome.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

fn get(url: &str, tenant: Option<&str>, timeout: Duration) -> Result<Reply> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .build()
        .into();
    let mut request = agent.get(url);
    if let Some(tenant) = tenant {
        request = request.header("X-Tenant-Id", tenant);
    }
    let mut response = request.call().with_context(|| format!("GET {url}"))?;
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_string().unwrap_or_default();
    Ok(Reply {
        status,
        headers,
        body,
    })
}

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
    let tenant = tenant.as_str();
    let (with, without) = {
        let (url, tenant, timeout) = (url.clone(), tenant.to_string(), burst.request_timeout);
        tokio::task::spawn_blocking(move || {
            (get(&url, Some(&tenant), timeout), get(&url, None, timeout))
        })
        .await?
    };
    // No answer (a timeout, a refused connection) is a finding, not an abort.
    let with = with.map_err(|e| format!("{e:#}"));

    let mut problems = Vec::new();
    let mut fail = |detail: String| {
        problems.push(Finding::problem(
            &APP001,
            url.clone(),
            detail,
            "see docs/checks.md#app001 for the middleware contract",
        ))
    };
    match &with {
        Err(e) => fail(format!("GET with X-Tenant-Id got no answer: {e}")),
        Ok(reply) if reply.status != 200 => fail(format!(
            "GET with X-Tenant-Id answered {} (expected 200)",
            reply.status
        )),
        Ok(reply) => match serde_json::from_str::<Value>(&reply.body) {
            Err(e) => fail(format!("the body is not JSON: {e}")),
            Ok(doc) => {
                let text = |path: &[&str]| {
                    path.iter()
                        .try_fold(&doc, |v, k| v.get(k))
                        .and_then(Value::as_str)
                        .map(String::from)
                };
                let expect = |got: Option<String>, want: &str, what: &str| {
                    (got.as_deref() != Some(want)).then(|| {
                        format!(
                            "{what} is {} (expected {want:?})",
                            got.map(|g| format!("{g:?}"))
                                .unwrap_or_else(|| "missing".into())
                        )
                    })
                };
                let tables = doc.pointer("/rls/enabled_tables").and_then(Value::as_u64);
                let issues = [
                    expect(text(&["status"]), "healthy", "status"),
                    expect(
                        text(&["database", "user"]),
                        &target.app_role,
                        "database.user",
                    ),
                    expect(
                        text(&["database", "session_user"]),
                        &target.app_role,
                        "database.session_user",
                    ),
                    expect(
                        text(&["database", "tenant_context"]),
                        tenant,
                        "database.tenant_context",
                    ),
                    (tables != Some(target.tables.len() as u64)).then(|| {
                        format!(
                            "rls.enabled_tables is {} (expected {})",
                            tables.map_or_else(|| "missing".to_string(), |n| n.to_string()),
                            target.tables.len()
                        )
                    }),
                ];
                for issue in issues.into_iter().flatten() {
                    fail(issue);
                }
            }
        },
    }
    findings.check(
        &APP001,
        problems,
        format!(
            "{url} reports {} under RLS with the tenant from the header",
            target.app_role
        ),
    );

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
                url.clone(),
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
                    url.clone(),
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
    super::burst::run(&url, ids, burst, findings).await;
    Ok(())
}
