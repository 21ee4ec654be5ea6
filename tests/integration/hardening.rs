//! A planted bundle schema, names that look like placeholders, secrets in
//! trace logs, and a restore after a table was dropped.

use serde_json::Value;

use crate::support::*;
use crate::verify::statuses;

/// A role with CREATE on the database plants `rlsctl.bundle_history` with a
/// trigger that would make it superuser when apply inserts its history row.
const PLANT: &str = "
    CREATE SCHEMA rlsctl;
    CREATE TABLE rlsctl.bundle_history (
        id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, version text NOT NULL, checksum text NOT NULL,
        schema_name text NOT NULL, tables text[] NOT NULL, tenant_column text NOT NULL, tenant_setting text NOT NULL,
        app_role text NOT NULL, admin_role text NOT NULL, bypass_roles text[] NOT NULL, changes integer NOT NULL,
        applied_by text NOT NULL DEFAULT session_user, client_addr inet DEFAULT inet_client_addr(),
        applied_at timestamptz NOT NULL DEFAULT now());
    CREATE FUNCTION rlsctl.promote() RETURNS trigger LANGUAGE plpgsql AS
        $$ BEGIN EXECUTE 'ALTER ROLE planter SUPERUSER'; RETURN NEW; END $$;
    CREATE TRIGGER promote BEFORE INSERT ON rlsctl.bundle_history FOR EACH ROW EXECUTE FUNCTION rlsctl.promote();";

async fn planter_is_superuser(t: &TestDb) -> bool {
    count(
        &t.superuser().await,
        "SELECT count(*) FROM pg_roles WHERE rolname = 'planter' AND rolsuper",
    )
    .await
        == 1
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planted_rlsctl_schema_is_refused_and_reported() {
    let t = TestDb::demo().await;
    t.sql("CREATE ROLE planter LOGIN PASSWORD 'planter-pw'; GRANT CREATE ON DATABASE edgarautoshop TO planter")
        .await;
    t.connect("planter", "planter-pw")
        .await
        .unwrap()
        .simple(PLANT)
        .await
        .unwrap();
    let su = t.superuser().await;
    let before = catalog_snapshot(&su).await;

    let run = t.apply(&["--format", "json"]).await;
    run.expect(1);
    let doc = run.json();
    assert_eq!(
        statuses(&doc["preflight"], "PRE008")
            .iter()
            .filter(|s| *s == "fail")
            .count(),
        3,
        "the owner, the function and the trigger: {}",
        run.stdout
    );
    assert!(
        !planter_is_superuser(&t).await,
        "the planter gained nothing"
    );
    assert_eq!(catalog_snapshot(&su).await, before);

    // monitor reports it too (the bundle was never installed here, so there is
    // no app role yet: monitor connects as postgres).
    let run = t
        .run(&["monitor", "--format", "json", "-U", "postgres"])
        .await;
    run.expect(1);
    let doc: Value = run.json();
    assert!(
        statuses(&doc, "DRF007").contains(&"fail".to_string()),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_altered_bundle_schema_is_drift_and_blocks_apply() {
    let t = TestDb::demo().await;
    t.applied().await;
    t.sql("CREATE ROLE planter NOLOGIN; ALTER TABLE rlsctl.tenant_tables OWNER TO planter")
        .await;
    let run = t.run_env(&["monitor", "--format", "json"], &AS_APP).await;
    run.expect(1);
    assert!(
        statuses(&run.json(), "DRF007").contains(&"fail".to_string()),
        "{}",
        run.stdout
    );
    let run = t.apply(&[]).await;
    run.expect(1);
    assert!(
        run.stdout
            .contains("table rlsctl.tenant_tables owned by planter"),
        "{}",
        run.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn names_that_look_like_placeholders_are_just_names() {
    let t = TestDb::empty().await;
    t.sql(
        "CREATE TABLE \"t{{app_role}}\" (id serial PRIMARY KEY, tenant_id text NOT NULL);
         CREATE INDEX ON \"t{{app_role}}\" (tenant_id);
         CREATE TABLE \"}}{{\" (id serial PRIMARY KEY, tenant_id text NOT NULL);
         CREATE INDEX ON \"}}{{\" (tenant_id);",
    )
    .await;
    let names = [
        "--tables",
        "t{{app_role}},}}{{",
        "--app-role",
        "app{{admin_role}}",
        "--admin-role",
        "{{",
    ];
    let run = t.apply(&names).await;
    run.expect(0);
    let su = t.superuser().await;
    assert_eq!(
        count(
            &su,
            "SELECT count(*) FROM pg_policy WHERE polrelid IN ('\"t{{app_role}}\"'::regclass, '\"}}{{\"'::regclass)
               AND polroles IN (ARRAY[(SELECT oid FROM pg_roles WHERE rolname = 'app{{admin_role}}')]::oid[],
                                ARRAY[(SELECT oid FROM pg_roles WHERE rolname = '{{')]::oid[])"
        )
        .await,
        4,
        "each table has its isolation and break-glass policy, for exactly the roles named"
    );
    assert_eq!(
        count(
            &su,
            "SELECT count(*) FROM pg_roles WHERE rolname IN ('app{{admin_role}}', '{{') AND (rolsuper OR rolbypassrls)"
        )
        .await,
        0
    );
    let again = t.apply(&names).await;
    again.expect(0);
    assert!(
        again.stdout.contains("nothing to change"),
        "{}",
        again.stdout
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trace_logs_carry_no_secret() {
    let t = TestDb::demo().await;
    t.applied().await;
    // (at debug, apply's path logs nothing below INFO: the INFO lines are
    // what must be there)
    for (env, level, shown) in [
        ([("RLSCTL_LOG", "trace")], "TRACE", " TRACE "),
        ([("RLSCTL_LOG", "debug")], "DEBUG", " INFO "),
    ] {
        let run = t
            .run_env(
                &[
                    "apply",
                    "--rotate-passwords",
                    "--app-password-from",
                    "env:APP_PW",
                    "--admin-password-from",
                    "env:ADMIN_PW",
                ],
                &env,
            )
            .await;
        run.expect(0);
        let out = run.all_output();
        for secret in ["SCRAM-SHA-256$", APP_PASSWORD, ADMIN_PASSWORD] {
            assert!(!out.contains(secret), "{secret} in {env:?} output");
        }
        // The log at that level is there (at trace, every statement with
        // its SQL), so the absence of secrets above is not the absence of a log.
        assert!(
            out.lines().any(|l| l.contains(shown)),
            "no log line at {level}: {out}"
        );
        if level == "TRACE" {
            assert!(
                out.lines()
                    .any(|l| l.contains("TRACE") && l.contains("statement") && l.contains("sql=")),
                "no statement in the trace: {out}"
            );
        }
    }
    let run = t
        .run_env(
            &[
                "apply",
                "--rotate-passwords",
                "--app-password-from",
                "env:APP_PW",
                "-vvv",
            ],
            &[],
        )
        .await;
    run.expect(0);
    assert!(!run.all_output().contains("SCRAM-SHA-256$"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_puts_back_what_exists_and_reports_what_was_dropped() {
    let t = TestDb::demo().await;
    t.applied().await;
    t.run(&[
        "rollback",
        "--table",
        "customers",
        "--table",
        "services",
        "--reason",
        "INC-5",
        "--yes",
    ])
    .await
    .expect(0);
    t.sql("DROP TABLE services CASCADE").await;
    let run = t.run(&["rollback", "--restore"]).await;
    run.expect(1);
    assert!(
        run.stdout.contains("NOT restored: public.services"),
        "{}",
        run.stdout
    );
    let su = t.superuser().await;
    assert_eq!(
        count(
            &su,
            "SELECT count(*) FROM pg_class WHERE relname = 'customers' AND relrowsecurity AND relforcerowsecurity"
        )
        .await,
        1,
        "customers is restored"
    );
    // services is gone (RLS001 fails for it), but no break-glass is open.
    let (run, doc) = monitor_json(&t).await;
    run.expect(1);
    assert_eq!(
        crate::verify::statuses(&doc, "DRF003"),
        ["pass"],
        "{}",
        run.stdout
    );
    assert_eq!(
        crate::verify::statuses(&doc, "RLS001"),
        ["fail"],
        "{}",
        run.stdout
    );
}

/// AuthenticationCleartextPassword.
const CLEARTEXT: [u8; 9] = [b'R', 0, 0, 0, 8, 0, 0, 0, 3];

/// A fake PostgreSQL on a local port: declines TLS, then sends `auth` (an
/// authentication request, or AuthenticationOk with no exchange at all) and
/// records whatever the client sends after the startup message.
async fn fake_server(auth: &'static [u8]) -> (u16, tokio::task::JoinHandle<Vec<u8>>) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        let mut received = Vec::new();
        let Ok(Ok((mut socket, _))) =
            tokio::time::timeout(std::time::Duration::from_secs(20), listener.accept()).await
        else {
            return received;
        };
        let mut buf = vec![0u8; 8192];
        // SSLRequest (8 bytes) or the startup message directly.
        let n = socket.read(&mut buf).await.unwrap_or(0);
        if n == 8 && buf[4..8] == [0x04, 0xd2, 0x16, 0x2f] {
            socket.write_all(b"N").await.unwrap();
            let _ = socket.read(&mut buf).await;
        }
        socket.write_all(auth).await.unwrap();
        loop {
            match tokio::time::timeout(std::time::Duration::from_secs(3), socket.read(&mut buf))
                .await
            {
                Ok(Ok(n)) if n > 0 => received.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
        received
    });
    (port, task)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fake_server_never_gets_the_password() {
    let t = TestDb::empty().await;
    let secret = "pw-for-the-fake-Zt8";
    for (extra, expect) in [
        // A TLS server name makes verify-full the default: no TLS, no connection.
        (vec!["--tls-server-name", "db.internal.example"], "TLS"),
        // prefer, and the server declines TLS and asks for a cleartext password.
        (vec![], "cleartext password"),
    ] {
        let (port, server) = fake_server(&CLEARTEXT).await;
        let port = port.to_string();
        let mut args = vec!["verify", "--host", "127.0.0.1", "--port", &port];
        args.extend(extra.iter().copied());
        let run = t
            .run_env(&args, &[("PGUSER", "app_user"), ("PGPASSWORD", secret)])
            .await;
        run.expect(2);
        assert!(run.stderr.contains(expect), "{}", run.stderr);
        let received = server.await.unwrap();
        assert!(
            !String::from_utf8_lossy(&received).contains(secret),
            "the fake server got the password"
        );
    }
    // Allowed explicitly, the password goes (which is what the guard prevents).
    let (port, server) = fake_server(&CLEARTEXT).await;
    let port = port.to_string();
    let run = t
        .run_env(
            &[
                "verify",
                "--host",
                "127.0.0.1",
                "--port",
                &port,
                "--allow-weak-auth",
            ],
            &[("PGUSER", "app_user"), ("PGPASSWORD", secret)],
        )
        .await;
    run.expect(2);
    assert!(String::from_utf8_lossy(&server.await.unwrap()).contains(secret));
}

/// A server that says "AuthenticationOk" straight away (trust, or a fake that
/// wants its answers taken for the database's) is refused before any query:
/// under `prefer`, whatever listens on the tunnel's port could otherwise
/// answer "isolated".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_skips_authentication_is_refused() {
    // AuthenticationOk, then ReadyForQuery (idle).
    const OK_AT_ONCE: [u8; 15] = [b'R', 0, 0, 0, 8, 0, 0, 0, 0, b'Z', 0, 0, 0, 5, b'I'];
    let t = TestDb::empty().await;
    for command in ["verify", "monitor"] {
        let (port, server) = fake_server(&OK_AT_ONCE).await;
        let port = port.to_string();
        let run = t
            .run_env(
                &[command, "--host", "127.0.0.1", "--port", &port],
                &[("PGUSER", "app_user"), ("PGPASSWORD", "pw-Qe4")],
            )
            .await;
        run.expect(2);
        assert!(
            run.stderr.contains("granted access without authenticating"),
            "{}",
            run.stderr
        );
        let received = String::from_utf8_lossy(&server.await.unwrap()).into_owned();
        assert!(
            !received.contains("SELECT"),
            "a query reached the fake server: {received}"
        );
    }
}

/// A password given by mistake where its source is expected (a flag, or the
/// variable cron sets) is never repeated: not in the error, not anywhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_password_given_as_its_source_is_not_echoed() {
    let t = TestDb::empty().await;
    let secret = "S3cretPassw0rd!";
    for (args, env) in [
        (vec!["monitor", "--password-from", secret], vec![]),
        (vec!["monitor"], vec![("RLSCTL_PASSWORD_FROM", secret)]),
        (vec!["apply", "--app-password-from", "Hunter2:x"], vec![]),
    ] {
        let run = t.run_env(&args, &env).await;
        run.expect(2);
        assert!(
            run.stderr.contains("not a password source"),
            "{}",
            run.stderr
        );
        assert!(
            !run.all_output().contains(secret) && !run.all_output().contains("Hunter2"),
            "{}",
            run.all_output()
        );
    }
}

/// A table name that carries terminal escapes (clear the screen, home the
/// cursor, write "all clean") is shown escaped in text output; JSON keeps it
/// exact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn escape_sequences_from_the_database_are_not_sent_to_the_terminal() {
    let t = TestDb::demo().await;
    t.applied().await;
    let evil = "evil\u{1b}[2J\u{1b}[Hall clean\u{7}\u{9b}";
    t.sql(&format!(
        "CREATE TABLE {} (id int, tenant_id text)",
        rlsctl::model::sql::quote_ident(evil)
    ))
    .await;
    let run = t.run_env(&["monitor"], &AS_APP).await;
    run.expect(1);
    for raw in ['\u{1b}', '\u{7}', '\u{9b}'] {
        assert!(
            !run.stdout.contains(raw),
            "a raw {raw:?} reached the terminal:\n{}",
            run.stdout
        );
    }
    assert!(
        run.stdout
            .contains("evil\\u001b[2J\\u001b[Hall clean\\u0007\\u009b"),
        "{}",
        run.stdout
    );
    let run = t.run_env(&["monitor", "--format", "json"], &AS_APP).await;
    run.expect(1);
    assert!(!run.stdout.contains('\u{9b}'));
    let objects: Vec<String> = run.json()["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["object"].as_str().map(String::from))
        .collect();
    assert!(
        objects.iter().any(|o| o == &format!("public.{evil}")),
        "{objects:?}"
    );
}

/// A listener that accepts, declines TLS, then says nothing more (a tunnel
/// whose far end hangs): verify and monitor end within --connect-timeout,
/// exit 2, naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silent_server_ends_the_run_within_the_connect_timeout() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let t = TestDb::empty().await;
    for command in ["verify", "monitor"] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port().to_string();
        let server = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 8];
            let _ = socket.read_exact(&mut buf).await;
            socket.write_all(b"N").await.unwrap();
            // silent for longer than any timeout below
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            drop(socket);
        });
        let started = std::time::Instant::now();
        let run = t
            .run_env(
                &[
                    command,
                    "--host",
                    "127.0.0.1",
                    "--port",
                    &port,
                    "--connect-timeout",
                    "2s",
                ],
                &[("PGUSER", "app_user"), ("PGPASSWORD", "pw-Qe4")],
            )
            .await;
        run.expect(2);
        assert!(run.stderr.contains("no answer within 2s"), "{}", run.stderr);
        // (a hang guard with a wide margin, not a measurement)
        assert!(started.elapsed() < std::time::Duration::from_secs(20));
        server.abort();
    }
}

/// A session holding ACCESS EXCLUSIVE on a tenant table (a migration, a
/// VACUUM FULL): monitor gives up after the read's lock timeout, exit 2,
/// naming the session that holds it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lock_holder_ends_the_read_and_is_named() {
    let t = TestDb::demo_rds().await;
    t.applied().await;
    let holder = t.superuser().await;
    holder
        .simple("BEGIN; LOCK TABLE customers IN ACCESS EXCLUSIVE MODE; SELECT 'vacuum full, say'")
        .await
        .unwrap();
    // The run's own limit comes first when it is shorter.
    let run = t.run_env(&["monitor", "--timeout", "2s"], &AS_APP).await;
    run.expect(2);
    assert!(
        run.stderr.contains("did not finish within --timeout 2s"),
        "{}",
        run.stderr
    );
    let run = t.run_env(&["monitor"], &AS_APP).await;
    run.expect(2);
    assert!(
        run.stderr.contains("the catalog read waited too long")
            && run.stderr.contains("holding locks on tenant tables: pid"),
        "{}",
        run.stderr
    );
    holder.simple("ROLLBACK").await.unwrap();
    monitor_json(&t).await.0.expect(0);
}

/// A bad `.env` or targets file is named with its line, never quoted: the
/// line may hold a password, the file may be one the user should not read.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parse_errors_name_the_line_and_never_the_text() {
    use std::os::unix::fs::PermissionsExt;
    let t = TestDb::empty().await;
    let dir = t.sandbox.dir();
    let env = dir.join(".env");
    std::fs::write(
        &env,
        "PGUSER=app_user\nPGPASSWORD=\"hunter2-Vb8 unterminated\n",
    )
    .unwrap();
    std::fs::set_permissions(&env, std::fs::Permissions::from_mode(0o600)).unwrap();
    let run = t.run(&["monitor"]).await;
    run.expect(2);
    assert!(
        !run.all_output().contains("hunter2"),
        "{}",
        run.all_output()
    );
    assert!(run.stderr.contains(".env, line 2"), "{}", run.stderr);
    std::fs::remove_file(&env).unwrap();
    let targets = dir.join("targets.toml");
    std::fs::write(
        &targets,
        "[[target]]\nname = \"a\"\nhost = \"h\"\nport = \"hunter2-Vb8\"\n",
    )
    .unwrap();
    let run = t
        .run(&["monitor", "--targets", targets.to_str().unwrap()])
        .await;
    run.expect(2);
    assert!(
        !run.all_output().contains("hunter2"),
        "{}",
        run.all_output()
    );
    assert!(run.stderr.contains("line 4: port"), "{}", run.stderr);
}

/// Small inputs that were wrong: no tunnel running says to start one; an
/// IAM token goes only to a server TLS verified (verify-full).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tunnel_and_iam_without_verify_full_are_said_plainly() {
    let t = TestDb::empty().await;
    let closed = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port().to_string()
    };
    let run = t
        .run_env(
            &["verify", "--host", "127.0.0.1", "--port", &closed],
            &AS_APP,
        )
        .await;
    run.expect(2);
    assert!(run.stderr.contains("rlsctl tunnel"), "{}", run.stderr);
    for mode in ["require", "verify-ca", "prefer"] {
        let run = t
            .run(&[
                "monitor",
                "--iam-auth",
                "--sslmode",
                mode,
                "--rds-endpoint",
                "mydb.abc.eu-west-1.rds.amazonaws.com",
            ])
            .await;
        run.expect(2);
        assert!(
            run.stderr.contains("is refused (use verify-full"),
            "{mode}: {}",
            run.stderr
        );
    }
}
