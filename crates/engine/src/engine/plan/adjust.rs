//! Providers' cross-instance adjustments (`adjust_desired`): a provider
//! sees every evaluated instance of its types at once and may change
//! desired values (an HPA owning a deployment's replicas, a scale schedule
//! in force at `--at`). Changed instances are diffed again; what changed is
//! kept in the instance's record so apply lays it over every
//! re-evaluation: providers keep no plan-time state of their own. Notes of
//! an instance left unchanged become plan notes (e.g. a schedule's next
//! firing), since no change carries them.

use super::Planner;
use super::diff::{diff_instance, make_change};
use super::walk::attribute_location;
use crate::addr::InstanceAddr;
use crate::diag::{Diag, Diags};
use crate::engine::world::Expansion;
use crate::plan::Action;
use crate::provider::DesiredItem;
use crate::value::Value;
use std::collections::BTreeMap;

/// An evaluated instance kept for its provider's `adjust_desired`.
pub struct Adjustable {
    pub addr: InstanceAddr,
    pub config: Value,
    pub expansion: Expansion,
    pub depends_on: Vec<InstanceAddr>,
    pub force: bool,
}

impl Planner {
    /// Lets providers adjust desired values across their instances, then
    /// re-diffs the instances they changed or annotated.
    pub(super) fn adjust_desired(&mut self) -> Result<(), Diags> {
        let mut by_provider: BTreeMap<&'static str, Vec<Adjustable>> = BTreeMap::new();
        for a in std::mem::take(&mut self.adjustable) {
            if let Some((p, _)) = self.registry.resource_type(&a.addr.resource.rtype) {
                by_provider.entry(p).or_default().push(a);
            }
        }
        let registry = self.registry.clone();
        let config = self.config.clone();
        let mut diags = Diags::new();
        for (provider_name, list) in by_provider {
            let provider = registry.provider(provider_name).expect("registered types have providers").clone();
            let mut items: Vec<DesiredItem> = list
                .iter()
                .map(|a| DesiredItem {
                    addr: a.addr.clone(),
                    rtype: a.addr.resource.rtype.clone(),
                    config: a.config.clone(),
                    prior: self.state.resources.get(&a.addr).map(|e| e.attributes.value()),
                    notes: Vec::new(),
                    saved: self.options.saved.get(&a.addr).map(Value::from_json),
                })
                .collect();
            for (i, problem) in provider.adjust_desired(self.options.at, &mut items) {
                let Some(a) = list.get(i) else { continue };
                let resource = config.resource(&a.addr.resource).expect("evaluated from the configuration");
                diags.push(
                    Diag::error(format!("Invalid {}: {}", a.addr, problem.message))
                        .at(attribute_location(resource, problem.attribute.as_deref())),
                );
            }
            for (a, item) in list.into_iter().zip(items) {
                if item.config == a.config && item.notes.is_empty() {
                    continue;
                }
                let overlay = overlay(&a.config, &item.config);
                let resource = config.resource(&a.addr.resource).expect("evaluated from the configuration");
                let (_, rt) = registry.resource_type(&a.addr.resource.rtype).expect("registered");
                let mut diff = diff_instance(rt, provider.as_ref(), item.prior.as_ref(), item.config, resource, a.force, &self.salt);
                if diff.action == Action::NoOp {
                    // No change to carry them: the provider's notes become
                    // the plan's, so a reviewer still reads them.
                    self.notes.extend(item.notes.iter().map(|n| format!("{}: {n}", a.addr)));
                }
                diff.notes.extend(item.notes);
                self.changes.retain(|c| c.addr != a.addr || c.is_duplicate_delete());
                self.instances.remove(&a.addr);
                if diff.action != Action::NoOp {
                    let value = diff.planned.clone();
                    let change = make_change(&a.addr, provider_name, &self.state, diff, a.depends_on, &self.salt);
                    self.record(change, a.expansion, value).adjusted = overlay;
                }
            }
        }
        diags.into_result().map(|_| ())
    }
}

/// What an adjustment changed, to lay over later re-evaluations. Never a
/// null (it would drop a field the engine fills from state) and never an
/// unknown (apply resolves those from real values).
fn overlay(before: &Value, after: &Value) -> BTreeMap<String, Value> {
    let (Some(new), Some(old)) = (after.as_map(), before.as_map()) else { return BTreeMap::new() };
    new.iter().filter(|(k, v)| old.get(*k) != Some(*v) && !v.is_null() && !v.has_unknown()).map(|(k, v)| (k.clone(), v.clone())).collect()
}
