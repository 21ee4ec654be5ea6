//! `rlsctl verify`: passes on the applied sample schema, and each check fails
//! on a database broken in exactly its way.

use serde_json::Value;

use crate::support::*;

/// Runs verify as the app role with two real tenants, JSON output.
pub async fn verify(t: &TestDb, extra: &[&str]) -> (Run, Value) {
    let mut args = vec![
        "verify", "--format", "json", "--tenant", TENANTS[0], "--tenant", TENANTS[1],
    ];
    args.extend_from_slice(extra);
    let run = t.run_env(&args, &AS_APP).await;
    let json = run.json();
    (run, json)
}

/// The statuses a check reported.
pub fn statuses(doc: &Value, id: &str) -> Vec<String> {
    check(doc, id).into_iter().map(|c| c.status).collect()
}

/// The details a check reported, one line each.
pub fn details(doc: &Value, id: &str) -> String {
    let details: Vec<String> = check(doc, id).into_iter().map(|c| c.detail).collect();
    details.join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_passes_on_the_applied_sample_and_changes_nothing() {
    let t = TestDb::demo().await;
    t.applied().await;
    let su = t.superuser().await;
    let before = contents_checksum(&su).await;
    let (run, doc) = verify(&t, &[]).await;
    run.expect(0);
    assert_eq!(
        contents_checksum(&su).await,
        before,
        "verify changed table contents"
    );

    assert_eq!(doc["command"], "verify");
    assert_eq!(doc["database"]["name"], DB);
    assert_eq!(doc["database"]["user"], "app_user");
    assert!(doc["database"]["server_version"]
        .as_str()
        .unwrap()
        .starts_with(char::is_numeric));
    for check in doc["checks"].as_array().unwrap() {
        assert_eq!(check["status"], "pass", "{check}");
        for key in [
            "id", "title", "severity", "status", "object", "detail", "remedy",
        ] {
            assert!(check.get(key).is_some(), "{key} missing in {check}");
        }
    }
    let summary = &doc["summary"];
    assert_eq!(summary["failed"], 0);
    assert_eq!(
        summary["passed"].as_u64().unwrap() as usize,
        doc["checks"].as_array().unwrap().len()
    );
    for id in [
        "ROLE001", "ROLE004", "RLS002", "RLS005", "BYP001", "BYP006", "PRB001", "PRB002", "PRB003",
        "PRB004", "PRF002",
    ] {
        assert_eq!(statuses(&doc, id), ["pass"], "{id}");
    }

    // Text output: a table and the summary line.
    let text = t
        .run_env(&["verify", "--tenant", TENANTS[0]], &AS_APP)
        .await;
    text.expect(0);
    // The row of RLS002 has "pass" in its status cell (not "bypasses" in
    // a detail).
    assert!(
        text.stdout.lines().any(|l| {
            let cells: Vec<&str> = l.split(['│', '┆']).map(str::trim).collect();
            cells.windows(2).any(|w| w == ["RLS002", "pass"])
        }),
        "{}",
        text.stdout
    );
    assert!(text.stdout.contains(" 0 failed"), "{}", text.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_tenants_read_isolation_is_only_a_warning() {
    let t = TestDb::demo().await;
    t.applied().await;
    let args = ["verify", "--format", "json"];
    let run = t.run_env(&args, &AS_APP).await;
    run.expect(0);
    let doc = run.json();
    assert_eq!(statuses(&doc, "PRB002"), ["warn"]);
    assert_eq!(statuses(&doc, "PRB003"), ["pass"]);
    assert_eq!(statuses(&doc, "PRB001"), ["pass"]);
    let strict = t
        .run_env(&[&args[..], &["--strict"]].concat(), &AS_APP)
        .await;
    strict.expect(1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn as_postgres_verify_fails_and_skips_the_probes() {
    let t = TestDb::demo().await;
    t.applied().await;
    let run = t
        .run(&[
            "verify", "--format", "json", "-U", "postgres", "--tenant", TENANTS[0],
        ])
        .await;
    run.expect(1);
    let doc = run.json();
    assert_eq!(statuses(&doc, "ROLE001"), ["fail"]);
    for id in ["PRB001", "PRB002", "PRB003", "PRB004", "PRF002"] {
        assert_eq!(statuses(&doc, id), ["skip"], "{id}");
        let reason = doc["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["id"] == id)
            .unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(reason.contains("superuser"), "{reason}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn awkward_tenant_ids_are_bound_as_data() {
    let t = TestDb::demo().await;
    t.applied().await;
    let su = t.superuser().await;
    let big = "x".repeat(10 * 1024);
    let ids = [
        "O'Brien\"; DROP TABLE customers; --",
        "back\\slash \\' ünïcødé 🚗",
        big.as_str(),
        "a\u{1}b\tc",
    ];
    // Each awkward tenant owns a row, so the read probe has something to prove.
    for id in &ids {
        su.execute(
            "INSERT INTO tenants (id, name) VALUES ($1, 'awkward')",
            &[id],
        )
        .await
        .unwrap();
        su.execute(
            "INSERT INTO customers (tenant_id, full_name) VALUES ($1, 'awkward')",
            &[id],
        )
        .await
        .unwrap();
    }
    let before = contents_checksum(&su).await;
    let ids = &ids[..3];
    let mut args = vec!["verify", "--format", "json"];
    for id in ids {
        args.extend(["--tenant", id]);
    }
    let run = t.run_env(&args, &AS_APP).await;
    run.expect(0);
    let doc = run.json();
    for id in ["PRB001", "PRB002", "PRB003", "PRB004"] {
        assert_eq!(statuses(&doc, id), ["pass"], "{id}");
    }
    assert_eq!(contents_checksum(&su).await, before);
    // Control characters are data too. (A NUL cannot reach argv at all, and
    // PostgreSQL text cannot hold one.)
    let control = t
        .run_env(
            &["verify", "--tenant", "a\u{1}b\tc", "--tenant", TENANTS[0]],
            &AS_APP,
        )
        .await;
    control.expect(0);
    assert_eq!(contents_checksum(&su).await, before);
}

/// Through the one harness (crate::breaks): verify (and monitor, for a
/// catalog check) pass, then report `check` with `status` after `breakage`.
async fn broken(breakage: &str, check: &str, status: &str, verify_args: &[&str]) {
    crate::breaks::breaks(crate::breaks::Break {
        status,
        verify_args,
        ..crate::breaks::Break::of(&[], &[breakage], check)
    })
    .await;
}

macro_rules! breakage {
    ($($name:ident: $check:literal $status:literal $extra:expr => $sql:expr;)*) => {
        $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                broken($sql, $check, $status, $extra).await;
            }
        )*
    };
}

const SCOPED: &str = "tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), ''))";

breakage! {
    rls_off_fails_rls001: "RLS001" "fail" &[] => "ALTER TABLE customers DISABLE ROW LEVEL SECURITY";
    force_off_with_the_app_role_owning_fails_role005: "ROLE005" "fail" &[] =>
        "ALTER TABLE customers OWNER TO app_user; ALTER TABLE customers NO FORCE ROW LEVEL SECURITY";
    force_off_fails_rls002: "RLS002" "fail" &[] => "ALTER TABLE vehicles NO FORCE ROW LEVEL SECURITY";
    stray_using_true_fails_rls005: "RLS005" "fail" &[] => "CREATE POLICY open_read ON customers FOR SELECT TO app_user USING (true)";
    stray_using_true_is_caught_by_the_read_probe: "PRB002" "fail" &[] => "CREATE POLICY open_read ON customers FOR SELECT TO PUBLIC USING (true)";
    insert_checked_with_true_fails_rls004: "RLS004" "fail" &[] =>
        "CREATE POLICY open_insert ON services FOR INSERT TO app_user WITH CHECK (true)";
    with_check_true_is_caught_by_the_write_probe: "PRB003" "fail" &[] => &format!(
        "DROP POLICY tenant_isolation ON services; CREATE POLICY tenant_isolation ON services FOR ALL TO app_user USING ({SCOPED}) WITH CHECK (true)");
    isolation_policy_dropped_fails_rls003: "RLS003" "fail" &[] => "DROP POLICY tenant_isolation ON appointments";
    uncovered_tenant_table_fails_rls006: "RLS006" "fail" &[] => "CREATE TABLE invoices (id int PRIMARY KEY, tenant_id text, total int)";
    superuser_view_without_security_invoker_fails_byp001: "BYP001" "fail" &[] =>
        "CREATE VIEW all_customers AS SELECT * FROM customers; GRANT SELECT ON all_customers TO app_user";
    readable_materialized_view_fails_byp002: "BYP002" "fail" &[] =>
        "CREATE MATERIALIZED VIEW customer_counts AS SELECT tenant_id, count(*) FROM customers GROUP BY 1; GRANT SELECT ON customer_counts TO app_user";
    security_definer_function_returning_all_rows_fails_byp003: "BYP003" "fail" &[] =>
        "CREATE FUNCTION public.every_customer() RETURNS SETOF customers LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp AS 'SELECT * FROM customers'";
    security_definer_without_search_path_fails_byp004: "BYP004" "fail" &[] =>
        "CREATE FUNCTION public.answer() RETURNS int LANGUAGE sql SECURITY DEFINER AS 'SELECT 42'";
    user_leakproof_function_fails_byp005: "BYP005" "fail" &[] =>
        "CREATE FUNCTION public.peek(text) RETURNS boolean LANGUAGE sql IMMUTABLE LEAKPROOF AS 'SELECT true'";
    inheritance_child_without_rls_fails_byp006: "BYP006" "fail" &[] =>
        "CREATE TABLE customers_archive () INHERITS (customers); GRANT SELECT ON customers_archive TO app_user";
    truncate_granted_fails_role007: "ROLE007" "fail" &[] => "GRANT TRUNCATE ON customers TO app_user";
    membership_in_a_bypassrls_role_fails_role004: "ROLE004" "fail" &[] =>
        "CREATE ROLE sneaky NOLOGIN BYPASSRLS; CREATE ROLE middle NOLOGIN; GRANT sneaky TO middle; GRANT middle TO app_user";
    app_role_made_superuser_fails_role002: "ROLE002" "fail" &[] => "ALTER ROLE app_user SUPERUSER";
    app_role_given_bypassrls_fails_role003: "ROLE003" "fail" &[] => "ALTER ROLE app_user BYPASSRLS";
    role_level_tenant_default_fails_role006: "ROLE006" "fail" &[] => "ALTER ROLE app_user SET app.tenant_id = 'edgar-downtown'";
    role_level_tenant_default_breaks_fail_closed: "PRB001" "fail" &[] => "ALTER ROLE app_user SET app.tenant_id = 'edgar-downtown'";
    role_level_tenant_default_breaks_context_scoping: "PRB004" "fail" &[] => "ALTER ROLE app_user SET app.tenant_id = 'edgar-downtown'";
    null_tenant_rows_fail_rls007: "RLS007" "fail" &[] => "INSERT INTO customers (tenant_id, full_name) VALUES (NULL, 'orphan')";
    missing_tenant_index_warns_prf001: "PRF001" "warn" &[] => "DROP INDEX appointments_tenant_idx";
    hash_tenant_index_warns_prf001: "PRF001" "warn" &[] =>
        "DROP INDEX appointments_tenant_idx; CREATE INDEX appointments_tenant_hash ON appointments USING hash (tenant_id)";
    per_row_setting_evaluation_warns_prf002: "PRF002" "warn" &[] =>
        "DROP POLICY tenant_isolation ON customers; CREATE POLICY tenant_isolation ON customers FOR ALL TO app_user
           USING (tenant_id = NULLIF(current_setting('app.tenant_id', true), '')) WITH CHECK (tenant_id = NULLIF(current_setting('app.tenant_id', true), ''))";
}

/// A per-table result that is short, garbled or not one result per table is
/// an error naming the step, never an empty list that reads as "no leak".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_or_malformed_per_table_result_fails_closed() {
    use rlsctl::pg::per_table::run_block;
    let t = TestDb::demo_rds().await;
    t.applied().await;
    let app = t.app().await;
    let input = serde_json::json!({ "tables": [
        { "schema": "public", "name": "customers", "type": "text", "partitioned": false },
        { "schema": "public", "name": "vehicles", "type": "text", "partitioned": false },
    ]});
    let answering = |output: &str| {
        format!(
            "DO $$ BEGIN PERFORM set_config('rlsctl_probe.output', {}, true); END $$",
            rlsctl::model::sql::quote_literal(output)
        )
    };
    for (output, expected) in [
        (
            r#"[{"visible": 0, "foreign": 0}]"#,
            "probe_reads returned 1 result(s) for 2 table(s)",
        ),
        (
            r#"{"visible": 0}"#,
            "probe_reads returned an object instead of one result per table",
        ),
        (
            "[{\"visible\"",
            "probe_reads returned something that is not JSON",
        ),
        (
            r#"[{"visible": 0, "foreign": 0}, null]"#,
            "probe_reads returned null for table 2 of 2",
        ),
    ] {
        let app_transaction = app.begin(rlsctl::pg::Begin::Plain).await.unwrap();
        let result = run_block(&app, "probe_reads", &answering(output), &input).await;
        app_transaction.rollback().await.unwrap();
        let err = result.expect_err(output).to_string();
        assert!(err.contains(expected), "{output}: {err}");
    }
    // The real block answers once per table.
    let app_transaction = app.begin(rlsctl::pg::Begin::Plain).await.unwrap();
    let results =
        rlsctl::pg::per_table::run(&app, rlsctl::model::sql::Step::ProbeReads, &input).await;
    app_transaction.rollback().await.unwrap();
    assert_eq!(results.unwrap().len(), 2);
}
