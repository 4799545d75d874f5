//! Renderers of a [`Plan`]: the Terraform-style text a person reviews
//! ([`human`]), a pull-request comment ([`markdown`]) and Terraform-shaped
//! plan JSON ([`json`]). They are pure functions from a plan to text or JSON:
//! no I/O, no printing, no panics on any plan, and the same plan always gives
//! the same output. Secrets reach a plan already redacted to
//! `{"sensitive": "sha256:…"}`; every renderer shows them as
//! `(sensitive value)` (or `null` plus a sensitivity mark in JSON) and never
//! prints the hash.

mod canvas;
mod diff;
mod human;
mod json;
mod markdown;
#[cfg(test)]
mod tests;

pub use human::human;
pub use json::json;
pub use markdown::{MARKER, markdown, markdown_with};

use super::{Action, ChangeReason, ResourceChange};
use serde_json::Value;

/// How [`human`] draws its text.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RenderOptions {
    /// Colour the `+`, `~` and `-` symbols with ANSI escapes.
    pub color: bool,
}

/// The `false` of an `after_unknown` tree that has nothing unknown here.
static KNOWN: Value = Value::Bool(false);

/// True when the `after_unknown` tree marks the whole value as unknown.
fn is_unknown(unknown: &Value) -> bool {
    unknown == &Value::Bool(true)
}

/// True when anything in the `after_unknown` tree is unknown.
fn any_unknown(unknown: &Value) -> bool {
    match unknown {
        Value::Bool(b) => *b,
        Value::Array(items) => items.iter().any(any_unknown),
        Value::Object(map) => map.values().any(any_unknown),
        _ => false,
    }
}

/// The `after_unknown` subtree of an object attribute.
fn unknown_key<'a>(unknown: &'a Value, key: &str) -> &'a Value {
    unknown.get(key).unwrap_or(&KNOWN)
}

/// The `after_unknown` subtree of a list element.
fn unknown_index(unknown: &Value, index: usize) -> &Value {
    unknown.get(index).unwrap_or(&KNOWN)
}

/// True when a plan value is a redacted secret.
fn is_secret(value: &Value) -> bool {
    crate::state::is_redacted(value)
}

/// Why a change happens, as the words after the headline, e.g.
/// `because index [3] is out of range for count`; raw reasons that have no
/// wording yet are shown as they are.
fn reason_text(change: &ResourceChange) -> Option<String> {
    let reason = change.reason.as_ref().map(ChangeReason::as_str)?;
    let key = change.addr.key.as_ref().map(|k| k.to_string());
    let text = match reason {
        "delete_because_count_index" => match key {
            Some(key) => format!("because index {key} is out of range for count"),
            None => "because its index is out of range for count".to_string(),
        },
        "delete_because_each_key" => match key {
            Some(key) => format!("because key {key} is not in the for_each map"),
            None => "because its key is not in the for_each map".to_string(),
        },
        "delete_because_no_resource_config" => "because it is no longer in the configuration".to_string(),
        "delete_because_no_module" => format!(
            "because {} is no longer in the configuration",
            if change.addr.resource.module.is_root() { "its module".to_string() } else { change.addr.resource.module.to_string() }
        ),
        "delete_because_wrong_repetition" => "because the resource's count or for_each changed".to_string(),
        "delete_duplicate" => "because it duplicates the object in state".to_string(),
        "replace_because_tainted" => "because it is tainted".to_string(),
        "replace_by_request" => "because a replacement was requested".to_string(),
        "replace_because_cannot_update" => {
            if change.replace_paths.is_empty() {
                "because it cannot be updated in place".to_string()
            } else {
                let paths: Vec<&str> = change.replace_paths.iter().map(String::as_str).collect();
                format!("because {} cannot be updated in place", paths.join(", "))
            }
        }
        other => format!("reason: {other}"),
    };
    Some(text)
}

/// What a change does, as a short verb for tables (`update`, `replace`).
pub fn action_word(action: Action) -> &'static str {
    match action {
        Action::NoOp => "no-op",
        Action::Create => "create",
        Action::Update => "update",
        Action::Delete => "destroy",
        Action::DeleteThenCreate => "replace",
        Action::CreateThenDelete => "replace (create first)",
    }
}
