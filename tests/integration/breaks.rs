//! The one break-and-check harness: on the RDS-shaped master's database, after
//! apply (and `setup`, applied again as the operator would), verify and
//! monitor pass; after `breakage`, each command that runs the check exits 1
//! with the check reporting `status`, read from its JSON. Its pre-flight
//! form, [`refuses`], does the same for apply's checks.
//!
//! The cases here are those no other module breaks: the catalog, probe and
//! drift cases of verify.rs, isolation.rs and monitor.rs go through it too,
//! and so do SES001 (pooler.rs: a pooler is the breakage), and DRF009 and
//! PRE010 (audit.rs: they need pgaudit, which only Debian's 15 has here).

use crate::pooler::{PgBouncer, PoolMode};
use crate::support::*;
use crate::verify::statuses;

/// The server a case runs on: always the RDS-shaped master, at default
/// settings.
#[derive(Clone, Copy, Default)]
pub enum Venue {
    /// The demo sample on a plain RDS-shaped cluster.
    #[default]
    Rds,
    /// The same with pgaudit loaded and installed as RDS documents it.
    RdsWithPgaudit,
}

impl Venue {
    /// A fresh demo database on this venue, not yet applied.
    async fn demo(self) -> TestDb {
        match self {
            Venue::Rds => TestDb::demo_rds().await,
            Venue::RdsWithPgaudit => crate::audit::demo_rds_with_pgaudit().await,
        }
    }
}

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
    /// Part of the breakage: PgBouncer in this mode is put in front of the
    /// server, and the commands after it connect through it.
    pub pooler: Option<PoolMode>,
    /// The server the case runs on.
    pub venue: Venue,
}

/// What a case leaves behind: the broken database, the last command's JSON,
/// and the pooler when the case put one in front.
pub struct Broken {
    /// The broken database.
    pub t: TestDb,
    /// The last command's JSON.
    pub doc: serde_json::Value,
    /// The pooler the commands went through after the breakage.
    pub pooler: Option<PgBouncer>,
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
            pooler: None,
            venue: Venue::Rds,
        }
    }

    /// Which commands run the check: probes and app checks only verify, drift
    /// checks only monitor, catalog checks (and SES001) both.
    fn commands(&self) -> &'static [&'static str] {
        let kind = catalogue()
            .into_iter()
            .find(|(id, _)| id == self.check)
            .map(|(_, kind)| kind)
            .unwrap_or_else(|| panic!("{} is not in the catalogue", self.check));
        match kind.as_str() {
            "Probe" | "App" => &["verify"],
            "Drift" => &["monitor"],
            // monitor connects as whoever cron runs it as; only verify
            // insists on the app role itself
            _ if self.check == "ROLE001" => &["verify"],
            _ => &["verify", "monitor"],
        }
    }

    /// Runs `command` as the app role (or, after the breakage, as the case
    /// says), JSON out; `app_url`: the reference app's, for verify; `pooler`:
    /// the one to connect through.
    async fn run(
        &self,
        t: &TestDb,
        command: &str,
        after: bool,
        app_url: Option<&str>,
        pooler: Option<&PgBouncer>,
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
        let mut env: Vec<(&str, &str)> = if after && self.verify_as_operator {
            vec![("PGUSER", "postgres")]
        } else {
            AS_APP.to_vec()
        };
        let port = pooler.map(PgBouncer::port_env);
        if let Some(port) = &port {
            env.push(("PGPORT", port));
        }
        let run = t.run_env(&args, &env).await;
        let doc = run.json();
        (run, doc)
    }
}

/// Passes before, breaks, and sees the check fail in every command that runs
/// it; returns the broken database and the last command's JSON.
pub async fn breaks(case: Break<'_>) -> Broken {
    let t = case.venue.demo().await;
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
                None,
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
    let pooler = match case.pooler {
        Some(mode) => Some(PgBouncer::start(&t, mode, &["postgres", "app_user"]).await),
        None => None,
    };
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
        let (run, doc) = case.run(&t, command, true, url, pooler.as_ref()).await;
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
    Broken {
        t,
        doc: last,
        pooler,
    }
}

/// A pre-flight case: on a fresh sample, `apply --dry-run` passes `check`;
/// after the breakage it reports `status` for it.
pub struct Refusal<'a> {
    /// Statements (as the real superuser) that make the fresh sample right
    /// for the check, before the first dry run; empty for none.
    pub setup: &'a [&'a str],
    /// Statements (as the real superuser) that break the database.
    pub breakage: &'a [&'a str],
    /// Statements run on a superuser session that stays open while apply
    /// runs (e.g. one holding locks); empty for none.
    pub held: &'a [&'a str],
    /// The server is restarted after the breakage (a parameter-group change
    /// that takes a reboot on RDS).
    pub restart: bool,
    /// The check id that must report it.
    pub check: &'a str,
    /// `fail` (apply refuses, exit 1) or `warn` (apply goes on, exit 0).
    pub status: &'a str,
    /// More arguments for apply.
    pub args: &'a [&'a str],
    /// The command line of the apply after the breakage when the operator
    /// leaves something out (empty: the usual one, with both passwords).
    pub apply_after: &'a [&'a str],
    /// The server the case runs on.
    pub venue: Venue,
}

impl<'a> Refusal<'a> {
    /// SQL that breaks the database, for a check reporting `status`.
    pub fn of(breakage: &'a [&'a str], check: &'a str, status: &'a str) -> Self {
        Self {
            setup: &[],
            breakage,
            held: &[],
            restart: false,
            check,
            status,
            args: &[],
            apply_after: &[],
            venue: Venue::Rds,
        }
    }
}

/// The pre-flight form: on a fresh RDS-shaped sample, `apply --dry-run`
/// passes `check`; after the breakage it reports `status` for it, and a
/// failure refuses the apply (exit 1) with nothing changed. Returns the
/// database as the refusal left it.
pub async fn refuses(case: Refusal<'_>) -> TestDb {
    let Refusal {
        setup,
        breakage,
        held,
        restart,
        check,
        status,
        args,
        apply_after,
        venue,
    } = case;
    let t = venue.demo().await;
    for sql in setup {
        t.sql(sql).await;
    }
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
    if restart {
        t.sandbox.restart().expect("the server restarts");
    }
    let holder = t.superuser().await;
    for sql in held {
        holder.simple(sql).await.unwrap();
    }
    let su = t.superuser().await;
    let before = catalog_snapshot(&su).await;
    let mut real = vec!["--format", "json"];
    real.extend_from_slice(args);
    let run = if apply_after.is_empty() {
        t.apply(&real).await
    } else {
        t.run(&[apply_after, &real].concat()).await
    };
    run.expect(if status == "fail" { 1 } else { 0 });
    let found = statuses(&run.json()["preflight"], check);
    assert!(
        found.iter().any(|s| s == status),
        "{check} reported {found:?} after {breakage:?} {held:?}\n{}",
        run.stdout
    );
    if status == "fail" {
        assert_eq!(
            catalog_snapshot(&su).await,
            before,
            "a refused apply changed something"
        );
    }
    t
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
                refuses(Refusal::of(&$sql, $check, $status)).await;
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
    // (the table as the reports print it, schema and all)
    break_glass_open_fails_drf003: "DRF003" "fail", sql NONE,
        run ["rollback", "--table", "public.customers", "--reason", "INC-1", "--yes"];
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
    a_permissive_policy_of_its_own_fails_pre011: "PRE011" "fail" =>
        ["ALTER TABLE customers ENABLE ROW LEVEL SECURITY; CREATE POLICY open_read ON customers FOR SELECT TO PUBLIC USING (true)"];
    an_app_role_in_the_superusers_group_fails_pre012: "PRE012" "fail" =>
        ["CREATE ROLE app_user LOGIN; GRANT postgres TO app_user"];
    an_uncovered_tenant_table_warns_pre013: "PRE013" "warn" =>
        ["CREATE TABLE invoices (id int PRIMARY KEY, tenant_id text, total int)"];
    a_child_table_without_the_tenant_column_warns_pre013: "PRE013" "warn" =>
        ["CREATE TABLE customer_notes (id int PRIMARY KEY, customer_id bigint REFERENCES customers (id), note text)"];
}

/// PRE014: the app role apply creates could not read the sample's `tenants`;
/// an app role that exists, with its grants, passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_app_role_that_cannot_read_the_other_tables_warns_pre014() {
    refuses(Refusal {
        setup: &["CREATE ROLE app_user LOGIN; GRANT SELECT ON tenants TO app_user"],
        breakage: &["REVOKE SELECT ON tenants FROM app_user; DROP ROLE app_user"],
        ..Refusal::of(&[], "PRE014", "warn")
    })
    .await;
}

/// PRE009: another session holds most of the shared lock table, so apply
/// splits into batches (a warning: it goes on, in several transactions).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_busy_lock_table_warns_pre009() {
    // The default table holds 64 x 100 slots; with 6,270 taken apply allows
    // itself 65, less than one transaction for the sample's four tables.
    refuses(Refusal {
        held: &["SELECT count(pg_advisory_lock(i)) FROM generate_series(1, 6270) i"],
        ..Refusal::of(&[], "PRE009", "warn")
    })
    .await;
}

/// During break-glass, what sees RLS off says how to end it: `rollback
/// --restore`, not `ALTER TABLE` or `rlsctl apply`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn during_break_glass_the_remedy_is_restore() {
    let broken = breaks(Break {
        command: &[
            "rollback",
            "--table",
            "customers",
            "--reason",
            "INC-7",
            "--yes",
        ],
        ..Break::of(&[], &[], "RLS001")
    })
    .await;
    let remedies: Vec<String> = broken.doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| {
            c["status"] == "fail" && ["RLS001", "RLS002"].contains(&c["id"].as_str().unwrap())
        })
        .map(|c| c["remedy"].as_str().unwrap().to_string())
        .collect();
    assert!(!remedies.is_empty());
    for remedy in &remedies {
        assert!(
            remedy.starts_with("rlsctl rollback --restore (break-glass since")
                && remedy.ends_with(": INC-7)"),
            "{remedy}"
        );
    }
    // verify's probes say the same of the table.
    let (run, doc) = crate::verify::verify(&broken.t, &[]).await;
    run.expect(1);
    let prb: Vec<&serde_json::Value> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail" && c["object"] == "public.customers")
        .collect();
    assert!(
        prb.iter().all(|c| c["remedy"]
            .as_str()
            .unwrap()
            .starts_with("rlsctl rollback --restore")),
        "{prb:#?}"
    );
    // A table in another schema is refused, saying which schema is the tenants'.
    let run = broken
        .t
        .run(&[
            "rollback",
            "--table",
            "billing.customers",
            "--reason",
            "INC-7",
            "--yes",
        ])
        .await;
    run.expect(2);
    assert!(
        run.stderr
            .contains("the tenant tables are in schema public"),
        "{}",
        run.stderr
    );
}

/// The same tenant twice is refused before connecting: the probes would
/// count its own rows as another tenant's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_refuses_the_same_tenant_twice() {
    let t = TestDb::demo_rds().await;
    t.applied().await;
    let run = t
        .run_env(
            &["verify", "--tenant", TENANTS[0], "--tenant", TENANTS[0]],
            &AS_APP,
        )
        .await;
    run.expect(2);
    assert!(run.stderr.contains("is given twice"), "{}", run.stderr);
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
/// for) is refused; with --no-app-password it passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_app_role_without_a_password_fails_pre004() {
    let t = refuses(Refusal {
        apply_after: &["apply", "--admin-password-from", "env:ADMIN_PW"],
        ..Refusal::of(&[], "PRE004", "fail")
    })
    .await;
    let run = t
        .run(&[
            "apply",
            "--dry-run",
            "--format",
            "json",
            "--no-app-password",
        ])
        .await;
    run.expect(0);
    assert_eq!(
        statuses(&run.json()["preflight"], "PRE004"),
        ["pass"],
        "{}",
        run.stdout
    );
}

/// The catalogue's check ids, read from its source, with their kind.
fn catalogue() -> Vec<(String, String)> {
    let source = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/model/checks/mod.rs"
    ))
    .unwrap();
    let body = &source[source.find("\ncatalogue! {").expect("the catalogue")..];
    body.lines()
        .skip(1)
        .take_while(|l| !l.starts_with('}'))
        .filter_map(|l| {
            // `    ROLE001 = "ROLE001", Error, Catalog, "title";`
            let mut fields = l.split(',');
            let id = fields.next()?.split('"').nth(1)?.to_string();
            let kind = fields.nth(1)?.trim().to_string();
            Some((id, kind))
        })
        .collect()
}

/// The check ids named by a harness case in `source`: a case line of one of
/// the harness's macros (`name: "ID" ...`), or the id given to `Break::of`
/// or `Refusal::of`.
fn harness_cases(source: &str) -> Vec<String> {
    const MACROS: [&str; 6] = [
        "breaks! {",
        "refuses! {",
        "app_breaks! {",
        "holes! {",
        "breakage! {",
        "drift! {",
    ];
    let quoted = |text: &str| -> Vec<String> {
        text.split('"')
            .skip(1)
            .step_by(2)
            .filter(|s| {
                let letters = s.len().saturating_sub(3);
                (6..=7).contains(&s.len())
                    && s[..letters].chars().all(|c| c.is_ascii_uppercase())
                    && s[letters..].chars().all(|c| c.is_ascii_digit())
            })
            .map(str::to_string)
            .collect()
    };
    let mut ids = Vec::new();
    for start in MACROS.iter().flat_map(|m| source.match_indices(m)) {
        let block = &source[start.0..];
        let block = &block[..block.find("\n}").unwrap_or(block.len())];
        for line in block.lines().skip(1) {
            // The first quoted id on a case line (`name: "ID" ...`).
            if line.trim_start().split(':').next().is_some_and(|name| {
                !name.is_empty()
                    && name
                        .chars()
                        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
            }) {
                ids.extend(quoted(line).into_iter().take(1));
            }
        }
    }
    for call in ["Break::of(", "Refusal::of("] {
        for (at, _) in source.match_indices(call) {
            let rest = &source[at..];
            let call = &rest[..rest.find(".await").unwrap_or(rest.len())];
            ids.extend(quoted(call).into_iter().take(1));
        }
    }
    ids
}

/// Every check id has a failing case through this harness (a log check, in
/// tenant_errors.rs), and every snapshot rule (catalog, drift, pre-flight) a
/// unit test with its id in the name in `src/model/checks/rule_tests/`.
#[test]
fn every_check_id_has_a_harness_case_and_every_rule_a_unit_test() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/integration");
    let mut cased = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let source = std::fs::read_to_string(entry.unwrap().path()).unwrap();
        cased.extend(harness_cases(&source));
    }
    let unit: String = std::fs::read_dir(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/model/checks/rule_tests"
    ))
    .unwrap()
    .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
    .collect();
    let catalogue = catalogue();
    assert!(catalogue.len() > 50, "{catalogue:?}");
    let mut missing = Vec::new();
    // A log check's evidence is the server's log: tenant_errors.rs shows it
    // failing and passing on real servers' logs of each layout.
    let log_cases = std::fs::read_to_string(format!("{dir}/tenant_errors.rs")).unwrap();
    for (id, kind) in &catalogue {
        let shown = match kind.as_str() {
            "Log" => log_cases.contains(&format!("check(&doc, \"{id}\")")),
            _ => cased.contains(id),
        };
        if !shown {
            missing.push(format!("{id}: no harness case"));
        }
        let rule = ["Catalog", "Drift", "Preflight"].contains(&kind.as_str());
        let named = |l: &str| l.starts_with("fn ") && l.contains(&id.to_lowercase());
        if rule && !unit.lines().any(named) {
            missing.push(format!("{id}: no unit test of its rule"));
        }
    }
    assert!(missing.is_empty(), "{missing:#?}");
}
