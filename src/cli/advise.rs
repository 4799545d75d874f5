//! `advise`: evaluate the `scaling_policy` blocks against Prometheus,
//! print the evidence and the proposal, then the plan the proposed values
//! would produce (the `plan` command's own planning and renderers), and
//! with `--write` put the proposed values into a variables file.
//!
//! Nothing is written when anything fails: a bad policy, an unreachable
//! Prometheus, a query error or a failed plan all exit 1 first.

use super::context::{self, Workspace};
use super::{Failure, Format};
use himaplan_engine::advise::{self, Advice};
use himaplan_engine::config::vars::{self, VarInputs};
use himaplan_engine::config::{Config, policy, varfile};
use himaplan_engine::diag::{Diag, Diags};
use himaplan_engine::engine::plan::PlanOptions;
use himaplan_engine::plan::Plan;
use himaplan_engine::value::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// The header of a variables file advise creates.
const HEADER: &str = "# Written by `himaplan advise --write`: the values its scaling policies\n\
                      # proposed. Review them in the pull request; edit or delete freely.\n";

#[derive(Debug, clap::Args, Clone)]
pub struct AdviseArgs {
    /// Evaluate as of this instant (RFC 3339): the end of every rule's window.
    #[arg(long, value_name = "RFC3339", value_parser = super::parse_at)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// How to print the advice and the plan of the proposal.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Write the proposed values into FILE (e.g. scaling.auto.hvars), comments kept.
    #[arg(long, value_name = "FILE")]
    pub write: Option<PathBuf>,
    /// Exit 2 when a change is proposed.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Set a root variable (repeatable), as for plan.
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from FILE (HCL attributes, or JSON when it ends in .json).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// Use FILE as the state of the plan instead of the configured location.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
}

pub async fn advise(args: AdviseArgs, color: bool) -> Result<i32, Failure> {
    let ws = Workspace::load()?;
    let inputs = context::var_inputs(&args.vars, &args.var_files);
    let values = vars::root_values(&ws.config, &inputs)?;
    policy::check(&ws.config, &values).into_result()?;
    if ws.config.root().policies.is_empty() {
        println!("No scaling_policy blocks in the configuration: nothing to advise.");
        return Ok(0);
    }
    let url = policy::prometheus_url(&ws.config, &values, std::env::var("HIMAPLAN_PROMETHEUS_URL").ok())?;
    let location = ws.config.providers.get("prometheus").map(|b| b.location.clone());
    let source = crate::prometheus::Prometheus::new(&url).map_err(|e| Diag::error(e).at_opt(location))?;
    let at = args.at.unwrap_or_else(chrono::Utc::now);
    let advice = advise::evaluate(&ws.config, &values, &source, at).await?;

    let plan = match advice.has_changes() {
        true => Some(plan_of(&ws, &values, &advice, &args, at).await?),
        false => None,
    };
    let written = match (&args.write, advice.has_changes()) {
        (Some(file), true) => Some(prepare_write(&ws.config, &inputs, file, &advice)?),
        _ => None,
    };
    print!("{}", render(&advice, plan.as_ref(), args.format, color));
    if let Some((file, text, warnings)) = written {
        crate::providers::shared::files::write_atomic(&file, text.as_bytes())
            .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", file.display()))?;
        eprintln!("Wrote the proposed values to {}.", file.display());
        for w in warnings {
            eprint!("{w}");
        }
    }
    Ok(if args.detailed_exitcode && advice.has_changes() { 2 } else { 0 })
}

/// Plans with the proposed values laid over the current ones.
async fn plan_of(
    ws: &Workspace,
    values: &BTreeMap<String, Value>,
    advice: &Advice,
    args: &AdviseArgs,
    at: chrono::DateTime<chrono::Utc>,
) -> Result<Plan, Failure> {
    let mut proposed = values.clone();
    for (name, value) in advice.proposals() {
        let sensitive = values.get(&name).is_some_and(Value::has_sensitive);
        proposed.insert(name, if sensitive { value.into_sensitive() } else { value });
    }
    let store = context::open_store(Some(&ws.config), args.state.as_deref()).await?;
    let mut snapshot = store.read_state().await?;
    let options = PlanOptions { refresh: true, at, ..PlanOptions::default() };
    Ok(super::run::make_plan(ws, proposed, &mut snapshot, options, &super::run::Reporter::new(None)).await?.plan)
}

fn render(advice: &Advice, plan: Option<&Plan>, format: Format, color: bool) -> String {
    match format {
        Format::Human => {
            let mut out = advise::render::human(advice);
            if let Some(plan) = plan {
                out.push_str("\nPlan of the proposed values:\n\n");
                out.push_str(&super::run::render(plan, Format::Human, color));
            }
            out
        }
        Format::Markdown => {
            let mut out = advise::render::markdown(advice);
            if let Some(plan) = plan {
                out.push_str("\n### Plan of the proposed values\n\n");
                out.push_str(&super::run::render(plan, Format::Markdown, color));
            }
            out
        }
        Format::Json => {
            let mut doc = advise::render::json(advice);
            let plan = plan.map(himaplan_engine::plan::render::json).unwrap_or(serde_json::Value::Null);
            if let Some(map) = doc.as_object_mut() {
                map.insert("plan".into(), plan);
            }
            serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
        }
    }
}

/// The new text of `file` and the warnings about sources that would
/// override what it sets; computed before anything is written.
fn prepare_write(config: &Config, inputs: &VarInputs, file: &Path, advice: &Advice) -> Result<(PathBuf, String, Vec<Diag>), Failure> {
    let old = std::fs::read_to_string(file).or_else(|e| if e.kind() == std::io::ErrorKind::NotFound { Ok(String::new()) } else { Err(e) });
    let old = old.map_err(|e| anyhow::anyhow!("cannot read {}: {e}", file.display()))?;
    let values: Vec<(String, Value)> = advice.proposals().into_iter().collect();
    let text = varfile::set_values(&old, &values, HEADER).map_err(|e| {
        Diags::from(
            Diag::error(format!("Cannot update {}: {e}", file.display()))
                .with_detail("--write edits a variables file of NAME = VALUE lines."),
        )
    })?;
    let warnings = overrides(config, inputs, file, &values);
    Ok((file.to_path_buf(), text, warnings))
}

/// Warnings for every source of higher precedence than `file` that sets
/// one of the written variables: the value written would not take effect.
fn overrides(config: &Config, inputs: &VarInputs, file: &Path, values: &[(String, Value)]) -> Vec<Diag> {
    let same = |a: &Path, b: &Path| match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => a == b,
    };
    let name = file.file_name().map(|n| n.to_string_lossy().to_string()).unwrap_or_default();
    let in_root =
        file.parent().map(|p| if p.as_os_str().is_empty() { Path::new(".") } else { p }).is_some_and(|p| same(p, &config.root_dir));
    let mut higher: Vec<PathBuf> = Vec::new();
    let mut warnings = Vec::new();
    if in_root && name.ends_with(".auto.hvars") {
        let mut autos: Vec<PathBuf> =
            std::fs::read_dir(&config.root_dir).map(|rd| rd.filter_map(|e| e.ok().map(|e| e.path())).collect()).unwrap_or_default();
        autos.retain(|p| {
            p.file_name().is_some_and(|n| n.to_string_lossy().ends_with(".auto.hvars") && n.to_string_lossy().as_ref() > name.as_str())
        });
        autos.sort();
        higher.extend(autos);
        higher.extend(inputs.files.iter().cloned());
    } else if let Some(i) = inputs.files.iter().position(|f| same(f, file)) {
        higher.extend(inputs.files[i + 1..].iter().cloned());
    } else {
        warnings.push(
            Diag::warning(format!("{} is not read by plan unless passed as --var-file", file.display()))
                .with_detail("Name it NAME.auto.hvars in the configuration directory, or pass --var-file to plan and apply."),
        );
    }
    for (var, _) in values {
        for path in &higher {
            let sets = vars::read_var_file(path).map(|vs| vs.iter().any(|(n, _, _)| n == var)).unwrap_or(false);
            if sets {
                warnings.push(overridden(var, file, &format!("{} sets it too and takes precedence", path.display())));
            }
        }
        if inputs.env.contains_key(var) {
            warnings.push(overridden(var, file, &format!("HIMAPLAN_VAR_{var} is set and takes precedence")));
        }
        if inputs.cli.iter().any(|c| c.split_once('=').is_some_and(|(n, _)| n == var)) {
            warnings.push(overridden(var, file, &format!("--var {var}=... is given and takes precedence")));
        }
    }
    warnings
}

fn overridden(var: &str, file: &Path, why: &str) -> Diag {
    Diag::warning(format!("The value written for {var:?} to {} will not take effect: {why}", file.display()))
        .with_detail("Remove the other setting, or write to that source instead.")
}
