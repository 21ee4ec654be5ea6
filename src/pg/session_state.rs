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

use std::time::Duration;

use anyhow::Result;

use super::probes::{column_types, random_tenant};
use crate::model::checks::{Finding, Findings, SES001};
use crate::model::config::Target;
use crate::model::snapshot::Snapshot;
use crate::pg::cells::Cells;
use crate::pg::Db;

/// Sets the canary for the session (not the transaction): what a buggy app does.
const SET_CANARY: &str = "SELECT pg_catalog.set_config($1, $2, false)";

/// Whether this session carries the canary, resetting it in the same
/// statement when it does (a second statement could reach another server
/// connection through a transaction pooler).
const LOOK_AND_CLEAR: &str = "SELECT s.v IS NOT DISTINCT FROM $2 AS seen, \
     CASE WHEN s.v IS NOT DISTINCT FROM $2 THEN pg_catalog.set_config($1, NULL, false) END AS cleared \
     FROM (SELECT pg_catalog.current_setting($1, true) AS v OFFSET 0) s";

/// Looks from the second connection while the first is open.
const LIVE_LOOKS: usize = 3;
/// New connections, held open together, that look after the first one closed.
const LATER_LOOKS: usize = 3;
/// Pause between looks (lets a pooler hand the server connection on).
const PAUSE: Duration = Duration::from_millis(10);
/// Time for a pooler to take back the first client's server connection.
const AFTER_CLOSE: Duration = Duration::from_millis(40);

/// Where the canary was seen.
enum Seen {
    /// From another client while the setting's own client was still connected.
    Live,
    /// From a new client after the setting's client disconnected.
    AfterClose,
}

/// Runs the probe through `db`'s host and port (the path the app uses when it
/// is pointed at the same place), as `db`'s user. Adds one SES001 finding.
pub(crate) async fn run(
    db: &Db,
    snap: &Snapshot,
    target: &Target,
    findings: &mut Findings,
) -> Result<()> {
    let types = column_types(snap);
    let types: Vec<&str> = types.iter().map(String::as_str).collect();
    let started = std::time::Instant::now();
    // Castable to the tenant column, so an app that did inherit it would find
    // no rows rather than fail on a cast.
    let canary = random_tenant(db, &types).await?;
    let setting = target.tenant_setting.as_str();
    match look(db, setting, &canary).await {
        Err(err) => findings.push(Finding::skip(
            &SES001,
            format!("the probe could not run (it needs up to three more connections): {err:#}"),
        )),
        Ok(None) => findings.push(Finding::pass(
            &SES001,
            None,
            format!(
                "a session-level {setting} set on one connection was not seen from another, while it was open ({LIVE_LOOKS} looks) or after it closed ({LATER_LOOKS} new connections)"
            ),
        )),
        Ok(Some(seen)) => {
            let how = match seen {
                Seen::Live => "from another client connection while the first was still open: the connection path pools by transaction",
                Seen::AfterClose => "by the next client after the first disconnected: the pooler hands server connections on without resetting them",
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
        "session-state probe done"
    );
    Ok(())
}

/// Sets the canary on one new connection and looks for it from others.
async fn look(db: &Db, setting: &str, canary: &str) -> Result<Option<Seen>> {
    let (first, second) = tokio::try_join!(db.sibling(), db.sibling())?;
    first.query(SET_CANARY, &[&setting, &canary]).await?;
    for i in 0..LIVE_LOOKS {
        if i > 0 {
            tokio::time::sleep(PAUSE).await;
        }
        if seen(&second, setting, canary).await? {
            drop(first);
            return Ok(Some(Seen::Live));
        }
    }
    // Not seen while open. Close both, the first last (a pooler reuses the
    // server connection released last first), and look from new clients held
    // open together, so each has a server connection of its own.
    drop(second);
    tokio::time::sleep(PAUSE).await;
    drop(first);
    tokio::time::sleep(AFTER_CLOSE).await;
    let mut later = Vec::with_capacity(LATER_LOOKS);
    for _ in 0..LATER_LOOKS {
        let next = db.sibling().await?;
        if seen(&next, setting, canary).await? {
            return Ok(Some(Seen::AfterClose));
        }
        later.push(next);
    }
    Ok(None)
}

async fn seen(db: &Db, setting: &str, canary: &str) -> Result<bool> {
    let row = db.query_one(LOOK_AND_CLEAR, &[&setting, &canary]).await?;
    Cells::new(&row, "look_and_clear").column("seen")
}
