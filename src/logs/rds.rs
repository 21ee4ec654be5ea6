//! Shadow records from an RDS instance's log files, through the RDS API
//! (DescribeDBLogFiles, DownloadDBLogFilePortion).

use std::time::{Duration, SystemTime};

use anyhow::{anyhow, Result};

use crate::aws::{error_text, region_of, sdk_config, AwsSettings};
use crate::model::log::tenant_errors::Watch;
use crate::model::log::{Found, Layout, LogReader, Prefix};

/// Lines asked for per DownloadDBLogFilePortion call.
const LINES_PER_PORTION: i32 = 10_000;

/// The records in an RDS instance's log files written within `since`.
pub(crate) async fn records(
    instance: &str,
    since: Duration,
    aws: &AwsSettings,
    prefix: &str,
    watch: Option<&Watch>,
) -> Result<(Found, String)> {
    let config = sdk_config(aws).await;
    region_of(&config)?;
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
            .map_err(|e| anyhow!("DescribeDBLogFiles for {instance}: {}", error_text(&e)))?;
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
    let mut found = Found::watching(watch);
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
                        error_text(&e)
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
