//! apply and rollback as the RDS master (`postgres`: LOGIN NOSUPERUSER INHERIT
//! CREATEDB CREATEROLE NOREPLICATION, a member of rds_superuser, owner of the
//! database and the tables) — the tool's real target. `.ci/run` runs this
//! module on every PostgreSQL major RDS offers (13 to 18).

use serde_json::Value;

use crate::support::*;
use crate::verify::{statuses, verify};

/// The findings of `id` as "status object: detail".
fn findings(doc: &Value, id: &str) -> Vec<String> {
    check(doc, id)
        .into_iter()
        .map(|c| format!("{} {}: {}", c.status, c.object, c.detail))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_whole_cycle_as_the_rds_master() {
    let t = TestDb::demo_rds().await;
    let su = t.superuser().await;
    assert_eq!(
        count(
            &su,
            "SELECT count(*) FROM pg_roles WHERE rolname = 'postgres' AND NOT rolsuper AND rolcreaterole
               AND pg_has_role('postgres', 'rds_superuser', 'MEMBER')"
        )
        .await,
        1,
        "the operator is an RDS-shaped master"
    );
    let before = catalog_snapshot(&su).await;
    let contents = contents_checksum(&su).await;

    let applied = t.apply(&[]).await;
    applied.expect(0);
    assert!(
        applied.stdout.contains("Applied:"),
        "{}",
        applied.all_output()
    );

    // verify as the app role with two tenants; RLS007 counts real rows.
    let (run, doc) = verify(&t, &[]).await;
    run.expect(0);
    assert_eq!(statuses(&doc, "RLS007"), ["pass"], "{}", run.stdout);

    // A row no tenant can see is found and reported as such.
    let master = t.operator().await;
    master
        .execute(
            "INSERT INTO customers (tenant_id, full_name) VALUES (NULL, 'orphan')",
            &[],
        )
        .await
        .unwrap();
    let (run, doc) = verify(&t, &[]).await;
    run.expect(1);
    let found = findings(&doc, "RLS007");
    assert_eq!(
        found,
        ["fail public.customers: 1 row(s) with a NULL tenant_id: invisible to every tenant"],
        "{}",
        run.stdout
    );
    master
        .execute("DELETE FROM customers WHERE tenant_id IS NULL", &[])
        .await
        .unwrap();

    let (run, doc) = monitor_json(&t).await;
    run.expect(0);
    assert_eq!(doc["summary"]["failed"], 0, "{}", run.stdout);

    // Break-glass, monitor reports it, restore, clean again.
    t.run(&[
        "rollback",
        "--table",
        "customers",
        "--reason",
        "INC-77",
        "--yes",
    ])
    .await
    .expect(0);
    let (run, doc) = monitor_json(&t).await;
    run.expect(1);
    assert_eq!(statuses(&doc, "DRF003"), ["fail"], "{}", run.stdout);
    t.run(&["rollback", "--restore"]).await.expect(0);
    let (run, _) = monitor_json(&t).await;
    run.expect(0);

    // Uninstall with the roles leaves the tables as they were.
    t.run(&[
        "rollback",
        "--uninstall",
        "--drop-roles",
        "--reason",
        "matrix",
        "--yes",
    ])
    .await
    .expect(0);
    assert_eq!(catalog_snapshot(&su).await, before);
    assert_eq!(contents_checksum(&su).await, contents);

    // Re-apply works, and a second apply is a no-op.
    t.applied().await;
    let again = t.apply(&[]).await;
    again.expect(0);
    assert!(
        again.stdout.contains("nothing to change"),
        "{}",
        again.all_output()
    );
    let (run, _) = verify(&t, &[]).await;
    run.expect(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_of_a_migrations_role_the_master_belongs_to() {
    let t = TestDb::demo_rds().await;
    t.sql("CREATE ROLE migrations LOGIN; GRANT migrations TO postgres")
        .await;
    t.sql(
        "ALTER TABLE customers OWNER TO migrations; ALTER TABLE vehicles OWNER TO migrations; \
         ALTER TABLE appointments OWNER TO migrations; ALTER TABLE services OWNER TO migrations",
    )
    .await;
    let run = t.apply(&[]).await;
    run.expect(0);
    // The owner is subject to FORCE from now on: the plan said so.
    assert!(
        run.stdout.contains("migrations reads public.appointments"),
        "{}",
        run.stdout
    );
    let (run, _) = verify(&t, &[]).await;
    run.expect(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_of_a_role_the_master_is_not_in_are_refused_up_front() {
    let t = TestDb::demo_rds().await;
    t.sql("CREATE ROLE migrations LOGIN; ALTER TABLE vehicles OWNER TO migrations")
        .await;
    let su = t.superuser().await;
    let before = catalog_snapshot(&su).await;
    let run = t.apply(&[]).await;
    run.expect(1);
    assert!(
        run.stdout.contains(
            "public.vehicles is owned by migrations, and postgres is not a member of migrations"
        ) && run.stdout.contains("GRANT \"migrations\" TO \"postgres\";"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("nothing was changed"), "{}", run.stdout);
    assert_eq!(catalog_snapshot(&su).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_existing_app_role_is_fixed_with_what_the_master_may_run() {
    let t = TestDb::demo_rds().await;
    // Made earlier by the master, with a password and an attribute too many.
    let master = t.operator().await;
    master
        .simple("CREATE ROLE app_user LOGIN CREATEDB PASSWORD 'old-password'")
        .await
        .unwrap();
    let run = t.apply(&[]).await;
    run.expect(0);
    let su = t.superuser().await;
    assert_eq!(
        count(
            &su,
            "SELECT count(*) FROM pg_roles WHERE rolname = 'app_user' AND NOT rolcreatedb"
        )
        .await,
        1
    );
    // The password it had is kept (no --rotate-passwords).
    assert!(t.connect("app_user", "old-password").await.is_ok());
    assert!(t.connect("app_user", APP_PASSWORD).await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_role_only_a_superuser_may_fix_is_refused_with_the_statement() {
    let t = TestDb::demo_rds().await;
    // REPLICATION: on 15 and older only a superuser may alter such a role; on
    // 16+ only a role that has REPLICATION itself may change it.
    t.sql("CREATE ROLE app_user LOGIN REPLICATION PASSWORD 'old-password'")
        .await;
    let su = t.superuser().await;
    let before = catalog_snapshot(&su).await;
    let run = t.apply(&[]).await;
    run.expect(1);
    assert!(
        run.stdout
            .contains("`ALTER ROLE \"app_user\" NOREPLICATION;`"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("nothing was changed"), "{}", run.stdout);
    assert_eq!(catalog_snapshot(&su).await, before);
    // Once someone who may has run it, apply goes through.
    t.sql("ALTER ROLE app_user NOREPLICATION").await;
    t.apply(&[]).await.expect(0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_master_cannot_count_null_rows_it_cannot_see_and_says_so() {
    // A table forced before apply, with no policy for the master: the
    // pre-flight cannot count its NULL rows and warns instead of saying 0.
    let t = TestDb::demo_rds().await;
    let master = t.operator().await;
    master
        .simple("ALTER TABLE services ENABLE ROW LEVEL SECURITY; ALTER TABLE services FORCE ROW LEVEL SECURITY")
        .await
        .unwrap();
    let run = t.apply(&["--dry-run"]).await;
    run.expect(0);
    assert!(
        run.stdout
            .contains("RLS hides rows of public.services from postgres"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_break_glass_policy_is_intended_unless_the_app_role_reaches_it() {
    let t = TestDb::demo_rds().await;
    t.applied().await;
    // As applied: the break-glass policy is on every table and no check minds it.
    let (run, doc) = verify(&t, &[]).await;
    run.expect(0);
    assert_eq!(statuses(&doc, "RLS005"), ["pass"], "{}", run.stdout);

    // The app role gets into the break-glass role: verify and monitor fail.
    let master = t.operator().await;
    master
        .simple("GRANT tenant_admin TO app_user")
        .await
        .unwrap();
    let (run, doc) = verify(&t, &[]).await;
    run.expect(1);
    assert!(
        findings(&doc, "ROLE004")
            .iter()
            .any(|f| f.starts_with("fail")
                && f.contains(
                    "app_user → tenant_admin (policy rlsctl_break_glass is USING (true))"
                )),
        "{}",
        run.stdout
    );
    let (run, doc) = monitor_json(&t).await;
    run.expect(1);
    assert_eq!(statuses(&doc, "ROLE004"), ["fail"], "{}", run.stdout);
}
