//! Rollouts as plan decides them: the resolved `max_unavailable` of each
//! resource, `--target` selection, and the rollout batches with the drains
//! around each ([`drain`]), recorded in the instances' records (apply
//! reads them, never recomputes them) and described for reviewers.

use super::Planner;
use crate::addr::{InstanceAddr, ResourceAddr};
use crate::config::Resource;
use crate::config::eval::{self, Scope};
use crate::diag::{Diag, Diags};
use crate::engine::world::World;
use crate::engine::{drain, gate};
use crate::graph::Node;
use crate::plan::{Action, Disruption, ResourceChange};
use crate::provider::{Member, Rollout};
use crate::value::Value;
use std::collections::BTreeSet;
use std::sync::Arc;

/// `rollout { max_unavailable }` of a resource, evaluated in its module.
pub(super) fn resolve_rollout(world: &World, resource: &Resource) -> Result<Rollout, Diags> {
    let Some(expr) = &resource.max_unavailable else { return Ok(Rollout::default()) };
    let value = eval::eval(expr, &mut Scope::new(world.namespace(&resource.addr.module)))?.deep_unmarked();
    let bad = || -> Diags {
        Diag::error(format!("Invalid rollout.max_unavailable: {value}"))
            .at(expr.location())
            .with_detail("Use a whole number of at least 1, or a percentage such as \"25%\".")
            .into()
    };
    match &value {
        Value::Number(_) => match value.as_i64() {
            Some(n) if n >= 1 => Ok(Rollout::Count(n as usize)),
            _ => Err(bad()),
        },
        Value::String(s) => match s.strip_suffix('%').and_then(|p| p.trim().parse::<f64>().ok()) {
            Some(p) if p > 0.0 && p <= 100.0 => Ok(Rollout::Percent(p)),
            _ => Err(bad()),
        },
        _ => Err(bad()),
    }
}

impl Planner {
    /// Keeps only the targeted changes and the changes of what they depend on.
    pub(super) fn apply_targets(&mut self) {
        if self.options.targets.is_empty() {
            return;
        }
        let targets = &self.options.targets;
        let selected = |addr: &InstanceAddr| targets.iter().any(|t| t.matches(addr));
        let mut wanted_resources: BTreeSet<ResourceAddr> = BTreeSet::new();
        for c in self.changes.iter().filter(|c| selected(&c.addr)) {
            wanted_resources.extend(self.graph.resource_deps(&Node::Resource(c.addr.resource.clone())));
        }
        let wanted: BTreeSet<InstanceAddr> = self
            .changes
            .iter()
            .filter(|c| selected(&c.addr) || wanted_resources.contains(&c.addr.resource))
            .map(|c| c.addr.clone())
            .collect();
        self.changes.retain(|c| wanted.contains(&c.addr));
        self.instances.retain(|addr, _| wanted.contains(addr));
        self.notes.push("Only targeted resources (and what they depend on) are planned: --target.".into());
    }

    /// Splits the disruptive updates into batches, finds each batch's
    /// drains, records the batch in its members' records, and returns the
    /// reviewer-facing steps (one block per batch, then scale-down order)
    /// with their summary per sequence of batches.
    pub(super) fn rollout_steps(&mut self) -> Result<(Vec<String>, Vec<Disruption>), Diags> {
        // An instance being destroyed or replaced is not drained around others.
        let going: BTreeSet<InstanceAddr> = self
            .changes
            .iter()
            .filter(|c| matches!(c.action, Action::Delete | Action::DeleteThenCreate | Action::CreateThenDelete))
            .map(|c| c.addr.clone())
            .collect();
        let mut steps = Vec::new();
        let members_of = |c: &ResourceChange| -> Vec<Member> {
            let Some(provider) = self.registry.resource_type(&c.rtype).and_then(|(p, _)| self.registry.provider(p)) else {
                return Vec::new();
            };
            let prior = self.state.resources.get(&c.addr).map(|e| e.attributes.value()).unwrap_or(Value::Null);
            let planned = self.instances.get(&c.addr).map(|r| r.value.clone()).unwrap_or(Value::Null);
            let changed: Vec<String> = match (c.before.as_ref().and_then(|b| b.as_object()), c.after.as_ref().and_then(|a| a.as_object())) {
                (Some(b), Some(a)) => a.iter().filter(|(k, v)| b.get(*k) != Some(*v)).map(|(k, _)| k.clone()).collect(),
                _ => Vec::new(),
            };
            provider.members(&c.rtype, &prior, &planned, &changed)
        };
        let batches = drain::batches(&self.changes, &self.rollouts, &members_of);
        let mut disruptions: Vec<Disruption> = Vec::new();
        for mut batch in batches {
            batch.drains = drain::find(&mut self.world, &self.state, &going, &batch)?;
            batch.gates = self.gates_of(&batch)?;
            steps.push(drain::describe(&batch));
            summarise(&mut disruptions, &batch);
            let batch = Arc::new(batch);
            for m in &batch.members {
                if let Some(record) = self.instances.get_mut(m) {
                    record.batches.push(batch.clone());
                }
            }
        }
        steps.extend(self.creation_gates()?);
        steps.extend(shrink_lines(&self.changes));
        Ok((steps, disruptions))
    }
}

impl Planner {
    /// Gates of created members (a scale-up): each passes its health check
    /// before the resources that list it are updated to include it.
    fn creation_gates(&mut self) -> Result<Vec<String>, Diags> {
        let mut steps = Vec::new();
        let created: Vec<InstanceAddr> = self
            .changes
            .iter()
            .filter(|c| matches!(c.action, Action::Create | Action::DeleteThenCreate | Action::CreateThenDelete))
            .map(|c| c.addr.clone())
            .collect();
        for addr in created {
            let Some(resource) = self.config.resource(&addr.resource).filter(|r| r.health_check.is_some()) else { continue };
            let Some(record) = self.instances.get(&addr) else { continue };
            let Some(gate) = gate::resolve(&self.world, resource, &record.expansion, &addr, record.value.clone(), gate::Unknowns::Skip)?
            else {
                continue;
            };
            steps.push(format!("{addr}: created, then {} before what lists it includes it", gate::describe(&gate)));
            if let Some(record) = self.instances.get_mut(&addr) {
                record.create_gate = Some(Box::new(gate));
            }
        }
        Ok(steps)
    }

    /// The health gates of a batch's members, each resolved with `target`
    /// bound to the member's planned value.
    fn gates_of(&self, batch: &drain::Batch) -> Result<Vec<gate::Gate>, Diags> {
        let Some(resource) = self.config.resource(&batch.resource) else { return Ok(Vec::new()) };
        let mut gates = Vec::new();
        for m in &batch.members {
            let Some(record) = self.instances.get(m) else { continue };
            if batch.parts.is_empty() {
                gates.extend(gate::resolve(&self.world, resource, &record.expansion, m, record.value.clone(), gate::Unknowns::Refuse)?);
            } else {
                let prior = self.state.resources.get(m).map(|e| e.attributes.value()).unwrap_or(Value::Null);
                gates.extend(gate::resolve_parts(&self.world, resource, &record.expansion, m, &prior, &batch.parts)?);
            }
        }
        Ok(gates)
    }
}

/// Adds one batch to the summary of its sequence (batches of a sequence
/// come one after the other).
fn summarise(disruptions: &mut Vec<Disruption>, batch: &drain::Batch) {
    let members: Vec<String> = if batch.parts.is_empty() {
        batch.members.iter().map(|m| m.to_string()).collect()
    } else {
        batch.parts.iter().map(|p| p.name.clone()).collect()
    };
    let drained: Vec<String> = batch.drains.iter().map(|d| d.listing.to_string()).collect();
    let gate = batch.gates.first().map(gate::describe);
    match disruptions.last_mut().filter(|d| d.subject == batch.sequence) {
        Some(d) => {
            d.members.extend(members);
            d.batches += 1;
            d.drained_from.extend(drained);
            d.drained_from.sort();
            d.drained_from.dedup();
            d.gate = d.gate.take().or(gate);
        }
        None => {
            let mut drained_from = drained;
            drained_from.sort();
            drained_from.dedup();
            disruptions.push(Disruption {
                subject: batch.sequence.clone(),
                disruption: batch.disruption.clone(),
                members,
                max_unavailable: batch.max_unavailable,
                batches: 1,
                drained_from,
                gate,
            });
        }
    }
}

/// A scale-down goes after the updates of the resources that list it.
fn shrink_lines(changes: &[ResourceChange]) -> Vec<String> {
    let mut steps = Vec::new();
    for shrinking in changes.iter().filter(|c| c.shrinks) {
        let listing: Vec<String> = changes
            .iter()
            .filter(|c| c.action == Action::Update && c.depends_on.iter().any(|d| d.resource == shrinking.addr.resource))
            .map(|c| c.addr.to_string())
            .collect();
        if !listing.is_empty() {
            steps.push(format!(
                "update {} first (stop listing the removed members), then scale down {}",
                listing.join(", "),
                shrinking.addr
            ));
        }
    }
    steps
}
