//! Where shadow records are read from: log files the operator has, the
//! server's own log files (when the session may read them), or, on RDS, the
//! RDS API's log files.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use anyhow::{anyhow, bail, Context, Result};

use super::log::{self, Found, Layout, LogReader, Prefix};
use crate::db::{describe, Db};
use crate::tunnel::aws::{sdk_config, AwsSettings};

/// Where to read.
#[derive(Debug, Clone)]
pub enum Source {
    /// Server log files on this machine (`--log-file`).
    Files(Vec<PathBuf>),
    /// The server's log files, read over the connection (`pg_read_file`).
    Server,
    /// An RDS instance's log files through the RDS API.
    Rds {
        /// The DB instance identifier.
        instance: String,
        /// Only files written within this long.
        since: Duration,
        /// Credentials and region.
        aws: AwsSettings,
    },
}

/// The records in the log files at `paths` (plain ones laid out with
/// `prefix`), and a description of the source.
pub fn from_files(paths: &[PathBuf], prefix: &str) -> Result<(Found, String)> {
    let mut found = Found::default();
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let layout = Layout::for_file(&name, prefix)?;
        log::read_file(path, &layout, &mut found)?;
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    Ok((found, names.join(", ")))
}

/// Bytes read per `pg_read_binary_file` call (bytes, not text: a chunk may
/// end inside a multibyte character).
const CHUNK: i64 = 4 * 1024 * 1024;

/// The records in the server's log files: every plain file of the log
/// directory when the session may list it (`pg_ls_logdir`), else the current
/// one, read with the server's own `log_line_prefix`.
pub async fn from_server(db: &Db) -> Result<(Found, String)> {
    let row = db
        .query_one(
            "SELECT pg_catalog.pg_current_logfile(), pg_catalog.current_setting('log_line_prefix')",
            &[],
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
    if let (Some(dir), Ok(rows)) = (
        &directory,
        db.query(
            "SELECT name FROM pg_catalog.pg_ls_logdir() WHERE name NOT LIKE '%.csv' AND name NOT LIKE '%.json' ORDER BY modification, name",
            &[],
        )
        .await,
    ) {
        for row in &rows {
            let name: String = row.try_get(0).context("reading pg_ls_logdir")?;
            files.push(format!("{dir}/{name}"));
        }
    }
    if !files.contains(&current) {
        files.push(current);
    }
    let layout = Layout::Plain(Prefix::new(&prefix)?);
    let mut found = Found::default();
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

/// Lines asked for per DownloadDBLogFilePortion call.
const LINES_PER_PORTION: i32 = 10_000;

/// The records in an RDS instance's log files written within `since`.
pub async fn from_rds(
    instance: &str,
    since: Duration,
    aws: &AwsSettings,
    prefix: &str,
) -> Result<(Found, String)> {
    let config = sdk_config(aws).await;
    if config.region().is_none() {
        bail!("no AWS region: set AWS_REGION, pass --region, or set one in the profile");
    }
    let client = aws_sdk_rds::Client::new(&config);
    let after = SystemTime::now()
        .checked_sub(since)
        .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_millis() as i64);
    let mut names: Vec<(i64, String)> = Vec::new();
    let mut marker: Option<String> = None;
    loop {
        let page = client
            .describe_db_log_files()
            .db_instance_identifier(instance)
            .file_last_written(after)
            .set_marker(marker.clone())
            .send()
            .await
            .map_err(|e| anyhow!("DescribeDBLogFiles for {instance}: {}", aws_error(&e)))?;
        for file in page.describe_db_log_files() {
            if let Some(name) = file.log_file_name() {
                names.push((file.last_written().unwrap_or_default(), name.to_string()));
            }
        }
        marker = page.marker().map(String::from).filter(|m| !m.is_empty());
        if marker.is_none() {
            break;
        }
    }
    names.sort();
    // RDS writes every log as stderr-format `.log` files (csvlog adds `.csv`
    // copies of the same entries, jsonlog `.json`): the plain ones are read.
    names.retain(|(_, name)| !name.ends_with(".csv") && !name.ends_with(".json"));
    let layout = Layout::Plain(Prefix::new(prefix)?);
    let mut found = Found::default();
    for (_, name) in &names {
        let mut marker = "0".to_string();
        let mut reader = LogReader::new(&layout, name, &mut found);
        loop {
            let portion = client
                .download_db_log_file_portion()
                .db_instance_identifier(instance)
                .log_file_name(name)
                .marker(&marker)
                .number_of_lines(LINES_PER_PORTION)
                .send()
                .await
                .map_err(|e| {
                    anyhow!(
                        "DownloadDBLogFilePortion {name} of {instance}: {}",
                        aws_error(&e)
                    )
                })?;
            reader.feed(portion.log_file_data().unwrap_or_default().as_bytes())?;
            let next = portion.marker().unwrap_or_default().to_string();
            if !portion.additional_data_pending().unwrap_or(false)
                || next.is_empty()
                || next == marker
            {
                break;
            }
            marker = next;
        }
        reader.finish()?;
    }
    Ok((
        found,
        format!(
            "RDS instance {instance}: {} log file(s) written in the last {}",
            names.len(),
            humantime::format_duration(since)
        ),
    ))
}

/// An SDK error with the service's code and message when there is one.
fn aws_error<E>(err: &aws_sdk_rds::error::SdkError<E>) -> String
where
    E: std::error::Error + aws_sdk_rds::error::ProvideErrorMetadata + 'static,
{
    match err.as_service_error() {
        Some(service) => format!(
            "{}: {}",
            service.code().unwrap_or("error"),
            service.message().unwrap_or_default()
        ),
        None => crate::error_chain(err),
    }
}

/// The DB instance identifier from an RDS endpoint: its first label
/// (`mydb.abc123.us-west-2.rds.amazonaws.com` is `mydb`).
pub fn instance_from_endpoint(endpoint: &str) -> Option<String> {
    endpoint
        .split('.')
        .next()
        .filter(|label| !label.is_empty())
        .map(String::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_instance_is_the_endpoints_first_label() {
        assert_eq!(
            instance_from_endpoint("mydb.abc123.us-west-2.rds.amazonaws.com").as_deref(),
            Some("mydb")
        );
        assert_eq!(instance_from_endpoint(""), None);
    }
}
