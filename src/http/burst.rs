//! APP004: the health endpoint under a concurrent burst. One request with a
//! tenant and one without pass an app that keeps the tenant in a global, or
//! sets it on one pooled connection and queries on another; requests in
//! flight together, for different tenants and for ids that exist nowhere, do
//! not: some response then reports another request's tenant, or an unknown id
//! sees rows.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::health::{self, Report};
use crate::model::checks::shorten;
use crate::model::checks::{Finding, Findings, APP004};

/// How hard and how long to press.
#[derive(Debug, Clone)]
pub(crate) struct Burst {
    /// Requests in all (0: no burst).
    pub(crate) requests: usize,
    /// Requests in flight at once.
    pub(crate) concurrency: usize,
    /// No request is sent after this has passed, and none outlives it.
    pub(crate) time_limit: Duration,
    /// How long one request may take.
    pub(crate) request_timeout: Duration,
}

/// A tenant id the burst sends, and whether it is a real tenant.
#[derive(Debug, Clone)]
pub(crate) struct Id {
    /// The `X-Tenant-Id` value.
    pub(crate) value: String,
    /// False for an id that exists nowhere (it must see no row).
    pub(crate) known: bool,
}

/// What one request brought back.
enum Answer {
    /// A 200 with a JSON body: the tenant the database session had, and the
    /// rows it could see (when the app reports them).
    Context {
        tenant: Option<String>,
        visible_rows: Option<u64>,
    },
    /// Anything else: a status, a timeout, a body that is not the contract.
    Unusable(String),
}

/// Up to this many examples of each kind of problem go in the report.
const EXAMPLES: usize = 3;

/// What the burst saw, summed up.
#[derive(Default)]
struct Tally {
    sent: usize,
    answered: usize,
    most_in_flight: usize,
    mismatches: usize,
    mismatch_examples: Vec<String>,
    unknown_seeing: usize,
    unknown_examples: Vec<String>,
    unusable: usize,
    unusable_examples: Vec<String>,
    rows_reported: bool,
}

impl Tally {
    fn add(&mut self, id: &Id, answer: Answer) {
        match answer {
            Answer::Unusable(why) => {
                self.unusable += 1;
                if self.unusable_examples.len() < EXAMPLES {
                    self.unusable_examples.push(why);
                }
            }
            Answer::Context {
                tenant,
                visible_rows,
            } => {
                self.answered += 1;
                if tenant.as_deref() != Some(id.value.as_str()) {
                    self.mismatches += 1;
                    if self.mismatch_examples.len() < EXAMPLES {
                        self.mismatch_examples.push(format!(
                            "the request for {} ran as {}",
                            shorten(&id.value),
                            tenant.as_deref().map_or("no tenant".to_string(), shorten)
                        ));
                    }
                }
                self.rows_reported |= visible_rows.is_some();
                if let (false, Some(rows @ 1..)) = (id.known, visible_rows) {
                    self.unknown_seeing += 1;
                    if self.unknown_examples.len() < EXAMPLES {
                        self.unknown_examples
                            .push(format!("{} saw {rows} row(s)", shorten(&id.value)));
                    }
                }
            }
        }
    }
}

/// Sends the burst to `url` (blocking; run it off the async runtime). The
/// requests take the ids in turn; `concurrency` threads keep that many in
/// flight; nothing is sent after the time limit and no request outlives it.
fn send(url: &str, ids: &[Id], burst: &Burst) -> Tally {
    let agent = health::agent(burst.concurrency);
    let deadline = Instant::now() + burst.time_limit;
    let next = AtomicUsize::new(0);
    let in_flight = AtomicUsize::new(0);
    let tally = Mutex::new(Tally::default());
    let progress = crate::logging::progress_bar(burst.requests as u64, "burst");
    std::thread::scope(|scope| {
        for _ in 0..burst.concurrency.min(burst.requests) {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                let left = deadline.saturating_duration_since(Instant::now());
                if i >= burst.requests || left.is_zero() {
                    break;
                }
                let id = &ids[i % ids.len()];
                let now = in_flight.fetch_add(1, Ordering::Relaxed) + 1;
                let answer = ask(&agent, url, id, burst.request_timeout.min(left));
                in_flight.fetch_sub(1, Ordering::Relaxed);
                if let Ok(mut tally) = tally.lock() {
                    tally.sent += 1;
                    tally.most_in_flight = tally.most_in_flight.max(now);
                    tally.add(id, answer);
                }
                if let Some(bar) = &progress {
                    bar.inc(1);
                }
            });
        }
    });
    if let Some(bar) = progress {
        bar.finish_and_clear();
    }
    tally.into_inner().unwrap_or_default()
}

/// One GET with `X-Tenant-Id: id`.
fn ask(agent: &ureq::Agent, url: &str, id: &Id, timeout: Duration) -> Answer {
    let reply = match health::get(agent, url, Some(&id.value), timeout) {
        Ok(reply) => reply,
        Err(e) => return Answer::Unusable(format!("{}: {e:#}", shorten(&id.value))),
    };
    if reply.status != 200 {
        return Answer::Unusable(format!("{}: status {}", shorten(&id.value), reply.status));
    }
    match Report::parse(&reply.body) {
        Ok(report) => Answer::Context {
            tenant: report.text("/database/tenant_context"),
            visible_rows: report.count("/rls/visible_rows"),
        },
        Err(e) => Answer::Unusable(format!("{}: body is not JSON: {e}", shorten(&id.value))),
    }
}

/// Runs the burst against `url` and adds APP004.
pub(crate) async fn run(url: &str, ids: Vec<Id>, burst: &Burst, findings: &mut Findings) {
    if burst.requests == 0 || ids.is_empty() {
        findings.push(Finding::skip(
            &APP004,
            "the burst is off (--burst-requests 0)",
        ));
        return;
    }
    let started = Instant::now();
    let tally = {
        let (url, ids, burst) = (url.to_string(), ids.clone(), burst.clone());
        match tokio::task::spawn_blocking(move || send(&url, &ids, &burst)).await {
            Ok(tally) => tally,
            Err(e) => {
                findings.push(Finding::skip(
                    &APP004,
                    format!("the burst did not run: {e}"),
                ));
                return;
            }
        }
    };
    let known = ids.iter().filter(|i| i.known).count();
    let what = format!(
        "{} of {} request(s) sent in {:.1?}, up to {} in flight, across {known} tenant(s) and {} unknown id(s)",
        tally.sent,
        burst.requests,
        started.elapsed(),
        tally.most_in_flight,
        ids.len() - known
    );
    let problems = problems(url, &tally, &what);
    if !problems.is_empty() {
        findings.check(&APP004, problems, "");
        return;
    }
    let unproven = unproven(&tally, burst);
    if tally.answered == 0 || !unproven.is_empty() {
        findings.push(Finding::warn(
            &APP004,
            Some(url.to_string()),
            format!(
                "isolation under concurrent requests is not fully shown ({what}): {}",
                if unproven.is_empty() {
                    "no request was answered".to_string()
                } else {
                    unproven.join("; ")
                }
            ),
            "make the health endpoint answer within --app-timeout and report rls.visible_rows; raise --burst-time-limit if the app is slow",
        ));
        return;
    }
    findings.push(Finding::pass(
        &APP004,
        None,
        format!(
            "{what}: every response ran under its own request's tenant, and unknown ids saw no row"
        ),
    ));
}

/// What the burst shows is wrong: answers under another request's tenant,
/// and unknown ids that saw rows.
fn problems(url: &str, tally: &Tally, what: &str) -> Vec<Finding> {
    let mismatched = (tally.mismatches > 0).then(|| {
        (
            format!(
                "{} of {} answered request(s) ran under another request's tenant ({what}): {}",
                tally.mismatches,
                tally.answered,
                tally.mismatch_examples.join("; ")
            ),
            "keep the tenant per request, never in a shared variable; set it with set_config(setting, id, true) on the connection that runs the request's queries, in the request's transaction (docs/checks.md#app004)",
        )
    });
    let unknown_seeing = (tally.unknown_seeing > 0).then(|| {
        (
            format!(
                "{} request(s) for tenant ids that exist nowhere saw rows ({what}): {}",
                tally.unknown_seeing,
                tally.unknown_examples.join("; ")
            ),
            "a request must see only its own tenant's rows: an unknown id sees none",
        )
    });
    [mismatched, unknown_seeing]
        .into_iter()
        .flatten()
        .map(|(detail, remedy)| Finding::problem(&APP004, url, detail, remedy))
        .collect()
}

/// Why the burst shows less than it should (time ran out, unusable answers,
/// no row counts reported).
fn unproven(tally: &Tally, burst: &Burst) -> Vec<String> {
    let unproven = [
        (tally.sent < burst.requests).then(|| {
            format!(
                "the time limit ({:?}) ended the burst after {} of {} requests",
                burst.time_limit, tally.sent, burst.requests
            )
        }),
        (tally.unusable > 0).then(|| {
            format!(
                "{} request(s) got no usable answer: {}",
                tally.unusable,
                tally.unusable_examples.join("; ")
            )
        }),
        (tally.answered > 0 && !tally.rows_reported).then(|| {
            "the endpoint does not report rls.visible_rows, so what unknown ids see was not checked"
                .to_string()
        }),
    ];
    unproven.into_iter().flatten().collect()
}
