//! `graph`, `providers schema`, `docs`, `completions` and `man`: commands
//! that draw or describe rather than plan. Each renders what the engine's
//! `graph::view` and `reference` modules (or clap) produce.

use super::context::Workspace;
use super::{Cli, Failure, GraphFormat, Shell};
use clap::CommandFactory;
use himaplan_engine::engine::planfile::PlanFile;
use himaplan_engine::graph::view::{self, View};
use himaplan_engine::plan::Plan;
use himaplan_engine::plan::batch::ApplyBatch;
use himaplan_engine::reference;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Past this size the markdown plan names the command instead of drawing
/// the graph, so a large change still fits a pull-request comment.
const MAX_MARKDOWN_GRAPH: usize = 16 * 1024;
/// GitHub's limit on a comment's length, in characters.
const COMMENT_LIMIT: usize = 65_536;

pub fn graph(plan: Option<PathBuf>, format: GraphFormat) -> Result<i32, Failure> {
    let view = match plan {
        Some(path) => {
            let file = PlanFile::read(&path)?;
            view::of_plan(&file.plan, &file.batches)
        }
        None => {
            let ws = Workspace::load()?;
            view::of_config(&ws.config, &ws.graph)
        }
    };
    print!("{}", draw(&view, format));
    Ok(0)
}

fn draw(view: &View, format: GraphFormat) -> String {
    match format {
        GraphFormat::Dot => view::to_dot(view),
        GraphFormat::Mermaid => view::to_mermaid(view),
    }
}

/// What `plan --format markdown --graph` appends to a markdown plan of
/// `body_len` characters: the apply order as a Mermaid block (GitHub
/// renders it), or, when that would be too long for the comment, how to
/// draw it.
pub fn markdown_graph(plan: &Plan, batches: &[ApplyBatch], body_len: usize) -> String {
    let view = view::of_plan(plan, batches);
    if view.nodes.is_empty() {
        return String::new();
    }
    let mermaid = view::to_mermaid(&view);
    let room = MAX_MARKDOWN_GRAPH.min(COMMENT_LIMIT.saturating_sub(body_len + 200));
    if mermaid.chars().count() > room {
        return format!(
            "\n#### Apply order\n\n{} steps: too many to draw here. Save the plan (`--out FILE`) and draw it with `himaplan graph --plan FILE`.\n",
            view.nodes.len()
        );
    }
    format!("\n#### Apply order\n\n```mermaid\n{mermaid}```\n")
}

pub fn providers_schema(json: bool) -> Result<i32, Failure> {
    if !json {
        return Err(anyhow::anyhow!("providers schema prints JSON only: run himaplan providers schema --json").into());
    }
    let doc = reference::schema_json(&crate::providers::registry());
    println!("{}", serde_json::to_string_pretty(&doc).unwrap_or_default());
    Ok(0)
}

pub fn docs(out: &Path) -> Result<i32, Failure> {
    let pages = reference::pages(&crate::providers::registry());
    std::fs::create_dir_all(out).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", out.display()))?;
    for page in &pages {
        let path = out.join(&page.file);
        std::fs::write(&path, &page.text).map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    }
    eprintln!("Wrote {} pages to {}.", pages.len(), out.display());
    Ok(0)
}

pub fn completions(shell: Shell) -> Result<i32, Failure> {
    let shell = match shell {
        Shell::Bash => clap_complete::Shell::Bash,
        Shell::Zsh => clap_complete::Shell::Zsh,
        Shell::Fish => clap_complete::Shell::Fish,
    };
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "himaplan", &mut out);
    write_stdout(&out)
}

pub fn man(dir: Option<&Path>) -> Result<i32, Failure> {
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|e| anyhow::anyhow!("cannot create {}: {e}", dir.display()))?;
        clap_mangen::generate_to(Cli::command(), dir)
            .map_err(|e| anyhow::anyhow!("cannot write the man pages to {}: {e}", dir.display()))?;
        eprintln!("Wrote the man pages to {}.", dir.display());
        return Ok(0);
    }
    let mut out = Vec::new();
    // As generate_to renders it: `help` has no page of its own to point to.
    clap_mangen::Man::new(Cli::command().disable_help_subcommand(true))
        .render(&mut out)
        .map_err(|e| anyhow::anyhow!("cannot render the man page: {e}"))?;
    write_stdout(&out)
}

fn write_stdout(bytes: &[u8]) -> Result<i32, Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(bytes).and_then(|_| stdout.flush()).map_err(|e| anyhow::anyhow!("cannot write to stdout: {e}"))?;
    Ok(0)
}
