//! Staged enforcement (#25), as the RDS-shaped master: `apply --enforce`
//! enforces the tables named and leaves the others in shadow mode,
//! `apply --enforce-clean --since` enforces exactly the tables the shadow
//! records show clean (and refuses a log it cannot read or that starts too
//! late), `rollback --to-shadow` puts one table back; verify and monitor show
//! each table's mode and exit as the mix deserves.

use serde_json::Value;

use crate::support::*;
use crate::verify::{details, statuses};
use rlsctl::model::log::RDS_PREFIX;

/// Rows of `table` the app role sees without a tenant set.
async fn seen_without_tenant(t: &TestDb, table: &str) -> i64 {
    count(&t.app().await, &format!("SELECT count(*) FROM {table}")).await
}

/// Each table's mode in a verify or monitor document.
fn modes(doc: &Value) -> Vec<(String, String)> {
    doc["tables"]
        .as_array()
        .unwrap_or(&Vec::new())
        .iter()
        .map(|t| {
            (
                t["table"].as_str().unwrap().to_string(),
                t["mode"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// `id object` of every finding that fails or warns.
fn failing(doc: &Value) -> Vec<String> {
    checks(doc)
        .into_iter()
        .filter(|c| c.status == "fail" || c.status == "warn")
        .map(|c| format!("{} {}", c.id, c.object))
        .collect()
}

fn mode_pairs(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(t, m)| (format!("public.{t}"), m.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_some_tables_leaves_the_others_in_shadow_and_every_report_says_which() {
    let t = TestDb::demo_rds().await;
    t.apply(&["--shadow"]).await.expect(0);
    let run = t
        .apply(&["--enforce", "customers,vehicles", "--format", "json"])
        .await;
    run.expect(0);
    // The plan shows each table's mode before and after.
    let items = run.json()["plan"]["items"].as_array().unwrap().clone();
    let mode_of = |object: &str| {
        items
            .iter()
            .find(|i| i["object"] == format!("table public.{object}"))
            .map(|i| (i["mode"]["before"].clone(), i["mode"]["after"].clone()))
            .unwrap()
    };
    assert_eq!(mode_of("customers"), ("shadow".into(), "enforced".into()));
    assert_eq!(mode_of("services"), ("shadow".into(), "shadow".into()));
    // Without a tenant the app sees the shadow tables' rows, none of the
    // enforced ones'.
    assert_eq!(seen_without_tenant(&t, "customers").await, 0);
    assert_eq!(seen_without_tenant(&t, "vehicles").await, 0);
    assert!(seen_without_tenant(&t, "appointments").await > 0);
    assert!(seen_without_tenant(&t, "services").await > 0);
    let mixed = mode_pairs(&[
        ("customers", "enforced"),
        ("vehicles", "enforced"),
        ("appointments", "shadow"),
        ("services", "shadow"),
    ]);
    // monitor: RLS008 names the two still in shadow, RLS003 fails on each of
    // them (their policy does not narrow); nothing else fails.
    let (run, doc) = monitor_json(&t).await;
    run.expect(1);
    assert_eq!(modes(&doc), mixed);
    assert_eq!(
        failing(&doc),
        [
            "RLS003 public.appointments",
            "RLS003 public.services",
            "RLS008 2 of 4 tenant tables"
        ],
        "{}",
        run.stdout
    );
    assert!(details(&doc, "RLS008").contains("public.appointments, public.services"));
    let text = t.run_env(&["monitor"], &AS_APP).await;
    assert!(
        text.stdout
            .contains("tenant tables: 2 enforced, 2 shadow (public.appointments, public.services)"),
        "{}",
        text.stdout
    );
    let prom = t
        .run_env(&["monitor", "--format", "prometheus"], &AS_APP)
        .await;
    assert!(prom
        .stdout
        .contains("rlsctl_table_mode{table=\"public.services\",mode=\"shadow\"} 1"));
    assert!(prom
        .stdout
        .contains("rlsctl_table_mode{table=\"public.customers\",mode=\"enforced\"} 1"));
    // verify: the probes prove the enforced tables and say which they skipped.
    let (run, doc) = crate::verify::verify(&t, &[]).await;
    run.expect(1);
    assert_eq!(modes(&doc), mixed);
    for id in ["PRB001", "PRB002", "PRB003"] {
        assert_eq!(statuses(&doc, id), ["pass"], "{id}: {}", run.stdout);
        assert!(
            details(&doc, id)
                .contains("skipped in shadow mode: public.appointments, public.services"),
            "{}",
            details(&doc, id)
        );
    }
    // The rest, and all is enforced: clean.
    t.apply(&["--enforce", "appointments,services"])
        .await
        .expect(0);
    let (run, doc) = monitor_json(&t).await;
    run.expect(0);
    assert!(modes(&doc).iter().all(|(_, m)| m == "enforced"));
    crate::verify::verify(&t, &[]).await.0.expect(0);
    // A table that is not a tenant table: a clear error, nothing changed.
    let run = t.apply(&["--enforce", "invoices"]).await;
    run.expect(2);
    assert!(run
        .stderr
        .contains("--enforce invoices: not one of the tenant tables"));
}

/// The sandbox server's own log file (`%m [%p] `), as an operator has it.
fn server_log_path(t: &TestDb) -> String {
    t.sandbox.dir().join("server.log").display().to_string()
}

/// `apply --enforce-clean --since <since>` reading `log` (plain, with
/// `prefix`), then `extra`.
async fn enforce_clean(t: &TestDb, since: &str, log: &str, prefix: &str, extra: &[&str]) -> Run {
    let mut args = vec!["--enforce-clean", "--since", since, "--log-file", log];
    if !prefix.is_empty() {
        args.extend(["--log-line-prefix", prefix]);
    }
    args.extend_from_slice(extra);
    t.apply(&args).await
}

/// The sandbox server's log_line_prefix (PostgreSQL's default).
const PREFIX: &str = "%m [%p] ";

/// `rollback --table customers --to-shadow --reason <reason> --yes`.
async fn customers_to_shadow(t: &TestDb, reason: &str) -> Run {
    t.run(&[
        "rollback",
        "--table",
        "customers",
        "--to-shadow",
        "--reason",
        reason,
        "--yes",
    ])
    .await
}

/// Seconds since the epoch on the server's clock.
async fn server_now(t: &TestDb) -> f64 {
    let row = t
        .superuser()
        .await
        .query_one("SELECT extract(epoch FROM clock_timestamp())::float8", &[])
        .await
        .unwrap();
    row.get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_clean_enforces_the_clean_table_and_keeps_the_one_a_job_read() {
    let t = TestDb::demo_rds().await;
    t.apply(&["--shadow"]).await.expect(0);
    let su = t.superuser().await;
    let since: f64 = su
        .query_one(
            "SELECT extract(epoch FROM min(policy_since))::float8 FROM rlsctl.tenant_tables",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    // The shadow window opens; then a report job reads customers without a
    // tenant, a few seconds later (the window is whole seconds).
    wait_until("four seconds of shadow mode", HUNG_AFTER, || async {
        server_now(&t).await >= since + 4.0
    })
    .await;
    seen_without_tenant(&t, "customers").await;
    // --since reaching back to one second after shadow mode began.
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let back = format!("{}s", (now - since.ceil()) as u64 - 1);
    let log = server_log_path(&t);
    let run = enforce_clean(&t, &back, &log, PREFIX, &["--format", "json"]).await;
    run.expect(0);
    let doc = run.json();
    let item = |table: &str| {
        doc["plan"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|i| i["object"] == format!("table public.{table}"))
            .cloned()
            .unwrap()
    };
    assert_eq!(item("customers")["mode"]["after"], "shadow");
    assert!(
        item("customers")["why"]
            .as_str()
            .unwrap()
            .contains("record(s) since"),
        "{}",
        item("customers")
    );
    assert_eq!(item("vehicles")["mode"]["after"], "enforced");
    assert!(item("vehicles")["why"]
        .as_str()
        .unwrap()
        .starts_with("clean since"));
    assert!(seen_without_tenant(&t, "customers").await > 0);
    let last_dirty = server_now(&t).await;
    assert_eq!(seen_without_tenant(&t, "vehicles").await, 0);
    // The job is fixed (it sets a tenant); once the window holds no record of
    // customers, the next run enforces it too.
    let app = t.app().await;
    app.simple("BEGIN; SELECT set_config('app.tenant_id', '1', true); SELECT count(*) FROM customers; COMMIT")
        .await
        .unwrap();
    wait_until("three seconds without a record", HUNG_AFTER, || async {
        server_now(&t).await >= last_dirty + 3.0
    })
    .await;
    let run = enforce_clean(&t, "2s", &log, PREFIX, &[]).await;
    run.expect(0);
    assert!(
        run.stdout.contains("public.customers: clean since"),
        "{}",
        run.stdout
    );
    assert_eq!(seen_without_tenant(&t, "customers").await, 0);
    monitor_json(&t).await.0.expect(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enforce_clean_refuses_a_log_it_cannot_read_or_that_starts_too_late() {
    let t = TestDb::demo_rds().await;
    t.apply(&["--shadow"]).await.expect(0);
    let su = t.superuser().await;
    let before = catalog_snapshot(&su).await;
    // A log that cannot be read.
    let run = enforce_clean(&t, "1h", "/nonexistent/postgresql.log", "", &[]).await;
    run.expect(2);
    assert!(
        run.stderr.contains("/nonexistent/postgresql.log"),
        "{}",
        run.stderr
    );
    // A log that starts after --since reaches back: the server started minutes ago.
    let log = server_log_path(&t);
    let run = enforce_clean(&t, "30d", &log, PREFIX, &[]).await;
    run.expect(2);
    assert!(
        run.stderr.contains("later than 30days ago"),
        "{}",
        run.stderr
    );
    // A prefix that matches the entries but holds no time: when the log
    // starts cannot be told.
    let run = enforce_clean(&t, "1s", &log, "%a[%p] ", &[]).await;
    run.expect(2);
    assert!(
        run.stderr.contains("no time rlsctl can read"),
        "{}",
        run.stderr
    );
    // A prefix the server does not write (its own is %m [%p] ): the start's
    // time still parses, yet no line reads as an entry, so nothing is clean.
    for wrong in ["%m [%p] %q%u@%d ", "%m [%p] %a ", "%m", RDS_PREFIX] {
        let run = enforce_clean(&t, "1s", &log, wrong, &[]).await;
        run.expect(2);
        assert!(
            run.stderr.contains("reads as a log entry of its layout"),
            "{wrong}: {}",
            run.stderr
        );
        let report = t
            .run(&[
                "shadow",
                "report",
                "--log-file",
                &log,
                "--log-line-prefix",
                wrong,
            ])
            .await;
        report.expect(2);
    }
    // An old file: the start of the log, cut off (a rotated file, `head -n 8`).
    let old = t.sandbox.dir().join("old.log");
    let head: Vec<String> = std::fs::read_to_string(&log)
        .unwrap()
        .lines()
        .take(8)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&old, head.concat()).unwrap();
    let run = enforce_clean(&t, "1s", old.to_str().unwrap(), PREFIX, &[]).await;
    run.expect(2);
    assert!(
        run.stderr
            .contains("does not hold the entry rlsctl had the server write"),
        "{}",
        run.stderr
    );
    // --since 0, and one that would wrap.
    for since in ["0s", "300000000y"] {
        let run = enforce_clean(&t, since, &log, PREFIX, &[]).await;
        run.expect(2);
        assert!(run.stderr.contains("--since"), "{since}: {}", run.stderr);
    }
    assert_eq!(catalog_snapshot(&su).await, before, "nothing changed");
    // And --since is required.
    t.apply(&["--enforce-clean"]).await.expect(2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn to_shadow_puts_one_table_back_and_apply_enforce_ends_it() {
    let t = TestDb::demo_rds().await;
    t.applied().await;
    let run = customers_to_shadow(&t, "INC-7 nightly export").await;
    run.expect(0);
    assert!(
        run.stdout.contains("apply --enforce customers"),
        "{}",
        run.stdout
    );
    assert!(seen_without_tenant(&t, "customers").await > 0);
    assert_eq!(seen_without_tenant(&t, "vehicles").await, 0);
    let su = t.superuser().await;
    let logged = "SELECT count(*) FROM rlsctl.break_glass_log WHERE action = 'to-shadow' \
                  AND tables = '{customers}' AND reason = 'INC-7 nightly export' AND ended_at IS NOT NULL";
    assert_eq!(count(&su, logged).await, 1);
    // monitor: the shadow table, and no drift (the registry and the history
    // were kept with the change).
    let (run, doc) = monitor_json(&t).await;
    run.expect(1);
    assert_eq!(
        failing(&doc),
        ["RLS003 public.customers", "RLS008 1 of 4 tenant tables"],
        "{}",
        run.stdout
    );
    // Again: in shadow mode already, nothing changes, nothing is logged.
    let again = customers_to_shadow(&t, "again").await;
    again.expect(0);
    assert!(
        again.stdout.contains("in shadow mode already"),
        "{}",
        again.stdout
    );
    assert_eq!(
        count(&su, "SELECT count(*) FROM rlsctl.break_glass_log").await,
        1
    );
    // Back: enforced again, clean.
    t.apply(&["--enforce", "customers"]).await.expect(0);
    assert_eq!(seen_without_tenant(&t, "customers").await, 0);
    monitor_json(&t).await.0.expect(0);
    // Without a reason: refused before connecting.
    t.run(&["rollback", "--table", "customers", "--to-shadow", "--yes"])
        .await
        .expect(2);
}
