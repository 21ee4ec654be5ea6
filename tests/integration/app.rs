//! `verify --app-url` against the reference application in `examples/`.

use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;
use crate::verify::{details as detail, statuses};

/// The reference app, running; killed on drop.
pub struct ReferenceApp {
    _child: tokio::process::Child,
    pub url: String,
}

async fn start(t: &TestDb, user: &str, password: &str, extra: &[&str]) -> ReferenceApp {
    start_on(t.sandbox.port, user, password, extra).await
}

/// The reference app connecting to `port` (the server, or a pooler in front).
pub async fn start_on(port: u16, user: &str, password: &str, extra: &[&str]) -> ReferenceApp {
    let path = example("reference_app");
    let mut child = tokio::process::Command::new(&path)
        .args(["--listen", "127.0.0.1:0"])
        .args(extra)
        .env_clear()
        .env("PGHOST", "127.0.0.1")
        .env("PGPORT", port.to_string())
        .env("PGDATABASE", DB)
        .env("PGUSER", user)
        .env("PGPASSWORD", password)
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", path.display()));
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = next_line(&mut lines)
        .await
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
    for id in ["APP001", "APP002", "APP003", "APP004"] {
        assert_eq!(statuses(&doc, id), ["pass"], "{id}: {}", run.stdout);
    }
    // The burst's defaults: 240 requests, interleaving both tenants and two unknown ids.
    let burst = detail(&doc, "APP004");
    assert!(
        burst.contains("240 of 240 request(s)")
            && burst.contains("across 2 tenant(s) and 2 unknown id(s)"),
        "{burst}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_burst_catches_an_app_that_keeps_the_tenant_in_a_global() {
    let t = TestDb::demo().await;
    t.applied().await;
    let app = start(
        &t,
        "app_user",
        APP_PASSWORD,
        &["--broken", "tenant-in-global"],
    )
    .await;
    let (run, doc) = verify_app(&t, &app).await;
    run.expect(1);
    // The single requests cannot tell: only the burst can.
    assert_eq!(statuses(&doc, "APP001"), ["pass"], "{}", run.stdout);
    assert!(
        statuses(&doc, "APP004").contains(&"fail".to_string()),
        "{}",
        run.stdout
    );
    let burst = detail(&doc, "APP004");
    assert!(
        burst.contains("answered request(s) ran under another request's tenant"),
        "{burst}"
    );
    assert!(
        burst.contains("for tenant ids that exist nowhere saw rows"),
        "{burst}"
    );
    // The text report carries the counts too.
    let text = t
        .run_env(
            &[
                "verify",
                "--tenant",
                TENANTS[0],
                "--tenant",
                TENANTS[1],
                "--app-url",
                &app.url,
            ],
            &AS_APP,
        )
        .await;
    text.expect(1);
    assert!(
        text.stdout.contains("ran under another request's tenant"),
        "{}",
        text.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_shared_connection_passes_the_burst_and_the_tenant_set_on_another_pooled_connection_fails(
) {
    let t = TestDb::demo().await;
    t.applied().await;
    // The reference app pools (the test above); one connection held per
    // request is correct too, only slower.
    let single = start(&t, "app_user", APP_PASSWORD, &["--single-connection"]).await;
    let (run, doc) = verify_app(&t, &single).await;
    run.expect(0);
    assert_eq!(statuses(&doc, "APP004"), ["pass"], "{}", run.stdout);

    let broken = start(
        &t,
        "app_user",
        APP_PASSWORD,
        &["--pool", "4", "--broken", "tenant-on-another-connection"],
    )
    .await;
    let (run, doc) = verify_app(&t, &broken).await;
    run.expect(1);
    assert!(
        statuses(&doc, "APP004").contains(&"fail".to_string()),
        "{}",
        run.stdout
    );
    assert!(
        detail(&doc, "APP004").contains("ran under another request's tenant"),
        "{}",
        detail(&doc, "APP004")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_burst_ends_within_its_time_limit_against_an_app_that_hangs() {
    let t = TestDb::demo().await;
    t.applied().await;
    // Accepts every connection, reads nothing, answers nothing.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    let started = std::time::Instant::now();
    let (run, doc) = crate::verify::verify(
        &t,
        &[
            "--app-url",
            &url,
            "--app-timeout",
            "1s",
            "--burst-time-limit",
            "3s",
        ],
    )
    .await;
    let took = started.elapsed();
    run.expect(1);
    // Two single requests of at most 1 s, the burst of at most 3 s, and the
    // database checks: far from the default 10 s per request.
    assert!(
        took < std::time::Duration::from_secs(30),
        "verify took {took:?}"
    );
    assert_eq!(statuses(&doc, "APP004"), ["warn"], "{}", run.stdout);
    // The single requests are findings too, not an abort.
    assert!(
        detail(&doc, "APP001").contains("got no answer"),
        "{}",
        detail(&doc, "APP001")
    );
    assert!(
        detail(&doc, "APP002").contains("got no answer"),
        "{}",
        detail(&doc, "APP002")
    );
    assert!(
        detail(&doc, "APP004").contains("got no usable answer"),
        "{}",
        detail(&doc, "APP004")
    );
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
