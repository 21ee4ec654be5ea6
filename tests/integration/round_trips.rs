//! Round trips, counted by a TCP proxy between rlsctl and the server: a
//! round trip is a client send that had to wait for the server (the first
//! of a connection, and each that follows bytes the server sent since the
//! client's previous send). Every real run goes through a tunnel, where each
//! one costs the tunnel's latency; these counts are the constant that
//! docs/performance.md multiplies by it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use crate::support::*;

/// How long the proxy holds the server's bytes before the client gets them:
/// a pipelined statement the client sends while the answer to the one before
/// is on its way is then never mistaken for a round trip, however loaded the
/// machine.
const LATENCY: std::time::Duration = std::time::Duration::from_millis(10);

/// A counting proxy to `127.0.0.1:upstream`.
pub struct CountingProxy {
    pub port: u16,
    round_trips: Arc<AtomicU64>,
    connections: Arc<AtomicU64>,
}

/// Which side spoke last on one proxied connection.
#[derive(Default)]
struct Turn {
    /// The server sent bytes since the client's previous send (or the
    /// client has not sent yet).
    server_spoke: std::sync::atomic::AtomicBool,
}

impl CountingProxy {
    /// Starts the proxy on a free local port.
    pub async fn start(upstream: u16) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let round_trips = Arc::new(AtomicU64::new(0));
        let connections = Arc::new(AtomicU64::new(0));
        let (trips, conns) = (round_trips.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                conns.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(relay(client, server, trips.clone()));
            }
        });
        Self {
            port,
            round_trips,
            connections,
        }
    }

    /// Round trips and connections so far, and both set back to zero.
    pub fn take(&self) -> (u64, u64) {
        (
            self.round_trips.swap(0, Ordering::Relaxed),
            self.connections.swap(0, Ordering::Relaxed),
        )
    }
}

/// Copies both ways, counting the client sends that follow the server's.
async fn relay(client: TcpStream, server: TcpStream, trips: Arc<AtomicU64>) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let turn = Arc::new(Turn::default());
    turn.server_spoke.store(true, Ordering::Relaxed);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up_turn = turn.clone();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = client_read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if up_turn.server_spoke.swap(false, Ordering::Relaxed) {
                trips.fetch_add(1, Ordering::Relaxed);
            }
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let down = async move {
        let mut buf = vec![0u8; 64 * 1024];
        while let Ok(n) = server_read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            tokio::time::sleep(LATENCY).await;
            if client_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
            // only now can the client have seen them
            turn.server_spoke.store(true, Ordering::Relaxed);
        }
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}

/// Runs `args` through the proxy, three times; the round trips and
/// connections of each run.
async fn counted(
    t: &TestDb,
    proxy: &CountingProxy,
    args: &[&str],
    env: &[(&str, &str)],
) -> Vec<(u64, u64)> {
    let port = proxy.port.to_string();
    let env: Vec<(&str, &str)> = env
        .iter()
        .copied()
        .chain([("PGPORT", port.as_str())])
        .collect();
    let mut counts = Vec::new();
    for _ in 0..3 {
        proxy.take();
        t.run_env(args, &env).await.expect(0);
        // the last bytes of a closing connection may still be in flight
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        counts.push(proxy.take());
    }
    counts
}

/// (command, args, env, round trips, connections, the variation allowed)
type Case<'a> = (
    &'a str,
    Vec<&'a str>,
    Vec<(&'a str, &'a str)>,
    u64,
    u64,
    u64,
);

/// Each command's round trips on the RDS-shaped sample (no TLS, `prefer`
/// answered `N`), the same in every run: a change that adds one fails here,
/// naming the command. Counted over all of a command's connections (the
/// snapshot's second one runs beside the first, so the wall time is less).
/// verify and monitor vary by one: the session-state probe looks for the
/// closed backend on a fixed schedule, and the server is sometimes a look
/// late (more often through a slower link).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_command_takes_a_constant_number_of_round_trips() {
    let t = TestDb::demo_rds().await;
    t.applied().await;
    let proxy = CountingProxy::start(t.sandbox.port).await;
    let cases: [Case; 4] = [
        (
            "apply --dry-run",
            vec!["apply", "--dry-run"],
            vec![],
            12,
            1,
            0,
        ),
        ("apply (nothing to change)", vec!["apply"], vec![], 13, 1, 0),
        ("monitor", vec!["monitor"], AS_APP.to_vec(), 28, 2, 1),
        (
            "verify, two tenants",
            vec!["verify", "--tenant", TENANTS[0], "--tenant", TENANTS[1]],
            AS_APP.to_vec(),
            49,
            2,
            1,
        ),
    ];
    let mut wrong = Vec::new();
    for (name, args, env, trips, connections, slack) in cases {
        let counts = counted(&t, &proxy, &args, &env).await;
        let fewest = counts.iter().map(|(r, _)| *r).min().unwrap();
        let most = counts.iter().map(|(r, _)| *r).max().unwrap();
        if fewest < trips || most > trips + slack || counts.iter().any(|(_, c)| *c != connections) {
            wrong.push(format!(
                "{name}: (round trips, connections) {counts:?}, expected ({trips}, {connections})"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
