//! The test harness: a throwaway PostgreSQL per test (the same sandbox
//! `rehearse` uses), the sample schema, and a runner for the real binary.

use std::collections::BTreeMap;
use std::process::Stdio;

use rlsctl::model::secret::Secret;
use rlsctl::model::sql::{DEMO_SCHEMA, DEMO_SEED};
use rlsctl::pg::{self, Db};
use rlsctl::sandbox::{Options, Sandbox, Shape};

/// Password given to the app role by `apply` in the tests.
pub const APP_PASSWORD: &str = "app-pw-Zq7'\"\\ü";
/// Password given to the break-glass role by `apply` in the tests.
pub const ADMIN_PASSWORD: &str = "admin-pw-Xk9";
/// The three tenants of the sample data.
pub const TENANTS: [&str; 3] = ["edgar-downtown", "edgar-airport", "quickfix"];
/// Environment that makes the binary connect as the app role.
pub const AS_APP: [(&str, &str); 2] = [("PGUSER", "app_user"), ("PGPASSWORD", APP_PASSWORD)];
/// The database the tests use (the runbook's name).
pub const DB: &str = "edgarautoshop";

/// What a run of the binary produced.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }
    #[track_caller]
    pub fn expect(&self, code: i32) -> &Self {
        assert_eq!(
            self.code, code,
            "exit code\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
    pub fn all_output(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }
}

/// A throwaway cluster with database `edgarautoshop`.
pub struct TestDb {
    pub sandbox: Sandbox,
    pub env: BTreeMap<String, String>,
}

impl TestDb {
    /// A cluster with the sample schema and its three tenants.
    pub async fn demo() -> Self {
        Self::with(Options::default(), true).await
    }

    /// A cluster with an empty `edgarautoshop` database.
    pub async fn empty() -> Self {
        Self::with(Options::default(), false).await
    }

    /// An RDS-shaped cluster (the operator `postgres` is an RDS master, not a
    /// superuser) with the sample schema, owned by the master.
    pub async fn demo_rds() -> Self {
        Self::rds(true).await
    }

    /// An RDS-shaped cluster with an empty `edgarautoshop` database.
    pub async fn empty_rds() -> Self {
        Self::rds(false).await
    }

    async fn rds(demo: bool) -> Self {
        let options = Options {
            shape: Shape::RdsMaster,
            ..Options::default()
        };
        Self::with(options, demo).await
    }

    pub async fn with(options: Options, demo: bool) -> Self {
        let sandbox = tokio::task::spawn_blocking(move || Sandbox::start(&options))
            .await
            .unwrap()
            .expect("sandbox starts");
        sandbox.create_database(DB).await.expect("database created");
        let mut env = BTreeMap::new();
        for (k, v) in [
            ("PGHOST", "127.0.0.1".to_string()),
            ("PGPORT", sandbox.port.to_string()),
            ("PGDATABASE", DB.to_string()),
            ("PGPASSWORD", sandbox.operator_password.expose().to_string()),
            ("APP_PW", APP_PASSWORD.to_string()),
            ("ADMIN_PW", ADMIN_PASSWORD.to_string()),
            ("HOME", sandbox.dir().display().to_string()),
            ("PATH", std::env::var("PATH").unwrap_or_default()),
            ("NO_COLOR", "1".to_string()),
        ] {
            env.insert(k.to_string(), v);
        }
        let test_db = Self { sandbox, env };
        if demo {
            let operator = test_db.operator().await;
            operator.simple(DEMO_SCHEMA).await.unwrap();
            operator.simple(DEMO_SEED).await.unwrap();
        }
        test_db
    }

    /// The sample on a server that writes its own log files in `layout`
    /// (`stderr` with RDS's prefix, as RDS writes them; `csvlog`;
    /// `jsonlog`, 15 and later), as `monitor --logs` and shadow mode read.
    pub async fn logging(layout: &str) -> Self {
        let mut extra_config = vec![
            "logging_collector = on".to_string(),
            "log_directory = 'log'".to_string(),
            format!("log_destination = '{layout}'"),
        ];
        if layout == "stderr" {
            extra_config.push(format!(
                "log_line_prefix = '{}'",
                rlsctl::model::log::RDS_PREFIX
            ));
        }
        Self::with(
            Options {
                extra_config,
                ..Default::default()
            },
            true,
        )
        .await
    }

    /// The log file the server writes in `layout` now, as a path.
    pub async fn current_log(&self, layout: &str) -> std::path::PathBuf {
        let file: String = self
            .superuser()
            .await
            .query_one("SELECT pg_current_logfile($1)", &[&layout])
            .await
            .unwrap()
            .get(0);
        self.sandbox.dir().join("data").join(file)
    }

    /// A connection to `edgarautoshop` as the real superuser.
    pub async fn superuser(&self) -> Db {
        pg::connect(&self.sandbox.superuser_options(DB))
            .await
            .unwrap()
    }

    /// A connection to `edgarautoshop` as the operator `postgres` (the
    /// superuser, or the RDS master in an RDS-shaped cluster).
    pub async fn operator(&self) -> Db {
        pg::connect(&self.sandbox.operator_options(DB))
            .await
            .unwrap()
    }

    /// A connection as `user` with `password`.
    pub async fn connect(&self, user: &str, password: &str) -> anyhow::Result<Db> {
        pg::connect(
            &self
                .sandbox
                .connect_options(DB, user, &Secret::new(password)),
        )
        .await
    }

    /// Runs the real binary with the test environment (and nothing of the caller's).
    pub async fn run(&self, args: &[&str]) -> Run {
        self.run_env(args, &[]).await
    }

    /// Runs the binary with extra environment variables.
    pub async fn run_env(&self, args: &[&str], extra: &[(&str, &str)]) -> Run {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"));
        command
            .args(args)
            .env_clear()
            .envs(&self.env)
            .current_dir(self.sandbox.dir())
            .stdin(Stdio::null())
            .kill_on_drop(true);
        for (k, v) in extra {
            command.env(k, v);
        }
        // A hung command fails its test instead of the whole run.
        let output = tokio::time::timeout(HUNG_AFTER, command.output())
            .await
            .unwrap_or_else(|_| panic!("rlsctl {args:?} still running after {HUNG_AFTER:?}"))
            .expect("rlsctl runs");
        Run {
            code: output.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// `rlsctl apply` as postgres with both role passwords.
    pub async fn apply(&self, extra: &[&str]) -> Run {
        self.apply_env(extra, &[]).await
    }

    /// [`TestDb::apply`] with extra environment variables (another user or database).
    pub async fn apply_env(&self, extra: &[&str], env: &[(&str, &str)]) -> Run {
        let mut args = vec![
            "apply",
            "--app-password-from",
            "env:APP_PW",
            "--admin-password-from",
            "env:ADMIN_PW",
        ];
        args.extend_from_slice(extra);
        self.run_env(&args, env).await
    }

    /// Applies and asserts success.
    pub async fn applied(&self) {
        self.apply(&[]).await.expect(0);
    }

    /// A connection as the app role.
    pub async fn app(&self) -> Db {
        self.connect("app_user", APP_PASSWORD).await.unwrap()
    }

    /// A connection holding ACCESS SHARE on `table` in an open transaction:
    /// enough to make apply's ALTER TABLE wait.
    pub async fn hold_lock(&self, table: &str) -> Db {
        let blocker = self.superuser().await;
        blocker
            .simple(&format!("BEGIN; LOCK TABLE {table} IN ACCESS SHARE MODE"))
            .await
            .unwrap();
        blocker
    }

    /// Runs one simple statement as the real superuser.
    pub async fn sql(&self, sql: &str) {
        self.superuser()
            .await
            .simple(sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {}", pg::describe(&e)));
    }
}

/// `rlsctl monitor --format json` as the app role: the run and its document.
pub async fn monitor_json(t: &TestDb) -> (Run, serde_json::Value) {
    let run = t.run_env(&["monitor", "--format", "json"], &AS_APP).await;
    let doc = run.json();
    (run, doc)
}

/// How many distinct tenants' rows `sql` (a `count(DISTINCT tenant_id)`) sees
/// as the app role under `tenant`: 1 when isolated, more through a hole.
pub async fn tenants_seen(t: &TestDb, tenant: &str, sql: &str) -> i64 {
    let app = t.app().await;
    let app_transaction = app.begin(rlsctl::pg::Begin::Plain).await.unwrap();
    rlsctl::pg::tenant::set_local(&app, "app.tenant_id", tenant)
        .await
        .unwrap();
    let seen = count(&app, sql).await;
    app_transaction.rollback().await.unwrap();
    seen
}

/// The catalog state the bundle touches, for before/after comparisons.
pub async fn catalog_snapshot(db: &Db) -> Vec<String> {
    let rows = db
        .query(
            "SELECT format('%s rls=%s force=%s acl=%s', c.oid::regclass, c.relrowsecurity, c.relforcerowsecurity,
                           coalesce(c.relacl, acldefault(CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::\"char\", c.relowner)))
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'rlsctl', 'pg_toast') AND c.relkind IN ('r', 'p', 'S', 'v')
             UNION ALL
             SELECT format('policy %s on %s', polname, polrelid::regclass) FROM pg_policy
             UNION ALL
             SELECT format('role %s', rolname) FROM pg_roles WHERE rolname IN ('app_user', 'tenant_admin')
             ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

/// A checksum of every tenant table's contents, read as postgres (bypasses RLS).
pub async fn contents_checksum(db: &Db) -> String {
    let mut out = String::new();
    for table in [
        "customers",
        "vehicles",
        "appointments",
        "services",
        "tenants",
    ] {
        let row = db
            .query_one(&format!("SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table} t"), &[])
            .await
            .unwrap();
        out.push_str(&row.get::<_, String>(0));
    }
    out
}

/// The SQLSTATE of a failed statement, or "ok".
pub fn outcome<T>(result: Result<T, tokio_postgres::Error>) -> String {
    match result {
        Ok(_) => "ok".into(),
        Err(e) => e
            .code()
            .map(|c| c.code().to_string())
            .unwrap_or_else(|| e.to_string()),
    }
}

/// The single bigint a query returns.
/// How long a test waits for an rlsctl process before calling it hung.
pub const HUNG_AFTER: std::time::Duration = std::time::Duration::from_secs(300);

/// The exit code of a spawned rlsctl (None: killed by a signal); a process that
/// does not end within a minute is killed and the test fails, not the run.
pub async fn exit_code(child: &mut tokio::process::Child) -> Option<i32> {
    let limit = std::time::Duration::from_secs(60);
    match tokio::time::timeout(limit, child.wait()).await {
        Ok(status) => status.expect("wait for rlsctl").code(),
        Err(_) => {
            let _ = child.kill().await;
            panic!("rlsctl did not exit within {limit:?}");
        }
    }
}

pub async fn count(db: &Db, sql: &str) -> i64 {
    db.query_one(sql, &[])
        .await
        .unwrap_or_else(|e| panic!("{sql}: {}", pg::describe(&e)))
        .get(0)
}

/// `rlsctl apply` through a tunnel (`via`: `--via-ssm`, or `--via-ssh HOST`),
/// waiting up to a minute for each lock, started in the background with
/// `env` over the test's own; returns once the apply waits on a lock.
pub async fn apply_waiting_on_a_lock(
    t: &TestDb,
    su: &Db,
    via: &[&str],
    env: &[(String, String)],
) -> tokio::process::Child {
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .arg("apply")
        .args(via)
        .args(["--lock-timeout", "60s", "--app-password-from", "env:APP_PW"])
        .env_clear()
        .envs(&t.env)
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_for_a_lock_wait(su).await;
    child
}

/// Waits until some session waits on a lock (the command under test reached it).
pub async fn wait_for_a_lock_wait(db: &Db) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while count(
        db,
        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'",
    )
    .await
        == 0
    {
        assert!(
            std::time::Instant::now() < deadline,
            "nothing waited on a lock within a minute"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// The signal state a parent hands down through exec.
#[derive(Clone, Copy)]
pub enum Inherited {
    /// SIGHUP at its default action, nothing blocked: a terminal session.
    AsALoginShell,
    /// SIGHUP ignored: `nohup rlsctl tunnel`.
    Nohup,
    /// SIGHUP and SIGTERM blocked, as a careless supervisor leaves them.
    Blocked,
}

/// Gives a spawned rlsctl the `inherited` signal state, whatever the test
/// runner itself was started with (CI may run it with SIGHUP ignored).
pub fn inherit(command: &mut tokio::process::Command, inherited: Inherited) {
    // SAFETY: only async-signal-safe calls (signal, sigprocmask) between fork and exec.
    unsafe {
        command.pre_exec(move || {
            let hangup = match inherited {
                Inherited::Nohup => libc::SIG_IGN,
                _ => libc::SIG_DFL,
            };
            libc::signal(libc::SIGHUP, hangup);
            if let Inherited::Blocked = inherited {
                let mut set: libc::sigset_t = std::mem::zeroed();
                libc::sigemptyset(&mut set);
                libc::sigaddset(&mut set, libc::SIGHUP);
                libc::sigaddset(&mut set, libc::SIGTERM);
                libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
            }
            Ok(())
        });
    }
}

/// The built example `name` (the stand-in plugin, the reference app): built
/// here, once per test run, so a filtered `cargo test --test integration`,
/// which builds no examples, finds it too.
pub fn example(name: &str) -> std::path::PathBuf {
    static BUILT: std::sync::Mutex<Vec<String>> = std::sync::Mutex::new(Vec::new());
    // The test binary is target/<profile>/deps/integration-*: examples are in
    // target/<profile>/examples.
    let profile_dir = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(|deps| deps.parent())
        .unwrap()
        .to_path_buf();
    let path = profile_dir.join("examples").join(name);
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !built.iter().any(|b| b == name) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut command = std::process::Command::new(cargo);
        command
            .args(["build", "--quiet", "--example", name])
            .current_dir(env!("CARGO_MANIFEST_DIR"));
        // What cargo set for this test process (CARGO_MANIFEST_DIR,
        // CARGO_PKG_NAME, ...) would look like a changed environment to the
        // build scripts that watch it (ring's): everything would rebuild.
        for (key, _) in std::env::vars_os() {
            let key = key.to_string_lossy().into_owned();
            let own = key.starts_with("CARGO_")
                && !["CARGO_HOME", "CARGO_TARGET_DIR"].contains(&key.as_str())
                && ![
                    "CARGO_BUILD_",
                    "CARGO_NET_",
                    "CARGO_HTTP_",
                    "CARGO_REGISTRIES_",
                    "CARGO_TERM_",
                ]
                .iter()
                .any(|p| key.starts_with(p));
            if own || key == "OUT_DIR" {
                command.env_remove(&key);
            }
        }
        if profile_dir.ends_with("release") {
            command.arg("--release");
        }
        let status = command.status().unwrap();
        assert!(status.success(), "building the example {name}: {status}");
        built.push(name.to_string());
    }
    path
}

/// Polls `condition` until it holds; the test fails naming `what` after `limit`.
pub async fn wait_until<F, Fut>(what: &str, limit: std::time::Duration, mut condition: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + limit;
    while !condition().await {
        assert!(
            std::time::Instant::now() < deadline,
            "{what}: not within {limit:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The next line a child printed, or `None` at its end; the test fails when
/// none comes within `HUNG_AFTER` (a hung child must not hang the suite).
pub async fn next_line<R>(lines: &mut tokio::io::Lines<R>) -> Option<String>
where
    R: tokio::io::AsyncBufRead + Unpin,
{
    tokio::time::timeout(HUNG_AFTER, lines.next_line())
        .await
        .unwrap_or_else(|_| panic!("no line within {HUNG_AFTER:?}"))
        .unwrap()
}

/// One finding of a JSON report (verify, monitor, a fleet target's report,
/// apply's pre-flight), typed: the one place the tests read `"checks"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub id: String,
    pub status: String,
    pub object: String,
    pub detail: String,
}

/// The findings of the report `doc`, in its order.
pub fn checks(doc: &serde_json::Value) -> Vec<Checked> {
    let text = |c: &serde_json::Value, k: &str| c[k].as_str().unwrap_or_default().to_string();
    doc["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no \"checks\" in {doc}"))
        .iter()
        .map(|c| Checked {
            id: text(c, "id"),
            status: text(c, "status"),
            object: text(c, "object"),
            detail: text(c, "detail"),
        })
        .collect()
}

/// The findings of check `id` in `doc`.
pub fn check(doc: &serde_json::Value, id: &str) -> Vec<Checked> {
    checks(doc).into_iter().filter(|c| c.id == id).collect()
}
