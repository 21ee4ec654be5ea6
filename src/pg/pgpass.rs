//! `~/.pgpass` lookup, as libpq does it.

use std::path::PathBuf;

/// The password file: `PGPASSFILE`, else `~/.pgpass`.
fn pgpass_path() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("PGPASSFILE") {
        return Some(PathBuf::from(path));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".pgpass"))
}

/// Looks up `host:port:database:user:password`, `*` matching anything. Like libpq,
/// a file readable by group or others is ignored (with a warning).
pub(crate) fn lookup(host: &str, port: u16, database: &str, user: &str) -> Option<String> {
    let path = pgpass_path()?;
    let metadata = std::fs::metadata(&path).ok()?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if metadata.permissions().mode() & 0o077 != 0 {
            tracing::warn!(
                "password file {} has group or world access; ignored (chmod 0600 it)",
                path.display()
            );
            return None;
        }
    }
    let text = std::fs::read_to_string(&path).ok()?;
    find(&text, host, &port.to_string(), database, user)
}

fn find(text: &str, host: &str, port: &str, database: &str, user: &str) -> Option<String> {
    let wanted = [host, port, database, user];
    text.lines()
        .filter(|line| !line.starts_with('#'))
        .find_map(|line| {
            let fields = split_fields(line);
            if fields.len() != 5 {
                return None;
            }
            let matches = fields[..4]
                .iter()
                .zip(wanted)
                .all(|(field, want)| field == "*" || field == want);
            matches.then(|| fields[4].clone())
        })
}

/// Splits on unescaped `:`; `\:` and `\\` are literal.
fn split_fields(line: &str) -> Vec<String> {
    let mut fields = Vec::new();
    let mut field = String::new();
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => field.extend(chars.next()),
            ':' if fields.len() < 4 => fields.push(std::mem::take(&mut field)),
            _ => field.push(c),
        }
    }
    fields.push(field);
    fields
}

#[cfg(test)]
mod tests {
    use super::find;

    #[test]
    fn matches_wildcards_and_escapes() {
        let text = "# comment\nother:5432:*:*:nope\n127.0.0.1:*:edgar:app_user:pa\\:ss\\\\word\n";
        assert_eq!(
            find(text, "127.0.0.1", "15432", "edgar", "app_user").as_deref(),
            Some("pa:ss\\word")
        );
        assert_eq!(find(text, "127.0.0.1", "15432", "edgar", "postgres"), None);
    }
}
