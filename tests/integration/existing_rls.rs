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
    doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == id)
        .map(|c| {
            let text = |k: &str| c[k].as_str().unwrap_or_default().to_string();
            (text("status"), text("object"), text("detail"))
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
