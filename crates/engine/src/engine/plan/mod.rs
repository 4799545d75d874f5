//! Planning: move state per `moved` blocks, refresh, evaluate the
//! configuration in graph order and diff every resource instance against
//! its refreshed state. The result is a [`Plan`] (plain data for reviewers
//! and plan files) plus what apply needs to carry it out: one
//! [`PlannedInstance`] record per changed instance ([`Planned`]).
//!
//! The pieces, in the order [`plan`] runs them: [`moves`], refresh,
//! [`imports`] (import blocks), [`walk`] (evaluation and [`diff`] per
//! instance), [`adjust`] (providers' cross-instance adjustments), adoption
//! by identity ([`imports`]), deletes of what the configuration no longer
//! has, `--target`, then [`rollout`] (batches, drains, review lines).
//! [`fingerprint`] is what `apply PLANFILE` compares. No I/O here except
//! through providers.

pub mod adjust;
pub mod diff;
pub mod fingerprint;
pub mod imports;
pub mod moves;
pub mod rollout;
mod walk;

pub use diff::{InstanceDiff, diff_instance, unknown_tree};
pub use fingerprint::fingerprint;

use super::drain::Batch;
use super::gate::Gate;
use super::refresh::{self, Refreshed};
use super::world::{Expansion, World};
use super::{Hooks, provider_error};
use crate::addr::{InstanceAddr, ResourceAddr};
use crate::config::Config;
use crate::config::eval::{self, Scope};
use crate::diag::Diags;
use crate::graph::ConfigGraph;
use crate::plan::{OutputChange, Plan, ResourceChange};
use crate::provider::{Intent, Registry, Rollout};
use crate::state::State;
use crate::value::Value;
use std::collections::{BTreeMap, BTreeSet};
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
    /// Applying a saved plan: its planned values (`after`) per instance.
    pub saved: BTreeMap<InstanceAddr, serde_json::Value>,
    /// `validate`: a resource with `count` or `for_each` is checked once,
    /// with `count.index` / `each.*` unknown, not once per instance.
    pub validate_only: bool,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            refresh: true,
            targets: Vec::new(),
            replace: Vec::new(),
            at: chrono::Utc::now(),
            saved: BTreeMap::new(),
            validate_only: false,
        }
    }
}

/// A resource's `rollout { max_unavailable }`: as written (providers
/// resolve it against their own members) and resolved against the
/// resource's instance count (the engine's slot limit).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ResolvedRollout {
    pub rollout: Rollout,
    pub max_unavailable: usize,
}

impl ResolvedRollout {
    /// The engine's limit of disrupted instances at once, never below 1.
    pub fn limit(&self) -> usize {
        self.max_unavailable.max(1)
    }
}

/// Everything plan decided for one changed instance besides its
/// [`ResourceChange`] (which is plain data in [`Plan::changes`], with its
/// fingerprint). Apply consumes these records and never re-decides them: it
/// re-evaluates only values that were unknown at plan time.
#[derive(Debug, Clone)]
pub struct PlannedInstance {
    /// How the instance was expanded (`count.index`, `each.*`), to
    /// re-evaluate it in apply.
    pub expansion: Expansion,
    /// The planned value, secrets in plain text (never persisted; apply
    /// sends it to the provider).
    pub value: Value,
    /// Attributes the provider's `adjust_desired` changed: laid over the
    /// configuration whenever apply re-evaluates it.
    pub adjusted: BTreeMap<String, Value>,
    /// The resource's rollout.
    pub rollout: ResolvedRollout,
    /// For a disruptive update: its rollout batch (shared by the batch's
    /// members), with the drains around it; for an object rolled piece by
    /// piece, one batch per group of pieces, in order.
    pub batches: Vec<Arc<Batch>>,
    /// For a create: the health gate it passes before what lists it is
    /// updated to include it. Boxed: few records have one, and every
    /// record would otherwise carry its size.
    pub create_gate: Option<Box<Gate>>,
}

/// What plan hands to apply besides the plan itself.
pub struct Planned {
    pub plan: Plan,
    /// State after moves, refresh and recovery: what apply starts from.
    pub state: State,
    /// Namespaces filled with planned values.
    pub world: World,
    /// One record per changed instance (duplicate deletes and deletes of
    /// instances without configuration have none).
    pub instances: BTreeMap<InstanceAddr, PlannedInstance>,
    /// Whether refresh changed state (drift, adoption) or moves applied.
    pub state_changed_by_refresh: bool,
    /// Whether every unfinished create intent a crashed run left was
    /// settled (there were none, or refresh looked for their objects): a
    /// leftover journal then holds nothing that `state` lacks, and the
    /// locked run may discard it even when it changes nothing.
    pub intents_settled: bool,
}

impl Planned {
    /// The rollout batches of the plan, in the order their sequences
    /// run, as plain data (plan files keep them for `graph --plan`).
    pub fn batches(&self) -> Vec<crate::plan::batch::ApplyBatch> {
        let mut seen: Vec<&Arc<Batch>> = Vec::new();
        for record in self.instances.values() {
            for b in &record.batches {
                if !seen.iter().any(|s| Arc::ptr_eq(s, b)) {
                    seen.push(b);
                }
            }
        }
        seen.sort_by(|a, b| (&a.sequence, a.number).cmp(&(&b.sequence, b.number)));
        seen.into_iter()
            .map(|b| crate::plan::batch::ApplyBatch {
                sequence: b.sequence.clone(),
                number: b.number,
                of: b.of,
                max_unavailable: b.max_unavailable,
                disruption: b.disruption.clone(),
                members: b.members.clone(),
                parts: b.parts.iter().map(|p| p.name.clone()).collect(),
                drains: b.drains.iter().map(|d| d.listing.clone()).collect(),
                gates: b.gates.iter().map(|g| (g.member.clone(), g.target_name())).collect(),
            })
            .collect()
    }
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
    let base = BTreeMap::from([("var".to_string(), Value::Map(root_vars.clone().into()))]);
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

/// The planner's working set while one plan is computed.
pub(crate) struct Planner {
    pub config: Arc<Config>,
    pub graph: Arc<ConfigGraph>,
    pub registry: Registry,
    pub options: PlanOptions,
    /// The lineage: what redaction salts secrets with.
    pub salt: String,
    pub state: State,
    pub world: World,
    pub changes: Vec<ResourceChange>,
    pub instances: BTreeMap<InstanceAddr, PlannedInstance>,
    pub rollouts: BTreeMap<ResourceAddr, ResolvedRollout>,
    pub adjustable: Vec<adjust::Adjustable>,
    pub output_changes: Vec<OutputChange>,
    pub imports: Vec<(InstanceAddr, String)>,
    /// Moved objects whose address label apply updates: (from, to).
    pub relabels: Vec<(InstanceAddr, InstanceAddr)>,
    pub notes: Vec<String>,
}

impl Planner {
    /// Records a change with its instance's record.
    pub fn record(&mut self, change: ResourceChange, expansion: Expansion, value: Value) -> &mut PlannedInstance {
        let rollout = self.rollouts.get(&change.addr.resource).copied().unwrap_or_default();
        let addr = change.addr.clone();
        self.changes.push(change);
        let record = PlannedInstance { expansion, value, adjusted: BTreeMap::new(), rollout, batches: Vec::new(), create_gate: None };
        self.instances.insert(addr.clone(), record);
        self.instances.get_mut(&addr).expect("inserted just above")
    }
}

/// Sorts changes by address, the delete of a duplicate object after the
/// change of the object in state, keeping the walk's order among equals.
/// The changes are large: a stable sort of them would take a scratch copy
/// of half of them, so their indices are sorted and the changes moved into
/// place along the permutation's cycles.
fn sort_changes(changes: &mut [ResourceChange]) {
    fn key(c: &ResourceChange) -> (&InstanceAddr, bool) {
        (&c.addr, c.is_duplicate_delete())
    }
    if changes.is_sorted_by(|a, b| key(a) <= key(b)) {
        return;
    }
    let mut order: Vec<usize> = (0..changes.len()).collect();
    order.sort_by(|&a, &b| key(&changes[a]).cmp(&key(&changes[b])));
    // Position i receives the change at order[i]; follow each cycle once.
    for start in 0..order.len() {
        let mut at = start;
        while order[at] != start {
            let from = order[at];
            changes.swap(at, from);
            order[at] = at;
            at = from;
        }
        order[at] = at;
    }
}

/// Computes a plan.
pub async fn plan(input: PlanInput, hooks: &dyn Hooks) -> Result<Planned, Diags> {
    let PlanInput { config, graph, registry, root_vars, mut state, intents, options } = input;
    let mut notes = Vec::new();
    let moved = moves::apply_moves(&config, &mut state, &mut notes)?;
    let mut state_changed = !moved.is_empty();

    let intents_settled = intents.is_empty() || options.refresh;
    let mut refreshed = Refreshed::default();
    if options.refresh {
        configure_providers(&config, &registry, &root_vars, &state).await?;
        let types: BTreeSet<String> = config.resources().map(|r| r.addr.rtype.clone()).collect();
        let known = refresh::known_before_refresh(&config, &registry, &root_vars, &state);
        refreshed = refresh::refresh(&registry, &mut state, &intents, &types, &known, hooks).await?;
        state_changed |= !refreshed.drift.is_empty() || !refreshed.adopted.is_empty();
    }
    let imports = imports::plan_imports(&config, &registry, &root_vars, &mut state, options.refresh).await?;
    for rtype in state.resources.values().map(|r| r.rtype.as_str()).collect::<BTreeSet<_>>() {
        if registry.resource_type(rtype).is_none() {
            return Err(refresh::unknown_type(rtype).into());
        }
    }

    let world = World::new(config.clone(), graph.clone(), registry.clone(), root_vars);
    let mut planner = Planner {
        config,
        graph,
        registry,
        salt: state.lineage.clone(),
        options,
        state,
        world,
        changes: Vec::new(),
        instances: BTreeMap::new(),
        rollouts: BTreeMap::new(),
        adjustable: Vec::new(),
        output_changes: Vec::new(),
        imports,
        relabels: Vec::new(),
        notes,
    };
    let mut diags = planner.walk();
    planner.removed_outputs();
    if let Err(d) = planner.adjust_desired() {
        diags.extend(d);
    }
    if planner.options.refresh && !diags.has_errors() {
        planner.adopt_by_identity().await?;
    }
    planner.delete_unconfigured();
    planner.delete_duplicates(&refreshed.duplicates);
    if diags.has_errors() {
        return Err(diags);
    }
    planner.apply_targets();
    sort_changes(&mut planner.changes);
    let mut steps = planner.relabel_steps(moved);
    let (rollout_steps, disruptions) = planner.rollout_steps()?;
    steps.extend(rollout_steps);

    let Planner { state, world, changes, instances, output_changes, imports, notes, relabels, .. } = planner;
    let plan = Plan {
        changes,
        drift: refreshed.drift,
        unmanaged: refreshed.unmanaged,
        output_changes,
        steps,
        notes,
        imports,
        relabels,
        disruptions,
    };
    Ok(Planned { plan, state, world, instances, state_changed_by_refresh: state_changed, intents_settled })
}
