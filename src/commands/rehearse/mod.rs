//! `rlsctl rehearse`: the whole cutover on a throwaway PostgreSQL (or a staging
//! restore), step by step, calling the same code as the commands.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use serde::Serialize;
use serde_json::json;

use crate::cli::{Format, RehearseArgs, RehearseStep as Step};
use crate::cutover::apply::{self, Options};
use crate::cutover::rollback::{self, RollbackAction};
use crate::model::checks::{Status as CheckStatus, DRF003};
use crate::model::config::Target;
use crate::model::plan::{Enforcement, RoleInputs};
use crate::model::report::Report;
use crate::model::secret::Secret;
use crate::model::sql::{DEMO_SCHEMA, DEMO_SEED};
use crate::pg::{self, Db, DbResultExt};

/// The sample database's name (the runbook's).
const DEMO_DATABASE: &str = "edgarautoshop";
use super::Verdict;

mod venue;
use crate::pg::until_interrupted;
use venue::{existing_database, inject_fault, keep, throwaway, Venue};

use super::{monitor::monitor, verify::verify};

/// The tenants of the sample data that verify probes with.
const DEMO_TENANTS: [&str; 2] = ["edgar-downtown", "edgar-airport"];

/// The steps, in order.
const STEPS: [Step; 14] = [
    Step::DryRun,
    Step::Shadow,
    Step::ShadowTraffic,
    Step::ShadowReport,
    Step::EnforceClean,
    Step::JobFixed,
    Step::EnforceLast,
    Step::Apply,
    Step::Verify,
    Step::Monitor,
    Step::Rollback,
    Step::MonitorBreakGlass,
    Step::Restore,
    Step::VerifyAgain,
];

impl Step {
    /// What the step runs, as shown.
    fn name(self) -> &'static str {
        match self {
            Step::DryRun => "apply --dry-run (the plan)",
            Step::Shadow => "apply --shadow (nothing narrowed yet)",
            Step::ShadowTraffic => "a report job reads customers without a tenant",
            Step::ShadowReport => "shadow report (names the report job)",
            Step::EnforceClean => "apply --enforce-clean (customers stays in shadow)",
            Step::JobFixed => "the report job sets its tenant and filters by it",
            Step::EnforceLast => "apply --enforce-clean (customers enforced too)",
            Step::Apply => "apply (enforces)",
            Step::Verify => "verify as the app role with two tenants",
            Step::Monitor => "monitor (clean)",
            Step::Rollback => "rollback --table customers --reason rehearsal",
            Step::MonitorBreakGlass => "monitor (reports break-glass, as expected)",
            Step::Restore => "rollback --restore",
            Step::VerifyAgain => "verify again",
        }
    }

    /// Steps that read the server log: only on the throwaway cluster, whose
    /// log is a file here.
    fn shadow(self) -> bool {
        matches!(
            self,
            Step::Shadow
                | Step::ShadowTraffic
                | Step::ShadowReport
                | Step::EnforceClean
                | Step::JobFixed
                | Step::EnforceLast
        )
    }

    /// Steps that need `--with-rollback` against an existing database.
    fn rolls_back(self) -> bool {
        matches!(
            self,
            Step::Rollback | Step::MonitorBreakGlass | Step::Restore
        )
    }
}

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum StepStatus {
    Pass,
    Fail,
    Skip,
}

/// One step's outcome.
#[derive(Debug, Serialize)]
struct StepResult {
    id: Step,
    name: &'static str,
    status: StepStatus,
    ms: u128,
    detail: String,
}

/// Runs `rehearse`.
pub(crate) async fn run(args: RehearseArgs) -> Result<Verdict> {
    until_interrupted(rehearse(args)).await
}

async fn rehearse(args: RehearseArgs) -> Result<Verdict> {
    let target = super::target_from(&args.target)?;
    let app_password = Secret::new(crate::model::secret::random_hex(16));
    let venue = match &args.database_url {
        Some(url) => existing_database(url, &args, &target).await?,
        None => throwaway(&target, &app_password, args.superuser)?,
    };
    crate::say!("rlsctl rehearse: {}", venue.description);
    let admin_db = open_and_seed(&venue).await?;
    let mut rehearsal = Rehearsal {
        log: venue.sandbox.as_ref().map(|s| s.dir().join("server.log")),
        target,
        venue,
        admin_db,
        app_password,
        admin_password: Secret::new(crate::model::secret::random_hex(16)),
    };
    let results = rehearsal.run_steps(&args).await?;
    rehearsal.finish(&args, &results)
}

/// Opens the operator's connection; on a throwaway cluster, loads the sample.
async fn open_and_seed(venue: &Venue) -> Result<Db> {
    if let Some(sandbox) = &venue.sandbox {
        sandbox.create_database(DEMO_DATABASE).await?;
    }
    let admin_db = pg::connect(&venue.admin).await?;
    if venue.sandbox.is_some() {
        admin_db
            .simple(DEMO_SCHEMA)
            .await
            .doing("loading sql/demo/schema.sql")?;
        admin_db
            .simple(DEMO_SEED)
            .await
            .doing("loading sql/demo/seed.sql")?;
    }
    Ok(admin_db)
}

/// What every step works with.
struct Rehearsal {
    target: Target,
    venue: Venue,
    /// The operator's connection.
    admin_db: Db,
    /// The throwaway cluster's server log (an existing database's is not here).
    log: Option<std::path::PathBuf>,
    app_password: Secret,
    admin_password: Secret,
}

impl Rehearsal {
    /// Runs the steps in order; after a failure the rest are skipped.
    async fn run_steps(&self, args: &RehearseArgs) -> Result<Vec<StepResult>> {
        let mut results: Vec<StepResult> = Vec::new();
        let mut failed = false;
        for id in STEPS {
            let name = id.name();
            if let Some(detail) = self.skip_reason(id, failed) {
                results.push(StepResult {
                    id,
                    name,
                    status: StepStatus::Skip,
                    ms: 0,
                    detail: detail.into(),
                });
                continue;
            }
            if args.pause_before == Some(id) {
                self.pause(name).await?;
            }
            if args.inject_fault == Some(id) {
                inject_fault(&self.admin_db, &self.target, id).await?;
            }
            let spinner = crate::logging::spinner(name);
            let started = Instant::now();
            let outcome = self.step(id).await;
            if let Some(spinner) = spinner {
                spinner.finish_and_clear();
            }
            let ms = started.elapsed().as_millis();
            let (status, detail) = match outcome {
                Ok(detail) => (StepStatus::Pass, detail),
                Err(err) => {
                    failed = true;
                    (StepStatus::Fail, format!("{err:#}"))
                }
            };
            if args.format == Format::Text {
                super::print(&step_line(results.len() + 1, name, status, ms, &detail));
            }
            results.push(StepResult {
                id,
                name,
                status,
                ms,
                detail,
            });
        }
        Ok(results)
    }

    /// Why step `id` does not run, if it does not.
    fn skip_reason(&self, id: Step, failed: bool) -> Option<&'static str> {
        if failed {
            Some("not run: an earlier step failed")
        } else if id.rolls_back() && !self.venue.with_rollback {
            Some("not run: pass --with-rollback")
        } else if id.shadow() && self.log.is_none() {
            Some("not run: an existing database's log is not a file here (run apply --shadow and shadow report against it yourself)")
        } else {
            None
        }
    }

    /// `--pause-before`: waits for Enter.
    async fn pause(&self, name: &str) -> Result<()> {
        crate::say!(
            "paused before \"{name}\": the database is {}; press Enter to go on",
            self.venue.description
        );
        let mut line = String::new();
        tokio::io::AsyncBufReadExt::read_line(
            &mut tokio::io::BufReader::new(tokio::io::stdin()),
            &mut line,
        )
        .await?;
        Ok(())
    }

    /// Runs one step; its one-line result.
    async fn step(&self, id: Step) -> Result<String> {
        let (target, venue) = (&self.target, &self.venue);
        match id {
            Step::DryRun | Step::Shadow | Step::Apply => self.apply(id).await,
            Step::ShadowTraffic => self.shadow_traffic().await,
            Step::ShadowReport => self.shadow_report(),
            Step::EnforceClean | Step::EnforceLast => self.enforce_clean(id).await,
            Step::JobFixed => self.job_fixed().await,
            Step::Verify | Step::VerifyAgain => {
                let app_db = pg::connect(&venue.app).await?;
                expect_clean(&verify(&app_db, target, &venue.tenants, None).await?)
            }
            Step::Monitor => {
                let app_db = pg::connect(&venue.app).await?;
                expect_clean(&monitor(&app_db, target).await?)
            }
            Step::Rollback => {
                let first = target.tables.first().cloned().unwrap_or_default();
                let action = RollbackAction::Disable(vec![first]);
                let done =
                    rollback::run(&self.admin_db, target, &action, Some("rehearsal")).await?;
                Ok(format!(
                    "RLS disabled on {} with an audit record",
                    done.tables.join(", ")
                ))
            }
            Step::MonitorBreakGlass => self.monitor_break_glass().await,
            Step::Restore => {
                let done =
                    rollback::run(&self.admin_db, target, &RollbackAction::Restore, None).await?;
                if done.tables.is_empty() {
                    bail!("nothing was restored");
                }
                Ok(format!(
                    "RLS enabled and forced again on {}",
                    done.tables.join(", ")
                ))
            }
        }
    }

    /// apply's options for a step.
    fn apply_options(&self, id: Step) -> Options {
        Options {
            dry_run: id == Step::DryRun,
            lock_timeout: Duration::from_secs(5),
            lock_retries: 3,
            roles: RoleInputs {
                app_password: self.venue.app.password.clone(),
                admin_password: Some(self.admin_password.clone()),
                rotate_passwords: false,
                admin_bypassrls: false,
                app_iam: false,
            },
            no_app_password: false,
            batch_size: None,
            enforcement: if id == Step::Shadow {
                Enforcement::Shadow
            } else {
                Enforcement::All
            },
            replace_policies: false,
            judge_existing: true,
            accepted: Default::default(),
            to_shadow_reason: None,
        }
    }

    /// apply --dry-run, apply --shadow, apply.
    async fn apply(&self, id: Step) -> Result<String> {
        let (options, target) = (self.apply_options(id), &self.target);
        let dry_run = options.dry_run;
        let admin_db = &self.admin_db;
        let outcome = apply::apply(admin_db, target, &options).await?;
        if outcome.refused() {
            bail!(
                "the pre-flight refused: {}",
                outcome
                    .preflight
                    .problems()
                    .filter(|f| f.status == crate::model::checks::Status::Fail)
                    .map(|f| f.detail.as_str())
                    .collect::<Vec<_>>()
                    .join("; ")
            );
        }
        match (dry_run, outcome.plan.changes()) {
            (true, n) => Ok(format!(
                "{n} object(s) to create or change; nothing changed"
            )),
            (_, n) if outcome.applied => Ok(format!(
                "{n} object(s) created or changed in one transaction ({} ms)",
                outcome.transaction_ms
            )),
            _ => Ok("already up to date".into()),
        }
    }

    /// A report job reads a tenant table without a tenant, as shadow mode allows.
    async fn shadow_traffic(&self) -> Result<String> {
        let (target, venue) = (&self.target, &self.venue);
        let table = target.tables.first().cloned().unwrap_or_default();
        let sql = format!(
            "SELECT count(*) FROM {} /* rehearsal: nightly report, no tenant */",
            crate::model::sql::qualified(&target.schema, &table)
        );
        let app_db = pg::connect(&venue.app).await?;
        let seen: i64 = app_db
            .query_one(&sql, &[])
            .await
            .doing("the report job")?
            .try_get(0)?;
        if seen == 0 {
            bail!("the report job saw no row of {table}: shadow mode narrowed it");
        }
        Ok(format!(
            "it saw all {seen} rows of {table}: shadow mode narrows nothing"
        ))
    }

    /// shadow report names the report job.
    fn shadow_report(&self) -> Result<String> {
        let log = &self.log;
        let paths = log.iter().cloned().collect::<Vec<_>>();
        // The sandbox logs with PostgreSQL's default prefix.
        let (found, _) =
            crate::logs::files::read(&paths, crate::model::log::POSTGRES_DEFAULT_PREFIX, None)?;
        let summary = crate::model::shadow::Summary::of_found(found);
        let named = summary.tables.iter().find_map(|t| {
            t.queries
                .iter()
                .find(|q| q.query.contains("nightly report") && q.tenants.contains("no tenant"))
                .map(|q| format!("{}: {} ({}x, no tenant)", t.table, q.query, q.count))
        });
        match named {
            Some(line) => Ok(format!("named the query enforcement would empty: {line}")),
            None => bail!(
                "the report does not name the report job ({} record(s))",
                summary.records
            ),
        }
    }

    /// apply --enforce-clean, the window reaching back to the report job's
    /// first record (it holds the job's reads) or, once the job is fixed, to
    /// just after its last one (it holds none, unless the fixed job left
    /// records too: then the step fails, as it should).
    async fn enforce_clean(&self, id: Step) -> Result<String> {
        use crate::model::log::time;
        use crate::model::shadow::Since;
        let paths = self.log.iter().cloned().collect::<Vec<_>>();
        let (found, source) =
            crate::logs::files::read(&paths, crate::model::log::POSTGRES_DEFAULT_PREFIX, None)?;
        let job: Vec<i64> = found
            .records
            .iter()
            .filter(|r| r.query.contains("nightly report, no tenant"))
            .filter_map(|r| time::epoch_millis(&r.at))
            .collect();
        let cutoff = match id {
            Step::EnforceClean => job.iter().min().copied(),
            _ => job.iter().max().map(|last| last + 1),
        }
        .ok_or_else(|| anyhow::anyhow!("the log holds no record of the report job"))?;
        let back = format!("{}ms", crate::commands::clock::now_ms() - cutoff);
        let mut options = self.apply_options(id);
        options.enforcement = Enforcement::Clean(Since::from_log(
            &found,
            &source,
            cutoff,
            &back,
            crate::commands::clock::now_ms(),
            None,
        )?);
        let outcome = apply::apply(&self.admin_db, &self.target, &options).await?;
        let (shadow, enforced): (Vec<_>, Vec<_>) = outcome
            .plan
            .items
            .iter()
            .filter_map(|i| {
                i.mode
                    .map(|m| (i.object.trim_start_matches("table "), m.after))
            })
            .partition(|(_, mode)| *mode == crate::model::snapshot::TableMode::Shadow);
        let first = self.target.display_table(
            self.target
                .tables
                .first()
                .map(String::as_str)
                .unwrap_or_default(),
        );
        let names =
            |list: &[(&str, _)]| list.iter().map(|(t, _)| *t).collect::<Vec<_>>().join(", ");
        let expected = match id {
            Step::EnforceClean => shadow.len() == 1 && shadow[0].0 == first,
            _ => shadow.is_empty(),
        };
        if !expected {
            bail!(
                "expected {} in shadow mode, found: {}",
                if id == Step::EnforceClean {
                    first.as_str()
                } else {
                    "no table"
                },
                names(&shadow)
            );
        }
        Ok(match id {
            Step::EnforceClean => format!(
                "enforced {}; {first} stays in shadow (the job read it)",
                names(&enforced)
            ),
            _ => format!("{first} enforced: no record since the job was fixed"),
        })
    }

    /// The report job, fixed: it sets its tenant and asks for that tenant's
    /// rows, so enforcement hides nothing it reads and shadow mode records
    /// nothing (a statement that left the filtering to RLS would be recorded
    /// as narrowed).
    async fn job_fixed(&self) -> Result<String> {
        let (target, venue) = (&self.target, &self.venue);
        let table = target.tables.first().cloned().unwrap_or_default();
        let tenant = venue.tenants.first().cloned().unwrap_or_default();
        let app_db = pg::connect(&venue.app).await?;
        let tx = app_db
            .begin(pg::Begin::Plain)
            .await
            .doing("the fixed report job")?;
        pg::tenant::set_local(&tx, &target.tenant_setting, &tenant)
            .await
            .doing("setting the tenant")?;
        let sql = format!(
            "SELECT count(*) FROM {} WHERE {}::text = $1 /* rehearsal: nightly report, per tenant */",
            crate::model::sql::qualified(&target.schema, &table),
            crate::model::sql::quote_ident(&target.tenant_column)
        );
        let seen: i64 = tx
            .query_one(&sql, &[&tenant])
            .await
            .doing("the fixed report job")?
            .try_get(0)?;
        tx.commit().await.doing("the fixed report job")?;
        Ok(format!(
            "it read {seen} rows of {table} for tenant {tenant}"
        ))
    }

    /// monitor reports the open break-glass entry.
    async fn monitor_break_glass(&self) -> Result<String> {
        let (target, venue) = (&self.target, &self.venue);
        let app_db = pg::connect(&venue.app).await?;
        let report = monitor(&app_db, target).await?;
        let break_glass = report
            .checks
            .iter()
            .find(|c| c.id == DRF003.id && c.status == CheckStatus::Fail);
        match break_glass {
            Some(finding) => Ok(format!("drift reported as expected: {}", finding.detail)),
            None => bail!("monitor did not report the active break-glass"),
        }
    }

    /// Prints the summary (and, with --keep, the environment of the kept
    /// cluster); the verdict.
    fn finish(&mut self, args: &RehearseArgs, results: &[StepResult]) -> Result<Verdict> {
        let (target, venue) = (&self.target, &mut self.venue);
        let (app_password, admin_password) = (&self.app_password, &self.admin_password);
        let passed = results
            .iter()
            .filter(|r| r.status == StepStatus::Pass)
            .count();
        let failed_step = results
            .iter()
            .find(|r| r.status == StepStatus::Fail)
            .map(|r| r.name);
        let sandbox_dir = venue
            .sandbox
            .as_ref()
            .map(|s| s.dir().display().to_string());
        let keep_env = if args.keep {
            venue
                .sandbox
                .take()
                .map(|s| keep(s, target, app_password, admin_password))
                .transpose()?
        } else {
            None
        };
        match args.format {
            Format::Json => super::print(&serde_json::to_string_pretty(&json!({
                "command": "rehearse",
                "where": venue.description,
                "sandbox_dir": sandbox_dir,
                "kept": keep_env.is_some(),
                "steps": results,
                "summary": {"passed": passed, "failed": usize::from(failed_step.is_some()), "skipped": results.len() - passed - usize::from(failed_step.is_some())},
            }))?),
            Format::Text => {
                super::print(&match failed_step {
                    None => format!(
                        "\nAll {passed} steps passed: the cutover works on this database.\n"
                    ),
                    Some(step) => {
                        format!("\nThe rehearsal FAILED at step \"{step}\"; later steps were not run.\n")
                    }
                })
            }
        }
        if let Some(env) = keep_env {
            super::print(&env);
        }
        Ok(if failed_step.is_some() {
            Verdict::Problems
        } else {
            Verdict::Clean
        })
    }
}

fn expect_clean(report: &Report) -> Result<String> {
    let s = report.summary;
    if report.clean(false) {
        Ok(format!(
            "{} passed, {} warnings, {} skipped",
            s.passed, s.warnings, s.skipped
        ))
    } else {
        let failed: Vec<String> = report
            .checks
            .iter()
            .filter(|c| c.status == CheckStatus::Fail)
            .map(|c| format!("{} {}", c.id, c.object.clone().unwrap_or_default()))
            .collect();
        bail!("{} check(s) failed: {}", s.failed, failed.join(", "))
    }
}

fn step_line(n: usize, name: &str, status: StepStatus, ms: u128, detail: &str) -> String {
    let mark = match status {
        StepStatus::Pass => "ok  ",
        StepStatus::Fail => "FAIL",
        StepStatus::Skip => "skip",
    };
    format!("{mark} {n}. {name:<48} {ms:>6} ms  {detail}")
}
