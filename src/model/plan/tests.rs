//! The plan for databases built in code: what apply creates, changes and leaves.

use super::*;
use crate::model::config::POLICY_NAME;
use crate::model::fixture::{policy, sound, target};
use crate::model::shadow::Dirt;

/// `sound()` with a second table, `invoices`, both in shadow mode since
/// `since` (seconds since the epoch).
fn two_in_shadow(since: i64) -> Snapshot {
    let mut snap = sound();
    let mut invoices = snap.tables[0].clone();
    invoices.name = "invoices".into();
    invoices.display = "public.invoices".into();
    snap.tables.push(invoices);
    let admin_policy = snap
        .policies
        .iter()
        .find(|p| p.name != POLICY_NAME)
        .cloned()
        .unwrap();
    snap.policies.clear();
    for table in ["orders", "invoices"] {
        let display = format!("public.{table}");
        let shadow = |access| {
            crate::model::policy::shadow_predicate(
                "tenant_id",
                "integer",
                "app.tenant_id",
                &display,
                access,
            )
        };
        snap.policies.push(crate::model::snapshot::Policy {
            table: display.clone(),
            check: Some(shadow(crate::model::policy::Access::Write)),
            ..policy(
                POLICY_NAME,
                &["app_user"],
                &shadow(crate::model::policy::Access::Read),
                true,
            )
        });
        snap.policies.push(crate::model::snapshot::Policy {
            table: display.clone(),
            ..admin_policy.clone()
        });
        let mut installed = snap.bundle.registry[0].clone();
        installed.table = table.into();
        installed.policy_since = Some(since);
        snap.bundle.registry.retain(|r| r.table != table);
        snap.bundle.registry.push(installed);
    }
    snap.reindexed()
}

fn target_of_two() -> crate::model::config::Target {
    let mut target = target();
    target.tables = vec!["orders".into(), "invoices".into()];
    target
}

#[test]
fn enforce_names_the_tables_and_leaves_the_others_as_they_are() {
    let snap = two_in_shadow(0);
    let staged = Enforcement::Staged {
        enforce: vec!["orders".into()],
        shadow: Vec::new(),
    };
    let modes = staged.modes(&snap);
    assert_eq!(modes, [Mode::Enforce, Mode::Shadow]);
    let plan = build(
        &target_of_two(),
        &snap,
        &RoleInputs::default(),
        &modes,
        false,
    );
    let tables: Vec<&Item> = plan.items.iter().filter(|i| i.table.is_some()).collect();
    assert_eq!(
        tables[0].mode,
        Some(ModeChange {
            before: TableMode::Shadow,
            after: TableMode::Enforced
        })
    );
    assert!(!tables[0].statements.is_empty());
    assert!(tables[1].statements.is_empty(), "{:?}", tables[1]);
    // The shadow function stays: invoices still calls it.
    assert!(!plan.statements().any(|s| s
        .shown
        .contains("REVOKE EXECUTE ON FUNCTION rlsctl.shadow_seen")));
    // Enforcing the last one revokes it.
    let all = Enforcement::Staged {
        enforce: vec!["orders".into(), "invoices".into()],
        shadow: Vec::new(),
    };
    let mut snap = snap;
    snap.bundle.shadow_executable = true;
    let plan = build(
        &target_of_two(),
        &snap,
        &RoleInputs::default(),
        &all.modes(&snap),
        false,
    );
    assert!(plan.statements().any(|s| s
        .shown
        .contains("REVOKE EXECUTE ON FUNCTION rlsctl.shadow_seen")));
}

#[test]
fn enforce_clean_enforces_only_tables_watched_the_whole_time_without_a_record() {
    let cutoff = 1_000;
    let mut dirty = BTreeMap::new();
    dirty.insert(
        "public.orders".to_string(),
        Dirt {
            records: 3,
            first_query: "SELECT count(*) FROM orders".into(),
        },
    );
    let clean = Enforcement::Clean(Since {
        cutoff,
        label: "7d ago".into(),
        dirty,
    });
    // Both in shadow mode since before the cutoff: orders is dirty.
    let snap = two_in_shadow(cutoff - 1);
    assert_eq!(clean.modes(&snap), [Mode::Shadow, Mode::Enforce]);
    let why = clean.why(&snap);
    assert!(
        why["orders"].contains("3 record(s) since 7d ago"),
        "{why:?}"
    );
    assert!(why["invoices"].contains("clean since 7d ago"), "{why:?}");
    // In shadow mode only since after the cutoff: not watched long enough.
    let snap = two_in_shadow(cutoff + 1);
    assert_eq!(clean.modes(&snap), [Mode::Shadow, Mode::Shadow]);
    assert!(clean.why(&snap)["invoices"].contains("only since"));
    // Enforced already stays enforced; a record never makes it shadow.
    let snap = sound();
    assert_eq!(clean.modes(&snap), [Mode::Enforce]);
}

#[test]
fn a_staged_apply_leaves_a_table_under_break_glass_alone() {
    let mut snap = two_in_shadow(0);
    snap.tables[1].rls = false;
    snap.bundle
        .open_break_glass
        .push(crate::model::snapshot::BreakGlass {
            tables: vec!["public.invoices".into()],
            started_by: "postgres".into(),
            started_at: "now".into(),
            reason: "INC-1".into(),
        });
    let staged = Enforcement::Staged {
        enforce: vec!["orders".into()],
        shadow: Vec::new(),
    };
    let modes = staged.modes(&snap);
    assert_eq!(modes, [Mode::Enforce, Mode::Keep]);
    let plan = build(
        &target_of_two(),
        &snap,
        &RoleInputs::default(),
        &modes,
        false,
    );
    let invoices = plan.items.iter().find(|i| i.table == Some(1)).unwrap();
    assert!(
        invoices.statements.is_empty(),
        "RLS is not turned back on: {invoices:?}"
    );
    // A plain apply (every table) restores it, as before.
    let plan = build(
        &target_of_two(),
        &snap,
        &RoleInputs::default(),
        &Enforcement::All.modes(&snap),
        false,
    );
    let invoices = plan.items.iter().find(|i| i.table == Some(1)).unwrap();
    assert!(!invoices.statements.is_empty());
}
