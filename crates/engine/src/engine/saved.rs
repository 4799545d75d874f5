//! Applying a saved plan (`apply FILE`): the variables it was made with
//! (secrets given again, checked against their hashes), the lineage check,
//! the re-plan with the saved options, and the staleness check that lets
//! through only the changes the reviewer saw, with the values the reviewer
//! saw. Nothing beyond the plan is carried out or committed. The caller
//! holds the run lock and carries out the returned changes.

use super::Hooks;
use super::plan::{self, PlanInput, PlanOptions, Planned, moves};
use super::planfile::PlanFile;
use crate::addr::InstanceAddr;
use crate::config::Config;
use crate::config::vars::{self, VarInputs};
use crate::diag::{Diag, Diags};
use crate::graph::ConfigGraph;
use crate::plan::ResourceChange;
use crate::provider::Registry;
use crate::state::{Snapshot, State, same_as_stored};
use crate::value::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The root variable values of a saved plan: the saved non-sensitive ones,
/// and the sensitive ones (plan files never store secrets) taken again by
/// the same rules as plan — `*.auto.hvars` in `auto_dir` (the working
/// directory), `--var-file`, `HIMAPLAN_VAR_*`, `--var`, typed by their
/// declared type — which must hash as in the plan.
pub fn variables(file: &PlanFile, config: &Config, inputs: &VarInputs, auto_dir: &Path) -> Result<BTreeMap<String, Value>, Diags> {
    let mut given_now = vars::given_values(config, inputs, auto_dir)?;
    let mut given = BTreeMap::new();
    for name in file.sensitive_variables.keys() {
        let Some(var) = config.root().variables.get(name) else { continue };
        match given_now.remove(name) {
            Some(value) => {
                given.insert(name.clone(), vars::finalize(var, Some(value))?);
            }
            None if var.default.is_some() => {
                given.insert(name.clone(), vars::finalize(var, None)?);
            }
            None => {}
        }
    }
    let mut values = file.variables_for_apply(&given)?;
    for (name, var) in &config.root().variables {
        if var.sensitive
            && let Some(v) = values.remove(name)
        {
            values.insert(name.clone(), v.into_sensitive());
        }
    }
    Ok(values)
}

/// The configuration a saved plan is applied with (loaded from the file's
/// own sources).
pub struct SavedInput<'a> {
    pub file: &'a PlanFile,
    /// The plan file's path, for messages.
    pub path: &'a Path,
    pub config: Arc<Config>,
    pub graph: Arc<ConfigGraph>,
    pub registry: Registry,
    pub root_vars: BTreeMap<String, Value>,
}

/// Re-plans a saved plan against the state read under the lock and returns
/// the plan with the saved changes to carry out; refuses, changing
/// nothing, when the plan was made for another state or any saved change
/// is stale.
pub async fn plan(input: SavedInput<'_>, snapshot: &mut Snapshot, hooks: &dyn Hooks) -> Result<(Planned, Vec<ResourceChange>), Diags> {
    let SavedInput { file, path, config, graph, registry, root_vars } = input;
    if snapshot.exists && snapshot.state.lineage != file.lineage {
        return Err(Diag::error(format!("{} was made for another state (lineage {})", path.display(), file.lineage))
            .with_detail("Make a new plan against this state.")
            .into());
    }
    if !snapshot.exists && !snapshot.journal_replayed {
        // A plan made against no state applies as the state it named: its
        // lineage salts the secrets the plan compared.
        snapshot.state.lineage = file.lineage.clone();
    }
    let options = PlanOptions {
        refresh: file.options.refresh,
        targets: file.options.targets.clone(),
        replace: file.options.replace.clone(),
        at: chrono::DateTime::parse_from_rfc3339(&file.options.at)
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(|_| chrono::Utc::now()),
        saved: file.plan.changes.iter().filter_map(|c| Some((c.addr.clone(), c.after.clone()?))).collect(),
        validate_only: false,
    };
    let recorded = snapshot.state.clone();
    let input = PlanInput {
        config: config.clone(),
        graph,
        registry,
        root_vars,
        // The snapshot's text stays for .backup; its parsed state moves here.
        state: std::mem::take(&mut snapshot.state),
        intents: snapshot.unfinished_intents.clone(),
        options,
    };
    let mut planned = plan::plan(input, hooks).await?;
    let changes = current_changes(file, &planned, path)?;
    keep_only_reviewed(&mut planned, recorded, &changes, &file.plan.imports, &config);
    Ok((planned, changes))
}

/// Nothing beyond the plan: apply starts from the state as recorded (with
/// the plan's `moved` blocks), taking from the re-plan only the refreshed
/// entries of the changes it carries out and the imports the saved plan
/// had. Drift of other resources, and imports, adoptions or recoveries
/// found only now, are neither carried out nor committed.
fn keep_only_reviewed(
    planned: &mut Planned,
    mut recorded: State,
    changes: &[ResourceChange],
    saved_imports: &[(InstanceAddr, String)],
    config: &Config,
) {
    // The moves succeeded when the re-plan made them.
    let _ = moves::apply_moves(config, &mut recorded, &mut Vec::new());
    planned.plan.imports.retain(|import| saved_imports.contains(import));
    let reviewed = changes.iter().filter(|c| !c.is_duplicate_delete()).map(|c| &c.addr).chain(planned.plan.imports.iter().map(|(a, _)| a));
    for addr in reviewed {
        match planned.state.resources.get(addr) {
            Some(entry) => recorded.resources.insert(addr.clone(), entry.clone()),
            None => recorded.resources.remove(addr),
        };
    }
    planned.state = recorded;
}

/// The re-planned changes matching the saved ones. A saved change applies
/// only when the re-planned change is the same: same action and reason,
/// computed from the same state entry (fingerprint), with the same planned
/// values (redacted, so secrets compare by hash; values known only after
/// apply compare as unknown and still resolve during apply). Judged per
/// change: only the saved changes' inputs matter.
fn current_changes(file: &PlanFile, planned: &Planned, path: &Path) -> Result<Vec<ResourceChange>, Diags> {
    let mut stale = Vec::new();
    let mut changes = Vec::new();
    for saved in &file.plan.changes {
        let now = planned.plan.changes.iter().find(|c| c.addr == saved.addr && c.reason == saved.reason && c.action == saved.action);
        match now {
            Some(now) if now.fingerprint != saved.fingerprint => stale.push(format!("{}: its state or real object changed", saved.addr)),
            Some(now) => {
                let plain = planned.instances.get(&now.addr).filter(|_| !now.is_duplicate_delete()).map(|r| &r.value);
                let moved = moved_values(saved, now, plain, &file.lineage);
                if moved.is_empty() {
                    changes.push(now.clone());
                } else {
                    stale.extend(moved.into_iter().map(|m| format!("{}: {m}", saved.addr)));
                }
            }
            None => stale.push(match planned.plan.changes.iter().find(|c| c.addr == saved.addr) {
                Some(now) => format!("{}: now {} instead of {}", saved.addr, action_word(now), action_word(saved)),
                None => format!("{}: no longer changes", saved.addr),
            }),
        }
    }
    if !stale.is_empty() {
        return Err(Diag::error(format!("The saved plan {} is stale", path.display()))
            .with_detail(format!(
                "What these changes were computed from moved since the plan was made:\n  {}\nNothing was changed. Run himaplan plan again.",
                stale.join("\n  ")
            ))
            .into());
    }
    Ok(changes)
}

/// The attributes whose planned value differs between the saved change and
/// the re-planned one, as `name: saved → now`. A secret is compared by
/// hashing its value now (`plain`, the re-planned value) with the salt the
/// saved plan's hash has.
fn moved_values(saved: &ResourceChange, now: &ResourceChange, plain: Option<&Value>, lineage: &str) -> Vec<String> {
    let shown = |c: &ResourceChange, key: &str| -> String {
        let unknown = c.after_unknown.get(key).is_some_and(|u| u != &serde_json::Value::Bool(false));
        match c.after.as_ref().and_then(|a| a.get(key)) {
            _ if unknown => "(known after apply)".to_string(),
            Some(v) if crate::state::is_redacted(v) => "(sensitive value)".to_string(),
            Some(v) => v.to_string(),
            None => "null".to_string(),
        }
    };
    let empty = serde_json::Map::new();
    let keys =
        |c: &ResourceChange| -> Vec<String> { c.after.as_ref().and_then(|a| a.as_object()).unwrap_or(&empty).keys().cloned().collect() };
    let mut names: Vec<String> = keys(saved);
    names.extend(keys(now));
    names.sort();
    names.dedup();
    let mut out = Vec::new();
    for name in names {
        let saved_value = saved.after.as_ref().and_then(|a| a.get(&name));
        let same_value = match plain.and_then(|p| p.get(&name)) {
            Some(value) if value.has_sensitive() => same_as_stored(value, saved_value, lineage),
            _ => saved_value == now.after.as_ref().and_then(|a| a.get(&name)),
        };
        let same_unknown = saved.after_unknown.get(&name) == now.after_unknown.get(&name);
        if !(same_value && same_unknown) {
            let (was, is) = (shown(saved, &name), shown(now, &name));
            // Two secrets that differ render alike: say so.
            let is = if was == is { format!("{is} (changed)") } else { is };
            out.push(format!("{name}: {was} → {is}"));
        }
    }
    if out.is_empty() && (saved.after.is_none() != now.after.is_none() || saved.after_unknown != now.after_unknown) {
        out.push("its planned values changed".to_string());
    }
    out
}

fn action_word(change: &ResourceChange) -> &'static str {
    crate::plan::render::action_word(change.action)
}
