//! The check catalogue, shared by `verify`, `monitor` and `rehearse`.
//!
//! Every check has a stable id, a title, a severity and a kind, and is
//! documented in `docs/checks.md`. Catalog, drift and pre-flight checks are
//! pure rules over an [`inspect::Snapshot`](crate::model::snapshot::Snapshot), one file
//! per family; probes talk to the database as the app would; app checks talk to
//! the application.

pub mod bypass;
pub(crate) mod coverage;
pub(crate) mod drift;
pub(crate) mod logs;
pub(crate) mod performance;
pub(crate) mod preflight;
pub(crate) mod roles;
#[cfg(test)]
mod rule_tests;
pub(crate) mod server;

use serde::Serialize;

/// How bad a failure of the check is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// A failure is a leak or a path to one: status `fail`.
    Error,
    /// A failure is a risk or a cost: status `warn`.
    Warning,
}

/// How a check gets its evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// Reads the catalog only; read-only, safe for cron.
    Catalog,
    /// Acts as the app inside a transaction that is always rolled back.
    Probe,
    /// Compares the live state with what the bundle recorded.
    Drift,
    /// Talks to the application's health endpoint.
    App,
    /// Acts on the connection path (a pooler): a session setting made on one
    /// new connection, looked for from others, and removed where seen.
    Session,
    /// What apply checks before it changes anything.
    #[serde(rename = "pre-flight")]
    Preflight,
    /// Reads the server's log (`monitor --logs`).
    Log,
}

/// The outcome of one finding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Proven.
    Pass,
    /// Broken (an error-severity check).
    Fail,
    /// At risk (a warning-severity check, or proven only vacuously).
    Warn,
    /// Not run, with the reason in `detail`.
    Skip,
    /// A problem a reviewed exception (`--accept`) accepts: reported with its
    /// reason, not counted as a failure.
    Accepted,
}

impl std::fmt::Display for CheckId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for CheckId {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// For the rules' tests, which name ids as the catalogue writes them.
#[cfg(test)]
impl PartialEq<&str> for CheckId {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}

/// A check of the catalogue.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Check {
    /// Stable id, e.g. `RLS002`.
    pub(crate) id: CheckId,
    /// One line: what it proves.
    pub(crate) title: &'static str,
    /// How bad a failure is.
    pub(crate) severity: Severity,
    /// Where the evidence comes from.
    pub(crate) kind: Kind,
}

macro_rules! catalogue {
    ($($name:ident = $id:literal, $severity:ident, $kind:ident, $title:literal;)*) => {
        $(
            #[doc = concat!("`", $id, "`: ", $title)]
            pub(crate) const $name: Check = Check { id: CheckId::$name, title: $title, severity: Severity::$severity, kind: Kind::$kind };
        )*
        /// A check's id: the catalogue's closed set, named as the catalogue
        /// and docs/checks.md write them.
        #[allow(non_camel_case_types)]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum CheckId {
            $(
                #[doc = concat!("`", $id, "`: ", $title)]
                $name,
            )*
        }

        impl CheckId {
            /// As reports write it (`RLS002`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(CheckId::$name => $id,)*
                }
            }
        }
        /// Every check, in report order.
        pub(crate) const CATALOGUE: &[Check] = &[$($name),*];
    };
}

catalogue! {
    ROLE001 = "ROLE001", Error, Catalog, "Connected as the configured app role";
    ROLE002 = "ROLE002", Error, Catalog, "The app role is not a superuser";
    ROLE003 = "ROLE003", Error, Catalog, "The app role does not have BYPASSRLS";
    ROLE004 = "ROLE004", Error, Catalog, "The app role is none of the roles that reach every row (superuser, BYPASSRLS, owner, an always-true policy, or a role that can become one)";
    ROLE005 = "ROLE005", Error, Catalog, "The app role owns no tenant table that lacks FORCE ROW LEVEL SECURITY";
    ROLE006 = "ROLE006", Error, Catalog, "No role, database or server default for the tenant setting";
    ROLE007 = "ROLE007", Error, Catalog, "The app role has no TRUNCATE, REFERENCES or TRIGGER on tenant tables, now or by default";
    ROLE008 = "ROLE008", Error, Catalog, "The app role cannot reach the owner of a tenant table";
    ROLE009 = "ROLE009", Error, Catalog, "Neither the app role nor any role it reaches has CREATEROLE";
    ROLE010 = "ROLE010", Warning, Catalog, "Tables created later are not readable by the app role by default, before RLS is on them";
    RLS001 = "RLS001", Error, Catalog, "ROW LEVEL SECURITY enabled on every tenant table";
    RLS002 = "RLS002", Error, Catalog, "FORCE ROW LEVEL SECURITY on every tenant table";
    RLS003 = "RLS003", Error, Catalog, "An isolation policy scopes reads by the tenant column to the tenant setting";
    RLS004 = "RLS004", Error, Catalog, "Every write policy has a WITH CHECK that scopes to the tenant";
    RLS005 = "RLS005", Error, Catalog, "No other permissive policy widens access for the app role";
    RLS006 = "RLS006", Error, Catalog, "Every table with the tenant column is covered";
    RLS007 = "RLS007", Error, Catalog, "No row has a NULL tenant column";
    RLS008 = "RLS008", Error, Catalog, "Isolation is enforced: no tenant table is in shadow mode";
    RLS009 = "RLS009", Error, Catalog, "Every table that references a tenant table by foreign key has the tenant column, or is covered or unreadable by the app role";
    RLS010 = "RLS010", Warning, Catalog, "Foreign keys between tenant tables include the tenant column";
    BYP001 = "BYP001", Error, Catalog, "No view readable by the app role exposes tenant tables with its owner's rights";
    BYP002 = "BYP002", Error, Catalog, "No materialized view or foreign table with tenant data is readable by the app role";
    BYP003 = "BYP003", Error, Catalog, "No SECURITY DEFINER function executable by the app role can read tenant rows past RLS, unless reviewed";
    BYP004 = "BYP004", Error, Catalog, "Every SECURITY DEFINER function pins its search_path, ending with pg_temp";
    BYP005 = "BYP005", Error, Catalog, "No user-defined LEAKPROOF function";
    BYP006 = "BYP006", Error, Catalog, "Partitions and inheritance children of tenant tables enforce RLS themselves";
    BYP007 = "BYP007", Error, Catalog, "Only the roles that apply can write the bundle's records (registry, history, break-glass log), and the shadow function is callable only in shadow mode";
    BYP008 = "BYP008", Error, Catalog, "No rule the app role can fire reads tenant tables with its owner's rights";
    VER001 = "VER001", Warning, Catalog, "The server has every known row-security fix";
    PRF001 = "PRF001", Warning, Catalog, "Every tenant table has an index led by the tenant column";
    PRF002 = "PRF002", Warning, Probe, "The policy evaluates the tenant setting once per statement";
    PRB001 = "PRB001", Error, Probe, "Fail-closed: with no tenant set, every tenant table returns no row";
    PRB002 = "PRB002", Error, Probe, "Read isolation: under each tenant, every visible row belongs to it";
    PRB003 = "PRB003", Error, Probe, "Write isolation: writing a row for another tenant is denied";
    PRB004 = "PRB004", Error, Probe, "Context scoping: a tenant set for a transaction is gone after it";
    APP001 = "APP001", Error, App, "The health endpoint reports the tenant context under RLS as the app role";
    APP002 = "APP002", Error, App, "The application rejects requests without a tenant";
    APP003 = "APP003", Error, App, "The application sends the security headers";
    APP004 = "APP004", Error, App, "Under a concurrent burst, every response carries its own request's tenant and unknown tenants see nothing";
    SES001 = "SES001", Warning, Session, "A session-level setting on one connection does not reach another client (no transaction pooling of session state)";
    DRF001 = "DRF001", Error, Drift, "The bundle is installed";
    DRF002 = "DRF002", Error, Drift, "Isolation policies are as the bundle installed them";
    DRF003 = "DRF003", Error, Drift, "No break-glass is active";
    DRF004 = "DRF004", Error, Drift, "No role joined those that reach every row (or gained LOGIN) since the bundle was applied";
    DRF005 = "DRF005", Error, Drift, "The bundle's helper function is unchanged";
    DRF006 = "DRF006", Warning, Drift, "The configured tenant tables are the installed ones";
    DRF007 = "DRF007", Error, Drift, "The rlsctl schema holds only what the bundle made, owned by who applied it";
    DRF008 = "DRF008", Error, Drift, "The installed-table registry is as the last apply wrote it";
    DRF009 = "DRF009", Error, Drift, "The break-glass role's statements are still logged as apply set it up";
    DRF010 = "DRF010", Warning, Drift, "No session is logged in as the break-glass role right now";
    LOG001 = "LOG001", Error, Log, "No tenant-context error in the server log above --max-errors (RLS violations on write, an empty or unset tenant setting, permission denied on tenant tables)";
    PRE001 = "PRE001", Error, Preflight, "The applying role may make every change the plan needs";
    PRE002 = "PRE002", Error, Preflight, "Every configured tenant table exists and has the tenant column";
    PRE003 = "PRE003", Error, Preflight, "The applying role owns every tenant table or is a member of its owner";
    PRE004 = "PRE004", Error, Preflight, "A new app role gets a password (or IAM authentication is asked for)";
    PRE005 = "PRE005", Error, Preflight, "No row has a NULL tenant column before the cutover";
    PRE006 = "PRE006", Warning, Preflight, "Every tenant table has an index led by the tenant column";
    PRE007 = "PRE007", Warning, Preflight, "Roles that read tenant tables today keep their rows after FORCE";
    PRE008 = "PRE008", Error, Preflight, "The rlsctl schema, if it exists, holds only what the bundle made, owned by the applying role";
    PRE009 = "PRE009", Warning, Preflight, "The change fits the server's lock table in one transaction";
    PRE010 = "PRE010", Warning, Preflight, "apply can log every statement of the break-glass role";
    PRE011 = "PRE011", Error, Preflight, "No policy apply did not create stays ORed with the isolation policy or is dropped unasked";
    PRE012 = "PRE012", Error, Preflight, "The app role does not already reach every row of a tenant table";
    PRE013 = "PRE013", Warning, Preflight, "apply leaves no table with tenant data uncovered (the tenant column, or a key to a tenant table)";
    PRE014 = "PRE014", Warning, Preflight, "A new app role can read what the app reads beyond the tenant tables";
}

/// The catalog checks (read-only, safe for cron): roles, coverage, bypass
/// paths, performance. `session_check`: include ROLE001 (verify).
pub fn run_catalog(
    snap: &crate::model::snapshot::Snapshot,
    target: &crate::model::config::Target,
    session_check: bool,
    findings: &mut Findings,
) {
    roles::run(snap, target, session_check, findings);
    for rule in coverage::RULES.iter().chain(&bypass::RULES) {
        rule(snap, target, findings);
    }
    performance::prf001(snap, target, findings);
}

/// [`run_catalog`] (without ROLE001) and the drift rules, as monitor runs
/// them, in the same order, on two threads: at 2,000 tables the coverage rules
/// take a few milliseconds and the rest about as long, all of it after the
/// catalog read, while the session-state probe leaves a core idle.
pub fn run_catalog_and_drift(
    snap: &crate::model::snapshot::Snapshot,
    target: &crate::model::config::Target,
    findings: &mut Findings,
) {
    let mut rest = std::thread::scope(|scope| {
        let rest = scope.spawn(|| {
            let mut rest = Findings::default();
            for rule in &bypass::RULES {
                rule(snap, target, &mut rest);
            }
            performance::prf001(snap, target, &mut rest);
            drift::run(snap, target, &mut rest);
            rest
        });
        roles::run(snap, target, false, findings);
        for rule in &coverage::RULES {
            rule(snap, target, findings);
        }
        rest.join()
    })
    .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
    findings.0.append(&mut rest.0);
}

/// During break-glass, the way back for a table it disabled is `rollback
/// --restore`, not the `ALTER TABLE` or `rlsctl apply` the checks that see
/// RLS off would advise (apply would leave the break-glass entry open).
pub(crate) fn remedy_break_glass(snap: &crate::model::snapshot::Snapshot, findings: &mut Findings) {
    const SEEN_OFF: [Check; 5] = [RLS001, RLS002, PRB001, PRB002, PRB003];
    for finding in findings
        .0
        .iter_mut()
        .filter(|f| f.status == Status::Fail && SEEN_OFF.iter().any(|c| c.id == f.id))
    {
        let entry = snap.bundle.open_break_glass.iter().find(|b| {
            b.tables
                .iter()
                .any(|t| Some(t.as_str()) == finding.object.as_deref())
        });
        if let Some(b) = entry {
            finding.remedy = Some(format!(
                "rlsctl rollback --restore (break-glass since {} by {}: {})",
                b.started_at, b.started_by, b.reason
            ));
        }
    }
}

/// A catalog or drift rule: what it finds in the snapshot goes in `findings`.
pub(crate) type Rule =
    fn(&crate::model::snapshot::Snapshot, &crate::model::config::Target, &mut Findings);

/// The reason and day shown on a finding a reviewed exception accepts
/// (`--accept`: see `model::exceptions`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Acceptance {
    /// Why it is accepted.
    pub(crate) reason: String,
    /// Its last day, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) until: Option<String>,
}

/// One result line: a check on one object (or on the whole scope when it passes).
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// The check id.
    pub id: CheckId,
    /// The check title.
    pub title: &'static str,
    /// The check severity.
    pub severity: Severity,
    /// The check kind.
    pub kind: Kind,
    /// Pass, fail, warn or skip.
    pub status: Status,
    /// The object concerned (`public.customers`, a role), if any.
    pub object: Option<String>,
    /// What was found.
    pub detail: String,
    /// How to fix it (for failures).
    pub remedy: Option<String>,
    /// Why it is accepted (status `accepted`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) acceptance: Option<Acceptance>,
    /// An exception that accepted it until a day now past.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(crate) expired_acceptance: Option<Acceptance>,
    /// The md5 of the object's definition, where a review of the object is
    /// what an acceptance stands for (a view's query, a rule's action): an
    /// acceptance records it, and accepts nothing once the object changed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl Finding {
    fn new(
        check: &Check,
        status: Status,
        object: Option<String>,
        detail: impl Into<String>,
        remedy: Option<String>,
    ) -> Self {
        Self {
            id: check.id,
            title: check.title,
            severity: check.severity,
            kind: check.kind,
            status,
            object,
            detail: detail.into(),
            remedy,
            acceptance: None,
            expired_acceptance: None,
            fingerprint: None,
        }
    }

    /// The finding, with the fingerprint of the object's definition.
    pub(crate) fn with_fingerprint(mut self, fingerprint: &str) -> Self {
        self.fingerprint = Some(fingerprint.to_string());
        self
    }

    /// The check held.
    pub(crate) fn pass(check: &Check, object: Option<String>, detail: impl Into<String>) -> Self {
        Self::new(check, Status::Pass, object, detail, None)
    }

    /// The check did not hold: `fail` or `warn` by its severity.
    pub(crate) fn problem(
        check: &Check,
        object: impl Into<String>,
        detail: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Self {
        let status = match check.severity {
            Severity::Error => Status::Fail,
            Severity::Warning => Status::Warn,
        };
        Self::new(
            check,
            status,
            Some(object.into()),
            detail,
            Some(remedy.into()),
        )
    }

    /// A warning whatever the severity (e.g. proven only vacuously).
    pub(crate) fn warn(
        check: &Check,
        object: Option<String>,
        detail: impl Into<String>,
        remedy: impl Into<String>,
    ) -> Self {
        Self::new(check, Status::Warn, object, detail, Some(remedy.into()))
    }

    /// Not run.
    pub(crate) fn skip(check: &Check, reason: impl Into<String>) -> Self {
        Self::new(check, Status::Skip, None, reason, None)
    }
}

/// Collects findings: a check with no problem gets one `pass` line.
#[derive(Debug, Default)]
pub struct Findings(pub Vec<Finding>);

impl Findings {
    /// Adds the problems of `check`, or one pass line with `pass_detail` when there are none.
    pub(crate) fn check(
        &mut self,
        check: &Check,
        problems: Vec<Finding>,
        pass_detail: impl Into<String>,
    ) {
        if problems.is_empty() {
            self.0.push(Finding::pass(check, None, pass_detail));
        } else {
            self.0.extend(problems);
        }
    }

    /// Adds one finding.
    pub(crate) fn push(&mut self, finding: Finding) {
        self.0.push(finding);
    }

    /// Marks every listed check as skipped.
    pub(crate) fn skip_all(&mut self, checks: &[Check], reason: &str) {
        self.0
            .extend(checks.iter().map(|c| Finding::skip(c, reason)));
    }
}

/// A tenant id cut to fit in a message (ids can be megabytes).
pub(crate) fn shorten(id: &str) -> String {
    if id.chars().count() <= 40 {
        format!("{id:?}")
    } else {
        format!(
            "{:?}… ({} bytes)",
            id.chars().take(32).collect::<String>(),
            id.len()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::CATALOGUE;

    #[test]
    fn every_check_is_documented_and_ids_are_unique() {
        let docs = include_str!("../../../docs/checks.md");
        for check in CATALOGUE {
            assert!(
                docs.contains(&format!("\n## {}\n", check.id)),
                "docs/checks.md has no section for {}",
                check.id
            );
            assert_eq!(
                CATALOGUE.iter().filter(|c| c.id == check.id).count(),
                1,
                "{} twice",
                check.id
            );
        }
    }
}
