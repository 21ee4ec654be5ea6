//! Who reaches every row of a tenant table (the reach set): each way a role
//! gets there shown failing the right check — in verify and monitor when the
//! app role can use it, in monitor (DRF004, drift against what apply
//! recorded) for any other role — on the RDS-shaped master, with the same
//! database unbroken passing; and the correct databases users have (a
//! SECURITY DEFINER function owned by the app role, a trigger function) passing.

use serde_json::Value;

use crate::support::*;
use crate::verify::{details, statuses, verify};

/// The sample database applied by the RDS master, with verify and monitor passing.
async fn applied_and_clean(apply: &[&str]) -> TestDb {
    let t = TestDb::demo_rds().await;
    t.run(apply).await.expect(0);
    verify(&t, &[]).await.0.expect(0);
    let (run, doc) = monitor_json(&t).await;
    run.expect(0);
    assert_eq!(statuses(&doc, "DRF004"), ["pass"], "{}", run.stdout);
    t
}

const APPLY: [&str; 5] = [
    "apply",
    "--app-password-from",
    "env:APP_PW",
    "--admin-password-from",
    "env:ADMIN_PW",
];

/// monitor exits 1 with DRF004 failing, and its details name `expected`.
async fn drift_names(t: &TestDb, expected: &str) {
    let (run, doc) = monitor_json(t).await;
    run.expect(1);
    let found = statuses(&doc, "DRF004");
    assert!(
        !found.is_empty() && found.iter().all(|s| s == "fail"),
        "{}",
        run.stdout
    );
    let detail = details(&doc, "DRF004");
    assert!(detail.contains(expected), "{detail}");
}

async fn server_version(t: &TestDb) -> i32 {
    let row = t
        .superuser()
        .await
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .unwrap();
    row.get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_of_the_break_glass_role_at_any_depth_is_drift_with_its_path() {
    let t = applied_and_clean(&APPLY).await;
    t.sql("CREATE ROLE reporter LOGIN PASSWORD 'rep-pw'; GRANT tenant_admin TO reporter")
        .await;
    // The hole is real: reporter reads every tenant's rows.
    let reporter = t.connect("reporter", "rep-pw").await.unwrap();
    reporter.simple("SET ROLE tenant_admin").await.unwrap();
    assert_eq!(
        count(&reporter, "SELECT count(DISTINCT tenant_id) FROM customers").await,
        3
    );
    drift_names(
        &t,
        "reporter → tenant_admin (policy rlsctl_break_glass is USING (true))",
    )
    .await;
    // verify is about the app role, which is not in the set.
    verify(&t, &[]).await.0.expect(0);
    // Deeper, and through a role that may only SET (no INHERIT).
    t.sql("REVOKE tenant_admin FROM reporter; CREATE ROLE middle NOLOGIN NOINHERIT; GRANT tenant_admin TO middle; GRANT middle TO reporter")
        .await;
    drift_names(&t, "reporter → middle → tenant_admin").await;
    // Undone: clean again; a set that shrank is information.
    t.sql("REVOKE middle FROM reporter; DROP ROLE middle").await;
    monitor_json(&t).await.0.expect(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_accepted_member_is_recorded_by_apply_and_no_longer_drift() {
    let t = applied_and_clean(&APPLY).await;
    t.sql("CREATE ROLE auditor NOLOGIN; GRANT tenant_admin TO auditor")
        .await;
    drift_names(&t, "auditor → tenant_admin").await;
    // Nothing else to change, yet apply records the set the operator accepts, and says so.
    let mut args = APPLY.to_vec();
    args.extend(["--format", "json"]);
    let run = t.run(&args).await;
    run.expect(0);
    let doc = run.json();
    assert_eq!(doc["summary"]["changes"], 0, "{}", run.stdout);
    let reach: Vec<&str> = doc["reach"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["role"].as_str().unwrap())
        .collect();
    assert!(
        reach.contains(&"auditor") && reach.contains(&"tenant_admin"),
        "{reach:?}"
    );
    monitor_json(&t).await.0.expect(0);
    // The text plan lists the set with paths.
    let run = t.run(&APPLY[..3]).await;
    run.expect(0);
    assert!(
        run.stdout
            .contains("auditor → tenant_admin (policy rlsctl_break_glass is USING (true))"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn createrole_reaches_every_row_on_15_and_older_only() {
    let t = applied_and_clean(&APPLY).await;
    t.sql("CREATE ROLE grantor LOGIN CREATEROLE").await;
    if server_version(&t).await < 160000 {
        // It can grant itself the break-glass role: shown, not just said.
        t.sql("ALTER ROLE grantor PASSWORD 'gr-pw'").await;
        let grantor = t.connect("grantor", "gr-pw").await.unwrap();
        grantor
            .simple("GRANT tenant_admin TO grantor")
            .await
            .unwrap();
        grantor
            .simple("REVOKE tenant_admin FROM grantor")
            .await
            .unwrap();
        drift_names(
            &t,
            "grantor (CREATEROLE: on PostgreSQL 15 and older it can grant itself",
        )
        .await;
    } else {
        // On 16 and later CREATEROLE grants only roles it holds ADMIN OPTION on.
        let (run, doc) = monitor_json(&t).await;
        run.expect(0);
        assert_eq!(statuses(&doc, "DRF004"), ["pass"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_break_glass_role_gaining_login_is_drift() {
    // Applied without a break-glass password: the role cannot log in.
    let t = applied_and_clean(&APPLY[..3]).await;
    t.sql("ALTER ROLE tenant_admin LOGIN PASSWORD 'now-it-can'")
        .await;
    drift_names(&t, "tenant_admin can now log in").await;
    t.sql("ALTER ROLE tenant_admin NOLOGIN").await;
    monitor_json(&t).await.0.expect(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_table_owner_is_drift() {
    let t = applied_and_clean(&APPLY).await;
    t.sql("CREATE ROLE shop_owner NOLOGIN; ALTER TABLE customers OWNER TO shop_owner")
        .await;
    drift_names(
        &t,
        "shop_owner (owns the table (it can turn RLS off), on 1 tenant table(s))",
    )
    .await;
}

/// A view that is not security_invoker runs as its owner: owned by the
/// break-glass role, it hands the app role every tenant's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_view_owned_by_the_break_glass_role_fails_verify_and_monitor() {
    let t = applied_and_clean(&APPLY).await;
    // The same view owned by the app role reads under its policies: no finding.
    t.sql("CREATE VIEW every_customer AS SELECT * FROM customers; ALTER VIEW every_customer OWNER TO app_user")
        .await;
    verify(&t, &[]).await.0.expect(0);
    monitor_json(&t).await.0.expect(0);
    t.sql("ALTER VIEW every_customer OWNER TO tenant_admin; GRANT SELECT ON every_customer TO app_user")
        .await;
    assert_eq!(
        tenants_seen(
            &t,
            TENANTS[0],
            "SELECT count(DISTINCT tenant_id) FROM every_customer"
        )
        .await,
        3,
        "the leak is real"
    );
    for (what, (run, doc)) in [
        ("verify", verify(&t, &[]).await),
        ("monitor", monitor_json(&t).await),
    ] {
        assert_eq!(run.code, 1, "{what}: {}", run.stdout);
        assert_eq!(statuses(&doc, "BYP001"), ["fail"], "{what}: {}", run.stdout);
        assert!(
            details(&doc, "BYP001").contains("its owner tenant_admin, who reaches every row: tenant_admin (policy rlsctl_break_glass"),
            "{what}: {}",
            details(&doc, "BYP001")
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn definer_functions_are_bypasses_only_when_their_owner_reaches_every_row() {
    let t = applied_and_clean(&APPLY).await;
    // Owned by the app role itself: it runs under the app role's policies.
    // A trigger function nobody can call, attached to nothing the app writes:
    // not a way in either.
    t.sql(
        "CREATE FUNCTION public.customer_count() RETURNS bigint LANGUAGE sql SECURITY DEFINER
           SET search_path = public, pg_temp AS 'SELECT count(*) FROM customers';
         ALTER FUNCTION public.customer_count() OWNER TO app_user;
         CREATE FUNCTION public.stamp() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
           SET search_path = public, pg_temp AS 'BEGIN PERFORM count(*) FROM customers; RETURN NEW; END';",
    )
    .await;
    verify(&t, &[]).await.0.expect(0);
    monitor_json(&t).await.0.expect(0);
    // Owned by the break-glass role, the same function reads every tenant.
    t.sql("ALTER FUNCTION public.customer_count() OWNER TO tenant_admin")
        .await;
    let app = t.app().await;
    let app_transaction = app.begin(rlsctl::pg::Begin::Plain).await.unwrap();
    rlsctl::pg::tenant::set_local(&app, "app.tenant_id", TENANTS[0])
        .await
        .unwrap();
    let all = count(&app, "SELECT public.customer_count()").await;
    let own = count(&app, "SELECT count(*) FROM customers").await;
    assert!(all > own, "the leak is real: {all} > {own}");
    app_transaction.rollback().await.unwrap();
    for (what, (run, doc)) in [
        ("verify", verify(&t, &[]).await),
        ("monitor", monitor_json(&t).await),
    ] {
        assert_eq!(run.code, 1, "{what}: {}", run.stdout);
        assert_eq!(statuses(&doc, "BYP003"), ["fail"], "{what}: {}", run.stdout);
        assert!(
            details(&doc, "BYP003").contains("customer_count()"),
            "{what}"
        );
    }
    // A trigger function owned by the break-glass role on a table the app writes: it fires as its owner.
    t.sql("ALTER FUNCTION public.customer_count() OWNER TO app_user; ALTER FUNCTION public.stamp() OWNER TO tenant_admin;
           CREATE TRIGGER stamp BEFORE INSERT ON vehicles FOR EACH ROW EXECUTE FUNCTION public.stamp()")
        .await;
    let (run, doc) = verify(&t, &[]).await;
    run.expect(1);
    assert!(
        details(&doc, "BYP003").contains("can fire SECURITY DEFINER public.stamp()"),
        "{}",
        run.stdout
    );
}

/// verify and monitor both exit 1 with `check` failing, its details naming `expected`.
async fn both_fail(t: &TestDb, check: &str, expected: &str) {
    for (what, (run, doc)) in [
        ("verify", verify(t, &[]).await),
        ("monitor", monitor_json(t).await),
    ] {
        assert_eq!(run.code, 1, "{what}: {}", run.stdout);
        assert!(
            statuses(&doc, check).iter().any(|s| s == "fail"),
            "{what}: {}",
            run.stdout
        );
        let detail = details(&doc, check);
        assert!(detail.contains(expected), "{what}: {detail}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_that_can_write_the_tools_records_fails_verify_and_monitor() {
    let t = applied_and_clean(&APPLY).await;
    t.sql("GRANT INSERT, UPDATE ON rlsctl.tenant_tables TO app_user")
        .await;
    both_fail(
        &t,
        "BYP007",
        "app_user can INSERT, UPDATE rlsctl.tenant_tables",
    )
    .await;
    t.sql("REVOKE INSERT, UPDATE ON rlsctl.tenant_tables FROM app_user")
        .await;
    // Through a role it is a member of, and CREATE on the schema.
    t.sql("CREATE ROLE records_editor NOLOGIN; GRANT DELETE ON rlsctl.break_glass_log TO records_editor; GRANT records_editor TO app_user")
        .await;
    both_fail(&t, "BYP007", "app_user can DELETE rlsctl.break_glass_log").await;
    t.sql("REVOKE records_editor FROM app_user; CREATE ROLE planter LOGIN; GRANT CREATE ON SCHEMA rlsctl TO planter")
        .await;
    both_fail(&t, "BYP007", "planter can create objects in schema rlsctl").await;
    t.sql("REVOKE CREATE ON SCHEMA rlsctl FROM planter").await;
    verify(&t, &[]).await.0.expect(0);
    monitor_json(&t).await.0.expect(0);
}

/// The registry is what drift is measured against: a weakened policy with the
/// registry rewritten to match passes DRF002, and DRF008 catches the edit.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_edited_behind_monitors_back_is_drift() {
    let t = applied_and_clean(&APPLY).await;
    t.sql(
        "ALTER POLICY tenant_isolation ON customers USING (tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')) OR tenant_id = 'quickfix');
         UPDATE rlsctl.tenant_tables tt SET installed_using = pg_get_expr(p.polqual, p.polrelid), installed_using_md5 = md5(p.polqual::text)
         FROM pg_policy p WHERE p.polrelid = 'public.customers'::regclass AND p.polname = 'tenant_isolation'
           AND tt.table_name = 'customers'",
    )
    .await;
    let (run, doc) = monitor_json(&t).await;
    run.expect(1);
    assert_eq!(
        statuses(&doc, "DRF002"),
        ["pass"],
        "the edit hides the changed policy from DRF002"
    );
    assert_eq!(statuses(&doc, "DRF008"), ["fail"], "{}", run.stdout);
    assert!(details(&doc, "DRF008").contains("changed outside apply"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shadow_function_is_executable_only_in_shadow_mode() {
    let t = TestDb::demo_rds().await;
    let mut shadow = APPLY.to_vec();
    shadow.push("--shadow");
    t.run(&shadow).await.expect(0);
    let executable = "SELECT has_function_privilege('app_user', 'rlsctl.shadow_seen(text, text)', 'EXECUTE')::int::bigint";
    assert_eq!(count(&t.superuser().await, executable).await, 1);
    t.run(&APPLY).await.expect(0);
    assert_eq!(
        count(&t.superuser().await, executable).await,
        0,
        "enforcing revokes it"
    );
    verify(&t, &[]).await.0.expect(0);
    monitor_json(&t).await.0.expect(0);
    t.sql("GRANT EXECUTE ON FUNCTION rlsctl.shadow_seen(text, text) TO app_user")
        .await;
    both_fail(
        &t,
        "BYP007",
        "app_user can execute rlsctl.shadow_seen while no table is in shadow mode",
    )
    .await;
    // apply revokes it again, with no table to change.
    t.run(&APPLY).await.expect(0);
    assert_eq!(count(&t.superuser().await, executable).await, 0);
    monitor_json(&t).await.0.expect(0);
}

/// The preflight status of `id` in apply's JSON.
fn preflight(doc: &Value, id: &str) -> Vec<String> {
    statuses(&doc["preflight"], id)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_superuser_apply_logs_the_break_glass_role_and_monitor_guards_it() {
    let t = TestDb::demo().await;
    let mut args = APPLY.to_vec();
    args.extend(["--format", "json"]);
    let run = t.run(&args).await;
    run.expect(0);
    let doc = run.json();
    assert_eq!(preflight(&doc, "PRE010"), ["pass"], "{}", run.stdout);
    assert_eq!(doc["plan"]["break_glass_logging"], "log_statement=all");
    let settings = "SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole
                    WHERE r.rolname = 'tenant_admin' AND 'log_statement=all' = ANY(s.setconfig)";
    assert_eq!(count(&t.superuser().await, settings).await, 1);
    let (run, doc) = monitor_json(&t).await;
    run.expect(0);
    assert_eq!(statuses(&doc, "DRF009"), ["pass"]);
    t.sql("ALTER ROLE tenant_admin RESET log_statement").await;
    let (run, doc) = monitor_json(&t).await;
    run.expect(1);
    assert_eq!(statuses(&doc, "DRF009"), ["fail"]);
    assert!(details(&doc, "DRF009").contains("log_statement=all was removed from tenant_admin"));
    t.run(&APPLY).await.expect(0);
    monitor_json(&t).await.0.expect(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rds_master_without_pgaudit_is_told_how_to_log_break_glass_use() {
    let t = TestDb::demo_rds().await;
    let mut args = APPLY.to_vec();
    args.extend(["--format", "json"]);
    let run = t.run(&args).await;
    run.expect(0);
    let doc = run.json();
    assert_eq!(preflight(&doc, "PRE010"), ["warn"], "{}", run.stdout);
    assert!(details(&doc["preflight"], "PRE010").contains("break-glass use will not be logged"));
    assert!(doc["plan"]["break_glass_logging"].is_null());
    let (run, doc) = monitor_json(&t).await;
    run.expect(0);
    assert_eq!(statuses(&doc, "DRF009"), ["skip"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_logged_in_as_the_break_glass_role_is_reported() {
    let t = applied_and_clean(&APPLY).await;
    let (_, doc) = monitor_json(&t).await;
    assert_eq!(statuses(&doc, "DRF010"), ["pass"]);
    let admin = t.connect("tenant_admin", ADMIN_PASSWORD).await.unwrap();
    let pid = count(&admin, "SELECT pg_backend_pid()::bigint").await;
    let (run, doc) = monitor_json(&t).await;
    run.expect(0);
    assert_eq!(statuses(&doc, "DRF010"), ["warn"], "{}", run.stdout);
    assert!(details(&doc, "DRF010").contains(&format!("pid {pid}")));
    t.run_env(&["monitor", "--strict"], &AS_APP).await.expect(1);
    drop(admin);
}

/// A history row whose recorded reach set is not what apply writes stops
/// monitor with exit 2 naming what it read: never "nothing was recorded".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbled_history_row_is_an_error_not_a_clean_run() {
    let t = applied_and_clean(&APPLY).await;
    t.sql("UPDATE rlsctl.bundle_history SET reach = '{\"role\": \"nobody\"}'")
        .await;
    let run = t.run_env(&["monitor"], &AS_APP).await;
    run.expect(2);
    assert!(
        run.stderr.contains("reading bundle_records: the reach set in the last history row is not what apply writes"),
        "{}",
        run.stderr
    );
}
