//! The journal: an append-only file beside the state (`FILE.journal`), one
//! JSON object per line, recording every completed action and every create
//! intent of a run before that action counts as done.
//!
//! Appends are group commits: all entries given together are written and
//! then made durable by one `fsync`. A crash can leave at most a torn last
//! line, which reading ignores and the next writer cuts off. This module
//! never rewrites the state file; folding a journal into the state is the
//! store's job, done with [`replay`].

use super::Intent;
use super::{OutputState, ResourceState, State, StateError};
use crate::addr::InstanceAddr;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

/// One line of the journal.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum JournalEntry {
    /// First entry of a run: the serial and lineage of the state it started
    /// from. The store uses it to tell a leftover journal from a stale one.
    Begin { serial: u64, lineage: String },
    /// A create is about to be sent; `token` labels the object so a crashed
    /// run's orphan can be found again.
    Intent { address: InstanceAddr, rtype: String, token: String },
    /// A create or update completed; `token` is the create intent's token.
    Set {
        address: InstanceAddr,
        resource: ResourceState,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        token: Option<String>,
    },
    /// A delete completed.
    Remove { address: InstanceAddr },
    /// The root outputs at the end of the run, replacing the previous ones.
    Outputs { outputs: BTreeMap<String, OutputState> },
}

/// Appends entries to a journal file, keeping it open between appends.
#[derive(Debug)]
pub struct JournalWriter {
    file: File,
    path: PathBuf,
    /// Set after a failed append: the file may end in a torn line, so no
    /// more lines may follow it from this handle.
    broken: bool,
}

impl JournalWriter {
    /// Opens `path` for appending, creating it (and syncing its directory)
    /// when missing. A torn or corrupt last line left by a crash is cut off
    /// first so that new lines do not land after it.
    pub fn open(path: &Path) -> Result<JournalWriter, StateError> {
        let io = |e| StateError::io(path, e);
        let (file, created) = match create_options().create_new(true).open(path) {
            Ok(file) => (file, true),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => (create_options().open(path).map_err(io)?, false),
            Err(e) => return Err(io(e)),
        };
        if created {
            sync_parent_dir(path)?;
        } else {
            let bytes = crate::files::read_bytes(path, crate::files::MAX_STATE_BYTES).map_err(io)?;
            let lines = split_lines(&bytes, path)?;
            let torn = lines.valid_len < bytes.len();
            let unterminated = lines.valid_len > 0 && bytes.get(lines.valid_len - 1) != Some(&b'\n');
            if torn {
                file.set_len(lines.valid_len as u64).map_err(io)?;
            }
            if unterminated {
                (&file).write_all(b"\n").map_err(io)?;
            }
            if torn || unterminated {
                file.sync_data().map_err(io)?;
            }
        }
        Ok(JournalWriter { file, path: path.to_path_buf(), broken: false })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Writes every entry, one line each, then syncs once: when this
    /// returns `Ok` all of them are durable.
    pub fn append(&mut self, entries: &[JournalEntry]) -> Result<(), StateError> {
        if self.broken {
            return Err(StateError::Other(format!("the journal {} had a failed write; reopen it before appending", self.path.display())));
        }
        if entries.is_empty() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(entries.len() * 256);
        for entry in entries {
            serde_json::to_writer(&mut buf, entry).map_err(|e| StateError::Other(format!("journal entry: {e}")))?;
            buf.push(b'\n');
        }
        let result = self.file.write_all(&buf).and_then(|()| self.file.sync_data());
        result.map_err(|e| {
            self.broken = true;
            StateError::io(&self.path, e)
        })
    }
}

/// Reads a journal. A missing file is an empty journal; a torn last line is
/// ignored; a corrupt line before the last is [`StateError::Invalid`]
/// naming the line (a journal has no backup to restore, so the advice of
/// [`StateError::Corrupt`] would not fit).
pub fn read_journal(path: &Path) -> Result<Vec<JournalEntry>, StateError> {
    match crate::files::read_bytes(path, crate::files::MAX_STATE_BYTES) {
        Ok(bytes) => Ok(split_lines(&bytes, path)?.entries),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Vec::new()),
        Err(e) => Err(StateError::io(path, e)),
    }
}

/// Applies the journal's completed actions to `state` and returns the
/// create intents no `Set` finished (matched by token), in journal order.
pub fn replay(state: &mut State, entries: &[JournalEntry]) -> Vec<Intent> {
    let finished: BTreeSet<&str> = entries
        .iter()
        .filter_map(|e| match e {
            JournalEntry::Set { token: Some(token), .. } => Some(token.as_str()),
            _ => None,
        })
        .collect();
    let mut unfinished = Vec::new();
    let mut reported = BTreeSet::new();
    for entry in entries {
        match entry {
            JournalEntry::Begin { .. } => {}
            JournalEntry::Intent { address, token, .. } => {
                if !finished.contains(token.as_str()) && reported.insert(token.as_str()) {
                    unfinished.push(Intent { addr: address.clone(), token: token.clone() });
                }
            }
            JournalEntry::Set { address, resource, .. } => {
                state.resources.insert(address.clone(), resource.clone());
            }
            JournalEntry::Remove { address } => {
                state.resources.remove(address);
            }
            JournalEntry::Outputs { outputs } => state.outputs = outputs.clone(),
        }
    }
    unfinished
}

/// The entries of a journal's text and the length of its valid prefix.
struct Lines {
    entries: Vec<JournalEntry>,
    /// Bytes up to and including the newline of the last good line.
    valid_len: usize,
}

fn split_lines(bytes: &[u8], path: &Path) -> Result<Lines, StateError> {
    let mut entries = Vec::new();
    let mut valid_len = 0;
    let mut offset = 0;
    // (line number, text, end offset excluding newline, had a newline)
    let mut lines = Vec::new();
    for (number, chunk) in bytes.split(|b| *b == b'\n').enumerate() {
        let end = offset + chunk.len();
        let terminated = end < bytes.len();
        if !chunk.iter().all(|b| b.is_ascii_whitespace() || *b == 0) {
            lines.push((number + 1, chunk, end, terminated));
        }
        offset = end + 1;
    }
    let count = lines.len();
    for (i, (number, chunk, end, terminated)) in lines.into_iter().enumerate() {
        match serde_json::from_slice::<JournalEntry>(chunk) {
            Ok(entry) => {
                entries.push(entry);
                // A complete entry may have lost its newline; the writer
                // adds it back before appending.
                valid_len = if terminated { end + 1 } else { end };
            }
            // The last line may be torn by a crash mid-write: it was never
            // synced, so its action never counted as done.
            Err(_) if i + 1 == count => break,
            Err(e) => {
                let detail = match super::file::corrupt(path, &e) {
                    StateError::Corrupt { col, message, .. } => format!("column {col}: {message}"),
                    other => other.to_string(),
                };
                return Err(StateError::Invalid {
                    path: path.to_path_buf(),
                    message: format!(
                        "journal line {number} is corrupt at {detail}; it cannot be replayed safely: \
                         inspect it, and move it away to continue without the changes it records"
                    ),
                });
            }
        }
    }
    Ok(Lines { entries, valid_len })
}

fn create_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

/// Makes a file's creation, rename or removal durable by syncing the
/// directory that holds it (a no-op where directories cannot be synced).
pub(crate) fn sync_parent_dir(path: &Path) -> Result<(), StateError> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        File::open(dir).and_then(|d| d.sync_all()).map_err(|e| StateError::io(dir, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn addr(text: &str) -> InstanceAddr {
        text.parse().expect("valid address")
    }

    fn resource(id: &str) -> ResourceState {
        ResourceState {
            rtype: "aws_instance".into(),
            provider: "aws".into(),
            schema_version: 0,
            attributes: json!({ "id": id }).into(),
            dependencies: vec![],
            unhealthy: None,
        }
    }

    #[test]
    fn torn_last_line_is_ignored_and_cut_by_the_next_writer() {
        // A crash mid-write leaves half a line; reading skips it and appending continues cleanly.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.json.journal");
        let mut w = JournalWriter::open(&path).expect("open");
        w.append(&[JournalEntry::Begin { serial: 3, lineage: "l".into() }, JournalEntry::Remove { address: addr("aws_instance.a") }])
            .expect("append");
        drop(w);
        let mut f = OpenOptions::new().append(true).open(&path).expect("reopen");
        f.write_all(br#"{"op":"remove","addr"#).expect("torn write");
        drop(f);
        assert_eq!(read_journal(&path).expect("read").len(), 2);

        let mut w = JournalWriter::open(&path).expect("open again");
        w.append(&[JournalEntry::Remove { address: addr("aws_instance.b") }]).expect("append");
        let entries = read_journal(&path).expect("read");
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[2], JournalEntry::Remove { address: addr("aws_instance.b") });
    }

    #[test]
    fn complete_last_line_without_newline_is_kept() {
        // An entry whose newline was lost still counts, and the next append starts a new line.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.json.journal");
        std::fs::write(&path, "{\"op\":\"remove\",\"address\":\"a_b.c\"}").expect("write");
        assert_eq!(read_journal(&path).expect("read").len(), 1);
        let mut w = JournalWriter::open(&path).expect("open");
        w.append(&[JournalEntry::Remove { address: addr("a_b.d") }]).expect("append");
        assert_eq!(read_journal(&path).expect("read").len(), 2);
    }

    #[test]
    fn corrupt_middle_line_is_an_error() {
        // Garbage followed by good lines is corruption, reported with its line.
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.json.journal");
        std::fs::write(&path, "{\"op\":\"begin\",\"serial\":1,\"lineage\":\"l\"}\n{oops\n{\"op\":\"remove\",\"address\":\"a_b.c\"}\n")
            .expect("write");
        let err = read_journal(&path).expect_err("corrupt");
        assert!(matches!(err, StateError::Invalid { .. }), "{err:?}");
        assert!(err.to_string().contains("journal line 2 is corrupt at column 2"), "{err}");
        assert!(JournalWriter::open(&path).is_err());
    }

    #[test]
    fn missing_journal_is_empty() {
        // No journal file means nothing to replay.
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(read_journal(&dir.path().join("none")).expect("read").is_empty());
    }

    #[test]
    fn replay_applies_actions_and_returns_unfinished_intents() {
        // Sets and removes change the state; an intent without a matching Set comes back.
        let mut state = State::new_lineage();
        state.resources.insert(addr("aws_instance.old"), resource("i-old"));
        let entries = vec![
            JournalEntry::Begin { serial: 0, lineage: state.lineage.clone() },
            JournalEntry::Intent { address: addr("aws_instance.a"), rtype: "aws_instance".into(), token: "t1".into() },
            JournalEntry::Intent { address: addr("aws_instance.b"), rtype: "aws_instance".into(), token: "t2".into() },
            JournalEntry::Set { address: addr("aws_instance.a"), resource: resource("i-a"), token: Some("t1".into()) },
            JournalEntry::Remove { address: addr("aws_instance.old") },
            JournalEntry::Outputs { outputs: BTreeMap::from([("ip".into(), OutputState { value: json!("1.2.3.4"), sensitive: false })]) },
        ];
        // The journal's line form round-trips.
        for e in &entries {
            let line = serde_json::to_string(e).expect("serialise");
            assert_eq!(&serde_json::from_str::<JournalEntry>(&line).expect("parse"), e);
        }
        let unfinished = replay(&mut state, &entries);
        assert_eq!(unfinished, vec![Intent { addr: addr("aws_instance.b"), token: "t2".into() }]);
        assert_eq!(state.resources.keys().map(|a| a.to_string()).collect::<Vec<_>>(), ["aws_instance.a"]);
        assert_eq!(state.outputs.len(), 1);
    }
}
