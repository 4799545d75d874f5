//! `plan`, `apply` and `drift`: each a few lines around the engine's plan
//! and apply calls, plus rendering and the approval prompt.

use super::context::{self, Workspace};
use super::progress::Progress;
use super::{Failure, Format, PlanArgs};
use himaplan_engine::config::load;
use himaplan_engine::engine::apply::{self, ApplyOptions};
use himaplan_engine::engine::plan::{self, PlanInput, PlanOptions, Planned};
use himaplan_engine::engine::planfile::{PlanFile, SavedOptions};
use himaplan_engine::engine::saved::{self, SavedInput};
use himaplan_engine::plan::Plan;
use himaplan_engine::plan::render::{self, RenderOptions};
use himaplan_engine::state::{Snapshot, StateStore};
use himaplan_engine::value::Value;
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

fn options(args: &PlanArgs) -> Result<PlanOptions, Failure> {
    Ok(PlanOptions {
        refresh: args.refresh,
        targets: context::parse_addrs(&args.targets, "--target")?,
        replace: context::parse_addrs(&args.replace, "--replace")?,
        at: args.at.unwrap_or_else(chrono::Utc::now),
        saved: Default::default(),
        validate_only: false,
    })
}

async fn make_plan(
    ws: &Workspace,
    vars: BTreeMap<String, Value>,
    snapshot: &mut Snapshot,
    options: PlanOptions,
    hooks: &Progress,
) -> Result<Planned, Failure> {
    let input = PlanInput {
        config: ws.config.clone(),
        graph: ws.graph.clone(),
        registry: ws.registry.clone(),
        root_vars: vars,
        // The snapshot's text stays for .backup; its parsed state moves here.
        state: std::mem::take(&mut snapshot.state),
        intents: snapshot.unfinished_intents.clone(),
        options,
    };
    let planned = plan::plan(input, hooks).await;
    hooks.finish();
    Ok(planned?)
}

fn render(plan: &Plan, format: Format, color: bool) -> String {
    match format {
        Format::Human => render::human(plan, &RenderOptions { color }),
        Format::Markdown => render::markdown(plan),
        Format::Json => serde_json::to_string_pretty(&render::json(plan)).unwrap_or_default() + "\n",
    }
}

pub async fn plan(args: PlanArgs, color: bool) -> Result<i32, Failure> {
    let ws = Workspace::load()?;
    let vars = ws.variables(&args.vars, &args.var_files)?;
    let store = context::open_store(Some(&ws.config), args.state.as_deref()).await?;
    let mut snapshot = store.read().await?;
    let options = options(&args)?;
    let progress = Progress::new();
    let planned = make_plan(&ws, vars.clone(), &mut snapshot, options.clone(), &progress).await?;
    print!("{}", render(&planned.plan, args.format, color));
    if let Some(out) = &args.out {
        let saved = SavedOptions {
            refresh: options.refresh,
            targets: options.targets.clone(),
            replace: options.replace.clone(),
            at: options.at.to_rfc3339(),
        };
        let file = PlanFile::new(&ws.config, &vars, &planned.state.lineage, saved, planned.plan.clone());
        std::fs::write(out, file.to_json()).map_err(|e| anyhow::anyhow!("cannot write plan file {}: {e}", out.display()))?;
        eprintln!("Saved the plan to {}. Apply exactly it with: himaplan apply {}", out.display(), out.display());
    }
    Ok(if args.detailed_exitcode && planned.plan.has_changes() { 2 } else { 0 })
}

pub async fn apply(planfile: Option<PathBuf>, auto_approve: bool, args: PlanArgs, color: bool) -> Result<i32, Failure> {
    match planfile {
        Some(path) => apply_saved(path, args).await,
        None => apply_fresh(auto_approve, args, color).await,
    }
}

async fn apply_fresh(auto_approve: bool, args: PlanArgs, color: bool) -> Result<i32, Failure> {
    let ws = Workspace::load()?;
    let vars = ws.variables(&args.vars, &args.var_files)?;
    let store = context::open_store(Some(&ws.config), args.state.as_deref()).await?;
    let _lock = context::lock(store.as_ref(), "apply", args.lock_timeout).await?;
    let mut snapshot = store.read().await?;
    let progress = Progress::new();
    let planned = make_plan(&ws, vars, &mut snapshot, options(&args)?, &progress).await?;
    print!("{}", render(&planned.plan, Format::Human, color));
    if planned.plan.has_changes() && !auto_approve && !confirm()? {
        println!("Apply cancelled.");
        return Ok(1);
    }
    let changes = planned.plan.changes.clone();
    run_apply(planned, changes, store.as_ref(), snapshot.text.clone(), &args).await
}

async fn apply_saved(path: PathBuf, args: PlanArgs) -> Result<i32, Failure> {
    let file = PlanFile::read(&path)?;
    let ws = Workspace::from_config(load::load_snapshot(&file.root_dir, &file.sources)?)?;
    // Secrets are taken again as plan takes them, *.auto.hvars from the working directory.
    let inputs = context::var_inputs(&args.vars, &args.var_files);
    let root_vars = saved::variables(&file, &ws.config, &inputs, std::path::Path::new("."))?;
    let store = context::open_store(Some(&ws.config), args.state.as_deref()).await?;
    let _lock = context::lock(store.as_ref(), "apply", args.lock_timeout).await?;
    let mut snapshot = store.read().await?;
    let progress = Progress::new();
    let input = SavedInput { file: &file, path: &path, config: ws.config, graph: ws.graph, registry: ws.registry, root_vars };
    let result = saved::plan(input, &mut snapshot, &progress).await;
    progress.finish();
    let (planned, changes) = result?;
    run_apply(planned, changes, store.as_ref(), snapshot.text.clone(), &args).await
}

async fn run_apply(
    planned: Planned,
    changes: Vec<himaplan_engine::plan::ResourceChange>,
    store: &dyn StateStore,
    start_text: Option<String>,
    args: &PlanArgs,
) -> Result<i32, Failure> {
    let cancel = Arc::new(AtomicBool::new(false));
    let watcher = {
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("Interrupt received: letting running actions finish, then saving state...");
                cancel.store(true, Ordering::SeqCst);
            }
        })
    };
    let (add, change, destroy) = Plan { changes: changes.clone(), ..Plan::default() }.summary_counts();
    let progress = Progress::new();
    let outcome =
        apply::apply(planned, changes, store, start_text, ApplyOptions { parallelism: args.parallelism, cancel }, &progress).await;
    progress.finish();
    watcher.abort();
    let outcome = outcome?;
    if outcome.errors.has_errors() {
        eprint!("{}", outcome.errors);
        eprintln!(
            "Apply stopped: {} action(s) completed and were recorded in state. Fix the errors and run apply again.",
            outcome.completed
        );
        return Ok(1);
    }
    println!("\nApply complete! Resources: {add} added, {change} changed, {destroy} destroyed.");
    print_outputs(&outcome.state);
    Ok(0)
}

fn print_outputs(state: &himaplan_engine::state::State) {
    if state.outputs.is_empty() {
        return;
    }
    println!("\nOutputs:\n");
    for (name, out) in &state.outputs {
        if out.sensitive {
            println!("{name} = (sensitive value)");
        } else {
            println!("{name} = {}", Value::from_json(&out.value));
        }
    }
}

fn confirm() -> Result<bool, Failure> {
    print!("\nDo you want to perform these actions?\n  Only 'yes' will be accepted to approve.\n\n  Enter a value: ");
    std::io::stdout().flush().ok();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line).map_err(|e| anyhow::anyhow!("cannot read the answer: {e}"))?;
    Ok(line.trim() == "yes")
}

pub async fn drift(
    detailed: bool,
    vars: Vec<String>,
    var_files: Vec<PathBuf>,
    state: Option<PathBuf>,
    color: bool,
) -> Result<i32, Failure> {
    let ws = Workspace::load()?;
    let values = ws.variables(&vars, &var_files)?;
    let store = context::open_store(Some(&ws.config), state.as_deref()).await?;
    let snapshot = store.read().await?;
    let progress = Progress::new();
    let report = himaplan_engine::engine::drift::drift(&ws.config, &ws.registry, &values, &snapshot, &progress).await;
    progress.finish();
    let report = report?;
    let has_drift = !report.drift.is_empty() || !report.unmanaged.is_empty();
    if has_drift {
        print!("{}", render::human(&report, &RenderOptions { color }));
    } else {
        println!("No drift: every object in state matches the real world.");
    }
    Ok(if detailed && has_drift { 2 } else { 0 })
}
