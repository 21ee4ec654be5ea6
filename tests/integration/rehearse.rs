//! `rlsctl rehearse`: the whole cutover on a throwaway PostgreSQL.

use std::path::Path;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::support::*;

/// A runner with no database of its own: rehearse makes its own.
async fn rehearse(args: &[&str], extra_env: &[(&str, &str)]) -> Run {
    let t = TestDb::empty().await;
    t.run_env(&[&["rehearse"], args].concat(), extra_env).await
}

/// One field of every step in rehearse's JSON summary.
fn step_fields<'a>(doc: &'a serde_json::Value, field: &str) -> Vec<&'a str> {
    doc["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s[field].as_str().unwrap())
        .collect()
}

/// True when a postgres process still runs on `dir`.
fn postgres_running_in(dir: &str) -> bool {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok())
        .any(|e| {
            std::fs::read(e.path().join("cmdline"))
                .map(|c| String::from_utf8_lossy(&c).contains(dir))
                .unwrap_or(false)
        })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rehearse_passes_every_step_and_leaves_nothing_behind() {
    let run = rehearse(&["--format", "json"], &[]).await;
    run.expect(0);
    let doc = run.json();
    let ids = step_fields(&doc, "id");
    assert_eq!(
        ids,
        [
            "dry-run",
            "shadow",
            "shadow-traffic",
            "shadow-report",
            "enforce-clean",
            "job-fixed",
            "enforce-last",
            "apply",
            "verify",
            "monitor",
            "rollback",
            "monitor-break-glass",
            "restore",
            "verify-again"
        ]
    );
    for step in doc["steps"].as_array().unwrap() {
        assert_eq!(step["status"], "pass", "{step}");
    }
    assert_eq!(doc["summary"]["passed"], 14);
    let details = step_fields(&doc, "detail");
    assert!(
        details[3].contains("nightly report") && details[3].contains("no tenant"),
        "{}",
        details[3]
    );
    // The staged path: the job's table stays in shadow, then follows.
    assert_eq!(
        details[4],
        "enforced public.vehicles, public.appointments, public.services; public.customers stays in shadow (the job read it)"
    );
    assert_eq!(
        details[6],
        "public.customers enforced: no record since the job was fixed"
    );
    assert_eq!(details[7], "already up to date");
    // It rehearses production: the RDS master, not a superuser, and says so.
    assert!(
        doc["where"].as_str().unwrap().contains("RDS-shaped master"),
        "{}",
        run.stdout
    );
    assert!(
        run.stderr.contains("RDS-shaped master postgres"),
        "{}",
        run.stderr
    );
    let dir = doc["sandbox_dir"].as_str().unwrap();
    assert!(!Path::new(dir).exists(), "{dir} left behind");
    assert!(
        !postgres_running_in(dir),
        "a postgres process still runs in {dir}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rehearse_as_a_superuser_when_asked() {
    let run = rehearse(&["--superuser", "--format", "json"], &[]).await;
    run.expect(0);
    let doc = run.json();
    assert!(
        doc["where"]
            .as_str()
            .unwrap()
            .contains("applied as the superuser postgres"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_step_fails_the_rehearsal_and_is_named() {
    for (step, name) in [
        ("verify", "verify as the app role with two tenants"),
        (
            "enforce-clean",
            "apply --enforce-clean (customers stays in shadow)",
        ),
        (
            "job-fixed",
            "the report job sets its tenant and filters by it",
        ),
        (
            "shadow-traffic",
            "a report job reads customers without a tenant",
        ),
        (
            "monitor-break-glass",
            "monitor (reports break-glass, as expected)",
        ),
    ] {
        let run = rehearse(&["--inject-fault", step], &[]).await;
        run.expect(1);
        assert!(
            run.stdout.contains(&format!("FAILED at step \"{name}\"")),
            "{}",
            run.stdout
        );
        let json = rehearse(&["--inject-fault", step, "--format", "json"], &[]).await;
        json.expect(1);
        let doc = json.json();
        let failed: Vec<&str> = doc["steps"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|s| s["status"] == "fail")
            .map(|s| s["id"].as_str().unwrap())
            .collect();
        assert_eq!(failed, [step]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_stops_and_removes_the_cluster() {
    let t = TestDb::empty().await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .args(["rehearse", "--pause-before", "verify"])
        .env_clear()
        .envs(&t.env)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut dir = String::new();
    while let Some(line) = next_line(&mut lines).await {
        if let Some(rest) = line.strip_prefix("rlsctl rehearse: throwaway PostgreSQL on ") {
            let after = rest.split(" in ").nth(1).unwrap();
            dir = after.split(',').next().unwrap().to_string();
        }
        if line.starts_with("paused before") {
            break;
        }
    }
    assert!(
        Path::new(&dir).exists() && postgres_running_in(&dir),
        "the cluster runs while paused"
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    assert_eq!(exit_code(&mut child).await, Some(130));
    assert!(!Path::new(&dir).exists(), "{dir} left behind");
    assert!(!postgres_running_in(&dir));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keep_prints_an_environment_that_verify_works_with() {
    let run = rehearse(&["--keep"], &[]).await;
    run.expect(0);
    let export = run
        .stdout
        .lines()
        .find(|l| l.starts_with("export "))
        .expect("an export line");
    let stop = run
        .stdout
        .lines()
        .find(|l| l.starts_with("# ") && l.contains(" stop"))
        .expect("a stop line");
    let vars: Vec<(String, String)> = export
        .trim_start_matches("export ")
        .split(' ')
        .map(|kv| {
            let (k, v) = kv.split_once('=').unwrap();
            (k.to_string(), v.to_string())
        })
        .collect();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"));
    command
        .args(["verify", "--tenant", TENANTS[0], "--tenant", TENANTS[1]])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap());
    for (k, v) in &vars {
        command.env(k, v);
    }
    let verify = command.output().await.unwrap();
    let stopped = std::process::Command::new("sh")
        .args(["-c", stop.trim_start_matches("# ")])
        .status()
        .unwrap();
    assert_eq!(
        verify.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&verify.stdout)
    );
    assert!(stopped.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_postgres_binaries_give_the_install_command() {
    let run = rehearse(&[], &[("PATH", "/nonexistent"), ("PG_BIN_DIR", "/nowhere")]).await;
    run.expect(2);
    assert!(run.stderr.contains("initdb"), "{}", run.stderr);
    assert!(
        run.stderr.contains("apt-get install -y postgresql"),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rehearse_against_an_existing_database() {
    let t = TestDb::demo().await;
    let url = format!("postgres://postgres@127.0.0.1:{}/{DB}", t.sandbox.port);
    let run = t
        .run(&[
            "rehearse",
            "--database-url",
            &url,
            "--app-password-from",
            "env:APP_PW",
            "--format",
            "json",
        ])
        .await;
    run.expect(0);
    let doc = run.json();
    let statuses = step_fields(&doc, "status");
    assert_eq!(
        statuses,
        [
            "pass", "skip", "skip", "skip", "skip", "skip", "skip", "pass", "pass", "pass", "skip",
            "skip", "skip", "pass"
        ]
    );
    let with_rollback = t
        .run(&[
            "rehearse",
            "--database-url",
            &url,
            "--app-password-from",
            "env:APP_PW",
            "--with-rollback",
        ])
        .await;
    with_rollback.expect(0);
    assert!(
        with_rollback.stdout.contains("All 8 steps passed"),
        "{}",
        with_rollback.stdout
    );
    // A password in the URL would show in the process list: refused.
    let leaky = format!(
        "postgres://postgres:hunter2@127.0.0.1:{}/{DB}",
        t.sandbox.port
    );
    let refused = t
        .run(&[
            "rehearse",
            "--database-url",
            &leaky,
            "--app-password-from",
            "env:APP_PW",
        ])
        .await;
    refused.expect(2);
    assert!(!refused.stderr.contains("hunter2"));
}
