//! Every rule on snapshots built in code: a database that is right (as apply
//! leaves it, with what real databases also have: an extension's SECURITY
//! DEFINER function, a reporting role, an app-owned trigger function) passes
//! every rule; each test breaks exactly one thing and sees exactly its rule fail.

use super::fixture::*;
use super::*;
use crate::model::batches::Batching;
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

#[test]
fn role001_connected_as_another_role() {
    only("ROLE001", |s| s.session.session_user = "postgres".into());
}

#[test]
fn role002_the_app_role_is_a_superuser() {
    only("ROLE002", |s| s.app.superuser = true);
}

#[test]
fn role003_the_app_role_has_bypassrls() {
    only("ROLE003", |s| s.app.bypassrls = true);
}

#[test]
fn role004_pre012_the_app_role_reaches_every_row() {
    // apply's pre-flight refuses the same fact (PRE012).
    exactly(&["ROLE004", "PRE012"], |s| {
        let through = Reacher {
            role: "app_user".into(),
            login: true,
            path: vec!["app_user".into(), "tenant_admin".into()],
            reads_as_itself: false,
            ..break_glass_reacher()
        };
        s.reach.push(through.clone());
        s.bundle.recorded_reach.as_mut().unwrap().push(through);
    });
}

#[test]
fn role005_the_app_role_owns_an_unforced_table() {
    let mut snap = sound();
    snap.tables[0].app_owns = true;
    snap.tables[0].force = false;
    let failing = failing(&everything(&snap));
    for id in ["ROLE005", "RLS002", "ROLE008"] {
        assert!(failing.contains(&id), "{failing:?}");
    }
}

#[test]
fn role006_a_default_for_the_tenant_setting() {
    only("ROLE006", |s| {
        s.app_reach.setting_defaults = vec!["role app_user: app.tenant_id=1".into()]
    });
}

#[test]
fn role007_truncate_for_the_app_role() {
    only("ROLE007", |s| {
        s.tables[0].app_forbidden_privileges = vec!["TRUNCATE".into()]
    });
}

#[test]
fn role007_by_default_privileges() {
    only("ROLE007", |s| {
        s.app_reach.default_privileges = vec!["TRUNCATE for app_user in public".into()]
    });
}

#[test]
fn role008_the_app_role_is_a_member_of_the_owner() {
    only("ROLE008", |s| s.tables[0].app_owns = true);
}

#[test]
fn role009_createrole_within_reach() {
    only("ROLE009", |s| {
        s.app_reach.createrole_roles = vec![CreateroleRole {
            name: "app_user".into(),
            granted: None,
        }]
    });
}

#[test]
fn role009_remedy_for_a_reached_role_is_the_revoke() {
    // The app role in the RDS master's group: the master keeps CREATEROLE,
    // the grant goes.
    let mut snap = sound();
    snap.app_reach.createrole_roles = vec![CreateroleRole {
        name: "postgres".into(),
        granted: Some("postgres".into()),
    }];
    let findings = everything(&snap);
    let role009 = findings.iter().find(|f| f.id == ROLE009.id).unwrap();
    assert_eq!(
        role009.remedy.as_deref(),
        Some("REVOKE \"postgres\" FROM \"app_user\"")
    );
}

#[test]
fn role010_default_select_for_the_app_role() {
    only("ROLE010", |s| {
        s.app_reach.default_select =
            vec!["app_user for objects of app_owner in schema public".into()]
    });
}

#[test]
fn role007_default_select_for_public() {
    only("ROLE007", |s| {
        s.app_reach.default_privileges = vec!["PUBLIC for objects of app_owner: SELECT".into()]
    });
}

#[test]
fn rls010_a_key_between_tenant_tables_without_the_tenant_column() {
    only("RLS010", |s| {
        s.foreign_keys.push(ForeignKey {
            kind: ForeignKeyKind::Cross,
            table: "public.invoices".into(),
            name: "invoices_order_id_fkey".into(),
            ..foreign_keys()[0].clone()
        })
    });
}

#[test]
fn byp008_a_rule_the_app_fires_reads_as_an_owner_past_the_policies() {
    only("BYP008", |s| s.rules[0].owner_bypasses = true);
    // The owner reads past the policies as a superuser would.
    only("BYP008", |s| s.rules[0].owner = "tenant_admin".into());
}

#[test]
fn byp008_a_rule_the_app_cannot_fire_passes() {
    let mut snap = sound();
    snap.rules[0].owner_bypasses = true;
    snap.rules[0].app_fires = false;
    assert_eq!(failing(&everything(&snap)), Vec::<&str>::new());
}

#[test]
fn drf004_server_paths_an_older_rlsctl_did_not_record_are_not_drift() {
    // The baseline an older rlsctl recorded: no role below row security.
    let mut snap = sound();
    snap.bundle
        .recorded_reach
        .as_mut()
        .unwrap()
        .retain(|r| !r.kind.below_row_security());
    assert_eq!(failing(&everything(&snap)), Vec::<&str>::new());
    // A role that can log in is drift all the same.
    snap.reach.push(Reacher {
        role: "replicator".into(),
        login: true,
        path: vec!["replicator".into()],
        reason: "REPLICATION (a base backup or logical decoding reads every row)".into(),
        ..server_program_reacher()
    });
    assert_eq!(failing(&everything(&snap)), vec!["DRF004"]);
}

#[test]
fn role004_the_app_role_can_run_server_programs() {
    exactly(&["ROLE004", "PRE012"], |s| {
        let member = Reacher {
            role: "app_user".into(),
            login: true,
            path: vec!["app_user".into(), "pg_execute_server_program".into()],
            ..server_program_reacher()
        };
        s.reach.push(member.clone());
        s.bundle.recorded_reach.as_mut().unwrap().push(member);
    });
}

#[test]
fn rls001_rls_disabled() {
    only("RLS001", |s| s.tables[0].rls = false);
}

#[test]
fn rls002_not_forced() {
    only("RLS002", |s| s.tables[0].force = false);
}

#[test]
fn rls003_a_lookalike_predicate() {
    let mut snap = sound();
    snap.policies[0].using_builtin = false;
    let findings = everything(&snap.reindexed());
    let failing = failing(&findings);
    assert!(failing.contains(&"RLS003"), "{failing:?}");
    let rls003 = findings.iter().find(|f| f.id == "RLS003").unwrap();
    assert!(
        rls003.detail.contains("reads like the isolation predicate"),
        "{}",
        rls003.detail
    );
}

#[test]
fn rls004_a_write_policy_without_a_tenant_check() {
    // A policy that appeared after apply is drift as well.
    exactly(&["RLS004", "DRF002"], |s| {
        let mut insert = policy("insert_any", &["app_user"], "true", true);
        insert.cmd = Command::Insert;
        insert.using = None;
        s.policies.push(insert);
    });
}

/// The coverage rules alone, on a snapshot whose one policy is `isolation`
/// (a user's, not the bundle's: drift has nothing to compare it with).
fn coverage_of(isolation: Policy) -> Vec<Finding> {
    let mut snap = sound();
    snap.policies
        .retain(|p| p.name != crate::model::config::POLICY_NAME);
    snap.policies.push(isolation);
    snap.uncovered = vec![("public.invoices".into(), true)];
    let mut invoices = snap.policies.last().cloned().unwrap();
    invoices.table = "public.invoices".into();
    snap.policies.push(invoices);
    let snap = snap.reindexed();
    let mut findings = Findings::default();
    for rule in &coverage::RULES {
        rule(&snap, &target(), &mut findings);
    }
    findings.0
}

/// The forms PostgreSQL stores for what people write pass RLS003 to RLS006:
/// the recommended scalar-subquery form, and a USING-only FOR ALL policy
/// (PostgreSQL checks new rows with its USING).
#[test]
fn rls003_to_rls006_pass_the_forms_people_write() {
    const SUBQUERY: &str = "(tenant_id = ( SELECT (current_setting('app.tenant_id'::text, true))::integer AS current_setting))";
    let mut subquery = policy("tenant_policy", &["app_user"], SUBQUERY, true);
    subquery.check = None;
    let mut update_only = policy("tenant_policy", &["app_user"], PREDICATE, true);
    update_only.check = None;
    for isolation in [subquery, update_only] {
        let findings = coverage_of(isolation.clone());
        assert_eq!(
            failing(&findings),
            Vec::<&str>::new(),
            "{isolation:?}: {findings:#?}"
        );
    }
    // USING that does not scope, checked as WITH CHECK, fails RLS004 by name.
    let mut open = policy("tenant_policy", &["app_user"], "true", true);
    open.check = None;
    let findings = coverage_of(open);
    let rls004 = findings
        .iter()
        .find(|f| f.id == "RLS004" && f.status == Status::Fail)
        .unwrap();
    assert!(
        rls004.detail.contains("USING (checked as WITH CHECK) true"),
        "{}",
        rls004.detail
    );
}

/// A policy rlsctl cannot read is said so, and nothing advises dropping it.
#[test]
fn rls005_never_advises_dropping_what_it_cannot_read() {
    let mut snap = sound();
    snap.policies.push(policy(
        "by_lookup",
        &["app_user"],
        "(tenant_id = ( SELECT t.id FROM tenants t WHERE (t.name = CURRENT_USER)))",
        true,
    ));
    let findings = everything(&snap.reindexed());
    let rls005 = findings.iter().find(|f| f.id == "RLS005").unwrap();
    assert_eq!(rls005.status, Status::Fail);
    assert!(
        rls005.detail.contains("rlsctl cannot read"),
        "{}",
        rls005.detail
    );
    let remedy = rls005.remedy.as_deref().unwrap();
    assert!(!remedy.contains("DROP POLICY"), "{remedy}");
}

#[test]
fn rls005_a_permissive_policy_that_widens() {
    let mut snap = sound();
    snap.policies
        .push(policy("reporting", &["public"], "true", true));
    let failing = failing(&everything(&snap.reindexed()));
    assert!(failing.contains(&"RLS005"), "{failing:?}");
}

#[test]
fn rls007_null_tenant_rows() {
    only("RLS007", |s| {
        s.bundle.null_counts = Some(vec![("public.orders".into(), Some(3))])
    });
}

#[test]
fn rls008_shadow_mode() {
    let mut snap = sound();
    let shadow =
        format!("({PREDICATE} OR rlsctl.shadow_seen('public.orders'::text, 'read'::text))");
    snap.policies[0].using = Some(shadow.clone());
    snap.policies[0].check = Some(shadow);
    snap.bundle.shadow_executable = true;
    let failing = failing(&everything(&snap.reindexed()));
    assert!(failing.contains(&"RLS008"), "{failing:?}");
}

#[test]
fn byp001_a_view_over_the_owners_rights() {
    only("BYP001", |s| {
        s.relations.push(Relation {
            name: "public.all_orders".into(),
            bare_name: "all_orders".into(),
            app_can_select: true,
            kind: RelationKind::View,
            owner: "tenant_admin".into(),
            owner_bypasses: false,
            security_invoker: false,
            reads: vec!["public.orders".into()],
            definition_md5: "1a2b".into(),
        })
    });
}

#[test]
fn byp001_a_security_invoker_view_passes() {
    let mut snap = sound();
    snap.relations.push(Relation {
        name: "public.my_orders".into(),
        bare_name: "my_orders".into(),
        app_can_select: true,
        kind: RelationKind::View,
        owner: "tenant_admin".into(),
        owner_bypasses: false,
        security_invoker: true,
        reads: vec!["public.orders".into()],
        definition_md5: "1a2b".into(),
    });
    assert_eq!(failing(&everything(&snap)), Vec::<&str>::new());
}

#[test]
fn byp002_a_materialized_view() {
    only("BYP002", |s| {
        s.relations.push(Relation {
            name: "public.order_totals".into(),
            bare_name: "order_totals".into(),
            app_can_select: true,
            kind: RelationKind::MaterializedView,
            owner: "postgres".into(),
            owner_bypasses: false,
            security_invoker: false,
            reads: vec!["public.orders".into()],
            definition_md5: "1a2b".into(),
        })
    });
}

#[test]
fn byp003_a_definer_function_of_a_reacher_reads_tenant_rows() {
    only("BYP003", |s| {
        s.functions.push(Function {
            security_definer: true,
            owner: "tenant_admin".into(),
            source: "SELECT count(*) FROM orders".into(),
            ..function("count_all_orders")
        })
    });
}

#[test]
fn byp004_a_definer_function_without_search_path() {
    only("BYP004", |s| {
        s.functions.push(Function {
            security_definer: true,
            search_path: None,
            app_can_execute: false,
            ..function("housekeeping")
        })
    });
}

#[test]
fn byp004_a_definer_search_path_that_does_not_end_with_pg_temp() {
    // Unless the path names it, pg_temp is searched first for relations.
    for path in ["public", "\"\"", "pg_temp, public", "pg_catalog, public"] {
        only("BYP004", |s| {
            s.functions.push(Function {
                security_definer: true,
                search_path: Some(path.into()),
                app_can_execute: false,
                ..function("housekeeping")
            })
        });
    }
    for path in [
        "pg_catalog, pg_temp",
        "public, \"pg_temp\"",
        "\"$user\", public, PG_TEMP",
    ] {
        let mut snap = sound();
        snap.functions.push(Function {
            security_definer: true,
            search_path: Some(path.into()),
            app_can_execute: false,
            ..function("housekeeping")
        });
        assert_eq!(failing(&everything(&snap)), Vec::<&str>::new(), "{path}");
    }
}

#[test]
fn byp005_a_leakproof_function() {
    only("BYP005", |s| {
        s.functions.push(Function {
            leakproof: true,
            ..function("cheap_eq")
        })
    });
}

#[test]
fn byp006_a_partition_without_rls() {
    only("BYP006", |s| {
        s.children.push(Child {
            name: "public.orders_2026".into(),
            parent: "public.orders".into(),
            rls: false,
            force: false,
        })
    });
}

#[test]
fn byp007_a_role_that_can_rewrite_the_records() {
    only("BYP007", |s| {
        s.bundle
            .writers
            .push(("etl".into(), "etl can UPDATE rlsctl.tenant_tables".into()))
    });
}

#[test]
fn byp007_the_shadow_function_callable_outside_shadow_mode() {
    only("BYP007", |s| s.bundle.shadow_executable = true);
}

#[test]
fn prf001_pre006_no_tenant_index() {
    let mut snap = sound();
    snap.tables[0].has_tenant_index = false;
    // The same fact before the cutover (PRE006) and after it (PRF001).
    assert_eq!(failing(&everything(&snap)), vec!["PRF001", "PRE006"]);
}

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
