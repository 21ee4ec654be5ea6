//! Validated settings, built from the parsed flags (which already layer
//! flag > environment > `.env` > default).

use anyhow::{bail, Result};

/// PostgreSQL truncates identifiers longer than this many bytes.
const MAX_IDENTIFIER_BYTES: usize = 63;

/// The name of the isolation policy the bundle installs on every tenant table.
pub(crate) const POLICY_NAME: &str = "tenant_isolation";

/// The name of the break-glass role's policy on every tenant table: it reaches
/// every row without BYPASSRLS.
pub(crate) const ADMIN_POLICY_NAME: &str = "rlsctl_break_glass";

/// The schema that holds the bundle's own objects.
pub(crate) const BUNDLE_SCHEMA: &str = "rlsctl";

/// The bundle's NULL-tenant counting helper, in [`BUNDLE_SCHEMA`].
pub(crate) const HELPER_FUNCTION: &str = "null_tenant_counts";

/// `name` cut to PostgreSQL's identifier limit of 63 bytes, on a character
/// boundary (the server would cut it the same way, but mid-character).
pub(crate) fn truncate_identifier(name: &str) -> &str {
    let mut end = name.len().min(MAX_IDENTIFIER_BYTES);
    while !name.is_char_boundary(end) {
        end -= 1;
    }
    &name[..end]
}

/// What the bundle protects, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Schema of the tenant tables.
    pub schema: String,
    /// Tenant table names (unquoted, as in the catalog), in the configured order.
    pub tables: Vec<String>,
    /// The tenant column.
    pub tenant_column: String,
    /// The custom setting carrying the tenant, e.g. `app.tenant_id`.
    pub tenant_setting: String,
    /// The application role.
    pub app_role: String,
    /// The break-glass role.
    pub admin_role: String,
}

impl Target {
    /// Validates and normalizes the settings as given: identifiers are
    /// non-empty, NUL-free and short enough, the setting is a valid custom
    /// setting name, the roles differ; tables are trimmed and deduplicated.
    pub fn validate(self) -> Result<Self> {
        let args = self;
        check_identifier("schema", &args.schema)?;
        check_identifier("tenant column", &args.tenant_column)?;
        check_identifier("app role", &args.app_role)?;
        check_identifier("break-glass role", &args.admin_role)?;
        check_setting_name(&args.tenant_setting)?;
        if args.app_role == args.admin_role {
            bail!(
                "the app role and the break-glass role must differ (both are {:?})",
                args.app_role
            );
        }
        let mut tables: Vec<String> = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for table in &args.tables {
            let table = table.trim();
            if table.is_empty() {
                continue;
            }
            check_identifier("table", table)?;
            if seen.insert(table) {
                tables.push(table.to_string());
            }
        }
        if tables.is_empty() {
            bail!("no tenant tables configured: set --tables or RLSCTL_TENANT_TABLES");
        }
        Ok(Self { tables, ..args })
    }

    /// `schema.table` for display (not for SQL).
    pub(crate) fn display_table(&self, table: &str) -> String {
        format!("{}.{}", self.schema, table)
    }
}

fn check_identifier(what: &str, name: &str) -> Result<()> {
    if name.is_empty() {
        bail!("the {what} name is empty");
    }
    if name.contains('\0') {
        bail!("the {what} name {name:?} contains a NUL byte");
    }
    if name.len() > MAX_IDENTIFIER_BYTES {
        bail!(
            "the {what} name {:?}… is {} bytes; PostgreSQL identifiers are at most {MAX_IDENTIFIER_BYTES}",
            name.chars().take(20).collect::<String>(),
            name.len()
        );
    }
    Ok(())
}

/// Custom settings must be `prefix.name`; we accept plain identifier characters only,
/// so the name can be written as a SQL literal without any escaping question.
fn check_setting_name(name: &str) -> Result<()> {
    let valid_part = |p: &str| {
        !p.is_empty()
            && p.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            && !p.starts_with(|c: char| c.is_ascii_digit())
    };
    let parts: Vec<&str> = name.split('.').collect();
    if parts.len() < 2 || !parts.iter().all(|p| valid_part(p)) {
        bail!("the tenant setting {name:?} must look like app.tenant_id (letters, digits, _ and one or more dots)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> Target {
        Target {
            schema: "public".into(),
            tables: vec!["a".into(), " b ".into(), "a".into(), "".into()],
            tenant_column: "tenant_id".into(),
            tenant_setting: "app.tenant_id".into(),
            app_role: "app_user".into(),
            admin_role: "tenant_admin".into(),
        }
    }

    proptest::proptest! {
        /// Any settings either validate or are refused with an error; none panics,
        /// and a cut identifier is always valid UTF-8 within the limit.
        #[test]
        fn any_settings_validate_or_are_refused(
            schema in "\\PC{0,80}",
            table in "[{}$%'\"\\x00a-zé ]{0,80}",
            setting in "\\PC{0,20}",
            role in "\\PC{0,70}",
        ) {
            let _ = Target {
                schema,
                tables: vec![table.clone()],
                tenant_column: "tenant_id".into(),
                tenant_setting: setting,
                app_role: role,
                admin_role: "tenant_admin".into(),
            }
            .validate();
            proptest::prop_assert!(truncate_identifier(&table).len() <= MAX_IDENTIFIER_BYTES);
        }

    }

    #[test]
    fn identifiers_are_cut_at_63_bytes_on_a_character_boundary() {
        let long = "é".repeat(40); // 80 bytes
        let cut = truncate_identifier(&long);
        assert_eq!(cut.len(), 62);
        assert_eq!(truncate_identifier("short"), "short");
    }

    #[test]
    fn tables_are_trimmed_and_deduplicated() {
        assert_eq!(args().validate().unwrap().tables, vec!["a", "b"]);
    }

    #[test]
    fn bad_settings_are_refused() {
        for bad in ["tenant", "app.", "app.tenant'id", "app.1x"] {
            let mut a = args();
            a.tenant_setting = bad.into();
            assert!(a.validate().is_err(), "{bad}");
        }
        let mut a = args();
        a.tables = vec!["x\0y".into()];
        assert!(a.validate().is_err());
        let mut a = args();
        a.admin_role = "app_user".into();
        assert!(a.validate().is_err());
    }
}
