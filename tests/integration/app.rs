//! `verify --app-url` against the reference application in `examples/`.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;
use crate::verify::statuses;

/// The reference app, running; killed on drop.
struct ReferenceApp {
    _child: tokio::process::Child,
    url: String,
}

async fn start(t: &TestDb, user: &str, password: &str, extra: &[&str]) -> ReferenceApp {
    // Examples are built by `cargo test` next to the test binary's directory.
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("reference_app");
    let mut child = tokio::process::Command::new(&path)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .env_clear()
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", t.sandbox.port.to_string())
        .env("PGDATABASE", DB)
        .env("PGUSER", user)
        .env("PGPASSWORD", password)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", path.display()));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = lines
        .next_line()
        .await
        .unwrap()
        .expect("the app prints its address");
    let url = line
        .strip_prefix("listening on ")
        .expect("listening line")
        .to_string();
    ReferenceApp { _child: child, url }
}

async fn verify_app(t: &TestDb, app: &ReferenceApp) -> (Run, serde_json::Value) {
    crate::verify::verify(t, &["--app-url", &app.url]).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn app_checks_pass_against_the_reference_app() {
    let t = TestDb::demo().await;
    t.applied().await;
    let app = start(&t, "app_user", APP_PASSWORD, &[]).await;
    let (run, doc) = verify_app(&t, &app).await;
    run.expect(0);
    for id in ["APP001", "APP002", "APP003"] {
        assert_eq!(statuses(&doc, id), ["pass"], "{id}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_connected_as_a_superuser_fails_app001() {
    let t = TestDb::demo().await;
    t.applied().await;
    let password = t.sandbox.superuser_password.expose().to_string();
    let app = start(&t, "postgres", &password, &[]).await;
    let (run, doc) = verify_app(&t, &app).await;
    run.expect(1);
    let details: Vec<String> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["id"] == "APP001")
        .map(|c| c["detail"].to_string())
        .collect();
    assert!(
        details
            .iter()
            .any(|d| d.contains("database.user is \\\"postgres\\\"")),
        "{details:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_that_accepts_requests_without_a_tenant_fails_app002() {
    let t = TestDb::demo().await;
    t.applied().await;
    let app = start(
        &t,
        "app_user",
        APP_PASSWORD,
        &["--allow-requests-without-tenant"],
    )
    .await;
    let (run, doc) = verify_app(&t, &app).await;
    run.expect(1);
    assert_eq!(statuses(&doc, "APP002"), ["fail"]);
    assert_eq!(statuses(&doc, "APP001"), ["pass"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_without_security_headers_fails_app003() {
    let t = TestDb::demo().await;
    t.applied().await;
    let app = start(&t, "app_user", APP_PASSWORD, &["--omit-security-headers"]).await;
    let (run, doc) = verify_app(&t, &app).await;
    run.expect(1);
    assert_eq!(statuses(&doc, "APP003"), ["fail", "fail"]);
}
