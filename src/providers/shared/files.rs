//! Configuration files that a daemon reads and himaplan rewrites: reading
//! one that may be absent, and replacing one atomically while keeping the
//! previous file's owner and mode (the daemon often runs as its own user
//! and must still be able to read what himaplan wrote as root).
//!
//! Owns only local file I/O. Must not interpret file contents or talk to
//! any daemon; providers decide what to write and when to reload.

use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Mode of a file written where none existed before: readable by the
/// owner and group (the daemon's group), not by everyone, since such
/// files often name credentials files and admin users.
pub const NEW_FILE_MODE: u32 = 0o640;

/// The file's text, or `None` when it does not exist.
pub fn read_optional(path: &Path) -> io::Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Replaces `path` with `contents` atomically: a temporary file in the same
/// directory gets the previous file's owner and mode (or, for a new file,
/// the directory's owner and [`NEW_FILE_MODE`]), is written and fsynced,
/// then renamed over `path`, and the directory is fsynced. A reader sees
/// either the old file or the new one, never a partial one.
pub fn write_atomic(path: &Path, contents: &[u8]) -> io::Result<()> {
    let dir = parent_dir(path);
    let name = path.file_name().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "the path names no file"))?;
    let (uid, gid, mode) = match fs::metadata(path) {
        Ok(meta) => (meta.uid(), meta.gid(), meta.mode() & 0o7777),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            let meta = fs::metadata(&dir)?;
            (meta.uid(), meta.gid(), NEW_FILE_MODE)
        }
        Err(e) => return Err(e),
    };
    let tmp = dir.join(format!(".{}.himaplan-{}.tmp", name.to_string_lossy(), std::process::id()));
    let result = write_temp(&tmp, contents, uid, gid, mode).and_then(|()| fs::rename(&tmp, path));
    if result.is_err() {
        // Best effort: a leftover temporary file is harmless but untidy.
        let _ = fs::remove_file(&tmp);
        return result;
    }
    // The rename is durable only once the directory entry is on disk.
    File::open(&dir)?.sync_all()
}

/// Restores what [`read_optional`] saw before a change: the old text, or no
/// file at all.
pub fn restore(path: &Path, previous: Option<&str>) -> io::Result<()> {
    match previous {
        Some(text) => write_atomic(path, text.as_bytes()),
        None => match fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        },
    }
}

fn parent_dir(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

fn write_temp(tmp: &Path, contents: &[u8], uid: u32, gid: u32, mode: u32) -> io::Result<()> {
    let mut file = OpenOptions::new().write(true).create_new(true).mode(0o600).open(tmp)?;
    file.write_all(contents)?;
    // Owner first, then mode: chown may clear set-id bits, and the mode
    // must end as the previous file's.
    std::os::unix::fs::fchown(&file, Some(uid), Some(gid)).or_else(|e| {
        // Without the privilege to give the file away the owner stays ours;
        // that is only a failure when it differs from what was wanted.
        let meta = file.metadata()?;
        if meta.uid() == uid && meta.gid() == gid { Ok(()) } else { Err(e) }
    })?;
    file.set_permissions(fs::Permissions::from_mode(mode))?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_keeping_mode_and_restores_absence() {
        let dir = std::env::temp_dir().join(format!("himaplan-files-test-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("conf.ini");
        assert_eq!(read_optional(&path).expect("read"), None);
        write_atomic(&path, b"one").expect("create");
        assert_eq!(fs::metadata(&path).expect("meta").mode() & 0o777, NEW_FILE_MODE);
        fs::set_permissions(&path, fs::Permissions::from_mode(0o604)).expect("chmod");
        write_atomic(&path, b"two").expect("replace");
        assert_eq!(read_optional(&path).expect("read").as_deref(), Some("two"));
        assert_eq!(fs::metadata(&path).expect("meta").mode() & 0o777, 0o604);
        restore(&path, None).expect("restore");
        assert!(!path.exists());
        assert_eq!(fs::read_dir(&dir).expect("list").count(), 0, "no temporary file left");
        let _ = fs::remove_dir_all(&dir);
    }
}
