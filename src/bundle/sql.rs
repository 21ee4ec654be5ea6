//! The embedded SQL files and their `-- step: name` sections.

use std::collections::HashMap;
use std::sync::OnceLock;

/// The embedded bundle files.
const FILES: &[(&str, &str)] = &[
    ("roles.sql", include_str!("../../sql/bundle/roles.sql")),
    (
        "rlsctl_schema.sql",
        include_str!("../../sql/bundle/rlsctl_schema.sql"),
    ),
    (
        "tenant_table.sql",
        include_str!("../../sql/bundle/tenant_table.sql"),
    ),
    (
        "rollback.sql",
        include_str!("../../sql/bundle/rollback.sql"),
    ),
    ("record.sql", include_str!("../../sql/bundle/record.sql")),
    ("probes.sql", include_str!("../../sql/probes/probes.sql")),
];

/// An RDS-shaped instance's roles, for the sandbox (`sql/demo/rds_master.sql`).
pub const DEMO_RDS_MASTER: &str = include_str!("../../sql/demo/rds_master.sql");

/// The sample schema and its seed data (`sql/demo`), for `rehearse` and the tests.
pub const DEMO_SCHEMA: &str = include_str!("../../sql/demo/schema.sql");
/// Three tenants' worth of rows for the sample schema.
pub const DEMO_SEED: &str = include_str!("../../sql/demo/seed.sql");

fn sections() -> &'static HashMap<&'static str, String> {
    static SECTIONS: OnceLock<HashMap<&'static str, String>> = OnceLock::new();
    SECTIONS.get_or_init(|| {
        let mut map = HashMap::new();
        for (_, text) in FILES {
            let mut current: Option<(&str, Vec<&str>)> = None;
            for line in text.lines() {
                if let Some(name) = line.strip_prefix("-- step: ") {
                    if let Some((name, body)) = current.take() {
                        map.insert(name, clean(&body));
                    }
                    current = Some((name.trim(), Vec::new()));
                } else if let Some((_, body)) = current.as_mut() {
                    body.push(line);
                }
            }
            if let Some((name, body)) = current {
                map.insert(name, clean(&body));
            }
        }
        map
    })
}

/// Drops comment-only lines and trailing blank lines; keeps the statement text as written.
fn clean(lines: &[&str]) -> String {
    let kept: Vec<&str> = lines
        .iter()
        .copied()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect();
    kept.join("\n").trim().to_string()
}

/// Renders section `step` with each `{{key}}` of the template replaced by its
/// value (SQL fragments the caller already quoted), in one pass over the
/// template: a value is data, never scanned again, so a name that contains
/// `{{app_role}}` or a lone `{{` stays just part of that name. Panics on an
/// unknown step or a placeholder with no value: both are programming errors in
/// the static templates, caught by the unit tests, never caused by input.
pub fn render(step: &str, values: &[(&str, &str)]) -> String {
    let template = sections()
        .get(step)
        .unwrap_or_else(|| panic!("no SQL step named {step}"));
    let mut out = String::with_capacity(template.len());
    let mut rest = template.as_str();
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .unwrap_or_else(|| panic!("SQL step {step} has an unclosed placeholder"));
        let key = &after[..close];
        let value = values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("SQL step {step} has an unfilled placeholder {{{{{key}}}}}"));
        out.push_str(value);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

/// The placeholders of the helper step.
pub fn helper_values<'a>(app: &'a str, admin: &'a str, policy: &'a str) -> [(&'a str, &'a str); 3] {
    [
        ("app_role", app),
        ("admin_role", admin),
        ("admin_policy", policy),
    ]
}

/// The helper function's body exactly as the bundle writes it (what `prosrc` holds).
pub fn helper_body() -> String {
    let policy = crate::db::quote_literal(crate::config::ADMIN_POLICY_NAME);
    let helper = render("helper", &helper_values("x", "x", &policy));
    helper
        .split("$body$")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// The values of the shadow function's step: the app role and the tenant setting.
pub fn shadow_values<'a>(app: &'a str, setting: &'a str) -> [(&'a str, &'a str); 2] {
    [("app_role", app), ("setting", setting)]
}

/// The shadow function's body exactly as the bundle writes it for `setting`
/// (what `prosrc` holds).
pub fn shadow_body(setting: &str) -> String {
    let setting = crate::db::quote_literal(setting);
    render("shadow_function", &shadow_values("x", &setting))
        .split("$body$")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// Splits a rendered section into its statements (on `;` at line ends, outside
/// dollar-quoted bodies), for steps that hold several statements.
pub fn statements(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_body = false;
    for line in text.lines() {
        if line.matches("$body$").count() % 2 == 1 {
            in_body = !in_body;
        }
        current.push_str(line);
        current.push('\n');
        if !in_body && line.trim_end().ends_with(';') {
            out.push(current.trim().trim_end_matches(';').to_string());
            current.clear();
        }
    }
    if !current.trim().is_empty() {
        out.push(current.trim().trim_end_matches(';').to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_step_parses() {
        for step in [
            "create_app_role",
            "schema",
            "helper",
            "create_policy",
            "predicate",
            "uninstall_schema",
        ] {
            assert!(sections().contains_key(step), "{step}");
        }
        let helper = render(
            "helper",
            &[
                ("app_role", "\"a\""),
                ("admin_role", "\"b\""),
                ("admin_policy", "'p'"),
            ],
        );
        let parts = statements(&helper);
        assert_eq!(parts.len(), 6, "{parts:#?}");
        assert!(parts[0].contains("RETURN NEXT;"));
    }

    #[test]
    #[should_panic(expected = "unfilled placeholder")]
    fn unfilled_placeholders_are_caught() {
        render("enable_rls", &[]);
    }

    #[test]
    fn values_are_never_rescanned() {
        let table = crate::db::quote_ident("t{{app_role}}");
        let app = crate::db::quote_ident("{{");
        let sql = render("grant_app", &[("table", &table), ("app_role", &app)]);
        assert_eq!(
            sql,
            "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE \"t{{app_role}}\" TO \"{{\";"
        );
    }

    proptest::proptest! {
        /// Whatever the names, rendering puts each quoted name where its
        /// placeholder was and nothing else changes; it never panics.
        #[test]
        fn any_name_renders_as_data(table in "\\PC{0,70}", role in "[{}$%'\"a-zé]{0,63}") {
            let (qt, qr) = (crate::db::quote_ident(&table), crate::db::quote_ident(&role));
            let sql = render("grant_app", &[("table", &qt), ("app_role", &qr)]);
            proptest::prop_assert_eq!(
                sql,
                format!("GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {qt} TO {qr};")
            );
            let policy = super::super::policy::predicate(&table, "text", "app.tenant_id");
            proptest::prop_assert!(policy.starts_with(&crate::db::quote_ident(&table)));
        }
    }
}
