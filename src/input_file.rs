//! Small files rlsctl reads whole (`--targets`, `--accept`, `--password-from
//! file:`): a regular file of bounded size, opened without blocking, so a
//! FIFO, a device such as `/dev/zero`, or a huge file is an error rather than
//! a hang or an exhausted memory; and, for a file that decides what rlsctl
//! trusts, private as `.env` is (see [`check_private`]).

use std::io::Read;
use std::path::Path;

use anyhow::{bail, Context, Result};

/// The largest such file: far more than any targets or acceptance file.
pub(crate) const MAX_INPUT_FILE: u64 = 16 * 1024 * 1024;

/// The text of `path` (`what` names it in errors); `private`: refuse it when
/// someone else could have written it.
pub(crate) fn read(path: &Path, what: &str, private: bool) -> Result<String> {
    use std::os::unix::fs::OpenOptionsExt;
    let shown = path.display();
    // O_NONBLOCK: opening a FIFO for reading would wait for a writer.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::libc::O_NONBLOCK)
        .open(path)
        .with_context(|| format!("{what}: cannot open {shown}"))?;
    let meta = file
        .metadata()
        .with_context(|| format!("{what}: cannot read {shown}"))?;
    if !meta.is_file() {
        bail!("{what}: {shown} is not a regular file");
    }
    if meta.len() > MAX_INPUT_FILE {
        bail!(
            "{what}: {shown} is {} bytes, more than the {MAX_INPUT_FILE} such a file can be",
            meta.len()
        );
    }
    if private {
        check_private(path, &meta)?;
    }
    let mut text = String::new();
    file.take(MAX_INPUT_FILE + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("{what}: cannot read {shown} (it must be UTF-8 text)"))?;
    Ok(text)
}

/// A file that decides what rlsctl trusts (`.env`, acceptances) must be
/// owned by the user running it (or root) and writable by nobody else, as
/// ssh and libpq require of their files.
pub(crate) fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<()> {
    use std::os::unix::fs::MetadataExt;
    let me = nix::unistd::geteuid().as_raw();
    if meta.uid() != me && meta.uid() != 0 {
        bail!(
            "refusing {}: it is owned by uid {}, not by you (uid {me}) or root; whoever can write it chooses what \
             rlsctl connects to and what it accepts (chown it, or move it away)",
            path.display(),
            meta.uid()
        );
    }
    let mode = meta.mode() & 0o777;
    if mode & 0o022 != 0 {
        bail!(
            "refusing {}: it is writable by group or others (mode {mode:04o}); whoever can write it chooses what \
             rlsctl connects to and what it accepts: chmod go-w {}",
            path.display(),
            path.display()
        );
    }
    Ok(())
}
