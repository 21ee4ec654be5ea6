//! The one break-and-check harness: on the RDS-shaped master's database, after
//! apply (and `setup`, applied again as the operator would), verify and
//! monitor pass; after `breakage`, each command that runs the check exits 1
//! with the check reporting `status`, read from its JSON. Its pre-flight
//! form, [`refuses`], does the same for apply's checks.
//!
//! The cases here are those no other module breaks: the catalog, probe and
//! drift cases of verify.rs, isolation.rs and monitor.rs go through it too.
//! Left to their modules: SES001 (it needs a pooler: pooler.rs), DRF009 (it
//! needs pgaudit, which only Debian's 15 has here: audit.rs), PRE009 (the
//! lock table: scale.rs) and PRE010 (reach.rs: the RDS master can never set
//! the logging without pgaudit, so it cannot pass first here).

use crate::support::*;
use crate::verify::statuses;

/// One way to break a right database, and the check that must see it.
pub struct Break<'a> {
    /// Statements (as the real superuser) that leave the database right.
    pub setup: &'a [&'a str],
    /// Statements (as the real superuser) that break it.
    pub breakage: &'a [&'a str],
    /// The check id that must report it.
    pub check: &'a str,
    /// `fail`, or `warn` for a warning check (then with `--strict`).
    pub status: &'a str,
    /// More arguments for verify (monitor takes `--strict` only).
    pub verify_args: &'a [&'a str],
    /// An rlsctl command the operator runs as part of the breakage (after the
    /// SQL), e.g. `apply --shadow` or a break-glass rollback; empty for none.
    pub command: &'a [&'a str],
    /// A session (user, password) held open while the commands run after the
    /// breakage, e.g. someone logged in as the break-glass role.
    pub session_as: Option<(&'a str, &'a str)>,
    /// After the breakage, verify connects as the operator (the RDS master),
    /// not as the app role.
    pub verify_as_operator: bool,
    /// The reference app for the app checks: a right one before the breakage,
    /// and this one after it.
    pub app: Option<App<'a>>,
}

/// How the reference app runs after the breakage.
#[derive(Clone, Copy)]
pub struct App<'a> {
    /// Its flags (`--omit-security-headers`, `--broken tenant-in-global`, ...).
    pub flags: &'a [&'a str],
    /// It connects as the operator instead of the app role.
    pub as_operator: bool,
}

impl<'a> Break<'a> {
    /// SQL that breaks the database after `setup`, for a check that fails.
    pub fn of(setup: &'a [&'a str], breakage: &'a [&'a str], check: &'a str) -> Self {
        Self {
            setup,
            breakage,
            check,
            status: "fail",
            verify_args: &[],
            command: &[],
            session_as: None,
            verify_as_operator: false,
            app: None,
        }
    }

    /// Which commands run the check: probes and app checks only verify, drift
    /// checks only monitor, catalog checks (and SES001) both.
    fn commands(&self) -> &'static [&'static str] {
        let id = self.check;
        if id.starts_with("PRB") || id == "PRF002" || id.starts_with("APP") || id == "ROLE001" {
            &["verify"]
        } else if id.starts_with("DRF") {
            &["monitor"]
        } else {
            &["verify", "monitor"]
        }
    }

    /// Runs `command` as the app role (or, after the breakage, as the case
    /// says), JSON out; `app_url`: the reference app's, for verify.
    async fn run(
        &self,
        t: &TestDb,
        command: &str,
        after: bool,
        app_url: Option<&str>,
    ) -> (Run, serde_json::Value) {
        let strict = self.status == "warn";
        let mut args = vec![command, "--format", "json"];
        if command == "verify" {
            args.extend(["--tenant", TENANTS[0], "--tenant", TENANTS[1]]);
            args.extend_from_slice(self.verify_args);
            if let Some(url) = app_url {
                args.extend(["--app-url", url]);
            }
        }
        if strict {
            args.push("--strict");
        }
        let as_operator = [("PGUSER", "postgres")];
        let env: &[(&str, &str)] = if after && self.verify_as_operator {
            &as_operator
        } else {
            &AS_APP
        };
        let run = t.run_env(&args, env).await;
        let doc = run.json();
        (run, doc)
    }
}

/// Passes before, breaks, and sees the check fail in every command that runs
/// it; returns the broken database and the last command's JSON.
pub async fn breaks(case: Break<'_>) -> (TestDb, serde_json::Value) {
    let t = TestDb::demo_rds().await;
    t.applied().await;
    for sql in case.setup {
        t.sql(sql).await;
    }
    if !case.setup.is_empty() {
        // The setup may change who reaches every row (a new owner): apply
        // again records that as the baseline, as an operator would.
        t.applied().await;
    }
    let right_app = match case.app {
        Some(_) => Some(crate::app::start_on(t.sandbox.port, "app_user", APP_PASSWORD, &[]).await),
        None => None,
    };
    for command in case.commands() {
        let (run, _) = case
            .run(
                &t,
                command,
                false,
                right_app.as_ref().map(|a| a.url.as_str()),
            )
            .await;
        assert_eq!(
            run.code, 0,
            "{command} before the breakage\n{}\n{}",
            run.stdout, run.stderr
        );
    }
    for sql in case.breakage {
        t.sql(sql).await;
    }
    if !case.command.is_empty() {
        t.run(case.command).await.expect(0);
    }
    let _held = match case.session_as {
        Some((user, password)) => Some(t.connect(user, password).await.unwrap()),
        None => None,
    };
    drop(right_app);
    let broken_app = match case.app {
        Some(app) => {
            let operator = t.sandbox.operator_password.expose().to_string();
            let (user, password) = if app.as_operator {
                ("postgres", operator.as_str())
            } else {
                ("app_user", APP_PASSWORD)
            };
            Some(crate::app::start_on(t.sandbox.port, user, password, app.flags).await)
        }
        None => None,
    };
    let mut last = serde_json::Value::Null;
    for command in case.commands() {
        let url = broken_app.as_ref().map(|a| a.url.as_str());
        let (run, doc) = case.run(&t, command, true, url).await;
        assert_eq!(
            run.code, 1,
            "{command} after {:?}\n{}\n{}",
            case.breakage, run.stdout, run.stderr
        );
        let found = statuses(&doc, case.check);
        assert!(
            found.iter().any(|s| s == case.status),
            "{command}: {} reported {found:?} after {:?}\n{}",
            case.check,
            case.breakage,
            run.stdout
        );
        last = doc;
    }
    (t, last)
}

/// The pre-flight form: on a fresh RDS-shaped sample, `apply --dry-run`
/// passes `check`; after `breakage` it reports `status` for it, and a
/// failure refuses the apply (exit 1) with nothing changed.
pub async fn refuses(breakage: &[&str], check: &str, status: &str, args: &[&str]) {
    let t = TestDb::demo_rds().await;
    let mut dry = vec!["--dry-run", "--format", "json"];
    dry.extend_from_slice(args);
    let run = t.apply(&dry).await;
    run.expect(0);
    assert_eq!(
        statuses(&run.json()["preflight"], check),
        ["pass"],
        "{}",
        run.stdout
    );
    for sql in breakage {
        t.sql(sql).await;
    }
    let su = t.superuser().await;
    let before = catalog_snapshot(&su).await;
    let mut real = vec!["--format", "json"];
    real.extend_from_slice(args);
    let run = t.apply(&real).await;
    run.expect(if status == "fail" { 1 } else { 0 });
    let found = statuses(&run.json()["preflight"], check);
    assert!(
        found.iter().any(|s| s == status),
        "{check} reported {found:?} after {breakage:?}\n{}",
        run.stdout
    );
    if status == "fail" {
        assert_eq!(
            catalog_snapshot(&su).await,
            before,
            "a refused apply changed something"
        );
    }
}

/// A harness case for verify and monitor: `check` fails after the SQL and
/// the operator's rlsctl command.
macro_rules! breaks {
    ($($name:ident: $check:literal $status:literal, sql $sql:expr, run $command:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                breaks(Break {
                    status: $status,
                    command: &$command,
                    ..Break::of(&[], &$sql, $check)
                })
                .await;
            }
        )*
    };
}

/// A harness case for apply's pre-flight.
macro_rules! refuses {
    ($($name:ident: $check:literal $status:literal => $sql:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                refuses(&$sql, $check, $status, &[]).await;
            }
        )*
    };
}

const NONE: [&str; 0] = [];

breaks! {
    shadow_mode_fails_rls008: "RLS008" "fail", sql NONE,
        run ["apply", "--shadow", "--app-password-from", "env:APP_PW", "--admin-password-from", "env:ADMIN_PW"];
    a_login_role_that_can_write_the_registry_fails_byp007: "BYP007" "fail",
        sql ["CREATE ROLE etl LOGIN; GRANT USAGE ON SCHEMA rlsctl TO etl; GRANT UPDATE ON rlsctl.tenant_tables TO etl"],
        run NONE;
    the_bundle_removed_fails_drf001: "DRF001" "fail", sql ["DROP SCHEMA rlsctl CASCADE"], run NONE;
    break_glass_open_fails_drf003: "DRF003" "fail", sql NONE,
        run ["rollback", "--table", "customers", "--reason", "INC-1", "--yes"];
    a_registry_row_removed_warns_drf006: "DRF006" "warn",
        sql ["DELETE FROM rlsctl.tenant_tables WHERE table_name = 'customers'"], run NONE;
    an_object_planted_in_the_schema_fails_drf007: "DRF007" "fail",
        sql ["CREATE FUNCTION rlsctl.planted() RETURNS int LANGUAGE sql AS 'SELECT 1'"], run NONE;
    the_registry_edited_fails_drf008: "DRF008" "fail",
        sql ["UPDATE rlsctl.tenant_tables SET original_rls = NOT original_rls WHERE table_name = 'vehicles'"], run NONE;
}

refuses! {
    an_app_role_the_master_cannot_fix_fails_pre001: "PRE001" "fail" => ["CREATE ROLE app_user LOGIN BYPASSRLS"];
    a_missing_table_fails_pre002: "PRE002" "fail" => ["DROP TABLE appointments CASCADE"];
    a_table_owned_out_of_reach_fails_pre003: "PRE003" "fail" =>
        ["CREATE ROLE other_owner NOLOGIN; ALTER TABLE customers OWNER TO other_owner"];
    null_tenant_rows_fail_pre005: "PRE005" "fail" => ["INSERT INTO customers (tenant_id, full_name) VALUES (NULL, 'orphan')"];
    a_missing_tenant_index_warns_pre006: "PRE006" "warn" => ["DROP INDEX appointments_tenant_idx"];
    a_reader_that_loses_its_rows_warns_pre007: "PRE007" "warn" =>
        ["CREATE ROLE backup LOGIN; GRANT SELECT ON customers TO backup"];
    a_planted_schema_fails_pre008: "PRE008" "fail" =>
        ["CREATE ROLE planter NOLOGIN; CREATE SCHEMA rlsctl AUTHORIZATION planter"];
}

/// DRF010: someone is logged in as the break-glass role while monitor runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_as_the_break_glass_role_warns_drf010() {
    breaks(Break {
        status: "warn",
        session_as: Some(("tenant_admin", ADMIN_PASSWORD)),
        ..Break::of(&[], &[], "DRF010")
    })
    .await;
}

/// ROLE001: verify connects as the RDS master instead of the app role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_as_another_role_fails_role001() {
    breaks(Break {
        verify_as_operator: true,
        ..Break::of(&[], &[], "ROLE001")
    })
    .await;
}

/// The app checks: a right reference app passes them, each broken one fails
/// its check.
macro_rules! app_breaks {
    ($($name:ident: $check:literal, as_operator $as_operator:expr, flags $flags:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                breaks(Break {
                    app: Some(App {
                        flags: &$flags,
                        as_operator: $as_operator,
                    }),
                    ..Break::of(&[], &[], $check)
                })
                .await;
            }
        )*
    };
}

app_breaks! {
    an_app_connected_as_the_master_fails_app001: "APP001", as_operator true, flags NONE;
    an_app_that_runs_requests_without_a_tenant_fails_app002: "APP002", as_operator false,
        flags ["--allow-requests-without-tenant"];
    an_app_without_security_headers_fails_app003: "APP003", as_operator false,
        flags ["--omit-security-headers"];
    an_app_that_keeps_the_tenant_in_a_global_fails_app004: "APP004", as_operator false,
        flags ["--broken", "tenant-in-global"];
}

/// PRE004: a new app role without a password (nor IAM authentication asked
/// for) is refused; with one, or with --no-app-password, it passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_app_role_without_a_password_fails_pre004() {
    let t = TestDb::demo_rds().await;
    let run = t
        .run(&[
            "apply",
            "--dry-run",
            "--format",
            "json",
            "--admin-password-from",
            "env:ADMIN_PW",
        ])
        .await;
    run.expect(1);
    assert_eq!(
        statuses(&run.json()["preflight"], "PRE004"),
        ["fail"],
        "{}",
        run.stdout
    );
    for with in [
        &["--app-password-from", "env:APP_PW"][..],
        &["--no-app-password"],
    ] {
        let mut args = vec!["apply", "--dry-run", "--format", "json"];
        args.extend_from_slice(with);
        let run = t.run(&args).await;
        run.expect(0);
        assert_eq!(
            statuses(&run.json()["preflight"], "PRE004"),
            ["pass"],
            "{}",
            run.stdout
        );
    }
}
