//! pgaudit, loaded and installed as RDS documents it (the `pgaudit` entry in
//! the parameter group's shared_preload_libraries, `CREATE EXTENSION pgaudit`,
//! and the master allowed to set `pgaudit.log` per role). Debian's
//! postgresql-15-pgaudit package (scripts/ensure-pgaudit); the other majors'
//! server builds do not ship it, so this module runs on Debian's server only.

use crate::support::*;
use crate::verify::{details, statuses, verify};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_pgaudit_installed_break_glass_use_is_audited_and_nothing_false_alarms() {
    let options = rlsctl::pg::sandbox::Options {
        shape: rlsctl::pg::sandbox::Shape::RdsMaster,
        extra_config: vec!["shared_preload_libraries = 'pgaudit'".into()],
        ..Default::default()
    };
    let t = TestDb::with(options, false).await;
    {
        let operator = t.operator().await;
        operator
            .simple(rlsctl::model::sql::DEMO_SCHEMA)
            .await
            .unwrap();
        operator
            .simple(rlsctl::model::sql::DEMO_SEED)
            .await
            .unwrap();
    }
    // As RDS sets it up: the extension (its event-trigger functions are
    // SECURITY DEFINER, owned by the superuser, executable by PUBLIC), and
    // rds_superuser allowed to set pgaudit.log.
    t.sql("CREATE EXTENSION pgaudit").await;
    t.sql("GRANT SET ON PARAMETER pgaudit.log TO rds_superuser")
        .await;
    let run = t
        .run(&[
            "apply",
            "--app-password-from",
            "env:APP_PW",
            "--admin-password-from",
            "env:ADMIN_PW",
            "--format",
            "json",
        ])
        .await;
    run.expect(0);
    let doc = run.json();
    assert_eq!(
        statuses(&doc["preflight"], "PRE010"),
        ["pass"],
        "{}",
        run.stdout
    );
    assert_eq!(doc["plan"]["break_glass_logging"], "pgaudit.log=all");
    // No false alarm on the extension's functions.
    let (run, doc) = verify(&t, &[]).await;
    run.expect(0);
    for id in ["BYP003", "BYP004"] {
        assert_eq!(statuses(&doc, id), ["pass"], "{id}: {}", run.stdout);
    }
    let (run, doc) = monitor_json(&t).await;
    run.expect(0);
    assert_eq!(statuses(&doc, "DRF009"), ["pass"]);
    // A break-glass session is audited, statement by statement.
    let admin = t.connect("tenant_admin", ADMIN_PASSWORD).await.unwrap();
    admin
        .simple("SELECT count(*) AS rlsctl_audit_probe FROM customers")
        .await
        .unwrap();
    drop(admin);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let log = t.sandbox.server_log();
        if log
            .lines()
            .any(|l| l.contains("AUDIT: SESSION") && l.contains("rlsctl_audit_probe"))
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no AUDIT line in the server log:\n{log}"
        );
        tokio::task::yield_now().await;
    }
    // Removing the setting is drift.
    t.sql("ALTER ROLE tenant_admin RESET pgaudit.log").await;
    let (run, doc) = monitor_json(&t).await;
    run.expect(1);
    assert_eq!(statuses(&doc, "DRF009"), ["fail"]);
    assert!(details(&doc, "DRF009").contains("pgaudit.log=all was removed"));
}
