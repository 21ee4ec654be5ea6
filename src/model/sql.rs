//! The embedded SQL files and their `-- step: name` sections.

include!(concat!(env!("OUT_DIR"), "/steps.rs"));

/// An RDS-shaped instance's roles, for the sandbox (`sql/demo/rds_master.sql`).
pub(crate) const DEMO_RDS_MASTER: &str = include_str!("../../sql/demo/rds_master.sql");

/// The sample schema and its seed data (`sql/demo`), for `rehearse` and the tests.
pub const DEMO_SCHEMA: &str = include_str!("../../sql/demo/schema.sql");
/// Three tenants' worth of rows for the sample schema.
pub const DEMO_SEED: &str = include_str!("../../sql/demo/seed.sql");

/// Renders `step` with its placeholders filled (see [`fill`]).
pub(crate) fn render(step: Step, values: &[(&str, &str)]) -> String {
    fill(step.template(), step.name(), values)
}

/// The one routine that fills `{{key}}` placeholders, for the bundle's steps
/// and the catalog reads alike: each replaced by its value (SQL fragments the
/// caller already quoted) in one pass over the template, so a value is data,
/// never scanned again: a name that contains `{{app_role}}` or a lone `{{`
/// stays just part of that name. `what` names the template in the panic an
/// unclosed or unfilled placeholder causes: both are programming errors in
/// the static templates, caught by the unit tests that render every step,
/// never caused by input.
pub(crate) fn fill(template: &str, what: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        out.push_str(&rest[..open]);
        let after = &rest[open + 2..];
        let close = after
            .find("}}")
            .unwrap_or_else(|| panic!("SQL {what} has an unclosed placeholder"));
        let key = &after[..close];
        let value = values
            .iter()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| *v)
            .unwrap_or_else(|| panic!("SQL {what} has an unfilled placeholder {{{{{key}}}}}"));
        out.push_str(value);
        rest = &after[close + 2..];
    }
    out.push_str(rest);
    out
}

/// The `{{placeholders}}` of a template, in order, each once.
#[cfg(test)]
fn placeholders(template: &str) -> Vec<&str> {
    let mut keys: Vec<&str> = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find("{{") {
        let after = &rest[open + 2..];
        let Some(close) = after.find("}}") else { break };
        if !keys.contains(&&after[..close]) {
            keys.push(&after[..close]);
        }
        rest = &after[close + 2..];
    }
    keys
}

/// The placeholders of the helper step.
pub(crate) fn helper_values<'a>(
    app: &'a str,
    admin: &'a str,
    policy: &'a str,
) -> [(&'a str, &'a str); 3] {
    [
        ("app_role", app),
        ("admin_role", admin),
        ("admin_policy", policy),
    ]
}

/// The helper function's body exactly as the bundle writes it (what `prosrc` holds).
pub(crate) fn helper_body() -> String {
    let policy = quote_literal(crate::model::config::ADMIN_POLICY_NAME);
    let helper = render(Step::Helper, &helper_values("x", "x", &policy));
    helper
        .split("$body$")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// The values of the shadow function's step: the app role and the tenant setting.
pub(crate) fn shadow_values<'a>(app: &'a str, setting: &'a str) -> [(&'a str, &'a str); 2] {
    [("app_role", app), ("setting", setting)]
}

/// The shadow function's body exactly as the bundle writes it for `setting`
/// (what `prosrc` holds).
pub(crate) fn shadow_body(setting: &str) -> String {
    let setting = quote_literal(setting);
    render(Step::ShadowFunction, &shadow_values("x", &setting))
        .split("$body$")
        .nth(1)
        .unwrap_or_default()
        .to_string()
}

/// Splits a rendered section into its statements (on `;` at line ends, outside
/// dollar-quoted bodies), for steps that hold several statements.
pub(crate) fn statements(text: &str) -> Vec<String> {
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

/// Quotes an identifier: `"` around, inner `"` doubled. Always quoted, so
/// reserved words, capitals and spaces survive.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// `"schema"."name"`.
pub(crate) fn qualified(schema: &str, name: &str) -> String {
    format!("{}.{}", quote_ident(schema), quote_ident(name))
}

/// A string literal with standard_conforming_strings semantics (the bundle sets
/// it on). Only for values that cannot be bound: names inside generated DDL.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {

    #[test]
    fn quoting() {
        assert_eq!(quote_ident("Work Orders"), "\"Work Orders\"");
        assert_eq!(quote_ident("a\"b"), "\"a\"\"b\"");
        assert_eq!(qualified("s", "t"), "\"s\".\"t\"");
        assert_eq!(quote_literal("O'Brien\\"), "'O''Brien\\'");
    }

    use super::*;

    #[test]
    fn every_step_renders() {
        for step in Step::ALL {
            let keys = placeholders(step.template());
            let values: Vec<(&str, &str)> = keys.iter().map(|k| (*k, "\"x\"")).collect();
            let sql = render(*step, &values);
            assert!(!sql.is_empty() && !sql.contains("{{"), "{}", step.name());
            assert!(!statements(&sql).is_empty(), "{}", step.name());
        }
        let helper = render(
            Step::Helper,
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
        render(Step::EnableRls, &[]);
    }

    #[test]
    fn values_are_never_rescanned() {
        let table = quote_ident("t{{app_role}}");
        let app = quote_ident("{{");
        let sql = render(Step::GrantApp, &[("table", &table), ("app_role", &app)]);
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
            let (qt, qr) = (quote_ident(&table), quote_ident(&role));
            let sql = render(Step::GrantApp, &[("table", &qt), ("app_role", &qr)]);
            proptest::prop_assert_eq!(
                sql,
                format!("GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE {qt} TO {qr};")
            );
            let policy = super::super::policy::predicate(&table, "text", "app.tenant_id");
            proptest::prop_assert!(policy.starts_with(&quote_ident(&table)));
        }
    }
}
