//! The local run lock: an exclusive OS advisory lock (`flock`) on
//! `FILE.lock`, held for a whole run that writes state.
//!
//! The kernel releases the lock when its holder exits, however it exits, so
//! a crashed run never leaves the state locked. The file's body (holder,
//! operation, time, id) is information for the error message of whoever
//! waits; it must never be what decides who holds the lock.

use super::{StateError, new_id};
use serde::{Deserialize, Serialize};
use std::fmt;
use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How often a waiting run retries the lock.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// Who holds (or held) a state lock: the body of the lock file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LockInfo {
    /// Random id; `force-unlock ID` must name it.
    pub id: String,
    /// The command holding the lock, e.g. `apply`.
    pub operation: String,
    /// `user@hostname`.
    pub who: String,
    /// When the lock was taken, RFC 3339 in UTC.
    pub created: String,
    pub pid: u32,
}

impl LockInfo {
    /// Information about a lock the current process is taking.
    pub fn new(operation: &str) -> LockInfo {
        LockInfo {
            id: new_id(),
            operation: operation.to_string(),
            who: format!("{}@{}", current_user(), current_host()),
            created: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            pid: std::process::id(),
        }
    }

    /// Stands for a holder whose lock file says nothing readable (it may be
    /// between taking the lock and writing its body).
    pub fn unknown() -> LockInfo {
        LockInfo { id: String::new(), operation: String::new(), who: String::new(), created: String::new(), pid: 0 }
    }
}

impl fmt::Display for LockInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.id.is_empty() {
            return write!(f, "held by a process that left no holder information");
        }
        write!(f, "id {}, held by {} (pid {}) for {:?} since {}", self.id, self.who, self.pid, self.operation, self.created)
    }
}

/// A held state lock; dropping it releases the lock.
#[derive(Debug)]
pub struct StateLock {
    file: File,
    path: PathBuf,
    info: LockInfo,
}

impl StateLock {
    /// Takes the exclusive lock on `lock_path`, creating the file if needed.
    ///
    /// With a zero `timeout` a held lock fails at once with
    /// [`StateError::Locked`]; otherwise it is retried every 100 ms until
    /// `timeout` has passed, then fails with [`StateError::LockTimeout`].
    /// Both name the holder as its lock file describes it.
    pub fn acquire(lock_path: &Path, operation: &str, timeout: Duration) -> Result<StateLock, StateError> {
        // `None` (a timeout too large to add to now) means wait for ever.
        let deadline = Instant::now().checked_add(timeout);
        loop {
            let file = open_lock_file(lock_path)?;
            match file.try_lock() {
                Ok(()) => {}
                Err(TryLockError::WouldBlock) => {
                    let now = Instant::now();
                    if timeout.is_zero() {
                        return Err(StateError::Locked { holder: read_holder(lock_path) });
                    }
                    if deadline.is_some_and(|d| now >= d) {
                        return Err(StateError::LockTimeout { holder: read_holder(lock_path) });
                    }
                    let wait = deadline.map_or(POLL_INTERVAL, |d| POLL_INTERVAL.min(d - now));
                    std::thread::sleep(wait);
                    continue;
                }
                Err(TryLockError::Error(e)) => return Err(StateError::io(lock_path, e)),
            }
            // `force_unlock` removes the file; a run that locked the removed
            // file would share the lock with one that created a new file.
            if !still_at_path(&file, lock_path) {
                continue;
            }
            let info = LockInfo::new(operation);
            let lock = StateLock { file, path: lock_path.to_path_buf(), info };
            lock.write_body()?;
            return Ok(lock);
        }
    }

    pub fn info(&self) -> &LockInfo {
        &self.info
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn write_body(&self) -> Result<(), StateError> {
        let body = serde_json::to_string_pretty(&self.info).map_err(|e| StateError::Other(e.to_string()))?;
        let mut file = &self.file;
        file.set_len(0)
            .and_then(|()| file.seek(SeekFrom::Start(0)))
            .and_then(|_| file.write_all(format!("{body}\n").as_bytes()))
            .map_err(|e| StateError::io(&self.path, e))
    }
}

impl Drop for StateLock {
    fn drop(&mut self) {
        // Clear the body first so that no one reads a stale holder after the
        // release; errors are ignored because the kernel drops the lock with
        // the file handle whatever happens here.
        let _ = self.file.set_len(0);
        let _ = self.file.unlock();
    }
}

/// Removes a lock left by a run that can no longer release it.
///
/// Only when the lock file's body names `id` ([`StateError::NoSuchLock`]
/// otherwise) and no live process holds the flock: the body is information
/// only, the flock says whether its holder lives. A held flock is
/// [`StateError::LockHeld`] naming the holder, and nothing is removed. The
/// body is cleared and the file removed while this call holds the flock, so
/// a run that opened the old file meanwhile notices and locks a new one.
pub fn force_unlock(lock_path: &Path, id: &str) -> Result<(), StateError> {
    let no_such = || StateError::NoSuchLock { id: id.to_string() };
    let file = match OpenOptions::new().read(true).write(true).open(lock_path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_such()),
        Err(e) => return Err(StateError::io(lock_path, e)),
    };
    let holder = match read_body(lock_path) {
        Ok(Some(info)) if !info.id.is_empty() && info.id == id => info,
        Ok(_) => return Err(no_such()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(no_such()),
        Err(e) => return Err(StateError::io(lock_path, e)),
    };
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Err(StateError::LockHeld { holder }),
        Err(TryLockError::Error(e)) => return Err(StateError::io(lock_path, e)),
    }
    // Between the read and the flock the holder may have released it and a
    // new run taken and released it again: only the body read under our
    // flock, of the file still at the path, counts.
    let current = read_body(lock_path).ok().flatten();
    if !still_at_path(&file, lock_path) || current.is_none_or(|info| info.id != id) {
        return Err(no_such());
    }
    file.set_len(0).and_then(|()| std::fs::remove_file(lock_path)).map_err(|e| StateError::io(lock_path, e))
}

/// The holder named by the lock file, or [`LockInfo::unknown`].
pub fn read_holder(lock_path: &Path) -> LockInfo {
    // The holder clears and rewrites its body right after locking; a second
    // look shortly after covers a read that fell between the two.
    for attempt in 0..3 {
        if let Ok(Some(info)) = read_body(lock_path) {
            return info;
        }
        if attempt < 2 {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    LockInfo::unknown()
}

fn read_body(lock_path: &Path) -> std::io::Result<Option<LockInfo>> {
    // A lock body is a few hundred bytes; anything larger is not ours.
    let text = crate::files::read_text(lock_path, 64 * 1024)?;
    Ok(serde_json::from_str(&text).ok())
}

fn open_lock_file(lock_path: &Path) -> Result<File, StateError> {
    OpenOptions::new().read(true).write(true).create(true).truncate(false).open(lock_path).map_err(|e| StateError::io(lock_path, e))
}

/// True when `file` is the file `path` names now (it was not removed or
/// replaced since it was opened).
#[cfg(unix)]
fn still_at_path(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn still_at_path(_file: &File, path: &Path) -> bool {
    path.exists()
}

fn current_user() -> String {
    std::env::var("USER").or_else(|_| std::env::var("USERNAME")).ok().filter(|u| !u.is_empty()).unwrap_or_else(|| "unknown".into())
}

fn current_host() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_naming_the_holder() {
        // Two opens of one lock file in one process: the second fails at once and names the first.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json.lock");
        let first = StateLock::acquire(&path, "apply", Duration::ZERO).expect("first lock");
        let err = StateLock::acquire(&path, "destroy", Duration::ZERO).expect_err("second lock");
        let StateError::Locked { holder } = &err else { panic!("wrong error {err:?}") };
        assert_eq!(holder, first.info());
        let msg = err.to_string();
        assert!(msg.contains(&first.info().id) && msg.contains("\"apply\""), "{msg}");
        drop(first);
        assert!(StateLock::acquire(&path, "destroy", Duration::ZERO).is_ok());
    }

    #[test]
    fn waiting_lock_succeeds_after_release() {
        // With a timeout, the second run waits until the first drops its lock.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json.lock");
        let first = StateLock::acquire(&path, "apply", Duration::ZERO).expect("first lock");
        let releaser = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            drop(first);
        });
        let start = Instant::now();
        let second = StateLock::acquire(&path, "apply", Duration::from_secs(10)).expect("second lock");
        assert!(start.elapsed() >= Duration::from_millis(250));
        assert_eq!(read_holder(&path), *second.info());
        releaser.join().expect("thread");
    }

    #[test]
    fn waiting_lock_times_out() {
        // A lock held for longer than the timeout fails with LockTimeout naming the holder.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json.lock");
        let first = StateLock::acquire(&path, "apply", Duration::ZERO).expect("first lock");
        let err = StateLock::acquire(&path, "apply", Duration::from_millis(250)).expect_err("timeout");
        assert!(matches!(&err, StateError::LockTimeout { holder } if holder == first.info()), "{err:?}");
    }

    #[test]
    fn lock_held_by_another_process() {
        // A child process holding flock blocks us; its exit releases the lock.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json.lock");
        std::fs::write(&path, "").expect("create");
        let child = std::process::Command::new("flock").arg(&path).args(["sleep", "1.5"]).spawn();
        let Ok(mut child) = child else {
            eprintln!("skipping: the flock command is not installed");
            return;
        };
        // Wait until the child has the lock (it may start slowly on a busy machine).
        let start = Instant::now();
        let err = loop {
            match StateLock::acquire(&path, "apply", Duration::ZERO) {
                Err(err) => break err,
                Ok(lock) if start.elapsed() < Duration::from_secs(5) => {
                    drop(lock);
                    std::thread::sleep(Duration::from_millis(20));
                }
                Ok(_) => panic!("the child never took the lock"),
            }
        };
        assert!(matches!(&err, StateError::Locked { holder } if holder.id.is_empty()), "{err:?}");
        let lock = StateLock::acquire(&path, "apply", Duration::from_secs(10)).expect("after child exits");
        assert_eq!(lock.info().pid, std::process::id());
        let _ = child.wait();
    }

    #[test]
    fn force_unlock_needs_the_right_id_and_a_dead_holder() {
        // force-unlock with a wrong id is refused, with the right id it is refused while the holder lives;
        // once only its body is left (the kernel dropped a dead holder's flock) it removes the file.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("state.json.lock");
        let lock = StateLock::acquire(&path, "apply", Duration::ZERO).expect("lock");
        let id = lock.info().id.clone();
        assert!(matches!(force_unlock(&path, "nope"), Err(StateError::NoSuchLock { .. })));
        let err = force_unlock(&path, &id).expect_err("a live holder's lock");
        assert!(matches!(&err, StateError::LockHeld { holder } if holder == lock.info()), "{err:?}");
        assert!(err.to_string().contains(&id), "{err}");
        assert_eq!(read_holder(&path), *lock.info(), "the refusal changed the lock file");
        // What a killed holder leaves: the flock released, the body still there.
        lock.file.unlock().expect("unlock");
        force_unlock(&path, &id).expect("force unlock");
        assert!(!path.exists());
        // The next run locks a new file even while the old handle stays open.
        let next = StateLock::acquire(&path, "apply", Duration::ZERO).expect("lock after force");
        drop(lock);
        assert_eq!(read_holder(&path), *next.info());
        assert!(matches!(force_unlock(&dir.path().join("missing.lock"), "x"), Err(StateError::NoSuchLock { .. })));
    }
}
