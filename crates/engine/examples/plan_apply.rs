//! One whole-process run of the engine at N `himaplan_data` instances (the
//! configuration of the criterion benches and `bench/compare-terraform`):
//! `create` applies it from nothing, `plan` plans N updates against that
//! state, `apply` plans and applies N updates. For instruction counts
//! (`valgrind --tool=callgrind`) and peak memory (`/usr/bin/time -v`),
//! which are stable where wall times on a shared machine are not.
//!
//! `cargo run --release -p himaplan-engine --example plan_apply -- apply 10000`

use himaplan_engine::builtin::BuiltinProvider;
use himaplan_engine::config::load;
use himaplan_engine::config::vars::{self, VarInputs};
use himaplan_engine::engine::NoHooks;
use himaplan_engine::engine::apply::{self, ApplyOptions};
use himaplan_engine::engine::plan::{self, PlanInput, PlanOptions};
use himaplan_engine::graph;
use himaplan_engine::provider::Registry;
use himaplan_engine::state::{LocalStore, State, StateStore};
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

fn config_text(n: usize) -> String {
    let per = n / 10;
    let mut s = String::from("variable \"ver\" {\n  type    = string\n  default = \"v1\"\n}\n");
    for b in 0..10 {
        let dep = if b > 0 { format!("\n  depends_on = [himaplan_data.r{}]", b - 1) } else { String::new() };
        s.push_str(&format!(
            "\nresource \"himaplan_data\" \"r{b}\" {{\n  count = {per}\n  input = \"${{var.ver}}-{b}-${{count.index}}\"{dep}\n}}\n"
        ));
    }
    s
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mode = args.get(1).map(String::as_str).unwrap_or("apply");
    let n: usize = args.get(2).and_then(|s| s.parse().ok()).unwrap_or(10_000);
    let dir = std::env::temp_dir().join(format!("himaplan-plan-apply-{n}"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let sources = BTreeMap::from([(".".to_string(), vec![("main.hcl".to_string(), config_text(n))])]);
    let config = Arc::new(load::load_snapshot(Path::new("."), &sources, Default::default()).expect("load"));
    let graph = Arc::new(graph::build(&config).expect("graph"));
    let mut registry = Registry::new();
    registry.register(Arc::new(BuiltinProvider));
    let state_path = dir.join("state.json");
    if mode == "create" {
        let _ = std::fs::remove_file(&state_path);
    }
    let store = LocalStore::new(&state_path);
    let snapshot = store.read().await.expect("read state");
    let ver = if mode == "create" { "ver=v1" } else { "ver=v2" };
    let inputs = VarInputs { cli: vec![ver.to_string()], files: vec![], env: BTreeMap::new() };
    let root_vars = vars::root_values(&config, &inputs).expect("vars");
    let state = if snapshot.exists { snapshot.state } else { State::new_lineage() };
    let input = PlanInput {
        config,
        graph,
        registry,
        root_vars,
        state,
        intents: vec![],
        options: PlanOptions { refresh: false, ..PlanOptions::default() },
    };
    let planned = plan::plan(input, &NoHooks).await.expect("plan");
    println!("{} changes", planned.plan.changes.len());
    if mode == "plan" {
        return;
    }
    let changes = planned.plan.changes.clone();
    let outcome = apply::apply(planned, changes, &store, snapshot.text, ApplyOptions::default(), &NoHooks).await.expect("apply");
    assert!(!outcome.errors.has_errors(), "{}", outcome.errors);
    println!("{} completed", outcome.completed);
}
