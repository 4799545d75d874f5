//! Rollout batches and their drains (SPEC §6): the disruptive updates of a
//! resource go `max_unavailable` at a time, and before each batch every
//! *listing* that routes traffic to one of its members (an `nginx_upstream`
//! whose `servers` come from `aws_instance.web`, a `pgbouncer` database on
//! `aws_instance.db`) drains them its own way, restoring them afterwards.
//!
//! Which listings, and which of their entries, is decided by provenance,
//! not by guessing from references: each candidate listing is evaluated
//! twice, with the members as state holds them and with every attribute of
//! the members marked unknown; the entries that come out unknown only in
//! the second are the members', and the listing's provider names them
//! ([`Provider::drain_entries`](crate::provider::Provider::drain_entries)).
//! Records (`himaplan_data`) have no drain capability and never drain. A
//! drain that cannot be computed fails the plan at the listing. No I/O.

use super::gate::{self, Gate};
use super::plan::ResolvedRollout;
use super::world::World;
use crate::addr::{InstanceAddr, ResourceAddr};
use crate::diag::{Diag, Diags};
use crate::graph::Node;
use crate::plan::{Action, ResourceChange};
use crate::provider::{DrainPlan, Member};
use crate::state::State;
use crate::value::Value;
use std::collections::{BTreeMap, BTreeSet};

/// One listing instance drained around a batch.
#[derive(Debug, Clone)]
pub struct Drain {
    pub listing: InstanceAddr,
    pub plan: DrainPlan,
    /// The listing's configuration as plan evaluated it (secrets in plain
    /// text, to reach its daemon; never persisted).
    pub config: Value,
}

/// At most `max_unavailable` members of one resource disrupted together,
/// with the drains around them.
#[derive(Debug, Clone)]
pub struct Batch {
    pub resource: ResourceAddr,
    /// 1-based position among the resource's batches, and their count.
    pub number: usize,
    pub of: usize,
    pub max_unavailable: usize,
    /// What the disruption is, e.g. "stop/start".
    pub disruption: String,
    pub members: Vec<InstanceAddr>,
    /// For an object disrupted piece by piece (a service's containers):
    /// the pieces of this batch, of its only member. Empty otherwise.
    pub parts: Vec<Member>,
    /// What batches follow each other: the resource, or for pieces the
    /// object (`number`/`of` count within it).
    pub sequence: String,
    pub drains: Vec<Drain>,
    /// The members' health gates, waited on after the disruption and
    /// before the restores and the next batch.
    pub gates: Vec<Gate>,
}

/// The batches of a plan's disruptive updates, per resource in address
/// order, members in address order; an object whose provider names its
/// pieces (`members_of`) is rolled piece by piece instead. Drains and gates
/// not yet found.
pub fn batches(
    changes: &[ResourceChange],
    rollouts: &BTreeMap<ResourceAddr, ResolvedRollout>,
    members_of: &dyn Fn(&ResourceChange) -> Vec<Member>,
) -> Vec<Batch> {
    let mut by_resource: BTreeMap<&ResourceAddr, Vec<&ResourceChange>> = BTreeMap::new();
    let mut out = Vec::new();
    for c in changes.iter().filter(|c| c.action == Action::Update && c.disruption.is_some()) {
        let parts = members_of(c);
        if parts.is_empty() {
            by_resource.entry(&c.addr.resource).or_default().push(c);
            continue;
        }
        let n = rollouts.get(&c.addr.resource).map(|r| r.rollout.resolve(parts.len())).unwrap_or(1);
        let disruption = c.disruption.clone().unwrap_or_default();
        out.extend(sequence(&c.addr.resource, c.addr.to_string(), n, &parts, |chunk| {
            (vec![c.addr.clone()], chunk.to_vec(), disruption.clone())
        }));
    }
    for (resource, list) in by_resource {
        let n = rollouts.get(resource).map(|r| r.limit()).unwrap_or(1);
        out.extend(sequence(resource, resource.to_string(), n, &list, |chunk| {
            (chunk.iter().map(|c| c.addr.clone()).collect(), Vec::new(), chunk[0].disruption.clone().unwrap_or_default())
        }));
    }
    out
}

/// One sequence of batches: `items` in chunks of `n`, each chunk giving the
/// batch's (members, pieces, disruption).
fn sequence<T>(
    resource: &ResourceAddr,
    sequence: String,
    n: usize,
    items: &[T],
    split: impl Fn(&[T]) -> (Vec<InstanceAddr>, Vec<Member>, String),
) -> Vec<Batch> {
    let of = items.len().div_ceil(n);
    items
        .chunks(n)
        .enumerate()
        .map(|(i, chunk)| {
            let (members, parts, disruption) = split(chunk);
            Batch {
                resource: resource.clone(),
                number: i + 1,
                of,
                max_unavailable: n,
                disruption,
                members,
                parts,
                sequence: sequence.clone(),
                drains: Vec::new(),
                gates: Vec::new(),
            }
        })
        .collect()
}

/// The drains of one batch: every instance (not itself going away) of a
/// resource that depends on the batch's resource, whose provider drains,
/// and whose entries include the members'.
pub fn find(world: &mut World, state: &State, going: &BTreeSet<InstanceAddr>, batch: &Batch) -> Result<Vec<Drain>, Diags> {
    let now: Vec<(InstanceAddr, Value)> =
        batch.members.iter().filter_map(|m| state.resources.get(m).map(|e| (m.clone(), e.attributes.value()))).collect();
    let marked: Vec<(InstanceAddr, Value)> = now.iter().map(|(a, v)| (a.clone(), mark(v, &batch.parts))).collect();
    let (config, graph, registry) = (world.config.clone(), world.graph.clone(), world.registry.clone());
    let mut drains = Vec::new();
    for listing in config.resources() {
        if listing.addr == batch.resource || !graph.resource_deps(&Node::Resource(listing.addr.clone())).contains(&batch.resource) {
            continue;
        }
        let Some(provider) = registry.resource_type(&listing.addr.rtype).and_then(|(p, _)| registry.provider(p)) else { continue };
        let instances: Vec<InstanceAddr> =
            state.resources.keys().filter(|a| a.resource == listing.addr && !going.contains(*a)).cloned().collect();
        for u in instances {
            let Some(exp) = world.expansion_of(listing, &u)? else { continue };
            let config_now = world.eval_instance_with(listing, &exp, &now)?;
            let config_marked = world.eval_instance_with(listing, &exp, &marked)?;
            if config_now == config_marked {
                continue;
            }
            match provider.drain_entries(&listing.addr.rtype, &config_now, &config_marked) {
                None => {}
                Some(Ok(plan)) if plan.entries.is_empty() => {}
                Some(Ok(plan)) => drains.push(Drain { listing: u, plan, config: config_now }),
                Some(Err(message)) => {
                    return Err(Diag::error(format!("Cannot drain {} from {u}", names(&batch.members)))
                        .at(listing.location.clone())
                        .with_detail(format!(
                            "{message}. The batch would be disrupted while {u} still sends it traffic, so nothing is planned."
                        ))
                        .into());
                }
            }
        }
    }
    Ok(drains)
}

/// The reviewer-facing block of one batch: its drains, disruption and
/// restores together, e.g. `aws_instance.web batch 1/3 (max_unavailable =
/// 1): drain aws_instance.web[0] from nginx_upstream.web (127.0.0.1:8001
/// marked down, reload) → stop/start → restore`.
pub fn describe(batch: &Batch) -> String {
    let head = format!("{} batch {}/{} (max_unavailable = {}):", batch.sequence, batch.number, batch.of, batch.max_unavailable);
    let members = if batch.parts.is_empty() {
        names(&batch.members)
    } else {
        batch.parts.iter().map(|p| p.name.clone()).collect::<Vec<_>>().join(", ")
    };
    let gates: String = batch.gates.iter().map(|g| format!(" → {}: {}", g.target_name(), gate::describe(g))).collect();
    if batch.drains.is_empty() {
        return format!("{head} {} {members}{gates}", batch.disruption);
    }
    let from: Vec<String> = batch.drains.iter().map(|d| format!("{} ({}: {})", d.listing, d.plan.entries.join(", "), d.plan.how)).collect();
    let back: Vec<String> = batch.drains.iter().map(|d| format!("{} ({})", d.listing, d.plan.undo)).collect();
    format!("{head} drain {members} from {} → {}{gates} → restore {}", from.join(", "), batch.disruption, back.join(", "))
}

/// A member's value with every attribute of the batch's pieces unknown
/// (all of it when the batch has no pieces): the provenance mark.
fn mark(value: &Value, parts: &[Member]) -> Value {
    if parts.is_empty() {
        return value.with_unknown_leaves();
    }
    let mut marked = value.clone();
    if let Value::Map(attrs) = &mut marked {
        for p in parts {
            if let Some(Value::List(items)) = attrs.get_mut(&p.attribute)
                && let Some(item) = items.get_mut(p.index)
            {
                *item = item.with_unknown_leaves();
            }
        }
    }
    marked
}

fn names(addrs: &[InstanceAddr]) -> String {
    addrs.iter().map(|a| a.to_string()).collect::<Vec<_>>().join(", ")
}
