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

/// Renders section `step` with `{{key}}` replaced by the given SQL fragments
/// (already quoted by the caller). Panics on an unknown step or a placeholder
/// left unfilled: both are programming errors that the unit tests catch.
pub fn render(step: &str, values: &[(&str, &str)]) -> String {
    let mut text = sections()
        .get(step)
        .unwrap_or_else(|| panic!("no SQL step named {step}"))
        .clone();
    for (key, value) in values {
        text = text.replace(&format!("{{{{{key}}}}}"), value);
    }
    assert!(
        !text.contains("{{"),
        "SQL step {step} has an unfilled placeholder: {text}"
    );
    text
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
}
