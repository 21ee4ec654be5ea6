//! Work on every tenant table in a constant number of statements, with locks
//! released table by table (see `sql/probes/probes.sql`): the input goes in as
//! one bound JSON parameter, the DO block runs, its JSON result comes back.
//! Must run inside a transaction (the settings that carry input and output are
//! transaction-local).

use serde_json::Value;

use super::Db;
use crate::bundle::sql::render;

/// One table as the blocks take it: schema and name (quoted server-side with
/// `format('%I')`) and the tenant column's type as `format_type` wrote it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TableRef {
    /// Schema.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// The tenant column's type, e.g. `text` or `uuid`.
    #[serde(rename = "type")]
    pub column_type: String,
    /// A partitioned table (rows are routed to partitions before policies apply).
    pub partitioned: bool,
}

/// Runs the DO block `step` with `input` and returns its per-table results, in
/// the order of `input.tables`. Three statements whatever the number of tables.
pub async fn run(db: &Db, step: &str, input: &Value) -> Result<Vec<Value>, tokio_postgres::Error> {
    db.query(&render("probe_input", &[]), &[&input.to_string()])
        .await?;
    db.execute(&render(step, &[]), &[]).await?;
    let row = db.query_one(&render("probe_output", &[]), &[]).await?;
    let output: String = row.get(0);
    Ok(match serde_json::from_str(&output) {
        Ok(Value::Array(items)) => items,
        _ => Vec::new(),
    })
}

/// Runs the DO block `step` with the tables of `input` split across `dbs`
/// (one or two connections of the same role), each part in its own
/// transaction that is rolled back, the parts at once: the first statement on
/// a table in a new session loads its metadata (the relation, its indexes and
/// policies), work a server does in parallel on two sessions. The results come
/// back in the order of `input.tables`.
pub async fn run_split(
    dbs: &[&Db],
    step: &str,
    input: &Value,
) -> Result<Vec<Value>, tokio_postgres::Error> {
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

/// [`run`] inside a transaction that is always rolled back.
async fn rolled_back(
    db: &Db,
    step: &str,
    input: &Value,
) -> Result<Vec<Value>, tokio_postgres::Error> {
    db.begin_pinned().await?;
    let result = run(db, step, input).await;
    db.rollback().await?;
    result
}
