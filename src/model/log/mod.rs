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
//! Lines longer than `MAX_LINE` are skipped and counted, never buffered
//! whole; a NUL byte means the input is not a text log (exit 2).

mod errors;
mod layout;
pub(crate) mod rotation;
pub(crate) mod tenant_errors;
#[cfg(test)]
mod tests;
pub(crate) mod time;

use errors::{ErrorEntry, PendingError};
pub use layout::RDS_PREFIX;
pub(crate) use layout::{Layout, PlainEntry, Prefix, POSTGRES_DEFAULT_PREFIX};
use tenant_errors::{Tally, Watch};

use anyhow::{bail, Result};
use serde_json::Value;

/// The longest line read: a record is at most a few kilobytes (the query is
/// cut at 2,000 characters); longer lines are skipped and counted.
pub(crate) const MAX_LINE: usize = 1024 * 1024;

/// What reading found: the records, the lines skipped as too long, and what
/// was read, which shows whether the log was read as the server wrote it.
#[derive(Debug, Default)]
pub(crate) struct Found {
    /// The records, in the order read.
    pub(crate) records: Vec<Record>,
    /// Lines (or CSV rows) longer than [`MAX_LINE`], skipped.
    pub(crate) skipped_long: u64,
    /// The time of the first log entry read, as the server wrote it (`None`:
    /// nothing read, or no time in the entries): how far back the log reaches.
    pub(crate) first_logged: Option<String>,
    /// The time of the last log entry read: how recent the log is.
    pub(crate) last_logged: Option<String>,
    /// Each log read, in order.
    pub(crate) files: Vec<FileRead>,
    /// The nonces of the marks rlsctl had the server write ([`LOG_MARK`]).
    pub(crate) marks: Vec<String>,
    /// The tenant-context errors, when asked for ([`Found::watching`]).
    pub(crate) errors: Option<Tally>,
}

/// How long before now a log's last entry may be, for it to show the time up
/// to now (`apply` writes an entry itself before reading the server's log).
pub(crate) const MAX_LOG_LAG_MS: i64 = 15 * 60 * 1000;

/// What starts the `LOG` entry rlsctl has the server write before it reads
/// the log, followed by a nonce: finding it shows the log read is the
/// server's, laid out as read, and reaches up to now.
pub(crate) const LOG_MARK: &str = "rlsctl-log-mark ";

/// What marks a record in the server log.
pub(crate) const MARKER: &str = "rlsctl-shadow ";

/// One statement's access to one table that enforcement would have narrowed.
#[derive(Debug, Clone, serde::Deserialize, PartialEq, Eq)]
pub(crate) struct Record {
    /// `schema.table`.
    pub(crate) table: String,
    /// `read` (USING) or `write` (WITH CHECK).
    pub(crate) access: String,
    /// The tenant context the statement ran under; None: no tenant.
    pub(crate) tenant: Option<String>,
    /// The statement's text (cut at 2,000 characters by the server).
    pub(crate) query: String,
    /// The role it ran as.
    pub(crate) role: String,
    /// When, as the server wrote it.
    pub(crate) at: String,
}

/// One log as read: its layout, the entries that matched it and the lines
/// that did not.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct FileRead {
    /// The file, as named.
    pub(crate) name: String,
    /// `plain (log_line_prefix '...')`, `csvlog` or `jsonlog`.
    pub(crate) layout: String,
    /// Log entries read (lines that start with the whole prefix and a
    /// severity; JSON objects; CSV rows of the csvlog shape).
    pub(crate) entries: u64,
    /// Lines that are no entry of that layout (a continuation line of a
    /// multi-line entry is not counted).
    pub(crate) unrecognized: u64,
    /// The time of its first entry, as the server wrote it.
    pub(crate) first_entry: Option<String>,
    /// The time of its last entry.
    pub(crate) last_entry: Option<String>,
}

impl Found {
    /// Nothing found yet; the `ERROR` entries will be tallied as `watch` says
    /// (`None`: not read).
    pub(crate) fn watching(watch: Option<&Watch>) -> Self {
        Self {
            errors: watch.map(|w| Tally::new(w.clone())),
            ..Self::default()
        }
    }

    /// An `ERROR` entry, to the tally.
    fn error(&mut self, entry: ErrorEntry) {
        if let Some(tally) = &mut self.errors {
            tally.add(entry);
        }
    }

    fn hold(&mut self, held: Option<Held>) {
        match held {
            Some(Held::Record(record)) => self.records.push(record),
            Some(Held::Mark(nonce)) => self.marks.push(nonce),
            None => {}
        }
    }

    /// Adds what another instance's logs held: the window they cover
    /// together is where every one of them reaches (the latest first entry,
    /// the earliest last one).
    pub(crate) fn absorb(&mut self, other: Found) {
        use time::epoch_millis;
        let at = |t: &Option<String>| t.as_deref().and_then(epoch_millis);
        if self.files.is_empty() {
            self.first_logged = other.first_logged.clone();
            self.last_logged = other.last_logged.clone();
        } else {
            if at(&other.first_logged) > at(&self.first_logged) || other.first_logged.is_none() {
                self.first_logged = other.first_logged.clone();
            }
            if at(&other.last_logged) < at(&self.last_logged) || other.last_logged.is_none() {
                self.last_logged = other.last_logged.clone();
            }
        }
        self.records.extend(other.records);
        self.skipped_long += other.skipped_long;
        self.files.extend(other.files);
        self.marks.extend(other.marks);
        match (&mut self.errors, other.errors) {
            (Some(tally), Some(more)) => tally.absorb(more),
            (None, more) => self.errors = more,
            (Some(_), None) => {}
        }
    }

    /// The logs were read whole ([`Found::read_whole`]) and cover the window
    /// from `cutoff` to `now`: they start before `cutoff` (`back` before
    /// `now`, as the operator said it) and hold the `mark` rlsctl had the
    /// server write a moment ago (without one, their last entry is recent).
    /// No table is called clean, and no error counted absent, for lack of
    /// data.
    pub(crate) fn covers(
        &self,
        source: &str,
        cutoff: i64,
        back: &str,
        now: i64,
        mark: Option<&str>,
    ) -> anyhow::Result<()> {
        self.read_whole(source)?;
        // The end of the window too: a log that stopped (an old or cut-off
        // file, a server that logs no LOG entry) shows nothing of since.
        // The mark apply had the server write just before shows it reaches
        // up to now; without one, its last entry must be recent.
        if let Some(mark) = mark {
            if !self.marks.iter().any(|m| m == mark) {
                anyhow::bail!(
                    "{source} does not hold the entry rlsctl had the server write a moment ago ({}{mark}): it is not the \
                     server's current log as it is now (a copy, an old or cut-off file), or the server writes no LOG entry \
                     (log_min_messages): it cannot show the time up to now; pass the current log",
                    LOG_MARK
                );
            }
        }
        match self.last_logged.as_deref().and_then(time::epoch_millis) {
            Some(_) if mark.is_some() => {}
            Some(end) if now - end <= MAX_LOG_LAG_MS => {}
            Some(end) => anyhow::bail!(
                "{source} ends at {}, {} before now: it does not show the time since (pass the current log; \
                 a server that writes nothing for that long logs too little to show that time)",
                time::utc_text(end),
                humantime::format_duration(std::time::Duration::from_millis((now - end).max(0) as u64 / 1000 * 1000))
            ),
            None => anyhow::bail!(
                "{source}: no time rlsctl can read at the end of the log, so whether it reaches up to now cannot be told"
            ),
        }
        match self.first_logged.as_deref().and_then(time::epoch_millis) {
            None => anyhow::bail!(
                "{source}: no time rlsctl can read at the start of the log (a plain log needs %t or %m in \
                 log_line_prefix, and log_timezone UTC or an offset), so whether it reaches back {back} cannot be \
                 told: nothing is called clean for lack of data"
            ),
            Some(start) if start > cutoff => anyhow::bail!(
                "{source} starts at {}, later than {back} ago ({}): it cannot show that whole window \
                 (pass the older log files, or a shorter --since)",
                time::utc_text(start),
                time::utc_text(cutoff)
            ),
            Some(_) => {}
        }
        Ok(())
    }

    /// Entries read in every log.
    pub(crate) fn entries(&self) -> u64 {
        self.files.iter().map(|f| f.entries).sum()
    }

    /// The logs were read as the server wrote them, or an error that says
    /// how they were not: no entry matched the layout (a wrong
    /// `log_line_prefix`, a CSV or JSON log read as plain), or lines were
    /// skipped (a record may be among them). No log read wrongly is ever
    /// an empty, clean answer.
    pub(crate) fn read_whole(&self, source: &str) -> anyhow::Result<()> {
        // A file of lines none of which reads as an entry was read in the
        // wrong layout, whatever the other files hold.
        if let Some(file) = self
            .files
            .iter()
            .find(|f| f.entries == 0 && f.unrecognized > 0)
        {
            bail!(
                "none of the {} line(s) of {} reads as a log entry of its layout ({}): pass the server's own \
                 log_line_prefix (SHOW log_line_prefix) with --log-line-prefix, or its .csv / .json log for csvlog and jsonlog",
                file.unrecognized,
                file.name,
                file.layout
            );
        }
        if self.entries() == 0 {
            bail!("{source} holds no log entry: pass the server's log as it is now (nothing can be shown clean from an empty log)");
        }
        if self.skipped_long > 0 {
            bail!(
                "{source}: {} line(s) longer than {MAX_LINE} bytes were skipped unread, and a record may be among them: nothing is called clean on a log read in part",
                self.skipped_long
            );
        }
        Ok(())
    }
}

/// Reads one log, fed in chunks of bytes as they arrive.
pub(crate) struct LogReader<'a> {
    layout: &'a Layout,
    name: String,
    read: FileRead,
    line: Vec<u8>,
    skipping: bool,
    csv: csv_core::Reader,
    field: Vec<u8>,
    fields: Vec<Vec<u8>>,
    /// A plain log's `ERROR` entry, until its `STATEMENT` is read.
    pending: Option<PendingError>,
    found: &'a mut Found,
}

impl<'a> LogReader<'a> {
    /// A reader of the log `name` laid out as `layout`, adding to `found`.
    pub(crate) fn new(layout: &'a Layout, name: &str, found: &'a mut Found) -> Self {
        Self {
            layout,
            name: name.to_string(),
            read: FileRead {
                name: name.to_string(),
                layout: layout.describe(),
                ..FileRead::default()
            },
            line: Vec::new(),
            skipping: false,
            csv: csv_core::Reader::new(),
            field: Vec::new(),
            fields: Vec::new(),
            pending: None,
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
            Layout::Csv => self.feed_csv(&[], true)?,
            _ => {
                if !self.line.is_empty() && !self.skipping {
                    let line = std::mem::take(&mut self.line);
                    self.line_done(&line);
                }
            }
        }
        self.flush_error();
        self.found.files.push(std::mem::take(&mut self.read));
        Ok(())
    }

    /// An entry at `time` (as the server wrote it) was read.
    fn entry_at(&mut self, time: Option<String>) {
        self.read.entries += 1;
        if time.is_some() {
            if self.read.first_entry.is_none() {
                self.read.first_entry = time.clone();
            }
            self.read.last_entry = time.clone();
            if self.found.first_logged.is_none() {
                self.found.first_logged = time.clone();
            }
            self.found.last_logged = time;
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
        match self.layout {
            Layout::Plain(prefix) => match prefix.entry(line) {
                Some(entry) => {
                    let time = prefix.field(entry.prefix, 't').map(String::from);
                    if self.found.errors.is_some() {
                        self.plain_error(prefix, &entry, time.clone());
                    }
                    self.entry_at(time);
                    self.found.hold(plain_held(prefix, line));
                }
                // a continuation line of a multi-line entry, or a blank one
                None if line.starts_with('\t') => {
                    if let Some(pending) = &mut self.pending {
                        pending.continued(&line[1..]);
                    }
                }
                None if line.trim().is_empty() => {}
                None => self.read.unrecognized += 1,
            },
            Layout::Json => match serde_json::from_str::<Value>(line) {
                Ok(Value::Object(entry)) => {
                    self.entry_at(
                        entry
                            .get("timestamp")
                            .and_then(Value::as_str)
                            .map(String::from),
                    );
                    self.found.hold(json_held(&entry));
                    if self.found.errors.is_some() {
                        if let Some(error) = ErrorEntry::from_json(&entry) {
                            self.found.error(error);
                        }
                    }
                }
                _ if line.trim().is_empty() => {}
                _ => self.read.unrecognized += 1,
            },
            Layout::Csv => self.read.unrecognized += 1,
        }
    }

    /// A plain log's entry, as the tenant-error tally reads it: an `ERROR`
    /// is held until the entries the server wrote with it (its `STATEMENT`,
    /// `DETAIL`, ...) are read, as they follow it in one write.
    fn plain_error(&mut self, prefix: &Prefix, entry: &PlainEntry<'_>, time: Option<String>) {
        let pid = prefix.field(entry.prefix, 'p');
        if let Some(pending) = &mut self.pending {
            if pending.same_process(pid) && pending.part_of(entry) {
                return;
            }
        }
        self.flush_error();
        if entry.severity == "ERROR" {
            self.pending = Some(PendingError::new(prefix, entry, time));
        }
    }

    /// The held `ERROR` entry, to the tally.
    fn flush_error(&mut self) {
        if let Some(pending) = self.pending.take() {
            self.found.error(pending.entry);
        }
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
                        // a csvlog row has two dozen fields (the message is
                        // the 14th); its first is log_time
                        if !self.skipping && fields.len() >= 14 {
                            let time = std::str::from_utf8(&fields[0]).ok().map(String::from);
                            self.entry_at(time);
                        } else if !self.skipping && fields.iter().any(|f| !f.is_empty()) {
                            self.read.unrecognized += 1;
                        }
                        if !self.skipping {
                            self.found.hold(csv_held(&fields));
                            if self.found.errors.is_some() {
                                if let Some(error) = ErrorEntry::from_csv(&fields) {
                                    self.found.error(error);
                                }
                            }
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

/// What the message of a `LOG` entry holds for rlsctl: a shadow record, or
/// the mark rlsctl had the server write (its nonce).
enum Held {
    Record(Record),
    Mark(String),
}

/// The record or mark of a `LOG` entry's message.
fn held(message: &str) -> Option<Held> {
    if let Some(nonce) = message.strip_prefix(LOG_MARK) {
        return Some(Held::Mark(nonce.to_string()));
    }
    message
        .strip_prefix(MARKER)
        .and_then(whole_record)
        .map(Held::Record)
}

/// What a plain log line holds, if the server wrote it there.
fn plain_held(prefix: &Prefix, line: &str) -> Option<Held> {
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
        if let Some(held) = held(message) {
            return Some(held);
        }
    }
    None
}

/// What a jsonlog entry holds: the message of a `LOG` entry.
fn json_held(entry: &serde_json::Map<String, Value>) -> Option<Held> {
    if entry.get("error_severity")?.as_str()? != "LOG" {
        return None;
    }
    held(entry.get("message")?.as_str()?)
}

/// What a csvlog row holds: field 12 the severity, 14 the message.
fn csv_held(fields: &[Vec<u8>]) -> Option<Held> {
    if fields.get(11)?.as_slice() != b"LOG" {
        return None;
    }
    held(std::str::from_utf8(fields.get(13)?).ok()?)
}

/// `text` as exactly one record object, nothing after it.
fn whole_record(text: &str) -> Option<Record> {
    serde_json::from_str(text).ok()
}
