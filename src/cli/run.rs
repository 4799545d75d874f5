//! `plan`, `apply` and `drift`: each a few lines around the engine's plan
//! and apply calls, plus rendering and the approval prompt.

use super::context::{self, Workspace};
use super::json_ui::JsonUi;
use super::progress::Progress;
use super::{Failure, Format, PlanArgs};
use himaplan_engine::config::load;
use himaplan_engine::diag::Diag;
use himaplan_engine::engine::Hooks;
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

pub(super) async fn make_plan(
    ws: &Workspace,
    vars: BTreeMap<String, Value>,
    snapshot: &mut Snapshot,
    options: PlanOptions,
    hooks: &Reporter<'_>,
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
    let planned = plan::plan(input, hooks.hooks()).await;
    hooks.finish();
    Ok(planned?)
}

/// Where a run's progress goes: the terminal's progress lines (stderr), or
/// `apply --json`'s event stream (stdout).
pub(super) enum Reporter<'a> {
    Human(Progress),
    Json(&'a JsonUi),
}

impl Reporter<'_> {
    pub(super) fn new(ui: Option<&JsonUi>) -> Reporter<'_> {
        match ui {
            Some(ui) => Reporter::Json(ui),
            None => Reporter::Human(Progress::new()),
        }
    }

    fn hooks(&self) -> &dyn Hooks {
        match self {
            Reporter::Human(p) => p,
            Reporter::Json(ui) => *ui,
        }
    }

    fn finish(&self) {
        if let Reporter::Human(p) = self {
            p.finish();
        }
    }
}

pub(super) fn render(plan: &Plan, format: Format, color: bool) -> String {
    match format {
        Format::Human => render::human(plan, &RenderOptions { color }),
        Format::Markdown => render::markdown(plan),
        Format::Json => serde_json::to_string_pretty(&render::json(plan)).unwrap_or_default() + "\n",
    }
}

pub async fn plan(args: PlanArgs, color: bool) -> Result<i32, Failure> {
    if args.graph && args.format != Format::Markdown {
        return Err(anyhow::anyhow!("--graph is for --format markdown (draw other plans with himaplan graph --plan FILE)").into());
    }
    let ws = Workspace::load()?;
    let vars = ws.variables(&args.vars, &args.var_files)?;
    let store = context::open_store(Some(&ws.config), args.state.as_deref()).await?;
    // plan writes no state, so the file's text (apply's backup) is not kept.
    let mut snapshot = store.read_state().await?;
    let options = options(&args)?;
    let planned = make_plan(&ws, vars.clone(), &mut snapshot, options.clone(), &Reporter::new(None)).await?;
    let text = render(&planned.plan, args.format, color);
    print!("{text}");
    if args.graph {
        print!("{}", super::reference::markdown_graph(&planned.plan, &planned.batches(), text.chars().count()));
    }
    if let Some(out) = &args.out {
        let saved = SavedOptions {
            refresh: options.refresh,
            targets: options.targets.clone(),
            replace: options.replace.clone(),
            at: options.at.to_rfc3339(),
        };
        let mut file = PlanFile::new(&ws.config, &vars, &planned.state.lineage, saved, planned.plan.clone());
        file.batches = planned.batches();
        std::fs::write(out, file.to_json()).map_err(|e| anyhow::anyhow!("cannot write plan file {}: {e}", out.display()))?;
        eprintln!("Saved the plan to {}. Apply exactly it with: himaplan apply {}", out.display(), out.display());
    }
    Ok(if args.detailed_exitcode && planned.plan.has_changes() { 2 } else { 0 })
}

pub async fn apply(planfile: Option<PathBuf>, auto_approve: bool, json: bool, args: PlanArgs, color: bool) -> Result<i32, Failure> {
    if json {
        return apply_json(planfile, auto_approve, args).await;
    }
    match planfile {
        Some(path) => apply_saved(path, args, None).await,
        None => apply_fresh(auto_approve, args, color, None).await,
    }
}

/// `apply --json`: the same run, every message a JSON line on stdout;
/// errors are `diagnostic` messages and exit 1.
async fn apply_json(planfile: Option<PathBuf>, auto_approve: bool, args: PlanArgs) -> Result<i32, Failure> {
    let ui = JsonUi::start();
    let result = match planfile {
        Some(path) => apply_saved(path, args, Some(&ui)).await,
        None if auto_approve => apply_fresh(true, args, false, Some(&ui)).await,
        None => Err(Diag::error("apply --json needs a plan file or --auto-approve")
            .with_detail("The JSON stream cannot ask for approval: save the reviewed plan with `plan --out FILE` and apply that file, or pass --auto-approve.")
            .into()),
    };
    match result {
        Ok(code) => Ok(code),
        Err(failure) => {
            ui.failure(&failure);
            Ok(1)
        }
    }
}

async fn apply_fresh(auto_approve: bool, args: PlanArgs, color: bool, ui: Option<&JsonUi>) -> Result<i32, Failure> {
    let ws = Workspace::load()?;
    let vars = ws.variables(&args.vars, &args.var_files)?;
    let store = context::open_store(Some(&ws.config), args.state.as_deref()).await?;
    let _lock = context::lock(store.as_ref(), "apply", args.lock_timeout).await?;
    let mut snapshot = store.read().await?;
    let mut planned = make_plan(&ws, vars, &mut snapshot, options(&args)?, &Reporter::new(ui)).await?;
    match ui {
        Some(ui) => ui.planned(&planned.plan),
        None => print!("{}", render(&planned.plan, Format::Human, color)),
    }
    if planned.plan.has_changes() && !auto_approve && !confirm()? {
        println!("\nApply cancelled.");
        return Ok(1);
    }
    // The changes move to the applier: it is their one owner from here on.
    let changes = std::mem::take(&mut planned.plan.changes);
    run_apply(planned, changes, store.as_ref(), snapshot.text.take(), &args, ui).await
}

async fn apply_saved(path: PathBuf, args: PlanArgs, ui: Option<&JsonUi>) -> Result<i32, Failure> {
    let file = PlanFile::read(&path)?;
    let ws = Workspace::from_config(load::load_snapshot(&file.root_dir, &file.sources, file.inputs.clone())?)?;
    // Secrets are taken again as plan takes them, *.auto.hvars from the working directory.
    let inputs = context::var_inputs(&args.vars, &args.var_files);
    let root_vars = saved::variables(&file, &ws.config, &inputs, std::path::Path::new("."))?;
    let store = context::open_store(Some(&ws.config), args.state.as_deref()).await?;
    let _lock = context::lock(store.as_ref(), "apply", args.lock_timeout).await?;
    let mut snapshot = store.read().await?;
    let reporter = Reporter::new(ui);
    let input = SavedInput { file: &file, path: &path, config: ws.config, graph: ws.graph, registry: ws.registry, root_vars };
    let result = saved::plan(input, &mut snapshot, reporter.hooks()).await;
    reporter.finish();
    let (planned, changes) = result?;
    if let Some(ui) = ui {
        ui.planned(&Plan { changes: changes.clone(), ..planned.plan.clone() });
    }
    run_apply(planned, changes, store.as_ref(), snapshot.text.take(), &args, ui).await
}

async fn run_apply(
    planned: Planned,
    changes: Vec<himaplan_engine::plan::ResourceChange>,
    store: &dyn StateStore,
    start_text: Option<String>,
    args: &PlanArgs,
    ui: Option<&JsonUi>,
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
    // Counted in place: the changes pass through a plan and back, not copied.
    let counted = Plan { changes, ..Plan::default() };
    let (add, change, destroy) = counted.summary_counts();
    let changes = counted.changes;
    let reporter = Reporter::new(ui);
    let options = ApplyOptions { parallelism: args.parallelism, cancel };
    let outcome = apply::apply(planned, changes, store, start_text, options, reporter.hooks()).await;
    reporter.finish();
    watcher.abort();
    let outcome = outcome?;
    if let Some(ui) = ui {
        ui.diagnostics(&outcome.errors);
        if outcome.errors.has_errors() {
            return Ok(1);
        }
        ui.applied((add, change, destroy), &outcome.state);
        return Ok(0);
    }
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
    // A terminal echoes the answer and its newline; piped input does not,
    // so end the prompt's line here or the next line is glued to it.
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        println!();
    }
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
    let snapshot = store.read_state().await?;
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
