//! The two filesystem steps every durability guarantee here is built from.
//!
//! POSIX makes a file's *name* durable only when its directory is fsynced:
//! fsyncing the file itself is not enough, and some filesystems (XFS among
//! them) really do lose a new, fsynced file whose directory was not synced.
//! So every create, rename or remove that a guarantee depends on is followed
//! by [`sync_dir`] before the guarantee is given.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// Makes the entries of `dir` (creations, renames, removals) durable.
pub fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Replaces `path` with `bytes` atomically and durably: a crash leaves the
/// old content or the new, never a mix or nothing. Steps: write a temp file,
/// fsync it, rename it over `path`, fsync the directory.
pub(super) fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    let result = (|| {
        let mut f = File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        fs::rename(&tmp, path)?;
        sync_dir(path.parent().unwrap_or(Path::new(".")))
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result
}

/// Free bytes for an unprivileged writer on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> io::Result<u64> {
    let st = rustix::fs::statvfs(path).map_err(io::Error::from)?;
    Ok(st.f_bavail.saturating_mul(st.f_frsize))
}
