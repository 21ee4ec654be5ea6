//! `rlsctl tunnel` and `--via-ssm` through the real AWS SDK, a local SSM
//! endpoint double and the stand-in plugin.

use std::path::PathBuf;
use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};

use crate::ssm_double::SsmDouble;
use crate::support::*;

const INSTANCE: &str = "i-0123456789abcdef0";
const RDS: &str = "db.internal.example";
/// A dry-run apply through a tunnel: the cheapest command that opens one.
const DRY_RUN_VIA_SSM: [&str; 5] = [
    "apply",
    "--via-ssm",
    "--dry-run",
    "--app-password-from",
    "env:APP_PW",
];

fn standin() -> PathBuf {
    example("session_manager_plugin_standin")
}

fn empty_file(dir: &tempfile::TempDir, name: &str) -> String {
    let path = dir.path().join(name);
    std::fs::write(&path, "").unwrap();
    path.display().to_string()
}

/// Environment for the tunnel: the double, the stand-in, fake credentials.
pub struct Aws {
    /// The SSM double.
    pub double: SsmDouble,
    dir: tempfile::TempDir,
    env: Vec<(String, String)>,
}

impl Aws {
    pub fn new(t: &TestDb) -> Self {
        let double = SsmDouble::start();
        let dir = tempfile::tempdir().unwrap();
        let env = [
            ("INSTANCE_ID", INSTANCE.to_string()),
            ("RDS_ENDPOINT", RDS.to_string()),
            // The test server has no TLS: through a tunnel the default is
            // verify-full, so anything weaker is asked for explicitly.
            ("PGSSLMODE", "disable".to_string()),
            ("SESSION_MANAGER_PLUGIN", standin().display().to_string()),
            ("AWS_ENDPOINT_URL_SSM", double.url.clone()),
            ("AWS_REGION", "us-west-2".to_string()),
            ("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE".to_string()),
            (
                "AWS_SECRET_ACCESS_KEY",
                "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".to_string(),
            ),
            ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
            ("AWS_CONFIG_FILE", empty_file(&dir, "config")),
            (
                "AWS_SHARED_CREDENTIALS_FILE",
                empty_file(&dir, "credentials"),
            ),
            (
                "STANDIN_DESTINATION",
                format!("127.0.0.1:{}", t.sandbox.port),
            ),
            (
                "STANDIN_ARGV_LOG",
                dir.path().join("argv.log").display().to_string(),
            ),
            (
                "STANDIN_PID_FILE",
                dir.path().join("plugin.pid").display().to_string(),
            ),
        ];
        Self {
            double,
            dir,
            env: env.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        }
    }

    pub fn with(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = self.env.clone();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    fn argv_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("argv.log")).unwrap_or_default()
    }

    fn plugin_alive(&self) -> bool {
        let Ok(pid) = std::fs::read_to_string(self.dir.path().join("plugin.pid")) else {
            return false;
        };
        // A zombie is not alive: read the state field.
        std::fs::read_to_string(format!("/proc/{}/stat", pid.trim()))
            .map(|s| !s.contains(") Z "))
            .unwrap_or(false)
    }

    /// StartSession ids, and TerminateSession ids.
    fn sessions(&self) -> (Vec<String>, Vec<String>) {
        let started = self
            .double
            .operations()
            .iter()
            .filter(|o| *o == "StartSession")
            .count();
        let started = (1..=started)
            .map(|n| format!("rlsctl-test-{n:04}"))
            .collect();
        let terminated = self
            .double
            .bodies("TerminateSession")
            .iter()
            .map(|b| b["SessionId"].as_str().unwrap().to_string())
            .collect();
        (started, terminated)
    }
}

/// `rlsctl tunnel` with `args`, started and waited for until it prints `ready:`.
async fn ready_tunnel(t: &TestDb, aws: &Aws, args: &[&str]) -> tokio::process::Child {
    ready_tunnel_inheriting(t, aws, args, Inherited::AsALoginShell).await
}

/// Starts `rlsctl tunnel` with the given inherited signal state and waits for
/// its "ready:" line.
async fn ready_tunnel_inheriting(
    t: &TestDb,
    aws: &Aws,
    args: &[&str],
    inherited: Inherited,
) -> tokio::process::Child {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"));
    command
        .arg("tunnel")
        .args(args)
        .env_clear()
        .envs(&t.env)
        .envs(aws.with(&[]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    inherit(&mut command, inherited);
    let mut child = command.spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let ready = async {
        while let Some(line) = next_line(&mut lines).await {
            if line.starts_with("ready: ") {
                return;
            }
        }
        panic!("the tunnel ended before it was ready");
    };
    tokio::time::timeout(std::time::Duration::from_secs(60), ready)
        .await
        .expect("the tunnel is ready within a minute");
    child
}

pub async fn run_with(t: &TestDb, args: &[&str], env: &[(String, String)]) -> Run {
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    t.run_env(args, &refs).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnel_reaches_the_database_and_ctrl_c_terminates_the_session() {
    let t = TestDb::demo().await;
    let aws = Aws::new(&t);
    let port = rlsctl::tunnel::free_local_port().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .arg("tunnel")
        .env_clear()
        .envs(&t.env)
        .envs(aws.with(&[("LOCAL_PORT", &port.to_string())]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let ready = next_line(&mut lines).await.expect("a ready line");
    assert_eq!(
        ready,
        format!("ready: 127.0.0.1:{port} -> {RDS}:5432 (session rlsctl-test-0001)")
    );

    // psql (or the driver, where psql is missing) reaches the test database through the tunnel.
    let psql = std::process::Command::new("psql")
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            "postgres",
            "-d",
            DB,
            "-Atc",
            "SELECT count(*) FROM tenants",
        ])
        .env("PGPASSWORD", t.sandbox.superuser_password.expose())
        .output();
    match psql {
        Ok(out) => assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "3",
            "{}",
            String::from_utf8_lossy(&out.stderr)
        ),
        Err(_) => {
            let mut options =
                t.sandbox
                    .connect_options(DB, "postgres", &t.sandbox.superuser_password);
            options.port = port;
            let db = rlsctl::pg::connect(&options).await.unwrap();
            assert_eq!(count(&db, "SELECT count(*) FROM tenants").await, 3);
        }
    }

    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    assert_eq!(exit_code(&mut child).await, Some(0));
    assert_eq!(
        aws.double.operations(),
        [
            "DescribeInstanceInformation",
            "StartSession",
            "TerminateSession"
        ]
    );
    let (started, terminated) = aws.sessions();
    assert_eq!(started, terminated);
    assert!(!aws.plugin_alive());
    let start = &aws.double.bodies("StartSession")[0];
    assert_eq!(
        start["DocumentName"],
        "AWS-StartPortForwardingSessionToRemoteHost"
    );
    assert_eq!(start["Parameters"]["host"], serde_json::json!([RDS]));
    assert_eq!(
        start["Parameters"]["portNumber"],
        serde_json::json!(["5432"])
    );
    assert_eq!(
        start["Parameters"]["localPortNumber"],
        serde_json::json!([port.to_string()])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_and_verify_via_ssm_end_to_end() {
    let t = TestDb::demo().await;
    let aws = Aws::new(&t);
    // Nothing listens on PGHOST/PGPORT: the command must go through the tunnel.
    let env = aws.with(&[("PGPORT", "1")]);
    run_with(
        &t,
        &["apply", "--via-ssm", "--app-password-from", "env:APP_PW"],
        &env,
    )
    .await
    .expect(0);
    assert!(!aws.plugin_alive());
    let verify_env = aws.with(&[
        ("PGPORT", "1"),
        ("PGUSER", "app_user"),
        ("PGPASSWORD", APP_PASSWORD),
    ]);
    run_with(
        &t,
        &[
            "verify",
            "--via-ssm",
            "--tenant",
            TENANTS[0],
            "--tenant",
            TENANTS[1],
        ],
        &verify_env,
    )
    .await
    .expect(0);
    run_with(&t, &["monitor", "--via-ssm", "--quiet"], &verify_env)
        .await
        .expect(0);
    // ~/.pgpass names the endpoint, not the tunnel's local port (new each run).
    let pgpass = t.sandbox.dir().join("pgpass");
    // (its format escapes a backslash and a colon)
    let escaped = APP_PASSWORD.replace('\\', "\\\\").replace(':', "\\:");
    std::fs::write(&pgpass, format!("{RDS}:5432:*:app_user:{escaped}\n")).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&pgpass, std::fs::Permissions::from_mode(0o600)).unwrap();
    let pgpass_env = aws.with(&[
        ("PGPORT", "1"),
        ("PGUSER", "app_user"),
        ("PGPASSFILE", pgpass.to_str().unwrap()),
        ("PGPASSWORD", ""),
    ]);
    run_with(&t, &["monitor", "--via-ssm", "--quiet"], &pgpass_env)
        .await
        .expect(0);
    assert!(!aws.plugin_alive());
    let (started, terminated) = aws.sessions();
    assert_eq!(started.len(), 4);
    assert_eq!(started, terminated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_token_stays_out_of_argv_for_current_plugins() {
    let t = TestDb::demo().await;
    let aws = Aws::new(&t);
    run_with(&t, &DRY_RUN_VIA_SSM, &aws.with(&[("PGPORT", "1")]))
        .await
        .expect(0);
    let log = aws.argv_log();
    assert!(log.contains("env_handoff=true"), "{log}");
    assert!(
        log.contains("\"AWS_SSM_START_SESSION_RESPONSE\",\"us-west-2\",\"StartSession\",\"\""),
        "{log}"
    );
    assert!(
        log.contains(&format!("\"{}\"]", aws.double.url)),
        "the endpoint URL is the last argument: {log}"
    );
    assert!(!log.contains("TOKEN-SECRET"), "{log}");

    // An old plugin (a source build reports 1.2.0.0, releases up to 1.2.497.0,
    // or a version that does not parse) would get the token on its argv:
    // refused before any session starts, unless allowed.
    for version in ["1.2.0.0", "1.2.497.0", "weird"] {
        let old = Aws::new(&t);
        let run = run_with(
            &t,
            &DRY_RUN_VIA_SSM,
            &old.with(&[("PGPORT", "1"), ("STANDIN_PLUGIN_VERSION", version)]),
        )
        .await;
        run.expect(2);
        assert!(
            run.stderr.contains(version) && run.stderr.contains("--allow-token-in-argv"),
            "{}",
            run.stderr
        );
        assert!(old.argv_log().is_empty(), "no plugin started");
    }
    let old = Aws::new(&t);
    let allowed: Vec<&str> = DRY_RUN_VIA_SSM
        .iter()
        .copied()
        .chain(["--allow-token-in-argv"])
        .collect();
    let run = run_with(
        &t,
        &allowed,
        &old.with(&[("PGPORT", "1"), ("STANDIN_PLUGIN_VERSION", "1.2.0.0")]),
    )
    .await;
    run.expect(0);
    assert!(
        run.stderr.contains("1.2.0.0"),
        "a warning names the source build: {}",
        run.stderr
    );
    let log = old.argv_log();
    assert!(
        log.contains("env_handoff=false") && log.contains("TOKEN-SECRET-1"),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tunnel_failures_are_clear_and_leave_no_session_open() {
    let t = TestDb::demo().await;

    // Plugin missing: before any AWS call.
    let aws = Aws::new(&t);
    let run = run_with(
        &t,
        &["tunnel"],
        &aws.with(&[(
            "SESSION_MANAGER_PLUGIN",
            "/nonexistent/session-manager-plugin",
        )]),
    )
    .await;
    run.expect(2);
    assert!(
        run.stderr.contains("not found") && run.stderr.contains("install"),
        "{}",
        run.stderr
    );
    assert!(aws.double.operations().is_empty());

    // Local port busy.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let run = run_with(&t, &["tunnel"], &aws.with(&[("LOCAL_PORT", &port)])).await;
    run.expect(2);
    assert!(
        run.stderr
            .contains(&format!("local port {port} is not free")),
        "{}",
        run.stderr
    );
    assert!(aws.double.operations().is_empty());

    // Instance not Online, and not managed at all.
    for (status, words) in [
        (Some("ConnectionLost"), "ConnectionLost"),
        (None, "not managed by SSM"),
    ] {
        let aws = Aws::new(&t);
        aws.double.behavior.lock().unwrap().ping_status = status;
        let run = run_with(&t, &["tunnel", "--local-port", "0"], &aws.env).await;
        run.expect(2);
        assert!(run.stderr.contains(words), "{}", run.stderr);
        assert!(!aws
            .double
            .operations()
            .contains(&"StartSession".to_string()));
    }

    // The plugin fails (and exits 0, as the real one does).
    let aws = Aws::new(&t);
    let run = run_with(
        &t,
        &["tunnel", "--local-port", "0"],
        &aws.with(&[("STANDIN_FAIL", "websocket: bad handshake")]),
    )
    .await;
    run.expect(2);
    assert!(
        run.stderr
            .contains("Cannot perform start session: websocket: bad handshake"),
        "{}",
        run.stderr
    );
    let (started, terminated) = aws.sessions();
    assert_eq!((started.len(), &started), (1, &terminated));

    // Readiness never comes.
    let aws = Aws::new(&t);
    let run = run_with(
        &t,
        &["tunnel", "--local-port", "0", "--start-timeout", "1s"],
        &aws.with(&[("STANDIN_NEVER_READY", "1")]),
    )
    .await;
    run.expect(2);
    assert!(
        run.stderr.contains("did not open the port within"),
        "{}",
        run.stderr
    );
    let (started, terminated) = aws.sessions();
    assert_eq!((started.len(), &started), (1, &terminated));
    assert!(!aws.plugin_alive());

    // TargetNotConnected is retried.
    let aws = Aws::new(&t);
    aws.double.behavior.lock().unwrap().target_not_connected = 2;
    run_with(&t, &DRY_RUN_VIA_SSM, &aws.with(&[("PGPORT", "1")]))
        .await
        .expect(0);
    assert_eq!(
        aws.double
            .operations()
            .iter()
            .filter(|o| *o == "StartSession")
            .count(),
        3
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_dying_mid_apply_changes_nothing_and_ends_the_session() {
    let t = TestDb::demo().await;
    let su = t.superuser().await;
    let before = catalog_snapshot(&su).await;
    // Hold a lock so apply is mid-transaction when the plugin dies.
    let blocker = t.hold_lock("services").await;
    let aws = Aws::new(&t);
    let env = aws.with(&[("PGPORT", "1")]);
    let refs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let apply = t.run_env(
        &[
            "apply",
            "--via-ssm",
            "--app-password-from",
            "env:APP_PW",
            "--lock-timeout",
            "20s",
        ],
        &refs,
    );
    let killer = async {
        // Wait until apply waits on the lock, then kill the plugin outright.
        wait_for_a_lock_wait(&su).await;
        let pid = std::fs::read_to_string(aws.dir.path().join("plugin.pid")).unwrap();
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid.trim().parse().unwrap()),
            nix::sys::signal::Signal::SIGKILL,
        );
    };
    let (run, ()) = tokio::join!(apply, killer);
    run.expect(2);
    assert!(
        run.stderr.contains("tunnel dropped") || run.stderr.contains("connection"),
        "{}",
        run.stderr
    );
    blocker.simple("ROLLBACK").await.unwrap();
    assert_eq!(catalog_snapshot(&su).await, before);
    let (started, terminated) = aws.sessions();
    assert_eq!(started, terminated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_exiting_on_its_own_ends_the_tunnel_with_its_last_words() {
    let t = TestDb::demo().await;
    let aws = Aws::new(&t);
    let run = run_with(
        &t,
        &["tunnel", "--local-port", "0"],
        &aws.with(&[("STANDIN_EXIT_AFTER_MS", "300")]),
    )
    .await;
    run.expect(2);
    assert!(run.stderr.contains("timed out"), "{}", run.stderr);
    let (started, terminated) = aws.sessions();
    assert_eq!((started.len(), &started), (1, &terminated));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_come_from_parameter_store_and_stay_secret() {
    let t = TestDb::demo().await;
    let aws = Aws::new(&t);
    let secret = "ssm-Secret-value-8841";
    aws.double
        .behavior
        .lock()
        .unwrap()
        .parameters
        .insert("/edgar/prod/app_user".into(), secret.into());
    let run = run_with(
        &t,
        &[
            "apply",
            "--app-password-from",
            "ssm:/edgar/prod/app_user",
            "-vvv",
        ],
        &aws.env,
    )
    .await;
    run.expect(0);
    let get = &aws.double.bodies("GetParameter")[0];
    assert_eq!(get["Name"], "/edgar/prod/app_user");
    assert_eq!(get["WithDecryption"], true);
    assert!(!run.all_output().contains(secret));
    t.connect("app_user", secret)
        .await
        .expect("the app role got the parameter's value");
    // A missing parameter is a clear error.
    let missing = run_with(
        &t,
        &[
            "apply",
            "--app-password-from",
            "ssm:/nope",
            "--rotate-passwords",
        ],
        &aws.env,
    )
    .await;
    missing.expect(2);
    assert!(
        missing.stderr.contains("ParameterNotFound"),
        "{}",
        missing.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_the_tunnel_and_reconnect_restarts_dropped_sessions() {
    let t = TestDb::demo().await;
    let aws = Aws::new(&t);
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .args(["tunnel", "--local-port", "0", "--reconnect"])
        .env_clear()
        .envs(&t.env)
        .envs(aws.with(&[("STANDIN_EXIT_AFTER_MS", "300")]))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut ready = 0;
    while let Some(line) = next_line(&mut lines).await {
        if line.starts_with("ready: ") {
            ready += 1;
            if ready == 2 {
                break;
            }
        }
    }
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    assert_eq!(exit_code(&mut child).await, Some(0));
    let (started, terminated) = aws.sessions();
    assert!(started.len() >= 2, "{started:?}");
    assert_eq!(started, terminated);
    assert!(!aws.plugin_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_through_a_tunnel_carry_no_token() {
    let t = TestDb::demo().await;
    let aws = Aws::new(&t);
    for level in ["trace", "debug"] {
        let run = run_with(
            &t,
            &DRY_RUN_VIA_SSM,
            &aws.with(&[("PGPORT", "1"), ("RLSCTL_LOG", level)]),
        )
        .await;
        run.expect(0);
        assert!(
            !run.all_output().contains("TOKEN-SECRET"),
            "the session token is in the {level} log"
        );
        assert!(run.stderr.contains("session started"), "{}", run.stderr);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_signal_during_set_up_ends_the_session_and_the_plugin() {
    let t = TestDb::demo().await;
    for (signal, code) in [
        (nix::sys::signal::Signal::SIGINT, 130),
        (nix::sys::signal::Signal::SIGTERM, 143),
        (nix::sys::signal::Signal::SIGHUP, 129),
    ] {
        let aws = Aws::new(&t);
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"));
        command
            .args(DRY_RUN_VIA_SSM)
            .env_clear()
            .envs(&t.env)
            .envs(aws.with(&[("STANDIN_NEVER_READY", "1"), ("PGPORT", "1")]))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        inherit(&mut command, Inherited::AsALoginShell);
        let mut child = command.spawn().unwrap();
        // Wait until the plugin runs (the session has started), then signal.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while !aws.plugin_alive() {
            assert!(
                std::time::Instant::now() < deadline,
                "the plugin never started"
            );
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
            signal,
        );
        assert_eq!(exit_code(&mut child).await, Some(code), "signal {signal:?}");
        let (started, terminated) = aws.sessions();
        assert_eq!(started.len(), 1);
        assert_eq!(
            started, terminated,
            "signal {signal}: TerminateSession sent"
        );
        assert!(!aws.plugin_alive(), "signal {signal}: the plugin is gone");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_to_apply_via_ssm_waiting_on_a_lock_changes_nothing_and_ends_the_session() {
    let t = TestDb::demo().await;
    let aws = Aws::new(&t);
    let su = t.superuser().await;
    let before = catalog_snapshot(&su).await;
    let blocker = t.hold_lock("vehicles").await;
    let mut child =
        apply_waiting_on_a_lock(&t, &su, &["--via-ssm"], &aws.with(&[("PGPORT", "1")])).await;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGTERM,
    );
    assert_eq!(exit_code(&mut child).await, Some(143));
    blocker.simple("ROLLBACK").await.unwrap();
    assert_eq!(catalog_snapshot(&su).await, before);
    let (started, terminated) = aws.sessions();
    assert_eq!(started, terminated);
    assert!(!aws.plugin_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_plugin_dies_with_rlsctl_even_on_sigkill() {
    let t = TestDb::demo().await;
    let aws = Aws::new(&t);
    let mut child = ready_tunnel(&t, &aws, &["--local-port", "0"]).await;
    assert!(aws.plugin_alive());
    child.kill().await.unwrap(); // SIGKILL: no handler runs
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while aws.plugin_alive() {
        assert!(
            std::time::Instant::now() < deadline,
            "the plugin outlived rlsctl (it would keep listening into the VPC)"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_ends_the_tunnel_like_ctrl_c() {
    // A dropped SSH session sends SIGHUP: the session ends and the plugin goes.
    let t = TestDb::demo().await;
    let aws = Aws::new(&t);
    let mut child = ready_tunnel(&t, &aws, &["--local-port", "0"]).await;
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGHUP,
    );
    assert_eq!(exit_code(&mut child).await, Some(0));
    let (started, terminated) = aws.sessions();
    assert_eq!(started.len(), 1);
    assert_eq!(started, terminated);
    assert!(!aws.plugin_alive());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn under_nohup_a_hang_up_does_not_stop_the_tunnel() {
    let t = TestDb::demo().await;
    let aws = Aws::new(&t);
    let mut child =
        ready_tunnel_inheriting(&t, &aws, &["--local-port", "0"], Inherited::Nohup).await;
    // Ignored (SIG_IGN), a SIGHUP is discarded by the kernel as it is sent:
    // nothing is left pending that could stop the tunnel later.
    let pid = child.id().unwrap();
    assert!(
        ignores(pid, 1),
        "the tunnel does not ignore SIGHUP under nohup"
    );
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGHUP,
    );
    assert!(
        child.try_wait().unwrap().is_none(),
        "nohup asked to survive a hang-up"
    );
    assert!(aws.plugin_alive());
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    assert_eq!(exit_code(&mut child).await, Some(0));
    let (started, terminated) = aws.sessions();
    assert_eq!(started, terminated);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_signals_blocked_by_the_parent_still_stop_the_tunnel() {
    let t = TestDb::demo().await;
    let aws = Aws::new(&t);
    for signal in [
        nix::sys::signal::Signal::SIGTERM,
        nix::sys::signal::Signal::SIGHUP,
    ] {
        let mut child =
            ready_tunnel_inheriting(&t, &aws, &["--local-port", "0"], Inherited::Blocked).await;
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
            signal,
        );
        assert_eq!(exit_code(&mut child).await, Some(0), "signal {signal:?}");
    }
    let (started, terminated) = aws.sessions();
    assert_eq!(started.len(), 2);
    assert_eq!(started, terminated);
    assert!(!aws.plugin_alive());
}

/// Whether process `pid` ignores signal number `signal` (its SigIgn mask).
fn ignores(pid: u32, signal: u32) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let mask = status
        .lines()
        .find_map(|l| l.strip_prefix("SigIgn:"))
        .map(|m| u64::from_str_radix(m.trim(), 16).unwrap())
        .unwrap();
    mask & (1 << (signal - 1)) != 0
}
