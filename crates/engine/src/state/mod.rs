//! State: what himaplan last knew of every object it manages.
//!
//! This module is the pure data model; [`file`] is the canonical JSON
//! format, [`journal`] the append-only record of completed actions,
//! [`lock`] the exclusive run lock and [`store`] ties them together. Only
//! the store writes state.

pub mod attrs;
pub mod file;
pub mod journal;
pub mod lock;
pub mod secret;
pub mod store;

pub use attrs::Attributes;
pub use file::{parse, to_canonical_json};
pub use journal::{JournalEntry, JournalWriter};
pub use lock::{LockInfo, StateLock};
pub use store::{LocalStore, Snapshot, StateLockGuard, StateStore};

use crate::addr::{InstanceAddr, ResourceAddr};
use crate::value::Value;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

/// The state format version this build writes; it reads every version
/// from 1 up to it. Version 2 keeps secrets as argon2id hashes; version 1's
/// `sha256:` hashes are verified the old way and upgraded when their entry
/// is written again.
pub const STATE_VERSION: u32 = 2;

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
    /// `{"sensitive": "sha256:…"}` (see [`redact`]); kept as compact text
    /// ([`Attributes`]).
    pub attributes: Attributes,
    /// Resources this object depended on when it was last applied, sorted.
    /// Shared: the instances of one resource depend on the same resources,
    /// and parse and apply hand out one copy of each address.
    pub dependencies: Vec<Arc<ResourceAddr>>,
    /// Set when the object failed its rollout's health check (what failed
    /// and its last result): the next apply gates it again before it
    /// rejoins what it was drained from. Absent from the file otherwise.
    pub unhealthy: Option<String>,
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
            attributes: redact(attrs, salt).into(),
            dependencies: Vec::new(),
            unhealthy: None,
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
/// `{"sensitive": HASH}` (an argon2id PHC string with a fresh salt, see
/// [`secret`]); unknowns become null.
pub fn redact(value: &Value, lineage: &str) -> serde_json::Value {
    redact_like(value, None, lineage)
}

/// Like [`redact`], keeping the hash that `prior` (the stored form of the
/// same place) holds wherever it is a hash of the same value: unchanged
/// secrets keep their stored hash, so plans show them unchanged and files
/// do not churn.
pub fn redact_like(value: &Value, prior: Option<&serde_json::Value>, lineage: &str) -> serde_json::Value {
    redact_keeping(value, prior, lineage, true)
}

/// [`redact_like`] for what is written to state: a version-1 (`sha256:`)
/// hash is not kept but replaced by an argon2id one (the upgrade).
pub fn redact_for_state(value: &Value, prior: Option<&serde_json::Value>, lineage: &str) -> serde_json::Value {
    redact_keeping(value, prior, lineage, false)
}

fn redact_keeping(value: &Value, prior: Option<&serde_json::Value>, lineage: &str, keep_legacy: bool) -> serde_json::Value {
    match value {
        Value::Sensitive(inner) => {
            let plain = inner.deep_unmarked().to_json().to_string();
            let kept = prior
                .and_then(stored_hash)
                .filter(|h| (keep_legacy || h.starts_with(secret::PREFIX)) && secret::verify(h, &plain, lineage))
                .map(str::to_string);
            serde_json::json!({ "sensitive": kept.unwrap_or_else(|| secret::hash(&plain)) })
        }
        Value::List(items) => serde_json::Value::Array(
            items.iter().enumerate().map(|(i, v)| redact_keeping(v, prior.and_then(|p| p.get(i)), lineage, keep_legacy)).collect(),
        ),
        Value::Map(map) => serde_json::Value::Object(
            map.iter().map(|(k, v)| (k.clone(), redact_keeping(v, prior.and_then(|p| p.get(k)), lineage, keep_legacy))).collect(),
        ),
        other => other.to_json(),
    }
}

/// Whether `value` is what `stored` records: equal, with every sensitive
/// part compared by hashing it again with the stored hash's salt.
pub fn same_as_stored(value: &Value, stored: Option<&serde_json::Value>, lineage: &str) -> bool {
    match value {
        Value::Sensitive(inner) => {
            stored.and_then(stored_hash).is_some_and(|h| secret::verify(h, &inner.deep_unmarked().to_json().to_string(), lineage))
        }
        Value::List(items) if value.has_sensitive() => stored
            .and_then(|s| s.as_array())
            .is_some_and(|s| s.len() == items.len() && items.iter().zip(s).all(|(v, s)| same_as_stored(v, Some(s), lineage))),
        Value::Map(map) if value.has_sensitive() => stored
            .and_then(|s| s.as_object())
            .is_some_and(|s| s.len() == map.len() && map.iter().all(|(k, v)| s.contains_key(k) && same_as_stored(v, s.get(k), lineage))),
        other => stored == Some(&other.to_json()),
    }
}

/// The hash of a stored secret.
fn stored_hash(json: &serde_json::Value) -> Option<&str> {
    is_redacted(json).then(|| json.get("sensitive").and_then(|s| s.as_str())).flatten()
}

/// True when a stored JSON value is a redacted secret.
pub fn is_redacted(json: &serde_json::Value) -> bool {
    json.as_object().is_some_and(|m| m.len() == 1 && m.get("sensitive").and_then(|s| s.as_str()).is_some_and(secret::is_hash))
}
