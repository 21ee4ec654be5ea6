//! `rlsctl rehearse`: the whole cutover on a throwaway PostgreSQL (or a staging
//! restore), step by step, calling the same code as the commands.

use std::fmt::Write as _;
use std::io::Write as _;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use serde::Serialize;
use serde_json::json;

use crate::aws::AwsSettings;
use crate::cli::{Format, RehearseArgs, RehearseStep as Step};
use crate::model::checks::Status as CheckStatus;
use crate::model::config::Target;
use crate::model::plan::{Mode, RoleInputs};
use crate::model::report::Report;
use crate::model::secret::Secret;
use crate::model::sql::quote_ident;
use crate::model::sql::{DEMO_SCHEMA, DEMO_SEED};
use crate::pg::apply::{self, Options};
use crate::pg::rollback::{self, Action};
use crate::pg::sandbox::{Sandbox, Shape};
use crate::pg::{self, ConnectOptions, Db, DbResultExt};

/// The sample database's name (the runbook's).
const DEMO_DATABASE: &str = "edgarautoshop";
use super::Verdict;
use crate::pg::until_interrupted;

use super::{monitor::monitor, verify::verify};

/// The tenants of the sample data that verify probes with.
const DEMO_TENANTS: [&str; 2] = ["edgar-downtown", "edgar-airport"];

/// The steps, in order.
const STEPS: [Step; 11] = [
    Step::DryRun,
    Step::Shadow,
    Step::ShadowTraffic,
    Step::ShadowReport,
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
            Step::Shadow | Step::ShadowTraffic | Step::ShadowReport
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

/// Where the rehearsal runs.
struct Stage {
    admin: ConnectOptions,
    app: ConnectOptions,
    description: String,
    tenants: Vec<String>,
    with_rollback: bool,
    sandbox: Option<Sandbox>,
}

/// Runs `rehearse`.
pub(crate) async fn run(args: RehearseArgs) -> Result<Verdict> {
    until_interrupted(rehearse(args)).await
}

async fn rehearse(args: RehearseArgs) -> Result<Verdict> {
    let target = super::target_from(&args.target)?;
    let app_password = Secret::new(crate::model::secret::random_hex(16));
    let mut stage = match &args.database_url {
        Some(url) => existing_database(url, &args, &target).await?,
        None => throwaway(&target, &app_password, args.superuser)?,
    };
    crate::say!("rlsctl rehearse: {}", stage.description);

    if let Some(sandbox) = &stage.sandbox {
        sandbox.create_database(DEMO_DATABASE).await?;
    }
    let admin_db = pg::connect(&stage.admin).await?;
    if stage.sandbox.is_some() {
        admin_db
            .simple(DEMO_SCHEMA)
            .await
            .doing("loading sql/demo/schema.sql")?;
        admin_db
            .simple(DEMO_SEED)
            .await
            .doing("loading sql/demo/seed.sql")?;
    }
    let admin_password = Secret::new(crate::model::secret::random_hex(16));
    let app_secret = stage.app.password.clone();
    let roles = || RoleInputs {
        app_password: app_secret.clone(),
        admin_password: Some(admin_password.clone()),
        rotate_passwords: false,
        admin_bypassrls: false,
    };
    let apply_options = |dry_run: bool| Options {
        dry_run,
        lock_timeout: Duration::from_secs(5),
        lock_retries: 3,
        roles: roles(),
        no_app_password: false,
        batch_size: None,
        mode: Mode::Enforce,
    };

    let mut results: Vec<StepResult> = Vec::new();
    let mut failed = false;
    for id in STEPS {
        let name = id.name();
        let log = stage.sandbox.as_ref().map(|s| s.dir().join("server.log"));
        if failed || (id.rolls_back() && !stage.with_rollback) || (id.shadow() && log.is_none()) {
            let detail = if failed {
                "not run: an earlier step failed"
            } else if id.shadow() {
                "not run: an existing database's log is not a file here (run apply --shadow and shadow report against it yourself)"
            } else {
                "not run: pass --with-rollback"
            };
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
            crate::say!(
                "paused before \"{name}\": the database is {}; press Enter to go on",
                stage.description
            );
            let mut line = String::new();
            tokio::io::AsyncBufReadExt::read_line(
                &mut tokio::io::BufReader::new(tokio::io::stdin()),
                &mut line,
            )
            .await?;
        }
        if args.inject_fault == Some(id) {
            inject_fault(&admin_db, &target, id).await?;
        }
        let spinner = crate::logging::spinner(name);
        let started = Instant::now();
        let outcome: Result<String> = async {
            match id {
                Step::DryRun | Step::Shadow | Step::Apply => {
                    let dry_run = id == Step::DryRun;
                    let options = Options {
                        mode: if id == Step::Shadow {
                            Mode::Shadow
                        } else {
                            Mode::Enforce
                        },
                        ..apply_options(dry_run)
                    };
                    let outcome = apply::apply(&admin_db, &target, &options).await?;
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
                Step::ShadowTraffic => {
                    let table = target.tables.first().cloned().unwrap_or_default();
                    let sql = format!(
                        "SELECT count(*) FROM {} /* rehearsal: nightly report, no tenant */",
                        crate::model::sql::qualified(&target.schema, &table)
                    );
                    let app_db = pg::connect(&stage.app).await?;
                    let seen: i64 = app_db
                        .query_one(&sql, &[])
                        .await
                        .doing("the report job")?
                        .get(0);
                    if seen == 0 {
                        bail!("the report job saw no row of {table}: shadow mode narrowed it");
                    }
                    Ok(format!(
                        "it saw all {seen} rows of {table}: shadow mode narrows nothing"
                    ))
                }
                Step::ShadowReport => {
                    let paths = log.iter().cloned().collect::<Vec<_>>();
                    // The sandbox logs with PostgreSQL's default prefix.
                    let (found, _) = super::shadow::from_files(
                        &paths,
                        crate::model::shadow::log::POSTGRES_DEFAULT_PREFIX,
                    )?;
                    let summary = crate::model::shadow::Summary::of_found(found);
                    let named = summary.tables.iter().find_map(|t| {
                        t.queries
                            .iter()
                            .find(|q| {
                                q.query.contains("nightly report")
                                    && q.tenants.contains("no tenant")
                            })
                            .map(|q| format!("{}: {} ({}x, no tenant)", t.table, q.query, q.count))
                    });
                    match named {
                        Some(line) => {
                            Ok(format!("named the query enforcement would empty: {line}"))
                        }
                        None => bail!(
                            "the report does not name the report job ({} record(s))",
                            summary.records
                        ),
                    }
                }
                Step::Verify | Step::VerifyAgain => {
                    let app_db = pg::connect(&stage.app).await?;
                    let report = verify(&app_db, &target, &stage.tenants, None).await?;
                    expect_clean(&report)
                }
                Step::Monitor => {
                    let app_db = pg::connect(&stage.app).await?;
                    expect_clean(&monitor(&app_db, &target).await?)
                }
                Step::Rollback => {
                    let first = target.tables.first().cloned().unwrap_or_default();
                    let done = rollback::run(
                        &admin_db,
                        &target,
                        &Action::Disable(vec![first]),
                        Some("rehearsal"),
                    )
                    .await?;
                    Ok(format!(
                        "RLS disabled on {} with an audit record",
                        done.tables.join(", ")
                    ))
                }
                Step::MonitorBreakGlass => {
                    let app_db = pg::connect(&stage.app).await?;
                    let report = monitor(&app_db, &target).await?;
                    let break_glass = report
                        .checks
                        .iter()
                        .find(|c| c.id == "DRF003" && c.status == CheckStatus::Fail);
                    match break_glass {
                        Some(finding) => {
                            Ok(format!("drift reported as expected: {}", finding.detail))
                        }
                        None => bail!("monitor did not report the active break-glass"),
                    }
                }
                Step::Restore => {
                    let done = rollback::run(&admin_db, &target, &Action::Restore, None).await?;
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
        .await;
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
    drop(admin_db);

    let passed = results
        .iter()
        .filter(|r| r.status == StepStatus::Pass)
        .count();
    let failed_step = results
        .iter()
        .find(|r| r.status == StepStatus::Fail)
        .map(|r| r.name);
    let sandbox_dir = stage
        .sandbox
        .as_ref()
        .map(|s| s.dir().display().to_string());
    let keep_env = if args.keep {
        stage
            .sandbox
            .take()
            .map(|s| keep(s, &target, &app_password, &admin_password))
            .transpose()?
    } else {
        None
    };
    match args.format {
        Format::Json => super::print(&serde_json::to_string_pretty(&json!({
            "command": "rehearse",
            "where": stage.description,
            "sandbox_dir": sandbox_dir,
            "kept": keep_env.is_some(),
            "steps": results,
            "summary": {"passed": passed, "failed": usize::from(failed_step.is_some()), "skipped": results.len() - passed - usize::from(failed_step.is_some())},
        }))?),
        Format::Text => super::print(&match failed_step {
            None => format!("\nAll {passed} steps passed: the cutover works on this database.\n"),
            Some(step) => {
                format!("\nThe rehearsal FAILED at step \"{step}\"; later steps were not run.\n")
            }
        }),
    }
    if let Some(env) = keep_env {
        super::print(&env);
    }
    drop(stage);
    Ok(if failed_step.is_some() {
        Verdict::Problems
    } else {
        Verdict::Clean
    })
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

/// A throwaway cluster with the sample schema; the app role's password is generated.
fn throwaway(target: &Target, app_password: &Secret, superuser: bool) -> Result<Stage> {
    let shape = if superuser {
        Shape::Superuser
    } else {
        Shape::RdsMaster
    };
    let sandbox = Sandbox::start(&pg::sandbox::Options {
        shape,
        ..Default::default()
    })?;
    let admin = sandbox.operator_options(DEMO_DATABASE);
    let app = sandbox.connect_options(DEMO_DATABASE, &target.app_role, app_password);
    let who = match shape {
        Shape::RdsMaster => format!(
            "applied as the RDS-shaped master {} (NOSUPERUSER CREATEDB CREATEROLE, member of rds_superuser; --superuser for a real superuser)",
            pg::sandbox::OPERATOR
        ),
        Shape::Superuser => format!("applied as the superuser {}", pg::sandbox::OPERATOR),
    };
    let description = format!(
        "throwaway PostgreSQL on 127.0.0.1:{} in {}, {who}",
        sandbox.port,
        sandbox.dir().display()
    );
    Ok(Stage {
        admin,
        app,
        description,
        tenants: DEMO_TENANTS.iter().map(|s| s.to_string()).collect(),
        with_rollback: true,
        sandbox: Some(sandbox),
    })
}

async fn existing_database(url: &str, args: &RehearseArgs, target: &Target) -> Result<Stage> {
    let config: tokio_postgres::Config = url
        .parse()
        .map_err(|e| anyhow!("--database-url is not a PostgreSQL URL: {e}"))?;
    if config.get_password().is_some() {
        bail!("--database-url must not contain a password (it would show in the process list): use PGPASSWORD or ~/.pgpass");
    }
    let host = match config.get_hosts().first() {
        Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
        _ => "127.0.0.1".into(),
    };
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let dbname = config.get_dbname().unwrap_or("edgarautoshop").to_string();
    let user = config.get_user().unwrap_or("postgres").to_string();
    let source = args
        .app_password_from
        .clone()
        .context("--database-url needs --app-password-from: apply sets it on a new app role and verify logs in with it")?;
    let app_password = source
        .read("password for the app role", &AwsSettings::default())
        .await?;
    let base = ConnectOptions {
        allow_prompt: true,
        ..ConnectOptions::new(&host, port, &dbname, &user)
    };
    let app = ConnectOptions {
        user: target.app_role.clone(),
        password: Some(app_password),
        ..base.clone()
    };
    Ok(Stage {
        admin: base,
        app,
        description: format!("existing database {dbname} on {host}:{port} as {user}"),
        tenants: Vec::new(),
        with_rollback: args.with_rollback,
        sandbox: None,
    })
}

/// Breaks the database in a way the step should catch.
async fn inject_fault(admin: &Db, target: &Target, step: Step) -> Result<()> {
    let table = crate::model::sql::qualified(
        &target.schema,
        target
            .tables
            .first()
            .map(String::as_str)
            .unwrap_or("customers"),
    );
    let sql = match step {
        Step::DryRun | Step::Shadow | Step::Apply => format!("ALTER TABLE {table} RENAME TO {}", quote_ident("rehearsal_fault")),
        // The isolation policy narrows again behind shadow mode's back.
        Step::ShadowTraffic => format!(
            "ALTER POLICY {} ON {table} USING (false)",
            quote_ident(crate::model::config::POLICY_NAME)
        ),
        // The records are in the log already: nothing in the database can break the report.
        Step::ShadowReport => bail!("--inject-fault has no fault for the shadow report step"),
        Step::Verify | Step::VerifyAgain => format!("CREATE POLICY rehearsal_fault ON {table} FOR SELECT TO PUBLIC USING (true)"),
        Step::Monitor => format!("ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY"),
        Step::Rollback => "ALTER TABLE rlsctl.break_glass_log ADD CONSTRAINT rehearsal_fault CHECK (false) NOT VALID".into(),
        Step::MonitorBreakGlass => "UPDATE rlsctl.break_glass_log SET ended_at = now() WHERE ended_at IS NULL".into(),
        Step::Restore => "ALTER TABLE rlsctl.break_glass_log ADD CONSTRAINT rehearsal_fault CHECK (ended_at IS NULL) NOT VALID".into(),
    };
    tracing::warn!(step = ?step, "injecting a fault before this step");
    admin.simple(&sql).await.doing("injecting the fault")?;
    Ok(())
}

/// Leaves the cluster running; returns the shell lines that point rlsctl at it.
fn keep(sandbox: Sandbox, target: &Target, app: &Secret, admin: &Secret) -> Result<String> {
    use std::os::unix::fs::PermissionsExt;
    let pgpass = sandbox.dir().join("pgpass");
    let mut file = std::fs::File::create(&pgpass)?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    let escape = |s: &str| s.replace('\\', "\\\\").replace(':', "\\:");
    for (user, password) in [
        (pg::sandbox::OPERATOR, &sandbox.operator_password),
        (target.app_role.as_str(), app),
        (target.admin_role.as_str(), admin),
    ] {
        writeln!(
            file,
            "127.0.0.1:{}:*:{}:{}",
            sandbox.port,
            escape(user),
            escape(password.expose())
        )?;
    }
    let mut out = String::new();
    writeln!(
        out,
        "\n# The cluster is still running. Point rlsctl at it (passwords are in the pgpass file):"
    )?;
    writeln!(
        out,
        "export PGHOST=127.0.0.1 PGPORT={} PGDATABASE=edgarautoshop PGPASSFILE={}",
        sandbox.port,
        pgpass.display()
    )?;
    writeln!(
        out,
        "# e.g.: rlsctl verify --tenant edgar-downtown --tenant edgar-airport"
    )?;
    writeln!(
        out,
        "# Stop and remove it with:\n# {}",
        sandbox.stop_command()
    )?;
    sandbox.keep();
    Ok(out)
}
