//! Two measurements beside the curve: verify and monitor against the floor
//! (one scram-authenticated `psql -c 'select 1'`, interleaved), and a fleet
//! of 50 databases on the one server (`monitor --targets`) against one
//! database's monitor.

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Result};
use rlsctl::cutover::apply::apply;
use rlsctl::pg::Db;
use rlsctl::sandbox::Sandbox;

use crate::{apply_options, as_app, database_with_tables, run_rlsctl, target, MONITOR, VERIFY};

/// Interleaved runs of each, median.
pub(crate) const FLOOR_RUNS: usize = 15;
/// Databases in the fleet.
pub(crate) const FLEET: usize = 50;

/// Medians (ms) of psql, verify and monitor on the 4-table database.
pub(crate) struct Floor {
    pub(crate) psql_ms: f64,
    pub(crate) verify_ms: f64,
    pub(crate) monitor_ms: f64,
}

/// verify and monitor against `psql -c 'select 1'`, as the app role
/// (scram-sha-256), interleaved so the machine's moods fall on all three.
pub(crate) fn floor(sandbox: &Sandbox, rlsctl: &str, dbname: &str, tables: usize) -> Result<Floor> {
    let psql = psql()?;
    let target = target(tables)?;
    let (mut p, mut v, mut m) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..FLOOR_RUNS {
        let started = Instant::now();
        let status = Command::new(&psql)
            .args(["-X", "-q", "-A", "-t", "-c", "select 1"])
            .env_clear()
            .envs(as_app(sandbox, dbname))
            .stdout(std::process::Stdio::null())
            .status()?;
        if !status.success() {
            bail!("psql -c 'select 1' failed: {status}");
        }
        p.push(started.elapsed().as_secs_f64() * 1000.0);
        v.push(run_rlsctl(sandbox, rlsctl, dbname, &target, VERIFY)?.ms as f64);
        m.push(run_rlsctl(sandbox, rlsctl, dbname, &target, MONITOR)?.ms as f64);
    }
    Ok(Floor {
        psql_ms: median(p),
        verify_ms: median(v),
        monitor_ms: median(m),
    })
}

/// psql itself, as a user's shell runs it: the client binary of the newest
/// PostgreSQL under /usr/lib/postgresql, else psql on PATH. (On Debian the
/// psql on PATH is pg_wrapper, a Perl script that finds the cluster and
/// then runs that binary: its start alone costs more than a connection on
/// loopback, which made the floor 31.5 ms where psql takes 12.)
pub(crate) fn psql() -> Result<String> {
    let mut found: Vec<std::path::PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .map(|e| e.path().join("bin/psql"))
                .filter(|p| p.exists())
                .collect()
        })
        .unwrap_or_default();
    found.sort_by_key(|p| {
        p.parent()
            .and_then(|bin| bin.parent())
            .and_then(|v| v.file_name())
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    if let Some(newest) = found.pop() {
        return Ok(newest.display().to_string());
    }
    if Command::new("psql").arg("--version").output().is_ok() {
        return Ok("psql".into());
    }
    bail!("no psql (apt-get install postgresql-client)")
}

/// The middle value.
pub(crate) fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// The fleet's numbers.
pub(crate) struct FleetResult {
    /// One database's monitor (median of 5), ms.
    pub(crate) one_ms: u128,
    /// The fleet's monitor (median of 3), ms.
    pub(crate) fleet_ms: u128,
    /// Its peak RSS.
    pub(crate) fleet_rss_kb: i64,
    /// Statements of one database's monitor.
    pub(crate) one_statements: u64,
    /// The least any fleet run pays: one connection to each database and
    /// `select 1`, from one process, 8 at a time (median of 3), ms.
    pub(crate) connect_ms: u128,
    /// Statements of each target in the fleet run (fewest, most); both
    /// counts without the session-state probe's looks for a process to end.
    pub(crate) per_target_statements: (u64, u64),
}

/// 50 databases of 4 tenant tables on the one server, applied; then one
/// database's monitor against `monitor --targets` over all of them (the
/// default concurrency, 8).
pub(crate) async fn fleet(sandbox: &Sandbox, postgres: &Db, rlsctl: &str) -> Result<FleetResult> {
    let tables = 4;
    let target = target(tables)?;
    let mut file = String::from("[defaults]\nhost = \"127.0.0.1\"\n");
    file.push_str(&format!("port = {}\n", sandbox.port));
    for i in 0..FLEET {
        let dbname = format!("fleet_{i}");
        let admin = database_with_tables(sandbox, postgres, &dbname, tables, 100).await?;
        let outcome = apply(&admin, &target, &apply_options(false)).await?;
        if !outcome.applied {
            bail!("apply did not apply to {dbname}");
        }
        admin.simple("ANALYZE").await?;
        file.push_str(&format!(
            "[[target]]\nname = \"{dbname}\"\ndatabase = \"{dbname}\"\n"
        ));
    }
    let targets = tempfile::NamedTempFile::new()?;
    std::fs::write(targets.path(), file)?;
    let targets_path = targets.path().display().to_string();

    let mut one = Vec::new();
    for _ in 0..5 {
        one.push(run_rlsctl(sandbox, rlsctl, "fleet_0", &target, MONITOR)?);
    }
    one.sort_by_key(|r| r.ms);
    let one_statements = statements(&one[2].log).first().copied().unwrap_or_default();
    let mut args = MONITOR.to_vec();
    args.extend(["--targets", targets_path.as_str()]);
    let mut runs = Vec::new();
    for _ in 0..3 {
        runs.push(run_rlsctl(sandbox, rlsctl, "fleet_0", &target, &args)?);
    }
    let mut connects = Vec::new();
    for _ in 0..3 {
        connects.push(connect_to_each(sandbox, FLEET).await?);
    }
    connects.sort();
    let fleet_rss_kb = runs.iter().map(|r| r.rss_kb).max().unwrap_or(0);
    runs.sort_by_key(|r| r.ms);
    let counts = statements(&runs[1].log);
    if counts.len() != FLEET {
        bail!("{} targets reported statements, not {FLEET}", counts.len());
    }
    Ok(FleetResult {
        one_ms: one[2].ms,
        fleet_ms: runs[1].ms,
        fleet_rss_kb,
        one_statements,
        connect_ms: connects[1],
        per_target_statements: (
            counts.iter().copied().min().unwrap_or(0),
            counts.iter().copied().max().unwrap_or(0),
        ),
    })
}

/// The statement count of every "monitor done" line of a JSON log, less the
/// session-state probe's statements that depend on the server's load (its
/// looks for its closed connection's process to end: one on an idle server).
fn statements(log: &str) -> Vec<u64> {
    log.lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|l| l["fields"]["message"] == "monitor done")
        .filter_map(|l| {
            let fields = &l["fields"];
            Some(fields["statements"].as_u64()? - fields["probe_waits"].as_u64()?)
        })
        .collect()
}

/// Wall (ms) of one scram-authenticated connection as the app role to each
/// of the first `count` fleet databases, `select 1` on it, 8 at a time.
async fn connect_to_each(sandbox: &Sandbox, count: usize) -> Result<u128> {
    let limit = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
    let started = Instant::now();
    let mut connections = tokio::task::JoinSet::new();
    for i in 0..count {
        let options = sandbox.connect_options(
            &format!("fleet_{i}"),
            "app_user",
            &rlsctl::model::secret::Secret::new(crate::APP_PASSWORD),
        );
        let limit = limit.clone();
        connections.spawn(async move {
            let _slot = limit.acquire_owned().await?;
            let db = rlsctl::pg::connect(&options).await?;
            db.simple("select 1").await?;
            anyhow::Ok(())
        });
    }
    while let Some(done) = connections.join_next().await {
        done??;
    }
    Ok(started.elapsed().as_millis())
}
