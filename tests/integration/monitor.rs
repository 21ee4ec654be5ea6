//! `rlsctl monitor` (drift) and `rlsctl rollback` (break-glass, restore, uninstall).

use serde_json::Value;

use crate::support::*;
use crate::verify::{details, statuses};

async fn monitor(t: &TestDb, extra: &[&str]) -> Run {
    let mut args = vec!["monitor"];
    args.extend_from_slice(extra);
    t.run_env(&args, &AS_APP).await
}

/// The findings of `check` that did not pass, as "status object: detail".
fn problems(doc: &Value, id: &str) -> Vec<String> {
    check(doc, id)
        .into_iter()
        .filter(|c| c.status != "pass")
        .map(|c| format!("{} {}: {}", c.status, c.object, c.detail))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_is_clean_and_quiet_right_after_apply() {
    let t = TestDb::demo().await;
    t.applied().await;
    let run = monitor(&t, &["--format", "json"]).await;
    run.expect(0);
    let doc = run.json();
    assert_eq!(doc["command"], "monitor");
    assert_eq!(doc["summary"]["failed"], 0, "{}", run.stdout);
    assert_eq!(statuses(&doc, "DRF001"), ["pass"]);
    let quiet = monitor(&t, &["--quiet"]).await;
    quiet.expect(0);
    assert_eq!(quiet.stdout, "");
    assert_eq!(quiet.stderr, "");
    // It never prompts: without a password source and no TTY it fails at once.
    let no_password = t
        .run_env(&["monitor"], &[("PGUSER", "app_user"), ("PGPASSWORD", "")])
        .await;
    no_password.expect(2);
    assert!(
        no_password.stderr.contains("needs a password"),
        "{}",
        no_password.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_without_the_bundle_reports_drift() {
    let t = TestDb::demo().await;
    t.sql("CREATE ROLE app_user LOGIN PASSWORD 'x'").await;
    let run = t
        .run_env(
            &["monitor", "--format", "json"],
            &[("PGUSER", "app_user"), ("PGPASSWORD", "x")],
        )
        .await;
    run.expect(1);
    assert!(problems(&run.json(), "DRF001")[0].contains("never applied"));
}

/// Through the one harness (crate::breaks): passes, breaks, fails with
/// `check`; then monitor names `object` under it, in JSON and in Prometheus.
async fn drift(breakage: &str, check: &str, object: &str) {
    let t = crate::breaks::breaks(crate::breaks::Break::of(&[], &[breakage], check))
        .await
        .t;
    let run = monitor(&t, &["--format", "json"]).await;
    run.expect(1);
    let found = problems(&run.json(), check);
    assert!(
        found.iter().any(|p| p.contains(object)),
        "{check} did not name {object} after {breakage}: {found:?}\n{}",
        run.stdout
    );
    let prom = monitor(&t, &["--format", "prometheus"]).await;
    prom.expect(1);
    assert!(
        prom.stdout.lines().any(
            |l| l.starts_with(&format!("rlsctl_check_status{{id=\"{check}\""))
                && l.contains("status=\"fail\"")
                && l.contains(object)
        ),
        "{}",
        prom.stdout
    );
    assert!(prom.stdout.contains("rlsctl_drift 1"));
}

macro_rules! drift {
    ($($name:ident: $check:literal $object:literal => $sql:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                drift($sql, $check, $object).await;
            }
        )*
    };
}

drift! {
    rls_turned_off: "RLS001" "public.customers" => "ALTER TABLE customers DISABLE ROW LEVEL SECURITY";
    force_turned_off: "RLS002" "public.vehicles" => "ALTER TABLE vehicles NO FORCE ROW LEVEL SECURITY";
    isolation_policy_changed: "DRF002" "public.services" =>
        "ALTER POLICY tenant_isolation ON services USING (tenant_id = current_setting('app.tenant_id', true))";
    isolation_policy_dropped: "DRF002" "public.appointments" => "DROP POLICY tenant_isolation ON appointments";
    new_permissive_policy: "RLS005" "public.customers policy peek" => "CREATE POLICY peek ON customers FOR SELECT TO PUBLIC USING (true)";
    new_permissive_policy_is_drift_too: "DRF002" "public.customers policy peek" => "CREATE POLICY peek ON customers FOR SELECT TO PUBLIC USING (true)";
    uncovered_table: "RLS006" "public.invoices" => "CREATE TABLE invoices (id int, tenant_id text)";
    app_role_gained_superuser: "ROLE002" "app_user" => "ALTER ROLE app_user SUPERUSER";
    app_role_gained_bypassrls: "ROLE003" "app_user" => "ALTER ROLE app_user BYPASSRLS";
    app_role_gained_a_membership_path: "ROLE004" "app_user" => "CREATE ROLE ops NOLOGIN BYPASSRLS; GRANT ops TO app_user";
    app_role_gained_ownership: "ROLE005" "public.services" => "ALTER TABLE services OWNER TO app_user; ALTER TABLE services NO FORCE ROW LEVEL SECURITY";
    app_role_gained_truncate: "ROLE007" "public.customers" => "GRANT TRUNCATE ON customers TO app_user";
    another_bypassrls_role_appeared: "DRF004" "reporting" => "CREATE ROLE reporting LOGIN BYPASSRLS";
    null_tenant_rows_appeared: "RLS007" "public.vehicles" =>
        "INSERT INTO vehicles (tenant_id, customer_id, vin, make, model) VALUES (NULL, 1, 'V', 'M', 'X')";
    helper_replaced: "DRF005" "rlsctl.null_tenant_counts()" =>
        "CREATE OR REPLACE FUNCTION rlsctl.null_tenant_counts() RETURNS TABLE (schema_name text, table_name text, null_rows bigint)
         LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$ SELECT 'public', 'customers', 0::bigint $$";
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_file_is_replaced_atomically() {
    let t = TestDb::demo().await;
    t.applied().await;
    let path = t.sandbox.dir().join("textfile").join("rlsctl.prom");
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let target = path.to_str().unwrap().to_string();
    monitor(&t, &["--format", "prometheus", "--output", &target])
        .await
        .expect(0);
    let first = std::fs::read_to_string(&path).unwrap();
    assert!(
        first.contains("rlsctl_drift 0") && first.contains("rlsctl_last_run_timestamp_seconds"),
        "{first}"
    );
    // node_exporter runs as its own user: the textfile must be readable by it.
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o644, "textfile mode {mode:o}");

    // A reader polling the file while monitor rewrites it sees whole files only.
    t.sql("ALTER TABLE customers NO FORCE ROW LEVEL SECURITY")
        .await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let reader = {
        let (path, stop) = (path.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut reads = 0;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let text = std::fs::read_to_string(&path).unwrap();
                assert!(
                    text.ends_with("\n") && text.contains("rlsctl_last_run_timestamp_seconds"),
                    "partial file: {text:?}"
                );
                reads += 1;
            }
            reads
        })
    };
    for _ in 0..5 {
        monitor(&t, &["--format", "prometheus", "--output", &target])
            .await
            .expect(1);
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert!(reader.join().unwrap() > 0);
    let last = std::fs::read_to_string(&path).unwrap();
    assert!(last.contains("rlsctl_drift 1"));
    let leftovers: Vec<_> = std::fs::read_dir(path.parent().unwrap()).unwrap().collect();
    assert_eq!(leftovers.len(), 1, "temp files left behind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn break_glass_cycle() {
    let t = TestDb::demo().await;
    t.applied().await;
    let run = t
        .run(&[
            "rollback",
            "--table",
            "customers",
            "--reason",
            "INC-1234 checkout down",
            "--yes",
        ])
        .await;
    run.expect(0);
    assert!(
        run.stdout.contains("rlsctl rollback --restore"),
        "{}",
        run.stdout
    );

    // The effect is real: under tenant 1 the app sees every tenant's customers.
    let app = t.app().await;
    let app_transaction = app.begin(rlsctl::pg::Begin::Plain).await.unwrap();
    rlsctl::pg::tenant::set_local(&app, "app.tenant_id", TENANTS[0])
        .await
        .unwrap();
    assert_eq!(
        count(&app, "SELECT count(DISTINCT tenant_id) FROM customers").await,
        3
    );
    assert_eq!(
        count(&app, "SELECT count(DISTINCT tenant_id) FROM vehicles").await,
        1
    );
    app_transaction.rollback().await.unwrap();

    let drift = monitor(&t, &["--format", "json"]).await;
    drift.expect(1);
    let found = problems(&drift.json(), "DRF003");
    assert_eq!(found.len(), 1, "{found:?}");
    assert!(
        found[0].contains("public.customers")
            && found[0].contains("postgres")
            && found[0].contains("INC-1234 checkout down"),
        "{found:?}"
    );

    t.run(&["rollback", "--restore"]).await.expect(0);
    monitor(&t, &[]).await.expect(0);
    let (verified, _) = crate::verify::verify(&t, &[]).await;
    verified.expect(0);
    let log = t.superuser().await;
    assert_eq!(count(&log, "SELECT count(*) FROM rlsctl.break_glass_log WHERE ended_at IS NOT NULL AND ended_by = 'postgres'").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_refuses_without_reason_or_confirmation() {
    let t = TestDb::demo().await;
    t.applied().await;
    let su = t.superuser().await;
    let before = catalog_snapshot(&su).await;
    let no_reason = t.run(&["rollback", "--table", "customers", "--yes"]).await;
    no_reason.expect(2);
    assert!(
        no_reason.stderr.contains("--reason is required"),
        "{}",
        no_reason.stderr
    );
    let no_tty = t.run(&["rollback", "--all", "--reason", "INC-1"]).await;
    no_tty.expect(2);
    assert!(no_tty.stderr.contains("--yes"), "{}", no_tty.stderr);
    let unknown = t
        .run(&[
            "rollback", "--table", "tenants", "--reason", "INC-1", "--yes",
        ])
        .await;
    unknown.expect(2);
    assert_eq!(catalog_snapshot(&su).await, before);
    assert_eq!(
        count(&su, "SELECT count(*) FROM rlsctl.break_glass_log").await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uninstall_returns_the_catalog_to_its_pre_apply_state() {
    let t = TestDb::demo().await;
    // A PUBLIC grant the bundle revokes; uninstall must give it back.
    t.sql("GRANT SELECT ON services TO PUBLIC").await;
    let su = t.superuser().await;
    let before = catalog_snapshot(&su).await;
    t.applied().await;
    t.run(&[
        "rollback", "--table", "vehicles", "--reason", "INC-9", "--yes",
    ])
    .await
    .expect(0);
    let run = t
        .run(&[
            "rollback",
            "--uninstall",
            "--drop-roles",
            "--reason",
            "project cancelled",
            "--yes",
        ])
        .await;
    run.expect(0);
    assert_eq!(catalog_snapshot(&su).await, before);
    assert_eq!(
        count(
            &su,
            "SELECT count(*) FROM rlsctl.break_glass_log WHERE action = 'uninstall'"
        )
        .await,
        1
    );
    // Roles kept without --drop-roles; a fresh apply works again afterwards.
    t.applied().await;
    t.run(&["rollback", "--uninstall", "--reason", "again", "--yes"])
        .await
        .expect(0);
    assert_eq!(
        count(
            &su,
            "SELECT count(*) FROM pg_roles WHERE rolname IN ('app_user', 'tenant_admin')"
        )
        .await,
        2
    );
    assert_eq!(count(&su, "SELECT count(*) FROM pg_policy").await, 0);
}

/// The statements monitor sent, from its own log line.
/// monitor's statements, less the session-state probe's looks for its
/// closed connection's process to end (one on an idle server, more under
/// load: not the tables' doing).
fn monitor_statements(run: &Run) -> u64 {
    run.stderr
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .find(|l| l["fields"]["message"] == "monitor done")
        .and_then(|l| {
            let fields = &l["fields"];
            Some(fields["statements"].as_u64()? - fields["probe_waits"].as_u64()?)
        })
        .unwrap_or_else(|| panic!("no statement count in {}", run.stderr))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn monitor_statements_do_not_grow_with_tables() {
    let mut counts = Vec::new();
    for n in [4, 2000] {
        let t = TestDb::empty().await;
        t.sql(&format!(
            "DO $$ BEGIN FOR i IN 1..{n} LOOP
               EXECUTE format('CREATE TABLE t%s (id int PRIMARY KEY, tenant_id text NOT NULL); CREATE INDEX ON t%s (tenant_id)', i, i);
             END LOOP; END $$"
        ))
        .await;
        let tables: Vec<String> = (1..=n).map(|i| format!("t{i}")).collect();
        let tables = tables.join(",");
        let env = [("RLSCTL_TENANT_TABLES", tables.as_str())];
        t.run_env(&["apply", "--app-password-from", "env:APP_PW"], &env)
            .await
            .expect(0);
        let run = t
            .run_env(
                &["monitor", "-v", "--log-format", "json"],
                &[env[0], ("PGUSER", "app_user"), ("PGPASSWORD", APP_PASSWORD)],
            )
            .await;
        run.expect(0);
        counts.push(monitor_statements(&run));
    }
    assert_eq!(counts[0], counts[1], "statements at 4 and 2,000 tables");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn configured_tables_that_differ_from_the_installed_ones_warn() {
    let t = TestDb::demo().await;
    t.applied().await;
    let env = [
        ("PGUSER", "app_user"),
        ("PGPASSWORD", APP_PASSWORD),
        ("RLSCTL_TENANT_TABLES", "customers,vehicles,appointments"),
    ];
    let run = t.run_env(&["monitor", "--format", "json"], &env).await;
    run.expect(0);
    let found = problems(&run.json(), "DRF006");
    assert!(
        found.iter().any(|p| p.starts_with("warn public.services")),
        "{found:?}"
    );
    t.run_env(&["monitor", "--strict"], &env).await.expect(1);
}

/// Runs `rlsctl <args>` on a pseudo-terminal (util-linux `script`, essential on Debian), typing `input`.
async fn on_a_tty(t: &TestDb, args: &str, input: &str) -> Run {
    let command = format!("{} {args}", env!("CARGO_BIN_EXE_rlsctl"));
    let mut child = tokio::process::Command::new("script")
        .args(["-qec", &command, "/dev/null"])
        .env_clear()
        .envs(&t.env)
        .current_dir(t.sandbox.dir())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use tokio::io::AsyncWriteExt;
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).await.unwrap();
    let output = tokio::time::timeout(HUNG_AFTER, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("still running after {HUNG_AFTER:?}"))
        .unwrap();
    drop(stdin);
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_tty_break_glass_asks_for_the_database_name() {
    let t = TestDb::demo().await;
    t.applied().await;
    let su = t.superuser().await;
    let wrong = on_a_tty(
        &t,
        "rollback --table customers --reason INC-7",
        "production\n",
    )
    .await;
    assert_eq!(wrong.code, 2, "{wrong:?}");
    assert!(
        wrong.stdout.contains("Type the database name to confirm"),
        "{wrong:?}"
    );
    assert_eq!(
        count(&su, "SELECT count(*) FROM rlsctl.break_glass_log").await,
        0
    );
    let right = on_a_tty(
        &t,
        "rollback --table customers --reason INC-7",
        &format!("{DB}\n"),
    )
    .await;
    assert_eq!(right.code, 0, "{right:?}");
    assert_eq!(
        count(
            &su,
            "SELECT count(*) FROM rlsctl.break_glass_log WHERE ended_at IS NULL"
        )
        .await,
        1
    );
}

/// Lists of role names are read as arrays: an applier whose name holds a
/// comma owns the rlsctl schema it made, and DRF007 says so without alarm.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_name_with_a_comma_is_one_role() {
    let t = TestDb::demo().await;
    t.sql(
        "CREATE ROLE \"ops, oncall\" LOGIN CREATEROLE PASSWORD 'ops-pw'; \
         GRANT postgres TO \"ops, oncall\"",
    )
    .await;
    t.apply_env(&[], &[("PGUSER", "ops, oncall"), ("PGPASSWORD", "ops-pw")])
        .await
        .expect(0);
    let (run, doc) = monitor_json(&t).await;
    run.expect(0);
    assert_eq!(
        crate::verify::statuses(&doc, "DRF007"),
        ["pass"],
        "{}",
        run.stdout
    );
}

/// A registry an older rlsctl wrote has no `policy_since` and keeps each
/// policy's stored trees rather than their md5, and its history only the
/// checksum over those trees: monitor still reads it (each column is read only
/// where it exists), so an intact one is clean, its recorded text is used while
/// the trees are unchanged, and one edited behind apply fails DRF008.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_from_an_older_rlsctl_is_read() {
    let t = TestDb::demo().await;
    t.applied().await;
    let su = t.superuser().await;
    su.simple(&format!(
        "ALTER TABLE rlsctl.tenant_tables DROP COLUMN policy_since;
         UPDATE rlsctl.tenant_tables tt SET installed_using_tree = p.polqual::text, installed_check_tree = p.polwithcheck::text
         FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace
         WHERE p.polname = 'tenant_isolation' AND n.nspname = tt.schema_name AND c.relname = tt.table_name;
         ALTER TABLE rlsctl.tenant_tables DROP COLUMN installed_using_md5, DROP COLUMN installed_check_md5;
         ALTER TABLE rlsctl.bundle_history DROP COLUMN registry_digest;
         UPDATE rlsctl.bundle_history SET registry_checksum = {}
         WHERE id = (SELECT max(id) FROM rlsctl.bundle_history)",
        include_str!("../../sql/bundle/registry_checksum.sql")
    ))
    .await
    .unwrap();
    let run = monitor(&t, &["--format", "json"]).await;
    run.expect(0);
    assert_eq!(statuses(&run.json(), "DRF008"), ["pass"], "{}", run.stdout);
    registry_text_is_used_then_an_edit_is_drift(&t, &su).await;
}

/// A registry this rlsctl wrote: the text apply recorded stands for each
/// policy whose stored trees still have the md5 apply recorded (no deparse);
/// the registry's digest covers that text, so an edit to it is DRF008.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_registry_text_stands_for_a_policy_with_unchanged_trees() {
    let t = TestDb::demo().await;
    t.applied().await;
    let su = t.superuser().await;
    assert_eq!(
        count(
            &su,
            "SELECT count(*) FROM rlsctl.tenant_tables WHERE installed_using_tree IS NULL AND installed_using_md5 IS NOT NULL"
        )
        .await,
        count(&su, "SELECT count(*) FROM rlsctl.tenant_tables").await,
        "apply records the md5 of each tree, not the tree"
    );
    registry_text_is_used_then_an_edit_is_drift(&t, &su).await;
}

/// The registry's text for customers is replaced by `true` behind apply's
/// back: RLS005 reads the policy as `true` (the recorded text was used, not a
/// deparse of the unchanged policy), and DRF008 says the registry was changed
/// outside apply.
async fn registry_text_is_used_then_an_edit_is_drift(t: &TestDb, su: &rlsctl::pg::Db) {
    su.simple(
        "UPDATE rlsctl.tenant_tables SET installed_using = 'true' WHERE table_name = 'customers'",
    )
    .await
    .unwrap();
    let run = monitor(t, &["--format", "json"]).await;
    run.expect(1);
    let doc = run.json();
    assert!(
        details(&doc, "RLS005")
            .contains("tenant_isolation (ALL) ORs with the isolation policy: true"),
        "{}",
        run.stdout
    );
    assert!(!problems(&doc, "DRF008").is_empty(), "{}", run.stdout);
}
