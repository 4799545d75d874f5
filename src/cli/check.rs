//! `validate` and `fmt`: configuration checks that need no network.

use super::Failure;
use super::context::Workspace;
use himaplan_engine::config::fmt::format_source;
use himaplan_engine::diag::{Diag, Diags, Location, Severity};
use himaplan_engine::engine::NoHooks;
use himaplan_engine::engine::plan::{self, PlanInput, PlanOptions};
use himaplan_engine::state::State;
use himaplan_engine::value::Value;
use std::path::{Path, PathBuf};

/// Loads, type-checks and evaluates the configuration with no state and
/// no network; variables without a value are treated as unknown, and a
/// resource with `count` or `for_each` is checked once, its `count.index`
/// and `each.*` unknown (as Terraform's validate does): problems of one
/// particular instance show at `plan`.
async fn check() -> Result<(), Diags> {
    let ws = Workspace::load().map_err(into_diags)?;
    let mut vars = std::collections::BTreeMap::new();
    for (name, var) in &ws.config.root().variables {
        let value = match &var.default {
            Some(_) => himaplan_engine::config::vars::finalize(var, None)?,
            None => Value::Unknown,
        };
        vars.insert(name.clone(), value);
    }
    let policies = policy_check(&ws.config, &vars);
    let input = PlanInput {
        config: ws.config.clone(),
        graph: ws.graph.clone(),
        registry: ws.registry.clone(),
        root_vars: vars,
        state: State::new_lineage(),
        intents: vec![],
        options: PlanOptions { refresh: false, validate_only: true, ..PlanOptions::default() },
    };
    let mut diags = plan::plan(input, &NoHooks).await.err().unwrap_or_default();
    diags.extend(policies);
    diags.into_result().map(|_| ())
}

/// `scaling_policy` checks, offline: against the values known without
/// flags (defaults, `*.auto.hvars`, `HIMAPLAN_VAR_*`).
fn policy_check(config: &himaplan_engine::config::Config, defaults: &std::collections::BTreeMap<String, Value>) -> Diags {
    use himaplan_engine::config::vars::{VarInputs, given_values};
    let mut current = defaults.clone();
    let inputs = VarInputs { env: VarInputs::env_from_process(), ..VarInputs::default() };
    current.extend(given_values(config, &inputs, &config.root_dir).unwrap_or_default());
    himaplan_engine::config::policy::check(config, &current)
}

fn into_diags(f: Failure) -> Diags {
    match f {
        Failure::Diags(d) => d,
        Failure::Other(e) => Diag::error(format!("{e:#}")).into(),
    }
}

pub async fn validate(json: bool) -> Result<i32, Failure> {
    let result = check().await;
    if json {
        let diags = result.as_ref().err().cloned().unwrap_or_default();
        let items: Vec<serde_json::Value> = diags.0.iter().map(diag_json).collect();
        let doc = serde_json::json!({
            "format_version": "1.0",
            "valid": result.is_ok(),
            "error_count": diags.0.iter().filter(|d| d.severity == Severity::Error).count(),
            "warning_count": diags.0.iter().filter(|d| d.severity == Severity::Warning).count(),
            "diagnostics": items,
        });
        println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
        return Ok(if result.is_ok() { 0 } else { 1 });
    }
    match result {
        Ok(()) => {
            println!("Success! The configuration is valid.");
            Ok(0)
        }
        Err(d) => Err(d.into()),
    }
}

pub(super) fn diag_json(d: &Diag) -> serde_json::Value {
    let range =
        d.location.as_ref().filter(|l| l.line > 0).map(
            |l: &Location| serde_json::json!({ "filename": l.path.display().to_string(), "start": { "line": l.line, "column": l.col } }),
        );
    serde_json::json!({
        "severity": if d.severity == Severity::Error { "error" } else { "warning" },
        "summary": d.summary,
        "detail": d.detail.clone().unwrap_or_default(),
        "range": range,
    })
}

pub fn fmt(check: bool, diff: bool, recursive: bool) -> Result<i32, Failure> {
    let mut files = Vec::new();
    collect(Path::new("."), recursive, &mut files);
    files.sort();
    let mut diags = Diags::new();
    let mut unformatted = 0;
    for path in files {
        let shown = path.strip_prefix("./").unwrap_or(&path).to_path_buf();
        let Ok(text) = std::fs::read_to_string(&path) else {
            diags.push(Diag::error(format!("cannot read {}", shown.display())));
            continue;
        };
        let formatted = match format_source(&text) {
            Ok(f) => f,
            Err(e) => {
                let file = himaplan_engine::diag::SourceFile::new(shown.clone(), text.clone());
                diags.push(Diag::error(format!("Cannot format: {}", e.message)).at(Location {
                    path: shown.clone(),
                    line: e.line,
                    col: e.col,
                    snippet: Some(file.line_text(e.line).to_string()),
                }));
                continue;
            }
        };
        if formatted == text {
            continue;
        }
        unformatted += 1;
        println!("{}", shown.display());
        if diff {
            let d = similar::TextDiff::from_lines(&text, &formatted);
            print!("{}", d.unified_diff().header(&format!("old/{}", shown.display()), &format!("new/{}", shown.display())));
        }
        if !check {
            std::fs::write(&path, formatted).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", shown.display()))?;
        }
    }
    if diags.has_errors() {
        return Err(diags.into());
    }
    Ok(if check && unformatted > 0 { 1 } else { 0 })
}

fn collect(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().to_string();
        if path.is_dir() {
            if recursive && !name.starts_with('.') {
                collect(&path, recursive, out);
            }
        } else if name.ends_with(".hcl") || name.ends_with(".hvars") {
            out.push(path);
        }
    }
}
