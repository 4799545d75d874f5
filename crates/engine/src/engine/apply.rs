//! Apply: carry out a plan's changes in dependency order.
//!
//! The apply graph is built from the *plan* (not the configuration): one
//! step per create/update/delete, replacements as two steps. Rules:
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
//! file is written once, at the end, and only when it changed.

use super::plan::{Planned, diff_instance};
use super::{Event, Hooks, provider_error};
use crate::addr::{InstanceAddr, ResourceAddr};
use crate::diag::{Diag, Diags};
use crate::graph::Node;
use crate::plan::{Action, ResourceChange};
use crate::provider::{ApplyAction, ApplyRequest};
use crate::state::journal::JournalEntry;
use crate::state::{OutputState, ResourceState, State, StateStore, new_id, redact};
use crate::value::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Create,
    Update,
    Delete,
    /// Re-apply `subject` without the change's instance.
    Drain,
    /// Re-apply `subject` with the change's instance again.
    Restore,
    /// No action: joins the steps of one resource so that the steps of
    /// another can wait for all of them through one edge each (pairwise
    /// edges between two counted resources are quadratic). Never sent;
    /// passed as soon as what it waits for has finished.
    Barrier,
}

struct Step {
    change: usize,
    kind: Kind,
    /// For drain/restore: the instance that lists the change's instance.
    subject: Option<InstanceAddr>,
    /// Takes one of its resource's rollout slots (`max_unavailable`) when it
    /// starts; the step disrupts the object.
    acquires: bool,
    /// Gives the slot back when it ends. A replacement's delete acquires
    /// and its create releases, so the slot is held while the object is down.
    releases: bool,
    /// Delete of an object that is not (or no longer) the one in state.
    keep_state: bool,
}

/// Applies `changes` (the plan's, or a plan file's) on top of `planned`.
pub async fn apply(
    mut planned: Planned,
    changes: Vec<ResourceChange>,
    store: &dyn StateStore,
    run_start_text: Option<String>,
    options: ApplyOptions,
    hooks: &dyn Hooks,
) -> Result<ApplyOutcome, Diags> {
    let registry = planned.world.registry.clone();
    let planned_values = std::mem::take(&mut planned.planned_values);
    let salt = planned.state.lineage.clone();
    let drains = super::drain::find(&mut planned.world, &planned.state, &changes)?;
    let (steps, deps) = build_steps(&changes, &planned.state, &drains);
    // Instances currently left out of each listing instance.
    let mut drained: HashMap<InstanceAddr, BTreeSet<InstanceAddr>> = HashMap::new();
    // Listing instances with a drain/restore running (one at a time each).
    let mut busy: HashSet<InstanceAddr> = HashSet::new();
    let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); steps.len()];
    let mut waiting: Vec<usize> = vec![0; steps.len()];
    for (i, ds) in deps.iter().enumerate() {
        waiting[i] = ds.len();
        for d in ds {
            dependents[*d].push(i);
        }
    }
    let mut ready: BTreeSet<usize> = BTreeSet::new();
    let mut skipped: HashSet<usize> = HashSet::new();
    // Barriers passed; they count as attempted steps.
    let mut passed = 0usize;
    let initially: Vec<usize> = (0..steps.len()).filter(|i| waiting[*i] == 0).collect();
    for i in initially {
        make_ready(i, &steps, &dependents, &mut waiting, &skipped, &mut ready, &mut passed);
    }
    let mut in_flight: HashMap<ResourceAddr, usize> = HashMap::new();
    let mut applied_resources: HashSet<ResourceAddr> = HashSet::new();
    let mut running = tokio::task::JoinSet::new();
    let mut errors = Diags::new();
    let mut completed = 0usize;
    let parallelism = options.parallelism.max(1);
    let mut state = std::mem::take(&mut planned.state);
    let mut journal_begun = false;
    // Steps taken off the ready set (sent, or failed to build a request).
    let mut attempted = 0usize;

    // Imports first: label the adopted objects and record them.
    if !planned.plan.imports.is_empty() {
        let mut entries = vec![JournalEntry::Begin { serial: state.serial, lineage: state.lineage.clone() }];
        journal_begun = true;
        for (addr, id) in planned.plan.imports.clone() {
            let Some((provider_name, rt)) = registry.resource_type(&addr.resource.rtype) else { continue };
            let provider = registry.provider(provider_name).expect("registered").clone();
            match provider.import(&addr.resource.rtype, &addr, &id, &salt).await {
                Ok(attrs) => {
                    let entry = ResourceState::observed(&addr.resource.rtype, provider_name, rt.schema_version, &attrs, &salt);
                    entries.push(JournalEntry::Set { address: addr.clone(), resource: entry.clone(), token: None });
                    state.resources.insert(addr, entry);
                }
                Err(e) => errors.push(provider_error(&format!("importing {id} into {addr}"), &e)),
            }
        }
        store.append_journal(&entries).await.map_err(|e| Diags::from(Diag::error(e.to_string())))?;
    }

    loop {
        // Start whatever may start.
        let mut starting: Vec<(usize, ApplyRequest)> = Vec::new();
        if !options.cancel.load(Ordering::SeqCst) {
            // Take the first startable steps in order; a disruptive step
            // whose resource is at its rollout limit waits in `ready`.
            let room = parallelism.saturating_sub(running.len());
            let mut picked = Vec::new();
            let mut planned_slots: HashMap<&ResourceAddr, usize> = HashMap::new();
            for &i in ready.iter() {
                if picked.len() >= room {
                    break;
                }
                let step = &steps[i];
                if step
                    .subject
                    .as_ref()
                    .is_some_and(|u| busy.contains(u) || picked.iter().any(|p: &usize| steps[*p].subject.as_ref() == Some(u)))
                {
                    continue;
                }
                if step.acquires {
                    let resource = &changes[step.change].addr.resource;
                    let limit = planned.max_unavailable.get(resource).copied().unwrap_or(1).max(1);
                    let taken = planned_slots.entry(resource).or_insert_with(|| in_flight.get(resource).copied().unwrap_or(0));
                    if *taken >= limit {
                        continue;
                    }
                    *taken += 1;
                }
                picked.push(i);
            }
            for i in picked {
                let step = &steps[i];
                let change = &changes[step.change];
                let resource = change.addr.resource.clone();
                ready.remove(&i);
                attempted += 1;
                let request = match (&step.subject, step.kind) {
                    (Some(u), Kind::Drain | Kind::Restore) => {
                        let set = drained.entry(u.clone()).or_default();
                        if step.kind == Kind::Drain {
                            set.insert(change.addr.clone());
                        } else {
                            set.remove(&change.addr);
                        }
                        let set = set.clone();
                        busy.insert(u.clone());
                        drain_request(&mut planned, &state, u, &set, &salt)
                    }
                    _ => request_for(&mut planned, &state, change, step, &planned_values, &applied_resources, &salt),
                };
                match request {
                    Ok(req) => {
                        if step.acquires {
                            *in_flight.entry(resource).or_default() += 1;
                        }
                        starting.push((i, req));
                    }
                    Err(d) => {
                        errors.extend(d);
                        skip_dependents(i, &dependents, &mut skipped);
                    }
                }
            }
        }
        if !starting.is_empty() {
            let mut entries = Vec::new();
            if !journal_begun {
                entries.push(JournalEntry::Begin { serial: state.serial, lineage: state.lineage.clone() });
            }
            for (_, req) in &starting {
                if let (ApplyAction::Create, Some(token)) = (req.action, &req.token) {
                    entries.push(JournalEntry::Intent { address: req.addr.clone(), rtype: req.rtype.clone(), token: token.clone() });
                }
            }
            if entries.len() > usize::from(journal_begun) || !journal_begun {
                store.append_journal(&entries).await.map_err(|e| Diags::from(Diag::error(e.to_string())))?;
                journal_begun = true;
            }
            for (i, req) in starting {
                let Some((provider_name, _)) = registry.resource_type(&req.rtype) else { continue };
                let provider = registry.provider(provider_name).expect("registered").clone();
                let what = describe(&steps[i], &changes, &req);
                hooks.event(Event::ActionStarted { addr: req.addr.clone(), what: what.clone() });
                running.spawn(async move {
                    let started = Instant::now();
                    let result = super::with_retries(|| provider.apply(req.clone()), &super::NoHooks, &what).await;
                    (i, req, result, started.elapsed())
                });
            }
        }
        if running.is_empty() {
            break;
        }
        // Wait for one completion, then take every other finished one too,
        // so they share one journal fsync.
        let mut done = Vec::new();
        if let Some(joined) = running.join_next().await {
            done.push(joined);
        }
        while let Some(joined) = running.try_join_next() {
            done.push(joined);
        }
        let mut entries = Vec::new();
        let mut finished = Vec::new();
        for joined in done {
            let (i, req, result, elapsed) = match joined {
                Ok(x) => x,
                Err(e) => {
                    errors.push(Diag::error(format!("an apply task failed: {e}")));
                    continue;
                }
            };
            let step = &steps[i];
            if let Some(u) = &step.subject {
                busy.remove(u);
            }
            let change = &changes[step.change];
            let resource = change.addr.resource.clone();
            if step.releases
                && let Some(n) = in_flight.get_mut(&resource)
            {
                *n = n.saturating_sub(1);
            }
            let what = describe(step, &changes, &req);
            match result {
                Ok(value) => {
                    hooks.event(Event::ActionFinished { addr: req.addr.clone(), what, elapsed });
                    match step.kind {
                        Kind::Create | Kind::Update | Kind::Drain | Kind::Restore => {
                            let dependencies: Vec<String> = planned
                                .world
                                .graph
                                .resource_deps(&Node::Resource(resource.clone()))
                                .iter()
                                .map(|r| r.to_string())
                                .collect();
                            let (provider_name, rt) = registry.resource_type(&req.rtype).expect("registered");
                            let entry = ResourceState {
                                rtype: req.rtype.clone(),
                                provider: provider_name.to_string(),
                                schema_version: rt.schema_version,
                                attributes: redact(&value, &salt),
                                dependencies,
                            };
                            entries.push(JournalEntry::Set {
                                address: req.addr.clone(),
                                resource: entry.clone(),
                                token: req.token.clone(),
                            });
                            finished.push((i, Some((req.addr.clone(), entry, value))));
                        }
                        // Barriers are passed, never sent (see make_ready).
                        Kind::Barrier => {}
                        Kind::Delete => {
                            if !step.keep_state {
                                entries.push(JournalEntry::Remove { address: req.addr.clone() });
                            }
                            finished.push((i, None));
                        }
                    }
                }
                Err(e) => {
                    let diag = provider_error(&format!("{} {}", what, req.addr), &e)
                        .at_opt(planned.world.config.resource(&resource).map(|r| r.location.clone()));
                    hooks.event(Event::ActionFailed { addr: req.addr.clone(), what, error: e.to_string() });
                    errors.push(diag);
                    skip_dependents(i, &dependents, &mut skipped);
                    // A replacement whose delete failed never reaches its create.
                    if step.acquires
                        && !step.releases
                        && let Some(n) = in_flight.get_mut(&resource)
                    {
                        *n = n.saturating_sub(1);
                    }
                }
            }
        }
        if !entries.is_empty() {
            store.append_journal(&entries).await.map_err(|e| Diags::from(Diag::error(e.to_string())))?;
        }
        for (i, result) in finished {
            completed += 1;
            let step = &steps[i];
            let change = &changes[step.change];
            applied_resources.insert(change.addr.resource.clone());
            match result {
                Some((addr, entry, value)) => {
                    state.resources.insert(addr.clone(), entry);
                    planned.world.set_instance(&addr, value);
                }
                None if !step.keep_state => {
                    state.resources.remove(&change.addr);
                }
                None => {}
            }
            for &d in &dependents[i] {
                waiting[d] = waiting[d].saturating_sub(1);
                if waiting[d] == 0 && !skipped.contains(&d) {
                    make_ready(d, &steps, &dependents, &mut waiting, &skipped, &mut ready, &mut passed);
                }
            }
        }
    }
    let cancelled = options.cancel.load(Ordering::SeqCst);
    let stuck = steps.len().saturating_sub(attempted + passed + skipped.len());
    if !cancelled && stuck > 0 {
        // Every step either ran, failed or was skipped, unless the step
        // graph had a cycle: never report such a run as a success.
        errors.push(Diag::error(format!("{stuck} action(s) could not be ordered and were not started")).with_detail(
            "The apply steps depend on each other in a cycle; this is a bug in himaplan. Nothing else was skipped; run plan to see what remains.",
        ));
    }
    if cancelled {
        errors.push(
            Diag::error("Apply interrupted")
                .with_detail("Running actions finished and were recorded; run apply again to carry out the rest."),
        );
    } else if !skipped.is_empty() && errors.has_errors() {
        errors.push(Diag::error(format!("{} dependent action(s) were not started because of the errors above", skipped.len())));
    }

    // Outputs from final values.
    let mut outputs = BTreeMap::new();
    let graph = planned.world.graph.clone();
    let config = planned.world.config.clone();
    for node in graph.order.iter() {
        if matches!(node, Node::Resource(_) | Node::Provider(_)) {
            continue;
        }
        match planned.world.eval_value_node(node) {
            Ok(Some(value)) => {
                if let Node::Output(m, name) = node
                    && m.is_root()
                    && !value.has_unknown()
                {
                    let sensitive = config.root().outputs.get(name).is_some_and(|o| o.sensitive);
                    outputs.insert(name.clone(), OutputState { value: redact(&value, &salt), sensitive });
                }
            }
            Ok(None) => {}
            Err(d) if errors.has_errors() => drop(d),
            Err(d) => errors.extend(d),
        }
    }
    // Keep the previous value of an output that could not be computed: after
    // errors, or when `--target` left a resource it reads unplanned (its
    // value is then unknown). Only outputs no longer declared are dropped.
    for (k, v) in &state.outputs {
        if errors.has_errors() || config.root().outputs.contains_key(k) {
            outputs.entry(k.clone()).or_insert_with(|| v.clone());
        }
    }
    state.outputs = outputs;

    let committed = commit_if_changed(store, &mut state, run_start_text.as_deref(), journal_begun).await?;
    Ok(ApplyOutcome { state, completed, committed, errors, cancelled })
}

/// Writes the canonical state when it differs from the run's start; bumps
/// the serial by one. Returns whether it wrote.
pub async fn commit_if_changed(
    store: &dyn StateStore,
    state: &mut State,
    run_start_text: Option<&str>,
    journal_begun: bool,
) -> Result<bool, Diags> {
    let current = crate::state::file::to_canonical_json(state);
    let unchanged = run_start_text == Some(current.as_str());
    if unchanged {
        if journal_begun {
            store.discard_journal().await.map_err(|e| Diags::from(Diag::error(e.to_string())))?;
        }
        return Ok(false);
    }
    state.serial += 1;
    store.commit(state, run_start_text).await.map_err(|e| Diags::from(Diag::error(e.to_string())))?;
    Ok(true)
}

/// Lays the provider's plan-time adjustments over a re-evaluated configuration.
fn overlay_adjusted(planned: &Planned, addr: &InstanceAddr, mut config: Value) -> Value {
    if let (Some(overlay), Value::Map(map)) = (planned.adjusted.get(addr), &mut config) {
        for (k, v) in overlay {
            map.insert(k.clone(), v.clone());
        }
    }
    config
}

/// The request re-applying a listing instance `u` with `excluded` left out.
fn drain_request(
    planned: &mut Planned,
    state: &State,
    u: &InstanceAddr,
    excluded: &BTreeSet<InstanceAddr>,
    salt: &str,
) -> Result<ApplyRequest, Diags> {
    let config = planned.world.config.clone();
    let Some(resource) = config.resource(&u.resource) else {
        return Err(Diag::error(format!("{u} is no longer in the configuration")).into());
    };
    let Some(expansion) = planned.world.expansion_of(resource, u)? else {
        return Err(Diag::error(format!("{u} is no longer in the configuration")).into());
    };
    let config_value = planned.world.eval_instance_excluding(resource, &expansion, excluded)?;
    let config_value = overlay_adjusted(planned, u, config_value);
    let prior = state.resources.get(u).map(|e| Value::from_json(&e.attributes)).unwrap_or(Value::Null);
    let registry = planned.world.registry.clone();
    let (provider_name, rt) = registry.resource_type(&u.resource.rtype).expect("registered");
    let provider = registry.provider(provider_name).expect("registered");
    let value = diff_instance(rt, provider.as_ref(), Some(&prior), config_value, resource, false, salt).planned;
    let value = strip_unknown_computed(value, rt);
    let changed = changed_attributes(&prior, &value, salt);
    Ok(ApplyRequest {
        rollout: Default::default(),
        rtype: u.resource.rtype.clone(),
        addr: u.clone(),
        action: ApplyAction::Update,
        prior,
        planned: value,
        changed,
        lineage: salt.to_string(),
        token: None,
    })
}

fn describe(step: &Step, changes: &[ResourceChange], req: &ApplyRequest) -> String {
    match step.kind {
        Kind::Drain => return format!("drain {} (update)", changes[step.change].addr),
        Kind::Restore => return format!("restore {} (update)", changes[step.change].addr),
        _ => {}
    }
    match req.action {
        ApplyAction::Create => "create".into(),
        ApplyAction::Update => "update".into(),
        ApplyAction::Delete => "delete".into(),
    }
}

/// Puts step `i` (nothing left to wait for) into `ready`; a barrier is
/// passed at once instead, releasing its own dependents.
fn make_ready(
    i: usize,
    steps: &[Step],
    dependents: &[Vec<usize>],
    waiting: &mut [usize],
    skipped: &HashSet<usize>,
    ready: &mut BTreeSet<usize>,
    passed: &mut usize,
) {
    let mut stack = vec![i];
    while let Some(n) = stack.pop() {
        if steps[n].kind != Kind::Barrier {
            ready.insert(n);
            continue;
        }
        *passed += 1;
        for &d in &dependents[n] {
            waiting[d] = waiting[d].saturating_sub(1);
            if waiting[d] == 0 && !skipped.contains(&d) {
                stack.push(d);
            }
        }
    }
}

fn skip_dependents(i: usize, dependents: &[Vec<usize>], skipped: &mut HashSet<usize>) {
    let mut stack = vec![i];
    while let Some(n) = stack.pop() {
        for &d in &dependents[n] {
            if skipped.insert(d) {
                stack.push(d);
            }
        }
    }
}

/// Builds the request of a step, re-evaluating the configuration when it
/// depends on values only now known.
fn request_for(
    planned: &mut Planned,
    state: &State,
    change: &ResourceChange,
    step: &Step,
    planned_values: &BTreeMap<InstanceAddr, Value>,
    applied: &HashSet<ResourceAddr>,
    salt: &str,
) -> Result<ApplyRequest, Diags> {
    let prior_json = if step.keep_state {
        change.before.clone()
    } else {
        state.resources.get(&change.addr).map(|e| e.attributes.clone()).or(change.before.clone())
    };
    let prior = prior_json.as_ref().map(Value::from_json).unwrap_or(Value::Null);
    if step.kind == Kind::Delete {
        return Ok(ApplyRequest {
            rollout: Default::default(),
            rtype: change.rtype.clone(),
            addr: change.addr.clone(),
            action: ApplyAction::Delete,
            prior,
            planned: Value::Null,
            changed: vec![],
            lineage: salt.to_string(),
            token: None,
        });
    }
    let mut value = planned_values.get(&change.addr).cloned().unwrap_or(Value::Null);
    let resource_addr = &change.addr.resource;
    let deps_applied = change.depends_on.iter().any(|d| applied.contains(&d.resource));
    if value.has_unknown() || deps_applied {
        let config = planned.world.config.clone();
        let Some(resource) = config.resource(resource_addr) else {
            return Err(Diag::error(format!("{} is no longer in the configuration", change.addr)).into());
        };
        planned.world.refresh_ancestors(resource_addr)?;
        let expansion = planned
            .expansions
            .get(&change.addr)
            .cloned()
            .unwrap_or(super::world::Expansion { key: change.addr.key.clone(), each_value: None });
        let config_value = overlay_adjusted(planned, &change.addr, planned.world.eval_instance(resource, &expansion)?);
        let registry = planned.world.registry.clone();
        let (provider_name, rt) = registry.resource_type(&change.rtype).expect("registered");
        let provider = registry.provider(provider_name).expect("registered");
        let existing = if step.kind == Kind::Update { Some(&prior) } else { None };
        value = diff_instance(rt, provider.as_ref(), existing, config_value, resource, false, salt).planned;
    }
    let value = match planned.world.registry.resource_type(&change.rtype) {
        Some((_, rt)) => strip_unknown_computed(value, rt),
        None => value,
    };
    if value.has_unknown() {
        return Err(Diag::error(format!("{}: some values are still unknown after their dependencies were applied", change.addr)).into());
    }
    let changed = changed_attributes(&prior, &value, salt);
    let create = step.kind == Kind::Create;
    Ok(ApplyRequest {
        rollout: planned.rollouts.get(&change.addr.resource).copied().unwrap_or_default(),
        rtype: change.rtype.clone(),
        addr: change.addr.clone(),
        action: if create { ApplyAction::Create } else { ApplyAction::Update },
        prior: if create { Value::Null } else { prior },
        planned: value,
        changed,
        lineage: salt.to_string(),
        token: create.then(new_id),
    })
}

/// Computed attributes are unknown until the provider answers: send null.
fn strip_unknown_computed(value: Value, rt: &crate::provider::ResourceType) -> Value {
    let computed = |k: &str| rt.schema.attribute(k).is_some_and(|a| a.computed || a.optional_computed);
    match value {
        Value::Map(map) => {
            Value::Map(map.into_iter().map(|(k, v)| if computed(&k) && v.has_unknown() { (k, Value::Null) } else { (k, v) }).collect())
        }
        other => other,
    }
}

/// Names of the attributes whose (redacted) value differs from `prior`.
fn changed_attributes(prior: &Value, value: &Value, salt: &str) -> Vec<String> {
    match (prior, value) {
        (Value::Map(p), Value::Map(v)) => {
            v.iter().filter(|(k, nv)| p.get(*k).map(|pv| redact(pv, salt)) != Some(redact(nv, salt))).map(|(k, _)| k.clone()).collect()
        }
        _ => vec![],
    }
}

/// The pairwise ordering rules between the changes of a resource and those
/// of a resource it depends on, each carried by one barrier step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Rule {
    /// Non-update dependents wait for every create/update of the dependency.
    UpAll,
    /// Updated dependents wait for the creates/updates that do not shrink.
    UpNotShrinking,
    /// The updates of dependents, which a shrinking update and the
    /// destroys (other than destroy-then-create) of the dependency wait for.
    UpdatedDependents,
    /// The destroys of dependents, which destroys of the dependency wait for.
    DestroyedDependents,
}

/// Steps and their dependencies (indexes of steps that must finish first).
fn build_steps<'c>(changes: &'c [ResourceChange], state: &State, drains: &super::drain::Drains) -> (Vec<Step>, Vec<BTreeSet<usize>>) {
    let mut steps = Vec::new();
    let mut up: HashMap<usize, usize> = HashMap::new();
    let mut down: HashMap<usize, usize> = HashMap::new();
    let mut deps: Vec<BTreeSet<usize>> = Vec::new();
    for (ci, c) in changes.iter().enumerate() {
        let duplicate = c.reason.as_deref() == Some("delete_duplicate");
        let disruptive = c.disruption.is_some();
        match c.action {
            Action::NoOp => {}
            Action::Create => {
                up.insert(ci, steps.len());
                steps.push(Step { change: ci, subject: None, kind: Kind::Create, acquires: false, releases: false, keep_state: false });
            }
            Action::Update => {
                up.insert(ci, steps.len());
                steps.push(Step {
                    change: ci,
                    subject: None,
                    kind: Kind::Update,
                    acquires: disruptive,
                    releases: disruptive,
                    keep_state: false,
                });
            }
            Action::Delete => {
                down.insert(ci, steps.len());
                steps.push(Step { change: ci, subject: None, kind: Kind::Delete, acquires: false, releases: false, keep_state: duplicate });
            }
            Action::DeleteThenCreate => {
                down.insert(ci, steps.len());
                steps.push(Step { change: ci, subject: None, kind: Kind::Delete, acquires: true, releases: false, keep_state: false });
                up.insert(ci, steps.len());
                steps.push(Step { change: ci, subject: None, kind: Kind::Create, acquires: false, releases: true, keep_state: false });
            }
            Action::CreateThenDelete => {
                up.insert(ci, steps.len());
                steps.push(Step { change: ci, subject: None, kind: Kind::Create, acquires: true, releases: true, keep_state: false });
                down.insert(ci, steps.len());
                steps.push(Step { change: ci, subject: None, kind: Kind::Delete, acquires: false, releases: false, keep_state: true });
            }
        }
    }
    // Drains: drain → disrupt → restore, the slot held from the first drain
    // to the last restore, listing instances' own changes after the restores.
    let mut restores_of: HashMap<InstanceAddr, Vec<usize>> = HashMap::new();
    let mut extra_deps: Vec<(usize, usize)> = Vec::new();
    for (ci, listing) in drains {
        let Some(&x) = up.get(ci) else { continue };
        if listing.is_empty() {
            continue;
        }
        steps[x].acquires = false;
        steps[x].releases = false;
        let mut previous: Option<usize> = None;
        for (j, u) in listing.iter().enumerate() {
            let d = steps.len();
            steps.push(Step {
                change: *ci,
                subject: Some(u.clone()),
                kind: Kind::Drain,
                acquires: j == 0,
                releases: false,
                keep_state: false,
            });
            if let Some(p) = previous {
                extra_deps.push((d, p));
            }
            previous = Some(d);
        }
        if let Some(p) = previous {
            extra_deps.push((x, p));
        }
        let mut previous = x;
        for (j, u) in listing.iter().enumerate() {
            let r = steps.len();
            steps.push(Step {
                change: *ci,
                subject: Some(u.clone()),
                kind: Kind::Restore,
                acquires: false,
                releases: j + 1 == listing.len(),
                keep_state: false,
            });
            extra_deps.push((r, previous));
            previous = r;
            restores_of.entry(u.clone()).or_default().push(r);
        }
    }
    deps.resize_with(steps.len(), BTreeSet::new);
    for (a, b) in extra_deps {
        deps[a].insert(b);
    }
    for (ci, c) in changes.iter().enumerate() {
        if let (Some(&u), Some(rs)) = (up.get(&ci), restores_of.get(&c.addr)) {
            deps[u].extend(rs.iter().copied());
        }
    }
    // Within a replacement.
    for (ci, c) in changes.iter().enumerate() {
        if let (Some(&u), Some(&d)) = (up.get(&ci), down.get(&ci)) {
            match c.action {
                Action::DeleteThenCreate => {
                    deps[u].insert(d);
                }
                Action::CreateThenDelete => {
                    deps[d].insert(u);
                }
                _ => {}
            }
        }
    }
    // Changes by resource, and what each change depends on (by resource).
    let mut by_resource: HashMap<&ResourceAddr, Vec<usize>> = HashMap::new();
    for (ci, c) in changes.iter().enumerate() {
        by_resource.entry(&c.addr.resource).or_default().push(ci);
    }
    // Each pairwise rule below (x a change of a resource that depends on
    // resource S, y a change of S) is carried by a barrier per S and rule:
    // one edge per step instead of one per pair, the same order.
    let mut barriers: HashMap<(&ResourceAddr, Rule), usize> = HashMap::new();
    let mut barrier = |steps: &mut Vec<Step>, deps: &mut Vec<BTreeSet<usize>>, r: &'c ResourceAddr, rule: Rule| -> usize {
        *barriers.entry((r, rule)).or_insert_with(|| {
            steps.push(Step { change: 0, subject: None, kind: Kind::Barrier, acquires: false, releases: false, keep_state: false });
            deps.push(BTreeSet::new());
            steps.len() - 1
        })
    };
    for (ci, c) in changes.iter().enumerate() {
        let mut dep_resources: BTreeSet<&ResourceAddr> = c.depends_on.iter().map(|a| &a.resource).collect();
        let from_state: Vec<ResourceAddr> = state
            .resources
            .get(&c.addr)
            .map(|entry| entry.dependencies.iter().filter_map(|d| d.to_string().parse::<InstanceAddr>().ok()).map(|a| a.resource).collect())
            .unwrap_or_default();
        let from_state: Vec<&ResourceAddr> = from_state.iter().filter_map(|r| by_resource.get_key_value(r).map(|(k, _)| *k)).collect();
        dep_resources.extend(from_state);
        dep_resources.remove(&c.addr.resource);
        for r in dep_resources {
            if !by_resource.contains_key(r) {
                continue;
            }
            // Create/update after what it depends on is created/updated;
            // but a dependency that only sheds members (scale-down) goes
            // after its dependents stopped listing them.
            if let Some(&xu) = up.get(&ci) {
                let rule = if c.action == Action::Update { Rule::UpNotShrinking } else { Rule::UpAll };
                let b = barrier(&mut steps, &mut deps, r, rule);
                deps[xu].insert(b);
                if c.action == Action::Update {
                    let b = barrier(&mut steps, &mut deps, r, Rule::UpdatedDependents);
                    deps[b].insert(xu);
                }
            }
            // A dependency is destroyed only after its dependents were
            // destroyed, or updated when they stay.
            if let Some(&xd) = down.get(&ci) {
                let b = barrier(&mut steps, &mut deps, r, Rule::DestroyedDependents);
                deps[b].insert(xd);
            }
        }
    }
    for (&(r, rule), &b) in &barriers {
        for &yi in by_resource.get(r).map(Vec::as_slice).unwrap_or(&[]) {
            let y = &changes[yi];
            if y.reason.as_deref() == Some("delete_duplicate") {
                continue;
            }
            match rule {
                Rule::UpAll => {
                    if let Some(&yu) = up.get(&yi) {
                        deps[b].insert(yu);
                    }
                }
                Rule::UpNotShrinking => {
                    if let (Some(&yu), false) = (up.get(&yi), y.shrinks) {
                        deps[b].insert(yu);
                    }
                }
                Rule::UpdatedDependents => {
                    if let (Some(&yu), true) = (up.get(&yi), y.shrinks) {
                        deps[yu].insert(b);
                    }
                    // A dependency that is replaced (destroy, then create)
                    // must exist again before the dependent's update can
                    // use its new values: ordering the destroy after that
                    // update would be a cycle.
                    if let (Some(&yd), false) = (down.get(&yi), y.action == Action::DeleteThenCreate) {
                        deps[yd].insert(b);
                    }
                }
                Rule::DestroyedDependents => {
                    if let Some(&yd) = down.get(&yi) {
                        deps[yd].insert(b);
                    }
                }
            }
        }
    }
    (steps, deps)
}
