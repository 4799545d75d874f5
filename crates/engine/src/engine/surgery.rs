//! State surgery the engine owns: `import` of one object, `state mv` (the
//! same moves as `moved` blocks) and `state rm`. Each edits a state in
//! memory; the caller holds the lock and commits it.

use super::plan::configure_providers;
use super::plan::imports::import_entry;
use super::plan::moves::{MoveProblem, move_instances};
use super::provider_error;
use crate::addr::InstanceAddr;
use crate::config::Config;
use crate::diag::{Diag, Diags};
use crate::provider::Registry;
use crate::state::State;
use crate::value::Value;
use std::collections::BTreeMap;

/// Checks that `addr` can receive an import: declared in the configuration.
pub fn check_import_target(config: &Config, addr: &InstanceAddr) -> Result<(), Diags> {
    if config.resource(&addr.resource).is_none() {
        return Err(Diag::error(format!("{} is not declared in the configuration", addr.resource))
            .with_detail("Write its resource block first, then import the existing object into it.")
            .into());
    }
    Ok(())
}

/// Imports the existing object `id` into `addr`: the provider labels it,
/// and state records it.
pub async fn import(
    config: &Config,
    registry: &Registry,
    root_vars: &BTreeMap<String, Value>,
    state: &mut State,
    addr: &InstanceAddr,
    id: &str,
) -> Result<(), Diags> {
    check_import_target(config, addr)?;
    if state.resources.contains_key(addr) {
        return Err(Diag::error(format!("{addr} is already in state"))
            .with_detail("Remove it with himaplan state rm first to import another object.")
            .into());
    }
    if registry.resource_type(&addr.resource.rtype).is_none() {
        return Err(Diag::error(format!("Unknown resource type {:?}", addr.resource.rtype)).into());
    }
    configure_providers(config, registry, root_vars, state).await?;
    let salt = state.lineage.clone();
    match import_entry(registry, addr, id, &salt).await {
        Some(Ok(entry)) => {
            state.resources.insert(addr.clone(), entry);
            Ok(())
        }
        Some(Err(e)) => Err(provider_error(&format!("importing {id} into {addr}"), &e).into()),
        None => Err(Diag::error(format!("Unknown resource type {:?}", addr.resource.rtype)).into()),
    }
}

/// `state mv FROM TO`: moves every instance `from` selects; all or nothing.
pub fn state_mv(state: &mut State, from: &InstanceAddr, to: &InstanceAddr) -> Result<Vec<(InstanceAddr, InstanceAddr)>, Diags> {
    let mut moved = state.clone();
    let result = move_instances(&mut moved, from, to);
    if let Some(problem) = result.problems.first() {
        return Err(match problem {
            MoveProblem::DestinationExists { src, dst } => Diag::error(format!("Cannot move {src} to {dst}: it already exists in state")),
            MoveProblem::TypeDiffers { src, dst } => Diag::error(format!("Cannot move {src} to {dst}: the types differ")),
        }
        .into());
    }
    if result.moved.is_empty() {
        return Err(Diag::error(format!("No instance in state matches {from}")).into());
    }
    *state = moved;
    Ok(result.moved)
}

/// `state rm ADDR...`: forgets every instance the patterns select (the
/// real objects are not touched); returns how many.
pub fn state_rm(state: &mut State, patterns: &[InstanceAddr]) -> Result<usize, Diags> {
    let before = state.resources.len();
    state.resources.retain(|a, _| !patterns.iter().any(|p| p.matches(a)));
    let removed = before - state.resources.len();
    if removed == 0 {
        let names: Vec<String> = patterns.iter().map(|p| p.to_string()).collect();
        return Err(Diag::error(format!("No instance in state matches {}", names.join(", "))).into());
    }
    Ok(removed)
}
