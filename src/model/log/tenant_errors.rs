//! Tenant-context errors in the server log (`monitor --logs`): once RLS is
//! enforced, the first sign of an app that sets its tenant wrongly is an
//! `ERROR` in the log, not a row in the catalog. Each `ERROR` entry read is
//! classified by its message (the server's own wording, which does not
//! depend on the client; `lc_messages` English, as RDS logs) and counted
//! per class, table, role, application and SQLSTATE, in bounded memory:
//!
//! - `rls_violation`: `new row violates row-level security policy for table
//!   "t"` (42501): the app wrote a row for another tenant;
//! - `permission_denied`: `permission denied for table t` (42501) on a
//!   tenant table;
//! - `tenant_cast`: `invalid input syntax for type T: ""` (22P02) in a
//!   statement on a tenant table: a policy cast the tenant setting while it
//!   was empty (reset after a transaction-local set);
//! - `missing_setting`: `unrecognized configuration parameter "<setting>"`
//!   (42704): the setting read without `missing_ok` before any set;
//! - `no_tenant`: a shadow record of a read with no tenant set (shadow mode
//!   logs each; enforced, the statement would have seen nothing).
//!
//! The table of an error whose message names none is the first tenant table
//! its statement names (string literals skipped).

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use super::errors::ErrorEntry;
use super::time::epoch_millis;
use super::Record;

/// Distinct application names kept apart; later ones count as `(other)`
/// (a client chooses the name: the groups stay bounded whatever it sends).
const MAX_APPLICATIONS: usize = 20;

/// The longest example statement shown, in characters.
const EXAMPLE_CHARS: usize = 200;

/// What to count: the tenant tables, the tenant setting, and the window.
#[derive(Debug, Clone, Default)]
pub(crate) struct Watch {
    /// The tenant tables.
    pub(crate) tables: Vec<TenantTable>,
    /// The tenant setting (`app.tenant_id`).
    pub(crate) setting: String,
    /// Entries before this moment (ms since the epoch) are not counted; an
    /// entry whose time cannot be read is.
    pub(crate) cutoff: Option<i64>,
}

/// A tenant table, by schema and name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TenantTable {
    /// Its schema.
    pub(crate) schema: String,
    /// Its name.
    pub(crate) name: String,
    /// `schema.table`.
    pub(crate) display: String,
}

/// What kind of tenant-context error.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// A write the isolation policy's WITH CHECK stopped.
    RlsViolation,
    /// Permission denied on a tenant table.
    PermissionDenied,
    /// The empty tenant setting cast to the tenant column's type.
    TenantCast,
    /// The tenant setting read before any set.
    MissingSetting,
    /// A read of a tenant table with no tenant set (shadow records).
    NoTenant,
}

impl Class {
    /// Every class, in report order.
    pub const ALL: [Class; 5] = [
        Class::RlsViolation,
        Class::PermissionDenied,
        Class::TenantCast,
        Class::MissingSetting,
        Class::NoTenant,
    ];

    /// As reports and `--max-errors` write it.
    pub fn label(self) -> &'static str {
        match self {
            Class::RlsViolation => "rls_violation",
            Class::PermissionDenied => "permission_denied",
            Class::TenantCast => "tenant_cast",
            Class::MissingSetting => "missing_setting",
            Class::NoTenant => "no_tenant",
        }
    }

    /// What it means, in a few words.
    pub(crate) fn meaning(self) -> &'static str {
        match self {
            Class::RlsViolation => "writes of a row for another tenant, stopped by the policy",
            Class::PermissionDenied => "permission denied on a tenant table",
            Class::TenantCast => "statements that cast an empty tenant setting",
            Class::MissingSetting => "statements that read the tenant setting before it was set",
            Class::NoTenant => "reads with no tenant set (shadow mode; enforced, they see nothing)",
        }
    }

    /// What to do about it.
    pub(crate) fn remedy(self) -> &'static str {
        match self {
            Class::RlsViolation => "find the code path from the example: it writes a tenant column other than the tenant it set (the policy stopped each write; the app's request failed)",
            Class::PermissionDenied => "a grant the app needs is missing (a deploy or migration revoked or never made it): grant it, or run rlsctl apply",
            Class::TenantCast | Class::MissingSetting | Class::NoTenant => "the code path of the example runs without a tenant: set it in each transaction, set_config(setting, $1, true), before it touches a tenant table",
        }
    }
}

/// What one group is counted by.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Key {
    class: Class,
    table: String,
    role: String,
    application: String,
    sqlstate: String,
}

/// One group's count, first and last time, and an example.
#[derive(Debug, Clone)]
struct Counted {
    count: u64,
    first: Option<String>,
    last: Option<String>,
    example: String,
}

/// The tenant-context errors counted so far.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    watch: Watch,
    groups: BTreeMap<Key, Counted>,
    applications: BTreeSet<String>,
}

impl Tally {
    /// Nothing counted yet.
    pub(crate) fn new(watch: Watch) -> Self {
        Self {
            watch,
            ..Self::default()
        }
    }

    /// Counts `entry` if it is a tenant-context error in the window.
    pub(crate) fn add(&mut self, entry: ErrorEntry) {
        if self.before_window(entry.at.as_deref()) {
            return;
        }
        let Some((class, table, sqlstate)) = self.classify(&entry) else {
            return;
        };
        let example = entry.statement.as_deref().unwrap_or(&entry.message);
        let sqlstate = entry.sqlstate.clone().unwrap_or_else(|| sqlstate.into());
        self.count(
            Key {
                class,
                table,
                role: entry.role.clone().unwrap_or_default(),
                application: entry.application.clone().unwrap_or_default(),
                sqlstate,
            },
            entry.at,
            example,
        );
    }

    /// Counts the shadow records of reads with no tenant set.
    pub(crate) fn add_records(&mut self, records: &[Record]) {
        for record in records {
            if record.tenant.is_some()
                || record.access != "read"
                || self.before_window(Some(&record.at))
            {
                continue;
            }
            let key = Key {
                class: Class::NoTenant,
                table: record.table.clone(),
                role: record.role.clone(),
                application: String::new(),
                sqlstate: String::new(),
            };
            self.count(key, Some(record.at.clone()), &record.query);
        }
    }

    /// Adds another instance's counts.
    pub(crate) fn absorb(&mut self, other: Tally) {
        for (key, counted) in other.groups {
            let mut key = key;
            key.application = self.application(key.application);
            match self.groups.get_mut(&key) {
                Some(mine) => {
                    mine.count += counted.count;
                    widen(mine, counted.first);
                    widen(mine, counted.last);
                }
                None => {
                    self.groups.insert(key, counted);
                }
            }
        }
    }

    /// The groups, by class, table, role, application and SQLSTATE.
    pub(crate) fn groups(&self) -> Vec<Group> {
        self.groups
            .iter()
            .map(|(key, counted)| Group {
                class: key.class,
                table: key.table.clone(),
                role: key.role.clone(),
                application: key.application.clone(),
                sqlstate: key.sqlstate.clone(),
                count: counted.count,
                first: counted.first.clone(),
                last: counted.last.clone(),
                example: counted.example.clone(),
            })
            .collect()
    }

    /// `at` is before the window: by a whole second, as `%t` writes times
    /// to the second (an error in the cutoff's second counts).
    fn before_window(&self, at: Option<&str>) -> bool {
        match (self.watch.cutoff, at.and_then(epoch_millis)) {
            (Some(cutoff), Some(at)) => at + 1000 <= cutoff,
            _ => false,
        }
    }

    fn count(&mut self, mut key: Key, at: Option<String>, example: &str) {
        key.application = self.application(key.application);
        let counted = self.groups.entry(key).or_insert_with(|| Counted {
            count: 0,
            first: None,
            last: None,
            example: example_of(example),
        });
        counted.count += 1;
        widen(counted, at);
    }

    /// `name`, or `(other)` once [`MAX_APPLICATIONS`] others are kept.
    fn application(&mut self, name: String) -> String {
        if self.applications.contains(&name) || self.applications.len() < MAX_APPLICATIONS {
            self.applications.insert(name.clone());
            name
        } else {
            "(other)".into()
        }
    }

    /// The class, table and SQLSTATE (as the message implies it) of a
    /// tenant-context error; `None` for any other error.
    fn classify(&self, entry: &ErrorEntry) -> Option<(Class, String, &'static str)> {
        let message = entry.message.as_str();
        let in_statement = || entry.statement.as_deref().and_then(|s| self.table_in(s));
        if let Some(rest) = message.strip_prefix("new row violates row-level security policy") {
            let name = rest.split_once("for table \"")?.1.strip_suffix('"')?;
            return Some((Class::RlsViolation, self.table_named(name), "42501"));
        }
        let denied = message
            .strip_prefix("permission denied for table ")
            .or_else(|| message.strip_prefix("permission denied for relation "));
        if let Some(name) = denied {
            let table = self.watch.tables.iter().find(|t| t.name == name)?;
            return Some((Class::PermissionDenied, table.display.clone(), "42501"));
        }
        if let Some(rest) = message.strip_prefix("unrecognized configuration parameter \"") {
            let setting = rest.strip_suffix('"')?;
            if !setting.eq_ignore_ascii_case(&self.watch.setting) {
                return None;
            }
            let table = in_statement()
                .map(|t| t.display.clone())
                .unwrap_or_default();
            return Some((Class::MissingSetting, table, "42704"));
        }
        if message.starts_with("invalid input syntax for type ") && message.ends_with(": \"\"") {
            let table = match &entry.statement {
                // A statement that names no tenant table cast some other empty text.
                Some(_) => in_statement()?.display.clone(),
                None => String::new(),
            };
            return Some((Class::TenantCast, table, "22P02"));
        }
        None
    }

    /// The tenant table a message names by its bare name (the first of that
    /// name), else the name as the message has it.
    fn table_named(&self, name: &str) -> String {
        self.watch
            .tables
            .iter()
            .find(|t| t.name == name)
            .map_or_else(|| name.to_string(), |t| t.display.clone())
    }

    /// The first tenant table `statement` names (`schema.table` where it
    /// qualifies it), outside string literals.
    fn table_in(&self, statement: &str) -> Option<&TenantTable> {
        let words = identifiers(statement);
        words.iter().enumerate().find_map(|(i, word)| {
            let named: Vec<&TenantTable> = self
                .watch
                .tables
                .iter()
                .filter(|t| &t.name == word)
                .collect();
            let schema = (i >= 2 && words[i - 1] == ".").then(|| words[i - 2].as_str());
            match schema {
                Some(schema) => named.iter().find(|t| t.schema == schema).copied(),
                None => named.first().copied(),
            }
        })
    }
}

/// Moves a group's first or last time out to `at`.
fn widen(counted: &mut Counted, at: Option<String>) {
    let Some(at) = at else { return };
    let millis = |t: &Option<String>| t.as_deref().and_then(epoch_millis);
    let new = epoch_millis(&at);
    if counted.first.is_none() || (new.is_some() && new < millis(&counted.first)) {
        counted.first = Some(at.clone());
    }
    if counted.last.is_none() || new >= millis(&counted.last) {
        counted.last = Some(at);
    }
}

/// A statement as an example: whitespace collapsed, cut to
/// [`EXAMPLE_CHARS`] characters.
fn example_of(statement: &str) -> String {
    let collapsed = statement.split_whitespace().collect::<Vec<_>>().join(" ");
    match collapsed.char_indices().nth(EXAMPLE_CHARS) {
        Some((end, _)) => format!("{}…", &collapsed[..end]),
        None => collapsed,
    }
}

/// The identifiers and dots of `sql`, unquoted ones lowercased as the server
/// folds them, quoted ones as written; string literals and comments skipped.
fn identifiers(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                // a literal, '' inside it
                while let Some(c) = chars.next() {
                    if c == '\'' && chars.peek() != Some(&'\'') {
                        break;
                    }
                    if c == '\'' {
                        chars.next();
                    }
                }
            }
            '"' => {
                let mut word = String::new();
                while let Some(c) = chars.next() {
                    if c == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    word.push(c);
                }
                out.push(word);
            }
            '-' if chars.peek() == Some(&'-') => {
                for c in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            '.' => out.push(".".into()),
            c if c.is_alphabetic() || c == '_' => {
                let mut word = c.to_lowercase().collect::<String>();
                while let Some(&next) = chars.peek() {
                    if next.is_alphanumeric() || next == '_' || next == '$' {
                        word.extend(next.to_lowercase());
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(word);
            }
            _ => {}
        }
    }
    out
}

/// One group, as reports show it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct Group {
    /// What kind of error.
    pub(crate) class: Class,
    /// `schema.table` (empty: the log does not say which).
    pub(crate) table: String,
    /// The role (empty: the log does not say).
    pub(crate) role: String,
    /// The application name (empty: the log does not say).
    pub(crate) application: String,
    /// The SQLSTATE (empty for `no_tenant`).
    pub(crate) sqlstate: String,
    /// How many.
    pub(crate) count: u64,
    /// The first one's time, as the server wrote it.
    pub(crate) first: Option<String>,
    /// The last one's.
    pub(crate) last: Option<String>,
    /// One statement (or, where the log holds none, the message),
    /// whitespace collapsed and cut.
    pub(crate) example: String,
}

/// `--max-errors`: how many errors of a class (or of every class) one group
/// may have before the run fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MaxErrors {
    /// The class (`None`: every class).
    pub class: Option<Class>,
    /// The most allowed.
    pub count: u64,
}

impl std::str::FromStr for MaxErrors {
    type Err = String;

    /// `N`, or `CLASS=N` (`rls_violation=0`).
    fn from_str(text: &str) -> Result<Self, String> {
        let (class, count) = match text.split_once('=') {
            Some((class, count)) => {
                let class = Class::ALL
                    .into_iter()
                    .find(|c| c.label() == class.trim())
                    .ok_or_else(|| {
                        let labels: Vec<&str> = Class::ALL.iter().map(|c| c.label()).collect();
                        format!(
                            "{class:?} is no class of tenant error (one of {})",
                            labels.join(", ")
                        )
                    })?;
                (Some(class), count)
            }
            None => (None, text),
        };
        let count = count
            .trim()
            .parse()
            .map_err(|_| format!("{count:?} is not a count (N, or CLASS=N)"))?;
        Ok(Self { class, count })
    }
}

/// The limit of each class: 0 unless `given` says otherwise (a bare `N`
/// for every class, `CLASS=N` for one, the later winning).
pub(crate) fn limits(given: &[MaxErrors]) -> BTreeMap<&'static str, u64> {
    let mut limits: BTreeMap<&'static str, u64> =
        Class::ALL.iter().map(|c| (c.label(), 0)).collect();
    for max in given {
        for class in Class::ALL {
            if max.class.is_none_or(|c| c == class) {
                limits.insert(class.label(), max.count);
            }
        }
    }
    limits
}

/// What `monitor --logs` read: the source, the window and the groups.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TenantErrors {
    /// The logs read.
    pub(crate) source: String,
    /// The window's start, UTC.
    pub(crate) since: String,
    /// Every group, by class, table, role, application and SQLSTATE.
    pub(crate) groups: Vec<Group>,
    /// The most errors of each class allowed before the run fails
    /// (`--max-errors`).
    pub(crate) limits: BTreeMap<&'static str, u64>,
}

impl TenantErrors {
    /// The most errors `class` may have in one group.
    pub(crate) fn limit(&self, class: Class) -> u64 {
        self.limits.get(class.label()).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests;
