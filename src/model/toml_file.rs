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
    /// The whole file as `T`; toml's own message names the line.
    pub(crate) fn parse<T: DeserializeOwned>(&self) -> Result<T> {
        toml::from_str(self.text).map_err(|e| anyhow!("{}: {e}", self.path))
    }

    /// `PATH, line N: FIELD`, for a value found at `span`.
    pub(crate) fn at(&self, span: Range<usize>, field: &str) -> String {
        let line = self.text[..span.start].matches('\n').count() + 1;
        format!("{}, line {line}: {field}", self.path)
    }
}
