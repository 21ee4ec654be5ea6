//! Probes: act as the application would, as the app role, inside
//! transactions that are always rolled back. Tenant ids are bound parameters.

pub(crate) mod session_state;
mod tenants;

pub(crate) use tenants::random_tenant;

use anyhow::Result;
use serde_json::Value;

use crate::model::checks::{
    shorten, Check, Finding, Findings, PRB001, PRB002, PRB003, PRB004, PRF002,
};
use crate::model::config::Target;
use crate::model::policy::{classify, normalize, Form};
use crate::model::snapshot::{Snapshot, Table};
use crate::model::sql::Step;
use crate::pg::per_table::{self, TableRef};
use crate::pg::{tenant, Begin, Db};

/// Every probe, for skipping them together.
pub(crate) const PROBES: [crate::model::checks::Check; 5] =
    [PRB001, PRB002, PRB003, PRB004, PRF002];

/// A tenant table the probes can use, with its column type.
struct ProbeTable<'a> {
    table: &'a Table,
    column_type: String,
}

/// What every probe works with.
struct Probes<'a> {
    snap: &'a Snapshot,
    target: &'a Target,
    /// The app role's sessions: this one and, when it could be had, a second.
    sessions: Vec<&'a Db>,
    tables: Vec<ProbeTable<'a>>,
    refs: Vec<TableRef>,
    /// The ids given with `--tenant` (may be empty).
    tenants: &'a [String],
    tenant_a: String,
    tenant_b: String,
}

/// Runs the probes on `db` and `second`, another session of the same role
/// (the snapshot's: see `inspect::read_for_checks`), or on `db` alone.
/// `tenants`: the ids given with `--tenant` (may be empty).
pub async fn run(
    db: &Db,
    second: Option<&Db>,
    snap: &Snapshot,
    target: &Target,
    tenants: &[String],
    findings: &mut Findings,
) -> Result<()> {
    if let Some(reason) = snap.session_bypass_reason() {
        findings.skip_all(&PROBES, &format!("{reason}; probes would prove nothing"));
        return Ok(());
    }
    // A table in shadow mode lets every row through by design (RLS008 fails
    // for it): the probes prove the enforced ones, and say which they skipped.
    let shadow = snap.shadow_tables();
    let tables: Vec<ProbeTable> = snap
        .tables
        .iter()
        .filter(|t| t.exists && t.has_column && !shadow.contains(&t.display.as_str()))
        .map(|t| ProbeTable {
            table: t,
            column_type: t.column_type.clone().unwrap_or_else(|| "text".into()),
        })
        .collect();
    if tables.is_empty() {
        let why = if shadow.is_empty() {
            "no configured tenant table exists with the tenant column".to_string()
        } else {
            format!(
                "every tenant table is in shadow mode ({}): nothing is enforced to probe (see RLS008)",
                shadow.len()
            )
        };
        findings.skip_all(&PROBES, &why);
        return Ok(());
    }
    let refs: Vec<TableRef> = tables
        .iter()
        .map(|t| TableRef {
            schema: target.schema.clone(),
            name: t.table.name.clone(),
            column_type: t.column_type.clone(),
            partitioned: t.table.partitioned,
        })
        .collect();
    let (tenant_a, tenant_b) = tenants::probe_tenants(db, snap, tenants).await?;
    // A second session of the app role takes half of every table: the first
    // touch of a table in a session loads its metadata, and the server does
    // that for both halves at once. One session when a second cannot be had.
    let probes = Probes {
        snap,
        target,
        sessions: std::iter::once(db).chain(second).collect(),
        tables,
        refs,
        tenants,
        tenant_a,
        tenant_b,
    };
    probes.phases(findings).await?;
    note_shadow_skips(&shadow, findings);
    Ok(())
}

/// The probes' phases, in the order they run.
#[derive(Clone, Copy)]
enum Phase {
    FailClosed,
    Reads,
    Writes,
}

/// Sets `tenant` in a transaction of `session` and commits it; returns what
/// the session has for the setting afterwards (PRB004: nothing).
async fn set_and_end(session: &Db, setting: &str, tenant: &str) -> Result<Option<String>> {
    // BEGIN in one batch with the set. The COMMIT and the look after it go
    // on their own: through a transaction pooler, a statement sent behind a
    // transaction's end can reach another server connection than the one
    // the pooler hands this client next.
    let (transaction, ()) = session
        .begin_with(Begin::Pinned, tenant::set_local(session, setting, tenant))
        .await?;
    transaction.commit().await?;
    Ok(tenant::current(session, setting).await?)
}

/// Says on each probe's finding which tables it skipped as in shadow mode.
fn note_shadow_skips(shadow: &[&str], findings: &mut Findings) {
    if shadow.is_empty() {
        return;
    }
    let shown: Vec<&str> = shadow.iter().take(10).copied().collect();
    let more = shadow.len() - shown.len();
    let note = format!(
        " (skipped in shadow mode: {}{}; see RLS008)",
        shown.join(", "),
        if more > 0 {
            format!(" and {more} more")
        } else {
            String::new()
        }
    );
    let probes: Vec<_> = PROBES.iter().map(|c| c.id).collect();
    for finding in findings.0.iter_mut().filter(|f| probes.contains(&f.id)) {
        finding.detail.push_str(&note);
    }
}

impl Probes<'_> {
    /// Runs each phase. Each reports what the database answered: a statement
    /// that errors is a finding, and the phases after it still run. Only a
    /// connection that is gone (a dropped tunnel) stops the run: then nothing
    /// was shown.
    async fn phases(&self, findings: &mut Findings) -> Result<()> {
        let phases: [(&[Check], Phase); 3] = [
            (&[PRB001, PRB004], Phase::FailClosed),
            (&[PRB002], Phase::Reads),
            (&[PRB003, PRF002], Phase::Writes),
        ];
        for (checks, phase) in phases {
            let result = match phase {
                Phase::FailClosed => self.prb001_and_prb004(findings).await,
                Phase::Reads => self.prb002(findings).await,
                Phase::Writes => self.prb003_and_prf002(findings).await,
            };
            if let Err(err) = result {
                if self.sessions.iter().any(|s| s.is_closed()) {
                    return Err(err.context("the connection was lost during the probes"));
                }
                let unreported: Vec<&Check> = checks
                    .iter()
                    .filter(|c| !findings.0.iter().any(|f| f.id == c.id))
                    .collect();
                for check in unreported {
                    findings.push(Finding::problem(
                        check,
                        self.target.schema.clone(),
                        format!("the probe could not finish: the database answered {err:#}"),
                        "see the message: a policy or privilege on the named table fails for the app role",
                    ));
                }
            }
        }
        Ok(())
    }

    /// The read probe's input, as `tenant` (none: no tenant set).
    fn reads(&self, tenant: Option<&String>) -> Value {
        serde_json::json!({
            "tables": self.refs, "column": self.target.tenant_column,
            "setting": self.target.tenant_setting, "tenant": tenant,
        })
    }

    /// PRB001 on sessions that never set a tenant, PRB004, then PRB001 again.
    async fn prb001_and_prb004(&self, findings: &mut Findings) -> Result<()> {
        let (sessions, tenant_a) = (&self.sessions, &self.tenant_a);
        let setting = self.target.tenant_setting.as_str();
        let mut closed = fail_closed(
            self,
            &self.reads(None),
            "with no tenant ever set in the session",
        )
        .await?;
        // Both sessions at once.
        let afters = match sessions.as_slice() {
            [first, second, ..] => {
                let (a, b) = tokio::try_join!(
                    set_and_end(first, setting, tenant_a),
                    set_and_end(second, setting, tenant_a)
                )?;
                vec![a, b]
            }
            [only] => vec![set_and_end(only, setting, tenant_a).await?],
            [] => Vec::new(),
        };
        // Any session that kept a value is the finding.
        let kept = |a: &&Option<String>| a.as_deref().is_some_and(|v| !v.is_empty());
        let after = afters
            .iter()
            .find(kept)
            .or(afters.first())
            .cloned()
            .flatten();
        match after.as_deref() {
            None | Some("") => findings.push(Finding::pass(
                &PRB004,
                None,
                format!(
                    "{setting} is {} after the transaction that set it committed",
                    if after.is_none() { "unset" } else { "empty" }
                ),
            )),
            Some(value) => findings.push(Finding::problem(
                &PRB004,
                setting,
                format!("after COMMIT the session still has {setting} = {}: the next request on this connection would run as that tenant", shorten(value)),
                "set the tenant with set_config(setting, id, true) or SET LOCAL, never a plain SET",
            )),
        }
        closed.extend(
            fail_closed(
                self,
                &self.reads(None),
                "after a transaction set and ended a tenant",
            )
            .await?,
        );
        findings.check(
            &PRB001,
            closed,
            "no row is visible without a tenant, before and after a tenant was set and ended",
        );
        Ok(())
    }

    /// PRB002 under each tenant.
    async fn prb002(&self, findings: &mut Findings) -> Result<()> {
        let (sessions, tables, tenants, tenant_a) =
            (&self.sessions, &self.tables, self.tenants, &self.tenant_a);
        let probe_tenants: Vec<String> = if tenants.is_empty() {
            vec![tenant_a.clone()]
        } else {
            tenants.to_vec()
        };
        let mut problems = Vec::new();
        let mut seen = 0i64;
        for id in &probe_tenants {
            let mut seen_by_tenant = 0i64;
            let rows =
                per_table::run_split(sessions, Step::ProbeReads, &self.reads(Some(id))).await;
            for (i, result) in rows?.iter().enumerate() {
                let (visible, foreign) = match counted(result) {
                    Counted::Rows(visible, foreign) => (visible, foreign),
                    Counted::Error(message) => {
                        problems.push(Finding::problem(
                            &PRB002,
                            tables[i].table.display.clone(),
                            format!("under tenant {}, reading it failed: {message}", shorten(id)),
                            "the app cannot read this table with a valid tenant: fix the policy or the grant the message names",
                        ));
                        continue;
                    }
                };
                seen += visible;
                seen_by_tenant += visible;
                if foreign > 0 {
                    problems.push(Finding::problem(
                        &PRB002,
                        tables[i].table.display.clone(),
                        format!("under tenant {}, {foreign} of {visible} visible rows belong to other tenants", shorten(id)),
                        "fix the policies (see the RLS checks), then rlsctl apply",
                    ));
                }
            }
            // A tenant that sees nothing proves nothing: a mistyped id, or a
            // policy that hides everything, would pass.
            if !tenants.is_empty() && seen_by_tenant == 0 {
                problems.push(Finding::problem(
                    &PRB002,
                    shorten(id),
                    format!("under tenant {}, no row of any tenant table is visible: isolation is not shown (a mistyped id, or a policy that hides everything)", shorten(id)),
                    "pass tenant ids that own rows: --tenant A --tenant B",
                ));
            }
        }
        if !problems.is_empty() {
            findings.check(&PRB002, problems, "");
        } else if tenants.is_empty() {
            findings.push(Finding::warn(
                &PRB002,
                None,
                "proven only vacuously: no --tenant given, so the probe used a tenant id that exists nowhere",
                "rerun with two real tenants: --tenant A --tenant B",
            ));
        } else {
            findings.push(Finding::pass(
                &PRB002,
                None,
                format!(
                    "under {} tenant(s), all {seen} visible rows belonged to the tenant",
                    probe_tenants.len()
                ),
            ));
        }
        Ok(())
    }

    /// PRB003 and PRF002 under tenant A.
    async fn prb003_and_prf002(&self, findings: &mut Findings) -> Result<()> {
        let (sessions, tables, snap) = (&self.sessions, &self.tables, self.snap);
        let (tenant_a, tenant_b) = (&self.tenant_a, &self.tenant_b);
        let (target, setting, refs) = (self.target, &self.target.tenant_setting, &self.refs);
        let input = serde_json::json!({
            "tables": refs, "column": target.tenant_column, "setting": setting,
            "tenant": tenant_a, "other": tenant_b,
        });
        let results = per_table::run_split(sessions, Step::ProbeWrites, &input).await;
        let mut writes = Vec::new();
        let mut plans = Vec::new();
        for (t, result) in tables.iter().zip(results?.iter()) {
            if let Some(problem) = write_isolation(t, result) {
                writes.push(problem);
            }
            let per_row = result["per_row"].as_str();
            // The plan shows what happens today; an unwrapped setting becomes a per-row
            // filter as soon as the planner picks a sequential scan.
            let unwrapped = snap.policies_on(&t.table.display).any(|p| {
                p.applies_to_app
                    && p.using.as_deref().is_some_and(|u| {
                        match classify(u, &target.tenant_column, setting) {
                            Form::Scoped(scope) => !scope.per_statement,
                            _ => {
                                u.contains("current_setting") && !normalize(u).contains("=select ")
                            }
                        }
                    })
            });
            let detail = match (per_row, unwrapped) {
                (Some(line), _) => Some(format!("the tenant setting is evaluated per row: {line}")),
                (None, true) => Some("a policy calls current_setting() outside a scalar subquery: per row whenever the plan is a sequential scan".into()),
                (None, false) => None,
            };
            if let Some(detail) = detail {
                plans.push(Finding::problem(
                    &PRF002,
                    t.table.display.clone(),
                    detail,
                    "wrap the setting in a scalar subquery: (SELECT NULLIF(current_setting(...), '')::type); rlsctl apply installs that form",
                ));
            }
        }
        findings.check(
            &PRB003,
            writes,
            format!(
                "writing rows for tenant {} under tenant {} was denied on every table",
                shorten(tenant_b),
                shorten(tenant_a)
            ),
        );
        findings.check(
            &PRF002,
            plans,
            "the setting is evaluated once per statement (InitPlan or index condition)",
        );
        Ok(())
    }
}

/// What a read probe found on one table.
enum Counted {
    /// Rows visible, and of those, rows of another tenant.
    Rows(i64, i64),
    /// The statement failed: the server's message and SQLSTATE.
    Error(String),
}

/// A read probe's result for one table.
fn counted(result: &Value) -> Counted {
    match (result["visible"].as_i64(), result["foreign"].as_i64()) {
        (Some(visible), Some(foreign)) => Counted::Rows(visible, foreign),
        _ => Counted::Error(
            result["error"]
                .as_str()
                .unwrap_or("no result for the table")
                .to_string(),
        ),
    }
}

/// Why reading `table` with no tenant set raised, from its policies' forms:
/// the policy and its cause when one reads the setting in a raising way.
fn raising_policy(snap: &Snapshot, target: &Target, table: &Table) -> Option<String> {
    snap.policies_on(&table.display)
        .filter(|p| p.applies_to_app && p.cmd.reads())
        .find_map(|p| {
            let using = p.using.as_deref()?;
            match classify(using, &target.tenant_column, &target.tenant_setting) {
                Form::Scoped(scope) => scope
                    .raises_without_tenant()
                    .map(|why| format!("policy {}: {why}", p.name)),
                _ => None,
            }
        })
}

/// One statement for all tables: does any row show with no tenant context?
/// A table whose read raises is fail-closed (nothing shows) but breaks the
/// app's own jobs that run without a tenant: a warning that names the cause.
async fn fail_closed(probes: &Probes<'_>, input: &Value, when: &str) -> Result<Vec<Finding>> {
    let (sessions, tables) = (&probes.sessions, &probes.tables);
    let rows = per_table::run_split(sessions, Step::ProbeReads, input).await;
    let mut problems = Vec::new();
    for (i, result) in rows?.iter().enumerate() {
        let table = tables[i].table;
        match counted(result) {
            Counted::Rows(0, _) => {}
            Counted::Rows(visible, _) => problems.push(Finding::problem(
                &PRB001,
                table.display.clone(),
                format!("{visible} row(s) visible {when}"),
                "the policy must compare with NULLIF(current_setting(setting, true), '') so an absent tenant matches nothing",
            )),
            Counted::Error(message) => {
                let cause = raising_policy(probes.snap, probes.target, table)
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default();
                problems.push(Finding::warn(
                    &PRB001,
                    Some(table.display.clone()),
                    format!(
                        "reading it {when} raised instead of returning no row: {message}{cause}; fail-closed, but a job the app runs without a tenant fails"
                    ),
                    "read the setting as NULLIF(current_setting(setting, true), '') cast to the column's type; rlsctl apply --replace-policies installs that form",
                ));
            }
        }
    }
    Ok(problems)
}

/// What the write probe found on one table: under the current tenant, moving
/// a visible row to the other tenant and inserting a row for it must both meet
/// the RLS denial (or, for the move, find no row to move).
fn write_isolation(t: &ProbeTable<'_>, result: &Value) -> Option<Finding> {
    let mut leaks = Vec::new();
    for (kind, what) in [
        ("update", "updating a visible row to the other tenant"),
        ("insert", "inserting a row for the other tenant"),
    ] {
        let outcome = &result[kind];
        let (state, message) = (outcome["state"].as_str(), outcome["message"].as_str());
        match (outcome["rows"].as_i64(), state, message) {
            (_, Some(state), Some(message)) if tenant::is_rls_denial(state, message) => {}
            // Nothing visible to move (or, on a partitioned table, to copy).
            (Some(0), _, _) if kind == "update" || t.table.partitioned => {}
            (Some(n), _, _) => leaks.push(format!("{what} succeeded ({n} row(s))")),
            (_, state, message) => leaks.push(format!(
                "{what} failed with something other than the RLS denial: {} [{}]",
                message.unwrap_or("no result"),
                state.unwrap_or("?")
            )),
        }
    }
    (!leaks.is_empty()).then(|| {
        Finding::problem(
            &PRB003,
            t.table.display.clone(),
            leaks.join("; "),
            "every write policy needs WITH CHECK scoped to the tenant (see RLS004); rlsctl apply installs it",
        )
    })
}
