//! Reading server logs for shadow records, in bounded memory, counting only
//! what `rlsctl.shadow_seen` wrote.
//!
//! A record is the message of a `LOG` entry that starts with the marker and is
//! one JSON object to its end. In a plain (stderr) log the entry's line must
//! start with the server's `log_line_prefix`, matched field by field, followed
//! by `LOG:  `: fields a client chooses (application name, user, database,
//! host) may hold anything, so every place the marker could start is tried
//! and only a split where the prefix matches and the rest is exactly one
//! record counts. A marker inside a client-chosen field, an `ERROR`,
//! `STATEMENT`, `DETAIL` or `CONTEXT` entry, or a continuation line of a
//! multi-line message (the server starts those with a tab) never counts. In a
//! JSON log only the `message` of an entry whose `error_severity` is `LOG`; in
//! a CSV log only the message field of a `LOG` row, read as CSV (a quoted
//! field may span lines).
//!
//! Lines longer than [`MAX_LINE`] are skipped and counted, never buffered
//! whole; a NUL byte means the input is not a text log (exit 2).

use anyhow::{bail, Context, Result};
use serde_json::Value;

use super::{Record, MARKER};

/// The longest line read: a record is at most a few kilobytes (the query is
/// cut at 2,000 characters); longer lines are skipped and counted.
pub(crate) const MAX_LINE: usize = 1024 * 1024;

/// RDS's `log_line_prefix`, which RDS does not let anyone change.
pub const RDS_PREFIX: &str = "%t:%r:%u@%d:[%p]:";

/// PostgreSQL's default `log_line_prefix` (10 and later).
pub(crate) const POSTGRES_DEFAULT_PREFIX: &str = "%m [%p] ";

/// How a log is laid out.
#[derive(Debug)]
pub(crate) enum Layout {
    /// stderr format: each entry starts with `log_line_prefix`.
    Plain(Prefix),
    /// jsonlog: one JSON object per line.
    Json,
    /// csvlog: CSV rows (a quoted field may span lines).
    Csv,
}

impl Layout {
    /// The layout of a log file by its name: `.json` and `.csv` as the server
    /// names them, anything else plain with `prefix`.
    pub(crate) fn for_file(name: &str, prefix: &str) -> Result<Self> {
        Ok(if name.ends_with(".json") {
            Self::Json
        } else if name.ends_with(".csv") {
            Self::Csv
        } else {
            Self::Plain(Prefix::new(prefix)?)
        })
    }
}

/// A `log_line_prefix`, as a pattern that matches what the server writes for
/// it, and one that finds the line's time (its first `%t` or `%m`).
#[derive(Debug)]
pub(crate) struct Prefix {
    whole: regex::Regex,
    time: Option<regex::Regex>,
}

impl Prefix {
    /// Compiles `log_line_prefix` (escapes as PostgreSQL documents them; an
    /// unknown one matches anything, as a client-chosen field does).
    pub(crate) fn new(log_line_prefix: &str) -> Result<Self> {
        let mut pattern = String::from("^");
        let mut time = None;
        let mut chars = log_line_prefix.chars().peekable();
        while let Some(c) = chars.next() {
            if c != '%' {
                pattern.push_str(&regex::escape(&c.to_string()));
                continue;
            }
            // Optional padding: %-10a, %10p.
            let mut padded = false;
            while let Some(&d) = chars.peek() {
                if d == '-' || d.is_ascii_digit() {
                    padded = true;
                    chars.next();
                } else {
                    break;
                }
            }
            let Some(escape) = chars.next() else {
                break;
            };
            let field = match escape {
                '%' => "%",
                't' | 's' => r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2} \S+",
                'm' => r"\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\.\d{3} \S+",
                'n' => r"\d+\.\d+",
                'p' | 'P' | 'x' | 'l' => r"\d*",
                'e' => "[0-9A-Z]{5}",
                'v' => r"[0-9/]*",
                'c' => r"[0-9a-f]+\.[0-9a-f]+",
                'Q' => r"-?\d+",
                'q' => "",
                // application name, user, database, host, host and port,
                // backend type, command tag, local address: anything
                _ => ".*",
            };
            if time.is_none() && matches!(escape, 't' | 'm') {
                time = Some(format!("{pattern} *(?P<time>{field})"));
            }
            if padded {
                pattern.push_str(&format!(" *(?:{field}) *"));
            } else {
                pattern.push_str(&format!("(?:{field})"));
            }
        }
        pattern.push('$');
        let compile = |pattern: &str| {
            regex::Regex::new(pattern)
                .with_context(|| format!("reading log_line_prefix {log_line_prefix:?}"))
        };
        Ok(Self {
            whole: compile(&pattern)?,
            time: time.as_deref().map(compile).transpose()?,
        })
    }

    fn matches(&self, head: &str) -> bool {
        self.whole.is_match(head)
    }

    /// The time at the start of `line`, where the prefix has one.
    fn time_of<'l>(&self, line: &'l str) -> Option<&'l str> {
        Some(self.time.as_ref()?.captures(line)?.name("time")?.as_str())
    }
}

/// What reading found: the records, and the lines skipped as too long.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// The records, in the order read.
    pub(crate) records: Vec<Record>,
    /// Lines (or CSV rows) longer than [`MAX_LINE`], skipped.
    pub(crate) skipped_long: u64,
    /// The time of the first log entry read, as the server wrote it (`None`:
    /// nothing read, or no time in the entries): how far back the log reaches.
    pub(crate) first_logged: Option<String>,
}

/// Reads one log, fed in chunks of bytes as they arrive.
pub(crate) struct LogReader<'a> {
    layout: &'a Layout,
    name: String,
    line: Vec<u8>,
    skipping: bool,
    csv: csv_core::Reader,
    field: Vec<u8>,
    fields: Vec<Vec<u8>>,
    found: &'a mut Found,
}

impl<'a> LogReader<'a> {
    /// A reader of the log `name` laid out as `layout`, adding to `found`.
    pub(crate) fn new(layout: &'a Layout, name: &str, found: &'a mut Found) -> Self {
        Self {
            layout,
            name: name.to_string(),
            line: Vec::new(),
            skipping: false,
            csv: csv_core::Reader::new(),
            field: Vec::new(),
            fields: Vec::new(),
            found,
        }
    }

    /// Reads the next bytes of the log.
    pub(crate) fn feed(&mut self, bytes: &[u8]) -> Result<()> {
        if bytes.contains(&0) {
            bail!(
                "{} is not a text log (it holds a NUL byte): pass the server's log file",
                self.name
            );
        }
        match self.layout {
            Layout::Csv => self.feed_csv(bytes, false),
            _ => {
                self.feed_lines(bytes);
                Ok(())
            }
        }
    }

    /// The end of the log: a last line without a newline counts too.
    pub(crate) fn finish(mut self) -> Result<()> {
        match self.layout {
            Layout::Csv => self.feed_csv(&[], true),
            _ => {
                if !self.line.is_empty() && !self.skipping {
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&line);
                }
                Ok(())
            }
        }
    }

    fn feed_lines(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            let (part, ended) = match bytes.iter().position(|&b| b == b'\n') {
                Some(i) => (&bytes[..i], Some(i + 1)),
                None => (bytes, None),
            };
            if !self.skipping {
                if self.line.len() + part.len() > MAX_LINE {
                    self.skipping = true;
                    self.line.clear();
                    self.found.skipped_long += 1;
                } else {
                    self.line.extend_from_slice(part);
                }
            }
            match ended {
                Some(next) => {
                    if !self.skipping {
                        let line = std::mem::take(&mut self.line);
                        self.line_done(&line);
                    }
                    self.skipping = false;
                    bytes = &bytes[next..];
                }
                None => bytes = &[],
            }
        }
    }

    fn line_done(&mut self, line: &[u8]) {
        // A line that is not UTF-8 holds no record (the server writes JSON text).
        let Ok(line) = std::str::from_utf8(line) else {
            return;
        };
        let line = line.strip_suffix('\r').unwrap_or(line);
        if self.found.first_logged.is_none() {
            self.found.first_logged = match self.layout {
                Layout::Plain(prefix) => prefix.time_of(line).map(String::from),
                Layout::Json => serde_json::from_str::<Value>(line)
                    .ok()
                    .and_then(|e| e.get("timestamp")?.as_str().map(String::from)),
                Layout::Csv => None,
            };
        }
        let record = match self.layout {
            Layout::Plain(prefix) => plain_record(prefix, line),
            Layout::Json => json_record(line),
            Layout::Csv => None,
        };
        self.found.records.extend(record);
    }

    /// CSV, field by field, in bounded memory; `end`: the input is over
    /// (an empty slice tells csv_core so).
    fn feed_csv(&mut self, mut bytes: &[u8], end: bool) -> Result<()> {
        let mut out = [0u8; 8192];
        loop {
            let (result, read, written) = self.csv.read_field(bytes, &mut out);
            bytes = &bytes[read..];
            if !self.skipping {
                if self.field.len() + written > MAX_LINE {
                    self.skipping = true;
                    self.field.clear();
                    self.fields.clear();
                    self.found.skipped_long += 1;
                } else {
                    self.field.extend_from_slice(&out[..written]);
                }
            }
            match result {
                // More input needed (or, at the end, none left).
                csv_core::ReadFieldResult::InputEmpty => return Ok(()),
                csv_core::ReadFieldResult::OutputFull => {}
                csv_core::ReadFieldResult::Field { record_end } => {
                    let field = std::mem::take(&mut self.field);
                    if !self.skipping {
                        self.fields.push(field);
                    }
                    if record_end {
                        let fields = std::mem::take(&mut self.fields);
                        if self.found.first_logged.is_none() && !self.skipping {
                            // csvlog's first field is log_time.
                            self.found.first_logged = fields
                                .first()
                                .and_then(|f| std::str::from_utf8(f).ok())
                                .map(String::from);
                        }
                        if !self.skipping {
                            self.found.records.extend(csv_record(&fields));
                        }
                        self.skipping = false;
                    }
                }
                csv_core::ReadFieldResult::End => return Ok(()),
            }
            if bytes.is_empty() && !end {
                return Ok(());
            }
        }
    }
}

/// The record a plain log line holds, if the server wrote one there.
pub(crate) fn plain_record(prefix: &Prefix, line: &str) -> Option<Record> {
    for (at, severity) in line.match_indices("LOG:  ") {
        if !prefix.matches(&line[..at]) {
            continue;
        }
        let mut message = &line[at + severity.len()..];
        // log_error_verbosity = verbose puts the SQLSTATE first.
        if let Some((code, rest)) = message.split_once(": ") {
            if code.len() == 5 && code.bytes().all(|b| b.is_ascii_alphanumeric()) {
                message = rest;
            }
        }
        if let Some(record) = message.strip_prefix(MARKER).and_then(whole_record) {
            return Some(record);
        }
    }
    None
}

/// The record a jsonlog line holds: the message of a `LOG` entry.
pub(crate) fn json_record(line: &str) -> Option<Record> {
    let entry: Value = serde_json::from_str(line).ok()?;
    if entry.get("error_severity")?.as_str()? != "LOG" {
        return None;
    }
    entry
        .get("message")?
        .as_str()?
        .strip_prefix(MARKER)
        .and_then(whole_record)
}

/// The record a csvlog row holds: field 12 the severity, 14 the message.
fn csv_record(fields: &[Vec<u8>]) -> Option<Record> {
    if fields.get(11)?.as_slice() != b"LOG" {
        return None;
    }
    let message = std::str::from_utf8(fields.get(13)?).ok()?;
    message.strip_prefix(MARKER).and_then(whole_record)
}

/// `text` as exactly one record object, nothing after it.
fn whole_record(text: &str) -> Option<Record> {
    serde_json::from_str(text).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORD: &str = r#"{"table" : "public.customers", "access" : "read", "tenant" : null, "query" : "SELECT count(*)\nFROM customers -- ü€ split anywhere", "role" : "app_user", "at" : "2026-11-27T05:00:00.1+00:00"}"#;

    fn read(layout: &Layout, text: &str, chunk: usize) -> Found {
        let mut found = Found::default();
        let mut reader = LogReader::new(layout, "test", &mut found);
        for part in text.as_bytes().chunks(chunk.max(1)) {
            reader.feed(part).unwrap();
        }
        reader.finish().unwrap();
        found
    }

    #[test]
    fn a_record_counts_only_where_the_server_wrote_it() {
        let prefix = Layout::Plain(Prefix::new("%m [%p] %a ").unwrap());
        let real = format!("2026-11-27 05:00:00.100 UTC [42] psql LOG:  {MARKER}{RECORD}\n");
        // The application name carries a marker: the real record still counts, once.
        let hidden = format!("2026-11-27 05:00:00.100 UTC [42] {MARKER}x LOG:  {MARKER}{RECORD}\n");
        // A forged one in the application name, before a real message that is not a record.
        let forged_app = format!(
            "2026-11-27 05:00:00.100 UTC [42] x LOG:  {MARKER}{RECORD} LOG:  statement: select 1\n"
        );
        let error = format!(
            "2026-11-27 05:00:00.100 UTC [42] psql ERROR:  invalid input syntax for type integer: \"{MARKER}{RECORD}\"\n\
             2026-11-27 05:00:00.100 UTC [42] psql STATEMENT:  select '{MARKER}{RECORD}'::int\n"
        );
        // A statement whose comment holds a newline and a line that looks like a record.
        let continuation = format!(
            "2026-11-27 05:00:00.100 UTC [42] psql LOG:  statement: select 1 /*\n\t2026-11-27 05:00:00.100 UTC [42] psql LOG:  {MARKER}{RECORD} */\n"
        );
        for (text, expected) in [
            (real.as_str(), 1),
            (hidden.as_str(), 1),
            (forged_app.as_str(), 0),
            (error.as_str(), 0),
            (continuation.as_str(), 0),
        ] {
            for chunk in [1, 7, 4096] {
                let found = read(&prefix, text, chunk);
                assert_eq!(found.records.len(), expected, "chunk {chunk}: {text}");
            }
        }
        // RDS's fixed prefix, and the SQLSTATE of log_error_verbosity = verbose.
        let rds = Layout::Plain(Prefix::new(RDS_PREFIX).unwrap());
        let line = format!(
            "2026-11-27 05:00:00 UTC:10.0.0.5(51234):app_user@shop:[42]:LOG:  00000: {MARKER}{RECORD}\n"
        );
        assert_eq!(read(&rds, &line, 5).records.len(), 1);
    }

    #[test]
    fn json_and_csv_logs_count_only_the_message_of_log_entries() {
        let entry = |severity: &str| {
            serde_json::json!({"timestamp": "x", "error_severity": severity, "application_name": MARKER, "message": format!("{MARKER}{RECORD}")})
                .to_string()
        };
        let text = format!("{}\n{}\n", entry("LOG"), entry("ERROR"));
        assert_eq!(read(&Layout::Json, &text, 3).records.len(), 1);
        let row = |severity: &str, message: &str| {
            format!(
                "2026-11-27 05:00:00.100 UTC,\"app_user\",\"db\",42,\"127.0.0.1:5\",ab.cd,1,\"SELECT\",2026-11-27 05:00:00 UTC,3/4,0,{severity},00000,\"{}\",,,,,,,,\"psql\",client backend,,0\n",
                message.replace('"', "\"\"")
            )
        };
        // A statement field spanning lines with a row-looking line inside it.
        let sneaky = format!(
            "select 1 /*\n{}*/",
            row("LOG", &format!("{MARKER}{RECORD}"))
        );
        let text = format!(
            "{}{}{}",
            row("LOG", &format!("{MARKER}{RECORD}")),
            row("ERROR", &format!("{MARKER}{RECORD}")),
            row("LOG", &sneaky)
        );
        for chunk in [1, 13, 8192] {
            assert_eq!(
                read(&Layout::Csv, &text, chunk).records.len(),
                1,
                "chunk {chunk}"
            );
        }
    }

    #[test]
    fn long_lines_are_skipped_and_counted_and_nul_is_refused() {
        let prefix = Layout::Plain(Prefix::new("%m [%p] ").unwrap());
        let long = "x".repeat(MAX_LINE + 10);
        let text =
            format!("{long}\n2026-11-27 05:00:00.100 UTC [42] LOG:  {MARKER}{RECORD}\n{long}");
        let found = read(&prefix, &text, 65536);
        assert_eq!((found.records.len(), found.skipped_long), (1, 2));
        let mut found = Found::default();
        let mut reader = LogReader::new(&prefix, "zero", &mut found);
        let err = reader.feed(&[0u8; 16]).unwrap_err();
        assert!(err.to_string().contains("not a text log"), "{err}");
    }
}
