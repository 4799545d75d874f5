//! Planning: move state per `moved` blocks, refresh, evaluate the
//! configuration in graph order and diff every resource instance against
//! its refreshed state. The result is a [`Plan`] (plain data for reviewers
//! and plan files) plus what apply needs to carry it out ([`Planned`]).

use super::refresh::{self, Refreshed};
use super::world::{Expansion, World};
use super::{Hooks, provider_error};
use crate::addr::{InstanceAddr, InstanceKey, ResourceAddr};
use crate::config::eval::{self, Scope};
use crate::config::{Config, Resource};
use crate::diag::{Diag, Diags, Location};
use crate::graph::{ConfigGraph, Node};
use crate::plan::{Action, OutputChange, Plan, ResourceChange};
use crate::provider::{Intent, Registry, ResourceType, Rollout};
use crate::state::{State, redact};
use crate::value::Value;
use hcl_edit::Span;
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::sync::Arc;

/// Options of one plan.
#[derive(Debug, Clone)]
pub struct PlanOptions {
    pub refresh: bool,
    /// `--target`: an address without a key targets every instance.
    pub targets: Vec<InstanceAddr>,
    /// `--replace`: instances to replace even if unchanged.
    pub replace: Vec<InstanceAddr>,
    /// `--at`: the instant schedules are evaluated at.
    pub at: chrono::DateTime<chrono::Utc>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions { refresh: true, targets: Vec::new(), replace: Vec::new(), at: chrono::Utc::now() }
    }
}

/// What plan hands to apply besides the plan itself.
pub struct Planned {
    pub plan: Plan,
    /// State after moves, refresh and recovery: what apply starts from.
    pub state: State,
    /// Namespaces filled with planned values.
    pub world: World,
    /// Per changed instance: how it was expanded (to re-evaluate it in apply).
    pub expansions: BTreeMap<InstanceAddr, Expansion>,
    /// Per changed instance: the planned value, secrets in plain text
    /// (never persisted; apply sends it to the provider).
    pub planned_values: BTreeMap<InstanceAddr, Value>,
    /// `rollout { max_unavailable }` per resource, resolved to a number.
    pub max_unavailable: BTreeMap<ResourceAddr, usize>,
    /// The same, as written (providers resolve it against their members).
    pub rollouts: BTreeMap<ResourceAddr, Rollout>,
    /// Attributes providers' `adjust_desired` changed, per instance: laid
    /// over the configuration whenever apply re-evaluates it.
    pub adjusted: BTreeMap<InstanceAddr, BTreeMap<String, Value>>,
    /// Whether refresh changed state (drift, adoption) or moves applied.
    pub state_changed_by_refresh: bool,
}

/// Everything a plan is computed from.
pub struct PlanInput {
    pub config: Arc<Config>,
    pub graph: Arc<ConfigGraph>,
    pub registry: Registry,
    pub root_vars: BTreeMap<String, Value>,
    pub state: State,
    pub intents: Vec<Intent>,
    pub options: PlanOptions,
}

/// Configures every provider the configuration or state uses.
pub async fn configure_providers(
    config: &Config,
    registry: &Registry,
    root_vars: &BTreeMap<String, Value>,
    state: &State,
) -> Result<(), Diags> {
    let mut names: BTreeSet<&'static str> = BTreeSet::new();
    for rtype in config.resources().map(|r| r.addr.rtype.clone()).chain(state.resources.values().map(|r| r.rtype.clone())) {
        if let Some((p, _)) = registry.resource_type(&rtype) {
            names.insert(p);
        }
    }
    let base = BTreeMap::from([("var".to_string(), Value::Map(root_vars.clone()))]);
    let mut diags = Diags::new();
    for name in names {
        let Some(provider) = registry.provider(name) else { continue };
        let value = match config.providers.get(name) {
            Some(block) => match eval::eval_body(&block.body, &provider.provider_schema(), &mut Scope::new(&base), &[], &block.location) {
                Ok(v) => v,
                Err(d) => {
                    diags.extend(d);
                    continue;
                }
            },
            None => Value::Null,
        };
        if let Err(e) = provider.configure(&value).await {
            let loc = config.providers.get(name).map(|b| b.location.clone());
            diags.push(provider_error(&format!("configuring provider {name:?}"), &e).at_opt(loc));
        }
    }
    diags.into_result().map(|_| ())
}

/// Computes a plan.
pub async fn plan(input: PlanInput, hooks: &dyn Hooks) -> Result<Planned, Diags> {
    let PlanInput { config, graph, registry, root_vars, mut state, intents, options } = input;
    let mut notes = Vec::new();
    let mut state_changed = apply_moves(&config, &mut state, &mut notes)?;

    let mut refreshed = Refreshed::default();
    if options.refresh {
        configure_providers(&config, &registry, &root_vars, &state).await?;
        let types: BTreeSet<String> = config.resources().map(|r| r.addr.rtype.clone()).collect();
        refreshed = refresh::refresh(&registry, &mut state, &intents, &types, hooks).await?;
        state_changed |= !refreshed.drift.is_empty() || !refreshed.adopted.is_empty();
    }
    let mut imports = plan_imports(&config, &registry, &root_vars, &mut state, options.refresh).await?;
    for rtype in state.resources.values().map(|r| r.rtype.as_str()).collect::<BTreeSet<_>>() {
        if registry.resource_type(rtype).is_none() {
            return Err(refresh::unknown_type(rtype).into());
        }
    }

    let mut world = World::new(config.clone(), graph.clone(), registry.clone(), root_vars);
    let mut diags = Diags::new();
    let mut failed: HashSet<Node> = HashSet::new();
    let mut changes: Vec<ResourceChange> = Vec::new();
    let mut expansions = BTreeMap::new();
    let mut planned_values = BTreeMap::new();
    let mut max_unavailable = BTreeMap::new();
    let mut rollouts = BTreeMap::new();
    let mut adjustable = Vec::new();
    let mut adjusted = BTreeMap::new();
    let mut output_changes = Vec::new();
    let salt = state.lineage.clone();

    for node in graph.order.clone() {
        let idx = graph.index[&node];
        if graph.graph.neighbors_directed(idx, petgraph::Direction::Incoming).any(|d| failed.contains(&graph.graph[d])) {
            failed.insert(node);
            continue;
        }
        let result: Result<(), Diags> = match &node {
            Node::Resource(addr) => {
                let resource = config.resource(addr).expect("graph nodes come from the configuration");
                plan_resource(
                    &mut world,
                    resource,
                    &state,
                    &options,
                    &graph,
                    &salt,
                    &mut changes,
                    &mut expansions,
                    &mut planned_values,
                    &mut max_unavailable,
                    &mut rollouts,
                    &mut adjustable,
                )
            }
            Node::Output(m, name) if m.is_root() => world.eval_value_node(&node).map(|value| {
                let value = value.unwrap_or(Value::Null);
                let out = &config.root().outputs[name];
                let after = redact(&value, &salt);
                let before = state.outputs.get(name).map(|o| o.value.clone());
                if before.as_ref() != Some(&after) || value.has_unknown() {
                    output_changes.push(OutputChange {
                        name: name.clone(),
                        before,
                        after: Some(after),
                        after_unknown: value.has_unknown(),
                        sensitive: out.sensitive,
                    });
                }
            }),
            other => world.eval_value_node(other).map(|_| ()),
        };
        if let Err(d) = result {
            diags.extend(d);
            failed.insert(node);
        }
    }
    for name in state.outputs.keys() {
        if !config.root().outputs.contains_key(name) {
            output_changes.push(OutputChange {
                name: name.clone(),
                before: state.outputs.get(name).map(|o| o.value.clone()),
                after: None,
                after_unknown: false,
                sensitive: state.outputs[name].sensitive,
            });
        }
    }

    if !adjustable.is_empty()
        && let Err(d) = adjust_desired(
            &config,
            &registry,
            &state,
            options.at,
            &salt,
            adjustable,
            &mut changes,
            &mut expansions,
            &mut planned_values,
            &mut adjusted,
        )
    {
        diags.extend(d);
    }
    if options.refresh && !diags.has_errors() {
        adopt_by_identity(&config, &registry, &mut state, &salt, &mut imports, &mut changes, &mut planned_values).await?;
    }
    // Instances in state whose resource block is gone.
    for (addr, entry) in &state.resources {
        if config.resource(&addr.resource).is_none() {
            changes.push(delete_change(addr, entry, "delete_because_no_resource_config", &state));
        }
    }
    // Extra objects holding an address another object has.
    for (addr, obj) in &refreshed.duplicates {
        let (provider, _) = registry.resource_type(&addr.resource.rtype).unwrap_or(("", &DUMMY));
        changes.push(ResourceChange {
            addr: addr.clone(),
            rtype: addr.resource.rtype.clone(),
            provider: provider.to_string(),
            action: Action::Delete,
            before: Some(redact(&obj.attrs, &salt)),
            after: None,
            after_unknown: serde_json::Value::Bool(false),
            replace_paths: vec![],
            reason: Some("delete_duplicate".into()),
            disruption: None,
            notes: vec![format!("extra object {} carries this address; the object in state is kept", obj.id)],
            depends_on: vec![],
            fingerprint: format!("duplicate:{}", obj.id),
            shrinks: false,
        });
    }
    if diags.has_errors() {
        return Err(diags);
    }

    if !options.targets.is_empty() {
        let wanted = targeted(&options.targets, &changes, &graph);
        changes.retain(|c| wanted.contains(&c.addr));
        notes.push("Only targeted resources (and what they depend on) are planned: --target.".into());
    }
    changes.sort_by(|a, b| {
        (&a.addr, a.reason.as_deref() == Some("delete_duplicate")).cmp(&(&b.addr, b.reason.as_deref() == Some("delete_duplicate")))
    });
    let mut steps = rollout_steps(&changes, &max_unavailable);
    let drains = super::drain::find(&mut world, &state, &changes)?;
    steps.extend(super::drain::describe(&changes, &drains));
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
    let plan = Plan { changes, drift: refreshed.drift, unmanaged: refreshed.unmanaged, output_changes, steps, notes, imports };
    Ok(Planned {
        plan,
        state,
        world,
        expansions,
        planned_values,
        max_unavailable,
        rollouts,
        adjusted,
        state_changed_by_refresh: state_changed,
    })
}

static DUMMY: ResourceType =
    ResourceType { name: "", schema: crate::provider::Schema { attributes: Vec::new(), blocks: Vec::new() }, schema_version: 0 };

#[allow(clippy::too_many_arguments, reason = "one call site; the pieces are the planner's own accumulators")]
fn plan_resource(
    world: &mut World,
    resource: &Resource,
    state: &State,
    options: &PlanOptions,
    graph: &ConfigGraph,
    salt: &str,
    changes: &mut Vec<ResourceChange>,
    expansions: &mut BTreeMap<InstanceAddr, Expansion>,
    planned_values: &mut BTreeMap<InstanceAddr, Value>,
    max_unavailable: &mut BTreeMap<ResourceAddr, usize>,
    rollouts: &mut BTreeMap<ResourceAddr, Rollout>,
    adjustable: &mut Vec<Adjustable>,
) -> Result<(), Diags> {
    let registry = world.registry.clone();
    let Some((provider_name, rt)) = registry.resource_type(&resource.addr.rtype) else {
        // eval_instance reports the unknown type with a suggestion.
        return world.eval_instance(resource, &Expansion { key: None, each_value: None }).map(|_| ());
    };
    let provider = registry.provider(provider_name).expect("registered types have providers").clone();
    let exps = world.expand(resource)?;
    let deps: Vec<String> = graph.resource_deps(&Node::Resource(resource.addr.clone())).iter().map(|r| r.to_string()).collect();
    // One keyless address per resource depended on: apply orders by
    // resource, and listing every instance in every change is quadratic.
    let dep_addrs: Vec<InstanceAddr> =
        graph.resource_deps(&Node::Resource(resource.addr.clone())).iter().map(|r| r.instance(None)).collect();
    let mut diags = Diags::new();
    let mut values = Vec::new();
    let keys: BTreeSet<Option<InstanceKey>> = exps.iter().map(|e| e.key.clone()).collect();
    for exp in &exps {
        let addr = resource.addr.instance(exp.key.clone());
        let config_value = match world.eval_instance(resource, exp) {
            Ok(v) => v,
            Err(d) => {
                diags.extend(d);
                continue;
            }
        };
        for problem in provider.validate(&resource.addr.rtype, &config_value) {
            let loc = problem
                .attribute
                .as_deref()
                .and_then(|a| resource.body.body.get_attribute(a))
                .map(|a| Location::in_file(&resource.body.file, a.span().unwrap_or(0..0)))
                .unwrap_or_else(|| resource.location.clone());
            diags.push(Diag::error(format!("Invalid {}: {}", addr, problem.message)).at(loc));
        }
        let prior_entry = state.resources.get(&addr);
        let prior = prior_entry.map(|e| Value::from_json(&e.attributes));
        let force = options.replace.iter().any(|r| r == &addr || (r.key.is_none() && r.resource == addr.resource));
        if provider.wants_adjust() {
            adjustable.push(Adjustable {
                addr: addr.clone(),
                config: config_value.clone(),
                expansion: exp.clone(),
                depends_on: dep_addrs.clone(),
                force,
            });
        }
        let diff = diff_instance(rt, provider.as_ref(), prior.as_ref(), config_value, resource, force, salt);
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
            expansions.insert(addr.clone(), exp.clone());
            planned_values.insert(addr.clone(), diff.planned.clone());
            changes.push(make_change(&addr, provider_name, state, diff, dep_addrs.clone(), salt));
        }
    }
    // Instances in state beyond count / for_each.
    for (addr, entry) in state.resources.range(resource.addr.instance(None)..) {
        if addr.resource != resource.addr {
            break;
        }
        if !keys.contains(&addr.key) {
            let reason = match (&addr.key, &resource.count, &resource.for_each) {
                (Some(InstanceKey::Int(_)), Some(_), _) => "delete_because_count_index",
                (Some(InstanceKey::Str(_)), _, Some(_)) => "delete_because_each_key",
                _ => "delete_because_wrong_repetition",
            };
            if resource.lifecycle.prevent_destroy {
                diags.push(
                    Diag::error(format!("{addr} has lifecycle.prevent_destroy and this plan would destroy it"))
                        .at(resource.location.clone()),
                );
            }
            changes.push(delete_change(addr, entry, reason, state));
        }
    }
    let _ = deps;
    if diags.has_errors() {
        return Err(diags);
    }
    let total = values.len();
    let rollout = resolve_rollout(world, resource)?;
    max_unavailable.insert(resource.addr.clone(), rollout.resolve(total));
    rollouts.insert(resource.addr.clone(), rollout);
    world.set_resource(resource, values);
    Ok(())
}

fn resolve_rollout(world: &World, resource: &Resource) -> Result<Rollout, Diags> {
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

/// The result of diffing one instance.
pub struct InstanceDiff {
    pub shrinks: bool,
    pub action: Action,
    pub planned: Value,
    pub replace_paths: Vec<String>,
    pub reason: Option<String>,
    pub disruption: Option<String>,
    pub notes: Vec<String>,
    pub changed: Vec<String>,
}

/// Diffs an instance's configuration against its prior attributes.
/// Comparison happens in redacted form so that secrets compare by hash.
pub fn diff_instance(
    rt: &ResourceType,
    provider: &dyn crate::provider::Provider,
    prior: Option<&Value>,
    config: Value,
    resource: &Resource,
    force_replace: bool,
    salt: &str,
) -> InstanceDiff {
    let config_map = config.as_map().cloned().unwrap_or_default();
    let ignore_all = resource.lifecycle.ignore_changes.iter().any(|i| i == "all");
    let mut planned = BTreeMap::new();
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
            !is_computed && (v.has_unknown() || Some(&redact(v, salt)) != prior_json.get(k.as_str()))
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
            reason: Some(if force_replace { "replace_by_request".into() } else { "replace_because_cannot_update".into() }),
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

/// Planned creates of types whose identity is their ecosystem's own labels
/// are looked up first: an existing object is adopted (recorded like an
/// import) and the plan shows only the real differences.
async fn adopt_by_identity(
    config: &Config,
    registry: &Registry,
    state: &mut State,
    salt: &str,
    imports: &mut Vec<(InstanceAddr, String)>,
    changes: &mut Vec<ResourceChange>,
    planned_values: &mut BTreeMap<InstanceAddr, Value>,
) -> Result<(), Diags> {
    let mut by_type: BTreeMap<String, Vec<usize>> = BTreeMap::new();
    for (i, c) in changes.iter().enumerate() {
        if c.action == Action::Create
            && registry.resource_type(&c.rtype).and_then(|(p, _)| registry.provider(p)).is_some_and(|p| p.adopts_by_identity(&c.rtype))
        {
            by_type.entry(c.rtype.clone()).or_default().push(i);
        }
    }
    let mut replaced: Vec<(usize, Option<ResourceChange>)> = Vec::new();
    for (rtype, indexes) in by_type {
        let (provider_name, rt) = registry.resource_type(&rtype).expect("registered");
        let provider = registry.provider(provider_name).expect("registered").clone();
        let items: Vec<crate::provider::ReadItem> = indexes
            .iter()
            .map(|&i| crate::provider::ReadItem {
                addr: changes[i].addr.clone(),
                prior: planned_values.get(&changes[i].addr).cloned().unwrap_or(Value::Null),
            })
            .collect();
        let resp = provider
            .read(crate::provider::ReadRequest { rtype: rtype.clone(), lineage: state.lineage.clone(), items })
            .await
            .map_err(|e| Diags::from(provider_error(&format!("looking up existing {rtype} objects"), &e)))?;
        for (&i, found) in indexes.iter().zip(resp.current) {
            let Some(attrs) = found else { continue };
            let addr = changes[i].addr.clone();
            let Some(id) = attrs.get("id").and_then(Value::as_str).map(str::to_string) else { continue };
            state
                .resources
                .insert(addr.clone(), crate::state::ResourceState::observed(&rtype, provider_name, rt.schema_version, &attrs, salt));
            imports.push((addr.clone(), id.clone()));
            let resource = config.resource(&addr.resource).expect("planned from the configuration");
            let desired = planned_values.get(&addr).cloned().unwrap_or(Value::Null);
            let mut diff = diff_instance(rt, provider.as_ref(), Some(&attrs), desired, resource, false, salt);
            diff.notes.push(format!("adopted: the existing {id} carries this resource's compose labels"));
            planned_values.remove(&addr);
            if diff.action == Action::NoOp {
                replaced.push((i, None));
            } else {
                planned_values.insert(addr.clone(), diff.planned.clone());
                let depends_on = changes[i].depends_on.clone();
                replaced.push((i, Some(make_change(&addr, provider_name, state, diff, depends_on, salt))));
            }
        }
    }
    replaced.sort_by_key(|(i, _)| std::cmp::Reverse(*i));
    for (i, change) in replaced {
        match change {
            Some(c) => changes[i] = c,
            None => {
                changes.remove(i);
            }
        }
    }
    Ok(())
}

/// A change record from an instance's diff.
fn make_change(
    addr: &InstanceAddr,
    provider_name: &str,
    state: &State,
    diff: InstanceDiff,
    depends_on: Vec<InstanceAddr>,
    salt: &str,
) -> ResourceChange {
    ResourceChange {
        addr: addr.clone(),
        rtype: addr.resource.rtype.clone(),
        provider: provider_name.to_string(),
        action: diff.action,
        before: state.resources.get(addr).map(|e| e.attributes.clone()),
        after: Some(redact(&diff.planned, salt)),
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

/// An evaluated instance kept for its provider's `adjust_desired`.
pub struct Adjustable {
    addr: InstanceAddr,
    config: Value,
    expansion: Expansion,
    depends_on: Vec<InstanceAddr>,
    force: bool,
}

/// Lets providers adjust desired values across their instances, then
/// re-diffs the instances they changed or annotated.
#[allow(clippy::too_many_arguments, reason = "the planner's accumulators, as in plan_resource")]
fn adjust_desired(
    config: &Config,
    registry: &Registry,
    state: &State,
    at: chrono::DateTime<chrono::Utc>,
    salt: &str,
    adjustable: Vec<Adjustable>,
    changes: &mut Vec<ResourceChange>,
    expansions: &mut BTreeMap<InstanceAddr, Expansion>,
    planned_values: &mut BTreeMap<InstanceAddr, Value>,
    adjusted: &mut BTreeMap<InstanceAddr, BTreeMap<String, Value>>,
) -> Result<(), Diags> {
    let mut by_provider: BTreeMap<&'static str, Vec<Adjustable>> = BTreeMap::new();
    for a in adjustable {
        if let Some((p, _)) = registry.resource_type(&a.addr.resource.rtype) {
            by_provider.entry(p).or_default().push(a);
        }
    }
    let mut diags = Diags::new();
    for (provider_name, list) in by_provider {
        let provider = registry.provider(provider_name).expect("registered types have providers").clone();
        let mut items: Vec<crate::provider::DesiredItem> = list
            .iter()
            .map(|a| crate::provider::DesiredItem {
                addr: a.addr.clone(),
                rtype: a.addr.resource.rtype.clone(),
                config: a.config.clone(),
                prior: state.resources.get(&a.addr).map(|e| Value::from_json(&e.attributes)),
                notes: Vec::new(),
            })
            .collect();
        for (i, problem) in provider.adjust_desired(at, &mut items) {
            let Some(a) = list.get(i) else { continue };
            let resource = config.resource(&a.addr.resource).expect("evaluated from the configuration");
            let loc = problem
                .attribute
                .as_deref()
                .and_then(|n| resource.body.body.get_attribute(n))
                .map(|attr| Location::in_file(&resource.body.file, attr.span().unwrap_or(0..0)))
                .unwrap_or_else(|| resource.location.clone());
            diags.push(Diag::error(format!("Invalid {}: {}", a.addr, problem.message)).at(loc));
        }
        for (a, item) in list.into_iter().zip(items) {
            if item.config == a.config && item.notes.is_empty() {
                continue;
            }
            if let (Some(new), Some(old)) = (item.config.as_map(), a.config.as_map()) {
                let overlay: BTreeMap<String, Value> =
                    new.iter().filter(|(k, v)| old.get(*k) != Some(*v)).map(|(k, v)| (k.clone(), v.clone())).collect();
                if !overlay.is_empty() {
                    adjusted.insert(a.addr.clone(), overlay);
                }
            }
            let resource = config.resource(&a.addr.resource).expect("evaluated from the configuration");
            let (_, rt) = registry.resource_type(&a.addr.resource.rtype).expect("registered");
            let mut diff = diff_instance(rt, provider.as_ref(), item.prior.as_ref(), item.config, resource, a.force, salt);
            diff.notes.extend(item.notes);
            changes.retain(|c| !(c.addr == a.addr && c.reason.as_deref() != Some("delete_duplicate")));
            expansions.remove(&a.addr);
            planned_values.remove(&a.addr);
            if diff.action != Action::NoOp {
                expansions.insert(a.addr.clone(), a.expansion);
                planned_values.insert(a.addr.clone(), diff.planned.clone());
                changes.push(make_change(&a.addr, provider_name, state, diff, a.depends_on, salt));
            }
        }
    }
    diags.into_result().map(|_| ())
}

fn delete_change(addr: &InstanceAddr, entry: &crate::state::ResourceState, reason: &str, state: &State) -> ResourceChange {
    ResourceChange {
        addr: addr.clone(),
        rtype: entry.rtype.clone(),
        provider: entry.provider.clone(),
        action: Action::Delete,
        before: Some(entry.attributes.clone()),
        after: None,
        after_unknown: serde_json::Value::Bool(false),
        replace_paths: vec![],
        reason: Some(reason.to_string()),
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

/// A hash of what a change of `addr` is computed from: the state entry
/// (after refresh). `apply PLANFILE` refuses a change whose fingerprint moved.
pub fn fingerprint(state: &State, addr: &InstanceAddr) -> String {
    let mut hasher = Sha256::new();
    hasher.update(addr.to_string().as_bytes());
    match state.resources.get(addr) {
        Some(entry) => hasher.update(entry.attributes.to_string().as_bytes()),
        None => hasher.update(b"absent"),
    }
    hasher.finalize().iter().take(16).map(|b| format!("{b:02x}")).collect()
}

/// The targeted changes plus the changes of what they depend on.
fn targeted(targets: &[InstanceAddr], changes: &[ResourceChange], graph: &ConfigGraph) -> BTreeSet<InstanceAddr> {
    let matches = |addr: &InstanceAddr| targets.iter().any(|t| t == addr || (t.key.is_none() && t.resource == addr.resource));
    let mut wanted_resources: BTreeSet<ResourceAddr> = BTreeSet::new();
    for c in changes.iter().filter(|c| matches(&c.addr)) {
        wanted_resources.extend(graph.resource_deps(&Node::Resource(c.addr.resource.clone())));
    }
    changes.iter().filter(|c| matches(&c.addr) || wanted_resources.contains(&c.addr.resource)).map(|c| c.addr.clone()).collect()
}

/// Reviewer-facing lines describing disruptive rollouts batch by batch.
fn rollout_steps(changes: &[ResourceChange], max_unavailable: &BTreeMap<ResourceAddr, usize>) -> Vec<String> {
    let mut by_resource: BTreeMap<&ResourceAddr, Vec<&ResourceChange>> = BTreeMap::new();
    for c in changes.iter().filter(|c| c.disruption.is_some()) {
        by_resource.entry(&c.addr.resource).or_default().push(c);
    }
    let mut steps = Vec::new();
    for (resource, list) in by_resource {
        let n = max_unavailable.get(resource).copied().unwrap_or(1).max(1);
        let what = list[0].disruption.clone().unwrap_or_default();
        for (i, batch) in list.chunks(n).enumerate() {
            let names: Vec<String> = batch.iter().map(|c| c.addr.to_string()).collect();
            steps.push(format!("{resource} batch {} ({what}, max_unavailable = {n}): {}", i + 1, names.join(", ")));
        }
    }
    steps
}

/// Reads the objects of `import` blocks whose address state does not hold
/// yet and puts them into the (in-memory) state, so the plan diffs the
/// configuration against them. Apply labels them and records them.
async fn plan_imports(
    config: &Config,
    registry: &Registry,
    root_vars: &BTreeMap<String, Value>,
    state: &mut State,
    refresh: bool,
) -> Result<Vec<(InstanceAddr, String)>, Diags> {
    let mut out = Vec::new();
    let mut diags = Diags::new();
    let base = BTreeMap::from([("var".to_string(), Value::Map(root_vars.clone()))]);
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
            let prior = Value::Map(BTreeMap::from([("id".to_string(), Value::String(id.clone()))]));
            let req = crate::provider::ReadRequest {
                rtype: addr.resource.rtype.clone(),
                lineage: state.lineage.clone(),
                items: vec![crate::provider::ReadItem { addr: addr.clone(), prior }],
            };
            match provider.read(req).await {
                Ok(resp) => match resp.current.into_iter().next().flatten() {
                    Some(attrs) => {
                        state.resources.insert(
                            addr.clone(),
                            crate::state::ResourceState::observed(
                                &addr.resource.rtype,
                                provider_name,
                                rt.schema_version,
                                &attrs,
                                &state.lineage,
                            ),
                        );
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

/// Applies `moved` blocks to state; returns whether anything moved.
fn apply_moves(config: &Config, state: &mut State, notes: &mut Vec<String>) -> Result<bool, Diags> {
    let mut moved_any = false;
    let mut diags = Diags::new();
    for module in config.modules.values() {
        for m in &module.moved {
            let prefix = if module.path.is_root() { String::new() } else { format!("{}.", module.path) };
            let (from, to) =
                match (format!("{prefix}{}", m.from).parse::<InstanceAddr>(), format!("{prefix}{}", m.to).parse::<InstanceAddr>()) {
                    (Ok(f), Ok(t)) => (f, t),
                    (Err(e), _) | (_, Err(e)) => {
                        diags.push(Diag::error(format!("Invalid moved block: {e}")).at(m.location.clone()));
                        continue;
                    }
                };
            if from.resource.rtype != to.resource.rtype {
                diags.push(Diag::error("moved cannot change the resource type").at(m.location.clone()));
                continue;
            }
            let sources: Vec<InstanceAddr> = state
                .resources
                .keys()
                .filter(|a| if from.key.is_some() { **a == from } else { a.resource == from.resource })
                .cloned()
                .collect();
            for src in sources {
                let dst = if from.key.is_some() { to.clone() } else { to.resource.instance(src.key.clone()) };
                if state.resources.contains_key(&dst) {
                    diags.push(Diag::error(format!("Cannot move {src} to {dst}: {dst} already exists in state")).at(m.location.clone()));
                    continue;
                }
                if let Some(entry) = state.resources.remove(&src) {
                    state.resources.insert(dst.clone(), entry);
                    notes.push(format!("{src} has moved to {dst}"));
                    moved_any = true;
                }
            }
        }
    }
    diags.into_result().map(|_| moved_any)
}
