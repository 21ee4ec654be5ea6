//! The drift rules (DRF), each broken alone on an applied database.

use super::*;

#[test]
fn drf001_never_applied() {
    let mut snap = sound();
    snap.bundle = Bundle::default();
    let findings = everything(&snap);
    let drf001 = findings.iter().find(|f| f.id == "DRF001").unwrap();
    assert_eq!(drf001.status, Status::Fail);
    // The others are skipped by name, DRF007 still runs.
    let drf007 = findings.iter().find(|f| f.id == "DRF007").unwrap();
    assert_eq!(drf007.status, Status::Pass);
    for id in ["DRF002", "DRF006", "DRF008", "DRF010"] {
        let finding = findings.iter().find(|f| f.id == id).unwrap();
        assert_eq!(finding.status, Status::Skip, "{id}");
    }
}

#[test]
fn drf002_the_policy_changed() {
    only("DRF002", |s| {
        s.policies[0].roles = vec!["app_user".into(), "reporting".into()]
    });
}

#[test]
fn drf002_a_permissive_policy_apply_kept_is_drift_only_once_it_changed() {
    let kept = || policy("own_rows", &["app_user"], PREDICATE, true);
    // Not recorded: it appeared after apply.
    only("DRF002", |s| s.policies.push(kept()));
    // Recorded as apply found it: there before, not drift.
    let recorded = RecordedPolicy {
        table: "public.orders".into(),
        name: "own_rows".into(),
        using: Some(PREDICATE.into()),
        check: Some(PREDICATE.into()),
        disposition: "kept".into(),
    };
    let mut snap = sound();
    snap.policies.push(kept());
    snap.bundle.recorded_existing = Some(vec![recorded.clone()]);
    let snap = snap.reindexed();
    assert_eq!(failing(&everything(&snap)), Vec::<&str>::new());
    // Changed since: drift, saying it was there at apply.
    let mut changed = snap.clone();
    changed.policies.last_mut().unwrap().check = Some("(tenant_id > 0)".into());
    let changed = changed.reindexed();
    let findings = everything(&changed);
    let drf002: Vec<&Finding> = findings
        .iter()
        .filter(|f| f.id == DRF002.id && f.status == Status::Fail)
        .collect();
    assert_eq!(drf002.len(), 1, "{drf002:#?}");
    assert!(drf002[0].detail.contains("present at apply"), "{drf002:#?}");
}

#[test]
fn remedies_during_break_glass_say_restore() {
    let mut snap = sound();
    snap.tables[0].rls = false;
    snap.bundle.open_break_glass.push(BreakGlass {
        tables: vec!["public.orders".into()],
        started_by: "oncall".into(),
        started_at: "2026-11-27 03:00".into(),
        reason: "INC-1".into(),
    });
    let mut findings = Findings(everything(&snap));
    remedy_break_glass(&snap, &mut findings);
    let rls001 = findings.0.iter().find(|f| f.id == RLS001.id).unwrap();
    assert_eq!(
        rls001.remedy.as_deref(),
        Some("rlsctl rollback --restore (break-glass since 2026-11-27 03:00 by oncall: INC-1)")
    );
}

#[test]
fn drf003_break_glass_is_open() {
    only("DRF003", |s| {
        s.bundle.open_break_glass.push(BreakGlass {
            tables: vec!["public.orders".into()],
            started_by: "oncall".into(),
            started_at: "2026-11-27 03:00".into(),
            reason: "incident 42".into(),
        })
    });
}

#[test]
fn drf004_a_role_joined_the_reach_set() {
    only("DRF004", |s| {
        s.reach.push(Reacher {
            role: "reporting".into(),
            login: true,
            path: vec!["reporting".into(), "tenant_admin".into()],
            reads_as_itself: false,
            ..break_glass_reacher()
        })
    });
}

#[test]
fn drf004_a_reacher_gained_login() {
    only("DRF004", |s| s.reach[0].login = true);
}

#[test]
fn drf004_a_role_name_with_a_comma_is_one_role() {
    let mut snap = sound();
    let odd = Reacher {
        role: "ops, oncall".into(),
        path: vec!["ops, oncall".into(), "tenant_admin".into()],
        ..break_glass_reacher()
    };
    snap.reach.push(odd.clone());
    snap.bundle.recorded_reach.as_mut().unwrap().push(odd);
    assert_eq!(failing(&everything(&snap)), Vec::<&str>::new());
}

#[test]
fn drf005_the_helper_was_replaced() {
    only("DRF005", |s| s.functions[0].source = "SELECT 0".into());
}

#[test]
fn drf006_a_configured_table_not_installed() {
    only("DRF006", |s| s.bundle.registry.clear());
}

#[test]
fn drf007_an_object_planted_in_the_schema() {
    // Drift now, and a refusal of the next apply.
    exactly(&["DRF007", "PRE008"], |s| {
        s.bundle.foreign_objects = vec!["trigger planted on rlsctl.tenant_tables".into()]
    });
}

#[test]
fn drf008_the_registry_was_edited() {
    only("DRF008", |s| {
        s.bundle.registry_checksum = Some((Some("c0ffee".into()), "deadbeef".into()))
    });
}

#[test]
fn drf009_the_break_glass_logging_was_removed() {
    only("DRF009", |s| s.admin.settings.clear());
}

#[test]
fn drf010_a_session_as_the_break_glass_role() {
    only("DRF010", |s| {
        s.session.break_glass_sessions = vec!["pid 4242".into()]
    });
}
