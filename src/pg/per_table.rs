//! Work on every tenant table in a constant number of statements, with locks
//! released table by table (see `sql/probes/probes.sql`): the input goes in as
//! one bound JSON parameter, the DO block runs, its JSON result comes back.
//! Must run inside a transaction (the settings that carry input and output are
//! transaction-local).

use serde_json::Value;

use super::{Begin, Db, DbResultExt};
use crate::model::sql::{render, Step};

/// One table as the blocks take it: schema and name (quoted server-side with
/// `format('%I')`) and the tenant column's type as `format_type` wrote it.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct TableRef {
    /// Schema.
    pub(crate) schema: String,
    /// Table name.
    pub(crate) name: String,
    /// The tenant column's type, e.g. `text` or `uuid`.
    #[serde(rename = "type")]
    pub(crate) column_type: String,
    /// A partitioned table (rows are routed to partitions before policies apply).
    pub(crate) partitioned: bool,
}

/// Runs the DO block `step` with `input` and returns its per-table results, in
/// the order of `input.tables`. Three statements whatever the number of tables.
/// A result that is not one JSON object or number per table sent is an error
/// naming the step: a short or garbled answer must never read as "no leak".
pub async fn run(db: &Db, step: Step, input: &Value) -> anyhow::Result<Vec<Value>> {
    run_block(db, step.name(), &render(step, &[]), input).await
}

/// [`run`] with the block's SQL given (`step` names it in errors).
pub async fn run_block(
    db: &Db,
    step: &str,
    block: &str,
    input: &Value,
) -> anyhow::Result<Vec<Value>> {
    // Sent together (one round trip through a tunnel, not three): on one
    // connection they run in order, and after a failure the rest fail too.
    let (input_sql, output_sql, text) = (
        render(Step::ProbeInput, &[]),
        render(Step::ProbeOutput, &[]),
        input.to_string(),
    );
    let (_, _, row) = tokio::try_join!(
        async {
            db.query(&input_sql, &[&text])
                .await
                .doing(&format!("{step}: sending its input"))
        },
        async {
            db.execute(block, &[])
                .await
                .doing(&format!("{step}: running it"))
        },
        async {
            db.query_one(&output_sql, &[])
                .await
                .doing(&format!("{step}: reading its result"))
        },
    )?;
    let output: Option<String> = row
        .try_get(0)
        .map_err(|e| anyhow::anyhow!("{step}: its result is not text: {e}"))?;
    let sent = input["tables"].as_array().map_or(0, Vec::len);
    parse_results(step, output.as_deref(), sent)
}

/// The per-table results of `step`: a JSON array of exactly `sent` objects or
/// numbers, or an error that says what came back instead.
pub(crate) fn parse_results(
    step: &str,
    output: Option<&str>,
    sent: usize,
) -> anyhow::Result<Vec<Value>> {
    let Some(output) = output else {
        anyhow::bail!("{step} returned no result for {sent} table(s)");
    };
    let items = match serde_json::from_str(output) {
        Ok(Value::Array(items)) => items,
        Ok(other) => anyhow::bail!(
            "{step} returned {} instead of one result per table",
            kind(&other)
        ),
        Err(e) => anyhow::bail!("{step} returned something that is not JSON ({e})"),
    };
    if items.len() != sent {
        anyhow::bail!(
            "{step} returned {} result(s) for {sent} table(s): refusing to read a partial answer as a clean one",
            items.len()
        );
    }
    if let Some((i, bad)) = items
        .iter()
        .enumerate()
        .find(|(_, v)| !(v.is_object() || v.is_number()))
    {
        anyhow::bail!(
            "{step} returned {} for table {} of {sent} instead of a result",
            kind(bad),
            i + 1
        );
    }
    Ok(items)
}

/// What kind of JSON value it is, for an error.
fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Runs the DO block `step` with the tables of `input` split across `dbs`
/// (one or two connections of the same role), each part in its own
/// transaction that is rolled back, the parts at once: the first statement on
/// a table in a new session loads its metadata (the relation, its indexes and
/// policies), work a server does in parallel on two sessions. The results come
/// back in the order of `input.tables`.
pub(crate) async fn run_split(
    dbs: &[&Db],
    step: Step,
    input: &Value,
) -> anyhow::Result<Vec<Value>> {
    let tables = input["tables"].as_array().cloned().unwrap_or_default();
    let part = |i: usize| {
        let size = tables.len().div_ceil(dbs.len().max(1)).max(1);
        let mut part = input.clone();
        part["tables"] = Value::Array(tables.iter().skip(i * size).take(size).cloned().collect());
        part
    };
    match dbs {
        [first, second, ..] => {
            let (a, b) = (part(0), part(1));
            let (mut a, b) =
                tokio::try_join!(rolled_back(first, step, &a), rolled_back(second, step, &b))?;
            a.extend(b);
            Ok(a)
        }
        [only] => rolled_back(only, step, &part(0)).await,
        [] => Ok(Vec::new()),
    }
}

/// [`run`] inside a transaction that is always rolled back, sent with it in
/// one batch.
async fn rolled_back(db: &Db, step: Step, input: &Value) -> anyhow::Result<Vec<Value>> {
    db.rolled_back_batch(Begin::Pinned, run(db, step, input))
        .await
}

#[cfg(test)]
mod tests {
    use super::parse_results;

    #[test]
    fn a_result_per_table_is_read() {
        let items =
            parse_results("probe_reads", Some(r#"[{"visible":1},{"visible":0}]"#), 2).unwrap();
        assert_eq!(items.len(), 2);
        assert_eq!(parse_results("count", Some("[3, 0]"), 2).unwrap().len(), 2);
    }

    #[test]
    fn short_malformed_or_missing_results_are_errors() {
        let short = parse_results("probe_reads", Some(r#"[{"visible":0}]"#), 2).unwrap_err();
        assert!(
            short
                .to_string()
                .contains("probe_reads returned 1 result(s) for 2 table(s)"),
            "{short}"
        );
        let long = parse_results("probe_reads", Some("[{}, {}, {}]"), 2).unwrap_err();
        assert!(long.to_string().contains("3 result(s) for 2"), "{long}");
        let object = parse_results("probe_reads", Some(r#"{"visible":0}"#), 1).unwrap_err();
        assert!(object.to_string().contains("an object instead"), "{object}");
        let garbled = parse_results("probe_reads", Some("[{\"visible\""), 1).unwrap_err();
        assert!(garbled.to_string().contains("not JSON"), "{garbled}");
        let item = parse_results("probe_writes", Some(r#"[{}, "x"]"#), 2).unwrap_err();
        assert!(
            item.to_string().contains("a string for table 2 of 2"),
            "{item}"
        );
        let none = parse_results("probe_reads", None, 2).unwrap_err();
        assert!(none.to_string().contains("no result"), "{none}");
        // Nothing sent, nothing back: fine.
        assert!(parse_results("probe_reads", Some("[]"), 0)
            .unwrap()
            .is_empty());
    }
}
