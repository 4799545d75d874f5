//! Plans: pure data describing what apply will do, and its renderers.
//!
//! A [`Plan`] is plain serde data (it is also the body of a plan file) and
//! does no I/O. Values in a plan are JSON with secrets already redacted
//! (see `state::redact`), so any rendering of a plan is safe to post.

pub mod batch;
pub mod render;

use crate::addr::InstanceAddr;
use serde::{Deserialize, Serialize};

/// What happens to one resource instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    NoOp,
    Create,
    Update,
    Delete,
    /// Destroy, then create (`-/+`).
    DeleteThenCreate,
    /// Create, then destroy (`+/-`, `create_before_destroy`).
    CreateThenDelete,
}

impl Action {
    /// Terraform's symbol for the action.
    pub fn symbol(self) -> &'static str {
        match self {
            Action::NoOp => " ",
            Action::Create => "+",
            Action::Update => "~",
            Action::Delete => "-",
            Action::DeleteThenCreate => "-/+",
            Action::CreateThenDelete => "+/-",
        }
    }

    /// Terraform's `change.actions` list.
    pub fn terraform_actions(self) -> Vec<&'static str> {
        match self {
            Action::NoOp => vec!["no-op"],
            Action::Create => vec!["create"],
            Action::Update => vec!["update"],
            Action::Delete => vec!["delete"],
            Action::DeleteThenCreate => vec!["delete", "create"],
            Action::CreateThenDelete => vec!["create", "delete"],
        }
    }

    pub fn is_replace(self) -> bool {
        matches!(self, Action::DeleteThenCreate | Action::CreateThenDelete)
    }
}

/// Why a change is planned: Terraform's `action_reason`, serialised as its
/// snake_case text. A plan file may carry a reason this build does not
/// know; it is kept (and shown) as it is.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ChangeReason {
    /// The instance's index is beyond the resource's `count`.
    DeleteBecauseCountIndex,
    /// The instance's key is no longer in the resource's `for_each`.
    DeleteBecauseEachKey,
    /// The resource block is gone from the configuration.
    DeleteBecauseNoResourceConfig,
    /// The instance's module is gone from the configuration.
    DeleteBecauseNoModule,
    /// The resource switched between `count`, `for_each` and neither.
    DeleteBecauseWrongRepetition,
    /// An extra object carries an address another object holds (SPEC §4).
    DeleteDuplicate,
    /// The instance is tainted.
    ReplaceBecauseTainted,
    /// `--replace` asked for it.
    ReplaceByRequest,
    /// An attribute that cannot be updated in place changed.
    ReplaceBecauseCannotUpdate,
    /// The object failed its health check in an earlier apply: it is
    /// gated again (nothing is sent to it) before it rejoins its listings.
    GateAgain,
    /// A reason written by another build, kept as text.
    Other(String),
}

impl ChangeReason {
    const KNOWN: [(ChangeReason, &'static str); 10] = [
        (ChangeReason::DeleteBecauseCountIndex, "delete_because_count_index"),
        (ChangeReason::DeleteBecauseEachKey, "delete_because_each_key"),
        (ChangeReason::DeleteBecauseNoResourceConfig, "delete_because_no_resource_config"),
        (ChangeReason::DeleteBecauseNoModule, "delete_because_no_module"),
        (ChangeReason::DeleteBecauseWrongRepetition, "delete_because_wrong_repetition"),
        (ChangeReason::DeleteDuplicate, "delete_duplicate"),
        (ChangeReason::ReplaceBecauseTainted, "replace_because_tainted"),
        (ChangeReason::ReplaceByRequest, "replace_by_request"),
        (ChangeReason::ReplaceBecauseCannotUpdate, "replace_because_cannot_update"),
        (ChangeReason::GateAgain, "gate_again"),
    ];

    /// Terraform's text for the reason.
    pub fn as_str(&self) -> &str {
        match self {
            ChangeReason::Other(text) => text,
            known => Self::KNOWN.iter().find(|(r, _)| r == known).map(|(_, text)| *text).unwrap_or_default(),
        }
    }

    /// The reason whose text is `text`.
    pub fn from_text(text: &str) -> ChangeReason {
        Self::KNOWN.iter().find(|(_, t)| *t == text).map(|(r, _)| r.clone()).unwrap_or_else(|| ChangeReason::Other(text.to_string()))
    }
}

impl std::fmt::Display for ChangeReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for ChangeReason {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for ChangeReason {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(ChangeReason::from_text(&String::deserialize(deserializer)?))
    }
}

impl ResourceChange {
    /// The delete of an extra object holding another object's address.
    pub fn is_duplicate_delete(&self) -> bool {
        self.reason == Some(ChangeReason::DeleteDuplicate)
    }
}

/// The change of one resource instance.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceChange {
    pub addr: InstanceAddr,
    pub rtype: String,
    pub provider: String,
    pub action: Action,
    /// Attributes before (from refreshed state); `None` for a create.
    pub before: Option<serde_json::Value>,
    /// Attributes after, unknown parts as null; `None` for a delete.
    pub after: Option<serde_json::Value>,
    /// Same shape as `after`, `true` where the value is known only after apply.
    pub after_unknown: serde_json::Value,
    /// Attributes whose change forces the replacement.
    pub replace_paths: Vec<String>,
    /// Terraform's `action_reason` (e.g. `replace_because_cannot_update`).
    pub reason: Option<ChangeReason>,
    /// Set when an update disrupts the object (e.g. `stop/start`).
    pub disruption: Option<String>,
    /// Extra lines a reviewer should read (e.g. `pending restart`).
    pub notes: Vec<String>,
    /// Resources this one depends on (after the change), one keyless
    /// address each; apply orders by resource.
    pub depends_on: Vec<InstanceAddr>,
    /// The update only removes members (scale-down): dependents go first.
    #[serde(default)]
    pub shrinks: bool,
    /// Hash of what the change was computed from (state entry and refreshed
    /// object); `apply PLANFILE` refuses the change when it differs.
    pub fingerprint: String,
}

/// A difference between state and the real object found by refresh.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Drift {
    pub addr: InstanceAddr,
    /// `None` when the object is gone.
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
}

/// An object carrying this state's lineage that state does not know.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Unmanaged {
    pub rtype: String,
    pub id: String,
    pub address: Option<InstanceAddr>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutputChange {
    pub name: String,
    pub before: Option<serde_json::Value>,
    pub after: Option<serde_json::Value>,
    pub after_unknown: bool,
    pub sensitive: bool,
}

impl OutputChange {
    /// True when the output really changes: a null value and no value are
    /// the same (an output evaluating to null shows nothing, so it must
    /// not count as a change or head an empty section).
    pub fn is_change(&self) -> bool {
        let present = |v: &Option<serde_json::Value>| v.clone().filter(|v| !v.is_null());
        present(&self.before) != present(&self.after) || self.after_unknown
    }
}

/// A whole plan.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
pub struct Plan {
    /// Changes in deterministic (address) order; no-ops excluded.
    pub changes: Vec<ResourceChange>,
    pub drift: Vec<Drift>,
    pub unmanaged: Vec<Unmanaged>,
    pub output_changes: Vec<OutputChange>,
    /// Ordered apply steps for reviewers, e.g. drain and rollout batches.
    pub steps: Vec<String>,
    /// Warnings and notes for the whole plan.
    pub notes: Vec<String>,
    /// Existing objects that `import` blocks adopt: (address, id).
    #[serde(default)]
    pub imports: Vec<(InstanceAddr, String)>,
    /// Objects that `moved` blocks relabel now: (from, to).
    #[serde(default)]
    pub relabels: Vec<(InstanceAddr, InstanceAddr)>,
    /// What the rollouts do to running things, one entry per sequence of
    /// batches (the same facts as `steps`, as data for summaries).
    #[serde(default)]
    pub disruptions: Vec<Disruption>,
}

/// One sequence of rollout batches as a reviewer summarises it: "3 ×
/// stop/start, 1 at a time, drained from nginx_upstream.web".
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disruption {
    /// The resource whose instances are disrupted, or the one object whose
    /// pieces are (a `docker_service`'s containers).
    pub subject: String,
    /// What each member goes through, e.g. `stop/start`.
    pub disruption: String,
    /// The disrupted instances (or pieces), in rollout order.
    pub members: Vec<String>,
    pub max_unavailable: usize,
    pub batches: usize,
    /// The listing instances drained around the batches, sorted.
    pub drained_from: Vec<String>,
    /// The health gate a member passes before it rejoins, when it has one.
    pub gate: Option<String>,
}

impl Plan {
    /// `(add, change, destroy)` counted the way Terraform's summary does.
    pub fn summary_counts(&self) -> (usize, usize, usize) {
        let mut counts = (0, 0, 0);
        for change in &self.changes {
            match change.action {
                Action::NoOp => {}
                Action::Create => counts.0 += 1,
                Action::Update => counts.1 += 1,
                Action::Delete => counts.2 += 1,
                Action::DeleteThenCreate | Action::CreateThenDelete => {
                    counts.0 += 1;
                    counts.2 += 1;
                }
            }
        }
        counts
    }

    pub fn has_changes(&self) -> bool {
        !self.imports.is_empty()
            || !self.relabels.is_empty()
            || self.changes.iter().any(|c| c.action != Action::NoOp)
            || self.output_changes.iter().any(OutputChange::is_change)
    }

    /// `Plan: X to add, Y to change, Z to destroy.`
    pub fn summary_line(&self) -> String {
        let (add, change, destroy) = self.summary_counts();
        let import = if self.imports.is_empty() { String::new() } else { format!("{} to import, ", self.imports.len()) };
        format!("Plan: {import}{add} to add, {change} to change, {destroy} to destroy.")
    }
}
