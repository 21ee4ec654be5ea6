//! Applying the bundle: pre-flight, then one transaction under an advisory
//! lock and a lock timeout, retried with backoff when a lock cannot be had.
//! When one transaction would hold more locks than the server's lock table can
//! spare (see `model::batches`), or `--batch-size` says so, the tenant
//! tables go in batches: one transaction each, in the configured order, each
//! committed with its registry rows and a history row. A table is therefore
//! either untouched or fully installed, and a rerun after an interruption
//! finds the committed tables unchanged and goes on with the rest.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::Serialize;

pub use super::preflight::Preflight;
pub use super::{Accepted, Options};
use crate::model::batches::{self, Batching};
use crate::model::config::{Target, POLICY_NAME};
use crate::model::plan::{self, Enforcement, Mode, Plan, RoleInputs};
use crate::model::snapshot::{Reacher, Reads, Snapshot};
use crate::model::sql::{render, Step};
use crate::model::BUNDLE_VERSION;
use crate::pg::{Begin, Db, DbError, DbResultExt};

/// What apply reads: the sequences for its plan, inside its own transaction
/// (so on this connection), and no NULL counts (the pre-flight counts them).
const APPLY_READS: Reads = Reads {
    null_counts: false,
    parallel: false,
    sequences: true,
};

/// Key of the advisory lock that serializes concurrent applies ("rlsctl" in ASCII).
const APPLY_LOCK_KEY: i64 = 0x726c_7363_746c;

/// The result of `apply`.
#[derive(Debug, Serialize)]
pub struct ApplyOutcome {
    /// The pre-flight.
    pub preflight: Preflight,
    /// The plan (empty when the pre-flight refused).
    pub plan: Plan,
    /// Whether the plan was committed.
    pub applied: bool,
    /// Checksum of the rendered bundle for this database.
    pub checksum: String,
    /// Attempts made (more than one after lock timeouts).
    pub attempts: u32,
    /// How long the longest applying transaction was open, in milliseconds.
    pub transaction_ms: u128,
    /// Statements sent.
    pub statements: u64,
    /// The transactions the tenant tables go in, and why.
    pub batching: Batching,
    /// Transactions this run committed.
    pub committed: usize,
    /// Who reaches every row of a tenant table: as recorded right after the
    /// changes, or, for a dry run or a refusal, as it is now (the break-glass
    /// policy apply creates is not in it yet).
    pub reach: Vec<Reacher>,
}

impl ApplyOutcome {
    /// What an attempt found before it changed anything.
    fn unapplied(
        preflight: Preflight,
        checksum: String,
        batching: Batching,
        reach: Vec<Reacher>,
    ) -> Self {
        Self {
            preflight,
            plan: Plan::default(),
            applied: false,
            checksum,
            attempts: 0,
            transaction_ms: 0,
            statements: 0,
            batching,
            committed: 0,
            reach,
        }
    }

    /// True when the pre-flight refused.
    pub(crate) fn refused(&self) -> bool {
        self.preflight.report.summary.failed > 0
    }
}

/// Runs `apply`. Errors are "could not do its job" (exit 2); a refusal is in the outcome.
pub async fn apply(db: &Db, target: &Target, options: &Options) -> Result<ApplyOutcome> {
    let first = with_lock_retries(db, target, options, Batch::First).await?;
    let mut outcome = first.outcome;
    let mut remaining = first.remaining;
    let batching = outcome.batching.clone();
    let size = batching.batch_size;
    while remaining > 0 && outcome.applied {
        let batch = outcome.committed + 1;
        crate::say!(
            "rlsctl apply: batch {batch} of {}: {} table(s) committed, {remaining} to go",
            outcome.batching.batches,
            (batch - 1) * size,
        );
        let next = with_lock_retries(db, target, options, Batch::Next(&batching)).await?;
        if next.outcome.refused() {
            let problems: Vec<String> = next
                .outcome
                .preflight
                .problems()
                .map(|f| format!("{} [{}]", f.detail, f.id))
                .collect();
            bail!(
                "batch {batch} was refused by the pre-flight, after {} batch(es) committed (each of their tables fully \
                 installed, the others untouched): {}; fix it and run apply again to finish",
                outcome.committed,
                problems.join("; ")
            );
        }
        if next.remaining >= remaining {
            bail!("batch {batch} made no progress ({remaining} table(s) still to change); run apply again");
        }
        remaining = next.remaining;
        outcome.committed += 1;
        outcome.attempts += next.outcome.attempts;
        outcome.transaction_ms = outcome.transaction_ms.max(next.outcome.transaction_ms);
    }
    outcome.statements = db.statements();
    Ok(outcome)
}

/// Which transaction of the run this is.
#[derive(Debug, Clone, Copy)]
enum Batch<'a> {
    /// The first: the pre-flight over every table, the batches decided, the
    /// roles and the rlsctl schema, and the first batch of tables.
    First,
    /// A later batch: the next tables that still need changing, as many as
    /// the first transaction's batches hold.
    Next(&'a Batching),
}

/// One committed (or refused, or dry-run) transaction.
struct Attempt {
    outcome: ApplyOutcome,
    /// Tenant tables that still need changing after it.
    remaining: usize,
}

/// One transaction, retried with backoff while a lock cannot be had.
async fn with_lock_retries(
    db: &Db,
    target: &Target,
    options: &Options,
    stage: Batch<'_>,
) -> Result<Attempt> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match attempt_once(db, target, options, stage).await {
            Ok(mut done) => {
                done.outcome.attempts = attempt;
                return Ok(done);
            }
            Err(err) => {
                let Some(lock) = DbError::lock_unavailable(&err) else {
                    return Err(err);
                };
                let blockers = blockers(db, target).await;
                if attempt > options.lock_retries {
                    bail!(
                        "gave up after {attempt} attempts: could not get a lock within {:?} ({}); blocked by: {}",
                        options.lock_timeout,
                        lock.message,
                        if blockers.is_empty() { "a session that has since finished".into() } else { blockers.join("; ") }
                    );
                }
                let wait = Duration::from_millis(500 * 2u64.pow(attempt - 1));
                tracing::warn!(attempt, ?wait, blockers = %blockers.join("; "), "lock timeout; retrying");
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// The snapshot inside the transaction, the mode each table is to be in,
/// and the plan that gets it there, each change saying why.
async fn planned(
    db: &Db,
    target: &Target,
    options: &Options,
) -> Result<(Snapshot, Vec<Mode>, Plan)> {
    let (snap, _) = crate::inspect::read(db, target, APPLY_READS).await?;
    let modes = options.enforcement.modes(&snap);
    let mut plan = plan::build(
        target,
        &snap,
        &options.roles,
        &modes,
        options.replace_policies,
    );
    let why = options.enforcement.why(&snap);
    for item in &mut plan.items {
        if let Some(table) = item.table.and_then(|i| snap.tables.get(i)) {
            item.why = why.get(&table.name).cloned();
        }
    }
    Ok((snap, modes, plan))
}

/// One transaction of the run: the plan built inside it, refused by its
/// pre-flight, rolled back (dry run, nothing to do) or committed.
async fn attempt_once(
    db: &Db,
    target: &Target,
    options: &Options,
    stage: Batch<'_>,
) -> Result<Attempt> {
    let started = Instant::now();
    // BEGIN in one batch with the first statement in it: the lock that keeps
    // another apply out (then the reads), or, for a dry run, the reads.
    let work = async {
        if !options.dry_run {
            db.query("SELECT pg_advisory_xact_lock($1)", &[&APPLY_LOCK_KEY])
                .await
                .doing("waiting for another apply")?;
        }
        planned(db, target, options).await
    };
    let kind = Begin::Change {
        lock_timeout: options.lock_timeout,
    };
    // (boxed: the reads' state machine is large)
    let (transaction, (snap, modes, mut plan)) = db.begin_with(kind, Box::pin(work)).await?;
    let db: &Db = &transaction;
    let changing = plan.changing_tables();
    let batching = match stage {
        Batch::First => {
            let budget = crate::inspect::installed::lock_budget(db).await?;
            batches::plan(changing.len(), &budget, options.batch_size)
        }
        Batch::Next(first) => first.clone(),
    };
    let size = batching.batch_size;
    let now: Vec<usize> = changing.iter().copied().take(size).collect();
    // What the plan needs and the session may not do is refused here, before
    // anything changes, never half-way through the transaction. The first
    // transaction counts NULL tenants in every table; a later batch in its own.
    let (counted, batching_checked) = match stage {
        Batch::First => (None, Some(&batching)),
        Batch::Next(_) => (Some(now.as_slice()), None),
    };
    let preflight =
        super::preflight::run(db, target, &snap, &plan, options, counted, batching_checked).await?;
    plan.blocked.clear();
    let checksum = checksum(target, &snap, &modes);
    let mut outcome = ApplyOutcome::unapplied(preflight, checksum, batching, snap.reach.clone());
    if outcome.refused() {
        plan = Plan::default();
    }
    // Nothing to change, but who reaches every row differs from what the last
    // apply recorded: record it (the operator accepts it by applying).
    let reach_to_record = plan.changes() == 0
        && snap.bundle.installed
        && !same_reach(&snap.bundle.recorded_reach, &snap.reach);
    if outcome.refused() || options.dry_run || (plan.changes() == 0 && !reach_to_record) {
        transaction
            .rollback()
            .await
            .doing("ending the read-only transaction")?;
        outcome.plan = plan;
        return Ok(Attempt {
            outcome,
            remaining: 0,
        });
    }
    // Tables beyond this batch wait for the next transaction.
    let later: HashSet<usize> = changing.iter().copied().skip(size).collect();
    outcome.reach = change(db, target, options, &snap, &plan, &later, &outcome.checksum).await?;
    transaction.commit().await.doing("committing")?;
    outcome.transaction_ms = started.elapsed().as_millis();
    outcome.applied = true;
    outcome.committed = 1;
    plan.warnings.dedup();
    outcome.plan = plan;
    Ok(Attempt {
        outcome,
        remaining: later.len(),
    })
}

/// The changes of this transaction: the plan's statements (but those of the
/// tables in `later`), the break-glass log entry of `--to-shadow`, the
/// registry and history rows; who reaches every row, as recorded.
async fn change(
    db: &Db,
    target: &Target,
    options: &Options,
    snap: &Snapshot,
    plan: &Plan,
    later: &HashSet<usize>,
    checksum: &str,
) -> Result<Vec<Reacher>> {
    let changes = execute(db, plan, later).await?;
    if let (Some(reason), Enforcement::Staged { shadow, .. }) =
        (&options.to_shadow_reason, &options.enforcement)
    {
        db.execute(
            &render(Step::LogToShadow, &[]),
            &[&target.schema, shadow, reason],
        )
        .await
        .doing("recording the change in the break-glass log")?;
    }
    record(db, target, snap, plan, later, checksum, changes).await
}

/// Runs the plan's statements but those of the tables in `later`, one round
/// trip per object (its statements go together); how many objects changed.
async fn execute(db: &Db, plan: &Plan, later: &HashSet<usize>) -> Result<usize> {
    let mut changes = 0;
    for item in plan.items.iter().filter(|i| !i.statements.is_empty()) {
        if item.table.is_some_and(|t| later.contains(&t)) {
            continue;
        }
        let batch: Vec<&str> = item.statements.iter().map(|s| s.sql.as_str()).collect();
        db.simple(&batch.join(";\n"))
            .await
            .doing(&format!("applying {}", item.object))?;
        changes += 1;
    }
    Ok(changes)
}

/// Registry and history, in the same transaction as the changes.
/// Tables of `later` (left for a later batch) are not registered yet: their
/// state before apply is recorded when their own batch installs them.
async fn record(
    db: &Db,
    target: &Target,
    snap: &Snapshot,
    plan: &Plan,
    later: &HashSet<usize>,
    checksum: &str,
    changes: usize,
) -> Result<Vec<Reacher>> {
    let names: Vec<String> = snap.tables.iter().map(|t| t.name.clone()).collect();
    let now: Vec<&crate::model::snapshot::Table> = snap
        .tables
        .iter()
        .enumerate()
        .filter(|(i, _)| !later.contains(i))
        .map(|(_, t)| t)
        .collect();
    let registered: Vec<String> = now.iter().map(|t| t.name.clone()).collect();
    let original_rls: Vec<bool> = now.iter().map(|t| t.rls).collect();
    let original_force: Vec<bool> = now.iter().map(|t| t.force).collect();
    let original_public: Vec<String> = now.iter().map(|t| t.public_privileges.join(",")).collect();
    db.execute(&render(Step::ForgetTables, &[]), &[&target.schema, &names])
        .await
        .doing("updating the installed-table registry")?;
    db.execute(
        &render(Step::RegisterTables, &[]),
        &[
            &target.schema,
            &registered,
            &target.tenant_column,
            &POLICY_NAME,
            &original_rls,
            &original_force,
            &original_public,
        ],
    )
    .await
    .doing("updating the installed-table registry")?;
    let changes = changes as i32;
    let reach = crate::inspect::read_reach(db, target).await?;
    let reach_json = serde_json::to_string(&reach)?;
    let logging: Option<String> = snap.break_glass_logging().map(|l| l.to_string());
    // What apply found of others' policies: kept ones, so drift can tell them
    // from ones that appear later; replaced ones, so uninstall recreates them.
    let existing = serde_json::to_string(&plan.existing_policies)?;
    db.execute(
        &render(
            Step::RecordHistory,
            &[
                ("registry_checksum", crate::inspect::REGISTRY_CHECKSUM),
                ("registry_digest", crate::inspect::REGISTRY_DIGEST),
            ],
        ),
        &[
            &BUNDLE_VERSION,
            &checksum,
            &target.schema,
            &names,
            &target.tenant_column,
            &target.tenant_setting,
            &target.app_role,
            &target.admin_role,
            &changes,
            &reach_json,
            &logging,
            &existing,
        ],
    )
    .await
    .doing("recording the bundle history")?;
    Ok(reach)
}

/// Whether the recorded reach set names the same roles, with the same LOGIN,
/// as the live one (paths and reasons may differ without anyone gaining reach).
pub(crate) fn same_reach(recorded: &Option<Vec<Reacher>>, live: &[Reacher]) -> bool {
    let key = |r: &Reacher| (r.role.clone(), r.login);
    let Some(recorded) = recorded else {
        return false;
    };
    let a: HashSet<_> = recorded.iter().map(key).collect();
    let b: HashSet<_> = live.iter().map(key).collect();
    a == b
}

/// SHA-256 of the bundle as rendered for this database (every step, passwords
/// left out), so history shows when what was installed changed.
fn checksum(target: &Target, snap: &Snapshot, modes: &[Mode]) -> String {
    use sha2::{Digest, Sha256};
    let mut fresh = snap.clone();
    fresh.app = Default::default();
    fresh.admin = Default::default();
    fresh.bundle = Default::default();
    fresh.policies = Vec::new();
    fresh.losing_readers = Vec::new();
    for t in &mut fresh.tables {
        t.rls = false;
        t.force = false;
        t.public_privileges = vec!["SELECT".into()];
        t.app_privileges = vec![];
        t.admin_privileges = vec![];
        for s in &mut t.sequences {
            s.app_usage = false;
        }
    }
    let fresh = fresh.reindexed();
    let plan = plan::build(target, &fresh, &RoleInputs::default(), modes, false);
    let mut hasher = Sha256::new();
    hasher.update(BUNDLE_VERSION.as_bytes());
    for statement in plan.statements() {
        hasher.update(statement.shown.as_bytes());
        hasher.update(b";\n");
    }
    hex::encode(hasher.finalize())
}

/// Who holds locks on the tenant tables or the apply lock (the failed
/// attempt's transaction is rolled back before this reads: see [`crate::pg::Transaction`]).
async fn blockers(db: &Db, target: &Target) -> Vec<String> {
    crate::inspect::installed::lock_holders(db, target, APPLY_LOCK_KEY).await
}
