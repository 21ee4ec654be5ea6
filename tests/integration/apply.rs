//! `rlsctl apply` against a real PostgreSQL.

use rlsctl::pg::tenant;
use rlsctl::sandbox::{Options, ServerTls};

use crate::support::*;

async fn visible_tenants(db: &rlsctl::pg::Db, table: &str) -> Vec<String> {
    let rows = db
        .query(
            &format!("SELECT DISTINCT tenant_id FROM {table} ORDER BY 1"),
            &[],
        )
        .await
        .unwrap();
    rows.iter()
        .map(|r| r.get::<_, Option<String>>(0).unwrap_or_default())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_isolates_tenants_for_the_app_role() {
    let t = TestDb::demo().await;
    t.applied().await;

    let app = t.app().await;
    let tables = ["customers", "vehicles", "appointments", "services"];
    for tenant_id in TENANTS {
        let app_transaction = app.begin(rlsctl::pg::Begin::Plain).await.unwrap();
        tenant::set_local(&app, "app.tenant_id", tenant_id)
            .await
            .unwrap();
        for table in tables {
            assert_eq!(
                visible_tenants(&app, table).await,
                vec![tenant_id.to_string()],
                "{table} under {tenant_id}"
            );
        }
        app_transaction.rollback().await.unwrap();
    }

    // No tenant set: nothing, before and after a transaction that set one.
    for table in tables {
        assert!(
            visible_tenants(&app, table).await.is_empty(),
            "{table} without a tenant"
        );
    }

    // Writes to another tenant are denied.
    let app_transaction = app.begin(rlsctl::pg::Begin::Plain).await.unwrap();
    tenant::set_local(&app, "app.tenant_id", TENANTS[0])
        .await
        .unwrap();
    let update = app
        .execute(
            "UPDATE customers SET tenant_id = $1 WHERE id = (SELECT min(id) FROM customers)",
            &[&TENANTS[1]],
        )
        .await;
    assert_eq!(outcome(update), "42501");
    app_transaction.rollback().await.unwrap();
    let app_transaction = app.begin(rlsctl::pg::Begin::Plain).await.unwrap();
    tenant::set_local(&app, "app.tenant_id", TENANTS[0])
        .await
        .unwrap();
    let insert = app
        .execute(
            "INSERT INTO customers (tenant_id, full_name) VALUES ($1, 'intruder')",
            &[&TENANTS[1]],
        )
        .await;
    assert_eq!(outcome(insert), "42501");
    app_transaction.rollback().await.unwrap();

    // The break-glass role sees everyone.
    let admin = t.connect("tenant_admin", ADMIN_PASSWORD).await.unwrap();
    assert_eq!(visible_tenants(&admin, "customers").await.len(), 3);

    // The app role cannot TRUNCATE.
    assert_eq!(
        outcome(app.simple("TRUNCATE customers CASCADE").await),
        "42501"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_apply_changes_nothing_and_records_no_history() {
    let t = TestDb::demo().await;
    t.applied().await;
    let su = t.superuser().await;
    assert_eq!(
        count(&su, "SELECT count(*) FROM rlsctl.bundle_history").await,
        1
    );
    let before = catalog_snapshot(&su).await;
    let again = t.apply(&[]).await;
    again.expect(0);
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);
    assert_eq!(
        count(&su, "SELECT count(*) FROM rlsctl.bundle_history").await,
        1
    );
    assert_eq!(catalog_snapshot(&su).await, before);

    let json = t.apply(&["--format", "json"]).await;
    json.expect(0);
    assert_eq!(json.json()["summary"]["changes"], 0);

    // Drift is repaired by the next apply, and only then is history written.
    t.sql("ALTER TABLE customers NO FORCE ROW LEVEL SECURITY")
        .await;
    let repair = t.apply(&["--format", "json"]).await;
    repair.expect(0);
    assert_eq!(repair.json()["summary"]["changes"], 1);
    assert_eq!(
        count(&su, "SELECT count(*) FROM rlsctl.bundle_history").await,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preflight_refusals_leave_the_database_as_it_was() {
    let t = TestDb::demo().await;
    let su = t.superuser().await;
    let before = catalog_snapshot(&su).await;

    // A missing table.
    let run = t.apply(&["--tables", "customers,no_such_table"]).await;
    run.expect(1);
    assert!(
        run.stdout.contains("no_such_table does not exist"),
        "{}",
        run.stdout
    );
    // A view by a table's name: said what it is.
    t.sql("CREATE VIEW customer_list AS SELECT id, full_name FROM customers")
        .await;
    let run = t.apply(&["--tables", "customers,customer_list"]).await;
    run.expect(1);
    assert!(
        run.stdout
            .contains("public.customer_list is a view, not a table"),
        "{}",
        run.stdout
    );
    t.sql("DROP VIEW customer_list").await;
    // A missing tenant column.
    let run = t.apply(&["--tenant-column", "org_id"]).await;
    run.expect(1);
    assert!(
        run.stdout.contains("has no column \"org_id\""),
        "{}",
        run.stdout
    );
    // NULL tenant rows, with per-table counts.
    t.sql(
        "INSERT INTO customers (tenant_id, full_name) VALUES (NULL, 'orphan'), (NULL, 'orphan 2')",
    )
    .await;
    let run = t.apply(&["--format", "json"]).await;
    run.expect(1);
    let doc = run.json();
    assert_eq!(
        doc["preflight"]["null_rows"][0]["table"],
        "public.customers"
    );
    assert_eq!(doc["preflight"]["null_rows"][0]["rows"], 2);
    assert_eq!(doc["applied"], false);

    assert_eq!(catalog_snapshot(&su).await, before);
    let roles = su
        .query(
            "SELECT 1 FROM pg_roles WHERE rolname IN ('app_user', 'tenant_admin')",
            &[],
        )
        .await
        .unwrap();
    assert!(roles.is_empty());
    let schema = su
        .query("SELECT 1 FROM pg_namespace WHERE nspname = 'rlsctl'", &[])
        .await
        .unwrap();
    assert!(schema.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_held_lock_makes_apply_give_up_and_name_the_blocker() {
    let t = TestDb::demo().await;
    let su = t.superuser().await;
    let before = catalog_snapshot(&su).await;
    let blocker = t.superuser().await;
    let pid: i32 = blocker
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    blocker
        .simple("BEGIN; LOCK TABLE vehicles IN ACCESS SHARE MODE")
        .await
        .unwrap();

    let run = t
        .apply(&["--lock-timeout", "200ms", "--lock-retries", "1"])
        .await;
    run.expect(2);
    assert!(run.stderr.contains(&format!("pid {pid}")), "{}", run.stderr);
    assert!(run.stderr.contains("LOCK TABLE vehicles"), "{}", run.stderr);
    assert_eq!(catalog_snapshot(&su).await, before);
    blocker.simple("ROLLBACK").await.unwrap();

    // Two applies at once: the advisory lock serializes them; both succeed.
    let (a, b) = tokio::join!(t.apply(&[]), t.apply(&[]));
    a.expect(0);
    b.expect(0);
    let history: i64 = su
        .query_one("SELECT count(*) FROM rlsctl.bundle_history", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(history, 1, "the second apply found nothing to change");
    let policies: i64 = su
        .query_one("SELECT count(*) FROM pg_policy", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        policies, 8,
        "isolation and break-glass policy on each of 4 tables"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn non_default_schema_table_names_and_uuid_tenants_work() {
    let t = TestDb::empty().await;
    t.sql(
        "CREATE SCHEMA billing;
         CREATE TABLE billing.\"Work Orders\" (id serial PRIMARY KEY, org_id uuid NOT NULL, title text);
         CREATE INDEX ON billing.\"Work Orders\" (org_id);
         CREATE TABLE billing.invoices (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, org_id uuid NOT NULL, total int);
         INSERT INTO billing.\"Work Orders\" (org_id, title) VALUES
            ('11111111-1111-1111-1111-111111111111', 'a'), ('22222222-2222-2222-2222-222222222222', 'b');
         INSERT INTO billing.invoices (org_id, total) VALUES ('11111111-1111-1111-1111-111111111111', 1);",
    )
    .await;
    let settings = [
        ("RLSCTL_SCHEMA", "billing"),
        ("RLSCTL_TENANT_TABLES", "Work Orders,invoices"),
        ("RLSCTL_TENANT_COLUMN", "org_id"),
        ("RLSCTL_TENANT_SETTING", "app.org_id"),
    ];
    let args = ["apply", "--app-password-from", "env:APP_PW"];
    let run = t.run_env(&args, &settings).await;
    run.expect(0);
    assert!(
        run.stdout
            .contains("warning: billing.invoices has no btree index"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("CREATE INDEX CONCURRENTLY"),
        "{}",
        run.stdout
    );
    let again = t.run_env(&args, &settings).await;
    again.expect(0);
    assert!(again.stdout.contains("up to date"), "{}", again.stdout);

    let app = t.app().await;
    let app_transaction = app.begin(rlsctl::pg::Begin::Plain).await.unwrap();
    tenant::set_local(&app, "app.org_id", "22222222-2222-2222-2222-222222222222")
        .await
        .unwrap();
    let rows = app
        .query("SELECT title FROM billing.\"Work Orders\"", &[])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(0), "b");
    // The identity and serial sequences are usable: inserting for one's own tenant works.
    let own = app
        .execute("INSERT INTO billing.\"Work Orders\" (org_id, title) VALUES ('22222222-2222-2222-2222-222222222222', 'c')", &[])
        .await;
    assert_eq!(outcome(own), "ok");
    app_transaction.rollback().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn passwords_appear_nowhere() {
    let options = Options {
        extra_config: vec!["log_statement = 'all'".into()],
        ..Default::default()
    };
    let t = TestDb::with(options, true).await;
    let dry = t.apply(&["--dry-run", "-vvv"]).await;
    dry.expect(0);
    assert!(
        dry.stdout.contains("PASSWORD '<redacted>';\n"),
        "{}",
        dry.stdout
    );
    // Each statement of the dry run ends with one semicolon.
    assert!(!dry.stdout.contains(";;"), "{}", dry.stdout);
    let real = t.apply(&["-vvv", "--format", "json"]).await;
    real.expect(0);
    let rotate = t.apply(&["--rotate-passwords", "-vvv"]).await;
    rotate.expect(0);
    // A failing connection: the error names the user, never the password.
    let wrong = t
        .run_env(
            &["apply", "--password-from", "env:WRONG"],
            &[("WRONG", "wrong-pw-Hq3")],
        )
        .await;
    wrong.expect(2);
    assert!(
        wrong.stderr.contains("password authentication failed"),
        "{}",
        wrong.stderr
    );

    let server_log = t.sandbox.server_log();
    assert!(
        server_log.contains("ALTER ROLE \"app_user\" PASSWORD 'SCRAM-SHA-256$"),
        "the server got a verifier"
    );
    for secret in [
        APP_PASSWORD,
        ADMIN_PASSWORD,
        "wrong-pw-Hq3",
        t.sandbox.superuser_password.expose(),
    ] {
        for (what, text) in [
            ("dry run", dry.all_output()),
            ("apply", real.all_output()),
            ("rotate", rotate.all_output()),
            ("error", wrong.all_output()),
            ("server log", server_log.clone()),
        ] {
            assert!(
                !text.contains(secret),
                "a password appears in the {what} output"
            );
        }
    }
    // And the app role can log in with the password that was set.
    t.app().await;
}

/// A CA and a server certificate for localhost, 127.0.0.1 and db.internal.example.
fn test_certificates() -> (ServerTls, String) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair};
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "rlsctl test CA");
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let mut server = CertificateParams::new(vec![
        "localhost".to_string(),
        "127.0.0.1".into(),
        "db.internal.example".into(),
    ])
    .unwrap();
    server
        .distinguished_name
        .push(DnType::CommonName, "db.internal.example");
    let key = KeyPair::generate().unwrap();
    let cert = server.signed_by(&key, &ca_cert, &ca_key).unwrap();
    (
        ServerTls {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        },
        ca_cert.pem(),
    )
}

/// The test CA's server certificate, for a server of the test's own (the
/// fake RDS endpoint), with the CA in a file for PGSSLROOTCERT.
pub struct ServerTlsFiles {
    tls: ServerTls,
    dir: tempfile::TempDir,
}

impl ServerTlsFiles {
    /// New certificates, the CA written out.
    pub fn new() -> Self {
        let (tls, ca_pem) = test_certificates();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_pem).unwrap();
        Self { tls, dir }
    }

    /// The server certificate and key, for a sandbox.
    pub fn server_tls(&self) -> ServerTls {
        self.tls.clone()
    }

    /// The CA certificate's path.
    pub fn ca_path(&self) -> String {
        self.dir.path().join("ca.pem").display().to_string()
    }

    /// A TLS acceptor serving the server certificate.
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let certs = CertificateDer::pem_slice_iter(self.tls.cert_pem.as_bytes())
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_slice(self.tls.key_pem.as_bytes()).unwrap();
        let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .unwrap();
        tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config))
    }
}

/// The sample database on a server that serves TLS with a certificate from
/// the test CA, and that CA's certificate.
async fn tls_sample() -> (TestDb, String) {
    let (tls, ca_pem) = test_certificates();
    let options = Options {
        tls: Some(tls),
        // Which sessions were encrypted, from the server's side.
        extra_config: vec!["log_connections = on".into()],
        ..Default::default()
    };
    (TestDb::with(options, true).await, ca_pem)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_verify_full_and_server_name_override() {
    let (t, ca_pem) = tls_sample().await;
    let ca_path = t.sandbox.dir().join("ca.crt");
    std::fs::write(&ca_path, ca_pem).unwrap();
    let ca = ca_path.to_str().unwrap();
    let dry = ["apply", "--dry-run", "--app-password-from", "env:APP_PW"];

    let full = t
        .run_env(
            &dry,
            &[
                ("PGSSLMODE", "verify-full"),
                ("PGSSLROOTCERT", ca),
                ("PGHOST", "localhost"),
            ],
        )
        .await;
    full.expect(0);
    let renamed = t
        .run_env(
            &[&dry[..], &["--tls-server-name", "db.internal.example"]].concat(),
            &[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", ca)],
        )
        .await;
    renamed.expect(0);
    let wrong = t
        .run_env(
            &[&dry[..], &["--tls-server-name", "wrong.example"]].concat(),
            &[("PGSSLMODE", "verify-full"), ("PGSSLROOTCERT", ca)],
        )
        .await;
    wrong.expect(2);
    assert!(wrong.stderr.contains("certificate"), "{}", wrong.stderr);
    assert!(wrong.stderr.contains("wrong.example"), "{}", wrong.stderr);
    // verify-ca accepts the chain whatever the name; an unknown CA fails.
    t.run_env(
        &[&dry[..], &["--tls-server-name", "wrong.example"]].concat(),
        &[("PGSSLMODE", "verify-ca"), ("PGSSLROOTCERT", ca)],
    )
    .await
    .expect(0);
    let (_, other_ca) = test_certificates();
    let other_path = t.sandbox.dir().join("other-ca.crt");
    std::fs::write(&other_path, other_ca).unwrap();
    t.run_env(
        &dry,
        &[
            ("PGSSLMODE", "verify-ca"),
            ("PGSSLROOTCERT", other_path.to_str().unwrap()),
        ],
    )
    .await
    .expect(2);
    // rlsctl's own sessions really are encrypted: the server logs each
    // connection it authorized (log_connections), with its TLS.
    let authorized: Vec<String> = t
        .sandbox
        .server_log()
        .lines()
        .filter(|l| l.contains("connection authorized: user=postgres"))
        .map(String::from)
        .collect();
    assert!(!authorized.is_empty(), "{}", t.sandbox.server_log());
    for line in &authorized {
        assert!(
            line.contains("SSL enabled"),
            "a session without TLS: {line}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ctrl_c_during_apply_rolls_back_and_exits_130() {
    let t = TestDb::demo().await;
    let su = t.superuser().await;
    let before = catalog_snapshot(&su).await;
    let blocker = t.hold_lock("services").await;
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_rlsctl"))
        .args([
            "apply",
            "--app-password-from",
            "env:APP_PW",
            "--lock-timeout",
            "30s",
        ])
        .env_clear()
        .envs(&t.env)
        .current_dir(t.sandbox.dir())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Interrupt it while it waits on the lock, in the middle of its transaction.
    wait_for_a_lock_wait(&su).await;
    let waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'";
    let _ = nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id().unwrap() as i32),
        nix::sys::signal::Signal::SIGINT,
    );
    assert_eq!(exit_code(&mut child).await, Some(130));
    // rlsctl cancelled the waiting statement: soon nothing waits, though the blocker still holds its lock.
    let mut still_waiting = count(&su, waiting).await;
    for _ in 0..100 {
        if still_waiting == 0 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        still_waiting = count(&su, waiting).await;
    }
    assert_eq!(
        still_waiting, 0,
        "the interrupted statement still waits on the lock"
    );
    blocker.simple("ROLLBACK").await.unwrap();
    assert_eq!(catalog_snapshot(&su).await, before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_layer_flag_over_env_over_dotenv() {
    let t = TestDb::demo().await;
    std::fs::write(
        t.sandbox.dir().join(".env"),
        "RLSCTL_APP_ROLE=dotenv_role\nRLSCTL_TENANT_TABLES=customers\n",
    )
    .unwrap();
    let plan = |run: &Run| {
        run.json()["plan"]["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["object"].as_str().unwrap().to_string())
            .collect::<Vec<_>>()
    };
    let base = [
        "apply",
        "--dry-run",
        "--no-app-password",
        "--format",
        "json",
    ];
    let from_dotenv = t.run(&base).await;
    from_dotenv.expect(0);
    assert!(plan(&from_dotenv).contains(&"role dotenv_role".to_string()));
    assert!(plan(&from_dotenv).contains(&"table public.customers".to_string()));
    assert!(!plan(&from_dotenv).contains(&"table public.vehicles".to_string()));
    let from_env = t.run_env(&base, &[("RLSCTL_APP_ROLE", "env_role")]).await;
    assert!(plan(&from_env).contains(&"role env_role".to_string()));
    let from_flag = t
        .run_env(
            &[&base[..], &["--app-role", "flag_role"]].concat(),
            &[("RLSCTL_APP_ROLE", "env_role")],
        )
        .await;
    assert!(plan(&from_flag).contains(&"role flag_role".to_string()));
}

/// The example `.env`, copied as the README says, keeps the verify-full
/// default: a server whose certificate the operator has no CA for is refused
/// once its name is known. A `.env` that weakens TLS is named in a warning.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_example_env_keeps_tls_verified_and_a_weakening_is_named() {
    let (t, _ca_pem) = tls_sample().await;
    let env_file = t.sandbox.dir().join(".env");
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/.env.example"),
        &env_file,
    )
    .unwrap();
    let dry = [
        "apply",
        "--dry-run",
        "--app-password-from",
        "env:APP_PW",
        "--tls-server-name",
        "db.internal.example",
    ];
    let run = t.run(&dry).await;
    run.expect(2);
    assert!(run.stderr.contains("certificate"), "{}", run.stderr);
    // The same with PGSSLMODE=prefer in .env: it connects, and says where the weakening came from.
    let mut text = std::fs::read_to_string(&env_file).unwrap();
    text.push_str("PGSSLMODE=prefer\n");
    std::fs::write(&env_file, text).unwrap();
    let run = t.run(&dry).await;
    run.expect(0);
    assert!(
        run.stderr.contains("PGSSLMODE=prefer in .env"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("sslmode prefer (from PGSSLMODE in .env) while the server's name is known (db.internal.example)"),
        "{}",
        run.stderr
    );
}

/// A `.env` someone else could have written is refused before anything is read from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_env_file_others_can_write_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestDb::demo().await;
    let env_file = t.sandbox.dir().join(".env");
    // It would point rlsctl at another server and run a plugin of its choice.
    std::fs::write(
        &env_file,
        "PGHOST=203.0.113.9\nSESSION_MANAGER_PLUGIN=/tmp/evil\n",
    )
    .unwrap();
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o664)).unwrap();
    let run = t.run(&["monitor"]).await;
    run.expect(2);
    assert!(
        run.stderr
            .contains("refusing .env: it is writable by group or others (mode 0664)"),
        "{}",
        run.stderr
    );
    std::fs::set_permissions(&env_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    // Owned by another user (the cluster's), mode 0600: refused too.
    let (uid, gid) = {
        use std::os::unix::fs::MetadataExt;
        let data = std::fs::metadata(t.sandbox.dir().join("data")).unwrap();
        (data.uid(), data.gid())
    };
    if uid != nix_uid() {
        std::os::unix::fs::chown(&env_file, Some(uid), Some(gid)).unwrap();
        let run = t.run(&["monitor"]).await;
        run.expect(2);
        assert!(
            run.stderr.contains("refusing .env: it is owned by uid"),
            "{}",
            run.stderr
        );
        std::os::unix::fs::chown(&env_file, Some(nix_uid()), None).unwrap();
    }
    // Ours and private: read, and the settings that choose a program are named.
    std::fs::write(
        &env_file,
        "SESSION_MANAGER_PLUGIN=/usr/local/bin/session-manager-plugin\nRLSCTL_SSH_CONFIG=/tmp/ssh_config\n",
    )
    .unwrap();
    let run = t.run_env(&["monitor"], &AS_APP).await;
    for named in [
        "SESSION_MANAGER_PLUGIN=/usr/local/bin/session-manager-plugin in .env",
        "RLSCTL_SSH_CONFIG=/tmp/ssh_config in .env",
    ] {
        assert!(run.stderr.contains(named), "{}", run.stderr);
    }
}

fn nix_uid() -> u32 {
    nix::unistd::geteuid().as_raw()
}

/// apply reads the sequences the tenant tables' columns own (verify and
/// monitor do not) and gives the app role USAGE on one that lost it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn apply_grants_usage_on_the_tables_sequences() {
    let t = TestDb::demo_rds().await;
    t.applied().await;
    t.sql("REVOKE USAGE ON SEQUENCE customers_id_seq FROM app_user")
        .await;
    t.applied().await;
    let su = t.superuser().await;
    assert_eq!(
        count(
            &su,
            "SELECT count(*) FROM pg_class WHERE relname = 'customers_id_seq' \
             AND has_sequence_privilege('app_user', oid, 'USAGE')"
        )
        .await,
        1
    );
}
