//! Diffing one instance: its evaluated configuration against its prior
//! (refreshed) attributes, refined by the provider's `shape_change`, into
//! an action, a planned value and the change record reviewers read.
//! Comparison happens in redacted form, so secrets compare by hash.

use super::fingerprint::fingerprint;
use crate::addr::InstanceAddr;
use crate::config::Resource;
use crate::plan::{Action, ChangeReason, ResourceChange};
use crate::provider::{Provider, ResourceType};
use crate::state::{ResourceState, State, redact, redact_like, same_as_stored};
use crate::value::Value;

/// The result of diffing one instance.
pub struct InstanceDiff {
    pub shrinks: bool,
    pub action: Action,
    pub planned: Value,
    pub replace_paths: Vec<String>,
    pub reason: Option<ChangeReason>,
    pub disruption: Option<String>,
    pub notes: Vec<String>,
    pub changed: Vec<String>,
}

/// Diffs an instance's configuration against its prior attributes.
/// Comparison happens in redacted form so that secrets compare by hash.
pub fn diff_instance(
    rt: &ResourceType,
    provider: &dyn Provider,
    prior: Option<&Value>,
    config: Value,
    resource: &Resource,
    force_replace: bool,
    salt: &str,
) -> InstanceDiff {
    let config_map = config.as_map().cloned().unwrap_or_default();
    let ignore_all = resource.lifecycle.ignore_changes.iter().any(|i| i == "all");
    let mut planned = crate::value::ValueMap::new();
    for attr in &rt.schema.attributes {
        let from_config = config_map.get(attr.name).cloned().unwrap_or(Value::Null);
        let prior_value = prior.and_then(|p| p.get(attr.name)).cloned();
        let value = if attr.computed || (attr.optional_computed && from_config.is_null()) {
            prior_value.unwrap_or(Value::Unknown)
        } else if prior.is_some() && (ignore_all || resource.lifecycle.ignore_changes.iter().any(|i| i == attr.name)) {
            prior_value.unwrap_or(from_config)
        } else {
            from_config
        };
        planned.insert(attr.name.to_string(), value);
    }
    for block in &rt.schema.blocks {
        let value = config_map.get(block.name).cloned().unwrap_or(Value::Null);
        planned.insert(block.name.to_string(), value);
    }
    let Some(prior) = prior else {
        for attr in rt.schema.attributes.iter().filter(|a| a.computed) {
            planned.insert(attr.name.to_string(), Value::Unknown);
        }
        return InstanceDiff {
            shrinks: false,
            action: Action::Create,
            planned: Value::Map(planned),
            replace_paths: vec![],
            reason: None,
            disruption: None,
            notes: vec![],
            changed: vec![],
        };
    };
    let prior_json = redact(prior, salt);
    let changed: Vec<String> = planned
        .iter()
        .filter(|(k, v)| {
            let is_computed = rt.schema.attribute(k).is_some_and(|a| a.computed);
            !is_computed && (v.has_unknown() || !same_as_stored(v, prior_json.get(k.as_str()), salt))
        })
        .map(|(k, _)| k.clone())
        .collect();
    let planned_value = Value::Map(planned.clone());
    let shape = provider.shape_change(rt.name, prior, &planned_value, &changed);
    let mut replace_paths: Vec<String> = changed
        .iter()
        .filter(|c| rt.schema.attribute(c).is_some_and(|a| a.replace) || shape.requires_replace.contains(c))
        .cloned()
        .collect();
    replace_paths.sort();
    if force_replace || !replace_paths.is_empty() {
        for attr in rt.schema.attributes.iter().filter(|a| a.computed) {
            planned.insert(attr.name.to_string(), Value::Unknown);
        }
        return InstanceDiff {
            shrinks: false,
            action: if resource.lifecycle.create_before_destroy { Action::CreateThenDelete } else { Action::DeleteThenCreate },
            planned: Value::Map(planned),
            replace_paths,
            reason: Some(if force_replace { ChangeReason::ReplaceByRequest } else { ChangeReason::ReplaceBecauseCannotUpdate }),
            disruption: None,
            notes: shape.notes,
            changed,
        };
    }
    if changed.is_empty() {
        return InstanceDiff {
            shrinks: false,
            action: Action::NoOp,
            planned: Value::Map(planned),
            replace_paths,
            reason: None,
            disruption: None,
            notes: vec![],
            changed,
        };
    }
    for name in &shape.recomputed {
        planned.insert(name.clone(), Value::Unknown);
    }
    for (name, value) in &shape.predicted {
        planned.insert(name.clone(), value.clone());
    }
    InstanceDiff {
        shrinks: shape.shrinks,
        action: Action::Update,
        planned: Value::Map(planned),
        replace_paths,
        reason: None,
        disruption: shape.disruption,
        notes: shape.notes,
        changed,
    }
}

/// A change record from an instance's diff.
pub(super) fn make_change(
    addr: &InstanceAddr,
    provider_name: &str,
    state: &State,
    diff: InstanceDiff,
    depends_on: Vec<InstanceAddr>,
    salt: &str,
) -> ResourceChange {
    let before = state.resources.get(addr).map(|e| e.attributes.json());
    ResourceChange {
        addr: addr.clone(),
        rtype: addr.resource.rtype.clone(),
        provider: provider_name.to_string(),
        action: diff.action,
        before: before.clone(),
        // Unchanged secrets keep the hash state has, so before and after compare.
        after: Some(redact_like(&diff.planned, before.as_ref(), salt)),
        after_unknown: unknown_tree(&diff.planned),
        replace_paths: diff.replace_paths,
        reason: diff.reason,
        disruption: diff.disruption,
        notes: diff.notes,
        depends_on,
        fingerprint: fingerprint(state, addr),
        shrinks: diff.shrinks,
    }
}

/// The delete of an instance in state, for `reason`.
pub(super) fn delete_change(addr: &InstanceAddr, entry: &ResourceState, reason: ChangeReason, state: &State) -> ResourceChange {
    ResourceChange {
        addr: addr.clone(),
        rtype: entry.rtype.clone(),
        provider: entry.provider.clone(),
        action: Action::Delete,
        before: Some(entry.attributes.json()),
        after: None,
        after_unknown: serde_json::Value::Bool(false),
        replace_paths: vec![],
        reason: Some(reason),
        disruption: None,
        notes: vec![],
        depends_on: vec![],
        fingerprint: fingerprint(state, addr),
        shrinks: false,
    }
}

/// A tree of the value's shape with `true` where it is unknown.
pub fn unknown_tree(value: &Value) -> serde_json::Value {
    match value {
        Value::Unknown => serde_json::Value::Bool(true),
        Value::Map(m) => {
            let inner: serde_json::Map<String, serde_json::Value> =
                m.iter().filter(|(_, v)| v.has_unknown()).map(|(k, v)| (k.clone(), unknown_tree(v))).collect();
            serde_json::Value::Object(inner)
        }
        Value::List(items) if value.has_unknown() => serde_json::Value::Array(items.iter().map(unknown_tree).collect()),
        Value::Sensitive(inner) => unknown_tree(inner),
        _ => serde_json::Value::Bool(false),
    }
}
