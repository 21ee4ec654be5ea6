//! The tally over logs of each layout, as the server lays them out.

use super::*;
use crate::model::log::{Found, Layout, LogReader, Prefix, RDS_PREFIX};

fn watch() -> Watch {
    let table = |schema: &str, name: &str| TenantTable {
        schema: schema.into(),
        name: name.into(),
        display: format!("{schema}.{name}"),
    };
    Watch {
        tables: vec![
            table("public", "orders"),
            table("billing", "orders"),
            table("public", "customers"),
        ],
        setting: "app.tenant_id".into(),
        cutoff: None,
    }
}

fn tally(layout: &Layout, text: &str, watch: Watch) -> Vec<Group> {
    let mut found = Found::watching(Some(&watch));
    // fed a few bytes at a time: a statement split anywhere still pairs
    let mut reader = LogReader::new(layout, "test", &mut found);
    for part in text.as_bytes().chunks(7) {
        reader.feed(part).unwrap();
    }
    reader.finish().unwrap();
    found.errors.unwrap().groups()
}

/// (class, table, role, application, sqlstate, count) of each group.
fn keys(groups: &[Group]) -> Vec<(&str, &str, &str, &str, &str, u64)> {
    groups
        .iter()
        .map(|g| {
            (
                g.class.label(),
                g.table.as_str(),
                g.role.as_str(),
                g.application.as_str(),
                g.sqlstate.as_str(),
                g.count,
            )
        })
        .collect()
}

const RDS_LINES: &str = "\
2026-12-08 01:00:00 UTC:10.0.0.5(5432):app_user@shop:[101]:ERROR:  new row violates row-level security policy for table \"orders\"
2026-12-08 01:00:00 UTC:10.0.0.5(5432):app_user@shop:[101]:STATEMENT:  INSERT INTO orders (tenant_id, total)
\tVALUES ('b', 1)
2026-12-08 01:00:01 UTC:10.0.0.5(5432):app_user@shop:[102]:ERROR:  invalid input syntax for type uuid: \"\"
2026-12-08 01:00:01 UTC:10.0.0.5(5432):app_user@shop:[102]:STATEMENT:  SELECT * FROM billing.orders WHERE note = 'public.customers'
2026-12-08 01:00:02 UTC:10.0.0.5(5432):app_user@shop:[103]:ERROR:  invalid input syntax for type integer: \"\"
2026-12-08 01:00:02 UTC:10.0.0.5(5432):app_user@shop:[103]:STATEMENT:  SELECT ''::int FROM products
2026-12-08 01:00:03 UTC:10.0.0.5(5432):app_user@shop:[104]:ERROR:  unrecognized configuration parameter \"app.tenant_id\"
2026-12-08 01:00:03 UTC:10.0.0.5(5432):app_user@shop:[104]:STATEMENT:  SELECT * FROM \"customers\"
2026-12-08 01:00:04 UTC:10.0.0.5(5432):report@shop:[105]:ERROR:  permission denied for table customers
2026-12-08 01:00:05 UTC:10.0.0.5(5432):report@shop:[105]:ERROR:  permission denied for table products
2026-12-08 01:00:06 UTC:10.0.0.5(5432):app_user@shop:[106]:ERROR:  new row violates row-level security policy for table \"orders\"
";

#[test]
fn each_class_is_counted_per_table_role_and_sqlstate_from_a_plain_rds_log() {
    let layout = Layout::Plain(Prefix::new(RDS_PREFIX).unwrap());
    let groups = tally(&layout, RDS_LINES, watch());
    assert_eq!(
        keys(&groups),
        [
            ("rls_violation", "public.orders", "app_user", "", "42501", 2),
            (
                "permission_denied",
                "public.customers",
                "report",
                "",
                "42501",
                1
            ),
            // the literal 'public.customers' is no table; the cast on products is no tenant error
            ("tenant_cast", "billing.orders", "app_user", "", "22P02", 1),
            (
                "missing_setting",
                "public.customers",
                "app_user",
                "",
                "42704",
                1
            ),
        ]
    );
    let violation = &groups[0];
    assert_eq!(violation.first.as_deref(), Some("2026-12-08 01:00:00 UTC"));
    assert_eq!(violation.last.as_deref(), Some("2026-12-08 01:00:06 UTC"));
    // the statement's continuation line is part of it
    assert_eq!(
        violation.example,
        "INSERT INTO orders (tenant_id, total) VALUES ('b', 1)"
    );
}

#[test]
fn csv_and_json_entries_carry_the_application_and_sqlstate() {
    let csv = "2026-12-08 01:00:00.123 UTC,\"app_user\",\"shop\",101,\"[local]\",1.1,1,\"INSERT\",2026-12-08 01:00:00 UTC,3/1,0,ERROR,42501,\"new row violates row-level security policy for table \"\"orders\"\"\",,,,,,\"INSERT INTO orders
VALUES (1)\",,,\"web, \"\"checkout\"\"\",client backend,,0\n\
2026-12-08 01:00:01.123 UTC,\"app_user\",\"shop\",101,\"[local]\",1.1,2,\"idle\",2026-12-08 01:00:00 UTC,3/1,0,LOG,00000,\"statement: select 1\",,,,,,,,,\"web\",client backend,,0\n";
    let groups = tally(&Layout::Csv, csv, watch());
    assert_eq!(
        keys(&groups),
        [(
            "rls_violation",
            "public.orders",
            "app_user",
            "web, \"checkout\"",
            "42501",
            1
        )]
    );
    assert_eq!(groups[0].example, "INSERT INTO orders VALUES (1)");
    let json = r#"{"timestamp":"2026-12-08 01:00:00.123 UTC","user":"app_user","dbname":"shop","pid":7,"error_severity":"ERROR","state_code":"42704","message":"unrecognized configuration parameter \"app.tenant_id\"","statement":"select * from orders","application_name":"worker"}
{"timestamp":"2026-12-08 01:00:00.124 UTC","user":"app_user","error_severity":"ERROR","state_code":"42704","message":"unrecognized configuration parameter \"app.other\"","statement":"select * from orders"}
"#;
    let groups = tally(&Layout::Json, json, watch());
    assert_eq!(
        keys(&groups),
        [(
            "missing_setting",
            "public.orders",
            "app_user",
            "worker",
            "42704",
            1
        )]
    );
}

#[test]
fn a_window_counts_only_what_is_in_it_and_applications_stay_bounded() {
    let layout = Layout::Plain(Prefix::new("%m [%p] %u %a ").unwrap());
    let mut text = String::from(
        "2026-12-07 01:00:00.000 UTC [1] app_user old ERROR:  new row violates row-level security policy for table \"orders\"\n",
    );
    for i in 0..30 {
        text.push_str(&format!(
            "2026-12-08 01:00:00.000 UTC [1] app_user app{i} ERROR:  new row violates row-level security policy for table \"orders\"\n"
        ));
    }
    let mut watch = watch();
    watch.cutoff = epoch_millis("2026-12-08 00:00:00 UTC");
    let groups = tally(&layout, &text, watch);
    assert_eq!(
        groups.iter().map(|g| g.count).sum::<u64>(),
        30,
        "{groups:?}"
    );
    assert_eq!(groups.len(), MAX_APPLICATIONS + 1);
    let other = groups.iter().find(|g| g.application == "(other)").unwrap();
    assert_eq!(other.count, 30 - MAX_APPLICATIONS as u64);
}

#[test]
fn reads_with_no_tenant_come_from_shadow_records() {
    let record = |tenant: Option<&str>, access: &str| Record {
        table: "public.orders".into(),
        access: access.into(),
        tenant: tenant.map(String::from),
        query: "SELECT  *\nFROM orders".into(),
        role: "app_user".into(),
        at: "2026-12-08T01:00:00+00:00".into(),
    };
    let mut tally = Tally::new(watch());
    tally.add_records(&[
        record(None, "read"),
        record(Some("a"), "read"),
        record(None, "write"),
        record(None, "read"),
    ]);
    let groups = tally.groups();
    assert_eq!(
        keys(&groups),
        [("no_tenant", "public.orders", "app_user", "", "", 2)]
    );
    assert_eq!(groups[0].example, "SELECT * FROM orders");
}

#[test]
fn limits_default_to_zero_and_are_set_per_class_or_for_all() {
    let parse = |s: &str| s.parse::<MaxErrors>();
    assert_eq!(limits(&[])["rls_violation"], 0);
    let given = [parse("5").unwrap(), parse("rls_violation=0").unwrap()];
    let limits = limits(&given);
    assert_eq!((limits["rls_violation"], limits["tenant_cast"]), (0, 5));
    assert!(parse("leak=1").unwrap_err().contains("rls_violation"));
    assert!(parse("x").unwrap_err().contains("not a count"));
}

#[test]
fn a_long_statement_is_cut_at_a_character() {
    let example = example_of(&"é".repeat(500));
    assert_eq!(example.chars().count(), EXAMPLE_CHARS + 1);
    assert!(example.ends_with('…'));
}

#[test]
fn an_error_in_the_cutoffs_second_counts() {
    // %t writes the second: 01:00:00 may be 01:00:00.9, after the cutoff.
    let mut watch = watch();
    watch.cutoff = epoch_millis("2026-12-08 01:00:00.532 UTC");
    let mut tally = Tally::new(watch);
    for at in ["2026-12-08 01:00:00 UTC", "2026-12-08 00:59:59 UTC"] {
        tally.add(ErrorEntry {
            at: Some(at.into()),
            message: "new row violates row-level security policy for table \"orders\"".into(),
            ..ErrorEntry::default()
        });
    }
    assert_eq!(
        keys(&tally.groups()),
        [("rls_violation", "public.orders", "", "", "42501", 1)]
    );
}
