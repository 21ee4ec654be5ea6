//! Shadow mode's records: what `rlsctl.shadow_seen` wrote to the server log
//! (one `LOG` line per statement and table that enforcement would have
//! narrowed), read back from wherever the log is, and summed up per table and
//! query for `rlsctl shadow report`.
//!
//! A record is the message `rlsctl-shadow ` and a JSON object, on one line;
//! [`log`] reads plain, CSV and JSON logs for them, counting only what the
//! server logged as that message (never a marker in a field a client chose,
//! nor in an error or a statement).

use crate::model::log::{self, time, Record};

use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

/// The tenant context as the report shows it.
fn tenant_label(tenant: &Option<String>) -> String {
    match tenant {
        None => "no tenant".into(),
        Some(t) => t.clone(),
    }
}

/// One distinct query on one table, summed up.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub(crate) struct QuerySummary {
    /// The statement, whitespace collapsed.
    pub(crate) query: String,
    /// Statements recorded.
    pub(crate) count: u64,
    /// Tenant contexts seen ("no tenant" when none was set).
    pub(crate) tenants: BTreeSet<String>,
    /// `read`, `write`.
    pub(crate) access: BTreeSet<String>,
    /// Roles it ran as.
    pub(crate) roles: BTreeSet<String>,
    /// First record's time.
    pub(crate) first_seen: String,
    /// Last record's time.
    pub(crate) last_seen: String,
}

/// One table's queries, most frequent first.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct TableSummary {
    /// `schema.table`.
    pub(crate) table: String,
    /// Its distinct queries.
    pub(crate) queries: Vec<QuerySummary>,
}

/// Every record read, summed up per table and query.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Summary {
    /// Records read.
    pub(crate) records: u64,
    /// Log lines longer than [`log::MAX_LINE`], skipped unread.
    pub(crate) skipped_lines: u64,
    /// Per table, in name order.
    pub(crate) tables: Vec<TableSummary>,
    /// What was read: each log, its layout, its entries and other lines,
    /// and the first and last entry's time.
    pub(crate) read: Read,
}

/// What a report read.
#[derive(Debug, Default, Serialize)]
pub(crate) struct Read {
    /// Each log.
    pub(crate) files: Vec<log::FileRead>,
    /// The first entry's time, as the server wrote it.
    pub(crate) first_entry: Option<String>,
    /// The last entry's time.
    pub(crate) last_entry: Option<String>,
}

impl Summary {
    /// Sums up `records`.
    pub(crate) fn of(records: impl IntoIterator<Item = Record>) -> Self {
        let mut by_table: BTreeMap<String, BTreeMap<String, QuerySummary>> = BTreeMap::new();
        let mut count = 0;
        for record in records {
            count += 1;
            let query = record
                .query
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            let entry = by_table
                .entry(record.table.clone())
                .or_default()
                .entry(query.clone())
                .or_insert_with(|| QuerySummary {
                    query,
                    count: 0,
                    tenants: BTreeSet::new(),
                    access: BTreeSet::new(),
                    roles: BTreeSet::new(),
                    first_seen: record.at.clone(),
                    last_seen: record.at.clone(),
                });
            entry.count += 1;
            entry.tenants.insert(tenant_label(&record.tenant));
            entry.access.insert(record.access);
            entry.roles.insert(record.role);
            if record.at < entry.first_seen {
                entry.first_seen = record.at.clone();
            }
            if record.at > entry.last_seen {
                entry.last_seen = record.at;
            }
        }
        let tables = by_table
            .into_iter()
            .map(|(table, queries)| {
                let mut queries: Vec<QuerySummary> = queries.into_values().collect();
                queries.sort_by(|a, b| b.count.cmp(&a.count).then(a.query.cmp(&b.query)));
                TableSummary { table, queries }
            })
            .collect();
        Self {
            records: count,
            skipped_lines: 0,
            tables,
            read: Read::default(),
        }
    }

    /// Sums up what reading a log found.
    pub(crate) fn of_found(found: log::Found) -> Self {
        Self {
            skipped_lines: found.skipped_long,
            read: Read {
                files: found.files,
                first_entry: found.first_logged,
                last_entry: found.last_logged,
            },
            ..Self::of(found.records)
        }
    }

    /// The report as text: per table, each query with its count, tenants,
    /// access, roles and when.
    pub(crate) fn text(&self, source: &str) -> String {
        let mut out = format!(
            "rlsctl shadow report: {} record(s) from {source}\n",
            self.records
        );
        for file in &self.read.files {
            out.push_str(&format!(
                "read {} ({}): {} entr{}, {} other line(s)\n",
                file.name,
                file.layout,
                file.entries,
                if file.entries == 1 { "y" } else { "ies" },
                file.unrecognized
            ));
        }
        if let (Some(first), Some(last)) = (&self.read.first_entry, &self.read.last_entry) {
            out.push_str(&format!("entries from {first} to {last}\n"));
        }
        if self.skipped_lines > 0 {
            out.push_str(&format!(
                "warning: {} line(s) longer than {} bytes were skipped unread\n",
                self.skipped_lines,
                log::MAX_LINE
            ));
        }
        if self.tables.is_empty() {
            out.push_str("no statement would have been emptied or narrowed by enforcement\n");
            return out;
        }
        for table in &self.tables {
            out.push_str(&format!(
                "\n{}: {} quer{} would be emptied or narrowed\n",
                table.table,
                table.queries.len(),
                if table.queries.len() == 1 { "y" } else { "ies" }
            ));
            for q in &table.queries {
                out.push_str(&format!("  {:>5}x  {}\n", q.count, q.query));
                out.push_str(&format!(
                    "          tenants: {} · access: {} · roles: {} · first {} · last {}\n",
                    join(&q.tenants),
                    join(&q.access),
                    join(&q.roles),
                    q.first_seen,
                    q.last_seen
                ));
            }
        }
        out
    }

    /// The report as JSON.
    pub(crate) fn json(&self, source: &str) -> String {
        let doc = serde_json::json!({
            "command": "shadow report",
            "source": source,
            "records": self.records,
            "skipped_lines": self.skipped_lines,
            "read": self.read,
            "tables": self.tables,
        });
        serde_json::to_string_pretty(&doc).unwrap_or_default()
    }
}

/// One table's shadow records since a moment: how many, and the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Dirt {
    /// Records since the moment.
    pub(crate) records: u64,
    /// The first record's statement, whitespace collapsed.
    pub(crate) first_query: String,
}

/// What the shadow records say of each table since a moment (`apply
/// --enforce-clean --since`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Since {
    /// The moment, in milliseconds since the epoch.
    pub(crate) cutoff: i64,
    /// The moment as the operator said it (`7d`) and as a time, for messages.
    pub(crate) label: String,
    /// `schema.table` -> its records since the moment.
    pub(crate) dirty: BTreeMap<String, Dirt>,
}

impl Since {
    /// What the log `source` says since `cutoff`, when it reaches back that
    /// far. A log whose start cannot be read, or that starts after `cutoff`,
    /// is an error: no table is called clean for lack of data. `back`: how
    /// far back, as the operator said it (`7days`).
    pub(crate) fn from_log(
        found: &log::Found,
        source: &str,
        cutoff: i64,
        back: &str,
        now: i64,
        mark: Option<&str>,
    ) -> anyhow::Result<Self> {
        found.covers(source, cutoff, back, now, mark)?;
        let label = format!("{back} ago ({})", time::utc_text(cutoff));
        Ok(Self::of(&found.records, cutoff, label))
    }

    /// The tables the records name since `cutoff`; a record whose time
    /// cannot be read counts (a table is never called clean by a guess).
    pub(crate) fn of(records: &[Record], cutoff: i64, label: String) -> Self {
        let mut dirty: BTreeMap<String, Dirt> = BTreeMap::new();
        for record in records {
            if time::epoch_millis(&record.at).is_some_and(|at| at < cutoff) {
                continue;
            }
            let entry = dirty.entry(record.table.clone()).or_insert_with(|| Dirt {
                records: 0,
                first_query: record
                    .query
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .join(" "),
            });
            entry.records += 1;
        }
        Self {
            cutoff,
            label,
            dirty,
        }
    }
}

fn join(items: &BTreeSet<String>) -> String {
    items.iter().cloned().collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_sum_up_per_table_and_query() {
        let record = |tenant: Option<&str>, query: &str, at: &str| Record {
            table: "public.customers".into(),
            access: "read".into(),
            tenant: tenant.map(String::from),
            query: query.into(),
            role: "app_user".into(),
            at: at.into(),
        };
        let summary = Summary::of([
            record(None, "SELECT  1", "2"),
            record(Some("a"), "SELECT 1", "1"),
            record(None, "SELECT 2", "3"),
        ]);
        assert_eq!(summary.records, 3);
        let queries = &summary.tables[0].queries;
        assert_eq!(queries[0].query, "SELECT 1");
        assert_eq!(queries[0].count, 2);
        assert_eq!(
            queries[0].tenants.iter().collect::<Vec<_>>(),
            ["a", "no tenant"]
        );
        assert_eq!(
            (
                queries[0].first_seen.as_str(),
                queries[0].last_seen.as_str()
            ),
            ("1", "2")
        );
        assert!(summary.text("x").contains("no tenant"));
    }
}
