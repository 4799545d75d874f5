//! A rollout batch as plan made it, as plain data: what `graph --plan`
//! draws and a plan file keeps beside the plan (apply itself re-plans and
//! uses its own records, never these).

use crate::addr::InstanceAddr;
use serde::{Deserialize, Serialize};

/// One batch: its drains, the members it disrupts, their gates, restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApplyBatch {
    /// What batches follow each other: the resource, or for an object
    /// rolled piece by piece the object.
    pub sequence: String,
    /// 1-based position in the sequence, and the sequence's length.
    pub number: usize,
    pub of: usize,
    pub max_unavailable: usize,
    /// What the disruption is, e.g. `stop/start`.
    pub disruption: String,
    pub members: Vec<InstanceAddr>,
    /// For an object rolled piece by piece: this batch's pieces.
    #[serde(default)]
    pub parts: Vec<String>,
    /// The listing instances drained before and restored after.
    #[serde(default)]
    pub drains: Vec<InstanceAddr>,
    /// The health gates: the member and what is probed (a piece's name or
    /// the member's address).
    #[serde(default)]
    pub gates: Vec<(InstanceAddr, String)>,
}
