//! Shadow mode, as the RDS-shaped master: `apply --shadow` narrows nothing
//! and records what enforcement would hide; `shadow report` reads the records
//! from a log file, the server's own log and the RDS API; `apply` enforces;
//! monitor nags until then; uninstall removes it all.

use serde_json::Value;

use rlsctl::pg::tenant;

use crate::rds_double::RdsDouble;
use crate::support::*;
use crate::verify::{details, statuses};

/// The queries the report lists for `table`, with their tenants and access.
fn reported(doc: &Value, table: &str) -> Vec<(String, Vec<String>, Vec<String>)> {
    doc["tables"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["table"] == table)
        .flat_map(|t| t["queries"].as_array().unwrap().iter())
        .map(|q| {
            let list = |key: &str| {
                q[key]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect::<Vec<_>>()
            };
            (
                q["query"].as_str().unwrap().to_string(),
                list("tenants"),
                list("access"),
            )
        })
        .collect()
}

/// The app role's statements of the scenario: a report job without a tenant,
/// a tenant reading its own rows and another's, a read-only transaction, a
/// write for another tenant (rolled back).
async fn the_app_runs(t: &TestDb) {
    let su = t.superuser().await;
    let app = t.app().await;
    for table in ["customers", "vehicles", "appointments", "services"] {
        let all = count(&su, &format!("SELECT count(*) FROM {table}")).await;
        assert!(all > 0);
        assert_eq!(
            count(
                &app,
                &format!("SELECT count(*) FROM {table} /* report job, {table} */")
            )
            .await,
            all,
            "shadow mode hid rows of {table} from a statement without a tenant"
        );
    }
    let app_transaction = app.begin(rlsctl::pg::Begin::Plain).await.unwrap();
    tenant::set_local(&app, "app.tenant_id", TENANTS[0])
        .await
        .unwrap();
    let own = count(
        &app,
        &format!(
            "SELECT count(*) FROM customers WHERE tenant_id = '{}' /* own rows */",
            TENANTS[0]
        ),
    )
    .await;
    assert!(own > 0);
    let every = count(
        &app,
        "SELECT count(*) FROM vehicles /* every tenant's vehicles */",
    )
    .await;
    assert_eq!(every, count(&su, "SELECT count(*) FROM vehicles").await);
    let moved = app
        .execute(
            &format!(
                "UPDATE services SET name = name WHERE tenant_id = '{}' /* foreign write */",
                TENANTS[2]
            ),
            &[],
        )
        .await
        .unwrap();
    assert!(moved > 0, "shadow mode refused a write");
    app_transaction.rollback().await.unwrap();
    let read_only = app.begin(rlsctl::pg::Begin::Plain).await.unwrap();
    app.simple("SET TRANSACTION READ ONLY").await.unwrap();
    count(&app, "SELECT count(*) FROM appointments /* read only */").await;
    read_only.commit().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shadow_mode_records_what_enforcement_would_hide_and_apply_enforces() {
    let t = TestDb::demo_rds().await;
    t.apply(&["--shadow"]).await.expect(0);
    let again = t.apply(&["--shadow", "--format", "json"]).await;
    again.expect(0);
    assert_eq!(again.json()["summary"]["changes"], 0, "{}", again.stdout);
    the_app_runs(&t).await;

    let log = t.sandbox.dir().join("server.log").display().to_string();
    let report = t
        .run(&[
            "shadow",
            "report",
            "--log-file",
            &log,
            "--log-line-prefix",
            "%m [%p] ",
            "--format",
            "json",
        ])
        .await;
    report.expect(1);
    let doc = report.json();
    let no_tenant = vec!["no tenant".to_string()];
    for table in ["customers", "vehicles", "appointments", "services"] {
        let queries = reported(&doc, &format!("public.{table}"));
        assert!(
            queries.iter().any(
                |(q, tenants, _)| q.contains(&format!("report job, {table}"))
                    && *tenants == no_tenant
            ),
            "public.{table}: {queries:?}"
        );
    }
    let customers = reported(&doc, "public.customers");
    assert!(
        !customers.iter().any(|(q, _, _)| q.contains("own rows")),
        "{customers:?}"
    );
    let vehicles = reported(&doc, "public.vehicles");
    assert!(
        vehicles.iter().any(
            |(q, tenants, _)| q.contains("every tenant's vehicles") && *tenants == [TENANTS[0]]
        ),
        "{vehicles:?}"
    );
    let appointments = reported(&doc, "public.appointments");
    assert!(
        appointments.iter().any(|(q, _, _)| q.contains("read only")),
        "{appointments:?}"
    );
    let services = reported(&doc, "public.services");
    assert!(
        services
            .iter()
            .any(|(q, _, access)| q.contains("foreign write") && *access == ["read", "write"]),
        "{services:?}"
    );
    let text = t
        .run(&[
            "shadow",
            "report",
            "--log-file",
            &log,
            "--log-line-prefix",
            "%m [%p] ",
        ])
        .await;
    text.expect(1);
    assert!(
        text.stdout.contains("public.customers: ") && text.stdout.contains("no tenant"),
        "{}",
        text.stdout
    );

    // Rotated files named by their day: the real log as an old day's file,
    // then a later day's with the days between left out: exit 2, naming them.
    let old_day = t.sandbox.dir().join("postgresql-2020-01-01.log");
    std::fs::copy(&log, &old_day).unwrap();
    let later_day = t.sandbox.dir().join("postgresql-2099-01-01.log");
    std::fs::write(&later_day, "").unwrap();
    let rotated = |files: &[&std::path::Path]| {
        let mut args = vec!["shadow", "report", "--log-line-prefix", "%m [%p] "];
        for file in files {
            args.extend(["--log-file", file.to_str().unwrap()]);
        }
        args.iter().map(|a| a.to_string()).collect::<Vec<_>>()
    };
    let args = rotated(&[&old_day, &later_day]);
    let gap = t
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    gap.expect(2);
    assert!(
        gap.stderr
            .contains("is not among the files read (a rotated file left out)")
            && gap.stderr.contains("to 2098-12-31"),
        "{}",
        gap.stderr
    );
    let args = rotated(&[&old_day]);
    let alone = t
        .run(&args.iter().map(String::as_str).collect::<Vec<_>>())
        .await;
    alone.expect(1);

    // monitor nags; verify fails RLS008 and its probes say they skipped every
    // table as in shadow mode.
    let monitor = t.run_env(&["monitor", "--format", "json"], &AS_APP).await;
    monitor.expect(1);
    assert_eq!(
        statuses(&monitor.json(), "RLS008"),
        ["fail"],
        "{}",
        monitor.stdout
    );
    let (verify, doc) = crate::verify::verify(&t, &[]).await;
    verify.expect(1);
    assert_eq!(statuses(&doc, "RLS008"), ["fail"]);
    assert_eq!(statuses(&doc, "PRB001"), ["skip"]);
    assert!(
        details(&doc, "PRB001").contains("every tenant table is in shadow mode"),
        "{}",
        details(&doc, "PRB001")
    );

    // Enforcing is the normal apply, in one transaction.
    let enforce = t.apply(&["--format", "json"]).await;
    enforce.expect(0);
    assert_eq!(
        enforce.json()["summary"]["transactions"],
        1,
        "{}",
        enforce.stdout
    );
    t.run_env(&["monitor"], &AS_APP).await.expect(0);
    let (verify, doc) = crate::verify::verify(&t, &[]).await;
    verify.expect(0);
    assert_eq!(statuses(&doc, "RLS008"), ["pass"]);
    let app = t.app().await;
    assert_eq!(count(&app, "SELECT count(*) FROM customers").await, 0);

    // Uninstall removes shadow mode's function with the rest of the bundle.
    t.run(&[
        "rollback",
        "--uninstall",
        "--reason",
        "rehearsal over",
        "--yes",
    ])
    .await
    .expect(0);
    let su = t.superuser().await;
    assert_eq!(
        count(
            &su,
            "SELECT count(*) FROM pg_proc WHERE proname = 'shadow_seen'"
        )
        .await,
        0
    );
}

/// `shadow report --format json` from the server's own log, as the real
/// superuser, once it holds a record (exit 1): the logging collector writes
/// asynchronously, so a few tries.
async fn report_from_the_server(t: &TestDb) -> Run {
    let superuser = [
        ("PGUSER", t.sandbox.superuser.as_str()),
        ("PGPASSWORD", t.sandbox.superuser_password.expose()),
    ];
    for _ in 0..50 {
        let run = t
            .run_env(&["shadow", "report", "--format", "json"], &superuser)
            .await;
        if run.code == 1 {
            return run;
        }
        assert_eq!(run.code, 0, "{}", run.all_output());
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    panic!("no record reached the server's log within 5 s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_report_reads_the_servers_own_log_and_the_rds_api() {
    // A server that writes its own log files with RDS's prefix, as RDS does.
    let options = rlsctl::sandbox::Options {
        extra_config: vec![
            "logging_collector = on".into(),
            "log_directory = 'log'".into(),
            format!("log_line_prefix = '{}'", rlsctl::model::log::RDS_PREFIX),
        ],
        ..Default::default()
    };
    let t = TestDb::with(options, true).await;
    t.apply(&["--shadow"]).await.expect(0);
    let app = t.app().await;
    count(&app, "SELECT count(*) FROM customers /* nightly export */").await;

    // Over the connection, as a role that may read the server's files.
    let run = report_from_the_server(&t).await;
    let doc = run.json();
    assert!(
        doc["source"]
            .as_str()
            .unwrap()
            .starts_with("the server's log"),
        "{doc}"
    );
    assert!(
        reported(&doc, "public.customers")
            .iter()
            .any(|(q, _, _)| q.contains("nightly export")),
        "{doc}"
    );
    // The app role may not read server files: a clear error, exit 2.
    let denied = t.run_env(&["shadow", "report"], &AS_APP).await;
    denied.expect(2);
    assert!(
        denied.stderr.contains("pg_read_server_files"),
        "{}",
        denied.stderr
    );

    // The same records through the RDS API (a local double of it), the
    // instance taken from the endpoint's first label.
    let su = t.superuser().await;
    let file: String = su
        .query_one("SELECT pg_read_file(pg_current_logfile())", &[])
        .await
        .unwrap()
        .get(0);
    let double = RdsDouble::start("mydb", file);
    let dir = tempfile::tempdir().unwrap();
    let empty = |name: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, "").unwrap();
        path.display().to_string()
    };
    let (config, credentials) = (empty("config"), empty("credentials"));
    let aws = [
        ("AWS_ENDPOINT_URL_RDS", double.url.as_str()),
        ("AWS_REGION", "us-west-2"),
        ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        ),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CONFIG_FILE", config.as_str()),
        ("AWS_SHARED_CREDENTIALS_FILE", credentials.as_str()),
        ("RDS_ENDPOINT", "mydb.abc123.us-west-2.rds.amazonaws.com"),
    ];
    let run = t
        .run_env(&["shadow", "report", "--rds", "--format", "json"], &aws)
        .await;
    run.expect(1);
    let doc = run.json();
    assert!(
        reported(&doc, "public.customers")
            .iter()
            .any(|(q, _, _)| q.contains("nightly export")),
        "{doc}"
    );
    assert_eq!(
        double.actions(),
        [
            "DescribeDBLogFiles",
            "DownloadDBLogFilePortion",
            "DownloadDBLogFilePortion"
        ]
    );
    // A replica's logs are read too: one the API does not know is exit 2,
    // never a report of the primary alone.
    let run = t
        .run_env(
            &[
                "shadow",
                "report",
                "--rds",
                "--rds-replica",
                "mydb-replica-1",
            ],
            &aws,
        )
        .await;
    run.expect(2);
    assert!(run.stderr.contains("mydb-replica-1"), "{}", run.stderr);
}

/// With a `log_line_prefix` that holds a field any client chooses (the
/// application name), a client can neither hide its own statement (an
/// application name that carries the marker) nor add records (the marker in
/// an error, its STATEMENT line, or a comment whose newline starts a line
/// that looks like a record).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_can_neither_hide_nor_forge_a_record_through_the_log() {
    let options = rlsctl::sandbox::Options {
        shape: rlsctl::sandbox::Shape::RdsMaster,
        extra_config: vec!["log_line_prefix = '%m [%p] %a '".into()],
        ..Default::default()
    };
    let t = TestDb::with(options, true).await;
    t.apply(&["--shadow"]).await.expect(0);
    let app = t.app().await;
    app.simple("SET application_name = 'rlsctl-shadow '")
        .await
        .unwrap();
    count(&app, "SELECT count(*) FROM customers /* hidden job */").await;
    let forged = r#"{"table": "public.vehicles", "access": "read", "tenant": null, "query": "forged", "role": "app_user", "at": "2026-11-27 05:00:00+00"}"#;
    let quoted = forged.replace('\'', "''");
    assert!(app
        .simple(&format!("SELECT 'rlsctl-shadow {quoted}'::int"))
        .await
        .is_err());
    app.simple(&format!(
        "SELECT count(*) FROM services /* newline\n2026-11-27 05:00:00.000 UTC [1] psql LOG:  rlsctl-shadow {quoted} */"
    ))
    .await
    .unwrap();
    let log = t.sandbox.dir().join("server.log").display().to_string();
    let run = t
        .run(&[
            "shadow",
            "report",
            "--log-file",
            &log,
            "--log-line-prefix",
            "%m [%p] %a ",
            "--format",
            "json",
        ])
        .await;
    run.expect(1);
    let doc = run.json();
    assert!(
        reported(&doc, "public.customers")
            .iter()
            .any(|(q, _, _)| q.contains("hidden job")),
        "the record was hidden by the application name: {doc}"
    );
    assert!(
        reported(&doc, "public.vehicles").is_empty(),
        "a forged record counted: {doc}"
    );
    let queries: Vec<String> = reported(&doc, "public.services")
        .into_iter()
        .map(|(q, _, _)| q)
        .collect();
    assert_eq!(queries.len(), 1, "{queries:?}");
    // What the old parser did: the marker anywhere on the line.
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        text.lines()
            .filter(|l| l.contains("rlsctl-shadow {\"table\": \"public.vehicles\""))
            .count()
            >= 2
    );
}

/// Reading logs in bounded memory: a device or a binary file is a clear exit
/// 2, a line longer than the limit is skipped and counted, and a 128 MiB line
/// is never held whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_input_of_any_shape_is_read_in_bounded_memory() {
    let t = TestDb::empty().await;
    let run = t
        .run(&["shadow", "report", "--log-file", "/dev/zero"])
        .await;
    run.expect(2);
    assert!(
        run.stderr.contains("/dev/zero is not a regular file"),
        "{}",
        run.stderr
    );
    let binary = t.sandbox.dir().join("binary.log");
    std::fs::write(&binary, [b'x', 0, 1, 2, b'\n']).unwrap();
    let run = t
        .run(&["shadow", "report", "--log-file", binary.to_str().unwrap()])
        .await;
    run.expect(2);
    assert!(run.stderr.contains("not a text log"), "{}", run.stderr);
    // One 128 MiB line, then a record: the line is skipped in bounded memory,
    // and a log read in part is exit 2 (a record may be in the line).
    let big = t.sandbox.dir().join("big.log");
    {
        use std::io::Write;
        let mut file = std::io::BufWriter::new(std::fs::File::create(&big).unwrap());
        let block = vec![b'x'; 1 << 20];
        for _ in 0..128 {
            file.write_all(&block).unwrap();
        }
        writeln!(
            file,
            "\n2026-11-27 05:00:00.000 UTC [7] LOG:  rlsctl-shadow {{\"table\": \"public.t\", \"access\": \"read\", \"tenant\": \"ü€\", \"query\": \"select ü\", \"role\": \"app\", \"at\": \"x\"}}"
        )
        .unwrap();
    }
    // Its peak memory from /proc (VmHWM only grows; rusage would count the
    // test process's own pages, which the child shares until it execs).
    let run = tokio::task::spawn_blocking(move || {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
            .args([
                "shadow",
                "report",
                "--format",
                "json",
                "--log-line-prefix",
                "%m [%p] ",
                "--log-file",
            ])
            .arg(&big)
            .env_clear()
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let status_file = format!("/proc/{}/status", child.id());
        let mut peak_kb = 0u64;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
        let status = loop {
            if let Ok(text) = std::fs::read_to_string(&status_file) {
                if let Some(kb) = text
                    .lines()
                    .find_map(|l| l.strip_prefix("VmHWM:"))
                    .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                {
                    peak_kb = peak_kb.max(kb);
                }
            }
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "shadow report still running"
            );
            std::thread::sleep(std::time::Duration::from_millis(2));
        };
        let mut stdout = String::new();
        std::io::Read::read_to_string(child.stdout.as_mut().unwrap(), &mut stdout).unwrap();
        let _ = std::fs::remove_file(&big);
        (status.code(), stdout, peak_kb)
    })
    .await
    .unwrap();
    let (status, stdout, rss_kb) = run;
    assert_eq!(status, Some(2), "{stdout}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(
        rss_kb > 0 && rss_kb < 64 * 1024,
        "peak RSS {rss_kb} KiB for a 128 MiB line"
    );
}

/// A server that logs as csvlog or jsonlog: its own log is read in that
/// layout (not through the plain parser), the record is found, and
/// enforce-clean on that file keeps the table the job read in shadow mode.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn csvlog_and_jsonlog_servers_are_read_in_their_layout() {
    let mut server_version = 0;
    for (destination, extension) in [("csvlog", "csv"), ("jsonlog", "json")] {
        if destination == "jsonlog" && server_version < 150000 {
            continue; // jsonlog is 15 and later (the server would not start)
        }
        let options = rlsctl::sandbox::Options {
            extra_config: vec![
                "logging_collector = on".into(),
                "log_directory = 'log'".into(),
                format!("log_destination = '{destination}'"),
            ],
            ..Default::default()
        };
        let t = TestDb::with(options, true).await;
        // enforce-clean's window starts here, after the log's start
        let started = std::time::Instant::now();
        server_version = t.superuser().await.info.server_version_num;
        t.apply(&["--shadow"]).await.expect(0);
        let app = t.app().await;
        count(&app, "SELECT count(*) FROM customers /* nightly export */").await;
        let run = report_from_the_server(&t).await;
        let doc = run.json();
        assert!(
            doc["read"]["files"][0]["layout"] == destination,
            "{destination}: {doc}"
        );
        // The file itself, given to enforce-clean: customers was read
        // without a tenant, so it stays in shadow mode.
        let su = t.superuser().await;
        let file: String = su
            .query_one("SELECT pg_current_logfile($1)", &[&destination])
            .await
            .unwrap()
            .get(0);
        let path = t.sandbox.dir().join("data").join(&file);
        assert!(path.to_str().unwrap().ends_with(extension));
        let since = format!("{}ms", started.elapsed().as_millis());
        let run = t
            .apply(&[
                "--enforce-clean",
                "--since",
                &since,
                "--log-file",
                path.to_str().unwrap(),
            ])
            .await;
        run.expect(0);
        assert!(
            !run.stdout.contains("public.customers: clean since"),
            "{destination}: {}",
            run.stdout
        );
    }
}

/// A server set to log no LOG entry writes no shadow record: reading its own
/// log is refused, and enforce-clean on its file finds no mark (exit 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_logs_no_log_entry_is_refused() {
    let options = rlsctl::sandbox::Options {
        extra_config: vec![
            "logging_collector = on".into(),
            "log_directory = 'log'".into(),
            "log_min_messages = 'fatal'".into(),
        ],
        ..Default::default()
    };
    let t = TestDb::with(options, true).await;
    t.apply(&["--shadow"]).await.expect(0);
    let superuser = [
        ("PGUSER", t.sandbox.superuser.as_str()),
        ("PGPASSWORD", t.sandbox.superuser_password.expose()),
    ];
    let run = t.run_env(&["shadow", "report"], &superuser).await;
    run.expect(2);
    assert!(
        run.stderr.contains("log_min_messages = fatal"),
        "{}",
        run.stderr
    );
    let su = t.superuser().await;
    let file: String = su
        .query_one("SELECT pg_current_logfile()", &[])
        .await
        .unwrap()
        .get(0);
    let path = t.sandbox.dir().join("data").join(&file);
    let run = t
        .apply(&[
            "--enforce-clean",
            "--since",
            "1h",
            "--log-file",
            path.to_str().unwrap(),
            "--log-line-prefix",
            "%m [%p] ",
        ])
        .await;
    run.expect(2);
}
