//! The catalog rules (ROLE, RLS, BYP, PRF), each broken alone.

use super::*;

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
fn ver001_a_server_without_the_latest_row_security_fixes() {
    exactly(&["VER001"], |s| s.session.server_version_num = 160009);
    let mut snap = sound();
    snap.session.server_version_num = 150008;
    let found = everything(&snap);
    let lacking: Vec<&str> = found
        .iter()
        .filter(|f| f.id == VER001.id)
        .filter_map(|f| f.object.as_deref())
        .collect();
    assert_eq!(
        lacking,
        ["CVE-2024-10976", "CVE-2024-10978", "CVE-2025-8713"]
    );
    // A database the fix script of CVE-2024-4317 missed, on a fixed server.
    exactly(&["VER001"], |s| s.session.stats_ext_private = false);
    // A major past its end of life says so, on a pass too.
    let mut old = sound();
    old.session.server_version_num = 130023;
    let found = everything(&old);
    let ver = found.iter().find(|f| f.id == VER001.id).unwrap();
    assert_eq!(ver.status, Status::Pass);
    assert!(
        ver.detail.contains("past its end of life (2025-11-13)"),
        "{}",
        ver.detail
    );
}
