//! Every rule on snapshots built in code: a database that is right (as apply
//! leaves it, with what real databases also have: an extension's SECURITY
//! DEFINER function, a reporting role, an app-owned trigger function) passes
//! every rule; each test breaks exactly one thing and sees exactly its rule fail.

mod catalog_rules;
mod drift_rules;
mod preflight_rules;

use super::*;
use crate::model::batches::Batching;
use crate::model::fixture::*;
use crate::model::snapshot::*;

fn batching(batches: usize) -> Batching {
    Batching {
        batches,
        batch_size: 1,
        tables: batches,
        locks_needed: 10,
        locks_available: 100,
        reason: "fits".into(),
        forced: false,
    }
}

/// Every rule on `snap`: catalog (with ROLE001), drift and pre-flight.
fn everything(snap: &Snapshot) -> Vec<Finding> {
    let target = target();
    let mut findings = Findings::default();
    run_catalog(snap, &target, true, &mut findings);
    server::ver001(snap, "", "2026-12-07", &mut findings);
    drift::run(snap, &target, &mut findings);
    let batching = batching(1);
    let inputs = preflight::Inputs {
        batching: Some(&batching),
        ..Default::default()
    };
    preflight::run(snap, &target, &inputs, &mut findings);
    findings.0
}

/// The ids that did not pass (fail or warn; a skip counts too: it proves nothing).
fn failing(findings: &[Finding]) -> Vec<&'static str> {
    let mut ids: Vec<&str> = findings
        .iter()
        .filter(|f| f.status != Status::Pass)
        .map(|f| f.id.as_str())
        .collect();
    ids.dedup();
    ids
}

/// Breaks `sound()` with `change` and asserts exactly `id` fails.
fn only(id: &str, change: impl FnOnce(&mut Snapshot)) {
    exactly(&[id], change);
}

/// Breaks `sound()` with `change` and asserts exactly `ids` fail, in order
/// (one fact some rules see from two sides).
fn exactly(ids: &[&str], change: impl FnOnce(&mut Snapshot)) {
    let mut snap = sound();
    change(&mut snap);
    let snap = snap.reindexed();
    assert_eq!(failing(&everything(&snap)), ids, "breaking it for {ids:?}");
}

#[test]
fn the_sound_database_passes_every_rule() {
    let findings = everything(&sound());
    assert_eq!(failing(&findings), Vec::<&str>::new(), "{findings:#?}");
    // Every catalog, drift and pre-flight rule ran and said so.
    for check in CATALOGUE
        .iter()
        .filter(|c| matches!(c.kind, Kind::Catalog | Kind::Drift | Kind::Preflight))
    {
        assert!(
            findings.iter().any(|f| f.id == check.id),
            "{} did not run",
            check.id
        );
    }
}
