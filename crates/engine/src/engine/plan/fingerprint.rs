//! Fingerprints: a hash of what one change was computed from. A plan file
//! carries them, and `apply PLANFILE` refuses a change whose fingerprint
//! moved since the plan was made.

use crate::addr::InstanceAddr;
use crate::state::State;
use sha2::{Digest, Sha256};

/// A hash of what a change of `addr` is computed from: the state entry
/// (after refresh). `apply PLANFILE` refuses a change whose fingerprint moved.
pub fn fingerprint(state: &State, addr: &InstanceAddr) -> String {
    let mut hasher = Sha256::new();
    hasher.update(addr.to_string().as_bytes());
    match state.resources.get(addr) {
        Some(entry) => hasher.update(entry.attributes.text().as_bytes()),
        None => hasher.update(b"absent"),
    }
    hasher.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}
