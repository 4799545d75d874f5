//! Applying a saved plan (`apply FILE`): the variables it was made with
//! (secrets given again, checked against their hashes), the lineage check,
//! the re-plan with the saved options, and the staleness check that lets
//! through only the changes the reviewer saw, computed from the same inputs.
//! The caller holds the run lock and carries out the returned changes.

use super::Hooks;
use super::plan::{self, PlanInput, PlanOptions, Planned};
use super::planfile::PlanFile;
use crate::config::Config;
use crate::config::vars::{self, VarInputs};
use crate::diag::{Diag, Diags};
use crate::graph::ConfigGraph;
use crate::plan::ResourceChange;
use crate::provider::Registry;
use crate::state::Snapshot;
use crate::value::Value;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// The root variable values of a saved plan: the saved non-sensitive ones,
/// and the sensitive ones taken again from `--var` or `HIMAPLAN_VAR_*`
/// (plan files never store secrets), which must hash as in the plan.
pub fn variables(file: &PlanFile, config: &Config, inputs: &VarInputs) -> Result<BTreeMap<String, Value>, Diags> {
    let mut given = BTreeMap::new();
    for name in file.sensitive_variables.keys() {
        let from_flag = inputs.cli.iter().find_map(|v| v.strip_prefix(&format!("{name}=")).map(str::to_string));
        if let Some(text) = from_flag.or_else(|| inputs.env.get(name).cloned()) {
            given.insert(name.clone(), Value::String(text).into_sensitive());
        } else if let Some(var) = config.root().variables.get(name).filter(|v| v.default.is_some()) {
            given.insert(name.clone(), vars::finalize(var, None)?);
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
    let options = PlanOptions {
        refresh: file.options.refresh,
        targets: file.options.targets.clone(),
        replace: file.options.replace.clone(),
        at: chrono::DateTime::parse_from_rfc3339(&file.options.at)
            .map(|t| t.with_timezone(&chrono::Utc))
            .unwrap_or_else(|_| chrono::Utc::now()),
    };
    let input = PlanInput {
        config,
        graph,
        registry,
        root_vars,
        // The snapshot's text stays for .backup; its parsed state moves here.
        state: std::mem::take(&mut snapshot.state),
        intents: snapshot.unfinished_intents.clone(),
        options,
    };
    let planned = plan::plan(input, hooks).await?;
    let changes = current_changes(file, &planned, path)?;
    Ok((planned, changes))
}

/// The re-planned changes matching the saved ones, judged per resource:
/// only the saved changes' inputs matter.
fn current_changes(file: &PlanFile, planned: &Planned, path: &Path) -> Result<Vec<ResourceChange>, Diags> {
    let mut stale = Vec::new();
    let mut changes = Vec::new();
    for saved in &file.plan.changes {
        match planned.plan.changes.iter().find(|c| c.addr == saved.addr && c.reason == saved.reason && c.action == saved.action) {
            Some(now) if now.fingerprint == saved.fingerprint => changes.push(now.clone()),
            _ => stale.push(saved.addr.to_string()),
        }
    }
    if !stale.is_empty() {
        return Err(Diag::error(format!("The saved plan {} is stale", path.display()))
            .with_detail(format!(
                "The state or the real objects of these resources changed since the plan was made:\n  {}\nNothing was changed. Run himaplan plan again.",
                stale.join("\n  ")
            ))
            .into());
    }
    Ok(changes)
}
