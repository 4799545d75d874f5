//! The apply step graph, built from the plan (never the configuration) by
//! an ordered list of small named builders, as OpenTofu's graph builders
//! do:
//! 1. [`StepGraph::action_steps`] — one step per create/update/delete,
//!    replacements as two steps holding one rollout slot between them;
//! 2. [`StepGraph::rollout_groups`] — per rollout batch of the plan, its
//!    group: drain → disrupt → health gate → restore, batch after batch;
//! 3. [`StepGraph::replacement_order`] — delete/create order within a
//!    replacement;
//! 4. [`StepGraph::dependency_order`] — between resources, through one
//!    barrier step per (dependency, rule) instead of an edge per pair.
//!
//! No I/O; the steps refer to the apply's items by index.

use super::Item;
use crate::addr::{InstanceAddr, ResourceAddr};
use crate::engine::drain::Batch;
use crate::plan::{Action, ChangeReason};
use crate::state::State;
use std::collections::{BTreeSet, HashMap};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Create,
    Update,
    Delete,
    /// Drain the batch's members out of the listing `subject`.
    Drain,
    /// Put them back.
    Restore,
    /// Wait for the member's health check (`gate` of the item's batch).
    Gate,
    /// No action: joins the steps of one resource so that the steps of
    /// another can wait for all of them through one edge each (pairwise
    /// edges between two counted resources are quadratic). Never sent;
    /// passed as soon as what it waits for has finished.
    Barrier,
}

#[derive(Debug)]
pub(super) struct Step {
    /// The item (change and its record) the step belongs to.
    pub item: usize,
    pub kind: Kind,
    /// For drain/restore: the listing instance.
    pub subject: Option<InstanceAddr>,
    /// For drain/restore: which of the batch's drains (the batch is the
    /// item's record's).
    pub drain: Option<usize>,
    /// For a gate: which of the batch's gates.
    pub gate: Option<usize>,
    /// Which of the item's batches the step belongs to.
    pub batch: usize,
    /// An update that disrupts only the pieces of its batch.
    pub part: bool,
    /// A restore that runs even when the disruption failed (its drain
    /// succeeded): PgBouncer resumes rather than leaving clients waiting.
    pub after_failure: bool,
    /// Takes one of its resource's rollout slots (`max_unavailable`) when it
    /// starts; the step disrupts the object.
    pub acquires: bool,
    /// Gives the slot back when it ends. A replacement's delete acquires
    /// and its create releases, so the slot is held while the object is down.
    pub releases: bool,
    /// Delete of an object that is not (or no longer) the one in state.
    pub keep_state: bool,
}

impl Step {
    fn new(item: usize, kind: Kind) -> Step {
        Step {
            item,
            kind,
            subject: None,
            batch: 0,
            part: false,
            drain: None,
            gate: None,
            after_failure: false,
            acquires: false,
            releases: false,
            keep_state: false,
        }
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

/// Steps and, per step, the steps that must finish first.
#[derive(Default)]
pub(super) struct StepGraph {
    pub steps: Vec<Step>,
    pub deps: Vec<BTreeSet<usize>>,
    /// Per item: its create/update step.
    up: HashMap<usize, usize>,
    /// Per item rolled piece by piece: its last update step (what depends
    /// on the item waits for it).
    up_last: HashMap<usize, usize>,
    /// Per item: its delete step.
    down: HashMap<usize, usize>,
}

impl StepGraph {
    /// Builds the whole graph of `items` on top of `state`.
    pub fn build(items: &[Item], state: &State) -> StepGraph {
        let mut g = StepGraph::default();
        g.action_steps(items);
        g.rollout_groups(items);
        g.creation_gates(items);
        g.replacement_order(items);
        g.dependency_order(items, state);
        g
    }

    fn push(&mut self, step: Step) -> usize {
        self.steps.push(step);
        self.deps.push(BTreeSet::new());
        self.steps.len() - 1
    }

    /// One step per action; a replacement is two, holding one slot.
    fn action_steps(&mut self, items: &[Item]) {
        for (ci, item) in items.iter().enumerate() {
            let c = &item.change;
            let disruptive = c.disruption.is_some();
            match c.action {
                Action::NoOp => {}
                Action::Create => {
                    let s = self.push(Step::new(ci, Kind::Create));
                    self.up.insert(ci, s);
                }
                // Gated again only: nothing is sent (a barrier passes at once).
                Action::Update if c.reason == Some(ChangeReason::GateAgain) => {
                    let s = self.push(Step::new(ci, Kind::Barrier));
                    self.up.insert(ci, s);
                }
                Action::Update => {
                    let s = self.push(Step { acquires: disruptive, releases: disruptive, ..Step::new(ci, Kind::Update) });
                    self.up.insert(ci, s);
                }
                Action::Delete => {
                    let s = self.push(Step { keep_state: c.is_duplicate_delete(), ..Step::new(ci, Kind::Delete) });
                    self.down.insert(ci, s);
                }
                Action::DeleteThenCreate => {
                    let d = self.push(Step { acquires: true, ..Step::new(ci, Kind::Delete) });
                    self.down.insert(ci, d);
                    let u = self.push(Step { releases: true, ..Step::new(ci, Kind::Create) });
                    self.up.insert(ci, u);
                }
                Action::CreateThenDelete => {
                    let u = self.push(Step { acquires: true, releases: true, ..Step::new(ci, Kind::Create) });
                    self.up.insert(ci, u);
                    let d = self.push(Step { keep_state: true, ..Step::new(ci, Kind::Delete) });
                    self.down.insert(ci, d);
                }
            }
        }
    }

    /// The group of each rollout batch the plan made: drain every listing
    /// → disrupt every member → restore every listing, the next batch of
    /// the resource after the whole group (a failed member stops the
    /// rollout); the listing instances' own changes after their restores.
    /// A batch's size is its limit, so its steps take no rollout slots.
    fn rollout_groups(&mut self, items: &[Item]) {
        // Each batch with its members: (item, index of the batch in the item's record).
        let mut groups: Vec<(&Batch, Vec<(usize, usize)>)> = Vec::new();
        for (ci, item) in items.iter().enumerate() {
            let Some(record) = item.record.as_ref().filter(|_| self.up.contains_key(&ci)) else { continue };
            for (bi, batch) in record.batches.iter().enumerate() {
                match groups.iter_mut().find(|(b, _)| std::ptr::eq(*b, batch.as_ref())) {
                    Some((_, members)) => members.push((ci, bi)),
                    None => groups.push((batch.as_ref(), vec![(ci, bi)])),
                }
            }
        }
        groups.sort_by(|(a, _), (b, _)| (&a.sequence, a.number).cmp(&(&b.sequence, b.number)));
        let mut restores_of: HashMap<InstanceAddr, Vec<usize>> = HashMap::new();
        let mut previous: HashMap<&str, Vec<usize>> = HashMap::new();
        for (batch, members) in groups {
            let before = previous.remove(batch.sequence.as_str()).unwrap_or_default();
            let (first, bi) = members[0];
            let step = |kind| Step { batch: bi, ..Step::new(first, kind) };
            let disrupts: Vec<usize> = members.iter().map(|&(ci, bi)| self.disrupt_step(ci, bi, !batch.parts.is_empty())).collect();
            let mut drains = Vec::new();
            for (di, d) in batch.drains.iter().enumerate() {
                let s = self.push(Step { subject: Some(d.listing.clone()), drain: Some(di), ..step(Kind::Drain) });
                self.deps[s].extend(before.iter().copied());
                drains.push(s);
            }
            for &x in &disrupts {
                self.steps[x].acquires = false;
                self.steps[x].releases = false;
                self.deps[x].extend(before.iter().chain(&drains).copied());
            }
            let mut gates = Vec::new();
            for (gi, g) in batch.gates.iter().enumerate() {
                let Some(&(ci, bi)) = members.iter().find(|&&(ci, _)| items[ci].change.addr == g.member) else { continue };
                let s = self.push(Step { gate: Some(gi), batch: bi, ..Step::new(ci, Kind::Gate) });
                let x = disrupts[members.iter().position(|m| *m == (ci, bi)).unwrap_or(0)];
                self.deps[s].insert(x);
                gates.push(s);
            }
            let mut end: Vec<usize> = disrupts.iter().chain(&gates).copied().collect();
            for (di, d) in batch.drains.iter().enumerate() {
                let r = self.push(Step {
                    subject: Some(d.listing.clone()),
                    drain: Some(di),
                    after_failure: d.plan.restore_after_failure,
                    ..step(Kind::Restore)
                });
                self.deps[r].insert(drains[di]);
                self.deps[r].extend(disrupts.iter().chain(&gates).copied());
                restores_of.entry(d.listing.clone()).or_default().push(r);
                end.push(r);
            }
            previous.insert(batch.sequence.as_str(), end);
        }
        for (ci, item) in items.iter().enumerate() {
            if let (Some(&u), Some(rs)) = (self.up.get(&ci), restores_of.get(&item.change.addr)) {
                self.deps[u].extend(rs.iter().copied());
            }
        }
    }

    /// The step disrupting item `ci` in its batch `bi`: its update step, or
    /// for an object rolled piece by piece one update step per batch (the
    /// first is the item's update step; later ones wait for it through the
    /// batch order, and what depends on the item waits for the last).
    fn disrupt_step(&mut self, ci: usize, bi: usize, piecewise: bool) -> usize {
        let first = self.up[&ci];
        if !piecewise {
            return first;
        }
        if bi == 0 {
            self.steps[first].part = true;
            return first;
        }
        let s = self.push(Step { batch: bi, part: true, ..Step::new(ci, Kind::Update) });
        self.up_last.insert(ci, s);
        s
    }

    /// A created member's health gate, after its create; what depends on
    /// the member (a listing's update) waits for the gate.
    fn creation_gates(&mut self, items: &[Item]) {
        for (ci, item) in items.iter().enumerate() {
            let (Some(&up), Some(_)) = (self.up.get(&ci), item.record.as_ref().and_then(|r| r.create_gate.as_ref())) else { continue };
            let g = self.push(Step::new(ci, Kind::Gate));
            self.deps[g].insert(up);
            self.up_last.insert(ci, g);
        }
    }

    /// Within a replacement: destroy first, or create first.
    fn replacement_order(&mut self, items: &[Item]) {
        for (ci, item) in items.iter().enumerate() {
            if let (Some(&u), Some(&d)) = (self.up.get(&ci), self.down.get(&ci)) {
                match item.change.action {
                    Action::DeleteThenCreate => {
                        self.deps[u].insert(d);
                    }
                    Action::CreateThenDelete => {
                        self.deps[d].insert(u);
                    }
                    _ => {}
                }
            }
        }
    }

    /// Orders the changes of each resource against those of the resources
    /// it depends on (after the change, per the plan, or before it, per
    /// state). Each pairwise rule (x a change of a resource that depends on
    /// resource S, y a change of S) is carried by a barrier per S and rule:
    /// one edge per step instead of one per pair, the same order.
    fn dependency_order(&mut self, items: &[Item], state: &State) {
        let mut by_resource: HashMap<&ResourceAddr, Vec<usize>> = HashMap::new();
        for (ci, item) in items.iter().enumerate() {
            by_resource.entry(&item.change.addr.resource).or_default().push(ci);
        }
        let mut barriers: HashMap<(&ResourceAddr, Rule), usize> = HashMap::new();
        for (ci, item) in items.iter().enumerate() {
            let c = &item.change;
            let mut dep_resources: BTreeSet<&ResourceAddr> = c.depends_on.iter().map(|a| &a.resource).collect();
            if let Some(entry) = state.resources.get(&c.addr) {
                dep_resources.extend(entry.dependencies.iter().filter_map(|r| by_resource.get_key_value(r.as_ref()).map(|(k, _)| *k)));
            }
            dep_resources.remove(&c.addr.resource);
            for r in dep_resources {
                if !by_resource.contains_key(r) {
                    continue;
                }
                // Create/update after what it depends on is created/updated;
                // but a dependency that only sheds members (scale-down) goes
                // after its dependents stopped listing them.
                if let Some(&xu) = self.up.get(&ci) {
                    let rule = if c.action == Action::Update { Rule::UpNotShrinking } else { Rule::UpAll };
                    let b = self.barrier(&mut barriers, r, rule);
                    self.deps[xu].insert(b);
                    if c.action == Action::Update {
                        let b = self.barrier(&mut barriers, r, Rule::UpdatedDependents);
                        self.deps[b].insert(self.up_last.get(&ci).copied().unwrap_or(xu));
                    }
                }
                // A dependency is destroyed only after its dependents were
                // destroyed, or updated when they stay.
                if let Some(&xd) = self.down.get(&ci) {
                    let b = self.barrier(&mut barriers, r, Rule::DestroyedDependents);
                    self.deps[b].insert(xd);
                }
            }
        }
        for (&(r, rule), &b) in &barriers {
            for &yi in by_resource.get(r).map(Vec::as_slice).unwrap_or(&[]) {
                let y = &items[yi].change;
                if y.is_duplicate_delete() {
                    continue;
                }
                let (yu, yd) = (self.up.get(&yi).copied(), self.down.get(&yi).copied());
                // What waits for y's update waits for its last piece.
                let yu_last = self.up_last.get(&yi).copied().or(yu);
                match rule {
                    Rule::UpAll => {
                        if let Some(yu) = yu_last {
                            self.deps[b].insert(yu);
                        }
                    }
                    Rule::UpNotShrinking => {
                        if let (Some(yu), false) = (yu_last, y.shrinks) {
                            self.deps[b].insert(yu);
                        }
                    }
                    Rule::UpdatedDependents => {
                        if let (Some(yu), true) = (yu, y.shrinks) {
                            self.deps[yu].insert(b);
                        }
                        // A dependency that is replaced (destroy, then create)
                        // must exist again before the dependent's update can
                        // use its new values: ordering the destroy after that
                        // update would be a cycle.
                        if let (Some(yd), false) = (yd, y.action == Action::DeleteThenCreate) {
                            self.deps[yd].insert(b);
                        }
                    }
                    Rule::DestroyedDependents => {
                        if let Some(yd) = yd {
                            self.deps[yd].insert(b);
                        }
                    }
                }
            }
        }
    }

    /// The barrier of dependency `r` and `rule`, made on first use.
    fn barrier<'c>(&mut self, barriers: &mut HashMap<(&'c ResourceAddr, Rule), usize>, r: &'c ResourceAddr, rule: Rule) -> usize {
        if let Some(&b) = barriers.get(&(r, rule)) {
            return b;
        }
        let b = self.push(Step::new(0, Kind::Barrier));
        barriers.insert((r, rule), b);
        b
    }
}
