//! Shadow records from the server's own log files, read over the connection
//! with `pg_read_binary_file` (superuser, or pg_read_server_files).

use anyhow::{anyhow, bail, Context, Result};

use crate::model::log::tenant_errors::Watch;
use crate::model::log::{Found, Layout, LogReader, Prefix};
use crate::pg::{describe, Db};

/// Bytes read per `pg_read_binary_file` call (bytes, not text: a chunk may
/// end inside a multibyte character).
const CHUNK: i64 = 4 * 1024 * 1024;

/// The records in the server's log files: every file of the log directory
/// in the layout the server writes (`log_destination`: jsonlog, else csvlog,
/// else plain with its own `log_line_prefix`) when the session may list it
/// (`pg_ls_logdir`), else the current one. A server set to log no `LOG`
/// entry (which records are) is refused.
pub(crate) async fn records(db: &Db, watch: Option<&Watch>) -> Result<(Found, String)> {
    let levels = db
        .query_one(
            "SELECT pg_catalog.current_setting('log_min_messages'), pg_catalog.current_setting('log_destination')",
            &[],
        )
        .await
        .map_err(|e| anyhow!("reading the server's logging settings: {}", describe(&e)))?;
    let min_messages: String = levels.try_get(0).context("reading log_min_messages")?;
    let destination: String = levels.try_get(1).context("reading log_destination")?;
    if matches!(min_messages.as_str(), "fatal" | "panic") {
        bail!(
            "the server logs no LOG entry (log_min_messages = {min_messages}), and shadow records are LOG entries: \
             none was written, so none can show a table dirty (set log_min_messages to warning, its default)"
        );
    }
    let (format, extension) = if destination.contains("jsonlog") {
        ("jsonlog", Some(".json"))
    } else if destination.contains("csvlog") {
        ("csvlog", Some(".csv"))
    } else {
        ("stderr", None)
    };
    let row = db
        .query_one(
            "SELECT pg_catalog.pg_current_logfile($1), pg_catalog.current_setting('log_line_prefix')",
            &[&format],
        )
        .await
        .map_err(|e| {
            anyhow!(
                "asking the server for its log file: {} (reading the server's log needs superuser, or pg_monitor and \
                 pg_read_server_files, which an RDS master does not have: use --rds, or --log-file)",
                describe(&e)
            )
        })?;
    let current: Option<String> = row
        .try_get(0)
        .context("reading the server's log file name")?;
    let prefix: String = row.try_get(1).context("reading log_line_prefix")?;
    let Some(current) = current else {
        bail!(
            "the server writes no log file it can name (logging_collector is off): pass --log-file with the server's log, \
             or --rds on RDS"
        );
    };
    let directory = current.rsplit_once('/').map(|(dir, _)| dir.to_string());
    let mut files = Vec::new();
    // the files of this layout: by extension, or neither for plain ones
    let listed = match extension {
        Some(ext) => db.query(
            "SELECT name FROM pg_catalog.pg_ls_logdir() WHERE name LIKE '%' || $1 ORDER BY modification, name",
            &[&ext],
        ).await,
        None => db.query(
            "SELECT name FROM pg_catalog.pg_ls_logdir() WHERE name NOT LIKE '%.csv' AND name NOT LIKE '%.json' ORDER BY modification, name",
            &[],
        ).await,
    };
    if let (Some(dir), Ok(rows)) = (&directory, listed) {
        for row in &rows {
            let name: String = row.try_get(0).context("reading pg_ls_logdir")?;
            files.push(format!("{dir}/{name}"));
        }
    }
    if !files.contains(&current) {
        files.push(current);
    }
    let layout = match extension {
        Some(".json") => Layout::Json,
        Some(_) => Layout::Csv,
        None => Layout::Plain(Prefix::new(&prefix)?),
    };
    let mut found = Found::watching(watch);
    for file in &files {
        read_server_file(db, file, &layout, &mut found).await?;
    }
    Ok((found, format!("the server's log ({})", files.join(", "))))
}

async fn read_server_file(db: &Db, file: &str, layout: &Layout, found: &mut Found) -> Result<()> {
    let mut reader = LogReader::new(layout, file, found);
    let mut offset = 0i64;
    loop {
        let chunk: Vec<u8> = db
            .query_one(
                "SELECT pg_catalog.pg_read_binary_file($1, $2, $3)",
                &[&file, &offset, &CHUNK],
            )
            .await
            .map_err(|e| {
                anyhow!(
                    "reading the server log {file}: {} (pg_read_binary_file needs superuser or pg_read_server_files, \
                     which an RDS master does not have: use --rds, or --log-file)",
                    describe(&e)
                )
            })?
            .try_get(0)
            .with_context(|| format!("reading the server log {file}"))?;
        reader.feed(&chunk)?;
        offset += chunk.len() as i64;
        if (chunk.len() as i64) < CHUNK {
            break;
        }
    }
    reader.finish()
}
