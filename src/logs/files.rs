//! Log files the operator has (`--log-file`), read from disk in bounded
//! memory, each in the layout its name says.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

use crate::model::log::tenant_errors::Watch;
use crate::model::log::{Found, Layout, LogReader};

/// The records in the log files at `paths` (plain ones laid out with
/// `prefix`), and a description of the source; tenant-context errors
/// tallied as `watch` says.
pub(crate) fn read(
    paths: &[PathBuf],
    prefix: &str,
    watch: Option<&Watch>,
) -> Result<(Found, String)> {
    let mut found = Found::watching(watch);
    for path in paths {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let layout = Layout::for_file(&name, prefix)?;
        read_file(path, &layout, &mut found)?;
    }
    if let Some(gap) = crate::model::log::rotation::left_out(&found.files) {
        bail!("{gap}");
    }
    let names: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    Ok((found, names.join(", ")))
}

/// Reads a log file in bounded memory. A device, a directory or a file that
/// holds a NUL byte is an error.
fn read_file(path: &std::path::Path, layout: &Layout, found: &mut Found) -> Result<()> {
    use std::io::Read;
    let meta = std::fs::metadata(path)
        .with_context(|| format!("opening the log file {}", path.display()))?;
    if !meta.is_file() {
        bail!(
            "{} is not a regular file: pass the server's log file",
            path.display()
        );
    }
    let mut file = std::fs::File::open(path)
        .with_context(|| format!("opening the log file {}", path.display()))?;
    let name = path.display().to_string();
    let mut reader = LogReader::new(layout, &name, found);
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = file
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        reader.feed(&buf[..n])?;
    }
    reader.finish()
}
