//! Bringing existing objects under management: `import` blocks (read at
//! plan time, labelled and recorded by apply), adoption of objects that
//! carry their ecosystem's own identity labels (compose), and the import
//! of one object that apply and `himaplan import` share.

use super::Planner;
use super::diff::{diff_instance, make_change};
use crate::addr::InstanceAddr;
use crate::config::Config;
use crate::config::eval::{self, Scope};
use crate::diag::{Diag, Diags};
use crate::engine::provider_error;
use crate::plan::Action;
use crate::provider::{ProviderError, ReadItem, ReadRequest, Registry};
use crate::state::{ResourceState, State};
use crate::value::{Value, ValueMap};
use std::collections::BTreeMap;

/// Imports the object `id` into `addr` through its provider (which labels
/// it with the address and lineage `salt`) and returns its state entry.
pub async fn import_entry(registry: &Registry, addr: &InstanceAddr, id: &str, salt: &str) -> Option<Result<ResourceState, ProviderError>> {
    let (provider_name, rt) = registry.resource_type(&addr.resource.rtype)?;
    let provider = registry.provider(provider_name).expect("registered types have providers").clone();
    Some(
        provider
            .import(&addr.resource.rtype, addr, id, salt)
            .await
            .map(|attrs| ResourceState::observed(&addr.resource.rtype, provider_name, rt.schema_version, &attrs, salt)),
    )
}

/// Reads the objects of `import` blocks whose address state does not hold
/// yet and puts them into the (in-memory) state, so the plan diffs the
/// configuration against them. Apply labels them and records them.
pub(super) async fn plan_imports(
    config: &Config,
    registry: &Registry,
    root_vars: &BTreeMap<String, Value>,
    state: &mut State,
    refresh: bool,
) -> Result<Vec<(InstanceAddr, String)>, Diags> {
    let mut out = Vec::new();
    let mut diags = Diags::new();
    let base = BTreeMap::from([("var".to_string(), Value::Map(root_vars.clone().into()))]);
    for module in config.modules.values() {
        for block in &module.imports {
            let prefix = if module.path.is_root() { String::new() } else { format!("{}.", module.path) };
            let addr = match format!("{prefix}{}", block.to).parse::<InstanceAddr>() {
                Ok(a) => a,
                Err(e) => {
                    diags.push(Diag::error(format!("Invalid import block: {e}")).at(block.location.clone()));
                    continue;
                }
            };
            if state.resources.contains_key(&addr) {
                continue;
            }
            if config.resource(&addr.resource).is_none() {
                diags.push(
                    Diag::error(format!("import block targets {addr}, which the configuration does not declare"))
                        .at(block.location.clone()),
                );
                continue;
            }
            let id = match eval::eval(&block.id, &mut Scope::new(&base)).map(|v| v.deep_unmarked()) {
                Ok(Value::String(id)) => id,
                Ok(other) => {
                    diags.push(Diag::error(format!("An import id must be a string, got {}", other.type_name())).at(block.id.location()));
                    continue;
                }
                Err(d) => {
                    diags.push(d);
                    continue;
                }
            };
            if !refresh {
                diags.push(Diag::error("import blocks need refresh; run without --refresh=false").at(block.location.clone()));
                continue;
            }
            let Some((provider_name, rt)) = registry.resource_type(&addr.resource.rtype) else { continue };
            let provider = registry.provider(provider_name).expect("registered types have providers").clone();
            let prior = Value::Map(ValueMap::from([("id".to_string(), Value::String(id.clone()))]));
            let req = ReadRequest {
                rtype: addr.resource.rtype.clone(),
                lineage: state.lineage.clone(),
                items: vec![ReadItem::new(addr.clone(), prior)],
            };
            match provider.read(req).await {
                Ok(resp) => match resp.current.into_iter().next().flatten() {
                    Some(attrs) => {
                        let entry = ResourceState::observed(&addr.resource.rtype, provider_name, rt.schema_version, &attrs, &state.lineage);
                        state.resources.insert(addr.clone(), entry);
                        out.push((addr, id));
                    }
                    None => diags.push(Diag::error(format!("Cannot import {id} into {addr}: no such object")).at(block.location.clone())),
                },
                Err(e) => diags.push(provider_error(&format!("reading {id} for import"), &e).at(block.location.clone())),
            }
        }
    }
    diags.into_result().map(|_| out)
}

impl Planner {
    /// Planned creates of types whose identity is their ecosystem's own
    /// labels are looked up first: an existing object is adopted (recorded
    /// like an import) and the plan shows only the real differences.
    pub(super) async fn adopt_by_identity(&mut self) -> Result<(), Diags> {
        let registry = self.registry.clone();
        let mut by_type: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, c) in self.changes.iter().enumerate() {
            if c.action == Action::Create
                && registry.resource_type(&c.rtype).and_then(|(p, _)| registry.provider(p)).is_some_and(|p| p.adopts_by_identity(&c.rtype))
            {
                by_type.entry(c.rtype.clone()).or_default().push(i);
            }
        }
        let mut replaced = Vec::new();
        for (rtype, indexes) in by_type {
            let (provider_name, rt) = registry.resource_type(&rtype).expect("registered");
            let provider = registry.provider(provider_name).expect("registered").clone();
            let items: Vec<ReadItem> = indexes
                .iter()
                .map(|&i| {
                    let addr = self.changes[i].addr.clone();
                    let prior = self.instances.get(&addr).map(|r| r.value.clone()).unwrap_or(Value::Null);
                    ReadItem::new(addr, prior)
                })
                .collect();
            let resp = provider
                .read(ReadRequest { rtype: rtype.clone(), lineage: self.state.lineage.clone(), items })
                .await
                .map_err(|e| Diags::from(provider_error(&format!("looking up existing {rtype} objects"), &e)))?;
            for (&i, found) in indexes.iter().zip(resp.current) {
                let Some(attrs) = found else { continue };
                let addr = self.changes[i].addr.clone();
                let Some(id) = attrs.get("id").and_then(Value::as_str).map(str::to_string) else { continue };
                let entry = ResourceState::observed(&rtype, provider_name, rt.schema_version, &attrs, &self.salt);
                self.state.resources.insert(addr.clone(), entry);
                self.imports.push((addr.clone(), id.clone()));
                let resource = self.config.resource(&addr.resource).expect("planned from the configuration");
                let Some(mut record) = self.instances.remove(&addr) else { continue };
                let mut diff = diff_instance(rt, provider.as_ref(), Some(&attrs), record.value.clone(), resource, false, &self.salt);
                diff.notes.push(format!("adopted: the existing {id} carries this resource's compose labels"));
                if diff.action == Action::NoOp {
                    replaced.push((i, None));
                } else {
                    record.value = diff.planned.clone();
                    let depends_on = self.changes[i].depends_on.clone();
                    self.instances.insert(addr.clone(), record);
                    replaced.push((i, Some(make_change(&addr, provider_name, &self.state, diff, depends_on, &self.salt))));
                }
            }
        }
        replaced.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
        for (i, change) in replaced {
            match change {
                Some(c) => self.changes[i] = c,
                None => {
                    self.changes.remove(i);
                }
            }
        }
        Ok(())
    }
}
