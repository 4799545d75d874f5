//! The command line: clap definitions and one small module per command
//! group. Commands are thin wrappers around one engine call; this is the
//! only code that writes to the terminal.

mod advise;
mod check;
mod context;
mod json_ui;
mod progress;
mod reference;
mod run;
mod show;
mod state_cmds;

use clap::{Args, Parser, Subcommand};
use himaplan_engine::diag::Diags;
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(name = "himaplan", version, about = "Plan and apply the infrastructure of a scaling ERP from HCL declarations")]
pub struct Cli {
    /// Run as if started in DIR.
    #[arg(short = 'C', long = "chdir", global = true, value_name = "DIR")]
    pub chdir: Option<PathBuf>,
    /// Never colour the output (also: NO_COLOR, or stdout not a terminal).
    #[arg(long, global = true)]
    pub no_color: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Parse and type-check the configuration, without network.
    Validate {
        /// Print the result and diagnostics as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Rewrite *.hcl files in canonical format, keeping comments.
    Fmt {
        /// Exit 1 and list the files that are not formatted; write nothing.
        #[arg(long)]
        check: bool,
        /// Show the changes as a diff.
        #[arg(long)]
        diff: bool,
        /// Also format subdirectories.
        #[arg(short = 'r', long)]
        recursive: bool,
    },
    /// Refresh, diff and print the plan.
    Plan(PlanArgs),
    /// Apply a saved plan, or plan and apply after approval.
    Apply {
        /// A plan file written by plan --out.
        planfile: Option<PathBuf>,
        /// Apply without asking.
        #[arg(long)]
        auto_approve: bool,
        /// One JSON event per line on stdout, like `terraform apply -json`
        /// (needs PLANFILE or --auto-approve).
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        plan: PlanArgs,
    },
    /// Show a saved plan, or the current state.
    Show {
        /// Print JSON (Terraform's plan JSON shape for a plan file).
        #[arg(long)]
        json: bool,
        /// A plan file written by plan --out; without it, the current state.
        planfile: Option<PathBuf>,
        /// Use FILE as the state instead of the configured location.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
    /// Refresh and report differences between state and the real world; changes nothing.
    Drift {
        /// Exit 2 when the real world drifted from state.
        #[arg(long)]
        detailed_exitcode: bool,
        /// Set a root variable (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Read variables from FILE (HCL attributes, or JSON when it ends in .json).
        #[arg(long = "var-file", value_name = "FILE")]
        var_files: Vec<PathBuf>,
        /// Use FILE as the state instead of the configured location.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
    /// Inspect and edit state.
    #[command(subcommand)]
    State(StateCommand),
    /// Adopt an existing object into state.
    Import {
        /// The address to adopt the object as, e.g. 'aws_instance.web[3]'.
        addr: String,
        /// The object's id in its provider, e.g. i-0123456789.
        id: String,
        /// Set a root variable (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE")]
        vars: Vec<String>,
        /// Read variables from FILE (HCL attributes, or JSON when it ends in .json).
        #[arg(long = "var-file", value_name = "FILE")]
        var_files: Vec<PathBuf>,
        /// Use FILE as the state instead of the configured location.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
        /// Wait this long for a held lock instead of failing at once.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        lock_timeout: Option<std::time::Duration>,
    },
    /// Print root module outputs from state.
    Output {
        /// One output's value; without it, every output.
        name: Option<String>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
        /// Use FILE as the state instead of the configured location.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
    /// Evaluate scaling_policy blocks against Prometheus and propose variable changes with the plan they produce.
    Advise(advise::AdviseArgs),
    /// Remove a stale state lock.
    ForceUnlock {
        /// The lock id the failing command printed.
        lock_id: String,
        /// Use FILE as the state instead of the configured location.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
    /// Draw the dependency graph, or a saved plan's apply order with its batches.
    Graph {
        /// Draw this saved plan's apply order instead of the configuration.
        #[arg(long, value_name = "FILE")]
        plan: Option<PathBuf>,
        /// DOT (Graphviz) or a Mermaid flowchart.
        #[arg(long, value_enum, default_value_t = GraphFormat::Dot)]
        format: GraphFormat,
    },
    /// Provider schemas.
    #[command(subcommand)]
    Providers(ProvidersCommand),
    /// Write the resource reference pages generated from the provider schemas.
    Docs {
        /// The directory to write README.md and one TYPE.md per resource type into.
        #[arg(long, value_name = "DIR", default_value = "docs/resources")]
        out: PathBuf,
    },
    /// Print a shell completion script.
    Completions {
        /// The shell to complete for.
        #[arg(value_enum)]
        shell: Shell,
    },
    /// Print the man page (roff), or write one page per command into DIR.
    Man {
        /// Write himaplan.1 and himaplan-COMMAND.1 for every command into DIR.
        #[arg(long, value_name = "DIR")]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum ProvidersCommand {
    /// Every resource type's schema, shaped like `terraform providers schema -json`.
    Schema {
        /// Print JSON (the only format).
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum GraphFormat {
    Dot,
    Mermaid,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Shell {
    Bash,
    Zsh,
    Fish,
}

#[derive(Debug, Subcommand)]
pub enum StateCommand {
    /// List the addresses in state.
    List {
        /// Use FILE as the state instead of the configured location.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
    /// Show one instance's attributes.
    Show {
        /// The instance address, e.g. 'aws_instance.web[0]'.
        addr: String,
        /// Use FILE as the state instead of the configured location.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
    /// Forget instances without destroying them.
    Rm {
        /// Instance or resource addresses.
        #[arg(required = true)]
        addrs: Vec<String>,
        /// Use FILE as the state instead of the configured location.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
    /// Move an instance or resource to another address.
    Mv {
        /// The current address.
        from: String,
        /// The new address.
        to: String,
        /// Use FILE as the state instead of the configured location.
        #[arg(long, value_name = "FILE")]
        state: Option<PathBuf>,
    },
    /// Upload a local state file into the configured state location (e.g. the S3 backend).
    Push {
        /// The state file to upload.
        file: PathBuf,
        /// Overwrite a state of another lineage, a newer serial or a diverged one.
        #[arg(long)]
        force: bool,
        /// Wait this long for a held lock instead of failing at once.
        #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
        lock_timeout: Option<std::time::Duration>,
    },
    /// Print the configured state (e.g. from the S3 backend) to stdout.
    Pull,
}

#[derive(Debug, Args, Clone)]
pub struct PlanArgs {
    /// Write the plan to FILE for apply FILE.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Exit 2 when there are changes.
    #[arg(long)]
    pub detailed_exitcode: bool,
    /// Set a root variable (repeatable).
    #[arg(long = "var", value_name = "NAME=VALUE")]
    pub vars: Vec<String>,
    /// Read variables from FILE (HCL attributes, or JSON when it ends in .json).
    #[arg(long = "var-file", value_name = "FILE")]
    pub var_files: Vec<PathBuf>,
    /// --refresh=false plans against state without reading real objects.
    #[arg(long, value_name = "BOOL", default_value_t = true, action = clap::ArgAction::Set)]
    pub refresh: bool,
    /// Plan only ADDR and what it depends on (repeatable).
    #[arg(long = "target", value_name = "ADDR")]
    pub targets: Vec<String>,
    /// Replace ADDR even if unchanged (repeatable).
    #[arg(long = "replace", value_name = "ADDR")]
    pub replace: Vec<String>,
    /// How to print the plan.
    #[arg(long, value_enum, default_value_t = Format::Human)]
    pub format: Format,
    /// Use FILE as the state instead of the configured location.
    #[arg(long, value_name = "FILE")]
    pub state: Option<PathBuf>,
    /// Run at most N actions at once.
    #[arg(long, value_name = "N", default_value_t = 10)]
    pub parallelism: usize,
    /// Evaluate schedules as of this instant (RFC 3339).
    #[arg(long, value_name = "RFC3339", value_parser = parse_at)]
    pub at: Option<chrono::DateTime<chrono::Utc>>,
    /// Wait this long for a held lock instead of failing at once.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub lock_timeout: Option<std::time::Duration>,
    /// With --format markdown: append the apply order as a Mermaid diagram.
    #[arg(long)]
    pub graph: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Markdown,
    Json,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    humantime::parse_duration(s).map_err(|e| format!("{e} (examples: 30s, 5m, 500ms)"))
}

fn parse_at(s: &str) -> Result<chrono::DateTime<chrono::Utc>, String> {
    chrono::DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&chrono::Utc))
        .map_err(|e| format!("{e} (example: 2026-12-01T08:00:00Z)"))
}

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    #[error("{0}")]
    Diags(Diags),
    #[error("Error: {0:#}")]
    Other(anyhow::Error),
}

impl From<Diags> for Failure {
    fn from(d: Diags) -> Self {
        Failure::Diags(d)
    }
}

impl From<himaplan_engine::diag::Diag> for Failure {
    fn from(d: himaplan_engine::diag::Diag) -> Self {
        Failure::Diags(d.into())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}

impl From<himaplan_engine::state::StateError> for Failure {
    fn from(e: himaplan_engine::state::StateError) -> Self {
        Failure::Diags(himaplan_engine::diag::Diag::error(e.to_string()).into())
    }
}

/// Runs a parsed command; returns the process exit code.
pub async fn run(cli: Cli) -> Result<i32, Failure> {
    if let Some(dir) = &cli.chdir {
        std::env::set_current_dir(dir).map_err(|e| anyhow::anyhow!("cannot change to directory {}: {e}", dir.display()))?;
    }
    let color = !cli.no_color && std::env::var_os("NO_COLOR").is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout());
    match cli.command {
        Command::Validate { json } => check::validate(json).await,
        Command::Fmt { check, diff, recursive } => check::fmt(check, diff, recursive),
        Command::Plan(args) => run::plan(args, color).await,
        Command::Apply { planfile, auto_approve, json, plan } => run::apply(planfile, auto_approve, json, plan, color).await,
        Command::Show { json, planfile, state } => show::show(json, planfile, state, color).await,
        Command::Drift { detailed_exitcode, vars, var_files, state } => run::drift(detailed_exitcode, vars, var_files, state, color).await,
        Command::State(cmd) => state_cmds::state(cmd).await,
        Command::Import { addr, id, vars, var_files, state, lock_timeout } => {
            state_cmds::import(addr, id, vars, var_files, state, lock_timeout).await
        }
        Command::Output { name, json, state } => state_cmds::output(name, json, state).await,
        Command::Advise(args) => advise::advise(args, color).await,
        Command::ForceUnlock { lock_id, state } => state_cmds::force_unlock(lock_id, state).await,
        Command::Graph { plan, format } => reference::graph(plan, format),
        Command::Providers(ProvidersCommand::Schema { json }) => reference::providers_schema(json),
        Command::Docs { out } => reference::docs(&out),
        Command::Completions { shell } => reference::completions(shell),
        Command::Man { out } => reference::man(out.as_deref()),
    }
}
