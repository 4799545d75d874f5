//! Running the step graph: steps start when what they wait for finished,
//! at most `parallelism` at once, at most `max_unavailable` disruptive
//! steps per resource (the slot is taken by a group's first step and given
//! back by its last), one drain/restore at a time per listing instance.
//! Completions are collected in groups so they share one journal fsync.

use super::Applier;
use super::steps::{Kind, Step, StepGraph};
use crate::addr::{InstanceAddr, ResourceAddr};
use crate::diag::{Diag, Diags};
use crate::engine::gate::{self, Gate};
use crate::engine::{Event, provider_error, with_retries};
use crate::provider::{ApplyAction, ApplyRequest, DrainRequest, ProviderError};
use crate::state::ResourceState;
use crate::state::journal::JournalEntry;
use crate::value::Value;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::time::{Duration, Instant};

/// Where every step of the graph stands.
struct Schedule {
    graph: StepGraph,
    dependents: Vec<Vec<usize>>,
    /// Per step: how many of its dependencies have not finished.
    waiting: Vec<usize>,
    ready: BTreeSet<usize>,
    skipped: HashSet<usize>,
    /// Barriers passed; they count as attempted steps.
    passed: usize,
    /// Steps taken off the ready set (sent, or failed to build a request).
    attempted: usize,
    /// Rollout slots taken per resource.
    in_flight: HashMap<ResourceAddr, usize>,
    /// Listing instances with a drain/restore running (one at a time each).
    busy: HashSet<InstanceAddr>,
}

impl Schedule {
    fn new(graph: StepGraph) -> Schedule {
        let n = graph.steps.len();
        let mut dependents: Vec<Vec<usize>> = vec![Vec::new(); n];
        let mut waiting = vec![0; n];
        for (i, ds) in graph.deps.iter().enumerate() {
            waiting[i] = ds.len();
            for d in ds {
                dependents[*d].push(i);
            }
        }
        let mut schedule = Schedule {
            graph,
            dependents,
            waiting,
            ready: BTreeSet::new(),
            skipped: HashSet::new(),
            passed: 0,
            attempted: 0,
            in_flight: HashMap::new(),
            busy: HashSet::new(),
        };
        for i in (0..n).filter(|i| schedule.waiting[*i] == 0).collect::<Vec<_>>() {
            schedule.make_ready(i);
        }
        schedule
    }

    fn step(&self, i: usize) -> &Step {
        &self.graph.steps[i]
    }

    /// Puts step `i` (nothing left to wait for) into `ready`; a barrier is
    /// passed at once instead, releasing its own dependents.
    fn make_ready(&mut self, i: usize) {
        let mut stack = vec![i];
        while let Some(n) = stack.pop() {
            if self.graph.steps[n].kind != Kind::Barrier {
                self.ready.insert(n);
                continue;
            }
            self.passed += 1;
            for &d in &self.dependents[n] {
                self.waiting[d] = self.waiting[d].saturating_sub(1);
                if self.waiting[d] == 0 && !self.skipped.contains(&d) {
                    stack.push(d);
                }
            }
        }
    }

    /// Step `i` finished: its dependents may become ready.
    fn finished(&mut self, i: usize) {
        for k in 0..self.dependents[i].len() {
            let d = self.dependents[i][k];
            self.waiting[d] = self.waiting[d].saturating_sub(1);
            if self.waiting[d] == 0 && !self.skipped.contains(&d) {
                self.make_ready(d);
            }
        }
    }

    /// Step `i` failed: nothing that waits for it will start, except a
    /// restore that runs after a failed disruption (its own drain done): it
    /// counts the failed or skipped steps as finished.
    fn skip_dependents(&mut self, i: usize) {
        let mut stack = vec![i];
        while let Some(n) = stack.pop() {
            for k in 0..self.dependents[n].len() {
                let d = self.dependents[n][k];
                if self.skipped.contains(&d) {
                    continue;
                }
                let own_drain = self.graph.steps[n].kind == Kind::Drain;
                if self.graph.steps[d].after_failure && !own_drain {
                    self.waiting[d] = self.waiting[d].saturating_sub(1);
                    if self.waiting[d] == 0 {
                        self.make_ready(d);
                    }
                } else if self.skipped.insert(d) {
                    stack.push(d);
                }
            }
        }
    }

    /// The first startable steps in order, at most `room`; a disruptive
    /// step whose resource is at its rollout limit waits in `ready`.
    fn pick(&self, room: usize, resource_of: impl Fn(&Step) -> (ResourceAddr, usize)) -> Vec<usize> {
        let mut picked: Vec<usize> = Vec::new();
        let mut planned_slots: HashMap<ResourceAddr, usize> = HashMap::new();
        for &i in self.ready.iter() {
            if picked.len() >= room {
                break;
            }
            let step = self.step(i);
            if step
                .subject
                .as_ref()
                .is_some_and(|u| self.busy.contains(u) || picked.iter().any(|p| self.step(*p).subject.as_ref() == Some(u)))
            {
                continue;
            }
            if step.acquires {
                let (resource, limit) = resource_of(step);
                let taken = self.in_flight.get(&resource).copied().unwrap_or(0);
                let taken = planned_slots.entry(resource).or_insert(taken);
                if *taken >= limit {
                    continue;
                }
                *taken += 1;
            }
            picked.push(i);
        }
        picked
    }

    /// Gives back the rollout slot of `resource`.
    fn release(&mut self, resource: &ResourceAddr) {
        if let Some(n) = self.in_flight.get_mut(resource) {
            *n = n.saturating_sub(1);
        }
    }

    /// Steps that neither ran, failed nor were skipped: only a cycle leaves any.
    fn stuck(&self) -> usize {
        self.graph.steps.len().saturating_sub(self.attempted + self.passed + self.skipped.len())
    }
}

/// What a step sends: a create/update/delete, or a listing's drain/restore.
enum Call {
    Apply(ApplyRequest),
    Drain(DrainRequest),
    /// A member's health gate; the request names the member as state holds it.
    Gate(ApplyRequest, Box<Gate>),
}

impl Call {
    /// The request itself (a drain's is its listing's).
    fn request(&self) -> &ApplyRequest {
        match self {
            Call::Apply(r) | Call::Gate(r, _) => r,
            Call::Drain(d) => &d.request,
        }
    }
}

/// What a running step hands back.
type Finished = (usize, ApplyRequest, Result<Value, ProviderError>, Duration);

impl Applier<'_> {
    /// Runs the step graph to its end (or cancellation) and reports what
    /// did not run.
    pub(super) async fn run(&mut self) -> Result<(), Diags> {
        let mut schedule = Schedule::new(StepGraph::build(&self.items, &self.state));
        let mut running = tokio::task::JoinSet::new();
        // Lines from gates while they wait, shown as they come.
        let (waiting_tx, mut waiting) = tokio::sync::mpsc::unbounded_channel::<String>();
        let parallelism = self.options.parallelism.max(1);
        loop {
            let starting =
                if self.cancelled() { Vec::new() } else { self.start_ready(&mut schedule, parallelism.saturating_sub(running.len())) };
            if !starting.is_empty() {
                self.journal_intents(starting.iter().map(|(_, call)| call.request())).await?;
                for (i, call) in starting {
                    let req = call.request().clone();
                    let Some((provider_name, _)) = self.registry.resource_type(&req.rtype) else { continue };
                    let provider = self.registry.provider(provider_name).expect("registered").clone();
                    let what = self.describe(schedule.step(i), &req);
                    self.hooks.event(Event::ActionStarted { addr: req.addr.clone(), what: what.clone() });
                    let waiting_tx = waiting_tx.clone();
                    running.spawn(async move {
                        let started = Instant::now();
                        let result = match call {
                            Call::Drain(d) => with_retries(|| provider.drain(d.clone()), &crate::engine::NoHooks, &what).await,
                            Call::Apply(r) => with_retries(|| provider.apply(r.clone()), &crate::engine::NoHooks, &what).await,
                            Call::Gate(r, g) => {
                                let progress = move |line: String| drop(waiting_tx.send(line));
                                gate::wait(&g, provider.as_ref(), &r.rtype, &r.prior, &progress)
                                    .await
                                    .map(Value::String)
                                    .map_err(ProviderError::other)
                            }
                        };
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
            loop {
                tokio::select! {
                    joined = running.join_next() => {
                        done.extend(joined);
                        break;
                    }
                    Some(line) = waiting.recv() => self.hooks.event(Event::Note(line)),
                }
            }
            while let Some(joined) = running.try_join_next() {
                done.push(joined);
            }
            let mut finished = Vec::new();
            for joined in done {
                match joined {
                    Ok(x) => finished.push(x),
                    Err(e) => self.errors.push(Diag::error(format!("an apply task failed: {e}"))),
                }
            }
            self.complete(&mut schedule, finished).await?;
        }
        self.report_unfinished(&schedule);
        Ok(())
    }

    /// Takes the startable steps off the ready set and builds their requests.
    fn start_ready(&mut self, schedule: &mut Schedule, room: usize) -> Vec<(usize, Call)> {
        let items = &self.items;
        let picked = schedule.pick(room, |step| {
            let item = &items[step.item];
            (item.change.addr.resource.clone(), item.record.as_ref().map(|r| r.rollout.limit()).unwrap_or(1))
        });
        let mut starting = Vec::new();
        for i in picked {
            schedule.ready.remove(&i);
            schedule.attempted += 1;
            let step = schedule.step(i);
            let (kind, subject, acquires, item) = (step.kind, step.subject.clone(), step.acquires, step.item);
            let addr = self.items[item].change.addr.clone();
            let request = match (&subject, kind) {
                (Some(u), Kind::Drain | Kind::Restore) => {
                    schedule.busy.insert(u.clone());
                    self.drain_request(schedule.step(i), kind == Kind::Restore).map(Call::Drain)
                }
                (_, Kind::Gate) => self.gate_request(schedule.step(i)).map(|(r, g)| Call::Gate(r, Box::new(g))),
                _ => self.request_for(item, schedule.step(i)).map(Call::Apply),
            };
            match request {
                Ok(req) => {
                    if acquires {
                        *schedule.in_flight.entry(addr.resource.clone()).or_default() += 1;
                    }
                    starting.push((i, req));
                }
                Err(d) => {
                    self.errors.extend(d);
                    schedule.skip_dependents(i);
                }
            }
        }
        starting
    }

    /// Records finished steps: journal first (one group commit), then state,
    /// world and the dependents.
    async fn complete(&mut self, schedule: &mut Schedule, done: Vec<Finished>) -> Result<(), Diags> {
        let mut entries = Vec::new();
        let mut finished = Vec::new();
        for (i, req, result, elapsed) in done {
            let step = schedule.step(i);
            let (kind, releases, acquires, keep_state, item) = (step.kind, step.releases, step.acquires, step.keep_state, step.item);
            if let Some(u) = &step.subject {
                let u = u.clone();
                schedule.busy.remove(&u);
            }
            let resource = self.items[item].change.addr.resource.clone();
            // A drain's result is its listing's.
            let owner = if matches!(kind, Kind::Drain | Kind::Restore) { req.addr.resource.clone() } else { resource.clone() };
            if releases {
                schedule.release(&resource);
            }
            let what = self.describe(schedule.step(i), &req);
            match result {
                Ok(value) => {
                    self.hooks.event(Event::ActionFinished { addr: req.addr.clone(), what, elapsed });
                    match kind {
                        Kind::Create | Kind::Update | Kind::Drain | Kind::Restore => {
                            let entry = self.entry_for(&owner, &req, &value);
                            entries.push(JournalEntry::Set {
                                address: req.addr.clone(),
                                resource: entry.clone(),
                                token: req.token.clone(),
                            });
                            finished.push((i, Some((req.addr.clone(), entry, Some(value)))));
                        }
                        // Passed: a mark of an earlier failure is cleared.
                        Kind::Gate => {
                            if let Some(entry) = self.state.resources.get(&req.addr).filter(|e| e.unhealthy.is_some()) {
                                let entry = ResourceState { unhealthy: None, ..entry.clone() };
                                entries.push(JournalEntry::Set { address: req.addr.clone(), resource: entry.clone(), token: None });
                                finished.push((i, Some((req.addr.clone(), entry, None))));
                            } else {
                                schedule.finished(i);
                            }
                        }
                        // Barriers are passed, never sent (see make_ready).
                        Kind::Barrier => {}
                        Kind::Delete => {
                            if !keep_state {
                                entries.push(JournalEntry::Remove { address: req.addr.clone() });
                            }
                            finished.push((i, None));
                        }
                    }
                }
                Err(e) => {
                    let diag = provider_error(&format!("{} {}", what, req.addr), &e)
                        .at_opt(self.world.config.resource(&owner).map(|r| r.location.clone()));
                    self.hooks.event(Event::ActionFailed { addr: req.addr.clone(), what, error: e.to_string() });
                    self.errors.push(diag);
                    if kind == Kind::Gate
                        && let Some(entry) = self.state.resources.get_mut(&req.addr)
                    {
                        entry.unhealthy = Some(e.message().to_string());
                        entries.push(JournalEntry::Set { address: req.addr.clone(), resource: entry.clone(), token: None });
                    }
                    schedule.skip_dependents(i);
                    // A replacement whose delete failed never reaches its create.
                    if acquires && !releases {
                        schedule.release(&resource);
                    }
                }
            }
        }
        self.append_journal(&entries).await?;
        for (i, result) in finished {
            let step = schedule.step(i);
            let change = &self.items[step.item].change;
            if !matches!(step.kind, Kind::Drain | Kind::Restore | Kind::Gate) {
                self.completed += 1;
                self.applied_resources.insert(change.addr.resource.clone());
            }
            match result {
                Some((addr, entry, value)) => {
                    self.state.resources.insert(addr.clone(), entry);
                    if let Some(value) = value {
                        self.world.set_instance(&addr, value);
                    }
                }
                None if !step.keep_state => {
                    self.state.resources.remove(&change.addr);
                }
                None => {}
            }
            schedule.finished(i);
        }
        Ok(())
    }

    /// Errors for what did not run: a cycle, a cancellation, skipped steps.
    fn report_unfinished(&mut self, schedule: &Schedule) {
        let cancelled = self.cancelled();
        let stuck = schedule.stuck();
        if !cancelled && stuck > 0 {
            // Every step either ran, failed or was skipped, unless the step
            // graph had a cycle: never report such a run as a success.
            self.errors.push(Diag::error(format!("{stuck} action(s) could not be ordered and were not started")).with_detail(
                "The apply steps depend on each other in a cycle; this is a bug in himaplan. Nothing else was skipped; run plan to see what remains.",
            ));
        }
        if cancelled {
            self.errors.push(
                Diag::error("Apply interrupted")
                    .with_detail("Running actions finished and were recorded; run apply again to carry out the rest."),
            );
        } else if !schedule.skipped.is_empty() && self.errors.has_errors() {
            self.errors
                .push(Diag::error(format!("{} dependent action(s) were not started because of the errors above", schedule.skipped.len())));
        }
    }

    /// What a step does, for progress lines and errors.
    fn describe(&self, step: &Step, req: &ApplyRequest) -> String {
        match step.kind {
            Kind::Gate => return "health check".to_string(),
            Kind::Drain | Kind::Restore => {
                let record = self.items[step.item].record.as_ref();
                let batch = record.and_then(|r| r.batches.get(step.batch));
                let names: Vec<String> = match batch {
                    Some(b) if !b.parts.is_empty() => b.parts.iter().map(|p| p.name.clone()).collect(),
                    Some(b) => b.members.iter().map(|m| m.to_string()).collect(),
                    None => Vec::new(),
                };
                let verb = if step.kind == Kind::Drain { "drain" } else { "restore" };
                return format!("{verb} {}", names.join(", "));
            }
            _ => {}
        }
        match req.action {
            ApplyAction::Create => "create".into(),
            ApplyAction::Update => "update".into(),
            ApplyAction::Delete => "delete".into(),
        }
    }
}
