//! The application's `/health/tenant-security` endpoint: one request, with or
//! without `X-Tenant-Id`, and what its JSON says (docs/checks.md#app001).

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;

/// The path of the health endpoint.
pub(crate) const HEALTH_PATH: &str = "/health/tenant-security";

/// One HTTP exchange's outcome.
pub(crate) struct Reply {
    /// The status code.
    pub(crate) status: u16,
    /// Header names (lower case) and values.
    pub(crate) headers: Vec<(String, String)>,
    /// The body as text.
    pub(crate) body: String,
}

/// An agent that hands back every status (a 400 is an answer, not an error)
/// and keeps up to `idle` connections open for reuse.
pub(crate) fn agent(idle: usize) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_idle_connections_per_host(idle.max(1))
        .build()
        .into()
}

/// GET `url` with `X-Tenant-Id: tenant` (none: without the header), within `timeout`.
pub(crate) fn get(
    agent: &ureq::Agent,
    url: &str,
    tenant: Option<&str>,
    timeout: Duration,
) -> Result<Reply> {
    let mut request = agent.get(url);
    if let Some(tenant) = tenant {
        request = request.header("X-Tenant-Id", tenant);
    }
    let request = request.config().timeout_global(Some(timeout)).build();
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

/// What the endpoint's JSON reports.
pub(crate) struct Report(Value);

impl Report {
    /// The body as the endpoint's JSON.
    pub(crate) fn parse(body: &str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(body).map(Self)
    }

    /// A text at `path` (`/database/tenant_context`).
    pub(crate) fn text(&self, path: &str) -> Option<String> {
        self.0
            .pointer(path)
            .and_then(Value::as_str)
            .map(String::from)
    }

    /// A count at `path` (`/rls/visible_rows`).
    pub(crate) fn count(&self, path: &str) -> Option<u64> {
        self.0.pointer(path).and_then(Value::as_u64)
    }
}
