//! How a log is laid out: plain (stderr) with its `log_line_prefix`,
//! csvlog or jsonlog; and the prefix as a pattern that finds where a plain
//! entry starts and the fields it holds.

use anyhow::{Context, Result};

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
/// it and captures the fields rlsctl reads (the line's time, ...).
#[derive(Debug)]
pub(crate) struct Prefix {
    whole: regex::Regex,
    /// The `log_line_prefix` as given.
    text: String,
}

impl Prefix {
    /// Compiles `log_line_prefix` (escapes as PostgreSQL documents them; an
    /// unknown one matches anything, as a client-chosen field does).
    pub(crate) fn new(log_line_prefix: &str) -> Result<Self> {
        let mut pattern = String::from("^");
        let mut named = Vec::new();
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
            // The first time (`%t` or `%m`, as `t`), user, application,
            // SQLSTATE and process id are captured: the line's time, and the
            // fields the tenant-error tally groups ERROR entries by. (Within
            // the whole prefix: a zone's `\S+` alone would run on into what
            // follows it, as in RDS's `%t:%r`.)
            let name = if escape == 'm' { 't' } else { escape };
            let group = match name {
                't' | 'u' | 'a' | 'e' | 'p' if !named.contains(&name) => {
                    named.push(name);
                    format!("(?P<{name}>{field})")
                }
                _ => format!("(?:{field})"),
            };
            if padded {
                pattern.push_str(&format!(" *{group} *"));
            } else {
                pattern.push_str(&group);
            }
        }
        pattern.push('$');
        let compile = |pattern: &str| {
            regex::Regex::new(pattern)
                .with_context(|| format!("reading log_line_prefix {log_line_prefix:?}"))
        };
        Ok(Self {
            whole: compile(&pattern)?,
            text: log_line_prefix.to_string(),
        })
    }

    /// `head` is the whole prefix, as the server writes it.
    pub(crate) fn matches(&self, head: &str) -> bool {
        self.whole.is_match(head)
    }

    /// The entry `line` starts, if it starts one (the whole prefix, then a
    /// severity and `:  `): its prefix, its severity and its message.
    pub(crate) fn entry<'l>(&self, line: &'l str) -> Option<PlainEntry<'l>> {
        line.match_indices(":  ").find_map(|(at, sep)| {
            let head = &line[..at];
            SEVERITIES.iter().find_map(|&severity| {
                let before = head.strip_suffix(severity)?;
                self.matches(before).then(|| PlainEntry {
                    prefix: before,
                    severity,
                    message: &line[at + sep.len()..],
                })
            })
        })
    }

    /// The prefix field `%escape` (`t` for the first `%t` or `%m`, `u`, `a`,
    /// `e` or `p`) of an entry's prefix, where the prefix has it.
    pub(crate) fn field<'l>(&self, prefix: &'l str, escape: char) -> Option<&'l str> {
        let name = escape.to_string();
        Some(self.whole.captures(prefix)?.name(&name)?.as_str())
    }
}

/// The start of a plain log's entry.
pub(crate) struct PlainEntry<'l> {
    /// The `log_line_prefix` part.
    pub(crate) prefix: &'l str,
    /// `LOG`, `ERROR`, `STATEMENT`, ...
    pub(crate) severity: &'static str,
    /// The rest of the line.
    pub(crate) message: &'l str,
}

/// The severities a plain log entry can have after its prefix.
const SEVERITIES: [&str; 17] = [
    "LOG",
    "ERROR",
    "WARNING",
    "FATAL",
    "PANIC",
    "STATEMENT",
    "DETAIL",
    "HINT",
    "CONTEXT",
    "NOTICE",
    "INFO",
    "QUERY",
    "LOCATION",
    "DEBUG",
    "DEBUG1",
    "DEBUG2",
    "DEBUG3",
];

impl Layout {
    /// How reports name it.
    pub(crate) fn describe(&self) -> String {
        match self {
            Self::Plain(prefix) => format!("plain, log_line_prefix {:?}", prefix.text),
            Self::Json => "jsonlog".into(),
            Self::Csv => "csvlog".into(),
        }
    }
}
