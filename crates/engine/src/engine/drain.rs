//! Draining: before an instance is disrupted (stopped, restarted,
//! recreated), every other resource that lists it — an `nginx_upstream`
//! whose `servers` come from `aws_instance.web`, say — is re-applied
//! without it, and re-applied with it once it runs again (SPEC §6).
//!
//! "Lists" is decided by evaluation, not by guessing: a resource lists an
//! instance when its configuration evaluated without that instance differs
//! from its configuration evaluated normally. No I/O here.

use super::world::World;
use crate::addr::InstanceAddr;
use crate::diag::Diags;
use crate::graph::Node;
use crate::plan::{Action, ResourceChange};
use crate::state::State;
use std::collections::{BTreeMap, BTreeSet};

/// For each disruptive change (by index), the instances that list it and
/// must be drained around it, in address order.
pub type Drains = BTreeMap<usize, Vec<InstanceAddr>>;

/// Finds the drains of a plan's disruptive updates.
pub fn find(world: &mut World, state: &State, changes: &[ResourceChange]) -> Result<Drains, Diags> {
    let mut drains = Drains::new();
    // An instance being destroyed or replaced is not re-applied around others.
    let going: BTreeSet<&InstanceAddr> = changes
        .iter()
        .filter(|c| matches!(c.action, Action::Delete | Action::DeleteThenCreate | Action::CreateThenDelete))
        .map(|c| &c.addr)
        .collect();
    let config = world.config.clone();
    let graph = world.graph.clone();
    for (ci, change) in changes.iter().enumerate() {
        if change.action != Action::Update || change.disruption.is_none() {
            continue;
        }
        let excluded = BTreeSet::from([change.addr.clone()]);
        for listing in config.resources() {
            if listing.addr == change.addr.resource
                || !graph.resource_deps(&Node::Resource(listing.addr.clone())).contains(&change.addr.resource)
            {
                continue;
            }
            let instances: Vec<InstanceAddr> = state.resources.keys().filter(|a| a.resource == listing.addr).cloned().collect();
            for u in instances {
                if going.contains(&u) {
                    continue;
                }
                let Some(exp) = world.expansion_of(listing, &u)? else { continue };
                let normal = world.eval_instance(listing, &exp)?;
                let without = world.eval_instance_excluding(listing, &exp, &excluded)?;
                if normal != without {
                    drains.entry(ci).or_default().push(u);
                }
            }
        }
    }
    Ok(drains)
}

/// Reviewer-facing lines for the drains, in change order.
pub fn describe(changes: &[ResourceChange], drains: &Drains) -> Vec<String> {
    drains
        .iter()
        .map(|(ci, listing)| {
            let change = &changes[*ci];
            let names: Vec<String> = listing.iter().map(|u| u.to_string()).collect();
            format!(
                "{}: remove from {} (render + reload), {} it, add it back once it runs again",
                change.addr,
                names.join(", "),
                change.disruption.as_deref().unwrap_or("disrupt")
            )
        })
        .collect()
}
