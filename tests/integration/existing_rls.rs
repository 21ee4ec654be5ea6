//! Databases that arrive with RLS of their own, built from the patterns users
//! have (not from anyone's schema): a uuid tenant read without missing_ok
//! under USING-only `FOR ALL` policies and no FORCE; an app role left in the
//! superuser's group beside an uncovered tenant-column table; a clean bigint
//! schema of seven tables. As the RDS master, on every major CI runs.

use serde_json::Value;

use crate::support::*;

/// A uuid-tenant schema with its own RLS: policies `FOR ALL` with USING only
/// (PostgreSQL checks new rows with it), the setting read without missing_ok,
/// RLS enabled but not forced, the app role already there with its grants.
const UUID_SCHEMA: &str = r#"
CREATE ROLE app_user LOGIN PASSWORD 'app-pw-Zq7''"\ü';
CREATE TABLE accounts (id uuid PRIMARY KEY, name text NOT NULL);
CREATE TABLE projects (
    id bigserial PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES accounts (id),
    title text NOT NULL
);
CREATE INDEX projects_tenant_idx ON projects (tenant_id);
CREATE TABLE tasks (
    id bigserial PRIMARY KEY,
    tenant_id uuid NOT NULL REFERENCES accounts (id),
    project_id bigint NOT NULL REFERENCES projects (id),
    body text
);
CREATE INDEX tasks_tenant_idx ON tasks (tenant_id, project_id);
INSERT INTO accounts VALUES ('11111111-1111-4111-8111-111111111111', 'a'), ('22222222-2222-4222-8222-222222222222', 'b');
INSERT INTO projects (tenant_id, title) VALUES ('11111111-1111-4111-8111-111111111111', 'p1'), ('22222222-2222-4222-8222-222222222222', 'p2');
INSERT INTO tasks (tenant_id, project_id, body) VALUES ('11111111-1111-4111-8111-111111111111', 1, 't1'), ('22222222-2222-4222-8222-222222222222', 2, 't2');
GRANT SELECT, INSERT, UPDATE, DELETE ON accounts, projects, tasks TO app_user;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO app_user;
ALTER TABLE projects ENABLE ROW LEVEL SECURITY;
ALTER TABLE tasks ENABLE ROW LEVEL SECURITY;
CREATE POLICY projects_by_tenant ON projects FOR ALL TO app_user
    USING (tenant_id = current_setting('app.tenant_id')::uuid);
CREATE POLICY tenant_isolation ON tasks FOR ALL TO PUBLIC
    USING (tenant_id = current_setting('app.tenant_id')::uuid);
"#;

/// The two tenants of [`UUID_SCHEMA`].
const UUID_TENANTS: [&str; 2] = [
    "11111111-1111-4111-8111-111111111111",
    "22222222-2222-4222-8222-222222222222",
];

/// An RDS-shaped cluster holding `schema`, applied by nobody yet, with the
/// environment pointed at `tables`.
async fn arrived_with(schema: &str, tables: &str) -> TestDb {
    let mut t = TestDb::empty_rds().await;
    t.operator().await.simple(schema).await.unwrap();
    t.env.insert("RLSCTL_TENANT_TABLES".into(), tables.into());
    t
}

/// verify as the app role with `tenants`, JSON.
async fn verify(t: &TestDb, tenants: &[&str]) -> (Run, Value) {
    let mut args = vec!["verify", "--format", "json"];
    for tenant in tenants {
        args.extend(["--tenant", tenant]);
    }
    let run = t.run_env(&args, &AS_APP).await;
    let doc = run.json();
    (run, doc)
}

/// The findings of `id` in a report, as (status, object, detail).
fn findings(doc: &Value, id: &str) -> Vec<(String, String, String)> {
    check(doc, id)
        .into_iter()
        .map(|c| (c.status, c.object, c.detail))
        .collect()
}

/// What apply's plan did with each policy it did not create: `name disposition`.
fn dispositions(doc: &Value) -> Vec<String> {
    doc["plan"]["existing_policies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!(
                "{} {}",
                p["name"].as_str().unwrap(),
                p["disposition"].as_str().unwrap()
            )
        })
        .collect()
}

/// The policies on the schema's tables as pg_policies has them, sorted.
async fn policies(t: &TestDb) -> Vec<String> {
    let rows = t
        .superuser()
        .await
        .query(
            "SELECT format('%s.%s %s %s %s %s using=%s check=%s', schemaname, tablename, policyname, permissive, cmd, roles, qual, with_check)
             FROM pg_policies WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

/// verify reports what the database answers: a policy that raises without a
/// tenant is a warning naming the cause, the missing FORCE a failure, and the
/// report prints (exit 1, never 2).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_reports_a_policy_that_raises_instead_of_aborting() {
    let t = arrived_with(UUID_SCHEMA, "projects,tasks").await;
    let (run, doc) = verify(&t, &UUID_TENANTS).await;
    run.expect(1);
    let prb001 = findings(&doc, "PRB001");
    assert!(!prb001.is_empty());
    for (status, object, detail) in &prb001 {
        assert_eq!(status, "warn", "{object}: {detail}");
        assert!(
            detail.contains("raised instead of returning no row"),
            "{detail}"
        );
        assert!(detail.contains("without missing_ok"), "{detail}");
    }
    let rls002: Vec<String> = findings(&doc, "RLS002")
        .into_iter()
        .map(|(s, o, _)| format!("{s} {o}"))
        .collect();
    assert_eq!(rls002, ["fail public.projects", "fail public.tasks"]);
    // Under a real tenant the policies scope: reads and writes isolated, and
    // the USING-only FOR ALL policies check new rows (RLS004 passes).
    for id in ["PRB002", "PRB003", "RLS003", "RLS004"] {
        let statuses: Vec<String> = findings(&doc, id)
            .into_iter()
            .map(|(s, _, d)| format!("{s}: {d}"))
            .collect();
        assert_eq!(statuses.len(), 1, "{id}: {statuses:?}");
        assert!(statuses[0].starts_with("pass"), "{id}: {statuses:?}");
    }
    // monitor, before any apply, reports too: the bundle is missing (DRF001),
    // FORCE is off; exit 1, never 2.
    let (monitor, doc) = monitor_json(&t).await;
    monitor.expect(1);
    for id in ["DRF001", "RLS002"] {
        assert!(
            findings(&doc, id).iter().any(|(s, _, _)| s == "fail"),
            "{id}: {}",
            monitor.stdout
        );
    }
    // The same in text: the report prints.
    let text = t
        .run_env(
            &[
                "verify",
                "--tenant",
                UUID_TENANTS[0],
                "--tenant",
                UUID_TENANTS[1],
            ],
            &AS_APP,
        )
        .await;
    text.expect(1);
    assert!(text.stdout.contains("PRB001"), "{}", text.stdout);
}

/// A tenant read raises with a valid tenant too (a cast the column's type
/// cannot take): PRB002 fails naming the server's message, and the write
/// probe still runs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_probe_that_errors_under_a_tenant_is_a_failure_and_the_rest_still_run() {
    let t = arrived_with(UUID_SCHEMA, "projects,tasks").await;
    t.sql("ALTER POLICY projects_by_tenant ON projects USING (tenant_id = (current_setting('app.tenant_id') || 'x')::uuid)")
        .await;
    let (run, doc) = verify(&t, &UUID_TENANTS).await;
    run.expect(1);
    let prb002 = findings(&doc, "PRB002");
    let projects: Vec<_> = prb002
        .iter()
        .filter(|(_, o, _)| o == "public.projects")
        .collect();
    assert_eq!(projects.len(), 2, "{prb002:?}");
    for (status, _, detail) in projects {
        assert_eq!(status, "fail");
        assert!(
            detail.contains("invalid input syntax for type uuid") && detail.contains("22P02"),
            "{detail}"
        );
    }
    assert!(!findings(&doc, "PRB003").is_empty());
    assert!(!findings(&doc, "PRF002").is_empty());
}

/// apply's plan lists the policies it did not create and refuses the ones
/// that would stay ORed with its own (exit 1, catalog unchanged); with
/// --replace-policies it replaces them, verify and monitor are clean after,
/// and rollback --uninstall brings the originals back exactly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_takes_over_existing_policies_and_uninstall_gives_them_back() {
    let t = arrived_with(UUID_SCHEMA, "projects,tasks").await;
    let su = t.superuser().await;
    let before = policies(&t).await;
    let catalog = catalog_snapshot(&su).await;

    let plan = t.apply(&["--dry-run", "--format", "json"]).await;
    plan.expect(1);
    let doc = plan.json();
    // A refused apply has no plan: the pre-flight names them instead.
    let refused: Vec<String> = findings(&doc["preflight"], "PRE011")
        .into_iter()
        .map(|(s, o, _)| format!("{s} {o}"))
        .collect();
    assert_eq!(
        refused,
        [
            "fail public.projects policy projects_by_tenant",
            "fail public.tasks policy tenant_isolation"
        ],
        "{}",
        plan.stdout
    );
    let text = t.apply(&[]).await;
    text.expect(1);
    assert!(
        text.stdout.contains("tenant_isolation") && text.stdout.contains("without missing_ok"),
        "{}",
        text.stdout
    );
    assert_eq!(
        catalog_snapshot(&su).await,
        catalog,
        "a refused apply changed the catalog"
    );

    let replaced = t.apply(&["--replace-policies", "--format", "json"]).await;
    replaced.expect(0);
    let doc = replaced.json();
    assert_eq!(
        dispositions(&doc),
        ["projects_by_tenant replaced", "tenant_isolation replaced"]
    );
    let now = policies(&t).await;
    assert!(
        !now.iter().any(|p| p.contains("projects_by_tenant")),
        "{now:?}"
    );

    let (run, doc) = verify(&t, &UUID_TENANTS).await;
    run.expect(0);
    assert_eq!(doc["summary"]["failed"], 0);
    let (monitor, doc) = monitor_json(&t).await;
    monitor.expect(0);
    assert_eq!(doc["summary"]["failed"], 0, "{doc}");

    t.run(&["rollback", "--uninstall", "--reason", "back out", "--yes"])
        .await
        .expect(0);
    assert_eq!(policies(&t).await, before);
}

/// A migration left the app role in the superuser's group: apply refuses
/// (PRE012, naming the REVOKE), and records no baseline; after the REVOKE it
/// applies. The uncovered tenant-column table is RLS006's before and after.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_refuses_an_app_role_that_can_become_the_superuser() {
    let t = TestDb::demo_rds().await;
    t.sql(
        "CREATE ROLE app_user LOGIN PASSWORD 'app-pw-Zq7''\"\\ü'; GRANT postgres TO app_user;
           CREATE TABLE public.invoices (id bigserial PRIMARY KEY, tenant_id text, total integer);
           GRANT SELECT ON public.invoices TO app_user",
    )
    .await;
    let (run, doc) = verify(&t, &TENANTS).await;
    run.expect(1);
    assert!(findings(&doc, "ROLE004")
        .iter()
        .any(|(s, _, _)| s == "fail"));
    assert!(findings(&doc, "RLS006")
        .iter()
        .any(|(s, o, _)| s == "fail" && o == "public.invoices"));
    let (monitor, doc) = monitor_json(&t).await;
    monitor.expect(1);
    for id in ["ROLE004", "RLS006"] {
        assert!(
            findings(&doc, id).iter().any(|(s, _, _)| s == "fail"),
            "{id}: {}",
            monitor.stdout
        );
    }
    // ROLE009's remedy is the grant that leads to the master, not the
    // master's own CREATEROLE.
    let role009: Vec<String> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == "ROLE009" && c["status"] == "fail")
        .map(|c| c["remedy"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        role009,
        ["REVOKE \"postgres\" FROM \"app_user\""],
        "{}",
        monitor.stdout
    );
    // ROLE004 says what the role is: the RDS master owns the tables, and
    // the path is through it.
    let role004 = findings(&doc, "ROLE004");
    assert!(
        role004
            .iter()
            .any(|(_, _, d)| d.contains("app_user → postgres")),
        "{role004:?}"
    );

    let refused = t.apply(&["--format", "json"]).await;
    refused.expect(1);
    let doc = refused.json();
    let pre012 = findings(&doc["preflight"], "PRE012");
    assert_eq!(pre012.len(), 1, "{pre012:?}");
    assert_eq!(pre012[0].0, "fail");
    let remedy = doc["preflight"]["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == "PRE012")
        .unwrap()["remedy"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        remedy.starts_with("REVOKE \"postgres\" FROM \"app_user\""),
        "{remedy}"
    );
    assert_eq!(
        count(
            &t.superuser().await,
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'rlsctl'"
        )
        .await,
        0,
        "a refused apply left the bundle's schema"
    );

    t.sql("REVOKE postgres FROM app_user").await;
    t.applied().await;
    let (monitor, doc) = monitor_json(&t).await;
    monitor.expect(1);
    let problems: Vec<String> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| {
            format!(
                "{} {}",
                c["id"].as_str().unwrap(),
                c["object"].as_str().unwrap_or_default()
            )
        })
        .collect();
    assert_eq!(problems, ["RLS006 public.invoices"]);
}

/// A clean bigint-tenant schema of seven tables with its own correct,
/// restrictive extra policy: kept, apply succeeds, everything passes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_clean_bigint_schema_with_its_own_restrictive_policy_applies_and_passes() {
    let mut schema = String::from(
        "CREATE TABLE orgs (id bigint PRIMARY KEY);\nINSERT INTO orgs VALUES (1), (2);\n",
    );
    let tables: Vec<String> = (1..=7).map(|i| format!("t{i}")).collect();
    for table in &tables {
        schema.push_str(&format!(
            "CREATE TABLE {table} (id bigserial PRIMARY KEY, tenant_id bigint NOT NULL REFERENCES orgs (id), body text);
             CREATE INDEX ON {table} (tenant_id);
             INSERT INTO {table} (tenant_id, body) VALUES (1, 'a'), (2, 'b');\n"
        ));
    }
    schema.push_str(&format!(
        "ALTER TABLE t1 ENABLE ROW LEVEL SECURITY;
         CREATE POLICY not_archived ON t1 AS RESTRICTIVE FOR SELECT TO PUBLIC USING (body IS DISTINCT FROM 'archived');
         ALTER TABLE t2 ENABLE ROW LEVEL SECURITY;
         CREATE POLICY own_rows ON t2 FOR SELECT TO PUBLIC USING ({EXACT_BIGINT});"
    ));
    let t = arrived_with(&schema, &tables.join(",")).await;
    t.sql(
        "CREATE ROLE app_user LOGIN PASSWORD 'app-pw-Zq7''\"\\ü'; \
           GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO app_user; \
           GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO app_user",
    )
    .await;
    // Before apply: the real findings (RLS off on most tables), exit 1.
    let (verified, doc) = verify(&t, &["1", "2"]).await;
    verified.expect(1);
    assert!(findings(&doc, "RLS001").iter().any(|(s, _, _)| s == "fail"));
    let (monitor, doc) = monitor_json(&t).await;
    monitor.expect(1);
    assert!(findings(&doc, "RLS001").iter().any(|(s, _, _)| s == "fail"));
    let run = t.apply(&["--format", "json"]).await;
    run.expect(0);
    let doc = run.json();
    assert_eq!(dispositions(&doc), ["not_archived kept", "own_rows kept"]);
    let (verified, doc) = verify(&t, &["1", "2"]).await;
    verified.expect(0);
    assert_eq!(doc["summary"]["failed"], 0);
    // The kept permissive policy was there at apply: not drift.
    let (monitor, doc) = monitor_json(&t).await;
    monitor.expect(0);
    assert!(findings(&doc, "DRF002").iter().all(|(s, _, _)| s == "pass"));
    // Changed since apply, it is, and DRF002 says it was there before.
    t.sql("ALTER POLICY own_rows ON t2 USING (true)").await;
    let (monitor, doc) = monitor_json(&t).await;
    monitor.expect(1);
    let drf002 = findings(&doc, "DRF002");
    assert!(
        drf002.iter().any(|(s, o, d)| s == "fail"
            && o == "public.t2 policy own_rows"
            && d.contains("present at apply")),
        "{drf002:?}"
    );
    // A new one is one that appeared after apply.
    t.sql(&format!(
        "CREATE POLICY more_rows ON t3 FOR SELECT TO PUBLIC USING ({EXACT_BIGINT})"
    ))
    .await;
    let (_, doc) = monitor_json(&t).await;
    assert!(findings(&doc, "DRF002")
        .iter()
        .any(|(_, o, d)| o == "public.t3 policy more_rows" && d.contains("appeared after apply")));
}

/// The bundle's own form for a bigint tenant, as a user might write it.
const EXACT_BIGINT: &str =
    "tenant_id = (SELECT NULLIF(current_setting('app.tenant_id', true), '')::bigint)";
