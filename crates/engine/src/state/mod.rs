//! State: what himaplan last knew of every object it manages.
//!
//! This module is the pure data model; [`file`] is the canonical JSON
//! format, [`journal`] the append-only record of completed actions,
//! [`lock`] the exclusive run lock and [`store`] ties them together. Only
//! the store writes state.

pub mod file;
pub mod journal;
pub mod lock;
pub mod store;

pub use file::{parse, to_canonical_json};
pub use journal::{JournalEntry, JournalWriter};
pub use lock::{LockInfo, StateLock};
pub use store::{LocalStore, Snapshot, StateLockGuard, StateStore};

use crate::addr::{InstanceAddr, ResourceAddr};
use crate::value::Value;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The state format version this build writes and reads.
pub const STATE_VERSION: u32 = 1;

/// The whole state of one configuration.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct State {
    pub serial: u64,
    pub lineage: String,
    pub resources: BTreeMap<InstanceAddr, ResourceState>,
    pub outputs: BTreeMap<String, OutputState>,
}

/// One managed object.
///
/// Its serde form is the state file's resource object without `address`
/// (the journal carries the address beside it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceState {
    #[serde(rename = "type")]
    pub rtype: String,
    /// The provider name, e.g. `aws`.
    pub provider: String,
    pub schema_version: u32,
    /// Attributes as stored: sensitive values already replaced by
    /// `{"sensitive": "sha256:…"}` (see [`redact`]).
    pub attributes: serde_json::Value,
    /// Resources this object depended on when it was last applied, sorted.
    /// Shared: the instances of one resource depend on the same resources,
    /// and parse and apply hand out one copy of each address.
    pub dependencies: Vec<Arc<ResourceAddr>>,
}

/// A create intent recorded in the journal before the create is sent: the
/// address and the token the created object carries, so that an object
/// whose create answer was lost is recognised on the next refresh.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Intent {
    pub addr: InstanceAddr,
    pub token: String,
}

/// One root output; its serde form is `{ "value": …, "sensitive": bool }`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputState {
    /// The value (redacted when sensitive).
    pub value: serde_json::Value,
    pub sensitive: bool,
}

/// Why state could not be read, written or locked.
///
/// Every message names the file (or the lock holder) and, where there is
/// one, what the user can do about it.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The file is not valid JSON (or a journal line in the middle is not).
    #[error(
        "{} is corrupt at line {line}, column {col}: {message}; restore it from {}.backup or from git",
        path.display(),
        path.display()
    )]
    Corrupt { path: PathBuf, line: usize, col: usize, message: String },
    /// The file declares a format version newer than [`STATE_VERSION`].
    #[error("{}: state was written by a newer himaplan (version {version}); upgrade himaplan", path.display())]
    FutureVersion { path: PathBuf, version: u64 },
    /// The file is valid JSON but not a valid state (missing field, bad
    /// address, duplicate resource, corrupt journal line, journal of
    /// another lineage, …).
    #[error("{} is not a valid state: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
    /// The journal continues a newer state than the one read with it. A
    /// lock-free read can see this for a moment (a run committed between
    /// the two reads and the next run began its journal), so stores read
    /// again before reporting it; it stays only when the state really went
    /// back, e.g. restored from a backup.
    #[error(
        "{} is not a valid state: the journal continues state serial {journal_serial}, but the state has serial {state_serial} \
         (was it restored from a backup?); move the journal away if so",
        path.display()
    )]
    JournalAhead { path: PathBuf, journal_serial: u64, state_serial: u64 },
    /// Reading, writing, syncing or renaming a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Another run holds the lock and the caller asked not to wait.
    #[error("the state is locked: lock {holder}; retry when it finishes, or pass --lock-timeout to wait")]
    Locked { holder: LockInfo },
    /// Another run kept the lock for the whole wait.
    #[error("timed out waiting for the state lock: lock {holder}")]
    LockTimeout { holder: LockInfo },
    /// `force-unlock` named the lock of a process that is still running
    /// (it holds the flock): removing it would let two runs write at once.
    #[error(
        "the state lock ({holder}) belongs to a live process, so it was not removed; force-unlock removes only a lock whose holder \
         is gone: wait for that run to finish, or stop it"
    )]
    LockHeld { holder: LockInfo },
    /// `force-unlock` was given an id that is not the current lock's.
    #[error("no state lock with id {id} is held (check the id in the lock error message)")]
    NoSuchLock { id: String },
    /// A remote store (e.g. S3) failed or refused a request on the object
    /// at `location`; `message` says what was being done, where, and why.
    #[error("{message}")]
    Backend {
        /// The object concerned, as a URL (`s3://bucket/key`).
        location: String,
        message: String,
        /// The client's error, when a request failed.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
    },
    /// Anything else, described in words (a refused `state push`, an
    /// invalid backend block, a broken invariant).
    #[error("{0}")]
    Other(String),
}

impl StateError {
    /// An [`StateError::Io`] for `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> StateError {
        StateError::Io { path: path.into(), source }
    }

    /// A [`StateError::Backend`] failure at `location` without a source.
    pub fn backend(location: impl Into<String>, message: impl Into<String>) -> StateError {
        StateError::Backend { location: location.into(), message: message.into(), source: None }
    }

    /// A [`StateError::Backend`] failure at `location` caused by `source`.
    pub fn backend_caused(
        location: impl Into<String>,
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync + 'static>>,
    ) -> StateError {
        StateError::Backend { location: location.into(), message: message.into(), source: Some(source.into()) }
    }
}

impl ResourceState {
    /// An entry for an object read from the real world (adopted, imported):
    /// attributes redacted with the lineage `salt`, no dependencies recorded
    /// yet (apply records them when it next changes the object).
    pub fn observed(rtype: &str, provider: &str, schema_version: u32, attrs: &Value, salt: &str) -> ResourceState {
        ResourceState {
            rtype: rtype.to_string(),
            provider: provider.to_string(),
            schema_version,
            attributes: redact(attrs, salt),
            dependencies: Vec::new(),
        }
    }
}

impl State {
    /// A new, empty state with a fresh lineage.
    pub fn new_lineage() -> State {
        State { serial: 0, lineage: new_id(), resources: BTreeMap::new(), outputs: BTreeMap::new() }
    }
}

/// A random identifier (UUID v4 format) for lineages, tokens and lock ids.
pub fn new_id() -> String {
    let bytes: [u8; 16] = rand::random();
    let mut b = bytes;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &hex[0..8], &hex[8..12], &hex[12..16], &hex[16..20], &hex[20..32])
}

/// Converts a value for storage: every sensitive part becomes
/// `{"sensitive": "sha256:<hex>"}`, hashed with `salt` so that equal secrets
/// in different states do not share a hash, while a changed secret still
/// changes the stored form. Unknowns become null.
pub fn redact(value: &Value, salt: &str) -> serde_json::Value {
    match value {
        Value::Sensitive(inner) => {
            let plain = inner.deep_unmarked().to_json().to_string();
            let mut hasher = Sha256::new();
            hasher.update(salt.as_bytes());
            hasher.update([0u8]);
            hasher.update(plain.as_bytes());
            let hex: String = hasher.finalize().iter().map(|x| format!("{x:02x}")).collect();
            serde_json::json!({ "sensitive": format!("sha256:{hex}") })
        }
        Value::List(items) => serde_json::Value::Array(items.iter().map(|v| redact(v, salt)).collect()),
        Value::Map(map) => serde_json::Value::Object(map.iter().map(|(k, v)| (k.clone(), redact(v, salt))).collect()),
        other => other.to_json(),
    }
}

/// True when a stored JSON value is a redacted secret.
pub fn is_redacted(json: &serde_json::Value) -> bool {
    json.as_object().is_some_and(|m| m.len() == 1 && m.get("sensitive").and_then(|s| s.as_str()).is_some_and(|s| s.starts_with("sha256:")))
}
