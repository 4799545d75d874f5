//! Plan files (`plan --out FILE`): a versioned JSON document embedding the
//! plan, the configuration's source files and the non-sensitive variable
//! values, so that `apply FILE` never reads the working directory.
//! Sensitive variables are stored only as salted hashes: apply takes them
//! again and refuses when they differ.

use crate::addr::InstanceAddr;
use crate::config::Config;
use crate::config::inputs::Recorded;
use crate::config::load::module_key;
use crate::diag::{Diag, Diags};
use crate::plan::Plan;
use crate::state::secret;
use crate::value::Value;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const PLAN_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PlanFile {
    pub format_version: u32,
    pub himaplan_version: String,
    /// The configuration directory the plan was made in (a label only).
    pub root_dir: PathBuf,
    /// Module directory (relative to the root, `.` for the root) → files.
    pub sources: BTreeMap<String, Vec<(String, String)>>,
    pub variables: BTreeMap<String, serde_json::Value>,
    pub sensitive_variables: BTreeMap<String, String>,
    pub options: SavedOptions,
    pub lineage: String,
    pub plan: Plan,
    /// What the configuration's functions read (files, the plan's time),
    /// so that `apply FILE` evaluates exactly as the plan did.
    #[serde(default)]
    pub inputs: Recorded,
    /// The plan's rollout batches, for `graph --plan` (apply re-plans and
    /// never reads them). Absent from files written before they were kept.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub batches: Vec<crate::plan::batch::ApplyBatch>,
}

#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct SavedOptions {
    pub refresh: bool,
    pub targets: Vec<InstanceAddr>,
    pub replace: Vec<InstanceAddr>,
    /// `--at`, RFC 3339.
    pub at: String,
}

impl PlanFile {
    pub fn new(config: &Config, root_vars: &BTreeMap<String, Value>, lineage: &str, options: SavedOptions, plan: Plan) -> PlanFile {
        let mut sources = BTreeMap::new();
        for module in config.modules.values() {
            let files = module
                .files
                .iter()
                .map(|f| (f.path.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default(), f.text.clone()))
                .collect();
            sources.insert(module_key(&config.root_dir, &module.dir), files);
        }
        let mut variables = BTreeMap::new();
        let mut sensitive_variables = BTreeMap::new();
        for (name, value) in root_vars {
            if value.has_sensitive() {
                sensitive_variables.insert(name.clone(), sensitive_hash(value));
            } else {
                variables.insert(name.clone(), value.to_json());
            }
        }
        PlanFile {
            format_version: PLAN_FORMAT_VERSION,
            himaplan_version: env!("CARGO_PKG_VERSION").to_string(),
            root_dir: config.root_dir.clone(),
            sources,
            variables,
            sensitive_variables,
            options,
            lineage: lineage.to_string(),
            plan,
            inputs: config.inputs.record(),
            batches: Vec::new(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_default() + "\n"
    }

    pub fn read(path: &Path) -> Result<PlanFile, Diags> {
        let text = crate::files::read_text(path, crate::files::MAX_STATE_BYTES)
            .map_err(|e| Diag::error(format!("cannot read plan file {}: {e}", path.display())))?;
        Self::parse(&text, path)
    }

    /// Parses a plan file's text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<PlanFile, Diags> {
        let probe: serde_json::Value = serde_json::from_str(text).map_err(|e| {
            Diag::error(format!("{} is not a himaplan plan file: {e}", path.display()))
                .with_detail("Create one with himaplan plan --out FILE.")
        })?;
        let version = probe.get("format_version").and_then(|v| v.as_u64()).unwrap_or(0);
        if version != u64::from(PLAN_FORMAT_VERSION) {
            return Err(Diag::error(format!(
                "{} has plan format version {version}; this himaplan reads version {PLAN_FORMAT_VERSION}",
                path.display()
            ))
            .with_detail("Make the plan again with this himaplan version.")
            .into());
        }
        serde_json::from_value(probe).map_err(|e| Diag::error(format!("{} is a damaged plan file: {e}", path.display())).into())
    }

    /// The variable values for apply: saved non-sensitive ones plus the
    /// sensitive ones given again, which must hash as in the plan.
    pub fn variables_for_apply(&self, given_sensitive: &BTreeMap<String, Value>) -> Result<BTreeMap<String, Value>, Diags> {
        let mut out: BTreeMap<String, Value> = self.variables.iter().map(|(k, v)| (k.clone(), Value::from_json(v))).collect();
        let mut diags = Diags::new();
        for (name, hash) in &self.sensitive_variables {
            match given_sensitive.get(name) {
                Some(v) if secret::verify(hash, &v.deep_unmarked().to_json().to_string(), &self.lineage) => {
                    out.insert(name.clone(), v.clone());
                }
                Some(_) => diags.push(
                    Diag::error(format!("Sensitive variable {name:?} differs from the value the plan was made with"))
                        .with_detail("Pass the same value (HIMAPLAN_VAR_NAME or --var) as for plan, or make a new plan."),
                ),
                None => diags.push(
                    Diag::error(format!("Sensitive variable {name:?} is not given"))
                        .with_detail(format!("Plan files never store secrets: pass it again with HIMAPLAN_VAR_{name} or --var.")),
                ),
            }
        }
        diags.into_result().map(|_| out)
    }
}

/// A hash of a sensitive variable's value (see `state::secret`).
fn sensitive_hash(value: &Value) -> String {
    secret::hash(&value.deep_unmarked().to_json().to_string())
}
