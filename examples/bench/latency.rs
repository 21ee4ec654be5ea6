//! Through a tunnel: every real run goes through one (SSM to an RDS instance,
//! often in another region), where each round trip costs its latency. A TCP
//! proxy in front of the bench's server holds each side's bytes
//! [`ONE_WAY`] before passing them on (a 25 ms round trip, a near-region SSM
//! tunnel); the commands run through it against one scram-authenticated
//! `psql -c 'select 1'` through the same proxy, interleaved.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{bail, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use rlsctl::sandbox::Sandbox;

use crate::fleet::{median, psql};
use crate::{run_rlsctl_env, target, MONITOR, VERIFY};

/// Each way: a 25 ms round trip.
pub(crate) const ONE_WAY: Duration = Duration::from_micros(12_500);
/// Interleaved runs of each, median.
pub(crate) const RUNS: usize = 7;

/// A proxy to `127.0.0.1:upstream` that delays both directions, on a thread
/// and runtime of its own (the bench's own runtime blocks on its children).
pub(crate) fn delay_proxy(upstream: u16, one_way: Duration) -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = listener.local_addr()?.port();
    listener.set_nonblocking(true)?;
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime for the delay proxy");
        runtime.block_on(async move {
            let listener =
                tokio::net::TcpListener::from_std(listener).expect("the proxy's listener");
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream)).await
                    else {
                        return;
                    };
                    let _ = client.set_nodelay(true);
                    let _ = server.set_nodelay(true);
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::join!(
                        delayed(client_read, server_write, one_way),
                        delayed(server_read, client_write, one_way)
                    );
                });
            }
        });
    });
    Ok(port)
}

/// Copies `from` to `to`, each chunk `delay` after it was read, in order.
async fn delayed(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    delay: Duration,
) {
    let (chunks, mut due) =
        tokio::sync::mpsc::unbounded_channel::<(tokio::time::Instant, Vec<u8>)>();
    let reader = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = from.read(&mut buf).await {
            if n == 0
                || chunks
                    .send((tokio::time::Instant::now() + delay, buf[..n].to_vec()))
                    .is_err()
            {
                break;
            }
        }
    };
    let writer = async move {
        while let Some((at, bytes)) = due.recv().await {
            tokio::time::sleep_until(at).await;
            if to.write_all(&bytes).await.is_err() {
                break;
            }
        }
        let _ = to.shutdown().await;
    };
    tokio::join!(reader, writer);
}

/// The medians (ms) through the proxy.
pub(crate) struct Latency {
    pub(crate) psql_ms: f64,
    pub(crate) verify_ms: f64,
    pub(crate) monitor_ms: f64,
    pub(crate) dry_run_ms: f64,
    pub(crate) rollback_ms: f64,
    pub(crate) restore_ms: f64,
}

/// psql, verify, monitor (as the app role), apply --dry-run, rollback of one
/// table and its restore (as the operator, the sandbox's superuser) on the
/// 4-table database `dbname`, through a delay proxy, interleaved.
pub(crate) fn through_a_tunnel(sandbox: &Sandbox, rlsctl: &str, dbname: &str) -> Result<Latency> {
    let port = delay_proxy(sandbox.port, ONE_WAY)?;
    let target = target(4)?;
    let env = |user: &str, password: &str| -> Vec<(&'static str, String)> {
        vec![
            ("PGHOST", "127.0.0.1".into()),
            ("PGPORT", port.to_string()),
            ("PGDATABASE", dbname.into()),
            ("PGUSER", user.into()),
            ("PGPASSWORD", password.into()),
        ]
    };
    let app = env("app_user", crate::APP_PASSWORD);
    let operator = env("postgres", sandbox.superuser_password.expose());
    let psql = psql()?;
    let mut runs: [Vec<f64>; 6] = Default::default();
    for _ in 0..RUNS {
        let started = Instant::now();
        let status = Command::new(&psql)
            .args(["-X", "-q", "-A", "-t", "-c", "select 1"])
            .env_clear()
            .envs(app.clone())
            .stdout(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            bail!("psql -c 'select 1' through the proxy failed: {status}");
        }
        runs[0].push(started.elapsed().as_secs_f64() * 1000.0);
        let mut timed = |i: usize, env: &[(&'static str, String)], args: &[&str]| -> Result<()> {
            runs[i].push(run_rlsctl_env(rlsctl, env, &target, args)?.ms as f64);
            Ok(())
        };
        timed(1, &app, VERIFY)?;
        timed(2, &app, MONITOR)?;
        timed(3, &operator, &["apply", "--dry-run"])?;
        timed(
            4,
            &operator,
            &["rollback", "--table", "t1", "--reason", "bench", "--yes"],
        )?;
        timed(5, &operator, &["rollback", "--restore", "--yes"])?;
    }
    let [p, v, m, d, r, s] = runs.map(median);
    Ok(Latency {
        psql_ms: p,
        verify_ms: v,
        monitor_ms: m,
        dry_run_ms: d,
        rollback_ms: r,
        restore_ms: s,
    })
}

/// The table of docs/performance.md's "Through a tunnel" section.
pub(crate) fn render(latency: &Latency, out: &mut String) {
    use std::fmt::Write as _;
    let ratio = |ms: f64| ms / latency.psql_ms.max(0.001);
    let row = |name: &str, ms: f64, target: Option<f64>| {
        let verdict = match target {
            Some(t) if ratio(ms) <= t => format!("≤ {t:.1}x: **met**"),
            Some(t) => format!("≤ {t:.1}x: **not met**"),
            None => String::new(),
        };
        format!(
            "| {name} | {ms:.0} ms | {:.2}x | {:.1} | {verdict} |\n",
            ratio(ms),
            ms / 25.0
        )
    };
    let _ = write!(
        out,
        "## Through a tunnel\n\n\
         Every real run goes through a tunnel. The bench starts a TCP proxy in front of its server that holds\n\
         each side's bytes 12.5 ms (a 25 ms round trip, a near-region SSM tunnel), and runs each command through\n\
         it against one scram-authenticated `psql -X -c 'select 1'` through the same proxy, on the 4-table\n\
         database, no TLS, {RUNS} interleaved runs, medians (`scripts/bench`; the last column is the wall time\n\
         in round trips of 25 ms, what the critical path waits for):\n\n\
         | run | wall | against psql | ≈ round trips | target |\n|---|---:|---:|---:|---|\n"
    );
    out.push_str(&row("psql -c 'select 1'", latency.psql_ms, None));
    out.push_str(&row("verify, two tenants", latency.verify_ms, Some(2.0)));
    out.push_str(&row("monitor", latency.monitor_ms, Some(1.5)));
    out.push_str(&row("apply --dry-run", latency.dry_run_ms, Some(2.0)));
    out.push_str(&row(
        "rollback --table (break-glass)",
        latency.rollback_ms,
        Some(2.0),
    ));
    out.push_str(&row("rollback --restore", latency.restore_ms, Some(2.0)));
    out.push('\n');
    out.push_str(ROUND_TRIPS);
    out.push('\n');
    out.push_str(BINARY_SIZE);
    out.push('\n');
}

/// The round trips each command takes, as the integration test
/// `round_trips::each_command_takes_a_constant_number_of_round_trips`
/// asserts them, and where they go (kept here so `scripts/bench` writes them
/// with the wall times they explain).
pub(crate) const ROUND_TRIPS: &str = "## Round trips

Every real run goes through a tunnel, where each round trip costs the tunnel's latency. The integration
test `round_trips::each_command_takes_a_constant_number_of_round_trips` counts them with a proxy between
rlsctl and the server (a round trip is a client send that had to wait for the server: the first of a
connection, and each that follows bytes the server sent since the client's previous send; the proxy holds
the server's bytes 10 ms, so a pipelined statement is never taken for one), on the RDS-shaped sample
without TLS, over all of a command's connections. A change that adds one fails the test, which prints
what each round trip of the command sent.

| command | round trips | connections | before this count was cut |
|---|---:|---:|---:|
| `apply --dry-run` | 11 | 1 | 12 |
| `apply` (nothing to change) | 12 | 1 | 13 |
| `monitor` | 22 (+2) | 2 | 28 |
| `verify`, two tenants | 39 (+2) | 2 | 49 |
| `rollback --table` (break-glass) | 9 | 1 | 11 |
| `rollback --restore` | 10 | 1 | 12 |

Where monitor's go:

- Opening a connection: 5 (SSLRequest, answered `N` here; the startup; two SCRAM messages; the
  session query). monitor and verify open their two connections at once, so the second's 5 overlap
  the first's.
- The read, on each connection: BEGIN goes out with the first reads (1); the bundle's NULL counts and
  records wait for phase one's word that the bundle is there (1, the main connection only); ROLLBACK (1).
- The session-state probe (SES001): the canary set on one connection (1), three looks from the other,
  back to back (3: each must be a statement of its own, for a transaction pooler to hand it the next
  server connection), and the looks for the closed connection's process until it has ended (1, on a
  loaded machine up to 3: the +2).

So monitor's critical path is about 5 + 3 + 5 = 13 round trips; verify adds the cast check (1) and
the probes' transactions (each one batch of BEGIN, its reads or writes and ROLLBACK, per tenant and
phase, on both connections at once), about a dozen more. What was cut: BEGIN no longer waits alone before its transaction's first statements;
the NULL counts go with the records; the check that the probes' made-up tenants cast to the tenant
column is one batch; the canary is made here for the types rlsctl knows (text, uuid, integer, bigint,
numeric) instead of asking the server; break-glass sends its change with its log entry, restore its check
with the log's update; the second connection opens at the start.

Nothing is ever sent behind a transaction's end (COMMIT or ROLLBACK) in the same batch: through
PgBouncer in transaction mode, a statement sent behind the ROLLBACK that ends a transaction can run on a
server connection PgBouncer has already handed on. The pooler test found it when the read's ROLLBACK
was deferred into the next statement's batch (PRB004 then saw the probe's own tenant after COMMIT on
another server connection). Each COMMIT and ROLLBACK costs its round trip.

Not cut yet: the session query after authentication (the server's version the first reads depend on is
in the startup's ParameterStatus, which tokio-postgres does not expose); verify's probe transactions
batched across tenants; SES001's looks paced by the measured round-trip time; the counts through TLS and
PgBouncer in the test.
";

/// The release binary's size by profile (measured with `cargo build --release` into a target
/// directory of each; stripped).
pub(crate) const BINARY_SIZE: &str = "## Binary size

The stripped release binary (`cargo build --release`, x86_64, this 2-core machine, a clean target
directory for each):

| release profile | size | build |
|---|---:|---:|
| `strip = true` (before) | 23.6 MB | 544 s |
| `strip = true`, `lto = \"fat\"`, `codegen-units = 1` (now) | 16.4 MB | 610 s |

Most of the binary is the AWS SDK's generated code (SSM, RDS, Secrets Manager, STS, SSO), of which rlsctl
calls a handful of operations; whole-program optimization drops the rest. Every feature stays: no crate
or feature was removed. Target: at most 20 MB: **met**.
";
