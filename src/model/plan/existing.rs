//! Policies on the tenant tables that apply did not create: what each one
//! is, and what apply does with it. A permissive policy stays ORed with the
//! bundle's, so one that applies to the app role and does not scope to the
//! tenant exactly as the bundle's does would keep (or open) a way round
//! isolation: apply refuses it (PRE011) unless `--replace-policies`, which
//! drops it in the cutover's transaction after recording its definition, so
//! `rollback --uninstall` recreates it exactly. A policy that shares a name
//! with one of the bundle's is never dropped unasked.

use serde::{Deserialize, Serialize};

use crate::model::config::{Target, ADMIN_POLICY_NAME, POLICY_NAME};
use crate::model::policy::form::compared_setting;
use crate::model::policy::{classify, Form};
use crate::model::snapshot::{Command, Policy, Snapshot};
use crate::model::sql::{quote_ident, quote_literal};

/// What apply does with a policy it did not create.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Disposition {
    /// Left as it is (restrictive, not for the app role, or as tight as the bundle's).
    Kept,
    /// Dropped in the cutover's transaction (`--replace-policies`), its
    /// definition recorded for `rollback --uninstall`.
    Replaced,
    /// Apply refuses while it is there (PRE011).
    Refused,
}

/// A policy on a tenant table that apply did not create, as it was found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct ExistingPolicy {
    /// `schema.table`.
    pub(crate) table: String,
    /// The table's name without the schema.
    pub(crate) table_name: String,
    /// Its name.
    pub(crate) name: String,
    /// `ALL`, `SELECT`, ...
    pub(crate) command: String,
    /// PERMISSIVE (else RESTRICTIVE).
    pub(crate) permissive: bool,
    /// Role names (`public` for PUBLIC).
    pub(crate) roles: Vec<String>,
    /// USING, as the server deparsed it.
    pub(crate) using: Option<String>,
    /// WITH CHECK, likewise.
    pub(crate) check: Option<String>,
    /// What apply does with it.
    pub(crate) disposition: Disposition,
    /// Why, in words.
    pub(crate) why: String,
}

impl ExistingPolicy {
    /// `CREATE POLICY` that makes it again, exactly (rollback --uninstall).
    pub(crate) fn create_sql(&self, schema: &str) -> String {
        let roles: Vec<String> = self
            .roles
            .iter()
            .map(|r| {
                if r == "public" {
                    "PUBLIC".into()
                } else {
                    quote_ident(r)
                }
            })
            .collect();
        let mut sql = format!(
            "CREATE POLICY {} ON {}.{} AS {} FOR {} TO {}",
            quote_ident(&self.name),
            quote_ident(schema),
            quote_ident(&self.table_name),
            if self.permissive {
                "PERMISSIVE"
            } else {
                "RESTRICTIVE"
            },
            self.command,
            roles.join(", ")
        );
        if let Some(using) = &self.using {
            sql.push_str(&format!(" USING ({using})"));
        }
        if let Some(check) = &self.check {
            sql.push_str(&format!(" WITH CHECK ({check})"));
        }
        sql
    }

    /// `DROP POLICY` for it.
    pub(crate) fn drop_sql(&self, schema: &str) -> String {
        format!(
            "DROP POLICY {} ON {}.{}",
            quote_ident(&self.name),
            quote_ident(schema),
            quote_ident(&self.table_name)
        )
    }

    /// One line for the plan: `public.tasks policy p (PERMISSIVE ALL TO public USING ...): kept, why`.
    pub(crate) fn describe(&self) -> String {
        let mut expr = String::new();
        if let Some(using) = &self.using {
            expr.push_str(&format!(" USING {using}"));
        }
        if let Some(check) = &self.check {
            expr.push_str(&format!(" WITH CHECK {check}"));
        }
        format!(
            "{} policy {} ({} {} TO {}{expr})",
            self.table,
            self.name,
            if self.permissive {
                "PERMISSIVE"
            } else {
                "RESTRICTIVE"
            },
            self.command,
            self.roles.join(", "),
        )
    }
}

/// Whether `policy` is one the bundle made: its name, on a table the
/// registry says the bundle installed.
pub(crate) fn is_bundles(snap: &Snapshot, target: &Target, policy: &Policy) -> bool {
    (policy.name == POLICY_NAME || policy.name == ADMIN_POLICY_NAME)
        && snap
            .bundle
            .registry
            .iter()
            .any(|r| target.display_table(&r.table) == policy.table)
}

/// Every policy on the configured tenant tables that apply did not create,
/// with what apply does with it (`replace`: `--replace-policies`).
pub(crate) fn existing_policies(
    snap: &Snapshot,
    target: &Target,
    replace: bool,
) -> Vec<ExistingPolicy> {
    let mut out = Vec::new();
    for table in snap
        .tables
        .iter()
        .filter(|t| t.exists && t.partition_of.is_none())
    {
        for p in snap.policies_on(&table.display) {
            if is_bundles(snap, target, p) {
                continue;
            }
            let (needs_replacing, why) = judge(target, p);
            let disposition = match (needs_replacing, replace) {
                (false, _) => Disposition::Kept,
                (true, true) => Disposition::Replaced,
                (true, false) => Disposition::Refused,
            };
            out.push(ExistingPolicy {
                table: table.display.clone(),
                table_name: table.name.clone(),
                name: p.name.clone(),
                command: p.cmd.sql().to_string(),
                permissive: p.permissive,
                roles: p.roles.clone(),
                using: p.using.clone(),
                check: p.check.clone(),
                disposition,
                why,
            });
        }
    }
    out
}

/// Whether a policy apply did not create must go before the bundle's can
/// isolate the table, and why (or why it may stay).
fn judge(target: &Target, p: &Policy) -> (bool, String) {
    let (column, setting) = (&target.tenant_column, &target.tenant_setting);
    if p.name == POLICY_NAME || p.name == ADMIN_POLICY_NAME {
        return (
            true,
            format!(
                "it has the name of the bundle's own policy {}, which apply creates in its place",
                p.name
            ),
        );
    }
    if !p.permissive {
        return (
            false,
            "restrictive: it narrows what the bundle's policy allows".into(),
        );
    }
    // A policy for PUBLIC applies to the app role apply is about to create too.
    if !p.applies_to_app && !p.roles.iter().any(|r| r == "public") {
        return (
            false,
            format!(
                "it does not apply to {}; the roles it names reach the rows it allows (listed with who reaches every row)",
                target.app_role
            ),
        );
    }
    let mut problems = Vec::new();
    let exprs = [
        (p.cmd.reads() || matches!(p.cmd, Command::Update | Command::Delete)).then_some((
            "USING",
            p.using.as_deref(),
            p.using_builtin,
        )),
        p.new_row_check()
            .map(|(c, builtin)| ("the new-row check", Some(c), builtin)),
    ];
    for (what, expr, builtin) in exprs.into_iter().flatten() {
        let Some(expr) = expr else { continue };
        match classify(expr, column, setting) {
            Form::Scoped(_) if !builtin => problems.push(format!(
                "its {what} reads like the tenant predicate but uses another column or a user-defined operator, function or type"
            )),
            Form::Scoped(scope) if scope.exact() => {}
            Form::Scoped(scope) => problems.push(format!("its {what} scopes to the tenant, but {}", scope.differences().join("; "))),
            Form::Unscoped(why) => problems.push(format!("its {what} does not restrict rows to the tenant ({why})")),
            Form::NotUnderstood(what_not) => {
                problems.push(format!("rlsctl cannot read its {what} (it stopped at {what_not})"))
            }
        }
    }
    if problems.is_empty() {
        return (
            false,
            "it scopes to the tenant as the bundle's policy does (ORed with it, it adds nothing)"
                .into(),
        );
    }
    (
        true,
        format!(
            "permissive for {}, ORed with the bundle's policy: {}",
            target.app_role,
            problems.join("; ")
        ),
    )
}

/// The remedy for a refused policy.
pub(crate) fn remedy(target: &Target, p: &ExistingPolicy) -> String {
    format!(
        "rlsctl apply --replace-policies (drops it in the same transaction and records its definition; rollback --uninstall recreates it), \
         or change it yourself first (ALTER POLICY {} ON {}.{} ..., or make it RESTRICTIVE){}",
        quote_ident(&p.name),
        quote_ident(&target.schema),
        quote_ident(&p.table_name),
        match [&p.using, &p.check]
            .into_iter()
            .flatten()
            .find_map(|e| compared_setting(e, &target.tenant_column))
            .filter(|s| s != &target.tenant_setting)
        {
            Some(other) => format!(
                "; if the app sets {}, configure it: RLSCTL_TENANT_SETTING (now {})",
                quote_literal(&other),
                quote_literal(&target.tenant_setting)
            ),
            None => String::new(),
        }
    )
}
