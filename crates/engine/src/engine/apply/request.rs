//! Turning a step into a provider request. The planned value is the plan's
//! own; the configuration is evaluated again only when that value has
//! unknowns or a dependency was applied in this run, with the provider's
//! plan-time adjustments laid over it. Computed attributes still unknown
//! are sent as null; anything else still unknown fails the step.

use super::Applier;
use super::steps::{Kind, Step};
use crate::diag::{Diag, Diags};
use crate::engine::gate::Gate;
use crate::engine::plan::diff_instance;
use crate::engine::world::Expansion;
use crate::provider::{ApplyAction, ApplyRequest, DrainRequest, ResourceType};
use crate::state::{new_id, redact, same_as_stored};
use crate::value::Value;
use std::collections::BTreeMap;

impl Applier<'_> {
    /// Builds the request of a create, update or delete step of item `item`.
    pub(super) fn request_for(&mut self, item: usize, step: &Step) -> Result<ApplyRequest, Diags> {
        let change = &self.items[item].change;
        let prior_json = if step.keep_state {
            change.before.clone()
        } else {
            self.state.resources.get(&change.addr).map(|e| e.attributes.json()).or(change.before.clone())
        };
        let prior = prior_json.as_ref().map(Value::from_json).unwrap_or(Value::Null);
        if step.kind == Kind::Delete {
            return Ok(ApplyRequest {
                rollout: Default::default(),
                rtype: change.rtype.clone(),
                addr: change.addr.clone(),
                action: ApplyAction::Delete,
                prior,
                planned: Value::Null,
                changed: vec![],
                lineage: self.salt.clone(),
                token: None,
                part: None,
            });
        }
        let record = self.items[item].record.as_ref();
        let mut value = record.map(|r| r.value.clone()).unwrap_or(Value::Null);
        let deps_applied = change.depends_on.iter().any(|d| self.applied_resources.contains(&d.resource));
        if value.has_unknown() || deps_applied {
            let now = self.reevaluate(item, step.kind == Kind::Update, &prior)?;
            self.check_known_unchanged(item, &value, &now)?;
            value = now;
        }
        let change = &self.items[item].change;
        let value = match self.registry.resource_type(&change.rtype) {
            Some((_, rt)) => strip_unknown_computed(value, rt),
            None => value,
        };
        if value.has_unknown() {
            return Err(Diag::error(format!("{}: some values are still unknown after their dependencies were applied", change.addr)).into());
        }
        let changed = changed_attributes(&prior, &value, &self.salt);
        let create = step.kind == Kind::Create;
        let record = self.items[item].record.as_ref();
        let rollout = record.map(|r| r.rollout.rollout).unwrap_or_default();
        let part = step
            .part
            .then(|| record.and_then(|r| r.batches.get(step.batch)).map(|b| b.parts.iter().map(|p| p.name.clone()).collect()))
            .flatten();
        Ok(ApplyRequest {
            rollout,
            rtype: change.rtype.clone(),
            addr: change.addr.clone(),
            action: if create { ApplyAction::Create } else { ApplyAction::Update },
            prior: if create { Value::Null } else { prior },
            planned: value,
            changed,
            lineage: self.salt.clone(),
            token: create.then(new_id),
            part,
        })
    }

    /// The planned value of item `item` from its configuration evaluated
    /// against the real values of what it depends on.
    fn reevaluate(&mut self, item: usize, update: bool, prior: &Value) -> Result<Value, Diags> {
        let change = &self.items[item].change;
        let config = self.world.config.clone();
        let Some(resource) = config.resource(&change.addr.resource) else {
            return Err(Diag::error(format!("{} is no longer in the configuration", change.addr)).into());
        };
        self.world.refresh_ancestors(&change.addr.resource)?;
        let record = self.items[item].record.as_ref();
        let expansion = record.map(|r| r.expansion.clone()).unwrap_or(Expansion { key: change.addr.key.clone(), each_value: None });
        let config_value = self.world.eval_instance(resource, &expansion)?;
        let config_value = overlay(record.map(|r| &r.adjusted), config_value);
        let (provider_name, rt) = self.registry.resource_type(&change.rtype).expect("registered");
        let provider = self.registry.provider(provider_name).expect("registered");
        let existing = if update { Some(prior) } else { None };
        Ok(diff_instance(rt, provider.as_ref(), existing, config_value, resource, false, &self.salt).planned)
    }

    /// Apply resolves only what plan did not know: a configured value the
    /// plan showed as known must come out of the re-evaluation unchanged.
    fn check_known_unchanged(&self, item: usize, planned: &Value, now: &Value) -> Result<(), Diags> {
        let change = &self.items[item].change;
        let (Some((_, rt)), Value::Map(planned), Value::Map(now)) = (self.registry.resource_type(&change.rtype), planned, now) else {
            return Ok(());
        };
        let mut moved = Vec::new();
        for (name, was) in planned {
            // Computed attributes are the provider's, not the plan's promise.
            if rt.schema.attribute(name).is_none_or(|a| a.computed || a.optional_computed) {
                continue;
            }
            known_differences(name, was, now.get(name).unwrap_or(&Value::Null), &mut moved);
        }
        if moved.is_empty() {
            return Ok(());
        }
        Err(Diag::error(format!("{}: values the plan showed changed before apply: {}", change.addr, moved.join(", ")))
            .with_detail("Nothing was sent for it. Run plan again to review the new values.")
            .into())
    }

    /// The listing request of a drain/restore step: the listing as state
    /// holds it now and as plan evaluated it, with the entries to drain.
    pub(super) fn drain_request(&self, step: &Step, restore: bool) -> Result<DrainRequest, Diags> {
        let batch = self.items[step.item].record.as_ref().and_then(|r| r.batches.get(step.batch));
        let Some(d) = batch.zip(step.drain).and_then(|(b, di)| b.drains.get(di)) else {
            return Err(Diag::error("a drain step without its batch's drain; this is a bug in himaplan").into());
        };
        let Some(entry) = self.state.resources.get(&d.listing) else {
            return Err(Diag::error(format!("{} is no longer in state, so it cannot be drained", d.listing))
                .with_detail("Run plan again.")
                .into());
        };
        let request = ApplyRequest {
            rollout: Default::default(),
            rtype: d.listing.resource.rtype.clone(),
            addr: d.listing.clone(),
            action: ApplyAction::Update,
            prior: entry.attributes.value(),
            planned: d.config.clone(),
            changed: Vec::new(),
            lineage: self.salt.clone(),
            token: None,
            part: None,
        };
        Ok(DrainRequest { request, entries: d.plan.entries.clone(), restore })
    }
}

impl Applier<'_> {
    /// The member of a gate step as state holds it now, and its gate.
    pub(super) fn gate_request(&self, step: &Step) -> Result<(ApplyRequest, Gate), Diags> {
        let record = self.items[step.item].record.as_ref();
        let batch = record.and_then(|r| r.batches.get(step.batch));
        let gate = match step.gate {
            Some(gi) => batch.and_then(|b| b.gates.get(gi)),
            None => record.and_then(|r| r.create_gate.as_deref()),
        };
        let Some(gate) = gate else {
            return Err(Diag::error("a gate step without its gate; this is a bug in himaplan").into());
        };
        let entry = self.state.resources.get(&gate.member);
        let mut prior = entry.map(|e| e.attributes.value()).unwrap_or(Value::Null);
        // A piece's gate probes the piece as it is now (a recreated container).
        if let Some(part) = &gate.part {
            let pieces = prior.get(&part.attribute).and_then(Value::as_list).unwrap_or_default();
            let piece = pieces.iter().find(|p| p.get("name").and_then(Value::as_str) == Some(part.name.as_str())).cloned();
            prior = piece.unwrap_or(Value::Null);
        }
        let request = ApplyRequest {
            rollout: Default::default(),
            rtype: gate.member.resource.rtype.clone(),
            addr: gate.member.clone(),
            action: ApplyAction::Update,
            planned: prior.clone(),
            prior,
            changed: Vec::new(),
            lineage: self.salt.clone(),
            token: None,
            part: None,
        };
        Ok((request, gate.clone()))
    }
}

/// Lays the provider's plan-time adjustments over a re-evaluated configuration.
fn overlay(adjusted: Option<&BTreeMap<String, Value>>, mut config: Value) -> Value {
    if let (Some(overlay), Value::Map(map)) = (adjusted, &mut config) {
        for (k, v) in overlay {
            map.insert(k.clone(), v.clone());
        }
    }
    config
}

/// Computed attributes are unknown until the provider answers: send null.
fn strip_unknown_computed(value: Value, rt: &ResourceType) -> Value {
    let computed = |k: &str| rt.schema.attribute(k).is_some_and(|a| a.computed || a.optional_computed);
    match value {
        Value::Map(map) => {
            Value::Map(map.into_iter().map(|(k, v)| if computed(&k) && v.has_unknown() { (k, Value::Null) } else { (k, v) }).collect())
        }
        other => other,
    }
}

/// Names of the attributes whose (redacted) value differs from `prior`.
fn changed_attributes(prior: &Value, value: &Value, salt: &str) -> Vec<String> {
    match (prior, value) {
        (Value::Map(p), Value::Map(v)) => v
            .iter()
            .filter(|(k, nv)| !p.get(*k).is_some_and(|pv| same_as_stored(nv, Some(&redact(pv, salt)), salt)))
            .map(|(k, _)| k.clone())
            .collect(),
        _ => vec![],
    }
}

/// Paths under `path` where `was` (the plan's value) is known and `now`
/// differs; unknown parts of `was` may resolve to anything.
fn known_differences(path: &str, was: &Value, now: &Value, out: &mut Vec<String>) {
    match (was, now) {
        (Value::Unknown, _) => {}
        (Value::Sensitive(a), b) => known_differences(path, a, b.unmarked(), out),
        (a, Value::Sensitive(b)) => known_differences(path, a, b, out),
        (Value::Map(a), Value::Map(b)) if was.has_unknown() => {
            for (k, v) in a {
                known_differences(&format!("{path}.{k}"), v, b.get(k).unwrap_or(&Value::Null), out);
            }
        }
        (Value::List(a), Value::List(b)) if was.has_unknown() && a.len() == b.len() => {
            for (i, (x, y)) in a.iter().zip(b).enumerate() {
                known_differences(&format!("{path}[{i}]"), x, y, out);
            }
        }
        (a, b) => {
            if a.deep_unmarked() != b.deep_unmarked() {
                out.push(path.to_string());
            }
        }
    }
}
