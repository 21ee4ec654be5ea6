//! `monitor --logs`: the app role causes each class of tenant-context error
//! on a real server that logs in each layout (plain with RDS's prefix,
//! csvlog, jsonlog), and monitor counts each group exactly from that
//! server's own log file; above the threshold exit 1, within it 0; a log
//! that cannot be shown read up to now exit 2.

use std::time::Instant;

use serde_json::Value;

use crate::support::*;

/// (class, table, role, application, sqlstate, count) of each group.
fn groups(doc: &Value) -> Vec<(String, String, String, String, String, u64)> {
    let text = |g: &Value, k: &str| g[k].as_str().unwrap_or_default().to_string();
    doc["tenant_errors"]["groups"]
        .as_array()
        .unwrap_or_else(|| panic!("no tenant_errors in {doc}"))
        .iter()
        .map(|g| {
            (
                text(g, "class"),
                text(g, "table"),
                text(g, "role"),
                text(g, "application"),
                text(g, "sqlstate"),
                g["count"].as_u64().unwrap(),
            )
        })
        .collect()
}

/// As the app would, the errors of each class once (the RLS violation
/// twice), and errors that are no tenant-context error.
async fn the_app_errs(t: &TestDb) {
    let app = t.app().await;
    app.simple("SET application_name = 'checkout'")
        .await
        .unwrap();
    let fails = |sql: &'static str| {
        let app = &app;
        async move {
            let err = app.simple(sql).await.expect_err(sql);
            let _ = app.simple("ROLLBACK").await;
            err
        }
    };
    // a fresh session reads the setting before any set
    fails("SELECT count(*) FROM customers WHERE tenant_id = current_setting('app.tenant_id')")
        .await;
    for _ in 0..2 {
        fails(
            "BEGIN; SELECT set_config('app.tenant_id', 'edgar-downtown', true); \
             INSERT INTO customers (tenant_id, full_name) VALUES ('edgar-airport', 'Mallory')",
        )
        .await;
    }
    // the setting left empty by a transaction-local set, cast
    fails(
        "BEGIN; SELECT set_config('app.tenant_id', '', true); \
         SELECT count(*) FROM vehicles WHERE current_setting('app.tenant_id')::int > 0",
    )
    .await;
    fails("TRUNCATE customers").await;
    // not tenant-context errors: no tenant table, or another cause
    fails("SELECT ''::int").await;
    fails("SELECT 1 / 0 FROM customers").await;
}

/// `monitor --logs --format json` on `file`, as the app role, over the
/// window since `started`, after the server started logging (a fresh server's log starts
/// later than 24 hours ago, which monitor refuses to call clean).
async fn monitor_logs(t: &TestDb, file: &std::path::Path, started: Instant, extra: &[&str]) -> Run {
    let since = format!("{}ms", started.elapsed().as_millis());
    let mut args = vec![
        "monitor",
        "--logs",
        "--format",
        "json",
        "--log-file",
        file.to_str().unwrap(),
    ];
    if !extra.contains(&"--since") {
        args.extend(["--since", since.as_str()]);
    }
    args.extend_from_slice(extra);
    t.run_env(&args, &AS_APP).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_counts_tenant_context_errors_from_each_log_layout() {
    let mut server_version = 0;
    for layout in ["stderr", "csvlog", "jsonlog"] {
        if layout == "jsonlog" && server_version < 150000 {
            continue; // jsonlog is 15 and later (the server would not start)
        }
        let t = TestDb::logging(layout).await;
        let started = Instant::now();
        server_version = t.superuser().await.info.server_version_num;
        t.applied().await;
        let file = t.current_log(layout).await;
        // Before: the log holds no tenant-context error.
        let clean = monitor_logs(&t, &file, started, &[]).await;
        clean.expect(0);
        assert_eq!(groups(&clean.json()), [], "{layout}");
        assert_eq!(check(&clean.json(), "LOG001")[0].status, "pass");

        the_app_errs(&t).await;
        // The plain layout's prefix has no %a: the application is not in the log.
        let app = if layout == "stderr" { "" } else { "checkout" };
        let expected: Vec<(String, String, String, String, String, u64)> = [
            ("rls_violation", "public.customers", "42501", 2),
            ("permission_denied", "public.customers", "42501", 1),
            ("tenant_cast", "public.vehicles", "22P02", 1),
            ("missing_setting", "public.customers", "42704", 1),
        ]
        .into_iter()
        .map(|(class, table, sqlstate, n)| {
            (
                class.into(),
                table.into(),
                "app_user".into(),
                app.into(),
                sqlstate.into(),
                n,
            )
        })
        .collect();
        let run = monitor_logs(&t, &file, started, &[]).await;
        run.expect(1);
        let doc = run.json();
        assert_eq!(groups(&doc), expected, "{layout}: {doc}");
        let failing: Vec<String> = check(&doc, "LOG001")
            .into_iter()
            .map(|c| format!("{} {}", c.status, c.object))
            .collect();
        assert_eq!(failing.len(), 4, "{layout}: {failing:?}");
        assert!(
            failing.iter().all(|f| f.starts_with("fail public.")),
            "{failing:?}"
        );
        // The example is the statement the server logged with the error.
        let violation = &doc["tenant_errors"]["groups"][0];
        assert!(
            violation["example"]
                .as_str()
                .unwrap()
                .contains("INSERT INTO customers"),
            "{violation}"
        );

        // Prometheus: one series per class, table, role and SQLSTATE.
        let since = format!("{}ms", started.elapsed().as_millis());
        let prom = t
            .run_env(
                &[
                    "monitor",
                    "--logs",
                    "--since",
                    &since,
                    "--format",
                    "prometheus",
                    "--log-file",
                    file.to_str().unwrap(),
                ],
                &AS_APP,
            )
            .await;
        prom.expect(1);
        assert!(
            prom.stdout.contains(
                "rlsctl_tenant_errors{class=\"rls_violation\",table=\"public.customers\",role=\"app_user\",sqlstate=\"42501\"} 2"
            ),
            "{}",
            prom.stdout
        );
        crate::alerting::promtool_check_metrics(&prom.stdout);

        // Within the thresholds: exit 0, the errors still reported.
        let within = monitor_logs(
            &t,
            &file,
            started,
            &["--max-errors", "1", "--max-errors", "rls_violation=2"],
        )
        .await;
        within.expect(0);
        assert_eq!(groups(&within.json()).len(), 4);
        // The shipped alerts on the binary's own series: the RLS violation
        // pages, and the group above --max-errors 1 opens a ticket.
        let since = format!("{}ms", started.elapsed().as_millis());
        let file_arg = file.to_str().unwrap();
        let args = [
            "monitor",
            "--logs",
            "--since",
            &since,
            "--log-file",
            file_arg,
            "--max-errors",
            "1",
            "--format",
            "prometheus",
        ];
        let prom = t.run_env(&args, &AS_APP).await;
        prom.expect(1);
        let alerts = [
            (
                "5m",
                "RlsctlTenantRlsViolation",
                "[{exp_labels: {severity: page, table: public.customers, role: app_user}, \
                 exp_annotations: {summary: 'The app wrote rows for another tenant on public.customers', \
                 description: '2 write(s) as app_user stopped by the isolation policy: run `rlsctl monitor --logs` for the statements.'}}]",
            ),
            (
                "5m",
                "RlsctlTenantErrors",
                "[{exp_labels: {severity: ticket, id: LOG001, status: fail, object: public.customers}, \
                 exp_annotations: {summary: 'Tenant-context errors above --max-errors on public.customers', \
                 description: 'The app ran statements without its tenant, or lost a grant: run `rlsctl monitor --logs` for the groups (docs/checks.md, LOG001).'}}]",
            ),
        ];
        let rules = crate::alerting::rule_test(&prom.stdout, &alerts);
        crate::alerting::test_rules(&t, &format!("{layout}-alerts.yml"), &rules);
        let above = monitor_logs(&t, &file, started, &["--max-errors", "1"]).await;
        above.expect(1);
        assert_eq!(
            check(&above.json(), "LOG001")
                .iter()
                .map(|c| c.object.as_str())
                .collect::<Vec<_>>(),
            ["public.customers"]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_cannot_be_shown_read_up_to_now_is_exit_2() {
    let t = TestDb::logging("stderr").await;
    let started = Instant::now();
    t.applied().await;
    let live = t.current_log("stderr").await;
    // A copy of the log stops where it was copied: without the mark monitor
    // has the server write, it does not show up to now.
    let copy = t.sandbox.dir().join("copied.log");
    std::fs::copy(&live, &copy).unwrap();
    let run = monitor_logs(&t, &copy, started, &[]).await;
    run.expect(2);
    assert!(
        run.stderr
            .contains("does not hold the entry rlsctl had the server write"),
        "{}",
        run.stderr
    );
    // The wrong prefix: no line reads as an entry.
    let run = monitor_logs(&t, &live, started, &["--log-line-prefix", "%m [%p] "]).await;
    run.expect(2);
    assert!(
        run.stderr.contains("reads as a log entry"),
        "{}",
        run.stderr
    );
    // A window longer than the log: it starts after it.
    let run = monitor_logs(&t, &live, started, &["--since", "30d"]).await;
    run.expect(2);
    assert!(
        run.stderr.contains("later than 30days ago"),
        "{}",
        run.stderr
    );
    // The server's own log, as the app role: it may not read it.
    let since = format!("{}ms", started.elapsed().as_millis());
    let run = t
        .run_env(&["monitor", "--logs", "--since", &since], &AS_APP)
        .await;
    run.expect(2);
    assert!(
        run.stderr.contains("pg_read_server_files"),
        "{}",
        run.stderr
    );
    // A source without --logs reads nothing: refused, not ignored.
    let run = t
        .run_env(&["monitor", "--log-file", live.to_str().unwrap()], &AS_APP)
        .await;
    run.expect(2);
    assert!(run.stderr.contains("add --logs"), "{}", run.stderr);
}

/// In shadow mode the log holds each read with no tenant set (a shadow
/// record): monitor --logs counts them as `no_tenant`, per table and role,
/// and not a read under a tenant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_with_no_tenant_in_shadow_mode_are_counted() {
    let t = TestDb::logging("stderr").await;
    let started = Instant::now();
    t.apply(&["--shadow"]).await.expect(0);
    let app = t.app().await;
    count(&app, "SELECT count(*) FROM customers /* no tenant */").await;
    count(&app, "SELECT count(*) FROM customers /* no tenant */").await;
    app.simple("BEGIN; SELECT set_config('app.tenant_id', 'quickfix', true); SELECT count(*) FROM vehicles; COMMIT")
        .await
        .unwrap();
    let file = t.current_log("stderr").await;
    let run = monitor_logs(&t, &file, started, &["--max-errors", "no_tenant=1"]).await;
    run.expect(1);
    let doc = run.json();
    let tally = groups(&doc);
    assert_eq!(
        tally,
        [(
            "no_tenant".into(),
            "public.customers".into(),
            "app_user".into(),
            String::new(),
            String::new(),
            2
        )],
        "{doc}"
    );
    assert_eq!(check(&doc, "LOG001")[0].object, "public.customers");
    // The text names the group: count, what it means, who, when, an example.
    let since = format!("{}ms", started.elapsed().as_millis());
    let file_arg = file.to_str().unwrap();
    let text = t
        .run_env(
            &[
                "monitor",
                "--logs",
                "--since",
                &since,
                "--log-file",
                file_arg,
            ],
            &AS_APP,
        )
        .await;
    text.expect(1);
    let line = text
        .stdout
        .lines()
        .find(|l| l.contains("LOG001"))
        .unwrap_or_else(|| panic!("{}", text.stdout));
    assert!(line.contains("2 reads with no tenant set"), "{line}");
}
