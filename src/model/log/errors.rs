//! A log's `ERROR` entries, as the tenant-error tally reads them: when, who
//! (role, application), what (SQLSTATE, message) and the statement the
//! server logged with it (`log_min_error_statement`, `error` by default, on
//! RDS too). csvlog and jsonlog carry each in a field of its own; a plain log
//! has what its `log_line_prefix` holds (`%u`, `%a`, `%e`), and the statement
//! on the `STATEMENT` line the server writes right after the error.

use serde_json::Value;

use super::{PlainEntry, Prefix};

/// The longest statement kept with an error (its example is cut shorter).
const MAX_STATEMENT: usize = 4096;

/// One `ERROR` entry.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ErrorEntry {
    /// When, as the server wrote it.
    pub(crate) at: Option<String>,
    /// The role that ran the statement, where the log says.
    pub(crate) role: Option<String>,
    /// Its `application_name`, where the log says.
    pub(crate) application: Option<String>,
    /// The SQLSTATE, where the log says (csvlog, jsonlog, `%e`, or
    /// `log_error_verbosity = verbose`).
    pub(crate) sqlstate: Option<String>,
    /// The message.
    pub(crate) message: String,
    /// The statement, where the server logged it.
    pub(crate) statement: Option<String>,
}

impl ErrorEntry {
    /// A jsonlog entry's error, if it is one.
    pub(crate) fn from_json(entry: &serde_json::Map<String, Value>) -> Option<Self> {
        if entry.get("error_severity")?.as_str()? != "ERROR" {
            return None;
        }
        let text = |key: &str| entry.get(key).and_then(Value::as_str).map(String::from);
        Some(Self {
            at: text("timestamp"),
            role: text("user"),
            application: text("application_name"),
            sqlstate: text("state_code"),
            message: text("message")?,
            statement: text("statement").map(cut),
        })
    }

    /// A csvlog row's error, if it is one: the fields as PostgreSQL 13 to 18
    /// lay them out (time 1st, user 2nd, severity 12th, SQLSTATE 13th,
    /// message 14th, statement 20th, application 23rd).
    pub(crate) fn from_csv(fields: &[Vec<u8>]) -> Option<Self> {
        if fields.get(11)?.as_slice() != b"ERROR" {
            return None;
        }
        let text = |i: usize| {
            fields
                .get(i)
                .and_then(|f| std::str::from_utf8(f).ok())
                .filter(|f| !f.is_empty())
                .map(String::from)
        };
        Some(Self {
            at: text(0),
            role: text(1),
            sqlstate: text(12),
            message: text(13)?,
            statement: text(19).map(cut),
            application: text(22),
        })
    }
}

/// A plain log's `ERROR` entry, until the entries written with it are read.
#[derive(Debug)]
pub(crate) struct PendingError {
    pub(crate) entry: ErrorEntry,
    /// Its process id, where the prefix has `%p`.
    pid: Option<String>,
    /// The last line read was the statement's (a continuation line adds to it).
    in_statement: bool,
}

impl PendingError {
    /// The error that `entry` starts.
    pub(crate) fn new(prefix: &Prefix, entry: &PlainEntry<'_>, at: Option<String>) -> Self {
        let field = |escape| prefix.field(entry.prefix, escape).map(String::from);
        let mut message = entry.message;
        let mut sqlstate = field('e');
        // log_error_verbosity = verbose puts the SQLSTATE first.
        if let Some((code, rest)) = message.split_once(": ") {
            if code.len() == 5 && code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                sqlstate.get_or_insert_with(|| code.to_string());
                message = rest;
            }
        }
        Self {
            entry: ErrorEntry {
                at,
                role: field('u').filter(|r| !r.is_empty()),
                application: field('a').filter(|a| !a.is_empty()),
                sqlstate,
                message: message.to_string(),
                statement: None,
            },
            pid: field('p'),
            in_statement: false,
        }
    }

    /// An entry of process `pid` (where the prefix says) may be this one's.
    pub(crate) fn same_process(&self, pid: Option<&str>) -> bool {
        self.pid.as_deref() == pid
    }

    /// `next` was written with this error (its statement, detail, hint or
    /// context): the statement is kept.
    pub(crate) fn part_of(&mut self, next: &PlainEntry<'_>) -> bool {
        match next.severity {
            "STATEMENT" if self.entry.statement.is_none() => {
                self.entry.statement = Some(cut(next.message.to_string()));
                self.in_statement = true;
                true
            }
            "DETAIL" | "HINT" | "CONTEXT" | "QUERY" | "LOCATION" => {
                self.in_statement = false;
                true
            }
            _ => false,
        }
    }

    /// A continuation line (after its tab): the statement's next line, when
    /// the statement is what the last line held.
    pub(crate) fn continued(&mut self, line: &str) {
        if let (true, Some(statement)) = (self.in_statement, &mut self.entry.statement) {
            if statement.len() < MAX_STATEMENT {
                statement.push('\n');
                statement.push_str(line);
                *statement = cut(std::mem::take(statement));
            }
        }
    }
}

/// `text` cut to [`MAX_STATEMENT`] bytes, at a character boundary.
fn cut(mut text: String) -> String {
    if text.len() > MAX_STATEMENT {
        let mut end = MAX_STATEMENT;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}
