//! Where state lives: the [`StateStore`] trait the engine writes through,
//! and [`LocalStore`], its implementation on the local file system.
//!
//! A store ties the format, the journal and the lock together: it reads the
//! committed state with any leftover journal replayed, appends journal
//! entries durably during a run, and writes the canonical file once at the
//! end. It is the only code that writes state files. It decides nothing
//! about what a run changes; that is the engine's job.
//!
//! Guarantees of [`LocalStore`]:
//! - the state file is replaced atomically (temp file in the same
//!   directory, fsync, rename, fsync of the directory), with mode 0600;
//! - `FILE.backup` holds the file as it was when the run started;
//! - a journal is only replayed onto the state it was written against: a
//!   journal run segment (from one `Begin` to the next) whose serial is
//!   below the file's is already committed and is skipped, one above it or
//!   of another lineage is an error.

use super::Intent;
use super::journal::{self, JournalEntry, JournalWriter, sync_parent_dir};
use super::lock::{self, LockInfo, StateLock};
use super::{State, StateError, file};
use async_trait::async_trait;
use std::ffi::OsString;
use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

/// The state storage a run reads from and writes to.
#[async_trait]
pub trait StateStore: Send + Sync {
    /// Human description, e.g. the file path.
    fn location(&self) -> String;
    /// Reads the committed state with any leftover journal replayed in
    /// memory. A missing state is an empty one with a fresh lineage and
    /// `exists: false`. Takes no lock.
    async fn read(&self) -> Result<Snapshot, StateError>;
    /// [`read`](Self::read) for a run that commits nothing (`plan`, `show`,
    /// `drift`): the file's text is not kept (`text` is `None`), so a store
    /// may build the state as it reads rather than hold the text beside it.
    async fn read_state(&self) -> Result<Snapshot, StateError> {
        let mut snapshot = self.read().await?;
        snapshot.text = None;
        Ok(snapshot)
    }
    /// Takes the exclusive run lock, waiting up to `timeout` (zero: fail at
    /// once). Dropping the guard releases it.
    async fn lock(&self, operation: &str, timeout: Duration) -> Result<Box<dyn StateLockGuard>, StateError>;
    /// Removes a lock whose holder cannot release it; `id` must be its id.
    /// A store that can tell whether the holder lives (the local flock)
    /// refuses a live holder's lock with [`StateError::LockHeld`].
    async fn force_unlock(&self, id: &str) -> Result<(), StateError>;
    /// Appends entries durably (group commit) before returning.
    async fn append_journal(&self, entries: &[JournalEntry]) -> Result<(), StateError>;
    /// Writes the canonical state, first saving `run_start_text` (the file
    /// as it was when the run started, if it existed) as the backup; then
    /// deletes the journal. The caller sets `state.serial`.
    async fn commit(&self, state: &State, run_start_text: Option<&str>) -> Result<(), StateError>;
    /// Deletes the journal without committing (used when a run changed nothing).
    async fn discard_journal(&self) -> Result<(), StateError>;
}

/// What [`StateStore::read`] found.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The committed state with the journal replayed onto it.
    pub state: State,
    /// Whether a committed state existed.
    pub exists: bool,
    /// The committed file's text as read, to become the backup.
    pub text: Option<String>,
    /// Whether a leftover journal changed `state` (the run must commit even
    /// if it changes nothing else).
    pub journal_replayed: bool,
    /// Creates that were announced but never completed: their objects may
    /// exist, labelled with the token.
    pub unfinished_intents: Vec<Intent>,
}

/// A held run lock; dropping it releases the lock.
pub trait StateLockGuard: Send + Sync {
    fn info(&self) -> &LockInfo;
}

impl StateLockGuard for StateLock {
    fn info(&self) -> &LockInfo {
        StateLock::info(self)
    }
}

/// State in a local file, with `FILE.journal`, `FILE.backup` and
/// `FILE.lock` beside it.
#[derive(Debug)]
pub struct LocalStore {
    path: PathBuf,
    /// Kept open across appends of one run; `None` until the first append.
    writer: Mutex<Option<JournalWriter>>,
}

impl LocalStore {
    pub fn new(path: impl Into<PathBuf>) -> LocalStore {
        LocalStore { path: path.into(), writer: Mutex::new(None) }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn journal_path(&self) -> PathBuf {
        sibling(&self.path, ".journal")
    }

    pub fn backup_path(&self) -> PathBuf {
        sibling(&self.path, ".backup")
    }

    pub fn lock_path(&self) -> PathBuf {
        sibling(&self.path, ".lock")
    }

    fn read_blocking(&self, keep_text: bool) -> Result<Snapshot, StateError> {
        let streamed = if keep_text { None } else { self.read_streaming()? };
        let (state, text) = match streamed {
            Some(state) => (Some(state), None),
            None => match crate::files::read_text(&self.path, crate::files::MAX_STATE_BYTES) {
                // Kept for the whole run (it becomes the backup): without the
                // slack the read left, up to half again its size.
                Ok(mut text) => {
                    text.shrink_to_fit();
                    (Some(file::parse(&text, &self.path)?), keep_text.then_some(text))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
                Err(e) => return Err(StateError::io(&self.path, e)),
            },
        };
        let exists = state.is_some();
        let mut state = state.unwrap_or_else(State::new_lineage);
        let journal_path = self.journal_path();
        let entries = journal::read_journal(&journal_path)?;
        let (journal_replayed, unfinished_intents) = replay_segments(&mut state, exists, &entries, &journal_path)?;
        Ok(Snapshot { state, exists, text, journal_replayed, unfinished_intents })
    }

    /// The state built while the file is read, for a read that keeps no
    /// text; `None` when there is no file or it is not a well-formed state
    /// within the size limit: the text read then finds and reports why.
    fn read_streaming(&self) -> Result<Option<State>, StateError> {
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StateError::io(&self.path, e)),
        };
        let limit = crate::files::MAX_STATE_BYTES;
        if !file.metadata().is_ok_and(|m| m.is_file() && m.len() <= limit) {
            return Ok(None);
        }
        Ok(file::parse_reader(std::io::BufReader::with_capacity(64 * 1024, file.take(limit))))
    }

    fn append_blocking(&self, entries: &[JournalEntry]) -> Result<(), StateError> {
        let mut slot = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if slot.is_none() {
            ensure_parent_dir(&self.path)?;
            *slot = Some(JournalWriter::open(&self.journal_path())?);
        }
        let Some(writer) = slot.as_mut() else {
            return Err(StateError::Other("journal writer vanished".into()));
        };
        let result = writer.append(entries);
        if result.is_err() {
            // Reopening cuts any torn line the failed write left.
            *slot = None;
        }
        result
    }

    fn commit_blocking(&self, state: &State, run_start_text: Option<&str>) -> Result<(), StateError> {
        ensure_parent_dir(&self.path)?;
        if let Some(old) = run_start_text {
            write_atomically(&self.backup_path(), |f| f.write_all(old.as_bytes()))?;
        }
        // Streamed to the file: the state is never held a second time as text.
        write_atomically(&self.path, |f| {
            let mut out = std::io::BufWriter::new(f);
            file::write_canonical(state, &mut out)?;
            out.flush()
        })?;
        self.remove_journal()
    }

    fn remove_journal(&self) -> Result<(), StateError> {
        let mut slot = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = None;
        let path = self.journal_path();
        match std::fs::remove_file(&path) {
            Ok(()) => sync_parent_dir(&path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(StateError::io(&path, e)),
        }
    }
}

#[async_trait]
impl StateStore for LocalStore {
    fn location(&self) -> String {
        self.path.display().to_string()
    }

    async fn read(&self) -> Result<Snapshot, StateError> {
        read_consistent(|| async { self.read_blocking(true) }).await
    }

    async fn read_state(&self) -> Result<Snapshot, StateError> {
        read_consistent(|| async { self.read_blocking(false) }).await
    }

    async fn lock(&self, operation: &str, timeout: Duration) -> Result<Box<dyn StateLockGuard>, StateError> {
        ensure_parent_dir(&self.path)?;
        let path = self.lock_path();
        let operation = operation.to_string();
        // Waiting may take the whole timeout: keep it off the async workers.
        let lock = tokio::task::spawn_blocking(move || StateLock::acquire(&path, &operation, timeout))
            .await
            .map_err(|e| StateError::Other(format!("waiting for the state lock failed: {e}")))??;
        Ok(Box::new(lock))
    }

    async fn force_unlock(&self, id: &str) -> Result<(), StateError> {
        lock::force_unlock(&self.lock_path(), id)
    }

    async fn append_journal(&self, entries: &[JournalEntry]) -> Result<(), StateError> {
        self.append_blocking(entries)
    }

    async fn commit(&self, state: &State, run_start_text: Option<&str>) -> Result<(), StateError> {
        self.commit_blocking(state, run_start_text)
    }

    async fn discard_journal(&self) -> Result<(), StateError> {
        self.remove_journal()
    }
}

/// How many times [`read_consistent`] reads at most.
const READ_ATTEMPTS: usize = 5;

/// Runs `read` (the state, then its journal) again while it fails with
/// [`StateError::JournalAhead`] against a state that moved since the last
/// attempt: a run committed between the two reads and the next one began
/// its journal, so the next attempt sees the newer state. A journal ahead
/// of the same state twice is reported (the state went back), as is one
/// still ahead after [`READ_ATTEMPTS`] reads. Shared by every store.
pub async fn read_consistent<F, Fut>(mut read: F) -> Result<Snapshot, StateError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Snapshot, StateError>>,
{
    let mut previous = None;
    for _ in 1..READ_ATTEMPTS {
        match read().await {
            Err(StateError::JournalAhead { state_serial, .. }) if previous != Some(state_serial) => previous = Some(state_serial),
            other => return other,
        }
    }
    read().await
}

/// Replays each run segment of a journal that belongs on `state`.
///
/// A segment starts at a `Begin`. One whose serial is below the state's was
/// committed already (the run crashed after the rename, before deleting the
/// journal) and is skipped. When no state file exists, the first segment
/// supplies the lineage and serial. Shared by every store (local, S3).
pub fn replay_segments(
    state: &mut State,
    exists: bool,
    entries: &[JournalEntry],
    journal_path: &Path,
) -> Result<(bool, Vec<Intent>), StateError> {
    let invalid = |message: String| StateError::Invalid { path: journal_path.to_path_buf(), message };
    let mut adopt = !exists;
    let mut replayed = false;
    let mut unfinished = Vec::new();
    let mut rest = entries;
    while let Some((first, tail)) = rest.split_first() {
        let JournalEntry::Begin { serial, lineage } = first else {
            return Err(invalid("the journal does not start with a \"begin\" entry; move it away to continue".into()));
        };
        let end = tail.iter().position(|e| matches!(e, JournalEntry::Begin { .. })).unwrap_or(tail.len());
        let (segment, next) = tail.split_at(end);
        rest = next;
        if adopt {
            state.lineage = lineage.clone();
            state.serial = *serial;
            adopt = false;
        }
        if *lineage != state.lineage {
            return Err(invalid(format!(
                "the journal belongs to state lineage {lineage}, but the state has lineage {}; move the journal away if it is not this state's",
                state.lineage
            )));
        }
        if *serial < state.serial {
            continue;
        }
        if *serial > state.serial {
            return Err(StateError::JournalAhead { path: journal_path.to_path_buf(), journal_serial: *serial, state_serial: state.serial });
        }
        replayed |= !segment.is_empty();
        unfinished.retain(|i: &Intent| !finished_in(segment, &i.token));
        unfinished.extend(journal::replay(state, segment));
    }
    Ok((replayed, unfinished))
}

/// True when `segment` completes the create announced with `token`.
fn finished_in(segment: &[JournalEntry], token: &str) -> bool {
    segment.iter().any(|e| matches!(e, JournalEntry::Set { token: Some(t), .. } if t == token))
}

/// `path` with `suffix` appended to its file name: `state.json.journal`.
fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

fn ensure_parent_dir(path: &Path) -> Result<(), StateError> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() && !dir.exists() => std::fs::create_dir_all(dir).map_err(|e| StateError::io(dir, e)),
        _ => Ok(()),
    }
}

/// Replaces `path` with what `write` writes so that a crash leaves either
/// the old or the new file, never a mix: temp file, fsync, rename, fsync
/// directory.
fn write_atomically(path: &Path, write: impl FnOnce(&mut std::fs::File) -> std::io::Result<()>) -> Result<(), StateError> {
    let tmp = sibling(path, &format!(".tmp-{}", std::process::id()));
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let written = options.open(&tmp).and_then(|mut f| {
        // `mode` applies only to new files; a leftover temp file keeps its own.
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
        }
        write(&mut f)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(StateError::io(path, e));
    }
    sync_parent_dir(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::addr::InstanceAddr;
    use crate::state::file::tests::sample_state;

    fn addr(text: &str) -> InstanceAddr {
        text.parse().expect("valid address")
    }

    /// A store in a fresh directory holding `sample_state(resources)`, committed.
    async fn committed(resources: usize) -> (tempfile::TempDir, LocalStore, State) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path().join("state.json"));
        let state = sample_state(resources);
        store.commit(&state, None).await.expect("commit");
        (dir, store, state)
    }

    #[tokio::test]
    async fn a_read_that_keeps_no_text_gives_the_same_state_and_errors() {
        // read_state parses the file as it reads it: the same state and journal replay as read, no text; a bad file is reported as read reports it.
        let (_dir, store, state) = committed(20).await;
        store.append_journal(&[JournalEntry::Begin { serial: state.serial, lineage: state.lineage.clone() }]).await.expect("begin");
        store.append_journal(&[JournalEntry::Remove { address: addr("aws_instance.web[3]") }]).await.expect("remove");
        let (kept, streamed) = (store.read().await.expect("read"), store.read_state().await.expect("read_state"));
        assert!(kept.text.is_some() && streamed.text.is_none());
        assert_eq!((streamed.state, streamed.exists, streamed.journal_replayed), (kept.state, true, true));
        store.discard_journal().await.expect("discard");
        std::fs::write(store.path(), "{\"version\": 1, \"serial\": 1,\n  \"lineage\": 7}").expect("write");
        let errors = (store.read().await.expect_err("bad").to_string(), store.read_state().await.expect_err("bad").to_string());
        assert_eq!(errors.0, errors.1);
    }

    #[tokio::test]
    async fn missing_state_reads_as_new() {
        // No file: an empty state with a fresh lineage, and the parent directory is made on commit.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path().join("nested/state.json"));
        let snap = store.read().await.expect("read");
        assert!(!snap.exists && snap.text.is_none() && !snap.journal_replayed);
        assert!(snap.state.resources.is_empty() && !snap.state.lineage.is_empty());
        store.commit(&snap.state, None).await.expect("commit");
        assert!(store.read().await.expect("read").exists);
        assert!(!store.backup_path().exists());
    }

    #[tokio::test]
    async fn commit_writes_backup_and_removes_journal() {
        // A run's commit saves the old text as .backup, writes mode 0600 and deletes the journal.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path().join("state.json"));
        let mut state = sample_state(2);
        store.commit(&state, None).await.expect("first commit");
        let snap = store.read().await.expect("read");
        let old_text = snap.text.clone().expect("text");

        store.append_journal(&[JournalEntry::Begin { serial: state.serial, lineage: state.lineage.clone() }]).await.expect("begin");
        store.append_journal(&[JournalEntry::Remove { address: addr("aws_instance.web[0]") }]).await.expect("remove");
        assert!(store.journal_path().exists());
        state.resources.remove(&addr("aws_instance.web[0]"));
        state.serial += 1;
        store.commit(&state, snap.text.as_deref()).await.expect("commit");

        assert_eq!(std::fs::read_to_string(store.backup_path()).expect("backup"), old_text);
        assert!(!store.journal_path().exists());
        let again = store.read().await.expect("read");
        assert_eq!(again.state, state);
        assert!(!again.journal_replayed);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for path in [store.path().to_path_buf(), store.backup_path()] {
                let mode = std::fs::metadata(&path).expect("metadata").permissions().mode();
                assert_eq!(mode & 0o777, 0o600, "{}", path.display());
            }
        }
    }

    #[tokio::test]
    async fn leftover_journal_is_replayed_with_unfinished_intents() {
        // After a crash, read folds the journal in and returns the create that never finished.
        let (_dir, store, state) = committed(1).await;
        let created = state.resources.values().next().cloned().expect("resource");
        store
            .append_journal(&[
                JournalEntry::Begin { serial: state.serial, lineage: state.lineage.clone() },
                JournalEntry::Intent { address: addr("aws_instance.db"), rtype: "aws_instance".into(), token: "t1".into() },
                JournalEntry::Intent { address: addr("aws_instance.x"), rtype: "aws_instance".into(), token: "t2".into() },
            ])
            .await
            .expect("append");
        store
            .append_journal(&[JournalEntry::Set { address: addr("aws_instance.db"), resource: created, token: Some("t1".into()) }])
            .await
            .expect("append");

        let fresh = LocalStore::new(store.path());
        let snap = fresh.read().await.expect("read");
        assert!(snap.journal_replayed && snap.exists);
        assert!(snap.state.resources.contains_key(&addr("aws_instance.db")));
        assert_eq!(snap.unfinished_intents, vec![Intent { addr: addr("aws_instance.x"), token: "t2".into() }]);

        // The next run appends its own segment; its Set finishes the first run's intent.
        let set_x = JournalEntry::Set {
            address: addr("aws_instance.x"),
            resource: snap.state.resources[&addr("aws_instance.db")].clone(),
            token: Some("t2".into()),
        };
        fresh.append_journal(&[JournalEntry::Begin { serial: state.serial, lineage: state.lineage.clone() }, set_x]).await.expect("append");
        let snap = fresh.read().await.expect("read");
        assert!(snap.unfinished_intents.is_empty());
        assert_eq!(snap.state.resources.len(), 3);

        // A journal whose run was committed already (serial moved on) is skipped.
        let mut committed = snap.state.clone();
        committed.serial += 1;
        std::fs::write(fresh.path(), file::to_canonical_json(&committed)).expect("write");
        let snap = fresh.read().await.expect("read");
        assert!(!snap.journal_replayed && snap.unfinished_intents.is_empty());
        fresh.discard_journal().await.expect("discard");
        assert!(!fresh.journal_path().exists());
    }

    #[tokio::test]
    async fn journal_of_a_missing_state_supplies_its_lineage() {
        // A first run that crashed before its first commit is recovered with its own lineage.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path().join("state.json"));
        let res = sample_state(1).resources.into_values().next().expect("resource");
        store
            .append_journal(&[
                JournalEntry::Begin { serial: 0, lineage: "lin-1".into() },
                JournalEntry::Set { address: addr("aws_instance.a"), resource: res, token: None },
            ])
            .await
            .expect("append");
        let snap = store.read().await.expect("read");
        assert!(!snap.exists && snap.journal_replayed);
        assert_eq!(snap.state.lineage, "lin-1");
        assert_eq!(snap.state.resources.len(), 1);
    }

    #[tokio::test]
    async fn journal_of_another_lineage_is_refused() {
        // A journal that does not belong to the state file is an error, not silently applied.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path().join("state.json"));
        store.commit(&sample_state(0), None).await.expect("commit");
        store.append_journal(&[JournalEntry::Begin { serial: 7, lineage: "other".into() }]).await.expect("append");
        let err = store.read().await.expect_err("lineage");
        assert!(err.to_string().contains("lineage other"), "{err}");
    }

    #[tokio::test]
    async fn journal_ahead_of_a_state_that_stays_put_is_refused() {
        // Re-reading covers a commit between the two reads; a state restored from a backup still fails, at once.
        let (_dir, store, state) = committed(1).await;
        store.append_journal(&[JournalEntry::Begin { serial: state.serial + 3, lineage: state.lineage.clone() }]).await.expect("append");
        let err = store.read().await.expect_err("journal ahead");
        assert!(
            matches!(err, StateError::JournalAhead { journal_serial, state_serial, .. }
            if journal_serial == state.serial + 3 && state_serial == state.serial),
            "{err:?}"
        );
        assert!(err.to_string().contains("restored from a backup"), "{err}");
    }

    #[tokio::test]
    async fn store_lock_names_holder() {
        // The store's lock is exclusive and released when the guard drops.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path().join("sub/state.json"));
        let guard = store.lock("apply", Duration::ZERO).await.expect("lock");
        let err = store.lock("apply", Duration::ZERO).await.err().expect("second lock fails");
        assert!(matches!(&err, StateError::Locked { holder } if holder == guard.info()), "{err:?}");
        assert!(matches!(store.force_unlock("wrong").await, Err(StateError::NoSuchLock { .. })));
        drop(guard);
        assert!(store.lock("apply", Duration::ZERO).await.is_ok());
    }

    #[tokio::test]
    async fn ten_thousand_resources_commit_and_read() {
        // A large state is written and read back unchanged.
        let dir = tempfile::tempdir().expect("tempdir");
        let store = LocalStore::new(dir.path().join("state.json"));
        let state = sample_state(10_000);
        let start = std::time::Instant::now();
        store.commit(&state, None).await.expect("commit");
        let snap = store.read().await.expect("read");
        assert_eq!(snap.state, state);
        assert!(start.elapsed() < Duration::from_secs(10), "{:?}", start.elapsed());
    }
}
