//! The pre-flight rules (PRE), each broken alone before apply.

use super::*;

#[test]
fn pre001_neither_superuser_nor_createrole_with_roles_missing() {
    let mut snap = sound();
    snap.session.createrole = false;
    snap.admin.exists = false;
    let failing = failing(&everything(&snap));
    assert!(failing.contains(&"PRE001"), "{failing:?}");
}

#[test]
fn pre002_a_configured_table_is_missing() {
    let mut snap = sound();
    snap.tables[0].exists = false;
    let failing = failing(&everything(&snap));
    assert!(failing.contains(&"PRE002"), "{failing:?}");
}

#[test]
fn pre003_the_session_is_not_the_owner() {
    only("PRE003", |s| s.tables[0].session_owns = false);
}

#[test]
fn pre004_a_new_app_role_without_a_password() {
    let mut snap = sound();
    snap.app.exists = false;
    let target = target();
    let mut findings = Findings::default();
    preflight::pre004(&snap, &target, &preflight::Inputs::default(), &mut findings);
    assert_eq!(failing(&findings.0), vec!["PRE004"]);
    // With a password, or IAM authentication asked for, it passes.
    for inputs in [
        preflight::Inputs {
            app_password: true,
            ..Default::default()
        },
        preflight::Inputs {
            no_app_password: true,
            ..Default::default()
        },
    ] {
        let mut findings = Findings::default();
        preflight::pre004(&snap, &target, &inputs, &mut findings);
        assert_eq!(failing(&findings.0), Vec::<&str>::new());
    }
    snap.app.exists = true;
    let mut findings = Findings::default();
    preflight::pre004(&snap, &target, &preflight::Inputs::default(), &mut findings);
    assert_eq!(failing(&findings.0), Vec::<&str>::new());
}

#[test]
fn pre005_null_tenant_rows_before_the_cutover() {
    let snap = sound();
    let target = target();
    let null_rows = [preflight::NullRows {
        table: "public.orders".into(),
        rows: 7,
    }];
    let inputs = preflight::Inputs {
        null_rows: &null_rows,
        ..Default::default()
    };
    let mut findings = Findings::default();
    preflight::pre005(&snap, &target, &inputs, &mut findings);
    assert_eq!(failing(&findings.0), vec!["PRE005"]);
}

#[test]
fn pre007_a_reader_that_loses_its_rows() {
    only("PRE007", |s| {
        s.losing_readers = vec![("backup".into(), vec!["orders".into()])]
    });
}

#[test]
fn pre008_the_schema_belongs_to_someone_else() {
    let mut snap = sound();
    snap.bundle.schema_owner = Some(("mallory".into(), false));
    let failing = failing(&everything(&snap));
    assert!(failing.contains(&"PRE008"), "{failing:?}");
}

#[test]
fn pre009_the_change_is_split_over_transactions() {
    let mut findings = Findings::default();
    let split = batching(3);
    let inputs = preflight::Inputs {
        batching: Some(&split),
        ..Default::default()
    };
    preflight::pre009(&sound(), &target(), &inputs, &mut findings);
    assert_eq!(failing(&findings.0), vec!["PRE009"]);
}

#[test]
fn pre010_break_glass_use_cannot_be_logged() {
    only("PRE010", |s| s.session.can_set_log_statement = false);
}

/// PRE011: a permissive policy of the user's, for the app role, that does not
/// scope as the bundle's does, is refused unless replaced; a restrictive one
/// is kept.
#[test]
fn pre011_a_policy_apply_did_not_create() {
    use crate::model::plan::existing::{existing_policies, Disposition};
    let mut snap = sound();
    snap.policies
        .push(policy("open_read", &["public"], "true", true));
    let mut narrowing = policy("not_archived", &["public"], "(archived IS FALSE)", true);
    narrowing.permissive = false;
    snap.policies.push(narrowing);
    let snap = snap.reindexed();
    let dispositions = |replace| -> Vec<Disposition> {
        existing_policies(&snap, &target(), replace)
            .iter()
            .map(|p| p.disposition)
            .collect()
    };
    assert_eq!(
        dispositions(false),
        [Disposition::Refused, Disposition::Kept]
    );
    assert_eq!(
        dispositions(true),
        [Disposition::Replaced, Disposition::Kept]
    );
    let existing = existing_policies(&snap, &target(), false);
    let inputs = preflight::Inputs {
        existing_policies: &existing,
        ..Default::default()
    };
    let mut findings = Findings::default();
    preflight::pre011(&snap, &target(), &inputs, &mut findings);
    assert_eq!(failing(&findings.0), ["PRE011"]);
    assert_eq!(
        findings.0[0].object.as_deref(),
        Some("public.orders policy open_read")
    );
}

#[test]
fn pre011_a_policy_for_another_setting_names_the_setting_to_configure() {
    use crate::model::plan::existing::existing_policies;
    let mut snap = sound();
    let other = PREDICATE.replace("app.tenant_id", "app.current_tenant");
    snap.policies
        .push(policy("by_current_tenant", &["app_user"], &other, true));
    let snap = snap.reindexed();
    let existing = existing_policies(&snap, &target(), false);
    let remedy = remedy_text(&existing[0]);
    assert!(
        remedy.contains("if the app sets 'app.current_tenant', configure it: RLSCTL_TENANT_SETTING (now 'app.tenant_id')"),
        "{remedy}"
    );
    // A policy that widens names no setting.
    let mut snap = sound();
    snap.policies
        .push(policy("open", &["app_user"], "true", true));
    let snap = snap.reindexed();
    let existing = existing_policies(&snap, &target(), false);
    assert!(!remedy_text(&existing[0]).contains("RLSCTL_TENANT_SETTING"));
}

fn remedy_text(p: &crate::model::plan::existing::ExistingPolicy) -> String {
    crate::model::plan::existing::remedy(&target(), p)
}

#[test]
fn pre013_rls006_a_tenant_column_table_apply_leaves_uncovered() {
    exactly(&["RLS006", "PRE013"], |s| {
        s.uncovered.push(("public.invoices".into(), false))
    });
}

#[test]
fn pre013_rls009_a_child_table_apply_leaves_uncovered() {
    exactly(&["RLS009", "PRE013"], |s| s.foreign_keys[0].covered = false);
}

#[test]
fn pre014_a_new_app_role_cannot_read_the_other_tables() {
    let mut snap = sound();
    snap.app_reach.unreadable_by_new_app = vec!["tenants".into(), "plans".into()];
    let findings = everything(&snap);
    assert_eq!(failing(&findings), ["PRE014"]);
    let pre014 = findings.iter().find(|f| f.id == PRE014.id).unwrap();
    assert_eq!(
        pre014.remedy.as_deref(),
        Some("after apply, grant what the app reads: GRANT SELECT ON \"public\".\"tenants\", \"public\".\"plans\" TO \"app_user\"")
    );
}
