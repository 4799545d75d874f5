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

use crate::addr::InstanceAddr;
use crate::value::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

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
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceState {
    pub rtype: String,
    /// The provider name, e.g. `aws`.
    pub provider: String,
    pub schema_version: u32,
    /// Attributes as stored: sensitive values already replaced by
    /// `{"sensitive": "sha256:…"}` (see [`redact`]).
    pub attributes: serde_json::Value,
    /// Addresses this object depended on when it was last applied, sorted.
    pub dependencies: Vec<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct OutputState {
    /// The value (redacted when sensitive).
    pub value: serde_json::Value,
    pub sensitive: bool,
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
    json.as_object()
        .is_some_and(|m| m.len() == 1 && m.get("sensitive").and_then(|s| s.as_str()).is_some_and(|s| s.starts_with("sha256:")))
}
