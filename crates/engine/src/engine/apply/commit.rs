//! What apply writes: journal entries (the run's begin, create intents
//! before their creates, completions in group commits), the objects of
//! `import` blocks, the outputs from final values, and the canonical state
//! once at the end, only when it changed.

use super::Applier;
use crate::addr::ResourceAddr;
use crate::diag::{Diag, Diags};
use crate::engine::plan::imports::import_entry;
use crate::engine::{NoHooks, provider_error, with_retries};
use crate::graph::Node;
use crate::provider::{ApplyAction, ApplyRequest};
use crate::state::journal::JournalEntry;
use crate::state::{OutputState, ResourceState, State, StateStore, redact_for_state};
use crate::value::Value;
use std::collections::BTreeMap;
use std::sync::Arc;

impl Applier<'_> {
    /// Appends `entries` to the journal, opening the run's journal first.
    pub(super) async fn append_journal(&mut self, entries: &[JournalEntry]) -> Result<(), Diags> {
        if entries.is_empty() && self.journal_begun {
            return Ok(());
        }
        let mut all = Vec::with_capacity(entries.len() + 1);
        if !self.journal_begun {
            all.push(JournalEntry::Begin { serial: self.state.serial, lineage: self.state.lineage.clone() });
        }
        all.extend_from_slice(entries);
        self.store.append_journal(&all).await.map_err(|e| Diags::from(Diag::error(e.to_string())))?;
        self.journal_begun = true;
        Ok(())
    }

    /// Journals the intents of the creates about to be sent, durably,
    /// before they are sent.
    pub(super) async fn journal_intents<'r>(&mut self, starting: impl Iterator<Item = &'r ApplyRequest>) -> Result<(), Diags> {
        let intents: Vec<JournalEntry> = starting
            .filter_map(|req| match (req.action, &req.token) {
                (ApplyAction::Create, Some(token)) => {
                    Some(JournalEntry::Intent { address: req.addr.clone(), rtype: req.rtype.clone(), token: token.clone() })
                }
                _ => None,
            })
            .collect();
        self.append_journal(&intents).await
    }

    /// Imports first: label the objects of `import` blocks and record them.
    pub(super) async fn import_objects(&mut self) -> Result<(), Diags> {
        if self.imports.is_empty() {
            return Ok(());
        }
        let mut entries = Vec::new();
        for (addr, id) in std::mem::take(&mut self.imports) {
            match import_entry(&self.registry, &addr, &id, &self.salt).await {
                Some(Ok(entry)) => {
                    entries.push(JournalEntry::Set { address: addr.clone(), resource: entry.clone(), token: None });
                    self.state.resources.insert(addr, entry);
                }
                Some(Err(e)) => self.errors.push(provider_error(&format!("importing {id} into {addr}"), &e)),
                None => {}
            }
        }
        // An import run always opens the journal, even when every import failed.
        self.append_journal(&entries).await
    }

    /// Relabels the objects `moved` blocks moved (their state entries are
    /// already at the new address), each journalled as it completes.
    pub(super) async fn relabel_objects(&mut self) -> Result<(), Diags> {
        if self.relabels.is_empty() {
            return Ok(());
        }
        let mut entries = Vec::new();
        for (from, to) in std::mem::take(&mut self.relabels) {
            let Some(entry) = self.state.resources.get(&to).cloned() else { continue };
            let Some(provider) = self.registry.resource_type(&entry.rtype).and_then(|(p, _)| self.registry.provider(p)).cloned() else {
                continue;
            };
            let req = ApplyRequest {
                rollout: Default::default(),
                rtype: entry.rtype.clone(),
                addr: to.clone(),
                action: ApplyAction::Update,
                prior: entry.attributes.value(),
                planned: entry.attributes.value(),
                changed: Vec::new(),
                lineage: self.salt.clone(),
                token: None,
                part: None,
            };
            let what = format!("relabel {from} as {to}");
            match with_retries(|| provider.relabel(req.clone()), &NoHooks, &what).await {
                Ok(value) => {
                    let resource = to.resource.clone();
                    let entry = self.entry_for(&resource, &req, &value);
                    entries.push(JournalEntry::Set { address: to.clone(), resource: entry.clone(), token: None });
                    self.state.resources.insert(to.clone(), entry);
                    self.world.set_instance(&to, value);
                    self.completed += 1;
                }
                Err(e) => self.errors.push(provider_error(&what, &e)),
            }
        }
        self.append_journal(&entries).await
    }

    /// The state entry of an object a step created or updated.
    pub(super) fn entry_for(&mut self, resource: &ResourceAddr, req: &ApplyRequest, value: &Value) -> ResourceState {
        let graph = &self.world.graph;
        let dependencies = self
            .dependencies
            .entry(resource.clone())
            .or_insert_with(|| graph.resource_deps(&Node::Resource(resource.clone())).into_iter().map(Arc::new).collect())
            .clone();
        let (provider_name, rt) = self.registry.resource_type(&req.rtype).expect("registered");
        ResourceState {
            rtype: req.rtype.clone(),
            provider: provider_name.to_string(),
            schema_version: rt.schema_version,
            attributes: redact_for_state(value, self.state.resources.get(&req.addr).map(|e| e.attributes.json()).as_ref(), &self.salt)
                .into(),
            dependencies,
            // Only a health gate sets or clears it.
            unhealthy: self.state.resources.get(&req.addr).and_then(|e| e.unhealthy.clone()),
        }
    }

    /// Outputs from final values. An output that could not be computed
    /// keeps its previous value: after errors, or when `--target` left a
    /// resource it reads unplanned (its value is then unknown). Only outputs
    /// no longer declared are dropped.
    pub(super) fn record_outputs(&mut self) {
        let mut outputs = BTreeMap::new();
        let graph = self.world.graph.clone();
        let config = self.world.config.clone();
        for node in graph.order() {
            if matches!(node, Node::Resource(_) | Node::Provider(_)) {
                continue;
            }
            match self.world.eval_value_node(node) {
                Ok(Some(value)) => {
                    if let Node::Output(m, name) = node
                        && m.is_root()
                        && !value.has_unknown()
                    {
                        let sensitive = config.root().outputs.get(name).is_some_and(|o| o.sensitive);
                        let prior = self.state.outputs.get(name).map(|o| &o.value);
                        outputs.insert(name.clone(), OutputState { value: redact_for_state(&value, prior, &self.salt), sensitive });
                    }
                }
                Ok(None) => {}
                Err(d) if self.errors.has_errors() => drop(d),
                Err(d) => self.errors.extend(d),
            }
        }
        for (k, v) in &self.state.outputs {
            if self.errors.has_errors() || config.root().outputs.contains_key(k) {
                outputs.entry(k.clone()).or_insert_with(|| v.clone());
            }
        }
        self.state.outputs = outputs;
    }
}

/// Writes the canonical state when it differs from the run's start; bumps
/// the serial by one. Returns whether it wrote. The caller holds the lock.
///
/// Committing deletes the journal. When nothing changed, the journal is
/// deleted only if `discard_journal`: the run began one of its own, or a
/// crashed run's leftover journal was replayed into `state` with nothing of
/// it left unsettled (no unfinished create intent that refresh did not look
/// for). A leftover journal whose replay changed nothing is so gone after
/// the next locked run, not replayed by every run for ever.
pub async fn commit_if_changed(
    store: &dyn StateStore,
    state: &mut State,
    run_start_text: Option<&str>,
    discard_journal: bool,
) -> Result<bool, Diags> {
    // Compared as it is printed: the new text is never held beside the old.
    let unchanged = run_start_text.is_some_and(|text| crate::state::file::is_canonical_text_of(state, text));
    if unchanged {
        if discard_journal {
            store.discard_journal().await.map_err(|e| Diags::from(Diag::error(e.to_string())))?;
        }
        return Ok(false);
    }
    state.serial += 1;
    store.commit(state, run_start_text).await.map_err(|e| Diags::from(Diag::error(e.to_string())))?;
    Ok(true)
}
