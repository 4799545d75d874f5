//! `himaplan validate` of one file: load (hcl-edit), graph (references,
//! cycles), variables, and the evaluation walk with the built-in provider,
//! as the CLI's check does. Any input must give Ok or diagnostics.
#![no_main]

mod common;

use himaplan_engine::builtin::BuiltinProvider;
use himaplan_engine::config::{load, vars};
use himaplan_engine::engine::NoHooks;
use himaplan_engine::engine::plan::{self, PlanInput, PlanOptions};
use himaplan_engine::provider::Registry;
use himaplan_engine::state::State;
use himaplan_engine::value::Value;
use libfuzzer_sys::fuzz_target;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let sources = BTreeMap::from([(".".to_string(), vec![("main.hcl".to_string(), text.to_string())])]);
    let Ok(config) = load::load_snapshot(Path::new("/nonexistent-fuzz-root"), &sources, Default::default()) else { return };
    let Ok(graph) = himaplan_engine::graph::build(&config) else { return };
    let mut root_vars = BTreeMap::new();
    for (name, var) in &config.root().variables {
        let value = match &var.default {
            Some(_) => match vars::finalize(var, None) {
                Ok(v) => v,
                Err(_) => return,
            },
            None => Value::Unknown,
        };
        root_vars.insert(name.clone(), value);
    }
    let mut registry = Registry::new();
    registry.register(Arc::new(BuiltinProvider));
    let input = PlanInput {
        config: Arc::new(config),
        graph: Arc::new(graph),
        registry,
        root_vars,
        state: State::new_lineage(),
        intents: vec![],
        options: PlanOptions { refresh: false, validate_only: true, ..PlanOptions::default() },
    };
    let _ = common::block_on(plan::plan(input, &NoHooks));
});
