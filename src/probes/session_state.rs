//! The session-state probe (SES001): does a session-level setting made on one
//! client connection reach another? Through a direct connection it cannot.
//! Through a transaction pooler (PgBouncer `pool_mode = transaction`, RDS
//! Proxy once pinning ends) it does: the server connection that ran the `SET`
//! goes back to the pool with the setting on it, and the next client to get it
//! inherits the tenant. Through a session pooler it does when the pooler hands
//! a server connection on without a reset query.
//!
//! The canary is a tenant id that exists nowhere, set on the tenant setting
//! itself. Every look is one statement that also resets the setting when it
//! sees the canary, so wherever it is seen it is gone; it is set once, so a
//! canary seen is a canary removed.

use std::time::{Duration, Instant};

use anyhow::Result;

use super::random_tenant;
use crate::model::checks::{Finding, Findings, SES001};
use crate::model::config::Target;
use crate::pg::cells::Cells;
use crate::pg::Db;

/// Sets the canary for the session (not the transaction): what a buggy app
/// does. Returns the server process that holds it.
const SET_CANARY: &str =
    "SELECT pg_catalog.set_config($1, $2, false), pg_catalog.pg_backend_pid() AS pid";

/// Whether this session carries the canary, resetting it in the same
/// statement when it does (a second statement could reach another server
/// connection through a transaction pooler).
const LOOK_AND_CLEAR: &str = "SELECT s.v IS NOT DISTINCT FROM $2 AS seen, \
     CASE WHEN s.v IS NOT DISTINCT FROM $2 THEN pg_catalog.set_config($1, NULL, false) END AS cleared \
     FROM (SELECT pg_catalog.current_setting($1, true) AS v OFFSET 0) s";

/// Whether a server process is still there.
const PROCESS_ALIVE: &str =
    "SELECT count(*) > 0 AS alive FROM pg_catalog.pg_stat_get_activity($1::pg_catalog.int4)";

/// Looks from the second connection while the first is open.
const LIVE_LOOKS: usize = 3;
/// New connections, held open together, that look after the first one closed.
const LATER_LOOKS: usize = 3;
/// How long the canary's server process may take to exit once its client
/// closed; still there after that, something (a pooler) keeps it.
const EXIT_WAIT: Duration = Duration::from_millis(200);
/// The first pause between looks for that process, doubled after each look
/// up to [`EXIT_POLL_MAX`]: a direct connection's process is usually gone
/// within a few milliseconds (longer after a large read: it frees more), and
/// behind a pooler, which keeps it the whole [`EXIT_WAIT`], the looks stay few.
const EXIT_POLL: Duration = Duration::from_millis(1);
/// The longest pause between those looks.
const EXIT_POLL_MAX: Duration = Duration::from_millis(16);
/// Time for a pooler to take back the first client's server connection.
const AFTER_CLOSE: Duration = Duration::from_millis(40);

/// What the looks found.
enum Looked {
    /// Seen from another client while the setting's own client was still connected.
    Live,
    /// Seen from a new client after the setting's client disconnected.
    AfterClose,
    /// Not seen, and the canary's server process ended with its client (a
    /// direct connection): no one else can get that session.
    Ended,
    /// Not seen, though its server connection outlived the client (a pooler
    /// that resets it).
    Reset,
}

/// Runs the probe: sets the canary on `spare` (another connection of `db`'s
/// user through the same path, idle: the snapshot's second one), or on a new
/// one when there is none, with a canary castable to each of `types` (the
/// tenant column's), and looks for it from `db` (which opens more,
/// through the same path, only when something pools). Never beside other
/// work through that path: a pooler could hand the canary to it. Adds one
/// SES001 finding; returns how many of its statements depended on the
/// server's load.
pub(crate) async fn run(
    db: &Db,
    spare: Option<Db>,
    types: &[String],
    target: &Target,
    findings: &mut Findings,
) -> Result<u64> {
    let types: Vec<&str> = types.iter().map(String::as_str).collect();
    let started = Instant::now();
    let setting = target.tenant_setting.as_str();
    // Statements that depend on the server's load (looks for the closed
    // connection's process to end; the later connections when it does not),
    // not on the number of tables.
    let mut waits = 0;
    let looked = async {
        let first = match spare {
            Some(spare) => spare,
            None => db.sibling().await?,
        };
        // Castable to the tenant column, so an app that did inherit it
        // would find no rows rather than fail on a cast.
        let canary = random_tenant(db, &types).await?;
        look(db, first, setting, &canary, &mut waits).await
    }
    .await;
    match looked {
        Err(err) => findings.push(Finding::skip(
            &SES001,
            format!("the probe could not run (it needs a second connection, and three more behind a pooler): {err:#}"),
        )),
        Ok(Looked::Ended) => findings.push(Finding::pass(
            &SES001,
            None,
            format!(
                "a session-level {setting} set on one connection was not seen from another while it was open ({LIVE_LOOKS} looks), and its server process ended with it (a direct connection)"
            ),
        )),
        Ok(Looked::Reset) => findings.push(Finding::pass(
            &SES001,
            None,
            format!(
                "a session-level {setting} set on one connection was not seen from another, while it was open ({LIVE_LOOKS} looks) or after it closed ({LATER_LOOKS} new connections; its server connection outlived it, so something pools and resets it)"
            ),
        )),
        Ok(seen) => {
            let how = match seen {
                Looked::Live => "from another client connection while the first was still open: the connection path pools by transaction",
                _ => "by the next client after the first disconnected: the pooler hands server connections on without resetting them",
            };
            findings.push(Finding::problem(
                &SES001,
                format!("{}:{}", db.options().host, db.options().port),
                format!(
                    "a session-level SET of {setting} was seen {how}. Any code path that sets the tenant with SET (not SET LOCAL or set_config(..., true)) hands its tenant to another client's requests"
                ),
                "set the tenant only inside the request's transaction (SET LOCAL, or set_config(setting, id, true)); never a session-level SET through a transaction pooler; in session mode keep server_reset_query = DISCARD ALL (see docs/checks.md#ses001)",
            ));
        }
    }
    // Its cost is fixed (connections and pauses), whatever the number of tables.
    tracing::info!(
        ms = started.elapsed().as_secs_f64() * 1000.0,
        waits,
        "session-state probe done"
    );
    Ok(waits)
}

/// Sets the canary on `first` and looks for it from `db`, then (when
/// something keeps the first's server process after it closed) from new
/// connections.
async fn look(db: &Db, first: Db, setting: &str, canary: &str, waits: &mut u64) -> Result<Looked> {
    let row = first.query_one(SET_CANARY, &[&setting, &canary]).await?;
    let pid: i32 = Cells::new(&row, "set_canary").column("pid")?;
    // Back to back: a pooler takes a server connection back before the
    // client reads the reply, so the next statement can already get it.
    for _ in 0..LIVE_LOOKS {
        if seen(db, setting, canary).await? {
            drop(first);
            return Ok(Looked::Live);
        }
    }
    // Not seen while open. Close the first and watch its server process: on a
    // direct connection it exits with its client, and the canary with it.
    drop(first);
    let closed = Instant::now();
    let mut pause = EXIT_POLL;
    while closed.elapsed() < EXIT_WAIT {
        *waits += 1;
        if !alive(db, pid).await? {
            return Ok(Looked::Ended);
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(EXIT_POLL_MAX);
    }
    // Something keeps it: a pooler. Give it time to take the server
    // connection back, and look from new clients held open together, so each
    // has a server connection of its own. (`db` holds none that could be the
    // canary's: a session pool gave it its own, a transaction pool lends one
    // per statement.)
    tokio::time::sleep(AFTER_CLOSE).await;
    let mut later = Vec::with_capacity(LATER_LOOKS);
    for _ in 0..LATER_LOOKS {
        let next = db.sibling().await?;
        *waits += 2;
        if seen(&next, setting, canary).await? {
            return Ok(Looked::AfterClose);
        }
        later.push(next);
    }
    Ok(Looked::Reset)
}

/// Whether the server process `pid` is still there.
async fn alive(db: &Db, pid: i32) -> Result<bool> {
    let row = db.query_one(PROCESS_ALIVE, &[&pid]).await?;
    Cells::new(&row, "process_alive").column("alive")
}

async fn seen(db: &Db, setting: &str, canary: &str) -> Result<bool> {
    let row = db.query_one(LOOK_AND_CLEAR, &[&setting, &canary]).await?;
    Cells::new(&row, "look_and_clear").column("seen")
}
