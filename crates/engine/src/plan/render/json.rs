//! The plan as machine-readable JSON modelled on Terraform's plan
//! representation (`format_version` 1.2): `resource_changes`,
//! `resource_drift` and `output_changes` in Terraform's shape, and what only
//! himaplan knows (disruptions, apply steps, unmanaged objects, notes) under
//! a `himaplan` key. Redacted secrets become `null`, marked in
//! `before_sensitive`/`after_sensitive`, so their hashes never leave.

use super::is_secret;
use crate::addr::{InstanceAddr, InstanceKey};
use crate::plan::{Action, OutputChange, Plan, ResourceChange};
use serde_json::{Map, Value, json};

/// Renders `plan` as Terraform-style plan JSON.
pub fn json(plan: &Plan) -> Value {
    let resource_changes: Vec<Value> = plan.changes.iter().filter(|c| c.action != Action::NoOp).map(resource_change).collect();
    let resource_drift: Vec<Value> = plan
        .drift
        .iter()
        .map(|d| {
            let action = if d.after.is_none() { Action::Delete } else { Action::Update };
            let provider = plan
                .changes
                .iter()
                .find(|c| c.addr == d.addr)
                .map(|c| c.provider.clone())
                .unwrap_or_else(|| provider_of(&d.addr.resource.rtype));
            let mut entry = address_fields(&d.addr, &provider);
            entry.insert("change".into(), change_object(action, d.before.as_ref(), d.after.as_ref(), &Value::Object(Map::new())));
            Value::Object(entry)
        })
        .collect();
    let output_changes: Map<String, Value> = plan.output_changes.iter().map(|o| (o.name.clone(), output_change(o))).collect();

    let disruptions: Map<String, Value> =
        plan.changes.iter().filter_map(|c| c.disruption.as_ref().map(|d| (c.addr.to_string(), Value::String(d.clone())))).collect();
    let change_notes: Map<String, Value> =
        plan.changes.iter().filter(|c| !c.notes.is_empty()).map(|c| (c.addr.to_string(), json!(c.notes))).collect();
    let unmanaged: Vec<Value> = plan
        .unmanaged
        .iter()
        .map(|u| {
            let mut entry = Map::new();
            entry.insert("type".into(), json!(u.rtype));
            entry.insert("id".into(), json!(u.id));
            if let Some(address) = &u.address {
                entry.insert("address".into(), json!(address));
            }
            Value::Object(entry)
        })
        .collect();

    json!({
        "format_version": "1.2",
        "resource_changes": resource_changes,
        "resource_drift": resource_drift,
        "output_changes": output_changes,
        "himaplan": {
            "disruptions": disruptions,
            "change_notes": change_notes,
            "steps": plan.steps,
            "unmanaged": unmanaged,
            "notes": plan.notes,
        },
    })
}

fn resource_change(change: &ResourceChange) -> Value {
    let mut entry = address_fields(&change.addr, &change.provider);
    let mut body = match change_object(change.action, change.before.as_ref(), change.after.as_ref(), &change.after_unknown) {
        Value::Object(map) => map,
        _ => Map::new(),
    };
    if !change.replace_paths.is_empty() {
        let paths: Vec<Value> = change.replace_paths.iter().map(|p| Value::Array(path_steps(p))).collect();
        body.insert("replace_paths".into(), Value::Array(paths));
    }
    entry.insert("change".into(), Value::Object(body));
    if let Some(reason) = &change.reason {
        entry.insert("action_reason".into(), json!(reason.as_str()));
    }
    Value::Object(entry)
}

/// `address`, `module_address`, `mode`, `type`, `name`, `index`, `provider_name`.
fn address_fields(addr: &InstanceAddr, provider: &str) -> Map<String, Value> {
    let mut entry = Map::new();
    entry.insert("address".into(), json!(addr.to_string()));
    if !addr.resource.module.is_root() {
        entry.insert("module_address".into(), json!(addr.resource.module.to_string()));
    }
    entry.insert("mode".into(), json!("managed"));
    entry.insert("type".into(), json!(addr.resource.rtype));
    entry.insert("name".into(), json!(addr.resource.name));
    match &addr.key {
        Some(InstanceKey::Int(i)) => {
            entry.insert("index".into(), json!(i));
        }
        Some(InstanceKey::Str(s)) => {
            entry.insert("index".into(), json!(s));
        }
        None => {}
    }
    entry.insert("provider_name".into(), json!(provider));
    entry
}

fn change_object(action: Action, before: Option<&Value>, after: Option<&Value>, after_unknown: &Value) -> Value {
    let after_unknown = match after_unknown {
        Value::Null => Value::Object(Map::new()),
        other => other.clone(),
    };
    json!({
        "actions": action.terraform_actions(),
        "before": before.map(without_secrets).unwrap_or(Value::Null),
        "after": after.map(without_secrets).unwrap_or(Value::Null),
        "after_unknown": after_unknown,
        "before_sensitive": before.map(sensitive_tree).unwrap_or(Value::Bool(false)),
        "after_sensitive": after.map(sensitive_tree).unwrap_or(Value::Bool(false)),
    })
}

fn output_change(output: &OutputChange) -> Value {
    let present = |v: &Option<Value>| v.as_ref().is_some_and(|v| !v.is_null());
    let action = match (present(&output.before), present(&output.after) || output.after_unknown) {
        (false, true) => Action::Create,
        (true, false) => Action::Delete,
        (false, false) => Action::NoOp,
        (true, true) if output.before == output.after && !output.after_unknown => Action::NoOp,
        (true, true) => Action::Update,
    };
    // A sensitive output's values are withheld entirely: they may not have
    // been redacted into hashes on their way into the plan.
    let shown = |v: &Option<Value>| match v {
        Some(v) if !output.sensitive => without_secrets(v),
        _ => Value::Null,
    };
    let sensitive = |v: &Option<Value>| match v {
        _ if output.sensitive => Value::Bool(true),
        Some(v) => sensitive_tree(v),
        None => Value::Bool(false),
    };
    json!({
        "actions": action.terraform_actions(),
        "before": shown(&output.before),
        "after": shown(&output.after),
        "after_unknown": output.after_unknown,
        "before_sensitive": sensitive(&output.before),
        "after_sensitive": sensitive(&output.after),
    })
}

/// The value with each redacted secret replaced by `null`.
fn without_secrets(value: &Value) -> Value {
    match value {
        _ if is_secret(value) => Value::Null,
        Value::Array(items) => Value::Array(items.iter().map(without_secrets).collect()),
        Value::Object(map) => Value::Object(map.iter().map(|(k, v)| (k.clone(), without_secrets(v))).collect()),
        other => other.clone(),
    }
}

/// Terraform's sensitivity tree: `true` at secrets, objects and lists
/// leading to them, `false` when nothing in the value is secret.
fn sensitive_tree(value: &Value) -> Value {
    match value {
        _ if is_secret(value) => Value::Bool(true),
        Value::Array(items) => {
            let tree: Vec<Value> = items.iter().map(sensitive_tree).collect();
            if tree.iter().all(|t| t == &Value::Bool(false)) { Value::Bool(false) } else { Value::Array(tree) }
        }
        Value::Object(map) => {
            let tree: Map<String, Value> =
                map.iter().map(|(k, v)| (k.clone(), sensitive_tree(v))).filter(|(_, t)| t != &Value::Bool(false)).collect();
            if tree.is_empty() { Value::Bool(false) } else { Value::Object(tree) }
        }
        _ => Value::Bool(false),
    }
}

/// Terraform's path steps of a replace path: `disk.size` → `["disk",
/// "size"]`, `ports[0]` → `["ports", 0]`, `tags["a.b"]` → `["tags", "a.b"]`.
/// A path that does not parse stays a single step.
fn path_steps(path: &str) -> Vec<Value> {
    let mut steps = Vec::new();
    let mut rest = path;
    while !rest.is_empty() {
        if let Some(inner) = rest.strip_prefix('[') {
            let Some(close) = find_close(inner) else { return vec![json!(path)] };
            let (index, tail) = inner.split_at(close);
            let step = if index.starts_with('"') {
                match serde_json::from_str::<String>(index) {
                    Ok(key) => json!(key),
                    Err(_) => return vec![json!(path)],
                }
            } else {
                match index.parse::<i64>() {
                    Ok(i) => json!(i),
                    Err(_) => return vec![json!(path)],
                }
            };
            steps.push(step);
            rest = tail.get(1..).unwrap_or("");
        } else {
            let rest_trimmed = rest.strip_prefix('.').unwrap_or(rest);
            let end = rest_trimmed.find(['.', '[']).unwrap_or(rest_trimmed.len());
            let (name, tail) = rest_trimmed.split_at(end);
            if name.is_empty() {
                return vec![json!(path)];
            }
            steps.push(json!(name));
            rest = tail;
        }
    }
    steps
}

/// The byte offset of the `]` closing an index, skipping quoted text.
fn find_close(text: &str) -> Option<usize> {
    let mut in_string = false;
    let mut escaped = false;
    for (i, ch) in text.char_indices() {
        match ch {
            _ if escaped => escaped = false,
            '\\' if in_string => escaped = true,
            '"' => in_string = !in_string,
            ']' if !in_string => return Some(i),
            _ => {}
        }
    }
    None
}

/// The provider of a resource type by Terraform's naming convention
/// (`aws_instance` → `aws`), for drift of objects the plan does not change.
fn provider_of(rtype: &str) -> String {
    rtype.split('_').next().unwrap_or(rtype).to_string()
}
