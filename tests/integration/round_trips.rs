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
    /// What each round trip sent: connection number, message types, and the
    /// start of a statement's text (for a failure to say which it was).
    sent: Sent,
}

type Sent = Arc<std::sync::Mutex<Vec<String>>>;

/// A client send, as a failure shows it: its messages' types (`P` parse,
/// `B` bind, `E` execute, `S` sync, `Q` simple query, `p` a password or SASL
/// message; the connection's first send has none: SSLRequest or startup),
/// and the first statement's start.
fn describe_send(bytes: &[u8], first: bool) -> String {
    if first {
        return if bytes.len() == 8 {
            "SSLRequest".into()
        } else {
            "startup".into()
        };
    }
    let (mut types, mut statement, mut at) = (String::new(), None, 0);
    while at + 5 <= bytes.len() {
        let kind = bytes[at];
        let len = u32::from_be_bytes([bytes[at + 1], bytes[at + 2], bytes[at + 3], bytes[at + 4]])
            as usize;
        types.push(kind as char);
        let body = &bytes[(at + 5).min(bytes.len())..(at + 1 + len).min(bytes.len())];
        if statement.is_none() && matches!(kind, b'P' | b'Q') {
            // Parse: the statement's name, then its text; Query: the text.
            let text = if kind == b'P' {
                body.splitn(2, |b| *b == 0).nth(1).unwrap_or(body)
            } else {
                body
            };
            let text = String::from_utf8_lossy(text.split(|b| *b == 0).next().unwrap_or(text));
            statement = Some(
                text.split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" ")
                    .chars()
                    .take(70)
                    .collect::<String>(),
            );
        }
        at += 1 + len;
    }
    match statement {
        Some(text) => format!("{types} {text}"),
        None => types,
    }
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
        let sent: Sent = Arc::default();
        let (trips, conns, log) = (round_trips.clone(), connections.clone(), sent.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = TcpStream::connect(("127.0.0.1", upstream)).await else {
                    continue;
                };
                let number = conns.fetch_add(1, Ordering::Relaxed);
                tokio::spawn(relay(client, server, trips.clone(), log.clone(), number));
            }
        });
        Self {
            port,
            round_trips,
            connections,
            sent,
        }
    }

    /// What each round trip since the last call sent, in order.
    pub fn sent(&self) -> Vec<String> {
        std::mem::take(&mut *self.sent.lock().unwrap())
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
async fn relay(
    client: TcpStream,
    server: TcpStream,
    trips: Arc<AtomicU64>,
    sent: Sent,
    number: u64,
) {
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let turn = Arc::new(Turn::default());
    turn.server_spoke.store(true, Ordering::Relaxed);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up_turn = turn.clone();
    let up = async move {
        let mut buf = vec![0u8; 64 * 1024];
        let mut first = true;
        while let Ok(n) = client_read.read(&mut buf).await {
            if n == 0 {
                break;
            }
            if up_turn.server_spoke.swap(false, Ordering::Relaxed) {
                trips.fetch_add(1, Ordering::Relaxed);
                let what = describe_send(&buf[..n], first);
                sent.lock().unwrap().push(format!("#{number} {what}"));
            }
            first = false;
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

/// What one case runs: the command through the proxy, and what runs around
/// it directly (uncounted) so each of its three runs starts from the same
/// state (a rollback undone, a restore given something to restore).
struct Case<'a> {
    name: &'a str,
    args: Vec<&'a str>,
    env: Vec<(&'a str, &'a str)>,
    before: Vec<&'a str>,
    after: Vec<&'a str>,
    /// Round trips, connections, and the variation allowed in round trips.
    expected: (u64, u64, u64),
}

impl<'a> Case<'a> {
    fn new(
        name: &'a str,
        args: &[&'a str],
        env: &[(&'a str, &'a str)],
        expected: (u64, u64, u64),
    ) -> Self {
        Self {
            name,
            args: args.to_vec(),
            env: env.to_vec(),
            before: Vec::new(),
            after: Vec::new(),
            expected,
        }
    }
}

/// Runs the case three times; the round trips and connections of each run,
/// and what the last run's round trips sent.
async fn counted(
    t: &TestDb,
    proxy: &CountingProxy,
    case: &Case<'_>,
) -> (Vec<(u64, u64)>, Vec<String>) {
    let port = proxy.port.to_string();
    let env: Vec<(&str, &str)> = case
        .env
        .iter()
        .copied()
        .chain([("PGPORT", port.as_str())])
        .collect();
    let mut counts = Vec::new();
    let mut sent = Vec::new();
    for _ in 0..3 {
        if !case.before.is_empty() {
            t.run(&case.before).await.expect(0);
        }
        proxy.take();
        proxy.sent();
        t.run_env(&case.args, &env).await.expect(0);
        // the last bytes of a closing connection may still be in flight
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        counts.push(proxy.take());
        sent = proxy.sent();
        if !case.after.is_empty() {
            t.run(&case.after).await.expect(0);
        }
    }
    (counts, sent)
}

/// Each command's round trips on the RDS-shaped sample (no TLS, `prefer`
/// answered `N`), the same in every run: a change that adds one fails here,
/// naming the command and what each of its round trips sent. Counted over
/// all of a command's connections (the snapshot's second one runs beside
/// the first, so the wall time is less). verify and monitor vary by up to
/// two: the session-state probe looks for the closed backend until its
/// process has ended, which on a loaded machine (CI runs two tests at once
/// on two cores) can take a look or two more.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_command_takes_a_constant_number_of_round_trips() {
    let t = TestDb::demo_rds().await;
    t.applied().await;
    let proxy = CountingProxy::start(t.sandbox.port).await;
    let break_glass = [
        "rollback",
        "--table",
        "customers",
        "--reason",
        "INC-1",
        "--yes",
    ];
    let restore = ["rollback", "--restore", "--yes"];
    let verify = ["verify", "--tenant", TENANTS[0], "--tenant", TENANTS[1]];
    let cases = [
        Case::new("apply --dry-run", &["apply", "--dry-run"], &[], (11, 1, 0)),
        Case::new("apply (nothing to change)", &["apply"], &[], (12, 1, 0)),
        Case::new("monitor", &["monitor"], &AS_APP, (22, 2, 2)),
        Case::new("verify, two tenants", &verify, &AS_APP, (39, 2, 2)),
        Case {
            after: restore.to_vec(),
            ..Case::new(
                "rollback --table (break-glass)",
                &break_glass,
                &[],
                (9, 1, 0),
            )
        },
        Case {
            before: break_glass.to_vec(),
            ..Case::new("rollback --restore", &restore, &[], (10, 1, 0))
        },
    ];
    let mut wrong = Vec::new();
    for case in &cases {
        let (counts, sent) = counted(&t, &proxy, case).await;
        let (trips, connections, slack) = case.expected;
        let fewest = counts.iter().map(|(r, _)| *r).min().unwrap();
        let most = counts.iter().map(|(r, _)| *r).max().unwrap();
        if fewest < trips || most > trips + slack || counts.iter().any(|(_, c)| *c != connections) {
            wrong.push(format!(
                "{}: (round trips, connections) {counts:?}, expected ({trips}, {connections}); the last run's:\n  {}",
                case.name,
                sent.join("\n  ")
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
