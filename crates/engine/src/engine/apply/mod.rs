//! Apply: carry out a plan's changes in dependency order.
//!
//! The pieces: [`steps`] builds the step graph from the plan's changes and
//! their [`PlannedInstance`] records (rollout groups included); `schedule`
//! runs it (bounded parallelism, rollout slots, one drain at a time per
//! listing instance); `request` turns a step into a provider request,
//! re-evaluating only values unknown at plan time; `commit` journals
//! completions, records imports and outputs and writes the canonical state.
//!
//! Rules:
//! - a step starts after the steps it depends on; destroys run in reverse
//!   dependency order, and a resource others depend on is destroyed only
//!   after they were updated or destroyed;
//! - at most `parallelism` steps run at once, and at most
//!   `max_unavailable` disruptive steps per resource;
//! - a create's intent is journalled durably before the create is sent;
//!   completions are journalled (group commit) before they count;
//! - a failed step stops its dependents, running steps finish, the state
//!   reached is committed; cancellation stops starting new steps.
//!
//! Guarantees: state is durable after every completed step; the canonical
//! file is written once, at the end, and only when it changed. Apply never
//! re-decides actions, batches or drains: they are the plan's.

mod commit;
mod request;
mod schedule;
mod steps;

pub use commit::commit_if_changed;

use super::Hooks;
use super::plan::{Planned, PlannedInstance};
use super::world::World;
use crate::addr::{InstanceAddr, ResourceAddr};
use crate::diag::Diags;
use crate::plan::{Plan, ResourceChange};
use crate::provider::Registry;
use crate::state::{State, StateStore};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Options of one apply.
#[derive(Clone)]
pub struct ApplyOptions {
    pub parallelism: usize,
    /// Set (e.g. by Ctrl-C) to stop starting new steps.
    pub cancel: Arc<AtomicBool>,
}

impl Default for ApplyOptions {
    fn default() -> Self {
        ApplyOptions { parallelism: 10, cancel: Arc::new(AtomicBool::new(false)) }
    }
}

/// What an apply did.
#[derive(Debug)]
pub struct ApplyOutcome {
    pub state: State,
    pub completed: usize,
    /// Whether the state file was rewritten.
    pub committed: bool,
    pub errors: Diags,
    pub cancelled: bool,
}

/// One change to carry out, with what plan decided for it.
pub(crate) struct Item {
    pub change: ResourceChange,
    /// `None` for deletes of instances without configuration and of
    /// duplicate objects.
    pub record: Option<PlannedInstance>,
}

/// The applier's working set while one apply runs.
pub(crate) struct Applier<'a> {
    items: Vec<Item>,
    /// Existing objects that `import` blocks adopt.
    imports: Vec<(InstanceAddr, String)>,
    /// Moved objects to relabel: (from, to).
    relabels: Vec<(InstanceAddr, InstanceAddr)>,
    world: World,
    state: State,
    registry: Registry,
    salt: String,
    store: &'a dyn StateStore,
    hooks: &'a dyn Hooks,
    options: ApplyOptions,
    /// Resources with at least one completed step (their values are real now).
    applied_resources: HashSet<ResourceAddr>,
    /// Per resource: what its state entries record as dependencies (one
    /// shared copy).
    dependencies: HashMap<ResourceAddr, Vec<Arc<ResourceAddr>>>,
    errors: Diags,
    completed: usize,
    journal_begun: bool,
    /// [`Planned::intents_settled`]: a leftover journal may be discarded.
    intents_settled: bool,
}

/// Applies `changes` (the plan's, or a saved plan's) on top of `planned`.
pub async fn apply(
    planned: Planned,
    changes: Vec<ResourceChange>,
    store: &dyn StateStore,
    run_start_text: Option<String>,
    options: ApplyOptions,
    hooks: &dyn Hooks,
) -> Result<ApplyOutcome, Diags> {
    // Apply re-evaluates the configuration: `uuid()`, `timestamp()` and
    // `bcrypt()` now produce their values.
    planned.world.config.inputs.start_applying();
    let mut applier = Applier::new(planned, changes, store, options, hooks);
    applier.import_objects().await?;
    applier.relabel_objects().await?;
    applier.run().await?;
    applier.record_outputs();
    applier.finish(run_start_text).await
}

impl<'a> Applier<'a> {
    fn new(planned: Planned, changes: Vec<ResourceChange>, store: &'a dyn StateStore, options: ApplyOptions, hooks: &'a dyn Hooks) -> Self {
        let Planned { plan: Plan { imports, relabels, .. }, state, world, mut instances, intents_settled, .. } = planned;
        let items: Vec<Item> = changes
            .into_iter()
            .map(|change| {
                let record = if change.is_duplicate_delete() { None } else { instances.remove(&change.addr) };
                Item { change, record }
            })
            .collect();
        Applier {
            items,
            imports,
            relabels,
            registry: world.registry.clone(),
            salt: state.lineage.clone(),
            world,
            state,
            store,
            hooks,
            options,
            applied_resources: HashSet::new(),
            dependencies: HashMap::new(),
            errors: Diags::new(),
            completed: 0,
            journal_begun: false,
            intents_settled,
        }
    }

    fn cancelled(&self) -> bool {
        self.options.cancel.load(Ordering::SeqCst)
    }

    async fn finish(mut self, run_start_text: Option<String>) -> Result<ApplyOutcome, Diags> {
        // The run holds the lock: a journal on disk is its own, or one a
        // crashed run left, which the plan has replayed and settled.
        let may_discard = self.journal_begun || self.intents_settled;
        let committed = commit_if_changed(self.store, &mut self.state, run_start_text.as_deref(), may_discard).await?;
        let cancelled = self.cancelled();
        Ok(ApplyOutcome { state: self.state, completed: self.completed, committed, errors: self.errors, cancelled })
    }
}
