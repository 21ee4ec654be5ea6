//! rlsctl through a real PgBouncer (Debian's 1.18, SCRAM), in transaction and
//! in session mode, in front of an RDS-shaped sandbox: apply, verify, monitor
//! and rollback work through it, and the session-state probe (SES001) tells
//! the modes apart.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::support::*;
use crate::verify::{details as detail, statuses};

/// How PgBouncer hands server connections to clients.
#[derive(Clone, Copy, Debug)]
pub enum PoolMode {
    /// A server connection per transaction (session settings cross clients).
    Transaction,
    /// A server connection per client, reset with DISCARD ALL when it leaves.
    Session,
    /// Per client, but handed on without a reset query (a misconfiguration).
    SessionWithoutReset,
}

/// A PgBouncer in front of a test cluster; stopped on drop.
pub struct PgBouncer {
    child: std::process::Child,
    /// The port clients dial.
    pub port: u16,
    config: PathBuf,
}

impl Drop for PgBouncer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn binary() -> String {
    std::env::var("PGBOUNCER").unwrap_or_else(|_| {
        if std::path::Path::new("/usr/sbin/pgbouncer").exists() {
            "/usr/sbin/pgbouncer".into()
        } else {
            "pgbouncer".into()
        }
    })
}

impl PgBouncer {
    /// Starts PgBouncer for database `edgarautoshop`, letting in `users` with
    /// the SCRAM secrets the server holds (PgBouncer then logs in to the
    /// server with the client's own SCRAM proof, as in production).
    pub async fn start(t: &TestDb, mode: PoolMode, users: &[&str]) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (pool_mode, reset) = match mode {
            PoolMode::Transaction => ("transaction", "DISCARD ALL"),
            PoolMode::Session => ("session", "DISCARD ALL"),
            PoolMode::SessionWithoutReset => ("session", ""),
        };
        let name = format!("pgbouncer-{port}");
        let ini = format!(
            "[databases]\n{DB} = host=127.0.0.1 port={} dbname={DB}\n\n[pgbouncer]\n\
             listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n\
             auth_type = scram-sha-256\nauth_file = {name}.users\n\
             pool_mode = {pool_mode}\nserver_reset_query = {reset}\n\
             default_pool_size = 5\nmax_client_conn = 200\n",
            t.sandbox.port
        );
        let config = t
            .sandbox
            .write_private(&format!("{name}.ini"), &ini)
            .unwrap();
        write_users(t, &name, users).await;
        let log = std::fs::File::create(t.sandbox.dir().join(format!("{name}.log"))).unwrap();
        let child = t
            .sandbox
            .command_as_owner(binary())
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "starting {} (scripts/ensure-pgbouncer installs it): {e}",
                    binary()
                )
            });
        let bouncer = Self {
            child,
            port,
            config,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "PgBouncer did not listen within 20 s: {}",
                bouncer.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bouncer
    }

    /// Lets in `users` with their current secrets (after apply set the app
    /// role's password) and has PgBouncer reload them.
    pub async fn reload_users(&self, t: &TestDb, users: &[&str]) {
        let name = self
            .config
            .file_stem()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        write_users(t, &name, users).await;
        let reloads = || self.log().matches("SIGHUP").count();
        let before = reloads();
        let pid = nix::unistd::Pid::from_raw(self.child.id() as i32);
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).unwrap();
        // The reload is asynchronous. PgBouncer is one event loop: it logs
        // the SIGHUP and re-reads its files in one step, so a connection made
        // after the line is there meets the new users.
        wait_until("PgBouncer reloads", Duration::from_secs(10), || async {
            reloads() > before
        })
        .await;
    }

    /// PgBouncer's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.config.with_extension("log")).unwrap_or_default()
    }

    /// The environment that points rlsctl at the pooler.
    pub fn port_env(&self) -> String {
        self.port.to_string()
    }
}

async fn write_users(t: &TestDb, name: &str, users: &[&str]) {
    let su = t.superuser().await;
    let users: Vec<String> = users.iter().map(|u| u.to_string()).collect();
    let rows = su
        .query(
            "SELECT rolname::text, rolpassword FROM pg_authid WHERE rolname = ANY($1) AND rolpassword IS NOT NULL",
            &[&users],
        )
        .await
        .unwrap();
    let list: String = rows
        .iter()
        .map(|r| {
            format!(
                "\"{}\" \"{}\"\n",
                r.get::<_, String>(0),
                r.get::<_, String>(1)
            )
        })
        .collect();
    t.sandbox
        .write_private(&format!("{name}.users"), &list)
        .unwrap();
}

/// verify as the app role through the pooler, JSON, two real tenants.
async fn verify_through(
    t: &TestDb,
    bouncer: &PgBouncer,
    extra: &[&str],
) -> (Run, serde_json::Value) {
    let port = bouncer.port_env();
    let mut args = vec![
        "verify", "--format", "json", "--tenant", TENANTS[0], "--tenant", TENANTS[1],
    ];
    args.extend_from_slice(extra);
    let run = t
        .run_env(&args, &[AS_APP[0], AS_APP[1], ("PGPORT", &port)])
        .await;
    let doc = run.json();
    (run, doc)
}

/// apply, verify, monitor and rollback through the pooler in `mode`.
async fn the_cycle_through(mode: PoolMode) -> (TestDb, PgBouncer) {
    let t = TestDb::demo_rds().await;
    let bouncer = PgBouncer::start(&t, mode, &["postgres"]).await;
    let port = bouncer.port_env();
    let through = [("PGPORT", port.as_str())];
    let apply = t
        .run_env(
            &[
                "apply",
                "--app-password-from",
                "env:APP_PW",
                "--admin-password-from",
                "env:ADMIN_PW",
            ],
            &through,
        )
        .await;
    apply.expect(0);
    // A second run through the pooler is a no-op.
    let again = t
        .run_env(
            &[
                "apply",
                "--app-password-from",
                "env:APP_PW",
                "--format",
                "json",
            ],
            &through,
        )
        .await;
    again.expect(0);
    assert_eq!(again.json()["summary"]["changes"], 0, "{}", again.stdout);

    bouncer.reload_users(&t, &["postgres", "app_user"]).await;
    let (run, doc) = verify_through(&t, &bouncer, &[]).await;
    run.expect(0);
    for id in ["PRB001", "PRB002", "PRB003", "PRB004", "RLS001", "RLS003"] {
        assert_eq!(
            statuses(&doc, id),
            ["pass"],
            "{id} via {mode:?}: {}",
            run.stdout
        );
    }

    let monitor = t
        .run_env(
            &["monitor", "--format", "json"],
            &[AS_APP[0], AS_APP[1], ("PGPORT", &port)],
        )
        .await;
    let monitor_doc = monitor.json();
    for id in ["DRF001", "DRF002", "RLS002"] {
        assert_eq!(
            statuses(&monitor_doc, id),
            ["pass"],
            "{id} via {mode:?}: {}",
            monitor.stdout
        );
    }
    assert_eq!(monitor_doc["summary"]["failed"], 0, "{}", monitor.stdout);

    t.run_env(
        &[
            "rollback",
            "--table",
            "customers",
            "--reason",
            "through the pooler",
            "--yes",
        ],
        &through,
    )
    .await
    .expect(0);
    let during = t
        .run_env(
            &["monitor", "--format", "json"],
            &[AS_APP[0], AS_APP[1], ("PGPORT", &port)],
        )
        .await;
    during.expect(1);
    assert_eq!(
        crate::verify::statuses(&during.json(), "DRF003"),
        ["fail"],
        "{}",
        during.stdout
    );
    t.run_env(&["rollback", "--restore"], &through)
        .await
        .expect(0);
    (t, bouncer)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cycle_works_through_pgbouncer_in_transaction_mode_and_strict_verify_reports_session_state(
) {
    let (t, bouncer) = the_cycle_through(PoolMode::Transaction).await;
    let (run, doc) = verify_through(&t, &bouncer, &["--strict"]).await;
    run.expect(1);
    assert_eq!(statuses(&doc, "SES001"), ["warn"], "{}", run.stdout);
    assert!(
        detail(&doc, "SES001").contains("while the first was still open"),
        "{}",
        detail(&doc, "SES001")
    );
    // The only thing strict failed on.
    let failing: Vec<&str> = doc["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "pass")
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(failing, ["SES001"], "{}", run.stdout);
    // The canary is gone from every server connection the pool holds.
    assert_no_canary(&t, &bouncer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cycle_works_through_pgbouncer_in_session_mode_and_strict_verify_passes() {
    let (t, bouncer) = the_cycle_through(PoolMode::Session).await;
    let (run, doc) = verify_through(&t, &bouncer, &["--strict"]).await;
    run.expect(0);
    assert_eq!(statuses(&doc, "SES001"), ["pass"]);
    // And directly, with no pooler.
    let (direct, doc) = crate::verify::verify(&t, &["--strict"]).await;
    direct.expect(0);
    assert_eq!(statuses(&doc, "SES001"), ["pass"]);
}

/// SES001 through the one harness: strict verify and monitor pass directly,
/// then warn once a pooler that hands server connections on without a reset
/// is put in front; and the probe's canary is left on no server connection.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_pooler_without_a_reset_query_warns_ses001_in_verify_and_monitor() {
    let broken = crate::breaks::breaks(crate::breaks::Break {
        status: "warn",
        pooler: Some(PoolMode::SessionWithoutReset),
        ..crate::breaks::Break::of(&[], &[], "SES001")
    })
    .await;
    assert!(
        detail(&broken.doc, "SES001").contains("after the first disconnected"),
        "{}",
        detail(&broken.doc, "SES001")
    );
    let bouncer = broken
        .pooler
        .as_ref()
        .expect("the harness keeps the pooler");
    assert_no_canary(&broken.t, bouncer).await;
}

/// Through the pooler as the app role, no server connection carries a value
/// for the tenant setting (the probe removed its canary where it saw it).
async fn assert_no_canary(t: &TestDb, bouncer: &PgBouncer) {
    let mut options = t.sandbox.connect_options(
        DB,
        "app_user",
        &rlsctl::model::secret::Secret::new(APP_PASSWORD),
    );
    options.port = bouncer.port;
    // Several clients at once take several server connections.
    let mut clients = Vec::new();
    for _ in 0..5 {
        clients.push(rlsctl::pg::connect(&options).await.unwrap());
    }
    let mut transactions = Vec::new();
    for client in &clients {
        transactions.push(client.begin(rlsctl::pg::Begin::Plain).await.unwrap());
    }
    for client in &clients {
        let value = rlsctl::pg::tenant::current(client, "app.tenant_id")
            .await
            .unwrap();
        assert!(
            value.as_deref().unwrap_or("").is_empty(),
            "a server connection still has app.tenant_id = {value:?}"
        );
    }
    for transaction in transactions {
        transaction.rollback().await.unwrap();
    }
}
