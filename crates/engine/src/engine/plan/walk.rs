//! The evaluation walk: every node of the configuration graph in
//! dependency order; each resource's instances are evaluated, validated by
//! their provider and diffed against state, and the planned values are put
//! into the world for the nodes after it. Also what the configuration no
//! longer has: instances beyond `count`/`for_each`, resources whose block is
//! gone, extra objects holding an address, removed outputs.

use super::diff::{delete_change, diff_instance, make_change};
use super::rollout::resolve_rollout;
use super::{Planner, ResolvedRollout, adjust::Adjustable};
use crate::addr::{InstanceAddr, InstanceKey};
use crate::config::Resource;
use crate::diag::{Diag, Diags, Location};
use crate::graph::Node;
use crate::plan::{Action, ChangeReason, OutputChange, ResourceChange};
use crate::provider::FoundObject;
use crate::state::{redact, redact_like};
use crate::value::Value;
use hcl_edit::Span;
use std::collections::{BTreeSet, HashSet};

impl Planner {
    /// Evaluates every node in graph order; a node whose dependency failed
    /// is skipped. Returns the diagnostics of the nodes that failed.
    pub(super) fn walk(&mut self) -> Diags {
        let graph = self.graph.clone();
        let mut diags = Diags::new();
        let mut failed: HashSet<Node> = HashSet::new();
        for node in graph.order() {
            if graph.direct_deps(node).any(|d| failed.contains(d)) {
                failed.insert(node.clone());
                continue;
            }
            let result = match node {
                Node::Resource(addr) => {
                    let config = self.config.clone();
                    let resource = config.resource(addr).expect("graph nodes come from the configuration");
                    self.plan_resource(resource)
                }
                Node::Output(m, name) if m.is_root() => self.plan_output(node, name),
                other => self.world.eval_value_node(other).map(|_| ()),
            };
            if let Err(d) = result {
                diags.extend(d);
                failed.insert(node.clone());
            }
        }
        diags
    }

    fn plan_output(&mut self, node: &Node, name: &str) -> Result<(), Diags> {
        let value = self.world.eval_value_node(node)?.unwrap_or(Value::Null);
        let out = &self.config.root().outputs[name];
        let before = self.state.outputs.get(name).map(|o| o.value.clone());
        let after = redact_like(&value, before.as_ref(), &self.salt);
        if before.as_ref() != Some(&after) || value.has_unknown() {
            self.output_changes.push(OutputChange {
                name: name.to_string(),
                before,
                after: Some(after),
                after_unknown: value.has_unknown(),
                sensitive: out.sensitive,
            });
        }
        Ok(())
    }

    /// Outputs in state that the configuration no longer declares.
    pub(super) fn removed_outputs(&mut self) {
        for (name, out) in &self.state.outputs {
            if !self.config.root().outputs.contains_key(name) {
                self.output_changes.push(OutputChange {
                    name: name.clone(),
                    before: Some(out.value.clone()),
                    after: None,
                    after_unknown: false,
                    sensitive: out.sensitive,
                });
            }
        }
    }

    /// Plans every instance of one resource and puts the planned values
    /// into the world.
    fn plan_resource(&mut self, resource: &Resource) -> Result<(), Diags> {
        let registry = self.registry.clone();
        let Some((provider_name, rt)) = registry.resource_type(&resource.addr.rtype) else {
            // eval_instance reports the unknown type with a suggestion.
            return self.world.eval_instance(resource, &super::Expansion { key: None, each_value: None }).map(|_| ());
        };
        let provider = registry.provider(provider_name).expect("registered types have providers").clone();
        if self.options.validate_only && (resource.count.is_some() || resource.for_each.is_some()) {
            return self.validate_repeated(resource, provider.as_ref());
        }
        let exps = self.world.expand(resource)?;
        let changes_before = self.changes.len();
        // One keyless address per resource depended on: apply orders by
        // resource, and listing every instance in every change is quadratic.
        let dep_addrs: Vec<InstanceAddr> =
            self.graph.resource_deps(&Node::Resource(resource.addr.clone())).iter().map(|r| r.instance(None)).collect();
        let mut diags = Diags::new();
        let mut values = Vec::new();
        let keys: BTreeSet<Option<InstanceKey>> = exps.iter().map(|e| e.key.clone()).collect();
        for exp in &exps {
            let addr = resource.addr.instance(exp.key.clone());
            let config_value = match self.world.eval_instance(resource, exp) {
                Ok(v) => v,
                Err(d) => {
                    diags.extend(d);
                    continue;
                }
            };
            for problem in provider.validate(&resource.addr.rtype, &config_value) {
                diags.push(
                    Diag::error(format!("Invalid {}: {}", addr, problem.message))
                        .at(attribute_location(resource, problem.attribute.as_deref())),
                );
            }
            let prior = self.state.resources.get(&addr).map(|e| e.attributes.value());
            let force = self.options.replace.iter().any(|r| r.matches(&addr));
            if provider.wants_adjust() {
                self.adjustable.push(Adjustable {
                    addr: addr.clone(),
                    config: config_value.clone(),
                    expansion: exp.clone(),
                    depends_on: dep_addrs.clone(),
                    force,
                });
            }
            let mut diff = diff_instance(rt, provider.as_ref(), prior.as_ref(), config_value, resource, force, &self.salt);
            if let (Action::NoOp, Some(why), Some(_)) =
                (diff.action, self.state.resources.get(&addr).and_then(|e| e.unhealthy.as_ref()), &resource.health_check)
            {
                diff.action = Action::Update;
                diff.reason = Some(ChangeReason::GateAgain);
                diff.disruption = Some("health check again".into());
                diff.notes
                    .push(format!("failed its health check in an earlier apply ({why}); gated again before it rejoins what lists it"));
            }
            if resource.lifecycle.prevent_destroy && (diff.action.is_replace() || diff.action == Action::Delete) {
                diags.push(
                    Diag::error(format!("{addr} has lifecycle.prevent_destroy and this plan would destroy it"))
                        .at(resource.location.clone())
                        .with_detail(format!(
                            "Changed attributes forcing replacement: {}. Remove prevent_destroy to allow it.",
                            diff.replace_paths.join(", ")
                        )),
                );
            }
            values.push((exp.key.clone(), diff.planned.clone()));
            if diff.action != Action::NoOp {
                let value = diff.planned.clone();
                let change = make_change(&addr, provider_name, &self.state, diff, dep_addrs.clone(), &self.salt);
                self.record(change, exp.clone(), value);
            }
        }
        self.delete_beyond_repetition(resource, &keys, &mut diags);
        if diags.has_errors() {
            return Err(diags);
        }
        let rollout = resolve_rollout(&self.world, resource)?;
        let resolved = ResolvedRollout { rollout, max_unavailable: rollout.resolve(values.len()) };
        // Only changes (now, or from the adjust step) look their rollout up.
        if self.changes.len() > changes_before || provider.wants_adjust() {
            self.rollouts.insert(resource.addr.clone(), resolved);
        }
        for (addr, record) in self.instances.range_mut(resource.addr.instance(None)..) {
            if addr.resource != resource.addr {
                break;
            }
            record.rollout = resolved;
        }
        // What nothing reads (at most a depends_on entry names it) is not
        // kept: a configuration's values are the largest part of a plan.
        if self.graph.value_is_read(&Node::Resource(resource.addr.clone())) {
            self.world.set_resource(resource, values);
        }
        Ok(())
    }

    /// Instances in state beyond the resource's `count` / `for_each`.
    /// `validate` of a resource with `count` or `for_each`: the repetition
    /// is checked where it is known, the body once with the instance key
    /// unknown, and the resource's value is unknown to what follows.
    fn validate_repeated(&mut self, resource: &Resource, provider: &dyn crate::provider::Provider) -> Result<(), Diags> {
        let mut diags = Diags::new();
        if let Err(d) = self.world.check_repetition(resource) {
            diags.extend(d);
        }
        match self.world.eval_representative(resource) {
            Ok(config_value) => {
                for problem in provider.validate(&resource.addr.rtype, &config_value) {
                    diags.push(
                        Diag::error(format!("Invalid {}: {}", resource.addr, problem.message))
                            .at(attribute_location(resource, problem.attribute.as_deref())),
                    );
                }
            }
            Err(d) => diags.extend(d),
        }
        if let Err(d) = resolve_rollout(&self.world, resource) {
            diags.extend(d);
        }
        if diags.has_errors() {
            return Err(diags);
        }
        self.world.set_resource_unknown(resource);
        Ok(())
    }

    fn delete_beyond_repetition(&mut self, resource: &Resource, keys: &BTreeSet<Option<InstanceKey>>, diags: &mut Diags) {
        let mut deletes = Vec::new();
        for (addr, entry) in self.state.resources.range(resource.addr.instance(None)..) {
            if addr.resource != resource.addr {
                break;
            }
            if keys.contains(&addr.key) {
                continue;
            }
            let reason = match (&addr.key, &resource.count, &resource.for_each) {
                (Some(InstanceKey::Int(_)), Some(_), _) => ChangeReason::DeleteBecauseCountIndex,
                (Some(InstanceKey::Str(_)), _, Some(_)) => ChangeReason::DeleteBecauseEachKey,
                _ => ChangeReason::DeleteBecauseWrongRepetition,
            };
            if resource.lifecycle.prevent_destroy {
                diags.push(
                    Diag::error(format!("{addr} has lifecycle.prevent_destroy and this plan would destroy it"))
                        .at(resource.location.clone()),
                );
            }
            deletes.push(delete_change(addr, entry, reason, &self.state));
        }
        self.changes.extend(deletes);
    }

    /// Instances in state whose resource block is gone.
    pub(super) fn delete_unconfigured(&mut self) {
        for (addr, entry) in &self.state.resources {
            if self.config.resource(&addr.resource).is_none() {
                self.changes.push(delete_change(addr, entry, ChangeReason::DeleteBecauseNoResourceConfig, &self.state));
            }
        }
    }

    /// Extra objects holding an address another object has.
    pub(super) fn delete_duplicates(&mut self, duplicates: &[(InstanceAddr, FoundObject)]) {
        for (addr, obj) in duplicates {
            let provider = self.registry.resource_type(&addr.resource.rtype).map(|(p, _)| p).unwrap_or("");
            self.changes.push(ResourceChange {
                addr: addr.clone(),
                rtype: addr.resource.rtype.clone(),
                provider: provider.to_string(),
                action: Action::Delete,
                before: Some(redact(&obj.attrs, &self.salt)),
                after: None,
                after_unknown: serde_json::Value::Bool(false),
                replace_paths: vec![],
                reason: Some(ChangeReason::DeleteDuplicate),
                disruption: None,
                notes: vec![format!("extra object {} carries this address; the object in state is kept", obj.id)],
                depends_on: vec![],
                fingerprint: format!("duplicate:{}", obj.id),
                shrinks: false,
            });
        }
    }
}

/// Where a provider's problem with an attribute points: the attribute, or
/// the resource block when it names none (or one not written).
pub(super) fn attribute_location(resource: &Resource, attribute: Option<&str>) -> Location {
    let body = resource.body.body();
    attribute
        .and_then(|a| body.get_attribute(a))
        .map(|a| Location::in_file(&resource.body.file, a.span().unwrap_or(0..0)))
        .unwrap_or_else(|| resource.location.clone())
}
