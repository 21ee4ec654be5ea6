//! `.env` in the working directory: settings for the commands, read only when
//! nobody else could have written them. It can choose the database, the TLS
//! mode, the weak-authentication opt-in and the program run as the Session
//! Manager plugin, so, as ssh and libpq do for their files, a `.env` owned by
//! another user or writable by group or others is refused, and a setting from
//! it that weakens a protection is named in a warning.

use std::collections::HashSet;
use std::path::Path;
use std::sync::OnceLock;

use anyhow::{Context, Result};

/// The variables the `.env` file set (those the environment did not already have).
static FROM_FILE: OnceLock<HashSet<String>> = OnceLock::new();

/// Reads `path` into the environment without overriding what is set: flag >
/// environment > `.env` > default. Nothing when the file does not exist.
/// Call it before any thread starts (it sets environment variables).
pub fn load(path: &Path) -> Result<()> {
    let mut set = HashSet::new();
    if let Ok(meta) = std::fs::metadata(path) {
        crate::input_file::check_private(path, &meta)?;
        let entries =
            dotenvy::from_path_iter(path).with_context(|| format!("reading {}", path.display()))?;
        for entry in entries {
            let (key, value) = entry.map_err(|e| unquoted(e, path))?;
            if std::env::var_os(&key).is_none() {
                // main calls this before the runtime starts: no other thread
                // reads the environment yet.
                std::env::set_var(&key, &value);
                set.insert(key);
            }
        }
    }
    for warning in weakenings(&set) {
        crate::say!("rlsctl: warning: {warning}");
    }
    let _ = FROM_FILE.set(set);
    Ok(())
}

/// A `.env` error naming the file and line, never the line's text (an
/// unterminated `PGPASSWORD="...` would print the password).
fn unquoted(err: dotenvy::Error, path: &Path) -> anyhow::Error {
    match err {
        dotenvy::Error::LineParse(line, _) => {
            let number = std::fs::read_to_string(path)
                .ok()
                .and_then(|text| {
                    text.lines()
                        .position(|l| line.starts_with(l) || l.starts_with(&line))
                })
                .map(|i| format!(", line {}", i + 1))
                .unwrap_or_default();
            anyhow::anyhow!(
                "reading {}{number}: the line cannot be parsed (not shown: it may hold a secret)",
                path.display()
            )
        }
        other => anyhow::anyhow!("reading {}: {other}", path.display()),
    }
}

/// Whether `.env` set `key`.
pub(crate) fn set_by_file(key: &str) -> bool {
    FROM_FILE.get().is_some_and(|keys| keys.contains(key))
}

/// Where the value of environment variable `key` came from, for a message.
pub(crate) fn origin(key: &str) -> String {
    if set_by_file(key) {
        format!("{key} in .env")
    } else {
        format!("{key} in the environment")
    }
}

/// The settings `.env` made that weaken a protection.
fn weakenings(set: &HashSet<String>) -> Vec<String> {
    let value = |key: &str| std::env::var(key).unwrap_or_default();
    let mut out = Vec::new();
    if set.contains("PGSSLMODE") && !value("PGSSLMODE").eq_ignore_ascii_case("verify-full") {
        out.push(format!(
            "PGSSLMODE={} in .env: the server's certificate is not fully verified",
            value("PGSSLMODE")
        ));
    }
    if set.contains("RLSCTL_ALLOW_WEAK_AUTH")
        && !matches!(value("RLSCTL_ALLOW_WEAK_AUTH").as_str(), "" | "false" | "0")
    {
        out.push("RLSCTL_ALLOW_WEAK_AUTH in .env: a server may ask for a cleartext or MD5 password, or skip authentication".into());
    }
    if set.contains("SESSION_MANAGER_PLUGIN") {
        out.push(format!(
            "SESSION_MANAGER_PLUGIN={} in .env: that program runs as the Session Manager plugin",
            value("SESSION_MANAGER_PLUGIN")
        ));
    }
    if set.contains("RLSCTL_ACCEPT") {
        out.push(format!(
            "RLSCTL_ACCEPT={} in .env: the findings that file accepts are not failures",
            value("RLSCTL_ACCEPT")
        ));
    }
    if set.contains("RLSCTL_SSH_CONFIG") {
        out.push(format!(
            "RLSCTL_SSH_CONFIG={} in .env: ssh runs what that file says (ProxyCommand, LocalCommand)",
            value("RLSCTL_SSH_CONFIG")
        ));
    }
    out
}
