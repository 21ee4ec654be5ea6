//! The TOML files rlsctl reads (`--targets`, `--accept`): every error names
//! the file, and past the syntax the line and the field.

use std::ops::Range;

use anyhow::{anyhow, Result};
use serde::de::DeserializeOwned;

/// A TOML file's text and its path (for messages).
pub(crate) struct TomlFile<'a> {
    /// The path, as given.
    pub(crate) path: &'a str,
    /// Its contents.
    pub(crate) text: &'a str,
}

impl TomlFile<'_> {
    /// The whole file as `T`. The error names the file, the line and what
    /// was wrong, never the text: toml's own message quotes the line (a
    /// `password = "..."`, or the first line of a file that is no TOML at
    /// all, `/etc/shadow` under a sudo rule), and serde's quotes the value.
    pub(crate) fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        toml::from_str(self.text).map_err(|e| {
            let message = without_values(e.message());
            let Some(span) = e.span() else {
                return anyhow!("{}: {message}", self.path);
            };
            let start = span.start.min(self.text.len());
            let line = self.text[..start].matches('\n').count() + 1;
            // The key of a `key = value` line, which names the field.
            let line_start = self.text[..start].rfind('\n').map_or(0, |i| i + 1);
            let key = self.text[line_start..]
                .split(['=', '\n'])
                .next()
                .map(str::trim)
                .filter(|k| {
                    !k.is_empty()
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
                });
            match key {
                Some(key) => anyhow!("{}, line {line}: {key}: {message}", self.path),
                None => anyhow!("{}, line {line}: {message}", self.path),
            }
        })
    }

    /// `PATH, line N: FIELD`, for a value found at `span`.
    pub(crate) fn at(&self, span: Range<usize>, field: &str) -> String {
        let line = self.text[..span.start].matches('\n').count() + 1;
        format!("{}, line {line}: {field}", self.path)
    }
}

/// `message` with every double-quoted value replaced by `"…"` (field names,
/// in backticks, stay).
fn without_values(message: &str) -> String {
    let mut out = String::new();
    let mut quoted = false;
    for c in message.lines().next().unwrap_or_default().chars() {
        match (c, quoted) {
            ('"', false) => {
                out.push_str("\"…");
                quoted = true;
            }
            ('"', true) => {
                out.push('"');
                quoted = false;
            }
            (_, true) => {}
            (c, false) => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[allow(dead_code)]
    struct Port {
        port: u16,
    }

    #[test]
    fn errors_name_the_line_and_never_the_text() {
        for text in [
            "port = \"hunter2\"\n",
            "\n\nroot:$6$hunter2$abc:19000:0:99999:7:::\n",
            "port = 1\npassword = \"hunter2\n",
        ] {
            let file = TomlFile {
                path: "f.toml",
                text,
            };
            let err = file.parse::<Port>().unwrap_err().to_string();
            assert!(!err.contains("hunter2"), "{err}");
            assert!(err.starts_with("f.toml, line "), "{err}");
        }
    }
}
