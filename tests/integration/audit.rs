//! pgaudit, loaded and installed as RDS documents it (the `pgaudit` entry in
//! the parameter group's shared_preload_libraries, `CREATE EXTENSION pgaudit`,
//! and the master allowed to set `pgaudit.log` per role). Debian's
//! postgresql-15-pgaudit package (scripts/ensure-pgaudit); the other majors'
//! server builds do not ship it, so this module runs on Debian's server only.

use crate::breaks::{breaks, refuses, Break, Refusal, Venue};
use crate::support::*;
use crate::verify::{details, statuses, verify};

/// The demo sample on an RDS-shaped cluster with pgaudit as RDS sets it up:
/// loaded, the extension created (its event-trigger functions are SECURITY
/// DEFINER, owned by the superuser, executable by PUBLIC), and rds_superuser
/// allowed to set pgaudit.log. Not applied yet.
pub async fn demo_rds_with_pgaudit() -> TestDb {
    let options = rlsctl::sandbox::Options {
        shape: rlsctl::sandbox::Shape::RdsMaster,
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
    t.sql("CREATE EXTENSION pgaudit").await;
    t.sql("GRANT SET ON PARAMETER pgaudit.log TO rds_superuser")
        .await;
    t
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_pgaudit_installed_break_glass_use_is_audited_and_nothing_false_alarms() {
    let t = demo_rds_with_pgaudit().await;
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
}

/// DRF009 through the one harness: removing the audit setting apply made for
/// the break-glass role is drift.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn removing_the_break_glass_audit_setting_fails_drf009() {
    let broken = breaks(Break {
        venue: Venue::RdsWithPgaudit,
        ..Break::of(
            &[],
            &["ALTER ROLE tenant_admin RESET pgaudit.log"],
            "DRF009",
        )
    })
    .await;
    assert!(details(&broken.doc, "DRF009").contains("pgaudit.log=all was removed"));
}

/// PRE010 through the one harness: with pgaudit the master may log the
/// break-glass role; once pgaudit is taken out of the server (the extension
/// dropped, the parameter group back to RDS's default libraries, a reboot),
/// apply warns that break-glass use will not be logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgaudit_taken_out_of_the_server_warns_pre010() {
    refuses(Refusal {
        venue: Venue::RdsWithPgaudit,
        restart: true,
        ..Refusal::of(
            &[
                "DROP EXTENSION pgaudit",
                "ALTER SYSTEM SET shared_preload_libraries = 'pg_stat_statements'",
            ],
            "PRE010",
            "warn",
        )
    })
    .await;
}
