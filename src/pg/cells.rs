//! Reading a row's columns without panicking: a NULL where the SQL promised a
//! value, or a type that drifted from it, is an error naming the query and the
//! column, never a panic on data.

use anyhow::{anyhow, Result};
use tokio_postgres::types::FromSql;
use tokio_postgres::Row;

/// A row of the query named `query`.
pub(crate) struct Cells<'a> {
    row: &'a Row,
    query: &'static str,
}

impl<'a> Cells<'a> {
    /// The row `row` of the query named `query` (for errors).
    pub(crate) fn new(row: &'a Row, query: &'static str) -> Self {
        Self { row, query }
    }

    /// The value of `column`, or an error naming the query and the column.
    pub(crate) fn column<T: FromSql<'a>>(&self, column: &str) -> Result<T> {
        self.row
            .try_get(column)
            .map_err(|e| anyhow!("reading {}: column {column}: {e}", self.query))
    }

    /// The value of the `index`th column (for queries whose columns have no names).
    pub(crate) fn at<T: FromSql<'a>>(&self, index: usize) -> Result<T> {
        self.row
            .try_get(index)
            .map_err(|e| anyhow!("reading {}: column {index}: {e}", self.query))
    }
}

/// Every row of the query named `query`, read by `read`.
pub(crate) fn all<'a, T>(
    rows: &'a [Row],
    query: &'static str,
    read: impl Fn(&Cells<'a>) -> Result<T>,
) -> Result<Vec<T>> {
    rows.iter()
        .map(|row| read(&Cells::new(row, query)))
        .collect()
}
